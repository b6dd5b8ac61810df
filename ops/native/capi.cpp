// Plain C entry points, called from Python through ctypes (see functions.py).
//
// Why not pybind11/torch bindings: including <torch/extension.h> makes one translation unit take
// over a minute to compile on a 2-core machine; this library needs no torch headers at all, so
// the first build takes seconds. Python owns the tensors (allocation, dtype, contiguity checks);
// these functions recheck the geometry and return a status code instead of crashing:
// 0 = ok, 1 = inconsistent arguments, 2 = C++ exception (e.g. out of memory).
// upfirdn2d takes its integer geometry as one int64 array: ctypes converts each argument
// separately (~0.15 us each), and 20 scalar arguments cost a quarter of a small call.
#include <exception>

#include "kernels.h"
#include "memory.h"

using sgnative::Axis;
using sgnative::Filter2d;

namespace {

bool make_axis(int64_t n, int64_t up, int64_t down, int64_t p0, int64_t p1, int64_t taps,
               int64_t expected_out, Axis* axis) {
  if (n < 1 || up < 1 || down < 1 || taps < 1) return false;
  const int64_t out = sgnative::upfirdn_out_len(n, up, down, p0, p1, taps);
  *axis = {n, out, up, down, p0, taps};
  return out >= 1 && out == expected_out;
}

// fy == nullptr: fx is a 2-D [ky][kx] filter; otherwise separable kx / ky taps.
template <typename T>
Filter2d<T> make_filter(const T* fx, int64_t kx, const T* fy, int64_t ky) {
  Filter2d<T> f;
  f.x = fx;
  f.y = fy;
  f.kx = kx;
  f.ky = ky;
  return f;
}

template <class F>
int guarded(const F& f) {
  try {
    return f() ? 0 : 1;
  } catch (...) {
    return 2;
  }
}

}  // namespace

