// upfirdn2d on CPU: polyphase, separable filters as two passes, rows computed on demand.
#include "parallel.h"

#include "fir_stage.h"
#include "kernels.h"

namespace sgnative {

template <typename T>
void upfirdn2d_cpu(const T* x, T* y, int64_t planes, const Axis& ax, const Axis& ay,
                   const Filter2d<T>& f, int threads) {
  const RowPlan rows(ax);
  const ColPlan cols(ay);
  const int64_t in_plane = ax.n_in * ay.n_in, out_plane = ax.n_out * ay.n_out;
  const int64_t work = planes * ay.n_out * ax.n_out * (f.kx + f.ky) + planes * ay.n_in * ax.n_in;
  parallel_for(planes, threads_for(work, threads), [&](int64_t begin, int64_t end) {
    FirStage<T> stage(rows, cols, f);  // per-thread scratch, reused across planes
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
