// Winograd F(4x4, 3x3) transforms for 3x3 convolutions (Lavin & Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks", section 4). A 3x3 correlation of a 6x6 input tile d with a
// filter g gives a 4x4 output tile
//     Y = A^T [ (G g G^T) . (B^T d B) ] A,
// so after transforming every tile (input side) and every filter (weight side), the 36
// element-wise products summed over input channels are 36 independent matrix products
// [O, I] x [I, tiles], which torch runs as one batched matmul (ops/conv2d_winograd.py). That is
// 36 multiplies per 16 outputs instead of 144: the matmul does a quarter of the direct
// convolution's multiply-adds. The transforms below are cheap in comparison; they are vectorised
// across the tiles of a tile row (every array indexed by the tile column `t` is contiguous).
#include "parallel.h"

#include <algorithm>
#include <vector>

#include "kernels.h"

namespace sgnative {

namespace {

// The transform matrices for the interpolation points 0, 1, -1, 2, -2 and infinity (Lavin &
// Gray, F(4x4, 3x3)), written out so that their zeros and shared terms cost nothing:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// Each applies the matrix to 6-vectors whose entries are the arrays in[0..5], elementwise over
// the n tiles of a row (contiguous arrays, so the loops vectorise).
template <typename T>
inline void apply_bt(const T* const (&in)[6], T* const (&out)[6], int64_t n) {
  const T* __restrict d0 = in[0]; const T* __restrict d1 = in[1]; const T* __restrict d2 = in[2];
  const T* __restrict d3 = in[3]; const T* __restrict d4 = in[4]; const T* __restrict d5 = in[5];
  T* __restrict o0 = out[0]; T* __restrict o1 = out[1]; T* __restrict o2 = out[2];
  T* __restrict o3 = out[3]; T* __restrict o4 = out[4]; T* __restrict o5 = out[5];
  for (int64_t t = 0; t < n; ++t) {
    const T a = d4[t] - T(4) * d2[t], b = d3[t] - T(4) * d1[t];  // rows 1, 2
    const T c = d4[t] - d2[t], e = T(2) * (d3[t] - d1[t]);         // rows 3, 4
    o0[t] = T(4) * d0[t] - T(5) * d2[t] + d4[t];
    o1[t] = a + b;
    o2[t] = a - b;
    o3[t] = c + e;
    o4[t] = c - e;
    o5[t] = T(4) * d1[t] - T(5) * d3[t] + d5[t];
  }
}

template <typename T>
inline void apply_at(const T* const (&in)[6], T* const (&out)[4], int64_t n) {
  const T* __restrict m0 = in[0]; const T* __restrict m1 = in[1]; const T* __restrict m2 = in[2];
  const T* __restrict m3 = in[3]; const T* __restrict m4 = in[4]; const T* __restrict m5 = in[5];
  T* __restrict o0 = out[0]; T* __restrict o1 = out[1]; T* __restrict o2 = out[2];
  T* __restrict o3 = out[3];
  for (int64_t t = 0; t < n; ++t) {
    const T p12 = m1[t] + m2[t], d12 = m1[t] - m2[t], p34 = m3[t] + m4[t], d34 = m3[t] - m4[t];
    o0[t] = m0[t] + p12 + p34;
    o1[t] = d12 + T(2) * d34;
    o2[t] = p12 + T(4) * p34;
    o3[t] = d12 + T(8) * d34 + m5[t];
  }
}

// out[l][t] = (d B)[l] of the tiles t of input row iy (zero outside the image), times sc.
template <typename T>
void x_pass(const T* plane, int64_t iy, int64_t h, int64_t w, int64_t pad, T sc, T* padded,
            T* phases, int64_t plen, T* out, int64_t n) {
  if (iy < 0 || iy >= h) {
    std::fill(out, out + 6 * n, T(0));
    return;
  }
  // padded[j] = sc * row[j - pad] (0 outside), j < 4 * plen; then phases[r][q] = padded[4q + r].
  const T* row = plane + iy * w;
  const int64_t len = 4 * plen, lo = std::min(pad, len), hi = std::min(pad + w, len);
  std::fill(padded, padded + lo, T(0));
  for (int64_t j = lo; j < hi; ++j) padded[j] = row[j - pad] * sc;
  std::fill(padded + std::max(hi, lo), padded + len, T(0));
  T* __restrict ph = phases;
  for (int64_t q = 0; q < plen; ++q)
    for (int r = 0; r < 4; ++r) ph[r * plen + q] = padded[4 * q + r];
  const T* const in[6] = {ph, ph + plen, ph + 2 * plen, ph + 3 * plen, ph + 1, ph + plen + 1};
  T* const o[6] = {out, out + n, out + 2 * n, out + 3 * n, out + 4 * n, out + 5 * n};
  apply_bt(in, o, n);
}

}  // namespace

// x [batch][channels][h][w] times scale[batch][channels] (or 1 if null), with `pad` zeros around
// it -> v [36][channels][batch * tiles], tiles = tiles_y * tiles_x: for each of the 36 transform
// positions a [channels, batch * tiles] matrix, the right-hand side of the batched matmul.
//
// Per input row: the tiles' 6 samples 4t + s are phase s % 4 of the zero-padded row shifted by
// s / 4, so one de-interleaving pass gives all six as contiguous arrays; the x pass (d B) of a
// row is kept for the next tile row, which shares two input rows with this one.
template <typename T>
void winograd_input_cpu(const T* x, const T* scale, T* v, int64_t batch, int64_t channels, int64_t h,
                        int64_t w, int64_t pad, int64_t tiles_y, int64_t tiles_x, int threads) {
  const int64_t tiles = tiles_y * tiles_x, n = tiles_x, planes = batch * channels;
  const int64_t row_len = batch * tiles;  // one (position, channel) row of v
  const int64_t plen = n + 1;             // phase length: tile t reads phases at t and t + 1
  parallel_for(planes, threads_for(planes * tiles * 36 * 12, threads), [&](int64_t begin, int64_t end) {
    std::vector<T> padded(4 * plen), phases(4 * plen), rows_x(6 * 6 * n);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t image = p / channels, channel = p % channels;
      const T* xp = x + p * h * w;
      const T sc = scale ? scale[p] : T(1);
      // after_x[r][l]: input row r of the current tile row after the x pass, column l.
      T* after_x[6];
      for (int r = 0; r < 6; ++r) after_x[r] = &rows_x[r * 6 * n];
      for (int64_t ty = 0; ty < tiles_y; ++ty) {
        if (ty > 0) {  // rows 4 and 5 of the previous tile row are rows 0 and 1 of this one
          std::swap(after_x[0], after_x[4]);
          std::swap(after_x[1], after_x[5]);
        }
        for (int r = ty > 0 ? 2 : 0; r < 6; ++r) x_pass(xp, 4 * ty + r - pad, h, w, pad, sc, padded.data(),
                                                       phases.data(), plen, after_x[r], n);
        for (int l = 0; l < 6; ++l) {     // B^T (d B), column l of every tile
          const T* const in[6] = {after_x[0] + l * n, after_x[1] + l * n, after_x[2] + l * n,
                                  after_x[3] + l * n, after_x[4] + l * n, after_x[5] + l * n};
          auto vrow = [&](int k) {
            return v + ((k * 6 + l) * channels + channel) * row_len + image * tiles + ty * n;
          };
          T* const out[6] = {vrow(0), vrow(1), vrow(2), vrow(3), vrow(4), vrow(5)};
          apply_bt(in, out, n);
        }
      }
    }
  });
}

