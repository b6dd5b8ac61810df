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
#include <type_traits>
#include <utility>
#include <vector>

namespace sgnative {

inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

inline int64_t pos_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// Rows are processed in whole SIMD vectors: row buffers are padded to a multiple of kRowPad
// elements so that no pass needs a scalar remainder loop (a large share of the time for rows
// of a few dozen samples). Padding entries hold scratch values that never reach a real sample.
constexpr int64_t kRowPad = 8;

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

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

// 32-byte SIMD vectors through the GCC/Clang vector extension: one AVX register on x86-64
// (two SSE/NEON registers elsewhere). Explicit vectors keep the accumulators in registers,
// which auto-vectorisation of a local array did not.
template <typename T>
struct Simd {
  typedef T vec __attribute__((vector_size(32)));
  static constexpr int64_t lanes = 32 / sizeof(T);
  static vec load(const T* p) { vec v; std::memcpy(&v, p, sizeof v); return v; }
  static void store(T* p, vec v) { std::memcpy(p, &v, sizeof v); }
};

// out[j] (+)= sum_t w[t] * src[t][j] for j in [0, n): the one inner loop of every FIR pass.
// A block of outputs stays in registers while all taps stream by: one load and one fused
// multiply-add per tap and sample, instead of a load-add-store per tap.
template <typename T>
inline void multi_axpy(const T* const* src, const T* w, int64_t taps, T* __restrict out, int64_t n,
                       bool accumulate) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int64_t L = S::lanes;
  int64_t j = 0;
  for (; j + 4 * L <= n; j += 4 * L) {
    V a0 = {}, a1 = {}, a2 = {}, a3 = {};
    if (accumulate) {
      a0 = S::load(out + j); a1 = S::load(out + j + L);
      a2 = S::load(out + j + 2 * L); a3 = S::load(out + j + 3 * L);
    }
    for (int64_t t = 0; t < taps; ++t) {
      const T wt = w[t];
      const T* s = src[t] + j;
      a0 += wt * S::load(s); a1 += wt * S::load(s + L);
      a2 += wt * S::load(s + 2 * L); a3 += wt * S::load(s + 3 * L);
    }
    S::store(out + j, a0); S::store(out + j + L, a1);
    S::store(out + j + 2 * L, a2); S::store(out + j + 3 * L, a3);
  }
  for (; j + L <= n; j += L) {
    V a = accumulate ? S::load(out + j) : V{};
    for (int64_t t = 0; t < taps; ++t) a += w[t] * S::load(src[t] + j);
    S::store(out + j, a);
  }
  for (; j < n; ++j) {
    T a = accumulate ? out[j] : T(0);
    for (int64_t t = 0; t < taps; ++t) a += w[t] * src[t][j];
    out[j] = a;
  }
}

// Per-thread scratch of the passes (tap pointers, weights, phase accumulators).
template <typename T>
struct PassScratch {
  std::vector<const T*> ptrs;
  std::vector<T> w, acc;
  void reserve(int64_t taps, int64_t acc_len) {
    if ((int64_t)ptrs.size() < taps) ptrs.resize(taps);
    if ((int64_t)w.size() < taps) w.resize(taps);
    if ((int64_t)acc.size() < acc_len) acc.resize(acc_len);
  }
};

// Filtering along the contiguous axis of a row.
class RowPlan {
 public:
  enum Mode { kDownOnly, kUpOnly, kGeneral };

