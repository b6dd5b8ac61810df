"""Pure-torch building blocks of the Renderer; gen_images.py / gen_video.py may use them too.

Nothing here knows about GL, imgui or a window. Images are NCHW float tensors unless a function
says it returns a uint8 HWC numpy array for display.
"""

import math

import numpy as np
import torch

from torch_utils import gen_utils

SEED_ROW = 1 << 16      # the seed plane: integer point (i, j) is seed (i + j * SEED_ROW) mod 2**32
SEED_MOD = 1 << 32      # np.random.RandomState accepts seeds in [0, 2**32)


# ----------------------------------------------------------------------------------------------
# Latents.

def latent_corners(seed: int, offset_x: float, offset_y: float) -> list[tuple[int, float]]:
    """The four integer points around (seed + offset_x, offset_y) as (seed, bilinear weight).

    Moving the position continuously therefore morphs smoothly between neighbouring seeds; at
    integer positions one weight is 1 and the frame is exactly that seed's image.
    """
    px, py = seed + offset_x, offset_y
    ix, iy = math.floor(px), math.floor(py)
    fx, fy = px - ix, py - iy
    corners = []
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            corners.append((((ix + dx) + (iy + dy) * SEED_ROW) % SEED_MOD, wx * wy))
    return corners


def blend_ws(ws: torch.Tensor, weights) -> torch.Tensor:
    """Weighted sum over the batch: ws [K, num_ws, w_dim], weights [K] -> [1, num_ws, w_dim]."""
    weights = torch.as_tensor(weights, dtype=ws.dtype, device=ws.device)  # [K]
    return (ws * weights[:, None, None]).sum(dim=0, keepdim=True)


def apply_style_mix(ws: torch.Tensor, ws_mix: torch.Tensor, layers) -> torch.Tensor:
    """Take the w entries listed in `layers` from ws_mix (StyleGAN paper, section 3.1 mixing)."""
    layers = [i for i in layers if 0 <= i < ws.shape[1]]
    if not layers:
        return ws
    ws = ws.clone()
    ws[:, layers] = ws_mix[:, layers]
    return ws


# ----------------------------------------------------------------------------------------------
# Input transform and its inverse warp (StyleGAN3 paper, section 3.1 and Figure 1 "untransform").

def forward_transform(translate, rotate_turns: float) -> np.ndarray:
    """3x3 matrix M that moves image content from x to M x (coordinates in image widths, origin at
    the image centre, y pointing down): gen_images.py's --translate/--rotate, with rotate in turns."""
    return gen_utils.make_transform(translate, 360.0 * rotate_turns)


def input_transform(translate, rotate_turns: float) -> np.ndarray:
    """Value for G.synthesis.input.transform: the Fourier features are sampled at T x, T = M^-1."""
    return np.linalg.inv(forward_transform(translate, rotate_turns))


def lanczos(t: torch.Tensor, a: int) -> torch.Tensor:
    """Lanczos-a kernel sinc(t) sinc(t / a) for |t| < a, else 0 (a windowed sinc)."""
    return torch.where(t.abs() < a, torch.sinc(t) * torch.sinc(t / a), torch.zeros_like(t))


def affine_resample(img: torch.Tensor, matrix: np.ndarray, a: int = 3) -> torch.Tensor:
    """out(x) = img(matrix @ x) with a separable Lanczos-a interpolator; outside samples are 0.

    img [N, C, H, W]; matrix 3x3 (or 2x3) in normalised coordinates (image width = 1, origin at
    the centre). A band-limited kernel keeps the resampling from adding its own aliasing, so any
    difference left after untransforming is the generator's, not ours.
    """
    N, C, H, W = img.shape
    m = torch.as_tensor(np.asarray(matrix, dtype=np.float64)[:2], device=img.device)
    ys = (torch.arange(H, device=img.device, dtype=torch.float64) + 0.5) / H - 0.5
    xs = (torch.arange(W, device=img.device, dtype=torch.float64) + 0.5) / W - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')                       # [H, W]
    sx = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2] + 0.5) * W - 0.5          # source pixel coords
    sy = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2] + 0.5) * H - 0.5
    x0, y0 = torch.floor(sx), torch.floor(sy)
    flat = img.reshape(N * C, H * W)
    out = torch.zeros(N * C, H * W, dtype=img.dtype, device=img.device)
    wsum = torch.zeros(H * W, dtype=torch.float64, device=img.device)
    for j in range(-a + 1, a + 1):
        iy = y0 + j
        wy = lanczos(sy - iy, a)
        for i in range(-a + 1, a + 1):
            ix = x0 + i
            w = (wy * lanczos(sx - ix, a)).reshape(-1)                   # [H*W]
            wsum += w
            inside = ((ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)).reshape(-1)
            index = (iy.clamp(0, H - 1) * W + ix.clamp(0, W - 1)).reshape(-1).long()
            out += flat[:, index] * (w * inside).to(img.dtype)
    out = out / wsum.clamp_min(1e-8).to(img.dtype)
    return out.reshape(N, C, H, W)


