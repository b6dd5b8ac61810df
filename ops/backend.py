"""Backend selection for the ops: reference PyTorch or the native C++ CPU build."""

import os
import warnings

import torch

ENV_VAR = 'STYLEGAN_OPS_IMPL'
_VALID = ('auto', 'ref', 'native')

# Module-level state, unavoidable: the native build is loaded at most once per process and the
# fallback warning is shown at most once.
_native_module = None
_native_error = None
_warned = False


def native_module():
    """Return the compiled native extension, building it on first use; raise if impossible."""
    global _native_module, _native_error
    if _native_module is None and _native_error is None:
        try:
            from ops.native import build
            _native_module = build.load()
        except Exception as exc:  # any build/load failure means: no native backend here
            _native_error = exc
    if _native_module is None:
        raise RuntimeError(f'native ops backend unavailable: {_native_error}')
    return _native_module


def native_available() -> bool:
    try:
        native_module()
        return True
    except RuntimeError:
        return False


def resolve_impl(impl: str = 'auto', x: torch.Tensor | None = None) -> str:
    """Decide which backend runs: returns 'ref' or 'native'.

    The environment variable overrides the argument so a user can force a backend for a whole
    run. The native backend is CPU-only; tensors on other devices always use the reference.
    """
    global _warned
    impl = os.environ.get(ENV_VAR) or impl
    if (impl == 'auto' or impl == 'native') and _native_module is not None and (x is None or x.is_cpu):
        return 'native'  # the common case, decided without the checks below (ops run per layer)
    if impl not in _VALID:
        raise ValueError(f"impl must be one of {_VALID}, got {impl!r} (from argument or ${ENV_VAR}).")
    if impl == 'ref':
        return 'ref'
    if x is not None and x.device.type != 'cpu':
        return 'ref'
    if impl == 'native':
        native_module()  # raises a clear error when asked for explicitly
        return 'native'
    if native_available():
        return 'native'
    if not _warned:
        _warned = True
        warnings.warn(f'Falling back to the reference ops: {_native_error}', RuntimeWarning, stacklevel=3)
    return 'ref'
