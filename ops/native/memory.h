// Page-size advice for large output buffers.
//
// glibc serves every block of 32 MB or more (its largest mmap threshold) with a fresh mmap(), so
// a large op output arrives as untouched memory: writing it faults in one 4 KB page at a time,
// ~0.3 ms per MB on this class of machine, which for StyleGAN3's 256 px up-sampling stages costs
// more than the filtering itself. On kernels whose transparent huge pages are in "madvise" mode
// (the common default) MADV_HUGEPAGE lets those faults map 2 MB pages instead: filling a fresh
// 184 MB tensor went from 63 ms to 15 ms. Smaller blocks come from the heap and are reused
// without faults (torch_utils/cpu_memory.py), and advising them would split the heap's mapping,
// so they are left alone. The advice is only a hint; where it is unsupported nothing changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/mman.h>

namespace sgnative {

constexpr size_t kHugeAdviceMinBytes = size_t(32) << 20;  // glibc's largest mmap threshold
constexpr uintptr_t kHugePage = uintptr_t(2) << 20;

// Advises the whole 2 MB pages inside [p, p + bytes); call before the buffer is first written.
inline void advise_huge_pages(const void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  if (p == nullptr || bytes < kHugeAdviceMinBytes) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHugePage - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace sgnative