def untransform(img: torch.Tensor, translate, rotate_turns: float) -> torch.Tensor:
    """Undo the input transform on the output: content generated at M x0 is moved back to x0."""
    return affine_resample(img, forward_transform(translate, rotate_turns))


# ----------------------------------------------------------------------------------------------
# Display helpers.

def image_to_uint8(img: torch.Tensor) -> np.ndarray:
    """[C, H, W] in about [-1, 1] -> uint8 [H, W, 3] (grey images repeated, extra channels dropped)."""
    img = (img[:3].float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)   # [C, H, W]
    if img.shape[0] != 3:
        img = img[:1].expand(3, -1, -1)
    return img.permute(1, 2, 0).contiguous().cpu().numpy()


def select_channels(x: torch.Tensor, channel: int, rgb: bool) -> torch.Tensor:
    """[C, H, W] -> the displayed channels: one, or three consecutive ones as R, G, B."""
    count = 3 if rgb else 1
    first = max(0, min(int(channel), x.shape[0] - 1))
    sel = x[first:first + count]
    if sel.shape[0] < count:                      # past the last channel: pad with black
        sel = torch.cat([sel, torch.zeros_like(x[:count - sel.shape[0]])])
    return sel


def feature_to_uint8(x: torch.Tensor, channel: int, rgb: bool, normalize: bool, scale_db: float) -> np.ndarray:
    """Feature map [C, H, W] -> uint8 [H, W, 3]. With `normalize`, +-4 std fill the display range."""
    sel = select_channels(x.float(), channel, rgb)
    if normalize:
        sel = sel / (4.0 * sel.std().clamp_min(1e-8))
    sel = sel * (10.0 ** (scale_db / 20.0))
    return image_to_uint8(sel)


def tensor_stats(x: torch.Tensor) -> dict:
    x = x.float()
    return {'mean': float(x.mean()), 'std': float(x.std()) if x.numel() > 1 else 0.0, 'max': float(x.abs().max())}


def power_spectrum_db(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean power spectrum of [C, H, W] in dB, DC at the centre. A separable Kaiser window
    (beta) suppresses the leakage the image border would otherwise spread over all frequencies."""
    C, H, W = x.shape
    window = torch.kaiser_window(H, periodic=False, beta=beta, dtype=torch.float64)[:, None] * \
        torch.kaiser_window(W, periodic=False, beta=beta, dtype=torch.float64)[None, :]   # [H, W]
    window = window / window.square().mean().sqrt()                      # keep the power scale
    spec = torch.fft.fft2(x.double() * window).abs().square().mean(dim=0)  # [H, W]
    spec = torch.fft.fftshift(spec)
    return 10.0 * torch.log10(spec + 1e-30)


# Anchor colours of the spectrum colour map (dark purple -> red -> yellow -> white).
_COLORMAP = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
    [245, 125, 21], [250, 193, 39], [252, 255, 164],
], dtype=np.float64) / 255.0


def colormap(v: torch.Tensor) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB [..., 3] by piecewise-linear interpolation of the anchors."""
    v = v.clamp(0, 1).double().cpu().numpy() * (len(_COLORMAP) - 1)
    lo = np.floor(v).astype(np.int64).clip(0, len(_COLORMAP) - 2)
    frac = (v - lo)[..., None]
    rgb = _COLORMAP[lo] * (1 - frac) + _COLORMAP[lo + 1] * frac
    return (rgb * 255 + 0.5).astype(np.uint8)


def spectrum_to_uint8(x: torch.Tensor, beta: float, range_db: float) -> np.ndarray:
    """[C, H, W] -> colour-mapped power spectrum, the top `range_db` dB below the peak."""
    db = power_spectrum_db(x, beta)
    return colormap((db - (db.max() - range_db)) / max(range_db, 1e-6))
