"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", section 2-3 and appendix B).

Every augmentation is applied to each image independently with probability `p * multiplier`
(p is the one number ADA adapts); its parameters are drawn from the distribution in appendix B.
The order is fixed: pixel blitting, general geometric, colour, image-space filtering,
additive noise, cutout. All steps are differentiable with respect to the images, including
second-order gradients (R1 differentiates D's input gradient through this pipeline).

Implementation outline:
* Geometric steps compose one 3x3 matrix per image that maps output pixel coordinates (centred
  on the image) to input coordinates. With only blitting enabled the image is moved by exact
  pixel indexing (integer translations reflect at the border). Otherwise the input is padded by
  reflection, upsampled 2x with the symlet-6 low-pass `Hz_geom`, resampled bilinearly at the
  transformed positions, and downsampled 2x with the same filter (appendix B.2: the 2x
  oversampling keeps aliasing low).
* Colour steps compose one 4x4 matrix per image acting on homogeneous RGB (appendix B.3).
* Image-space filtering scales four octave bands by random gains (appendix B.4).

Randomness comes from torch's global generator on the images' device (its state is part of
the training state for exact resume).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ops import grid_sample as grid_sample_op
from ops import upfirdn2d

# Symlet-6 decomposition low-pass (12 taps; Daubechies' least-asymmetric wavelet of order 6).
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]
# Symlet-2 (= Daubechies-2) low-pass: ((1+r3), (3+r3), (3-r3), (1-r3)) / (4 r2), reversed.
SYM2 = [(1 - math.sqrt(3)) / (4 * math.sqrt(2)), (3 - math.sqrt(3)) / (4 * math.sqrt(2)),
        (3 + math.sqrt(3)) / (4 * math.sqrt(2)), (1 + math.sqrt(3)) / (4 * math.sqrt(2))]

# Expected share of image power in the four filter bands, low to high, for natural images
# (appendix B.4); used to keep the expected total power unchanged when band gains vary.
BAND_POWER = [10 / 13, 1 / 13, 1 / 13, 1 / 13]

# Named presets for train.py --augpipe (appendix B, figure 4 ablations).
_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
AUGPIPE_SPECS = {
    'blit':   _BLIT,
    'geom':   _GEOM,
    'color':  _COLOR,
    'filter': dict(imgfilter=1),
    'noise':  dict(noise=1),
    'cutout': dict(cutout=1),
    'bg':     dict(**_BLIT, **_GEOM),
    'bgc':    dict(**_BLIT, **_GEOM, **_COLOR),
    'bgcf':   dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1),
    'bgcfn':  dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1),
    'bgcfnc': dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1, cutout=1),
}


# ----------------------------------------------------------------------------------------------
# Batched homogeneous matrices. Each argument is a tensor [N]; results are [N, 3, 3] / [N, 4, 4].

def _matrix(rows, like):
    """Stack a nested list of scalars / [N] tensors into [N, R, C]."""
    n = like.shape[0]
    cols = [[torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(n) for v in row]
            for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in cols], dim=-2)


def translate2d(tx, ty):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx, sy):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(tx, ty, tz):
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], tx)


def scale3d(sx, sy, sz):
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], sx)


def _embed3(m3):
    """[N, 3, 3] linear RGB map -> [N, 4, 4] homogeneous."""
    out = torch.eye(4, dtype=m3.dtype, device=m3.device).repeat(m3.shape[0], 1, 1)
    out[:, :3, :3] = m3
    return out


def rotate3d(axis, theta):
    """Rotation about the unit vector `axis` [3] by `theta` [N] (Rodrigues' formula)."""
    a = axis.to(theta.dtype)
    cross = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=theta.dtype,
                         device=theta.device)
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    eye = torch.eye(3, dtype=theta.dtype, device=theta.device)
    return _embed3(c * eye + s * cross + (1 - c) * torch.outer(a, a))


