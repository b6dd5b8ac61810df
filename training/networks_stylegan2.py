"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the
Image Quality of StyleGAN"), plus the shared building blocks StyleGAN3 reuses.

Constructor keyword names, submodule names, parameters and buffers are those of the public
reference implementation, so that its state dicts and `init_kwargs` load unchanged
(`../shared/reference/stylegan2.json` lists them). Parameters are stored raw and scaled at run
time ("equalized learning rate", StyleGAN (Karras et al. 2019) section 4.1 / ProGAN section 4.1).

The `stylegan2-fourier` variant (`input_type='fourier'`) replaces the learned 4x4 constant by
the StyleGAN3 Fourier-feature input (StyleGAN3 paper, config B); see docs/networks.md.
"""

import copy
import functools
import inspect
import math

import numpy as np
import torch
import torch.nn.functional as F

from ops import bias_act, conv2d_resample, upfirdn2d

DEFAULT_RESAMPLE_FILTER = (1, 3, 3, 1)   # binomial filter used for all 2x resampling


def plain_kwargs(value):
    """Deep copy of constructor kwargs as plain JSON-able Python (EasyDict -> dict, numpy ->
    Python numbers, tuples -> lists), so network files never pickle a class."""
    if isinstance(value, dict):
        return {str(k): plain_kwargs(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_kwargs(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return copy.deepcopy(value)


def records_init_kwargs(init):
    """Decorator for top-level network constructors: after construction, `self.init_kwargs`
    holds the arguments the caller passed (by name, positional ones included, defaults left
    out), as plain JSON-able data; this is exactly what network files store to rebuild it."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        recorded = {}
        for name, value in list(bound.arguments.items())[1:]:
            if signature.parameters[name].kind == inspect.Parameter.VAR_KEYWORD:
                recorded.update(value)
            else:
                recorded[name] = value
        init(self, *args, **kwargs)
        self.init_kwargs = plain_kwargs(recorded)
    return wrapper


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit mean square (StyleGAN section 2: z is normalised first)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def compute_dtype(use_fp16: bool, force_fp32: bool, device: torch.device) -> torch.dtype:
    """float16 only where the layer allows it, the caller does not forbid it, and the device
    is CUDA; on CPU everything runs in float32 (half precision is slow and inexact there)."""
    if use_fp16 and not force_fp32 and device.type == 'cuda':
        return torch.float16
    return torch.float32


# ----------------------------------------------------------------------------------------------
# Basic layers.

class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate: y = act(x W^T * g_w + b * g_b) where
    g_w = lr_multiplier / sqrt(in_features) and g_b = lr_multiplier."""

    def __init__(self, in_features, out_features, activation='linear', bias=True,
                 lr_multiplier=1, weight_init=1, bias_init=0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self):
        return f'in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}'


class Conv2dLayer(torch.nn.Module):
    """Convolution with optional 2x up/down resampling, bias, activation and clamping
    (used by the discriminator and the resnet skip connections)."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation='linear',
                 up=1, down=1, resample_filter=DEFAULT_RESAMPLE_FILTER, conv_clamp=None,
                 channels_last=False, trainable=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = bias_act.ACTIVATIONS[activation].def_gain
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=self.memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:  # frozen layers (discriminator freeze_layers) keep their weights as buffers
            self.register_buffer('weight', weight)
            self.register_buffer('bias', bias)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample.conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up,
                                            down=self.down, padding=self.padding,
                                            flip_weight=(self.up == 1))
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'activation={self.activation}, up={self.up}, down={self.down}')


