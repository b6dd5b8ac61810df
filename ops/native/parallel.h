// A small parallel loop over image planes. The thread count comes from Python
// (torch.get_num_threads()), so torch.set_num_threads() governs the native ops as it governs
// torch's own kernels.
//
// Why not an OpenMP parallel region: it ends with a barrier that waits for every thread, and on
// a shared, oversubscribed machine a helper thread the OS has not scheduled yet stalls each
// call for a scheduler time slice (we measured 10-16 ms per call on a 2-core machine with other
// jobs running). Here helpers are plain threads that claim chunks from a shared counter; the
// caller works too and waits only for chunks a helper has actually claimed. A helper that
// wakes late finds no work left and goes back to sleep without touching the caller's data.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>

namespace sgnative {

// Below this many multiply-adds (~30 us of one core) a job runs on the calling thread alone:
// waking a helper costs more than it saves (2M kept StyleGAN2's [512, 32, 32] 4-tap
// down-sampling on one thread, where two are 1.3x faster).
constexpr int64_t kMinParallelWork = int64_t(1) << 19;

inline int threads_for(int64_t work, int threads) { return work < kMinParallelWork ? 1 : threads; }

namespace detail {

// Shared by the caller and its helpers; helpers keep it alive after the caller returned.
struct ChunkQueue {
  int64_t n = 0, chunk = 1, chunks = 0;
  std::atomic<int64_t> next{0}, done{0};
  const std::function<void(int64_t, int64_t)>* body = nullptr;  // valid while done < chunks
  std::mutex mutex;  // guards error; with finished, wakes the caller
  std::condition_variable finished;
  std::exception_ptr error;

  // Claims and runs chunks until none is left. Touches `body` only for a claimed chunk, i.e.
  // while the caller is still waiting for it.
  void work() {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      try {
        const int64_t begin = c * chunk;
        (*body)(begin, std::min(n, begin + chunk));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }

  // Blocks (sleeping, so that a helper sharing this core can run) until every chunk is done.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [this] { return done.load(std::memory_order_acquire) >= chunks; });
  }
};

}  // namespace detail

// Helper threads that live as long as the process and sleep between jobs: starting a thread per
// call cost ~30-100 us plus system time, which made small jobs run single-threaded. Several
// callers (e.g. a render thread and the UI thread) may post jobs at once; a helper takes the
// newest one, and every caller still finishes whatever chunks nobody claimed, so a job never
// waits for a busy or descheduled helper. After fork() the child has no helpers: its callers
// then simply run every chunk themselves.
class HelperPool {
 public:
  static HelperPool& get() { return *instance(); }

  // Offers `queue` to up to `helpers` sleeping helpers (starting more if fewer exist).
  void post(const std::shared_ptr<detail::ChunkQueue>& queue, int helpers) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = queue;
      ++generation_;
      for (int t = started_; t < helpers; ++t) {
        try {
          std::thread([this] { serve(); }).detach();
          ++started_;
        } catch (...) {  // no more threads: the callers do the work
          break;
        }
      }
    }
    wake_.notify_all();
  }

 private:
  // Never destroyed: helpers outlive main(). A forked child (e.g. a DataLoader worker) gets a
  // fresh, empty pool: the parent's helpers do not exist there and its mutex may be held.
  static HelperPool*& instance() {
    static HelperPool* pool = [] {
      pthread_atfork(nullptr, nullptr, [] { instance() = new HelperPool(); });
      return new HelperPool();
    }();
    return pool;
  }

  void serve() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<detail::ChunkQueue> queue;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        queue = job_;
      }
      if (queue) queue->work();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<detail::ChunkQueue> job_;  // the newest job (possibly finished already)
  uint64_t generation_ = 0;
  int started_ = 0;
};

// Calls f(begin, end) on contiguous chunks covering [0, n), on up to `threads` threads.
template <class F>
void parallel_for(int64_t n, int threads, const F& f) {
  if (n <= 0) return;
  const int64_t nt = std::min<int64_t>(std::max(threads, 1), n);
  if (nt <= 1) {
    f(0, n);
    return;
  }
  const std::function<void(int64_t, int64_t)> body = [&f](int64_t b, int64_t e) { f(b, e); };
  auto queue = std::make_shared<detail::ChunkQueue>();
  queue->n = n;
  queue->chunk = std::max<int64_t>(1, n / (nt * 8));
  queue->chunks = (n + queue->chunk - 1) / queue->chunk;
  queue->body = &body;
  HelperPool::get().post(queue, static_cast<int>(nt - 1));
  queue->work();
  queue->wait();
  if (queue->error) std::rethrow_exception(queue->error);
}

}  // namespace sgnative