def band_filter_bank() -> np.ndarray:
    """Four zero-phase 1-D filters [4, 43] splitting [0, pi] into octave bands
    [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi]; they sum to a unit impulse.

    Built from the sym2 wavelet pair: with h the low-pass scaled to unit DC gain, the
    autocorrelations A_lo(w) = |H(w)|^2 and A_hi(w) = |H(w + pi)|^2 sum to one, so the
    products A_lo(w) A_lo(2w) ... A_hi(2^k w) of an undecimated wavelet tree telescope to one.
    """
    h = np.asarray(SYM2) / np.sqrt(2)                                 # DC gain 1
    a_lo = np.convolve(h, h[::-1])                                    # [7], |H(w)|^2
    a_hi = a_lo * (-1.0) ** np.arange(-3, 4)                          # |H(w + pi)|^2

    def dilate(f, k):                                                 # f(w) -> f(k w)
        out = np.zeros((len(f) - 1) * k + 1)
        out[::k] = f
        return out

    lo1, lo2, lo4 = a_lo, dilate(a_lo, 2), dilate(a_lo, 4)
    bands = [np.convolve(np.convolve(lo1, lo2), lo4),                 # [0, pi/8]
             np.convolve(np.convolve(lo1, lo2), dilate(a_hi, 4)),     # [pi/8, pi/4]
             np.convolve(lo1, dilate(a_hi, 2)),                       # [pi/4, pi/2]
             a_hi]                                                    # [pi/2, pi]
    bank = np.zeros([4, 43])
    for i, band in enumerate(bands):
        pad = (43 - len(band)) // 2
        bank[i, pad:pad + len(band)] = band
    return bank


# ----------------------------------------------------------------------------------------------