  explicit RowPlan(const Axis& a) : a_(a) {
    if (a.up == 1) {
      mode_ = kDownOnly;
      phase_len_ = out_capacity() + (a.taps - 1) / a.down;
      prep_len_ = phase_len_ * a.down;
      acc_len_ = 0;
      for (int64_t i = 0; i < a.taps; ++i) down_offsets_.push_back((i % a.down) * phase_len_ + i / a.down);
      for (int64_t c = 0; c < a.down; ++c) {  // phase c holds real samples for q in [q0, q1)
        const int64_t off = c - a.pad0;
        const int64_t q0 = std::clamp<int64_t>(-floor_div(off, a.down), 0, phase_len_);
        phase_ranges_.push_back({q0, std::clamp<int64_t>(floor_div(a.n_in - 1 - off, a.down) + 1, q0, phase_len_)});
      }
      return;
    }
    mode_ = a.down == 1 ? kUpOnly : kGeneral;
    phase_stride_ = round_up((a.n_out + a.up - 1) / a.up, kRowPad);
    for (int64_t r = 0; r < std::min(a.up, a.n_out); ++r) {
      up_phases_.push_back(tap_phase(a, r));
      up_lengths_.push_back(round_up((a.n_out - r + a.up - 1) / a.up, kRowPad));  // <= phase stride
    }
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
    prep_len_ = hi - lo_ + 1 + kRowPad;  // apply_up's padded phases read up to kRowPad further
    acc_len_ = phase_stride_ * a.up;   // all phases of apply_up
  }

  int64_t prep_len() const { return prep_len_; }
  // Outputs are computed in whole vectors: apply() may write up to out_capacity() >= n_out
  // entries (the extra ones are scratch), so destination rows must be that long.
  int64_t out_capacity() const { return round_up(a_.n_out, kRowPad); }
  int64_t acc_len() const { return acc_len_; }
  const Axis& axis() const { return a_; }

  // Zero-extend / phase-split source row x (length n_in), adding `bias` to real samples only
  // (padding stays zero, as when the bias is added before the op).
  template <typename T>
  void prepare(const T* x, T bias, T* prep) const {
    if (mode_ == kDownOnly) {
      // Phase c holds x[q*down + c - pad0] for q in [0, phase_len): zeros, a strided copy, zeros.
      const int64_t d = a_.down;
      for (int64_t c = 0; c < d; ++c) {
        T* dst = prep + c * phase_len_;
        const int64_t off = c - a_.pad0;
        const int64_t q0 = phase_ranges_[c].first, q1 = phase_ranges_[c].second;
        std::fill(dst, dst + q0, T(0));
        const T* __restrict src = x + off;
        // A compile-time stride (1, 2) vectorises with shuffles; a run-time one reads scalars.
        if (d == 1) {
          for (int64_t q = q0; q < q1; ++q) dst[q] = src[q] + bias;
        } else if (d == 2) {
          for (int64_t q = q0; q < q1; ++q) dst[q] = src[q * 2] + bias;
        } else {
          for (int64_t q = q0; q < q1; ++q) dst[q] = src[q * d] + bias;
        }
        std::fill(dst + q1, dst + phase_len_, T(0));
      }
      return;
    }
    int64_t s0 = std::max<int64_t>(lo_, 0), s1 = std::min<int64_t>(lo_ + prep_len_, a_.n_in);
    std::fill(prep, prep + prep_len_, T(0));
    for (int64_t s = s0; s < s1; ++s) prep[s - lo_] = x[s] + bias;
  }

  // out[0:n_out] (+)= correlation of the prepared row with taps[0:taps]; out must hold
  // out_capacity() entries.
  template <typename T>
  void apply(const T* prep, const T* taps, T* out, bool accumulate, PassScratch<T>& sc) const {
    sc.reserve(a_.taps, acc_len_);
    switch (mode_) {
      case kDownOnly: return apply_down(prep, taps, out, accumulate, sc);
      case kUpOnly: return apply_up(prep, taps, out, accumulate, sc);
      default: return apply_general(prep, taps, out, accumulate);
    }
  }

 private:
  // Tap i reads phase i % down, shifted by i / down: a contiguous run per tap.
  template <typename T>
  void apply_down(const T* prep, const T* taps, T* out, bool accumulate, PassScratch<T>& sc) const {
    for (int64_t i = 0; i < a_.taps; ++i) sc.ptrs[i] = prep + down_offsets_[i];
    multi_axpy(sc.ptrs.data(), taps, a_.taps, out, out_capacity(), accumulate);
  }