class MappingNetwork(torch.nn.Module):
    """z (+ embedded label c) -> w through an MLP; tracks the average w for truncation
    (StyleGAN section 2 and the truncation trick, appendix B)."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None,
                 layer_features=None, activation='lrelu', lr_multiplier=0.01, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        self._fcs = [f'fc{idx}' for idx in range(num_layers)]
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = self._embed(z, c)                                          # [N, z_dim + embed]
        for name in self._fcs:
            x = getattr(self, name)(x)                                 # [N, w_dim]
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])             # [N, num_ws, w_dim]
        if truncation_psi != 1:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def _embed(self, z, c):
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f'z must have shape [N, {self.z_dim}], got {None if z is None else list(z.shape)}.')
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f'this network is conditional: c must have shape [N, {self.c_dim}], '
                                 f'got {None if c is None else list(c.shape)}.')
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def truncate(self, ws, psi, cutoff=None):
        """w' = w_avg + psi (w - w_avg) on the first `cutoff` ws (all when None)."""
        if self.w_avg_beta is None or not hasattr(self, 'w_avg'):
            raise ValueError('truncation needs a tracked w_avg; this mapping network has none.')
        if ws.ndim == 2 or cutoff is None:
            return self.w_avg.lerp(ws, psi)
        ws = ws.clone()
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws

    def extra_repr(self):
        return f'z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}'


# ----------------------------------------------------------------------------------------------
# Synthesis network.

def squared_norms(weight: torch.Tensor) -> torch.Tensor:
    """sum_k w_oik^2 per (output, input) channel pair: [O, I, kh, kw] -> [O, I].
    (einsum runs ~3x faster than square().sum() here and has plain polynomial gradients,
    which the second-order regularisers need.)"""
    w = weight.flatten(2)
    return torch.einsum('oik,oik->oi', w, w)


def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """Modulated (and demodulated) convolution, StyleGAN2 section 2.2, equations 1-3:
    w'_ijk = s_i w_ijk, w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps).

    fused: one grouped convolution with per-sample weights (fast at inference);
    non-fused: scale activations before/after a shared-weight convolution (cheaper gradients).
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so fp16 cannot overflow; demodulation removes these scales again.
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)
    dcoefs = None
    if demodulate:
        # sum_ik (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2: no per-sample weight tensor needed.
        w_sq = squared_norms(weight)                                            # [O, I]
        dcoefs = (styles.square() @ w_sq.t() + 1e-8).rsqrt()                    # [N, O]
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                            padding=padding, flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    scale = styles.unsqueeze(1)                                                 # [N, 1, I]
    if demodulate:
        scale = scale * dcoefs.unsqueeze(2)                                     # [N, O, I]
    w = weight.unsqueeze(0) * scale.unsqueeze(3).unsqueeze(4)                   # [N, O, I, k, k]
    x = x.reshape(1, -1, *x.shape[2:])                                          # [1, N*I, H, W]
    w = w.reshape(-1, in_channels, kh, kw)                                      # [N*O, I, k, k]
    x = conv2d_resample.conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])                                 # [N, O, H', W']
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class SynthesisLayer(torch.nn.Module):
    """Style-modulated 3x3 convolution (optionally 2x upsampling), per-pixel noise, bias and
    leaky ReLU (StyleGAN2 figure 2d)."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1,
                 use_noise=True, activation='lrelu', resample_filter=DEFAULT_RESAMPLE_FILTER,
                 conv_clamp=None, channels_last=False):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = bias_act.ACTIVATIONS[activation].def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='const', fused_modconv=True, gain=1):
        styles = self.affine(w)                                                  # [N, I]
        noise = self._noise(x, noise_mode)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation,
                                 gain=self.act_gain * gain, clamp=act_clamp)

    def _noise(self, x, noise_mode):
        """Per-pixel noise [N|1, 1, res, res] scaled by the learned strength (StyleGAN sec. 2)."""
        if noise_mode not in ('random', 'const', 'none'):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}.")
        if not self.use_noise or noise_mode == 'none':
            return None
        if noise_mode == 'const':
            return self.noise_const * self.noise_strength
        shape = [x.shape[0], 1, self.resolution, self.resolution]
        return torch.randn(shape, device=x.device) * self.noise_strength

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'resolution={self.resolution}, up={self.up}, activation={self.activation}')


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, out_channels={self.out_channels}'


