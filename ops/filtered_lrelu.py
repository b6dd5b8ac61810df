"""filtered_lrelu: the alias-free nonlinearity of StyleGAN3 (Karras et al. 2021, section 3.2).

A pointwise nonlinearity creates frequencies above the Nyquist limit, so StyleGAN3 applies it
at a temporarily higher sampling rate and low-pass filters before going back down:

  1. add bias b per channel,
  2. upsample by `up` with filter fu:  upfirdn2d(x, fu, up, padding, gain=up**2),
  3. leaky ReLU with negative slope `slope`, times `gain`,
  4. clamp to [-clamp, clamp] (if clamp is not None),
  5. downsample by `down` with filter fd:  upfirdn2d(x, fd, down) (no padding).

Output size per axis = (in * up + p0 + p1 - (fu_taps - 1) - (fd_taps - 1) + down - 1) // down.
"""

import math

import torch
import torch.nn.functional as F

from ops import _validate
from ops.backend import resolve_impl
from ops.upfirdn2d import _native_function, upfirdn2d_ref


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2),
                   slope=0.2, clamp=None, flip_filter=False, impl='auto') -> torch.Tensor:
    """Bias, upsample, leaky ReLU * gain, clamp, downsample (see module docstring)."""
    x = _validate.image(x, 'x')
    fu = _validate.fir_filter(fu, 'fu')
    fd = _validate.fir_filter(fd, 'fd')
    b = _validate.bias(b, x, 1, 'b')
    up = _validate.int_factor(up, 'up')
    down = _validate.int_factor(down, 'down')
    padding = _validate.padding4(padding, 'padding')
    gain = _validate.number(gain, 'gain')
    slope = _validate.number(slope, 'slope')
    clamp = _validate.number(clamp, 'clamp', allow_none=True)
    if clamp is not None and clamp < 0:
        raise ValueError(f'clamp must be non-negative or None, got {clamp!r}.')
    _check_output_size(x, fu, fd, up, padding)
    identity = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    fu = identity if fu is None else fu
    fd = identity if fd is None else fd
    b = torch.zeros([x.shape[1]], dtype=x.dtype, device=x.device) if b is None else b
    flip_filter = bool(flip_filter)
    if resolve_impl(impl, x) == 'native':
        native = _native_function('filtered_lrelu')
        if native is not None:
            return native(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    return filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)


def _check_output_size(x, fu, fd, up, padding):
    fuw, fuh = _validate.filter_size(fu)
    fdw, fdh = _validate.filter_size(fd)
    for axis, size, p0, p1, tu, td in (('width', x.shape[3], padding[0], padding[1], fuw, fdw),
                                       ('height', x.shape[2], padding[2], padding[3], fuh, fdh)):
        if size * up + p0 + p1 - (tu - 1) - (td - 1) < 1:
            raise ValueError(f'padding {list(padding)} leaves no output samples along the {axis} '
                             f'(input {size}, up {up}, fu taps {tu}, fd taps {td}).')


def filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """Reference implementation; arguments already normalised (filters and bias are tensors)."""
    x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    # Zero insertion divides the DC level by up**2; the filter gain restores it.
    x = upfirdn2d_ref(x, fu, (up, up), (1, 1), padding, flip_filter, up ** 2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d_ref(x, fd, (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1.0)
