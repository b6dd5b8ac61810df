"""3x3 convolution by Winograd's minimal filtering F(4x4, 3x3) on CPU (native backend).

`conv2d(x, w, padding, groups)` equals `torch.nn.functional.conv2d` (stride 1, correlation).
For 3x3 filters on large enough maps, the native backend computes it as
    y = A^T [ (G w G^T) . (B^T x B) ] A        per 6x6 input / 4x4 output tile
(Lavin & Gray 2016, section 4): the input tiles and the output are transformed in C++
(ops/native/winograd.cpp), and the 36 element-wise products summed over input channels are one
batched matmul, [36 * groups] x [O, I] @ [I, tiles]. The matmul does 36 multiply-adds per 16
outputs instead of 144, so a StyleGAN3 layer at 256 px runs ~1.5-2x faster than torch's direct
convolution on CPU. The result differs from the direct one by rounding only (~1e-5 relative in
float32: the transforms' coefficients range from 1/24 to 8).

Used for inference: when autograd must record the convolution, the native path steps aside and
torch's conv2d (with its own gradients) runs instead, as it does for the reference backend,
other devices and dtypes, and small maps where the transforms cost more than they save.
"""

import math
import weakref

import torch
import torch.nn.functional as F

from ops.backend import resolve_impl

# Interpolation points 0, +-1, +-2, infinity (Lavin & Gray, F(4x4, 3x3)); float64, exact enough
# for both dtypes.
_G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
_G_KRON = torch.kron(_G, _G)                                                   # [36, 9]

# Where Winograd pays off, measured on 2 cores against torch's direct convolution (weight
# transform cached, as in a generator): the transforms cost ~(I + O) per tile and the matmul
# saves ~I * O, so it needs wide layers, and the wider the map the better it amortises.
# Speedups: 512 channels 1.4-2.5x (36-148 px); 181 channels 1.1x at 36 px, 1.7x at 148 px,
# 2.5x at 276 px; 128 channels 0.8-1.0x below 84 px, 1.2x at 148 px, 1.8x at 276 px; 32-96
# channels 0.3-0.8x everywhere (the bundled 64 px models stay direct).
MIN_TILES = 64                 # output tiles per image (4 x 4 samples each): maps of >= ~30 px
LARGE_MAP_TILES = 1296         # maps of >= ~142 px
MIN_CHANNEL_PRODUCT = 88       # I * O / (I + O) per group: ~176 channels in and out ...
MIN_CHANNEL_PRODUCT_LARGE = 60  # ... or ~120 on large maps


# Transforms of persistent weights (parameters), keyed like the native taps cache: by the
# tensor's id, checked against a weak reference and its version counter.
_CACHE: dict = {}
_CACHE_SIZE = 64


def applies(x: torch.Tensor, w: torch.Tensor, padding=0, groups: int = 1, impl: str = 'auto') -> bool:
    """Whether conv2d(x, w, padding, groups, impl) takes the Winograd path."""
    if not (x.is_cpu and w.is_cpu and x.dtype in (torch.float32, torch.float64)):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return False
    if x.ndim != 4 or w.ndim != 4 or tuple(w.shape[2:]) != (3, 3) or x.shape[1] != w.shape[1] * groups:
        return False
    if type(padding) is not int or padding < 0 or w.shape[0] % groups:
        return False
    tiles = math.ceil((x.shape[2] + 2 * padding - 2) / 4) * math.ceil((x.shape[3] + 2 * padding - 2) / 4)
    in_channels, out_channels = w.shape[1], w.shape[0] // groups
    product = in_channels * out_channels / (in_channels + out_channels)
    wide = product >= (MIN_CHANNEL_PRODUCT_LARGE if tiles >= LARGE_MAP_TILES else MIN_CHANNEL_PRODUCT)
    return wide and tiles >= MIN_TILES and resolve_impl(impl, x) == 'native'


def conv2d(x: torch.Tensor, w: torch.Tensor, padding: int = 0, groups: int = 1, impl: str = 'auto',
           cache_weight: bool = False) -> torch.Tensor:
    """F.conv2d(x, w.to(x.dtype), padding=padding, groups=groups), through Winograd where it
    pays off. `cache_weight`: w is a persistent tensor (a parameter), so its transform is kept
    and reused until w changes."""
    return scaled_conv2d(x, w, None, None, padding, groups, impl, cache_weight)


def scaled_conv2d(x, w, in_scale=None, out_scale=None, padding: int = 0, groups: int = 1,
                  impl: str = 'auto', cache_weight: bool = False) -> torch.Tensor:
    """out_scale * conv2d(in_scale * x, w) with per-image, per-channel scales in_scale
    [N, C_in] and out_scale [N, C_out] (None: 1). The Winograd path applies them inside its
    transforms, so a modulated convolution (StyleGAN2 eq. 1-3, in its input-scaling form)
    costs no pass over the activations beyond the convolution itself."""
    if not applies(x, w, padding, groups, impl):
        if in_scale is not None:
            x = x * in_scale.to(x.dtype)[:, :, None, None]
        x = F.conv2d(x, w.to(x.dtype), padding=padding, groups=groups)
        return x if out_scale is None else x * out_scale.to(x.dtype)[:, :, None, None]
    from ops.native import functions
    u = _cached_transform(w, x.dtype) if cache_weight else None
    if u is None:
        u = weight_transform(w.to(x.dtype), out=functions.empty_huge([36, *w.shape[:2]], x.dtype))
        if cache_weight and not w.is_inference():
            _remember(w, x.dtype, u)
    return functions.winograd_conv3x3(x, u, padding, groups, in_scale, out_scale)


def weight_transform(w: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """G w G^T of every filter: w [groups * O, I, 3, 3] -> [36, groups * O, I].

    One matmul with the Kronecker product, vec(G w G^T) = (G kron G) vec(w), written straight
    into the layout the batched matmul reads."""
    out_channels, in_channels = w.shape[:2]
    u = torch.empty([36, out_channels, in_channels], dtype=w.dtype) if out is None else out
    torch.matmul(_G_KRON.to(w.dtype), w.reshape(out_channels * in_channels, 9).t(),
                 out=u.view(36, out_channels * in_channels))
    return u


def _cached_transform(w, dtype):
    if w.is_inference():  # inference tensors have no version counter
        return None
    entry = _CACHE.get((id(w), dtype))
    if entry is not None and entry[0]() is w and entry[1] == w._version:
        return entry[2]
    return None


def _remember(w, dtype, u):
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    key = (id(w), dtype)
    # The entry goes when the weight does (a transform can be ~40 MB).
    _CACHE[key] = (weakref.ref(w, lambda _, key=key: _CACHE.pop(key, None)), w._version, u)
