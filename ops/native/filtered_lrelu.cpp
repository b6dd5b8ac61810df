// Fused filtered leaky ReLU (StyleGAN3, Karras et al. 2021, section 3.2 / figure 4):
//   y = down_fd( clamp( lrelu( up_fu(x + b) ) * gain ) )
// computed row by row per plane. The up stage yields one row of the upsampled signal at a
// time, the activation is applied to that row, and the down stage consumes it at once
// (separable fd: filtered horizontally and kept in a ring of fd-taps rows), so the upsampled
// intermediate never exists in full: per plane only O(taps) rows are alive.
// The input gradient, dx = up^T( act'(mask) * down^T(dy) ), has the same shape (two linear
// upfirdn stages with a row-wise scale between them) and runs through the same fused loop.
#include "parallel.h"

#include <cmath>

#include "fir_stage.h"
#include "kernels.h"

namespace sgnative {

namespace {

// Activation of one upsampled row, in place. mask codes (for the backward pass, when wanted):
// 0 = clamped (no gradient), 1 = positive branch (gain), 2 = negative branch (gain * slope).
// Branch-free loops, one per variant, so that each one vectorises.
template <typename T>
void activate_row(T* __restrict v, uint8_t* __restrict mask, int64_t n, T gain, T slope, T clamp) {
  const bool has_clamp = clamp >= T(0);
  if (mask) {
    for (int64_t j = 0; j < n; ++j) {
      const T u = v[j];
      const T a = (u > T(0) ? u : u * slope) * gain;
      const bool inside = !has_clamp || (a <= clamp && a >= -clamp);
      mask[j] = inside ? (u > T(0) ? 1 : 2) : 0;
    }
  }
  if (has_clamp) {
    for (int64_t j = 0; j < n; ++j) {
      const T u = v[j];
      const T a = (u > T(0) ? u : u * slope) * gain;
      v[j] = std::min(std::max(a, -clamp), clamp);
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      const T u = v[j];
      v[j] = (u > T(0) ? u : u * slope) * gain;
    }
  }
}

}  // namespace

// Two upfirdn2d stages with a row-wise operation between them, per plane:
//   out = stage2( row_op( stage1(x + b) ) ).
// stage1 yields one row of its output at a time, row_op(plane, row, values, width) edits it in
// place, and stage2 consumes it at once (separable filters: filtered horizontally into a ring
// of taps rows), so stage1's output never exists in full. The forward pass runs
// up -> activation -> down; the backward pass runs down^T -> activation derivative -> up^T.
template <typename T, class RowOp>
void fused_stages(const T* x, const T* b, T* y, int64_t n, int64_t c, const Axis& ax1,
                  const Axis& ay1, const Axis& ax2, const Axis& ay2, const Filter2d<T>& f1,
                  const Filter2d<T>& f2, const RowOp& row_op, int threads) {
  const RowPlan rows1(ax1), rows2(ax2);
  const ColPlan cols1(ay1), cols2(ay2);
  const int64_t in_plane = ax1.n_in * ay1.n_in, mid_plane = ax1.n_out * ay1.n_out;
  const int64_t out_plane = ax2.n_out * ay2.n_out;
  const int64_t work = n * c * (mid_plane * (f1.kx + f1.ky + 4) + out_plane * (f2.kx + f2.ky));
  parallel_for(n * c, threads_for(work, threads), [&](int64_t begin, int64_t end) {
    FirStage<T> first(rows1, cols1, f1), second(rows2, cols2, f2);
    std::vector<T> mid_row(ax1.n_out);
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      const T bias = b ? b[p % c] : T(0);
      auto input = [&](int64_t s) { return xp + s * ax1.n_in; };
      // Row r of stage 1's output after row_op; computed exactly once, when first needed.
      auto middle = [&](int64_t r) -> const T* {
        first.row(r, input, bias, mid_row.data());
        row_op(p, r, mid_row.data(), ax1.n_out);
        return mid_row.data();
      };
      first.reset();
      second.reset();
      T* yp = y + p * out_plane;
      for (int64_t o = 0; o < ay2.n_out; ++o) second.row(o, middle, T(0), yp + o * ax2.n_out);
    }
  });
}

template <typename T>
void filtered_lrelu_cpu(const T* x, const T* b, T* y, uint8_t* mask, int64_t n, int64_t c,
                        const Axis& ux, const Axis& uy, const Axis& dx, const Axis& dy,
                        const Filter2d<T>& fu, const Filter2d<T>& fd, T gain, T slope, T clamp,
                        int threads) {
  const int64_t mid_plane = ux.n_out * uy.n_out;
  if (mask) std::fill(mask, mask + n * c * mid_plane, uint8_t(0));  // rows never needed stay 0
  auto activate = [&](int64_t p, int64_t r, T* row, int64_t width) {
    activate_row(row, mask ? mask + p * mid_plane + r * width : nullptr, width, gain, slope, clamp);
  };
  fused_stages(x, b, y, n, c, ux, uy, dx, dy, fu, fd, activate, threads);
}

template <typename T>
void filtered_lrelu_grad_cpu(const T* dy, const uint8_t* mask, T* dx, int64_t n, int64_t c,
                             const Axis& ax1, const Axis& ay1, const Axis& ax2, const Axis& ay2,
                             const Filter2d<T>& f1, const Filter2d<T>& f2, T gain, T slope,
                             int threads) {
  const int64_t mid_plane = ax1.n_out * ay1.n_out;
  const T lut[3] = {T(0), gain, gain * slope};
  // The activation's derivative is diagonal: scale each sample of the row by its mask code.
  auto derivative = [&](int64_t p, int64_t r, T* __restrict row, int64_t width) {
    const uint8_t* __restrict m = mask + p * mid_plane + r * width;
    for (int64_t j = 0; j < width; ++j) row[j] *= lut[m[j]];
  };
  fused_stages(dy, static_cast<const T*>(nullptr), dx, n, c, ax1, ay1, ax2, ay2, f1, f2,
               derivative, threads);
}

template <typename T>
void mask_scale_cpu(const T* g, const uint8_t* mask, T* out, int64_t numel, T gain, T slope,
                    int threads) {
  const T lut[3] = {T(0), gain, gain * slope};
  parallel_for(numel, threads_for(numel * 4, threads), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = g[i] * lut[mask[i]];
  });
}

#define SG_INSTANTIATE(T)                                                                     \
  template void filtered_lrelu_cpu<T>(const T*, const T*, T*, uint8_t*, int64_t, int64_t,    \
                                      const Axis&, const Axis&, const Axis&, const Axis&,     \
                                      const Filter2d<T>&, const Filter2d<T>&, T, T, T, int);  \
  template void filtered_lrelu_grad_cpu<T>(const T*, const uint8_t*, T*, int64_t, int64_t,  \
                                           const Axis&, const Axis&, const Axis&, const Axis&, \
                                           const Filter2d<T>&, const Filter2d<T>&, T, T, int);\
  template void mask_scale_cpu<T>(const T*, const uint8_t*, T*, int64_t, T, T, int);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace sgnative
