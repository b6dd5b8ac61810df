// upfirdn2d on CPU: polyphase, separable filters as two whole-plane passes, 2-D filters row by
// row (fir_stage.h).
#include "parallel.h"

#include "fir_stage.h"
#include "kernels.h"

namespace sgnative {

namespace {

// Separable filter, one plane at a time, in two passes with almost no per-row bookkeeping
// (which dominated on StyleGAN2's many small planes: 512 planes x 16-64 rows of a 4-tap filter):
//   1. every source row an output needs is filtered horizontally into `buf_` (one padded
//      row each, so the vertical pass reads whole SIMD vectors);
//   2. output row o = sum over its (source row, tap) entries of buf_ rows: one multi_axpy
//      with tap pointers and weights precomputed once per call, written straight into y.
template <typename T>
class SeparablePlanes {
 public:
  SeparablePlanes(const RowPlan& rows, const ColPlan& cols, const Filter2d<T>& f)
      : rows_(rows), cols_(cols), f_(f), cap_(rows.out_capacity()),
        buf_(cols.a.n_in * cap_), prep_(rows.prep_len()), out_pad_(cap_), used_(cols.a.n_in, 0) {
    ptrs_.resize(cols.src.size());
    w_.resize(cols.src.size());
    for (size_t e = 0; e < cols.src.size(); ++e) {
      ptrs_[e] = buf_.data() + cols.src[e] * cap_;
      w_[e] = f.y[cols.tap[e]];
      used_[cols.src[e]] = 1;
    }
  }

  void plane(const T* x, T* y) {
    const int64_t w_in = rows_.axis().n_in, w_out = rows_.axis().n_out;
    for (int64_t s = 0; s < cols_.a.n_in; ++s) {
      if (!used_[s]) continue;  // cropped away by the padding
      rows_.prepare(x + s * w_in, T(0), prep_.data());
      rows_.apply(prep_.data(), f_.x, buf_.data() + s * cap_, false, scratch_);
    }
    const int64_t h_out = cols_.a.n_out;
    for (int64_t o = 0; o < h_out; ++o) {
      const int64_t e0 = cols_.begin[o], count = cols_.begin[o + 1] - e0;
      // Whole vectors: row o may spill into row o + 1, which is written next. A row whose
      // vectors would run past the plane goes through a padded scratch row instead.
      T* dst = w_out * (h_out - o) >= cap_ ? y + o * w_out : out_pad_.data();
      multi_axpy(ptrs_.data() + e0, w_.data() + e0, count, dst, cap_, false);
      if (dst == out_pad_.data()) std::copy(out_pad_.begin(), out_pad_.begin() + w_out, y + o * w_out);
    }
  }

 private:
  const RowPlan& rows_;
  const ColPlan& cols_;
  Filter2d<T> f_;
  int64_t cap_;
  std::vector<T> buf_, prep_, out_pad_;
  std::vector<const T*> ptrs_;
  std::vector<T> w_;
  std::vector<char> used_;
  PassScratch<T> scratch_;
};

// Small planes without up-sampling (StyleGAN2's 4-tap blur and skip down-sampling of many
// 8-128 px maps): a group of planes is copied once into one zero-padded buffer, and each filter
// pass is then a single multiply-add loop over the whole buffer (tap t reads the buffer shifted
// by t samples, or t padded rows), with no per-row or per-plane work. Outputs that straddle a
// row or plane border are computed and ignored; that waste is cheaper than per-row bookkeeping
// at these sizes. With down-sampling, samples the output drops are never computed: the x pass
// reads every `down`-th position (the padded width is a multiple of `down`, so these are exactly
// the kept columns of every row); for the y pass, the padded rows of a plane are stored by phase
// (rows 0, d, 2d, ... first, then 1, d+1, ...), so that output row o, the sum over taps t of row
// o*d + t, reads row o + t/d of phase t%d: one contiguous multiply-add loop per plane.
template <typename T>
class FlatPlanes {
 public:
  // Largest planes (samples) it beats SeparablePlanes on, measured with 2 threads: up to
  // 129x129 for StyleGAN2's 4-tap blur (1.1-1.4x), but only up to 64x64 when down-sampling
  // (StyleGAN2's 128x128 skip and StyleGAN3's 12-tap 82-178 px cases ran 0.83-0.93x flat).
  static constexpr int64_t kMaxFlatPlane = 136 * 136, kMaxFlatPlaneDown = 64 * 64;