class AugmentPipe(torch.nn.Module):
    """The ADA pipeline. Keyword names, defaults and buffers match the reference `AugmentPipe`
    (so reference snapshots load); multipliers of 0 disable an augmentation entirely."""

    def __init__(self,
                 xflip=0, rotate90=0, xint=0, xint_max=0.125,            # pixel blitting
                 scale=0, rotate=0, aniso=0, xfrac=0,                    # general geometric
                 scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,  # colour
                 brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,  # filtering
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5):      # corruptions
        super().__init__()
        kwargs = dict(locals())
        kwargs.pop('self')
        kwargs.pop('__class__', None)
        kwargs['imgfilter_bands'] = [float(b) for b in imgfilter_bands]
        self.init_kwargs = kwargs          # JSON-able; network files rebuild the pipe from it
        for name, value in kwargs.items():
            setattr(self, name, list(value) if isinstance(value, list) else float(value))
        self.register_buffer('p', torch.zeros([]))  # overall probability, adapted by ADA
        self.register_buffer('Hz_geom', torch.tensor(SYM6, dtype=torch.float32) / sum(SYM6))
        self.register_buffer('Hz_fbank', torch.tensor(band_filter_bank(), dtype=torch.float32))

    # -- helpers --------------------------------------------------------------------------------

    def _gate(self, multiplier, n, like):
        """Bool [N]: which images get an augmentation applied with probability p*multiplier."""
        return torch.rand([n], device=like.device) < self.p * multiplier

    @staticmethod
    def _lognormal2(n, std, mask, like):
        """2 ** (N(0,1) * std) where mask, 1 elsewhere ('lognormal(0, (std ln 2)^2)')."""
        value = torch.exp2(torch.randn([n], device=like.device, dtype=like.dtype) * std)
        return torch.where(mask, value, torch.ones_like(value))

    # -- forward --------------------------------------------------------------------------------

    def forward(self, images):
        """images [N, C, H, W] (about [-1, 1]) -> augmented images of the same shape."""
        if images.ndim != 4:
            raise ValueError(f'AugmentPipe expects images [N, C, H, W], got {list(images.shape)}.')
        n, _, height, width = images.shape
        g_inv, general = self._geometric_matrix(n, width, height, images)  # [N, 3, 3]
        images = self._apply_geometric(images, g_inv, general)
        images = self._apply_color(images, self._color_matrix(n, images))
        images = self._apply_imgfilter(images)
        images = self._apply_noise(images)
        return self._apply_cutout(images)

    # -- geometric (appendix B.1, B.2) ----------------------------------------------------------

    def _geometric_matrix(self, n, width, height, like):
        """Inverse transform [N, 3, 3] (output pixel -> input pixel, centred coordinates) and
        whether general (resampling) steps are enabled. Composing image transforms T1, T2
        means sampling the input at T1^-1 T2^-1 x, hence right-multiplication by inverses."""
        dtype, dev = like.dtype, like.device
        g_inv = torch.eye(3, dtype=dtype, device=dev).repeat(n, 1, 1)
        zero = torch.zeros([n], dtype=dtype, device=dev)

        if self.xflip > 0:
            flip = torch.randint(2, [n], device=dev).to(dtype)
            flip = torch.where(self._gate(self.xflip, n, like), flip, zero)
            g_inv = g_inv @ scale2d(1 - 2 * flip, torch.ones_like(flip))
        if self.rotate90 > 0:
            quarter = torch.randint(4, [n], device=dev).to(dtype)
            quarter = torch.where(self._gate(self.rotate90, n, like), quarter, zero)
            g_inv = g_inv @ rotate2d(-math.pi / 2 * quarter)
        if self.xint > 0:
            t = (torch.rand([n, 2], dtype=dtype, device=dev) * 2 - 1) * self.xint_max
            t = torch.where(self._gate(self.xint, n, like)[:, None], t, torch.zeros_like(t))
            g_inv = g_inv @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))

        general = any(m > 0 for m in (self.scale, self.rotate, self.aniso, self.xfrac))
        if self.scale > 0:
            s = self._lognormal2(n, self.scale_std, self._gate(self.scale, n, like), like)
            g_inv = g_inv @ scale2d(1 / s, 1 / s)
        # Rotation is applied twice (before and after anisotropic scaling); each with the
        # probability that makes "at least one rotation" happen with probability p * rotate.
        p_rot = 1 - torch.sqrt((1 - self.p * self.rotate).clamp(0, 1))
        if self.rotate > 0:
            g_inv = g_inv @ rotate2d(-self._rotation_angle(n, p_rot, like))
        if self.aniso > 0:
            s = self._lognormal2(n, self.aniso_std, self._gate(self.aniso, n, like), like)
            g_inv = g_inv @ scale2d(1 / s, s)
        if self.rotate > 0:
            g_inv = g_inv @ rotate2d(-self._rotation_angle(n, p_rot, like))
        if self.xfrac > 0:
            t = torch.randn([n, 2], dtype=dtype, device=dev) * self.xfrac_std
            t = torch.where(self._gate(self.xfrac, n, like)[:, None], t, torch.zeros_like(t))
            g_inv = g_inv @ translate2d(-t[:, 0] * width, -t[:, 1] * height)
        return g_inv, general

    def _rotation_angle(self, n, p_rot, like):
        theta = (torch.rand([n], dtype=like.dtype, device=like.device) * 2 - 1) * math.pi * self.rotate_max
        mask = torch.rand([n], device=like.device) < p_rot
        return torch.where(mask, theta, torch.zeros_like(theta))

    def _apply_geometric(self, images, g_inv, general):
        eye = torch.eye(3, dtype=g_inv.dtype, device=g_inv.device)
        if torch.equal(g_inv, eye.expand_as(g_inv)):
            return images  # nothing drawn: skip resampling, keep p=0 an exact identity
        if not general:
            return _blit(images, g_inv)
        return _resample(images, g_inv, self.Hz_geom)

    # -- colour (appendix B.3) ------------------------------------------------------------------

    def _color_matrix(self, n, like):
        if not any(m > 0 for m in (self.brightness, self.contrast, self.lumaflip, self.hue, self.saturation)):
            return None
        dtype, dev = like.dtype, like.device
        c = torch.eye(4, dtype=dtype, device=dev).repeat(n, 1, 1)
        luma = torch.tensor([1, 1, 1], dtype=dtype, device=dev) / math.sqrt(3)  # grey axis v
        zero = torch.zeros([n], dtype=dtype, device=dev)
        if self.brightness > 0:
            b = torch.randn([n], dtype=dtype, device=dev) * self.brightness_std
            b = torch.where(self._gate(self.brightness, n, like), b, zero)
            c = translate3d(b, b, b) @ c
        if self.contrast > 0:
            s = self._lognormal2(n, self.contrast_std, self._gate(self.contrast, n, like), like)
            c = scale3d(s, s, s) @ c
        if self.lumaflip > 0:
            flip = torch.randint(2, [n], device=dev).to(dtype)
            flip = torch.where(self._gate(self.lumaflip, n, like), flip, zero)
            # Householder reflection across the plane orthogonal to v: I - 2 v v^T.
            c = _embed3(torch.eye(3, dtype=dtype, device=dev) - 2 * torch.outer(luma, luma) * flip[:, None, None]) @ c
        if self.hue > 0:
            theta = (torch.rand([n], dtype=dtype, device=dev) * 2 - 1) * math.pi * self.hue_max
            theta = torch.where(self._gate(self.hue, n, like), theta, zero)
            c = rotate3d(luma, theta) @ c
        if self.saturation > 0:
            s = self._lognormal2(n, self.saturation_std, self._gate(self.saturation, n, like), like)
            vv = torch.outer(luma, luma)
            c = _embed3(vv + (torch.eye(3, dtype=dtype, device=dev) - vv) * s[:, None, None]) @ c
        return c

    @staticmethod
    def _apply_color(images, c):
        if c is None:
            return images
        n, channels, height, width = images.shape
        if channels == 1:  # grey stays grey: hue and saturation act only off the grey axis
            rgb = images.expand(n, 3, height, width)
        elif channels >= 3:
            rgb = images[:, :3]
        else:
            raise ValueError(f'colour augmentations need 1 or >= 3 channels, got {channels}.')
        rgb = rgb.reshape(n, 3, height * width)
        rgb = c[:, :3, :3] @ rgb + c[:, :3, 3:]                 # [N, 3, H*W]
        rgb = rgb.reshape(n, 3, height, width)
        if channels == 1:
            return rgb.mean(dim=1, keepdim=True)
        return torch.cat([rgb, images[:, 3:]], dim=1)

    # -- image-space filtering (appendix B.4) ---------------------------------------------------

    def _apply_imgfilter(self, images):
        if self.imgfilter <= 0:
            return images
        n = images.shape[0]
        gains = torch.ones([n, 4], dtype=images.dtype, device=images.device)
        for band, multiplier in enumerate(self.imgfilter_bands):
            if multiplier > 0:
                mask = self._gate(self.imgfilter * multiplier, n, images)
                gains[:, band] = self._lognormal2(n, self.imgfilter_std, mask, images)
        if not bool((gains != 1).any()):
            return images
        power = torch.as_tensor(BAND_POWER, dtype=images.dtype, device=images.device)
        gains = gains / (gains.square() * power).sum(dim=1, keepdim=True).sqrt()  # keep power
        taps = gains @ self.Hz_fbank.to(images.dtype)           # [N, 43]
        return _filter_separable(images, taps)

    # -- corruptions (appendix B.5) -------------------------------------------------------------

    def _apply_noise(self, images):
        if self.noise <= 0:
            return images
        n = images.shape[0]
        sigma = torch.randn([n], dtype=images.dtype, device=images.device).abs() * self.noise_std
        sigma = torch.where(self._gate(self.noise, n, images), sigma, torch.zeros_like(sigma))
        return images + torch.randn_like(images) * sigma[:, None, None, None]

    def _apply_cutout(self, images):
        if self.cutout <= 0:
            return images
        n, _, height, width = images.shape
        size = torch.full([n], self.cutout_size, dtype=images.dtype, device=images.device)
        size = torch.where(self._gate(self.cutout, n, images), size, torch.zeros_like(size))
        center = torch.rand([n, 2], dtype=images.dtype, device=images.device)
        ys = (torch.arange(height, dtype=images.dtype, device=images.device) + 0.5) / height
        xs = (torch.arange(width, dtype=images.dtype, device=images.device) + 0.5) / width
        inside_x = (xs[None, :] - center[:, 0:1]).abs() < size[:, None] / 2   # [N, W]
        inside_y = (ys[None, :] - center[:, 1:2]).abs() < size[:, None] / 2   # [N, H]
        keep = ~(inside_y[:, :, None] & inside_x[:, None, :])                  # [N, H, W]
        return images * keep[:, None].to(images.dtype)


