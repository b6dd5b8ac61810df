"""conv2d_resample: 2-D convolution combined with FIR up/downsampling (StyleGAN2 layers).

Definition (padding is first adjusted so that the resampling filter stays centred):
  if up > 1:   px0 += (fw + up - 1) // 2,  px1 += (fw - up) // 2   (same for y with fh)
  if down > 1: px0 += (fw - down + 1) // 2, px1 += (fw - down) // 2
  y = upfirdn2d(x, f if up > 1 else None, up, adjusted padding, gain=up**2)
  y = conv2d(y, w, groups)        # flip_weight=True: correlation (torch), False: convolution
  y = upfirdn2d(y, f, down)       # only if down > 1
Up- and downsampling use the same filter `f`. Because convolution with w and filtering with f
commute, the downsampling case filters first and then uses a strided convolution (never
computing samples that are thrown away), and the upsampling case uses a transposed convolution
on the small image before filtering (never multiplying inserted zeros). The resampling runs through `upfirdn2d` and therefore
gets the native backend; the convolution itself is torch's.
"""

import torch
import torch.nn.functional as F

from ops import _validate
from ops.upfirdn2d import upfirdn2d


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True,
                    flip_filter=False, impl='auto') -> torch.Tensor:
    """Convolve x [N, Cin, H, W] with w [Cout, Cin/groups, kh, kw], up/downsampling with f."""
    x = _validate.image(x, 'x')
    w = _validate.tensor(w, 'w', ndims=(4,))
    f = _validate.fir_filter(f, 'f')
    up = _validate.int_factor(up, 'up')
    down = _validate.int_factor(down, 'down')
    groups = _validate.int_factor(groups, 'groups')
    px0, px1, py0, py1 = _validate.padding4(padding, 'padding')
    _check_channels(x, w, groups)
    fw, fh = _validate.filter_size(f)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    if not flip_weight:
        w = w.flip([2, 3])                                 # true convolution
    w = w.to(x.dtype)
    padding = (px0, px1, py0, py1)
    _check_output_size(x, w, f if up > 1 or down > 1 else None, up, padding)

    if up == 1 and down == 1:
        return _conv_padded(x, w, padding, groups, impl)
    if up == 1:
        # Filter first, then strided conv: identical to conv -> filter -> subsample.
        x = upfirdn2d(x, f, padding=padding, flip_filter=flip_filter, impl=impl)
        return F.conv2d(x, w, stride=down, groups=groups)
    x = _upsample_conv(x, w, f, up, padding, groups, flip_filter, impl)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
    return x


def _upsample_conv(x, w, f, up, padding, groups, flip_filter, impl):
    """upfirdn2d(x, f, up, padding, gain=up**2) followed by a valid correlation with w, computed
    as a transposed convolution on the small image (never multiplying inserted zeros).

    Per axis with K kernel taps: correlating the zero-inserted, (a0, a1)-padded signal with w
    equals conv_transpose(x, flip(w), stride=up) padded by (a0 - (K-1), a1 + up - K); and the
    filter f commutes with the convolution, so it is applied last.
    """
    kh, kw = w.shape[2], w.shape[3]
    cout, cin_g = w.shape[0], w.shape[1]
    # conv_transpose2d wants [Cin, Cout/groups, kh, kw] and sums x[i] k[j] into output i*up + j.
    k = w.flip([2, 3]).reshape(groups, cout // groups, cin_g, kh, kw).transpose(1, 2)
    k = k.reshape(groups * cin_g, cout // groups, kh, kw)
    x = torch.nn.functional.conv_transpose2d(x, k, stride=up, groups=groups)
    px0, px1, py0, py1 = padding
    padding = (px0 - (kw - 1), px1 + up - kw, py0 - (kh - 1), py1 + up - kh)
    return upfirdn2d(x, f, padding=padding, flip_filter=flip_filter, gain=up ** 2, impl=impl)


def _check_channels(x, w, groups):
    if w.shape[0] % groups != 0:
        raise ValueError(f'groups must divide the {w.shape[0]} output channels of w, got {groups}.')
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(f'w expects {w.shape[1]} input channels per group x groups={groups} = '
                         f'{w.shape[1] * groups} channels, but x has {x.shape[1]}.')


def _check_output_size(x, w, f, up, padding):
    fw, fh = _validate.filter_size(f)
    kh, kw = w.shape[2], w.shape[3]
    for axis, size, p0, p1, taps, k in (('width', x.shape[3], padding[0], padding[1], fw, kw),
                                        ('height', x.shape[2], padding[2], padding[3], fh, kh)):
        if size * up + p0 + p1 - (taps - 1) < k:
            raise ValueError(f'padding leaves fewer than the {k} samples the kernel of w needs '
                             f'along the {axis} (input {size}, up {up}).')


def _conv_padded(x, w, padding, groups, impl):
    px0, px1, py0, py1 = padding
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return F.conv2d(x, w, padding=(py0, px0), groups=groups)
    x = upfirdn2d(x, None, padding=padding, impl=impl)  # asymmetric pad / crop
    return F.conv2d(x, w, groups=groups)
