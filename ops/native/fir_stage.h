// One upfirdn2d stage producing output rows one at a time (see fir.h for the plans).
#pragma once

#include <vector>

#include "fir.h"

namespace sgnative {

// Computes output row o of an upfirdn2d whose source rows come from a callable
// `source(s) -> const T*` (called at most once per source row and plane, in increasing order).
// Separable filters: each source row is filtered horizontally once and kept in a small ring of
// `span` rows; an output row is then a weighted sum of those rows (vertical pass). 2-D filters:
// the ring keeps prepared source rows and every (row, filter row) pair is filtered directly.
template <typename T>
class FirStage {
 public:
  FirStage(const RowPlan& rows, const ColPlan& cols, const Filter2d<T>& f)
      : rows_(rows), cols_(cols), f_(f),
        ring_(cols.span, f.separable() ? rows.out_capacity() : rows.prep_len()),
        prep_(rows.prep_len()), out_(rows.out_capacity()), col_ptrs_(cols.a.taps),
        col_w_(cols.a.taps) {}

  void reset() { ring_.reset(); }
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
    } else {
      std::fill(out_.begin(), out_.end(), T(0));
      for (int64_t e = 0; e < count; ++e)
        rows_.apply(col_ptrs_[e], f_.x + cols_.tap[e0 + e] * f_.kx, out_.data(), true, scratch_);
    }
    std::copy(out_.begin(), out_.begin() + n, out);
  }

 private:
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
  PassScratch<T> scratch_;
};

}  // namespace sgnative