# ----------------------------------------------------------------------------------------------
# Geometric resampling.

def _pixel_grid(height, width, scale, like, extra=0):
    """Centred coordinates of the pixel centres of a (height*scale, width*scale) grid, grown by
    `extra` pixels on every side, in units of original pixels: x = (k + 0.5) / scale - width / 2
    for k = -extra ... width*scale + extra - 1. Returns [H*s+2e, W*s+2e, 3] homogeneous."""
    ys = (torch.arange(-extra, height * scale + extra, dtype=like.dtype, device=like.device) + 0.5) / scale - height / 2
    xs = (torch.arange(-extra, width * scale + extra, dtype=like.dtype, device=like.device) + 0.5) / scale - width / 2
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)


def _reflect_index(idx, size):
    """Mirror indices into [0, size) without repeating the edge pixel ('reflect' padding)."""
    period = 2 * (size - 1) if size > 1 else 1
    idx = torch.remainder(idx, period)
    return torch.where(idx >= size, period - idx, idx)


def _blit(images, g_inv):
    """Exact integer moves (flips, 90-degree rotations, integer shifts) by pixel indexing."""
    n, _, height, width = images.shape
    grid = _pixel_grid(height, width, 1, images)                          # [H, W, 3]
    src = torch.einsum('nij,hwj->nhwi', g_inv.to(images.dtype), grid)      # [N, H, W, 3]
    xi = torch.round(src[..., 0] + width / 2 - 0.5).long()
    yi = torch.round(src[..., 1] + height / 2 - 0.5).long()
    xi, yi = _reflect_index(xi, width), _reflect_index(yi, height)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images[batch, :, yi, xi].permute(0, 3, 1, 2)                   # [N, C, H, W]