// m [36][channels][batch * tiles] -> y [batch][channels][h][w]: A^T m A per tile, cropped to h x w,
// times scale[batch][channels] (or 1 if null).
template <typename T>
void winograd_output_cpu(const T* m, const T* scale, T* y, int64_t batch, int64_t channels, int64_t h,
                         int64_t w, int64_t tiles_y, int64_t tiles_x, int threads) {
  const int64_t tiles = tiles_y * tiles_x, n = tiles_x, planes = batch * channels;
  const int64_t row_len = batch * tiles;
  parallel_for(planes, threads_for(planes * tiles * 36 * 8, threads), [&](int64_t begin, int64_t end) {
    // cols_y[i][l][t]: after the y pass; out[i][j][t]: output sample (4ty + i, 4t + j).
    std::vector<T> cols_y(24 * n), out(16 * n);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t image = p / channels, channel = p % channels;
      T* yp = y + p * h * w;
      const T sc = scale ? scale[p] : T(1);
      for (int64_t ty = 0; ty < tiles_y; ++ty) {
        for (int l = 0; l < 6; ++l) {     // A^T m, column l of every tile
          auto mrow = [&](int k) {
            return m + ((k * 6 + l) * channels + channel) * row_len + image * tiles + ty * n;
          };
          const T* const in[6] = {mrow(0), mrow(1), mrow(2), mrow(3), mrow(4), mrow(5)};
          T* const o[4] = {&cols_y[(0 * 6 + l) * n], &cols_y[(1 * 6 + l) * n], &cols_y[(2 * 6 + l) * n],
                           &cols_y[(3 * 6 + l) * n]};
          apply_at(in, o, n);
        }
        for (int i = 0; i < 4; ++i) {     // (A^T m) A, row i of every tile
          const int64_t oy = 4 * ty + i;
          if (oy >= h) break;
          const T* const in[6] = {&cols_y[(i * 6 + 0) * n], &cols_y[(i * 6 + 1) * n], &cols_y[(i * 6 + 2) * n],
                            &cols_y[(i * 6 + 3) * n], &cols_y[(i * 6 + 4) * n], &cols_y[(i * 6 + 5) * n]};
          T* const o[4] = {&out[0 * n], &out[1 * n], &out[2 * n], &out[3 * n]};
          apply_at(in, o, n);
          T* row = yp + oy * w;
          const int64_t full = std::min(n, w / 4);  // tiles entirely inside the output row
          for (int64_t t = 0; t < full; ++t)
            for (int j = 0; j < 4; ++j) row[4 * t + j] = out[j * n + t] * sc;
          for (int64_t t = full; t < n; ++t)
            for (int j = 0; j < 4 && 4 * t + j < w; ++j) row[4 * t + j] = out[j * n + t] * sc;
        }
      }
    }
  });
}

template void winograd_input_cpu<float>(const float*, const float*, float*, int64_t, int64_t, int64_t,
                                        int64_t, int64_t, int64_t, int64_t, int);
template void winograd_input_cpu<double>(const double*, const double*, double*, int64_t, int64_t,
                                         int64_t, int64_t, int64_t, int64_t, int64_t, int);
template void winograd_output_cpu<float>(const float*, const float*, float*, int64_t, int64_t, int64_t,
                                         int64_t, int64_t, int64_t, int);
template void winograd_output_cpu<double>(const double*, const double*, double*, int64_t, int64_t,
                                          int64_t, int64_t, int64_t, int64_t, int);

}  // namespace sgnative
