// Fused bias + activation + gain + clamp, and its first and second derivatives.
#include "parallel.h"

#include <cmath>

#include "kernels.h"

namespace sgnative {

namespace {

// SELU constants (Klambauer et al. 2017, eq. 2), as torch.nn.functional.selu.
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSoftplusThreshold = 20.0;  // torch softplus: linear above this (beta = 1)

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

// Value (D = 0), first (D = 1) and second (D = 2) derivative of each activation.
template <Act A, int D, typename T>
inline T act_eval(T x, T alpha) {
  if constexpr (A == kLinear) return D == 0 ? x : (D == 1 ? T(1) : T(0));
  if constexpr (A == kRelu) return D == 0 ? (x > T(0) ? x : T(0)) : (D == 1 ? T(x > T(0)) : T(0));
  if constexpr (A == kLrelu) return D == 0 ? (x > T(0) ? x : x * alpha) : (D == 1 ? (x > T(0) ? T(1) : alpha) : T(0));
  if constexpr (A == kTanh) {
    const T t = std::tanh(x);
    return D == 0 ? t : (D == 1 ? T(1) - t * t : T(-2) * t * (T(1) - t * t));
  }
  if constexpr (A == kSigmoid) {
    const T s = sigmoid(x);
    return D == 0 ? s : (D == 1 ? s * (T(1) - s) : s * (T(1) - s) * (T(1) - T(2) * s));
  }
  if constexpr (A == kElu) {  // alpha of elu is fixed to 1 (the reference ignores `alpha`)
    if (x > T(0)) return D == 0 ? x : (D == 1 ? T(1) : T(0));
    return D == 0 ? std::expm1(x) : std::exp(x);
  }
  if constexpr (A == kSelu) {
    const T scale = T(kSeluScale), a = T(kSeluAlpha);
    if (x > T(0)) return D == 0 ? scale * x : (D == 1 ? scale : T(0));
    return D == 0 ? scale * a * std::expm1(x) : scale * a * std::exp(x);
  }
  if constexpr (A == kSoftplus) {
    if (x > T(kSoftplusThreshold)) return D == 0 ? x : (D == 1 ? T(1) : T(0));
    if constexpr (D == 0) return std::log1p(std::exp(x));
    const T s = sigmoid(x);
    return D == 1 ? s : s * (T(1) - s);
  }
  if constexpr (A == kSwish) {  // x * sigmoid(x)
    const T s = sigmoid(x);
    if constexpr (D == 0) return x * s;
    if constexpr (D == 1) return s + x * s * (T(1) - s);
    return s * (T(1) - s) * (T(2) + x * (T(1) - T(2) * s));
  }
  return T(0);
}

template <Act A, int ORDER, typename T>
void run(const T* x, const T* b, const T* g, T* y, int64_t outer, int64_t channels, int64_t inner,
         T alpha, T gain, T clamp, int threads) {
  const bool has_clamp = clamp >= T(0);
  const int64_t rows = outer * channels;
  // The piecewise-linear activations are a few instructions per element: memory bound, and one
  // thread already streams at memory speed. Helper threads only added start-up cost (measured:
  // [1, 256, 128, 128] lrelu took 8.3 ms on 2 threads vs 0.7 ms on one), so they stay serial.
  constexpr bool kMemoryBound = A == kLinear || A == kRelu || A == kLrelu;
  const int nt = kMemoryBound ? 1 : threads_for(rows * inner * 4, threads);
  parallel_for(rows, nt, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const T bias = b ? b[row % channels] : T(0);
      const T* __restrict xr = x + row * inner;
      T* __restrict yr = y + row * inner;
      const T* __restrict gr = g ? g + row * inner : nullptr;
      for (int64_t i = 0; i < inner; ++i) {
        const T v = xr[i] + bias;
        const T a = act_eval<A, 0>(v, alpha) * gain;
        if constexpr (ORDER == 0) {
          yr[i] = has_clamp ? std::min(std::max(a, -clamp), clamp) : a;
        } else {
          // torch.clamp passes the gradient where -clamp <= a <= clamp.
          const bool pass = !has_clamp || std::abs(a) <= clamp;
          yr[i] = pass ? gr[i] * gain * act_eval<A, ORDER>(v, alpha) : T(0);
        }
      }
    }
  });
}

template <Act A, typename T>
void run_order(const T* x, const T* b, const T* g, T* y, int64_t outer, int64_t channels,
               int64_t inner, T alpha, T gain, T clamp, int order, int threads) {
  if (order == 0) return run<A, 0>(x, b, g, y, outer, channels, inner, alpha, gain, clamp, threads);
  if (order == 1) return run<A, 1>(x, b, g, y, outer, channels, inner, alpha, gain, clamp, threads);
  return run<A, 2>(x, b, g, y, outer, channels, inner, alpha, gain, clamp, threads);
}

}  // namespace

template <typename T>
void bias_act_cpu(const T* x, const T* b, const T* g, T* y, int64_t outer, int64_t channels,
                  int64_t inner, Act act, T alpha, T gain, T clamp, int order, int threads) {
#define SG_CASE(A) \
  case A: return run_order<A, T>(x, b, g, y, outer, channels, inner, alpha, gain, clamp, order, threads);
  switch (act) {
    SG_CASE(kLinear) SG_CASE(kRelu) SG_CASE(kLrelu) SG_CASE(kTanh) SG_CASE(kSigmoid)
    SG_CASE(kElu) SG_CASE(kSelu) SG_CASE(kSoftplus) SG_CASE(kSwish)
  }
#undef SG_CASE
  throw std::invalid_argument("unknown activation code");
}

template void bias_act_cpu<float>(const float*, const float*, const float*, float*, int64_t,
                                  int64_t, int64_t, Act, float, float, float, int, int);
template void bias_act_cpu<double>(const double*, const double*, const double*, double*, int64_t,
                                   int64_t, int64_t, Act, double, double, double, int, int);

}  // namespace sgnative
