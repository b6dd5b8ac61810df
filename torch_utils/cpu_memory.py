"""Let glibc keep freed memory for reuse instead of handing it back to the OS after every op.

A generator frame or a training step allocates and frees the same tensor sizes over and over.
By default glibc returns each freed block above its mmap threshold (128 KB to start with) to
the OS and trims the heap top beyond 128 KB, so the next allocation of the same size faults in
fresh zero-filled pages: ~2,000 page faults per frame of the bundled 64x64 StyleGAN3-T model,
about a fifth of its CPU time (docs/ops-native.md, "Memory allocation"). Fixing both thresholds
(`mallopt`) makes malloc reuse freed blocks, much as torch's caching allocator does on CUDA.
Blocks above 32 MB (glibc's largest mmap threshold) still come from and go back to the OS.

Our command-line tools call keep_freed_memory() at start-up. It also sets the matching
MALLOC_*_ environment variables, which glibc reads when a process starts, so that processes
started from this one (the visualizer's render worker, training processes, data workers) get
the same setting. STYLEGAN_MALLOC_TUNING=0 turns it off; MALLOC_* variables the user has set
already are respected (the call then changes nothing).
"""

import ctypes
import ctypes.util
import os
import platform

MMAP_THRESHOLD = 32 * 1024 * 1024      # glibc's maximum: larger blocks always use mmap
TRIM_THRESHOLD = 512 * 1024 * 1024     # return free heap top to the OS only beyond this

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)
_ENV = {'MALLOC_MMAP_THRESHOLD_': MMAP_THRESHOLD, 'MALLOC_TRIM_THRESHOLD_': TRIM_THRESHOLD}
_applied = False


def keep_freed_memory() -> bool:
    """Apply the setting to this process and its future children; True when it took effect."""
    global _applied
    if _applied:
        return True
    if os.environ.get('STYLEGAN_MALLOC_TUNING', '1') == '0' or any(name in os.environ for name in _ENV):
        return False
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        # Both at once: setting either one alone switches off glibc's dynamic threshold and
        # leaves the other at 128 KB, which is slower than the default.
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    except (OSError, AttributeError):
        return False
    if ok:
        os.environ.update({name: str(value) for name, value in _ENV.items()})
        _applied = True
    return ok