def _resample(images, g_inv, hz):
    """Pad (reflect), upsample 2x, sample at g_inv positions, downsample 2x (appendix B.2)."""
    n, channels, height, width = images.shape
    margin = _margins(g_inv, width, height, taps=hz.numel())
    x0, x1, y0, y1 = margin
    padded = F.pad(images, [x0, x1, y0, y1], mode='reflect') if any(margin) else images
    hz = hz.to(images.dtype)
    up = upfirdn2d.upsample2d(padded, hz, up=2)                           # [N, C, 2Hp, 2Wp]
    # sym6 is not symmetric: each 2x filtering stage moves the content by `delay` input
    # pixels (upsampled sample q shows content at q + delay; downsampled sample j shows the
    # high-resolution sample at j + delay). Shifting the sampling positions cancels both.
    delay = _filter_delay(hz)
    # Sample `extra` high-resolution pixels beyond the output on each side, so that the 2x
    # downsampling filter sees image content instead of zero padding at the borders.
    extra = (hz.numel() - 1) // 2
    grid = _pixel_grid(height, width, 2, images, extra)                   # [2H+2e, 2W+2e, 3]
    grid = grid - torch.tensor([delay, delay, 0], dtype=grid.dtype, device=grid.device)
    src = torch.einsum('nij,hwj->nhwi', g_inv.to(images.dtype), grid)      # centred input coords
    src = src - delay
    wp, hp = width + x0 + x1, height + y0 + y1
    gx = (src[..., 0] + width / 2 + x0) / wp * 2 - 1                      # [-1, 1] over padded
    gy = (src[..., 1] + height / 2 + y0) / hp * 2 - 1
    sampled = grid_sample_op.grid_sample(up, torch.stack([gx, gy], dim=-1))  # [N, C, 2H, 2W]
    return upfirdn2d.downsample2d(sampled, hz, down=2, padding=-extra)     # [N, C, H, W]


def _filter_delay(hz):
    """Content shift, in input pixels, of one 2x up- or down-sampling stage with filter hz."""
    taps = torch.arange(hz.numel(), dtype=torch.float64)
    centre_of_mass = float((taps * hz.double()).sum() / hz.double().sum())
    return ((hz.numel() - 1) / 2 - centre_of_mass) / 2