class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: [const | input] -> (conv0 up2) -> conv1 -> toRGB,
    with architecture 'orig', 'skip' (sum of upsampled RGB outputs) or 'resnet'
    (StyleGAN2 section 4.1, figure 7)."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last,
                 architecture='skip', resample_filter=DEFAULT_RESAMPLE_FILTER, conv_clamp=256,
                 use_fp16=False, fp16_channels_last=False, fused_modconv_default=True,
                 has_const=True, **layer_kwargs):
        super().__init__()
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}.")
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.num_conv = 0
        self.num_torgb = 0
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        common = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 and has_const:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, **common, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **common, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, **common)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, update_emas=False, **layer_kwargs):
        del update_emas  # StyleGAN2 synthesis tracks no statistics
        w_iter = iter(ws.unbind(dim=1))
        dtype = compute_dtype(self.use_fp16, force_fp32, ws.device)
        memory_format = torch.channels_last if self.channels_last and dtype == torch.float16 else torch.contiguous_format
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == 'inference_only':
            fused_modconv = not self.training
        if self.in_channels == 0 and x is None:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])                    # [N, C, 4, 4]
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
        x = self._main_layers(x, w_iter, fused_modconv, layer_kwargs)
        if img is not None:
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img

    def _main_layers(self, x, w_iter, fused_modconv, layer_kwargs):
        if self.in_channels == 0:
            return self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        if self.architecture == 'resnet':
            # sqrt(1/2) keeps the variance of the sum equal to that of each branch.
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            return y + x
        x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        return self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

    def extra_repr(self):
        return f'resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}'


# Fourier input of the `stylegan2-fourier` variant: a 4x4 grid spanning the unit canvas
# (4 samples per unit, the same canvas as the output image), frequencies up to 1.5 cycles
# per unit, i.e. below the grid's Nyquist rate 2 so the amplitude fade of SynthesisInput is
# well defined. See docs/networks.md.
FOURIER_INPUT_SAMPLING_RATE = 4
FOURIER_INPUT_BANDWIDTH = 1.5


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, res, res] through blocks 4x4 ... res."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512,
                 num_fp16_res=4, input_type='const', **block_kwargs):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution}.')
        if input_type not in ('const', 'fourier'):
            raise ValueError(f"input_type must be 'const' or 'fourier', got {input_type!r}.")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_fp16_res = num_fp16_res
        self.input_type = input_type
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if input_type == 'fourier':
            # Imported here: networks_stylegan3 builds on this module (no import cycle at load).
            from training.networks_stylegan3 import SynthesisInput
            self.input = SynthesisInput(w_dim, channels=channels[4], size=4,
                                        sampling_rate=FOURIER_INPUT_SAMPLING_RATE,
                                        bandwidth=FOURIER_INPUT_BANDWIDTH)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                                   resolution=res, img_channels=img_channels, is_last=(res == img_resolution),
                                   use_fp16=(res >= fp16_resolution), has_const=(input_type == 'const'),
                                   **block_kwargs)
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)
        # (block, first w index, number of ws) computed once: forward does no bookkeeping.
        self._block_ws, w_idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            self._block_ws.append((f'b{res}', w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv

    def forward(self, ws, noise_mode='const', force_fp32=False, update_emas=False, **block_kwargs):
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f'ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}.')
        ws = ws.to(torch.float32)
        # The Fourier input reads the same w as the first convolution, so num_ws (and style
        # mixing indices) are those of plain StyleGAN2.
        x = self.input(ws[:, 0]) if self.input_type == 'fourier' else None
        img = None
        for name, start, count in self._block_ws:
            x, img = getattr(self, name)(x, img, ws.narrow(1, start, count), noise_mode=noise_mode,
                                         force_fp32=force_fp32, update_emas=update_emas, **block_kwargs)
        return img

    def extra_repr(self):
        return (f'w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, '
                f'img_channels={self.img_channels}, num_fp16_res={self.num_fp16_res}, input_type={self.input_type}')


class Generator(torch.nn.Module):
    """Mapping network + synthesis network; `init_kwargs` holds the constructor kwargs.

    StyleGAN3's generator is this class with its own two networks (the class attributes)."""

    mapping_network = MappingNetwork
    synthesis_network = SynthesisNetwork

    @records_init_kwargs
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = self.synthesis_network(w_dim=w_dim, img_resolution=img_resolution,
                                                img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = self.mapping_network(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                            **mapping_kwargs)

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)


# ----------------------------------------------------------------------------------------------
# Discriminator.

class DiscriminatorBlock(torch.nn.Module):
    """One resolution of the discriminator: (fromRGB) -> conv0 -> conv1 down2, with
    'orig', 'skip' or 'resnet' architecture (StyleGAN2 figure 7)."""

    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, first_layer_idx,
                 architecture='resnet', activation='lrelu', resample_filter=DEFAULT_RESAMPLE_FILTER,
                 conv_clamp=None, use_fp16=False, fp16_channels_last=False, freeze_layers=0):
        super().__init__()
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}.")
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_layers = 0

        def trainable():  # layers with a global index below freeze_layers are frozen
            trainable = first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return trainable

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        device = (x if x is not None else img).device
        dtype = compute_dtype(self.use_fp16, force_fp32, device)
        memory_format = torch.channels_last if self.channels_last and dtype == torch.float16 else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == 'skip':
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None
        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def extra_repr(self):
        return f'resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}'


