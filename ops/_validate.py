"""Argument checking and normalisation shared by the public ops.

Every public op validates its arguments here *before* choosing a backend, so that a user error
is one clear `ValueError` naming the argument (never a C++ crash or a silently wrong answer),
and both backends receive the same normalised values.
"""

import numbers

import torch


def int_factor(value, name: str) -> int:
    """A positive integer resampling factor (bool and non-integral floats are refused)."""
    if type(value) is int and value >= 1:  # the common case first: the ops run per layer
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer() and value >= 1:
            return int(value)
        raise ValueError(f'{name} must be a positive integer, got {value!r}.')
    if value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}.')
    return int(value)


def int_factor2(value, name: str) -> tuple[int, int]:
    """An int or an [x, y] pair of positive integers -> (x, y)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'{name} must be an int or a pair [x, y], got {value!r}.')
        return int_factor(value[0], name), int_factor(value[1], name)
    f = int_factor(value, name)
    return f, f


def _int(value, name: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f'{name} must contain integers, got {value!r}.')
    return int(value)


def padding4(value, name: str = 'padding') -> tuple[int, int, int, int]:
    """int, [px, py] or [x0, x1, y0, y1] -> (x0, x1, y0, y1); negative values crop."""
    if isinstance(value, (list, tuple)):
        vals = [_int(v, name) for v in value]
        if len(vals) == 2:
            return vals[0], vals[0], vals[1], vals[1]
        if len(vals) == 4:
            return tuple(vals)
        raise ValueError(f'{name} must be an int, [px, py] or [x0, x1, y0, y1], got {value!r}.')
    p = _int(value, name)
    return p, p, p, p


def tensor(value, name: str, ndims=None) -> torch.Tensor:
    """Check that `value` is a floating-point tensor with one of the allowed ranks."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f'{name} must be a torch.Tensor, got {type(value).__name__}.')
    if not value.is_floating_point():
        raise ValueError(f'{name} must be a floating-point tensor, got dtype {value.dtype}.')
    if ndims is not None and value.ndim not in ndims:
        allowed = ' or '.join(str(n) for n in ndims)
        raise ValueError(f'{name} must have {allowed} dimensions, got shape {list(value.shape)}.')
    return value


def image(x, name: str = 'x') -> torch.Tensor:
    """An NCHW floating-point image batch."""
    return tensor(x, name, ndims=(4,))


def fir_filter(f, name: str = 'f') -> torch.Tensor | None:
    """None (identity), or a non-empty 1-D (separable) or 2-D [height, width] filter."""
    if f is None:
        return None
    f = tensor(f, name, ndims=(1, 2))
    if f.numel() == 0:
        raise ValueError(f'{name} must not be empty, got shape {list(f.shape)}.')
    return f


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) in taps; a 1-D filter has the same number of taps along both axes."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def number(value, name: str, allow_none: bool = False, positive: bool = False):
    """A real number (float), optionally None; refuse strings, tensors with >1 element, NaN."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f'{name} must be a number, got None.')
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if type(value) not in (float, int) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ValueError(f'{name} must be a number, got {value!r}.')
    value = float(value)
    if value != value:
        raise ValueError(f'{name} must not be NaN.')
    if positive and value <= 0:
        raise ValueError(f'{name} must be positive, got {value!r}.')
    return value


def bias(b, x: torch.Tensor, dim: int, name: str = 'b') -> torch.Tensor | None:
    """None, or a 1-D bias with one entry per element of x along `dim`."""
    if b is None:
        return None
    b = tensor(b, name, ndims=(1,))
    if b.shape[0] != x.shape[dim]:
        raise ValueError(f'{name} must have {x.shape[dim]} elements (size of x along dim {dim}), '
                         f'got {b.shape[0]}.')
    return b
