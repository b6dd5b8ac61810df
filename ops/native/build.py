"""Build and load the native CPU extension (torch.utils.cpp_extension + ninja), cached on disk.

The cache entry is `$STYLEGAN_CACHE_DIR/ops-native-<key>/` (default `~/.cache/stylegan-toolkit`),
where <key> hashes everything that changes the binary: the C++ sources, the compiler flags and
compiler, torch and Python versions and, because we compile with `-march=native`, the CPU's
instruction-set flags. A build happens in a private temporary directory that is renamed into
place only after it succeeded, under an exclusive file lock per key, so that
 * parallel processes (pytest-xdist workers, torchrun ranks) build once and wait for each other;
 * an interrupted or failed build never leaves a directory that looks complete;
 * an entry that exists but does not load (corrupted, truncated) is deleted and rebuilt.

Environment:
  STYLEGAN_OPS_NO_NATIVE=1   never build or load (forces the reference fallback; used by tests)
  STYLEGAN_OPS_PORTABLE=1    compile without -march=native (e.g. for a cache shared by machines;
                             also tried automatically when the -march=native build fails)
  STYLEGAN_CACHE_DIR         cache root
  CXX                        compiler (as for torch.utils.cpp_extension)
"""

import contextlib
import ctypes
import hashlib
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile

import torch

SOURCE_DIR = pathlib.Path(__file__).resolve().parent
_SOURCES = ('capi.cpp', 'upfirdn2d.cpp', 'filtered_lrelu.cpp', 'bias_act.cpp', 'winograd.cpp')
_HEADERS = ('fir.h', 'fir_stage.h', 'kernels.h', 'memory.h', 'parallel.h')
_MARKER = 'BUILD_OK.json'
NO_NATIVE_ENV = 'STYLEGAN_OPS_NO_NATIVE'
ABI_VERSION = 7  # must equal sg_abi_version() in capi.cpp
PORTABLE_ENV = 'STYLEGAN_OPS_PORTABLE'


class NativeBuildError(RuntimeError):
    """The native extension could not be built or loaded."""


def cache_root() -> pathlib.Path:
    root = os.environ.get('STYLEGAN_CACHE_DIR') or '~/.cache/stylegan-toolkit'
    return pathlib.Path(root).expanduser()


def compile_flags(portable: bool | None = None) -> list[str]:
    # -O3 turns on loop vectorisation; the kernels are written as contiguous multiply-add
    # loops for it. -march=native lets it use the widest vector unit of this CPU. The kernels'
    # threads are std::threads (parallel.h), hence -pthread and no OpenMP.
    if portable is None:
        portable = os.environ.get(PORTABLE_ENV, '') not in ('', '0')
    return ['-O3', '-pthread'] + ([] if portable else ['-march=native'])


def _cpu_identity() -> str:
    """The instruction-set flags of this CPU (they change what -march=native produces)."""
    try:
        for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith(('flags', 'Features')):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_key(flags: list[str]) -> str:
    h = hashlib.sha256()
    for name in _SOURCES + _HEADERS:
        h.update(name.encode() + b'\0' + (SOURCE_DIR / name).read_bytes() + b'\0')
    h.update(json.dumps({
        'flags': flags,
        'cxx': os.environ.get('CXX', 'c++'),
        'torch': torch.__version__,
        'python': sys.version,
        'cpu': _cpu_identity() if '-march=native' in flags else platform.machine(),
    }, sort_keys=True).encode())
    return h.hexdigest()[:16]


def load() -> ctypes.CDLL:
    """Return the compiled library (ctypes), building it on first use. Raises NativeBuildError.

    If the build with -march=native fails (some compilers do not know the flag), a portable
    build is tried before giving up.
    """
    if os.environ.get(NO_NATIVE_ENV, '') not in ('', '0'):
        raise NativeBuildError(f'native build disabled by ${NO_NATIVE_ENV}')
    flags = compile_flags()
    try:
        return _load_with(flags)
    except NativeBuildError:
        if '-march=native' not in flags:
            raise
    return _load_with(compile_flags(portable=True))


def _load_with(flags: list[str]) -> ctypes.CDLL:
    key = cache_key(flags)
    name = f'stylegan_native_ops_{key}'  # unique per key: two builds may coexist in a process
    root = cache_root()
    entry = root / f'ops-native-{key}'
    lib = _try_import(entry, name, key)
    if lib is not None:
        return lib
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NativeBuildError(f'cannot create the cache directory {root}: {exc}') from exc
    with _file_lock(root / f'ops-native-{key}.lock'):
        lib = _try_import(entry, name, key)  # another process may have built it meanwhile
        if lib is None:
            _discard(entry)  # missing, partial or corrupted: start over
            _remove_stale_temps(root, key)
            lib = _build(root, entry, name, key, flags)
    return lib


