"""Image-space transforms of the equivariance metrics (StyleGAN3 paper, section 3 and appendix E).

Everything here is deterministic (no RNG): given an image batch and a transform, produce the
reference image (the untransformed output moved in image space) and the mask of pixels whose
value is fully defined. `metrics/equivariance.py` draws the random transforms.

Coordinates: x to the right, rows (y) downwards. A translation t = (tx, ty) is in units of the
image size and moves content by (tx * W, ty * H) pixels. A positive rotation angle turns the
content counter-clockwise as displayed.
"""

import functools
import math

import torch
import torch.nn.functional as F

from ops import upfirdn2d

LANCZOS_A = 3            # Lanczos kernel half-width a (fractional translation, rotation window)


def sinc(x: torch.Tensor) -> torch.Tensor:
    """Normalised sinc: sin(pi x) / (pi x), 1 at x = 0."""
    y = (x * math.pi).abs()
    return torch.where(y < 1e-30, torch.ones_like(x), torch.sin(y) / y.clamp(min=1e-30))


def lanczos_window(x: torch.Tensor, a: int = LANCZOS_A) -> torch.Tensor:
    """Lanczos window sinc(x / a) on |x| < a, zero elsewhere."""
    u = x.abs() / a
    return torch.where(u < 1, sinc(u), torch.zeros_like(u))


def rotation_matrix(angle) -> torch.Tensor:
    """3x3 float32 [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]] (the synthesis-input convention)."""
    angle = torch.as_tensor(angle, dtype=torch.float32)
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([torch.stack([c, s, zero]),
                        torch.stack([-s, c, zero]),
                        torch.stack([zero, zero, one])])


# ----------------------------------------------------------------------------------------------
# Translations.

