// Polyphase FIR building blocks shared by the upfirdn2d and filtered_lrelu kernels.
//
// Everything here works on one image plane with plain pointers. An axis of upfirdn
// (upsample by zero insertion, pad/crop, correlate with `taps`, keep every `down`-th sample) is
// rewritten so that inserted zeros are never multiplied and discarded samples are never
// computed:
//   y[o] = sum_i g[i] * z[o*down + i],  z[j] = x[(j - pad0) / up]  if (j - pad0) % up == 0.
// Only taps i with (o*down + i - pad0) % up == 0 touch a real sample, and only the kept outputs
// o are evaluated. Filters arrive as correlation taps (the Python side flips them for true
// convolution and folds the gain in).
//
// Rows (the contiguous x axis) are filtered by RowPlan: the source row is first "prepared"
// (zero-extended, split into phases) so that every tap becomes a contiguous multiply-add over
// the outputs, which the compiler vectorises. Columns (the y axis) are filtered by ColPlan: an
// output row is a weighted sum of whole source rows, again a contiguous loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace sgnative {

inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

inline int64_t pos_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// Output length of one upfirdn axis (DESIGN.md section 5): (n*up + p0 + p1 - (taps-1) + down-1) // down.
inline int64_t upfirdn_out_len(int64_t n, int64_t up, int64_t down, int64_t pad0, int64_t pad1,
                               int64_t taps) {
  int64_t valid = n * up + pad0 + pad1 - taps + 1;
  return valid <= 0 ? 0 : (valid + down - 1) / down;
}

// Geometry of one upfirdn axis.
struct Axis {
  int64_t n_in, n_out, up, down, pad0, taps;
};

// First contributing tap and source index of output o: taps phi, phi+up, ... hit sources
// src0, src0+1, ...
struct TapPhase {
  int64_t phi, src0, count;
};

inline TapPhase tap_phase(const Axis& a, int64_t o) {
  int64_t start = o * a.down - a.pad0;
  int64_t phi = pos_mod(-start, a.up);
  int64_t count = phi < a.taps ? (a.taps - phi + a.up - 1) / a.up : 0;
  return {phi, (start + phi) / a.up, count};
}

// Filtering along the contiguous axis of a row.
class RowPlan {
 public:
  enum Mode { kDownOnly, kUpOnly, kGeneral };

  explicit RowPlan(const Axis& a) : a_(a) {
    if (a.up == 1) {
      mode_ = kDownOnly;
      phase_len_ = a.n_out + (a.taps - 1) / a.down;
      prep_len_ = phase_len_ * a.down;
      acc_len_ = 0;
      return;
    }
    mode_ = a.down == 1 ? kUpOnly : kGeneral;
    // Extended source row covering every index any output touches.
    lo_ = INT64_MAX;
    int64_t hi = INT64_MIN;
    for (int64_t o = 0; o < a.n_out; ++o) {
      TapPhase p = tap_phase(a, o);
      if (p.count == 0) continue;
      lo_ = std::min(lo_, p.src0);
      hi = std::max(hi, p.src0 + p.count - 1);
    }
    if (hi < lo_) lo_ = hi = 0;
    prep_len_ = hi - lo_ + 1;
    acc_len_ = a.up > 0 ? (a.n_out + a.up - 1) / a.up : 0;
  }

  int64_t prep_len() const { return prep_len_; }
  int64_t acc_len() const { return acc_len_; }
  const Axis& axis() const { return a_; }

  // Zero-extend / phase-split source row x (length n_in), adding `bias` to real samples only
  // (padding stays zero, as when the bias is added before the op).
  template <typename T>
  void prepare(const T* x, T bias, T* prep) const {
    if (mode_ == kDownOnly) {
      const int64_t d = a_.down;
      for (int64_t c = 0; c < d; ++c) {
        T* dst = prep + c * phase_len_;
        for (int64_t q = 0; q < phase_len_; ++q) {
          int64_t s = q * d + c - a_.pad0;
          dst[q] = (s >= 0 && s < a_.n_in) ? x[s] + bias : T(0);
        }
      }
      return;
    }
    int64_t s0 = std::max<int64_t>(lo_, 0), s1 = std::min<int64_t>(lo_ + prep_len_, a_.n_in);
    std::fill(prep, prep + prep_len_, T(0));
    for (int64_t s = s0; s < s1; ++s) prep[s - lo_] = x[s] + bias;
  }