def _margins(g_inv, width, height, taps):
    """Reflect padding [x0, x1, y0, y1] that covers every sampled position plus the filter
    support; at most size - 1 (the limit of reflection; beyond it grid sampling sees zeros)."""
    corners = torch.tensor([[-width / 2, -height / 2, 1], [width / 2, -height / 2, 1],
                            [-width / 2, height / 2, 1], [width / 2, height / 2, 1]],
                           dtype=g_inv.dtype, device=g_inv.device)
    src = (g_inv.detach() @ corners.T)[:, :2]                              # [N, 2, 4]
    support = taps / 2 + 1   # input pixels: upsampling filter plus the extra border samples
    lo = (-src.amin(dim=(0, 2)) - torch.tensor([width / 2, height / 2], dtype=src.dtype, device=src.device))
    hi = (src.amax(dim=(0, 2)) - torch.tensor([width / 2, height / 2], dtype=src.dtype, device=src.device))
    lo, hi = (lo + support).ceil().clamp(min=0).tolist(), (hi + support).ceil().clamp(min=0).tolist()
    return [int(min(lo[0], width - 1)), int(min(hi[0], width - 1)),
            int(min(lo[1], height - 1)), int(min(hi[1], height - 1))]


def _filter_separable(images, taps):
    """Convolve each image with its own zero-phase 1-D filter taps [N, K] along x, then y."""
    n, channels, height, width = images.shape
    k = taps.shape[1]
    pad = k // 2
    mode = 'reflect' if pad < min(height, width) else 'replicate'
    weight = taps.repeat_interleave(channels, dim=0)                      # [N*C, K]
    x = images.reshape(1, n * channels, height, width)
    x = F.conv2d(F.pad(x, [pad, pad, 0, 0], mode=mode), weight[:, None, None, :], groups=n * channels)
    x = F.conv2d(F.pad(x, [0, 0, pad, pad], mode=mode), weight[:, None, :, None], groups=n * channels)
    return x.reshape(n, channels, height, width)


# ----------------------------------------------------------------------------------------------

class AdaController:
    """Adjusts `augment_pipe.p` from the overfitting heuristic r_t = E[sign(D(real))]
    (ADA section 3): every `interval` steps, p moves by sign(r_t - target) * (images seen in
    those steps) / (kimg * 1000), so p can go from 0 to 1 within `kimg` thousand images.
    p is clamped to [0, 1]. In multi-process training the sign statistics are summed over
    all processes before each adjustment, so every rank computes the same p.
    """

    def __init__(self, target=0.6, interval=4, kimg=500):
        self.target = float(target)
        self.interval = int(interval)
        self.kimg = float(kimg)
        self.sign_sum = 0.0     # sum of sign(D(real)) since the last adjustment
        self.count = 0          # number of logits in sign_sum
        self.steps = 0          # calls of `step` so far
        self.rt = None          # last r_t (for reporting)

    def accumulate(self, real_logits: torch.Tensor):
        """Record D's logits on (augmented) real images of one step."""
        logits = real_logits.detach()
        self.sign_sum += float(torch.sign(logits).sum())
        self.count += logits.numel()

    def step(self, augment_pipe: AugmentPipe, batch_size: int) -> bool:
        """Call once per training step (`batch_size` = images per step over all processes).
        Returns True when p was adjusted."""
        self.steps += 1
        if self.steps % self.interval != 0:
            return False
        stats = torch.tensor([self.sign_sum, float(self.count)], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            stats = stats.to(augment_pipe.p.device)
            torch.distributed.all_reduce(stats)
        sign_sum, count = stats.tolist()
        self.sign_sum, self.count = 0.0, 0
        if count == 0:
            return False
        self.rt = sign_sum / count
        adjust = np.sign(self.rt - self.target) * (batch_size * self.interval) / (self.kimg * 1000)
        with torch.no_grad():
            augment_pipe.p.copy_((augment_pipe.p + adjust).clamp(0, 1))
        return True

    def state_dict(self) -> dict:
        return dict(target=self.target, interval=self.interval, kimg=self.kimg,
                    sign_sum=self.sign_sum, count=self.count, steps=self.steps, rt=self.rt)

    def load_state_dict(self, state: dict):
        for key in ('target', 'interval', 'kimg', 'sign_sum', 'count', 'steps', 'rt'):
            setattr(self, key, state[key])