#define SG_DEFINE(T, SUFFIX)                                                                      \
  /* g: planes, h, w, kx, ky, upx, upy, downx, downy, px0, px1, py0, py1, hout, wout */      \
  extern "C" int sg_upfirdn2d_##SUFFIX(const T* x, T* y, const T* fx, const T* fy,               \
                                       const int64_t* g, int threads) {                          \
    return guarded([&] {                                                                          \
      Axis ax, ay;                                                                                \
      if (!make_axis(g[2], g[5], g[7], g[9], g[10], g[3], g[14], &ax) ||                          \
          !make_axis(g[1], g[6], g[8], g[11], g[12], g[4], g[13], &ay))                           \
        return false;                                                                             \
      sgnative::advise_huge_pages(y, sizeof(T) * g[0] * ay.n_out * ax.n_out);                     \
      sgnative::upfirdn2d_cpu<T>(x, y, g[0], ax, ay, make_filter(fx, g[3], fy, g[4]), threads);  \
      return true;                                                                                \
    });                                                                                           \
  }                                                                                               \
  extern "C" int sg_filtered_lrelu_##SUFFIX(                                                      \
      const T* x, const T* b, T* y, uint8_t* mask, int64_t n, int64_t c, int64_t h, int64_t w,   \
      const T* fux, int64_t kux, const T* fuy, int64_t kuy, const T* fdx, int64_t kdx,           \
      const T* fdy, int64_t kdy, int64_t up, int64_t down, int64_t px0, int64_t px1,             \
      int64_t py0, int64_t py1, double gain, double slope, double clamp, int64_t hmid,           \
      int64_t wmid, int64_t hout, int64_t wout, int threads) {                                    \
    return guarded([&] {                                                                          \
      Axis ux, uy, dx, dy;                                                                        \
      if (!make_axis(w, up, 1, px0, px1, kux, wmid, &ux) ||                                       \
          !make_axis(h, up, 1, py0, py1, kuy, hmid, &uy) ||                                       \
          !make_axis(wmid, 1, down, 0, 0, kdx, wout, &dx) ||                                      \
          !make_axis(hmid, 1, down, 0, 0, kdy, hout, &dy))                                        \
        return false;                                                                             \
      sgnative::advise_huge_pages(y, sizeof(T) * n * c * dy.n_out * dx.n_out);                    \
      sgnative::advise_huge_pages(mask, size_t(n) * c * uy.n_out * ux.n_out);                     \
      sgnative::filtered_lrelu_cpu<T>(x, b, y, mask, n, c, ux, uy, dx, dy,                        \
                                      make_filter(fux, kux, fuy, kuy),                            \
                                      make_filter(fdx, kdx, fdy, kdy), T(gain), T(slope),        \
                                      T(clamp), threads);                                         \
      return true;                                                                                \
    });                                                                                           \
  }                                                                                               \
  extern "C" int sg_filtered_lrelu_grad_##SUFFIX(                                                 \
      const T* dy, const uint8_t* mask, T* dx, int64_t n, int64_t c, int64_t h, int64_t w,       \
      const T* f1x, int64_t k1x, const T* f1y, int64_t k1y, int64_t up1, int64_t p1x0,          \
      int64_t p1x1, int64_t p1y0, int64_t p1y1, int64_t hmid, int64_t wmid,                     \
      const T* f2x, int64_t k2x, const T* f2y, int64_t k2y, int64_t down2, int64_t p2x0,        \
      int64_t p2x1, int64_t p2y0, int64_t p2y1, int64_t hout, int64_t wout, double gain,        \
      double slope, int threads) {                                                                \
    return guarded([&] {                                                                          \
      Axis ax1, ay1, ax2, ay2;                                                                    \
      if (!make_axis(w, up1, 1, p1x0, p1x1, k1x, wmid, &ax1) ||                                   \
          !make_axis(h, up1, 1, p1y0, p1y1, k1y, hmid, &ay1) ||                                   \
          !make_axis(wmid, 1, down2, p2x0, p2x1, k2x, wout, &ax2) ||                              \
          !make_axis(hmid, 1, down2, p2y0, p2y1, k2y, hout, &ay2))                                \
        return false;                                                                             \
      sgnative::advise_huge_pages(dx, sizeof(T) * n * c * ay2.n_out * ax2.n_out);                 \
      sgnative::filtered_lrelu_grad_cpu<T>(dy, mask, dx, n, c, ax1, ay1, ax2, ay2,                \
                                           make_filter(f1x, k1x, f1y, k1y),                       \
                                           make_filter(f2x, k2x, f2y, k2y), T(gain), T(slope),   \
                                           threads);                                              \
      return true;                                                                                \
    });                                                                                           \
  }                                                                                               \
  extern "C" int sg_mask_scale_##SUFFIX(const T* g, const uint8_t* mask, T* out, int64_t numel,  \
                                        double gain, double slope, int threads) {                 \
    return guarded([&] {                                                                          \
      sgnative::advise_huge_pages(out, sizeof(T) * numel);                                        \
      sgnative::mask_scale_cpu<T>(g, mask, out, numel, T(gain), T(slope), threads);               \
      return true;                                                                                \
    });                                                                                           \
  }                                                                                               \
  /* g: batch, channels, h, w, pad, tiles_y, tiles_x (x: [batch][channels][h][w]) */             \
  extern "C" int sg_winograd_input_##SUFFIX(const T* x, const T* scale, T* v, const int64_t* g,  \
                                            int threads) {                                        \
    return guarded([&] {                                                                          \
      if (g[0] < 0 || g[1] < 0 || g[2] < 1 || g[3] < 1 || g[4] < 0 ||                            \
          g[5] * 4 + 2 < g[2] + 2 * g[4] || g[6] * 4 + 2 < g[3] + 2 * g[4])                       \
        return false;                                                                             \
      sgnative::advise_huge_pages(v, sizeof(T) * 36 * g[0] * g[1] * g[5] * g[6]);                 \
      sgnative::winograd_input_cpu<T>(x, scale, v, g[0], g[1], g[2], g[3], g[4], g[5], g[6],      \
                                      threads);                                                   \
      return true;                                                                                \
    });                                                                                           \
  }                                                                                               \
  /* g: batch, channels, h, w, tiles_y, tiles_x (y: [batch][channels][h][w]) */                   \
  extern "C" int sg_winograd_output_##SUFFIX(const T* m, const T* scale, T* y, const int64_t* g, \
                                             int threads) {                                       \
    return guarded([&] {                                                                          \
      if (g[0] < 0 || g[1] < 0 || g[2] < 1 || g[3] < 1 || g[4] * 4 < g[2] || g[5] * 4 < g[3])    \
        return false;                                                                             \
      sgnative::advise_huge_pages(y, sizeof(T) * g[0] * g[1] * g[2] * g[3]);                      \
      sgnative::winograd_output_cpu<T>(m, scale, y, g[0], g[1], g[2], g[3], g[4], g[5], threads); \
      return true;                                                                                \
    });                                                                                           \
  }                                                                                               \
  extern "C" int sg_bias_act_##SUFFIX(const T* x, const T* b, const T* g, T* y, int64_t outer,   \
                                      int64_t channels, int64_t inner, int act, double alpha,    \
                                      double gain, double clamp, int order, int threads) {       \
    return guarded([&] {                                                                          \
      if (act < sgnative::kLinear || act > sgnative::kSwish || order < 0 || order > 2 ||         \
          (order > 0 && g == nullptr))                                                            \
        return false;                                                                             \
      sgnative::advise_huge_pages(y, sizeof(T) * outer * channels * inner);                       \
      sgnative::bias_act_cpu<T>(x, b, g, y, outer, channels, inner,                               \
                                static_cast<sgnative::Act>(act), T(alpha), T(gain), T(clamp),    \
                                order, threads);                                                  \
      return true;                                                                                \
    });                                                                                           \
  }

SG_DEFINE(float, f32)
SG_DEFINE(double, f64)

// For buffers Python allocates and torch writes (e.g. a matmul's `out`); see memory.h.
extern "C" void sg_advise_huge_pages(void* p, int64_t bytes) {
  sgnative::advise_huge_pages(p, static_cast<size_t>(bytes));
}

// Bumped whenever a signature above changes; functions.py refuses a library of another version.
extern "C" int sg_abi_version() { return 7; }