  static bool applies(const Axis& ax, const Axis& ay, const Filter2d<T>& f) {
    return f.separable() && ax.up == 1 && ay.up == 1 && ax.pad0 >= 0 && ay.pad0 >= 0 &&
           ax.n_in * ay.n_in <= (ax.down == 1 && ay.down == 1 ? kMaxFlatPlane : kMaxFlatPlaneDown);
  }

  FlatPlanes(const Axis& ax, const Axis& ay, const Filter2d<T>& f, int64_t max_group)
      : ax_(ax), ay_(ay), f_(f),
        // Padded sizes cover every sample an output reads: (n_out-1)*down + taps.
        wp_(round_up(std::max(ax.pad0 + ax.n_in, (ax.n_out - 1) * ax.down + ax.taps), ax.down)),
        hp_(round_up(std::max(ay.pad0 + ay.n_in, (ay.n_out - 1) * ay.down + ay.taps), ay.down)),
        wq_(wp_ / ax.down),
        group_(std::max<int64_t>(1, std::min(max_group, kGroupSamples / (wp_ * hp_)))),
        ptrs_(std::max(ax.taps, ay.taps)), w_(ptrs_.size()) {
    // Slack after the last plane: the passes read up to taps - 1 samples / rows beyond it (into
    // outputs that are ignored). The buffers are per thread and reused across calls: allocating
    // ~1 MB per call cost page faults that doubled the time of a [512, 32, 32] blur.
    // The phases of the x pass (in filtered()) need up to `down` more samples than that.
    const size_t size = group_ * hp_ * wp_ + round_up(ax.taps + ay.taps * wp_ + ax.down, kRowPad);
    for (auto* b : {&padded(), &across(), &filtered()})
      if (b->size() < size) b->resize(size);
    std::fill(padded().begin(), padded().begin() + size, T(0));  // borders stay zero from here on
  }

  int64_t group() const { return group_; }

  // Planes [0, count) of x (count <= group()) into y.
  void run(const T* x, T* y, int64_t count) {
    T* pad = padded().data();
    const int64_t phase_rows = hp_ / ay_.down;
    for (int64_t p = 0; p < count; ++p)  // only the interior: the borders are still zero
      for (int64_t phase = 0; phase < ay_.down; ++phase) {
        // Padded rows phase, phase + down, ...: input row r = padded row - pad0.
        const int64_t first = pos_mod(phase - ay_.pad0, ay_.down);
        T* dst = pad + (p * hp_ + phase * phase_rows + (first + ay_.pad0) / ay_.down) * wp_ + ax_.pad0;
        for (int64_t r = first; r < ay_.n_in; r += ay_.down, dst += wp_)
          std::copy(x + (p * ay_.n_in + r) * ax_.n_in, x + (p * ay_.n_in + r + 1) * ax_.n_in, dst);
      }
    // Along x: [count][hp][wq], column j of a row is padded sample down*j.
    x_pass(pad, across().data(), count * hp_ * wq_);
    // Along y: [count][rows_y][wq] (all rows without down-sampling, else the kept ones).
    const int64_t rows_y = ay_.down == 1 ? hp_ : ay_.n_out;
    const int64_t planes_at_once = ay_.down == 1 ? count : 1;  // one flat loop, or one per plane
    for (int64_t p = 0; p < count; p += planes_at_once) {
      const T* src = across().data() + p * hp_ * wq_;
      for (int64_t t = 0; t < ay_.taps; ++t) {
        ptrs_[t] = src + ((t % ay_.down) * phase_rows + t / ay_.down) * wq_;
        w_[t] = f_.y[t];
      }
      multi_axpy(ptrs_.data(), w_.data(), ay_.taps, filtered().data() + p * rows_y * wq_,
                 planes_at_once * rows_y * wq_, false);
    }
    for (int64_t p = 0; p < count; ++p)
      for (int64_t o = 0; o < ay_.n_out; ++o) {
        const T* src = filtered().data() + (p * rows_y + o) * wq_;
        std::copy(src, src + ax_.n_out, y + (p * ay_.n_out + o) * ax_.n_out);
      }
  }