  // Up-sampling without down-sampling: outputs o = up*q + r share one tap phase per r; each
  // phase is a short FIR over the (not zero-stuffed) source, then the phases are interleaved.
  template <typename T>
  void apply_up(const T* prep, const T* taps, T* out, bool accumulate, PassScratch<T>& sc) const {
    const int64_t u = a_.up, n = a_.n_out, stride = phase_stride_;
    for (int64_t r = 0; r < std::min(u, n); ++r) {
      const TapPhase& p = up_phases_[r];
      for (int64_t t = 0; t < p.count; ++t) {
        sc.ptrs[t] = prep + (p.src0 + t - lo_);
        sc.w[t] = taps[p.phi + u * t];
      }
      multi_axpy(sc.ptrs.data(), sc.w.data(), p.count, sc.acc.data() + r * stride, up_lengths_[r], false);
    }
    if (u == 2) return interleave<2>(sc.acc.data(), stride, out, n, accumulate);
    if (u == 4) return interleave<4>(sc.acc.data(), stride, out, n, accumulate);
    for (int64_t o = 0; o < n; ++o) {
      const T v = sc.acc[(o % u) * stride + o / u];
      out[o] = accumulate ? out[o] + v : v;
    }
  }

  // out[U*q + r] (+)= acc[r*stride + q]; a compile-time U lets the compiler use shuffles.
  template <int64_t U, typename T>
  static void interleave(const T* __restrict acc, int64_t stride, T* __restrict out, int64_t n,
                         bool accumulate) {
    const int64_t full = n / U;
    if (accumulate) {
      for (int64_t q = 0; q < full; ++q)
        for (int64_t r = 0; r < U; ++r) out[U * q + r] += acc[r * stride + q];
    } else {
      for (int64_t q = 0; q < full; ++q)
        for (int64_t r = 0; r < U; ++r) out[U * q + r] = acc[r * stride + q];
    }
    for (int64_t o = full * U; o < n; ++o) {
      const T v = acc[(o - full * U) * stride + full];
      out[o] = accumulate ? out[o] + v : v;
    }
  }

  // Up- and down-sampling on the same axis (rare; small test shapes): per output.
  template <typename T>
  void apply_general(const T* prep, const T* taps, T* out, bool accumulate) const {
    for (int64_t o = 0; o < a_.n_out; ++o) {
      const TapPhase p = tap_phase(a_, o);
      T acc = accumulate ? out[o] : T(0);
      for (int64_t t = 0; t < p.count; ++t) acc += taps[p.phi + a_.up * t] * prep[p.src0 + t - lo_];
      out[o] = acc;
    }
  }

  Axis a_;
  Mode mode_;
  std::vector<TapPhase> up_phases_;  // apply_up: taps of output phase r (the same for every row)
  std::vector<int64_t> down_offsets_;  // apply_down: where tap i starts in the prepared row
  std::vector<std::pair<int64_t, int64_t>> phase_ranges_;  // prepare (down only): real q per phase
  std::vector<int64_t> up_lengths_;  // apply_up: padded output count of phase r
  int64_t lo_ = 0, phase_len_ = 0, prep_len_ = 0, acc_len_ = 0;
  int64_t phase_stride_ = 0;  // apply_up: distance between the phases' accumulators
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
// The slot count is a power of two so that a slot is found with a mask, not an integer division:
// rows are looked up several times per output row, and divisions by a runtime value were hot
// spots in perf profiles of filtered_lrelu (as were the per-row tap offsets, now precomputed).
template <typename T>
class RowRing {
 public:
  RowRing(int64_t rows, int64_t len)
      : mask_(pow2_at_least(rows) - 1), len_(len), data_((mask_ + 1) * len), tag_(mask_ + 1, -1) {}
  T* slot(int64_t s) { return data_.data() + (s & mask_) * len_; }
  bool has(int64_t s) const { return tag_[s & mask_] == s; }
  void mark(int64_t s) { tag_[s & mask_] = s; }
  void reset() { std::fill(tag_.begin(), tag_.end(), -1); }

 private:
  static int64_t pow2_at_least(int64_t n) {
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
  }

  int64_t mask_, len_;
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
