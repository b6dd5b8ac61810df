// One upfirdn2d stage producing output rows one at a time (see fir.h for the plans).
#pragma once

#include <algorithm>
#include <map>
#include <vector>

#include "fir.h"

namespace sgnative {

// Computes output row o of an upfirdn2d whose source rows come from a callable
// `source(s) -> const T*` (called at most once per source row and plane, in increasing order).
// Separable filters: each source row is filtered horizontally once and kept in a small ring of
// `span` rows; an output row is then a weighted sum of those rows (vertical pass). 2-D filters:
// the ring keeps prepared source rows and every (row, filter row) pair is filtered directly.
// Identical filter rows are exploited (StyleGAN3-R's radial filter has row r equal to row
// k-1-r), which halves the filtering work:
//  * down-sampling: one output row meets both rows of a pair, with different source rows; those
//    source rows are summed and filtered once (the preparation is linear, so this is exact up
//    to rounding);
//  * up-sampling (the backward pass of the down stage): one output row meets only one row of a
//    pair, but a source row meets both, in different output rows; each (source row, distinct
//    filter row) is filtered once, kept in a ring, and output rows sum their entries.
template <typename T>
class FirStage {
 public:
  FirStage(const RowPlan& rows, const ColPlan& cols, const Filter2d<T>& f)
      : rows_(rows), cols_(cols), f_(f),
        ring_(cols.span, f.separable() ? rows.out_capacity() : rows.prep_len()),
        prep_(rows.prep_len()), out_(rows.out_capacity()), col_ptrs_(cols.a.taps),
        col_w_(cols.a.taps) {
    if (f.separable()) return;
    // twin_[r]: the first filter row equal to row r (r itself if none).
    twin_.resize(f.ky);
    for (int64_t r = 0; r < f.ky; ++r) {
      twin_[r] = r;
      for (int64_t q = 0; q < r && twin_[r] == r; ++q)
        if (std::equal(f.x + r * f.kx, f.x + (r + 1) * f.kx, f.x + q * f.kx)) twin_[r] = q;
    }
    sum_.resize(rows.prep_len());
    taken_.resize(cols.a.taps);
    bool paired = false;
    for (int64_t r = 0; r < f.ky; ++r) paired |= twin_[r] != r;
    if (cols.a.up > 1 && paired) {
      for (int64_t r = 0; r < f.ky; ++r)
        if (twin_[r] == r) filtered_.emplace(r, RowRing<T>(cols.span, rows.out_capacity()));
    }
  }

  void reset() {
    ring_.reset();
    for (auto& entry : filtered_) entry.second.reset();
  }
  int64_t width() const { return rows_.axis().n_out; }

  template <class Source>
  void row(int64_t o, Source& source, T bias, T* out) {
    const int64_t n = width(), e0 = cols_.begin[o], count = cols_.begin[o + 1] - e0;
    for (int64_t e = 0; e < count; ++e) {
      const int64_t s = cols_.src[e0 + e];
      T* slot = ring_.slot(s);
      if (!ring_.has(s)) {
        fill_slot(source(s), bias, slot);
        ring_.mark(s);
      }
      col_ptrs_[e] = slot;
      col_w_[e] = f_.separable() ? f_.y[cols_.tap[e0 + e]] : T(0);
    }
    // Computed in the padded row out_, then copied: `out` holds only n entries.
    if (f_.separable()) {
      multi_axpy(col_ptrs_.data(), col_w_.data(), count, out_.data(), rows_.out_capacity(), false);
    } else if (!filtered_.empty()) {
      sum_filtered_rows(e0, count);
    } else {
      filter_grouped_rows(e0, count);
    }
    std::copy(out_.begin(), out_.begin() + n, out);
  }

 private:
  // 2-D filter, up-sampling: out_ = sum of the entries' (source row, filter row) filterings,
  // each computed once per distinct filter row and kept in filtered_.
  void sum_filtered_rows(int64_t e0, int64_t count) {
    for (int64_t e = 0; e < count; ++e) {
      const int64_t s = cols_.src[e0 + e], tap = cols_.tap[e0 + e];
      RowRing<T>& ring = filtered_.at(twin_[tap]);
      T* row_filtered = ring.slot(s);
      if (!ring.has(s)) {
        rows_.apply(col_ptrs_[e], f_.x + tap * f_.kx, row_filtered, false, scratch_);
        ring.mark(s);
      }
      col_ptrs_[e] = row_filtered;
      col_w_[e] = T(1);
    }
    multi_axpy(col_ptrs_.data(), col_w_.data(), count, out_.data(), rows_.out_capacity(), false);
  }

  // 2-D filter otherwise: out_ = sum over the entries of their prepared rows filtered by their
  // filter row, entries meeting identical filter rows summed first and filtered once.
  void filter_grouped_rows(int64_t e0, int64_t count) {
    std::fill(out_.begin(), out_.end(), T(0));
    std::fill(taken_.begin(), taken_.begin() + count, char(0));
    for (int64_t e = 0; e < count; ++e) {
      if (taken_[e]) continue;
      const int64_t tap = cols_.tap[e0 + e];
      const T* src = col_ptrs_[e];
      for (int64_t e2 = e + 1; e2 < count; ++e2) {
        if (taken_[e2] || twin_[cols_.tap[e0 + e2]] != twin_[tap]) continue;
        if (src != sum_.data()) {
          std::copy(src, src + sum_.size(), sum_.begin());
          src = sum_.data();
        }
        const T* __restrict other = col_ptrs_[e2];
        T* __restrict acc = sum_.data();
        for (size_t j = 0; j < sum_.size(); ++j) acc[j] += other[j];
        taken_[e2] = 1;
      }
      rows_.apply(src, f_.x + tap * f_.kx, out_.data(), true, scratch_);
    }
  }

  void fill_slot(const T* src, T bias, T* slot) {
    if (f_.separable()) {
      rows_.prepare(src, bias, prep_.data());
      rows_.apply(prep_.data(), f_.x, slot, false, scratch_);
    } else {
      rows_.prepare(src, bias, slot);
    }
  }

  const RowPlan& rows_;
  const ColPlan& cols_;
  Filter2d<T> f_;
  RowRing<T> ring_;
  std::vector<T> prep_, out_;
  std::vector<const T*> col_ptrs_;
  std::vector<T> col_w_;
  std::vector<int64_t> twin_;  // 2-D filters only (see the class comment)
  std::vector<T> sum_;
  std::vector<char> taken_;
  std::map<int64_t, RowRing<T>> filtered_;  // up-sampling with paired rows: per distinct row
  PassScratch<T> scratch_;
};

}  // namespace sgnative