def _try_import(entry: pathlib.Path, name: str, key: str):
    """Import a complete cache entry; None if it is absent or unusable."""
    try:
        marker = json.loads((entry / _MARKER).read_text())
        library = entry / f'{name}.so'
        # Verify the bytes before dlopen: a truncated library can crash the loader (SIGBUS).
        if marker.get('key') != key or marker.get('sha256') != _sha256(library):
            return None
        return _open_library(library)
    except Exception:  # any damage to the entry means: rebuild it
        return None


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _open_library(path: pathlib.Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    if lib.sg_abi_version() != ABI_VERSION:
        raise ImportError(f'{path} has an unexpected ABI version')
    _declare(lib)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    """Argument types of the C entry points in capi.cpp (keep in sync; ABI_VERSION guards it)."""
    p, i64, i32, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
    lib.sg_advise_huge_pages.argtypes = [p, i64]
    lib.sg_advise_huge_pages.restype = None
    for suffix in ('f32', 'f64'):
        getattr(lib, f'sg_upfirdn2d_{suffix}').argtypes = [p] * 5 + [i32]
        getattr(lib, f'sg_filtered_lrelu_{suffix}').argtypes = (
            [p] * 4 + [i64] * 4 + [p, i64] * 4 + [i64] * 6 + [f64] * 3 + [i64] * 4 + [i32])
        getattr(lib, f'sg_filtered_lrelu_grad_{suffix}').argtypes = (
            [p] * 3 + [i64] * 4 + [p, i64, p, i64] + [i64] * 7 + [p, i64, p, i64] + [i64] * 7 + [f64] * 2 + [i32])
        getattr(lib, f'sg_winograd_input_{suffix}').argtypes = [p] * 4 + [i32]
        getattr(lib, f'sg_winograd_output_{suffix}').argtypes = [p] * 4 + [i32]
        getattr(lib, f'sg_mask_scale_{suffix}').argtypes = [p, p, p, i64, f64, f64, i32]
        getattr(lib, f'sg_bias_act_{suffix}').argtypes = [p] * 4 + [i64] * 3 + [i32] + [f64] * 3 + [i32, i32]


def _build(root: pathlib.Path, entry: pathlib.Path, name: str, key: str, flags: list[str]):
    from torch.utils import cpp_extension
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'ops-native-{key}.tmp-', dir=root))
    try:
        with _ninja_on_path():
            cpp_extension.load(
                name=name, sources=[str(SOURCE_DIR / s) for s in _SOURCES],
                extra_cflags=flags, extra_ldflags=['-pthread'], build_directory=str(tmp),
                verbose=False, is_python_module=False)
        for item in tmp.iterdir():  # keep only the library: objects and ninja files are bulk
            if item.name != f'{name}.so':
                _discard(item)
        marker = {'key': key, 'sha256': _sha256(tmp / f'{name}.so'), 'flags': flags, 'torch': torch.__version__}
        (tmp / _MARKER).write_text(json.dumps(marker))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache entry is an ordinary directory
        os.rename(tmp, entry)  # atomic: the entry appears complete or not at all
    except Exception as exc:
        _discard(tmp)
        raise NativeBuildError(f'building the native ops failed: {_first_lines(exc)}') from exc
    except BaseException:  # KeyboardInterrupt etc.: leave nothing half-built behind
        _discard(tmp)
        raise
    return _open_library(entry / f'{name}.so')


def _first_lines(exc: Exception, n: int = 3) -> str:
    """The compiler's first error lines (the whole ninja log is too long for a warning)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if 'error:' in ln.lower()]
    chosen = (errors or lines)[:n]
    return ' | '.join(ln[:300] for ln in chosen)


def _discard(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_stale_temps(root: pathlib.Path, key: str) -> None:
    """Temp dirs of this key left by killed builds (we hold the key's lock, so none is live)."""
    for item in root.glob(f'ops-native-{key}.tmp-*'):
        _discard(item)


@contextlib.contextmanager
def _file_lock(path: pathlib.Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: builds are not serialised between processes
        yield
        return
    with open(path, 'a+') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _ninja_on_path():
    """cpp_extension runs `ninja` from PATH; the pip ninja lives next to this Python."""
    old = os.environ.get('PATH', '')
    extra = [os.path.dirname(sys.executable)]
    with contextlib.suppress(ImportError, AttributeError):
        import ninja
        extra.append(ninja.BIN_DIR)
    os.environ['PATH'] = os.pathsep.join(extra + [old])
    try:
        yield
    finally:
        os.environ['PATH'] = old
