// Fused filtered leaky ReLU (StyleGAN3, Karras et al. 2021, section 3.2 / figure 4):
//   y = down_fd( clamp( lrelu( up_fu(x + b) ) * gain ) )
// computed row by row per plane. The up stage yields one row of the upsampled signal at a
// time, the activation is applied to that row, and the down stage consumes it at once
// (separable fd: filtered horizontally and kept in a ring of fd-taps rows), so the upsampled
// intermediate never exists in full: per plane only O(taps) rows are alive.
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

template <typename T>
void filtered_lrelu_cpu(const T* x, const T* b, T* y, uint8_t* mask, int64_t n, int64_t c,
                        const Axis& ux, const Axis& uy, const Axis& dx, const Axis& dy,
                        const Filter2d<T>& fu, const Filter2d<T>& fd, T gain, T slope, T clamp,
                        int threads) {
  const RowPlan up_rows(ux), down_rows(dx);
  const ColPlan up_cols(uy), down_cols(dy);
  const int64_t in_plane = ux.n_in * uy.n_in, mid_plane = ux.n_out * uy.n_out;
  const int64_t out_plane = dx.n_out * dy.n_out;
  if (mask) std::fill(mask, mask + n * c * mid_plane, uint8_t(0));  // rows never needed stay 0
  const int64_t work = n * c * (mid_plane * (fu.kx + fu.ky + 4) + out_plane * (fd.kx + fd.ky));
  parallel_for(n * c, threads_for(work, threads), [&](int64_t begin, int64_t end) {
    FirStage<T> up(up_rows, up_cols, fu), down(down_rows, down_cols, fd);
    std::vector<T> act_row(ux.n_out);
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      const T bias = b ? b[p % c] : T(0);
      uint8_t* mp = mask ? mask + p * mid_plane : nullptr;
      auto input = [&](int64_t s) { return xp + s * ux.n_in; };
      // Row r of the activated, upsampled signal; computed exactly once, when first needed.
      auto activated = [&](int64_t r) -> const T* {
        up.row(r, input, bias, act_row.data());
        activate_row(act_row.data(), mp ? mp + r * ux.n_out : nullptr, ux.n_out, gain, slope, clamp);
        return act_row.data();
      };
      up.reset();
      down.reset();
      T* yp = y + p * out_plane;
      for (int64_t o = 0; o < dy.n_out; ++o) down.row(o, activated, T(0), yp + o * dx.n_out);
    }
  });
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
  template void mask_scale_cpu<T>(const T*, const uint8_t*, T*, int64_t, T, T, int);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace sgnative