  // out[0:n_out] (+)= correlation of the prepared row with taps[0:taps]. scratch: acc_len().
  template <typename T>
  void apply(const T* prep, const T* taps, T* out, bool accumulate, T* scratch) const {
    const int64_t n = a_.n_out;
    if (!accumulate) std::fill(out, out + n, T(0));
    switch (mode_) {
      case kDownOnly: return apply_down(prep, taps, out);
      case kUpOnly: return apply_up(prep, taps, out, scratch);
      default: return apply_general(prep, taps, out);
    }
  }

 private:
  template <typename T>
  void apply_down(const T* prep, const T* taps, T* out) const {
    const int64_t d = a_.down, n = a_.n_out;
    for (int64_t i = 0; i < a_.taps; ++i) {
      const T w = taps[i];
      const T* __restrict src = prep + (i % d) * phase_len_ + i / d;
      T* __restrict dst = out;
      for (int64_t o = 0; o < n; ++o) dst[o] += w * src[o];
    }
  }

  // Up-sampling without down-sampling: outputs o = up*q + r share one tap phase per r.
  template <typename T>
  void apply_up(const T* prep, const T* taps, T* out, T* scratch) const {
    const int64_t u = a_.up, n = a_.n_out;
    for (int64_t r = 0; r < std::min(u, n); ++r) {
      TapPhase p = tap_phase(a_, r);
      const int64_t nq = (n - r + u - 1) / u;
      T* __restrict acc = scratch;
      std::fill(acc, acc + nq, T(0));
      for (int64_t t = 0; t < p.count; ++t) {
        const T w = taps[p.phi + u * t];
        const T* __restrict src = prep + (p.src0 + t - lo_);
        for (int64_t q = 0; q < nq; ++q) acc[q] += w * src[q];
      }
      for (int64_t q = 0; q < nq; ++q) out[u * q + r] += acc[q];
    }
  }

  // Up- and down-sampling on the same axis (rare; small test shapes): per output.
  template <typename T>
  void apply_general(const T* prep, const T* taps, T* out) const {
    for (int64_t o = 0; o < a_.n_out; ++o) {
      TapPhase p = tap_phase(a_, o);
      T acc = 0;
      for (int64_t t = 0; t < p.count; ++t) acc += taps[p.phi + a_.up * t] * prep[p.src0 + t - lo_];
      out[o] += acc;
    }
  }

  Axis a_;
  Mode mode_;
  int64_t lo_ = 0, phase_len_ = 0, prep_len_ = 0, acc_len_ = 0;
};

// Filtering along rows of a plane: output row o = sum over entries (src row, tap index).
struct ColPlan {
  Axis a;
  std::vector<int64_t> begin;  // entries of output row o: [begin[o], begin[o+1])
  std::vector<int64_t> src, tap;
  int64_t span = 1;  // max number of consecutive source rows one output row reaches

  explicit ColPlan(const Axis& axis) : a(axis) {
    begin.push_back(0);
    for (int64_t o = 0; o < a.n_out; ++o) {
      TapPhase p = tap_phase(a, o);
      int64_t first = -1;
      for (int64_t t = 0; t < p.count; ++t) {
        int64_t s = p.src0 + t;
        if (s < 0 || s >= a.n_in) continue;
        if (first < 0) first = s;
        src.push_back(s);
        tap.push_back(p.phi + a.up * t);
        span = std::max(span, s - first + 1);
      }
      begin.push_back(static_cast<int64_t>(src.size()));
    }
  }
};

// A ring of rows computed on demand. Source rows are requested in non-decreasing order of their
// first use and every request set spans at most `rows` consecutive indices, so a row computed
// once stays valid until no later request can need it.
template <typename T>
class RowRing {
 public:
  RowRing(int64_t rows, int64_t len) : rows_(rows), len_(len), data_(rows * len), tag_(rows, -1) {}
  T* slot(int64_t s) { return data_.data() + (s % rows_) * len_; }
  bool has(int64_t s) const { return tag_[s % rows_] == s; }
  void mark(int64_t s) { tag_[s % rows_] = s; }
  void reset() { std::fill(tag_.begin(), tag_.end(), -1); }

 private:
  int64_t rows_, len_;
  std::vector<T> data_;
  std::vector<int64_t> tag_;
};

template <typename T>
inline void axpy(T w, const T* __restrict x, T* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += w * x[i];
}

// A filter as the kernels see it: separable (taps_x along width, taps_y along height) or a full
// 2-D [ky][kx] array. Always correlation taps with the gain folded in.
template <typename T>
struct Filter2d {
  const T* x = nullptr;  // separable: kx taps; 2-D: ky*kx row-major
  const T* y = nullptr;  // separable: ky taps; 2-D: nullptr
  int64_t kx = 1, ky = 1;
  bool separable() const { return y != nullptr; }
};

}  // namespace sgnative
