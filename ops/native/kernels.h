// Entry points of the native CPU kernels (plain pointers; bindings.cpp owns the tensors).
#pragma once

#include <cstdint>

#include "fir.h"

// Below, `threads` is the number of threads to use (the caller passes torch.get_num_threads()).

namespace sgnative {

// y[planes][ay.n_out][ax.n_out] = upfirdn2d of x[planes][ay.n_in][ax.n_in] with filter f.
template <typename T>
void upfirdn2d_cpu(const T* x, T* y, int64_t planes, const Axis& ax, const Axis& ay,
                   const Filter2d<T>& f, int threads);

// Fused filtered leaky ReLU of x[n][c][uy.n_in][ux.n_in] (see filtered_lrelu.cpp).
// b: [c] or nullptr. mask: [n][c][uy.n_out][ux.n_out] or nullptr. clamp < 0 means no clamp.
template <typename T>
void filtered_lrelu_cpu(const T* x, const T* b, T* y, uint8_t* mask, int64_t n, int64_t c,
                        const Axis& ux, const Axis& uy, const Axis& dx, const Axis& dy,
                        const Filter2d<T>& fu, const Filter2d<T>& fd, T gain, T slope, T clamp,
                        int threads);

// dx[n][c][ay2.n_out][ax2.n_out] = stage2( {0, gain, gain*slope}[mask] * stage1(dy) ): the input
// gradient of filtered_lrelu, where stage1 (f1, axes ax1/ay1) is the adjoint of the down stage
// and stage2 (f2, ax2/ay2) the adjoint of the up stage; mask as saved by filtered_lrelu_cpu.
template <typename T>
void filtered_lrelu_grad_cpu(const T* dy, const uint8_t* mask, T* dx, int64_t n, int64_t c,
                             const Axis& ax1, const Axis& ay1, const Axis& ax2, const Axis& ay2,
                             const Filter2d<T>& f1, const Filter2d<T>& f2, T gain, T slope,
                             int threads);

// out = g * {0, gain, gain*slope}[mask]: the derivative of filtered_lrelu's activation stage.
template <typename T>
void mask_scale_cpu(const T* g, const uint8_t* mask, T* out, int64_t numel, T gain, T slope,
                    int threads);

// Winograd F(4x4, 3x3) transforms (winograd.cpp): x [batch][channels][h][w] zero-padded by `pad`
// -> v [36][channels][batch * tiles_y * tiles_x], and m [36][channels][batch * tiles] ->
// y [batch][channels][h][w].
// Optional per-plane factors scale[batch][channels] (null: none) multiply x, respectively y.
template <typename T>
void winograd_input_cpu(const T* x, const T* scale, T* v, int64_t batch, int64_t channels, int64_t h,
                        int64_t w, int64_t pad, int64_t tiles_y, int64_t tiles_x, int threads);
template <typename T>
void winograd_output_cpu(const T* m, const T* scale, T* y, int64_t batch, int64_t channels, int64_t h,
                         int64_t w, int64_t tiles_y, int64_t tiles_x, int threads);

enum Act { kLinear, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish };

// x viewed as [outer][channels][inner], bias b[channels] (or nullptr) along the middle axis.
// order 0: y = clamp(act(x + b) * gain); order 1/2: y = g * gain * act'(x+b) (act'') * pass,
// where pass = 0 where the clamp was active. clamp < 0 means no clamp.
template <typename T>
void bias_act_cpu(const T* x, const T* b, const T* g, T* y, int64_t outer, int64_t channels,
                  int64_t inner, Act act, T alpha, T gain, T clamp, int order, int threads);

}  // namespace sgnative