def _shift_axis(x: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """Move content by `shift` whole samples along `dim` (positive = towards higher index), zero fill."""
    size = x.shape[dim]
    out = torch.zeros_like(x)
    if abs(shift) >= size:
        return out
    src = x.narrow(dim, max(-shift, 0), size - abs(shift))
    out.narrow(dim, max(shift, 0), size - abs(shift)).copy_(src)
    return out


def _range_mask(size: int, lo: int, hi: int, device) -> torch.Tensor:
    """1-D float mask that is 1 on [lo, hi) clipped to [0, size)."""
    idx = torch.arange(size, device=device)
    return ((idx >= lo) & (idx < hi)).to(torch.float32)


def integer_translation(x: torch.Tensor, tx, ty):
    """Shift `x` [N, C, H, W] by (round(tx W), round(ty H)) pixels with zero fill.

    Returns (shifted, mask); the mask is 1 exactly where a pixel received a value from inside x.
    """
    _, _, H, W = x.shape
    ix = int(torch.round(torch.as_tensor(tx, dtype=torch.float32) * W))
    iy = int(torch.round(torch.as_tensor(ty, dtype=torch.float32) * H))
    y = _shift_axis(_shift_axis(x, ix, 3), iy, 2)
    mask_x = _range_mask(W, ix, W + ix, x.device)                           # [W]
    mask_y = _range_mask(H, iy, H + iy, x.device)                           # [H]
    mask = (mask_y[:, None] * mask_x[None, :]).expand_as(x).to(x.dtype)     # [N, C, H, W]
    return y, mask


def lanczos_taps(frac: torch.Tensor, a: int = LANCZOS_A) -> torch.Tensor:
    """Normalised Lanczos weights L(j - frac) for j = -(a-1) .. a (2a taps, sum 1)."""
    j = torch.arange(-(a - 1), a + 1, dtype=torch.float32)
    w = sinc(j - frac) * sinc((j - frac) / a)
    return w / w.sum()


def _fractional_shift_axis(x: torch.Tensor, shift: torch.Tensor, dim: int, a: int):
    """ref[i] = sum_j w_j * x[i - floor(s) - j] (Lanczos interpolation at i - s), and its valid range."""
    whole = int(torch.floor(shift))
    weights = lanczos_taps(shift - whole, a)
    out = torch.zeros_like(x)
    for w, j in zip(weights.tolist(), range(-(a - 1), a + 1)):
        out += w * _shift_axis(x, whole + j, dim)
    # Only pixels whose whole 2a-tap footprint lies inside x are valid.
    return out, (whole + a, x.shape[dim] + whole - (a - 1))


def fractional_translation(x: torch.Tensor, tx, ty, a: int = LANCZOS_A):
    """Shift `x` by (tx W, ty H) pixels with separable Lanczos-a interpolation (x, then y)."""
    _, _, H, W = x.shape
    sx = torch.as_tensor(tx, dtype=torch.float32) * W
    sy = torch.as_tensor(ty, dtype=torch.float32) * H
    y, (x0, x1) = _fractional_shift_axis(x, sx, 3, a)
    y, (y0, y1) = _fractional_shift_axis(y, sy, 2, a)
    mask = _range_mask(H, y0, y1, x.device)[:, None] * _range_mask(W, x0, x1, x.device)[None, :]
    return y, mask.expand_as(x).to(x.dtype)


# ----------------------------------------------------------------------------------------------
# Rotations: band-limited affine resampling with an oriented filter.

def oriented_bandlimit_filter(mat: torch.Tensor, a: int = LANCZOS_A, amax: int = 2 * LANCZOS_A,
                              aflt: int = 64, up: int = 4) -> torch.Tensor:
    """2-D FIR filter that band-limits both the input and the `mat`-transformed output grid.

    The ideal response is the convolution of the input-space sinc low-pass (cutoff at Nyquist,
    0.5 cycles/pixel) with the same low-pass in the transformed coordinates; it is windowed by
    the convolution of the two correspondingly oriented separable Lanczos windows. Both
    convolutions are circular, via FFT, on a fine grid spanning +-aflt input pixels with `up`
    samples per pixel. The result is cropped to +-amax pixels ((2 amax up - 1) taps per side)
    and every one of the up x up polyphase components is normalised to sum 1 / up^2.
    """
    mat = torch.as_tensor(mat, dtype=torch.float64)
    n = 2 * aflt * up - 1                                                   # 511 for aflt=64, up=4
    xi, yi, ideal_in, window_in = _input_space_spectra(a, aflt, up)
    xo, yo = (torch.stack([xi, yi], dim=2) @ mat[:2, :2].T).unbind(2)       # rotated coordinates

    def circular_conv(p_spectrum, q):  # both real: half spectra suffice
        return torch.fft.irfftn(p_spectrum * torch.fft.rfftn(q), s=q.shape)

    ideal = circular_conv(ideal_in, sinc(xo) * sinc(yo))
    window = circular_conv(window_in, lanczos_window(xo, a) * lanczos_window(yo, a))
    f = (ideal * window).roll((n // 2, n // 2), dims=(0, 1))               # centre back at n // 2
    crop = (aflt - amax) * up
    f = f[crop:-crop, crop:-crop]                                           # [2 amax up - 1]^2
    f = F.pad(f, [0, 1, 0, 1]).reshape(2 * amax, up, 2 * amax, up)
    f = f / f.sum(dim=(0, 2), keepdim=True) / up ** 2                       # polyphase normalisation
    return f.reshape(2 * amax * up, 2 * amax * up)[:-1, :-1].to(torch.float32)


@functools.lru_cache(maxsize=4)
def _input_space_spectra(a: int, aflt: int, up: int):
    """The fine grid (x, y: [n, n], origin at index 0) and the half spectra of the input-space
    low-pass and window: they do not depend on the transform, so every rotation of an
    equivariance run reuses them (the filter design took ~115 ms per batch, mostly FFTs of
    511 x 511 grids)."""
    n = 2 * aflt * up - 1
    coords = (torch.arange(n, dtype=torch.float64) + 1) / up - aflt         # [n], zero at n // 2
    coords = coords.roll(-(n // 2))                                         # zero at index 0 (FFT origin)
    yi, xi = torch.meshgrid(coords, coords, indexing='ij')                  # [n, n]
    ideal = torch.fft.rfftn(sinc(xi) * sinc(yi))
    window = torch.fft.rfftn(lanczos_window(xi, a) * lanczos_window(yi, a))
    return xi, yi, ideal, window


def affine_resample(x: torch.Tensor, mat: torch.Tensor, up: int = 4, a: int = LANCZOS_A):
    """Apply the image-space transform `mat` (3x3, normalised [-1, 1] coordinates) to `x`.

    x is upsampled `up` times with the oriented band-limit filter (extended by p fine samples
    beyond the image on each side), then sampled bilinearly on the transformed grid.
    Returns (image, mask); the mask drops everything within 2p + 1 fine samples of the border.
    """
    N, C, H, W = x.shape
    mat = torch.as_tensor(mat, dtype=torch.float32)
    f = oriented_bandlimit_filter(mat, a=a, amax=2 * a, up=up).to(x.device)  # [k, k], k odd
    k = f.shape[0]
    p = k // 2
    theta = torch.linalg.inv(mat)
    theta[:2, 2] *= 2                            # translation in normalised units spans 2
    theta[0, 2] += 1 / up / W                    # half a fine sample: even `up` is off-centre
    theta[1, 2] += 1 / up / H
    theta[0, :] *= W / (W + p / up * 2)          # the upsampled image is wider by 2p fine samples
    theta[1, :] *= H / (H + p / up * 2)
    theta = theta[:2].unsqueeze(0).repeat(N, 1, 1).to(x.device)             # [N, 2, 3]
    grid = F.affine_grid(theta, [N, C, H, W], align_corners=False)         # [N, H, W, 2]

    pad = [p + (k + up - 1) // 2, p + (k - up) // 2] * 2
    fine = upfirdn2d.upfirdn2d(x, f, up=up, padding=pad, gain=up * up)     # [N, C, H*up+2p, W*up+2p]
    out = F.grid_sample(fine, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    mask = torch.zeros_like(fine)
    c = 2 * p + 1
    mask[:, :, c:-c, c:-c] = 1
    mask = F.grid_sample(mask, grid, mode='nearest', padding_mode='zeros', align_corners=False)
    return out, mask


def fractional_rotation(x: torch.Tensor, angle, a: int = LANCZOS_A):
    """Rotate `x` by `angle` radians (counter-clockwise as displayed), band-limited."""
    return affine_resample(x, rotation_matrix(angle), a=a)


def pseudo_rotation(x: torch.Tensor, angle, a: int = LANCZOS_A):
    """Filter `x` with the band-limit filter of a rotation by `angle` without moving it.

    The generated (rotated) image gets the same frequency content as the resampled reference,
    so only the equivariance error remains. Returns (image, mask of the unpadded interior).
    """
    f = oriented_bandlimit_filter(rotation_matrix(-torch.as_tensor(angle, dtype=torch.float32)),
                                  a=a, amax=2 * a, up=1).to(x.device)      # [11, 11] for a = 3
    p = f.shape[0] // 2
    y = upfirdn2d.upfirdn2d(x, f, padding=[p, p, p, p])
    mask = torch.zeros_like(y)
    mask[:, :, p:-p, p:-p] = 1
    return y, mask