 private:
  static constexpr int64_t kGroupSamples = 1 << 16;  // ~256 KB per buffer (float): stays in L2

  // dst[m] = sum_t fx[t] src[down*m + t] for m < n. With down-sampling the source is first
  // split into its `down` phases (phase c = src[c], src[c + down], ...; in `filtered()`, free
  // until the y pass), so that tap t reads phase t % down shifted by t / down: contiguous runs,
  // one multiply-add loop with the accumulators in registers.
  void x_pass(const T* src, T* __restrict dst, int64_t n) {
    const int64_t d = ax_.down, len = n + (ax_.taps + d - 1) / d;  // phase length incl. slack
    T* phases = filtered().data();
    if (d == 2) {
      split_phases<2>(src, phases, len);
    } else if (d > 1) {
      split_phases<0>(src, phases, len);
    }
    for (int64_t t = 0; t < ax_.taps; ++t) {
      ptrs_[t] = d == 1 ? src + t : phases + (t % d) * len + t / d;
      w_[t] = f_.x[t];
    }
    multi_axpy(ptrs_.data(), w_.data(), ax_.taps, dst, n, false);
  }

  // phases[c * len + m] = src[d * m + c]. A compile-time D (2) vectorises with shuffles; D = 0
  // takes the factor from the axis at run time.
  template <int64_t D>
  void split_phases(const T* src, T* __restrict phases, int64_t len) {
    const int64_t d = D ? D : ax_.down;
    for (int64_t c = 0; c < d; ++c)
      for (int64_t m = 0; m < len; ++m) phases[c * len + m] = src[d * m + c];
  }

  // Per-thread buffers: zero-padded input planes, after the x pass, after the y pass.
  static std::vector<T>& padded() { thread_local std::vector<T> b; return b; }
  static std::vector<T>& across() { thread_local std::vector<T> b; return b; }
  static std::vector<T>& filtered() { thread_local std::vector<T> b; return b; }

  Axis ax_, ay_;
  Filter2d<T> f_;
  int64_t wp_, hp_, wq_, group_;
  std::vector<const T*> ptrs_;
  std::vector<T> w_;
};

}  // namespace

template <typename T>
void upfirdn2d_cpu(const T* x, T* y, int64_t planes, const Axis& ax, const Axis& ay,
                   const Filter2d<T>& f, int threads) {
  const RowPlan rows(ax);
  const ColPlan cols(ay);
  const int64_t in_plane = ax.n_in * ay.n_in, out_plane = ax.n_out * ay.n_out;
  const int64_t work = planes * ay.n_out * ax.n_out * (f.kx + f.ky) + planes * ay.n_in * ax.n_in;
  parallel_for(planes, threads_for(work, threads), [&](int64_t begin, int64_t end) {
    if (FlatPlanes<T>::applies(ax, ay, f)) {
      FlatPlanes<T> flat(ax, ay, f, end - begin);
      for (int64_t p = begin; p < end; p += flat.group())
        flat.run(x + p * in_plane, y + p * out_plane, std::min(flat.group(), end - p));
      return;
    }
    if (f.separable()) {
      SeparablePlanes<T> sep(rows, cols, f);  // per-thread buffers, reused across planes
      for (int64_t p = begin; p < end; ++p) sep.plane(x + p * in_plane, y + p * out_plane);
      return;
    }
    FirStage<T> stage(rows, cols, f);
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      auto source = [&](int64_t s) { return xp + s * ax.n_in; };
      stage.reset();
      for (int64_t o = 0; o < ay.n_out; ++o) stage.row(o, source, T(0), y + p * out_plane + o * ax.n_out);
    }
  });
}

template void upfirdn2d_cpu<float>(const float*, float*, int64_t, const Axis&, const Axis&,
                                   const Filter2d<float>&, int);
template void upfirdn2d_cpu<double>(const double*, double*, int64_t, const Axis&, const Axis&,
                                    const Filter2d<double>&, int);

}  // namespace sgnative