class MinibatchStdLayer(torch.nn.Module):
    """Appends the standard deviation over groups of samples as extra feature maps
    (ProGAN section 3): lets D detect lack of variation across a minibatch."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size is not None else N
        if N % G != 0:
            raise ValueError(f'batch size {N} must be divisible by the minibatch-stddev group size {G}.')
        F_ = self.num_channels
        c = C // F_
        y = x.reshape(G, -1, F_, c, H, W)       # [G, N/G, F, c, H, W]; group members are strided
        y = y - y.mean(dim=0)                   # deviation from the group mean
        y = y.square().mean(dim=0)              # [N/G, F, c, H, W] variance over the group
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])               # [N/G, F] average over channels and pixels
        y = y.reshape(-1, F_, 1, 1)
        y = y.repeat(G, 1, H, W)                # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self):
        return f'group_size={self.group_size}, num_channels={self.num_channels}'


class DiscriminatorEpilogue(torch.nn.Module):
    """4x4 head: minibatch stddev -> conv -> fc -> out, with the projection
    discriminator's label conditioning (Miyato & Koyama 2018) when cmap_dim > 0."""

    def __init__(self, in_channels, cmap_dim, resolution, img_channels, architecture='resnet',
                 mbstd_group_size=4, mbstd_num_channels=1, activation='lrelu', conv_clamp=None):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        del force_fp32  # the epilogue always runs in float32
        x = x.to(torch.float32)
        if self.architecture == 'skip':
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)                                                       # [N, cmap_dim | 1]
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x

    def extra_repr(self):
        return f'resolution={self.resolution}, architecture={self.architecture}'


class Discriminator(torch.nn.Module):
    """Image [N, C, res, res] (+ label c) -> logits [N, 1]."""

    @records_init_kwargs
    def __init__(self, c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768,
                 channel_max=512, num_fp16_res=4, conv_clamp=256, cmap_dim=None, block_kwargs={},
                 mapping_kwargs={}, epilogue_kwargs={}):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution}.')
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res],
                                       channels[res // 2], resolution=res, first_layer_idx=layer_idx,
                                       use_fp16=(res >= fp16_resolution), **block_kwargs, **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None,
                                          w_avg_beta=None, **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)
        self._blocks = [f'b{res}' for res in self.block_resolutions]

    def forward(self, img, c=None, update_emas=False, **block_kwargs):
        del update_emas  # D tracks no statistics; accepted for interface symmetry with G
        expected = [self.img_channels, self.img_resolution, self.img_resolution]
        if img.ndim != 4 or list(img.shape[1:]) != expected:
            raise ValueError(f'img must have shape [N, {", ".join(map(str, expected))}], got {list(img.shape)}.')
        x = None
        for name in self._blocks:
            x, img = getattr(self, name)(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self):
        return f'c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}'
