"""upfirdn2d: upsample, pad, FIR-filter and downsample a batch of images (DESIGN.md section 5).

For every channel independently:
  1. upsample by inserting `up - 1` zeros after every sample (per axis),
  2. pad with zeros / crop (negative padding) by [x0, x1, y0, y1], in upsampled coordinates,
  3. convolve with the FIR filter `f`, keeping only fully overlapping ("valid") positions,
  4. keep every `down`-th sample, starting with the first (computed as a strided convolution).
Output size per axis = (in * up + p0 + p1 - (taps - 1) + down - 1) // down.

A 1-D filter is separable: it is applied along the width, then along the height, and each
pass is scaled by sqrt(gain), so the 2-D impulse response is scaled by `gain` either way.
`flip_filter=False` is a true convolution (filter flipped), True is a correlation.
The helpers `upsample2d` / `downsample2d` / `filter2d` compute the padding that keeps the
image centred so that the output is `in * up`, `in / down` or `in` samples.
"""

import sys

import torch
import torch.nn.functional as F

from ops import _validate
from ops.backend import resolve_impl


def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1,
                 separable=None) -> torch.Tensor:
    """Turn taps (list / array / tensor / None) into a float32 filter tensor for upfirdn2d.

    A 1-D filter stays separable (1-D) when `separable` is True, or by default when it has at
    least 8 taps; otherwise it becomes the 2-D outer product with itself. `gain` scales the
    resulting 2-D impulse response, i.e. each 1-D factor by sqrt(gain).
    """
    f = torch.ones([1], dtype=torch.float32) if f is None else torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f'f must be a non-empty 1-D or 2-D filter, got shape {list(f.shape)}.')
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)                              # [taps, taps]
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='auto') -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample `x` [N, C, H, W] (see module docstring)."""
    x = _validate.image(x, 'x')
    f = _validate.fir_filter(f, 'f')
    up = _validate.int_factor2(up, 'up')
    down = _validate.int_factor2(down, 'down')
    padding = _validate.padding4(padding, 'padding')
    gain = _validate.number(gain, 'gain')
    _check_output_size(x, f, up, down, padding)
    flip_filter = bool(flip_filter)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if resolve_impl(impl, x) == 'native':
        native = _native_function('upfirdn2d')
        if native is not None:
            return native(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def _native_function(name: str):
    """The native implementation of op `name`, or None when the native backend lacks it."""
    functions = sys.modules.get('ops.native.functions')  # imported already: skip the import machinery
    if functions is None:
        try:
            from ops.native import functions
        except ImportError:
            return None
    return getattr(functions, name, None)


def _check_output_size(x, f, up, down, padding):
    fw, fh = _validate.filter_size(f)
    h, w = x.shape[2:]
    if w * up[0] + padding[0] + padding[1] - fw >= 0 and h * up[1] + padding[2] + padding[3] - fh >= 0:
        return  # the common case, without building the loop below (this runs per layer)
    for axis, size, u, p0, p1, taps in (('width', w, up[0], padding[0], padding[1], fw),
                                        ('height', h, up[1], padding[2], padding[3], fh)):
        if size * u + p0 + p1 - (taps - 1) < 1:
            raise ValueError(f'padding {list(padding)} leaves no output samples along the {axis} '
                             f'(input {size}, up {u}, filter taps {taps}).')


# ----------------------------------------------------------------------------------------------
# Reference backend: the direct definition, built from differentiable torch ops so that
# gradients of any order come from autograd.

def upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain) -> torch.Tensor:
    """Reference implementation; arguments already normalised (up/down pairs, 4-padding)."""
    x = _zero_insert(x, up)                                # [N, C, H*uy, W*ux]
    x = _pad_or_crop(x, padding)
    f = f.to(dtype=x.dtype, device=x.device)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))                    # torch conv2d correlates
    c, (dx, dy) = x.shape[1], down
    # Depthwise convolution (groups = channels): every channel filtered alike, much faster on
    # CPU than folding channels into the batch. The stride keeps every down-th output sample,
    # starting with the first, without computing the others.
    if f.ndim == 1:
        f = f * gain ** 0.5                                # sqrt(gain) per separable pass
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, dx), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(dy, 1), groups=c)
    else:
        x = F.conv2d(x, (f * gain)[None, None].expand(c, 1, -1, -1), stride=(dy, dx), groups=c)
    return x


def _zero_insert(x, up):
    ux, uy = up
    if ux == 1 and uy == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, ux - 1, 0, 0, 0, uy - 1])            # zeros after every sample
    return x.reshape(n, c, h * uy, w * ux)


def _pad_or_crop(x, padding):
    x0, x1, y0, y1 = padding
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    h, w = x.shape[2], x.shape[3]
    return x[:, :, max(-y0, 0):h - max(-y1, 0), max(-x0, 0):w - max(-x1, 0)]


# ----------------------------------------------------------------------------------------------
# Convenience wrappers with centred padding.

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='auto') -> torch.Tensor:
    """Filter without resampling; output size = input size + padding."""
    fw, fh = _validate.filter_size(_validate.fir_filter(f, 'f'))
    x0, x1, y0, y1 = _validate.padding4(padding)
    p = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='auto') -> torch.Tensor:
    """Upsample by `up`; output size = input size * up (+ padding). Zero insertion loses
    energy, hence the filter gain up_x * up_y."""
    ux, uy = _validate.int_factor2(up, 'up')
    fw, fh = _validate.filter_size(_validate.fir_filter(f, 'f'))
    x0, x1, y0, y1 = _validate.padding4(padding)
    p = [x0 + (fw + ux - 1) // 2, x1 + (fw - ux) // 2, y0 + (fh + uy - 1) // 2, y1 + (fh - uy) // 2]
    return upfirdn2d(x, f, up=(ux, uy), padding=p, flip_filter=flip_filter,
                     gain=_validate.number(gain, 'gain') * ux * uy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='auto') -> torch.Tensor:
    """Downsample by `down`; output size = input size / down (+ padding / down)."""
    dx, dy = _validate.int_factor2(down, 'down')
    fw, fh = _validate.filter_size(_validate.fir_filter(f, 'f'))
    x0, x1, y0, y1 = _validate.padding4(padding)
    p = [x0 + (fw - dx + 1) // 2, x1 + (fw - dx) // 2, y0 + (fh - dy + 1) // 2, y1 + (fh - dy) // 2]
    return upfirdn2d(x, f, down=(dx, dy), padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
