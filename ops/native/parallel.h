// A minimal OpenMP parallel loop. The thread count comes from Python (torch.get_num_threads()),
// so torch.set_num_threads() governs the native ops exactly as it governs torch's own kernels.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace sgnative {

// Below this many multiply-adds a job runs on one thread: waking a second OpenMP thread costs
// more than it saves, and on an oversubscribed machine a descheduled helper thread can stall
// the whole call for a scheduler time slice (milliseconds).
constexpr int64_t kMinParallelWork = int64_t(1) << 20;

inline int threads_for(int64_t work, int threads) { return work < kMinParallelWork ? 1 : threads; }

// Calls f(begin, end) on contiguous chunks covering [0, n). Threads take chunks from a shared
// counter (about 8 per thread) instead of one fixed share each, so that when the OS deschedules
// one thread (the machine is shared) the others finish its work instead of waiting for it.
template <class F>
void parallel_for(int64_t n, int threads, const F& f) {
  if (n <= 0) return;
#ifdef _OPENMP
  const int nt = static_cast<int>(std::min<int64_t>(std::max(threads, 1), n));
  if (nt > 1) {
    const int64_t chunk = std::max<int64_t>(1, n / (int64_t(nt) * 8));
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::atomic_flag failed = ATOMIC_FLAG_INIT;
#pragma omp parallel num_threads(nt)
    {
      try {
        for (int64_t begin; (begin = next.fetch_add(chunk)) < n;) f(begin, std::min(n, begin + chunk));
      } catch (...) {  // exceptions must not leave an OpenMP region
        if (!failed.test_and_set()) error = std::current_exception();
        next.store(n);
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  f(0, n);
}

}  // namespace sgnative
