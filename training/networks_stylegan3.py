"""StyleGAN3 generator: alias-free synthesis (Karras et al. 2021, "Alias-Free Generative
Adversarial Networks"), configurations -T (translation equivariant, 3x3 convolutions) and
-R (rotation equivariant, 1x1 convolutions and radial down filters).

Every feature map is a discretely sampled band-limited continuous signal (section 2). Each
layer has an input/output sampling rate s, cutoff f_c, stopband f_t and half-width
f_h = max(f_t, s/2) - f_c; the schedule of these over the layers is section 3.2 / figure 4.
Constructor kwargs, submodule names, parameters and buffers equal the public reference
implementation (`../shared/reference/stylegan3-*.json`); the discriminator is StyleGAN2's.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ops import conv2d_winograd, filter_design, filtered_lrelu
from training.networks_stylegan2 import FullyConnectedLayer, compute_dtype, squared_norms
from training import networks_stylegan2


class MappingNetwork(networks_stylegan2.MappingNetwork):
    """StyleGAN2's mapping network with StyleGAN3's default depth of 2 layers (section 3.2)."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998, **kwargs):
        super().__init__(z_dim, c_dim, w_dim, num_ws, num_layers=num_layers, lr_multiplier=lr_multiplier,
                         w_avg_beta=w_avg_beta, **kwargs)


def modulated_conv2d(x, w, s, demodulate=True, padding=0, input_gain=None):
    """Modulated convolution (StyleGAN2 eq. 1-3) of x [N, I, H, W] with w [O, I, k, k], styles s [N, I].

    Weights and styles are pre-normalised (their scale cancels in demodulation; it keeps float16
    from overflowing); `input_gain` [] or [N, I] divides out the input magnitude tracked by the
    layer's EMA (appendix D.2). The per-sample weight w'_oi = w_oi * in_i * out_o factors into
    an input scale (style, input gain) and an output scale (demodulation), so it runs either as
    one grouped convolution with per-sample weights, or, where the Winograd convolution applies
    (native backend, inference), as scale -> convolution with the shared weight -> scale: the
    weight's Winograd transform is then computed once, not per sample and call.
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = w.shape
    in_scale, out_scale = s, None                                           # [N, I], [N, O]
    if demodulate:
        w_sq = squared_norms(w)                                             # [O, I]
        w_norm = (w_sq.mean(dim=1) / (kh * kw)).rsqrt()                     # [O] 1/rms(w_o)
        in_scale = s * s.square().mean().rsqrt()
        # sum_ik (w s)^2 = sum_i s_i^2 sum_k w_ik^2
        dcoefs = (w_norm.square() * (in_scale.square() @ w_sq.t()) + 1e-8).rsqrt()  # [N, O]
        out_scale = w_norm * dcoefs
    if input_gain is not None:
        in_scale = in_scale * input_gain.expand(batch_size, in_channels)
    if conv2d_winograd.applies(x, w, padding):
        return conv2d_winograd.scaled_conv2d(x, w, in_scale, out_scale, padding=padding, cache_weight=True)
    scale = in_scale.unsqueeze(1)                                           # [N, 1, I]
    if out_scale is not None:
        scale = scale * out_scale.unsqueeze(2)                              # [N, O, I]
    # All per-sample factors are combined into one scale first, so the [N, O, I, k, k] weight
    # tensor is written once.
    w = w.unsqueeze(0) * scale.unsqueeze(3).unsqueeze(4)                    # [N, O, I, k, k]
    if kh == 1 and kw == 1 and padding == 0:
        # 1x1 (StyleGAN3-R, to-RGB): one matrix product per image; on CPU 1.3-3x faster than
        # the equivalent grouped convolution (and differentiable the same way).
        y = torch.bmm(w.reshape(batch_size, out_channels, in_channels).to(x.dtype),
                      x.reshape(batch_size, in_channels, -1))
        return y.reshape(batch_size, out_channels, *x.shape[2:])
    x = x.reshape(1, -1, *x.shape[2:])                                      # [1, N*I, H, W]
    w = w.reshape(-1, in_channels, kh, kw)                                  # [N*O, I, k, k]
    x = F.conv2d(x, w.to(x.dtype), padding=padding, groups=batch_size)
    return x.reshape(batch_size, -1, *x.shape[2:])                          # [N, O, H', W']


class SynthesisInput(torch.nn.Module):
    """Fourier features (section 3.1): `channels` sinusoids with random frequencies of
    magnitude <= bandwidth, sampled on a `size` grid at `sampling_rate` samples per unit.

    The learned affine maps w to a rotation (r_c, r_s) and translation (t_x, t_y) of the
    input; the user `transform` buffer (a 3x3 matrix in canvas units) is applied first,
    which is how images are translated/rotated at inference.
    """

    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)     # random directions, |f| in (0, 1]
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        # Starts as the identity transform: rotation (1, 0), translation (0, 0).
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer('transform', torch.eye(3, 3))
        self.register_buffer('freqs', freqs)                 # [C, 2] cycles per unit
        self.register_buffer('phases', phases)               # [C] in cycles
        # Sample positions never change: computed once (not part of the state dict).
        self.register_buffer('grid', self._sample_grid(), persistent=False)   # [1, H, W, 2]

    def forward(self, w):
        transforms = self.learned_transform(w) @ self.transform.unsqueeze(0)      # [N, 3, 3]
        freqs = self.freqs.unsqueeze(0)                                           # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]                                     # [N, C, 2]
        # Fade out frequencies that a transform pushes above the band limit (sec. 3.1).
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        x = (self.grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        weight = self.weight / np.sqrt(self.channels)
        x = x @ weight.t()                                                        # [N, H, W, C]
        return x.permute(0, 3, 1, 2)                                              # [N, C, H, W]

    def learned_transform(self, w):
        """Rotation then translation predicted from w, as 3x3 matrices [N, 3, 3]."""
        t = self.affine(w)                                   # [N, 4] = (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)           # rotation part has unit norm
        batch = w.shape[0]
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([batch, 1, 1])
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([batch, 1, 1])
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        return m_r @ m_t

    def _sample_grid(self):
        """Sample positions in canvas units: pixel centres spaced 1/sampling_rate apart,
        centred on the origin."""
        theta = torch.zeros([1, 2, 3])
        theta[0, 0, 0] = 0.5 * float(self.size[0]) / self.sampling_rate
        theta[0, 1, 1] = 0.5 * float(self.size[1]) / self.sampling_rate
        return F.affine_grid(theta, [1, 1, int(self.size[1]), int(self.size[0])], align_corners=False)

    def extra_repr(self):
        return (f'w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, '
                f'sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}')


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """float32 low-pass taps, or None for a single tap (no filtering)."""
    if numtaps == 1:
        return None
    design = filter_design.jinc_lowpass if radial else filter_design.kaiser_lowpass
    return torch.as_tensor(design(numtaps, cutoff, width, fs), dtype=torch.float32)


class SynthesisLayer(torch.nn.Module):
    """Modulated conv -> filtered leaky ReLU (upsample by `up_factor`, lrelu at the higher
    rate, low-pass and downsample by `down_factor`), section 3.2 and figure 4."""

    def __init__(self, w_dim, is_torgb, is_critically_sampled, use_fp16,
                 in_channels, out_channels, in_size, out_size,
                 in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width, out_half_width,
                 conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 conv_clamp=256, magnitude_ema_beta=0.999):
        super().__init__()
        self.w_dim, self.is_torgb = w_dim, is_torgb
        self.is_critically_sampled, self.use_fp16 = is_critically_sampled, use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        # lrelu is evaluated at a higher rate so its new high frequencies can be filtered out.
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.demodulate = not is_torgb
        self.lrelu_gain = 1.0 if is_torgb else math.sqrt(2)
        self.lrelu_slope = 1.0 if is_torgb else 0.2
        self.torgb_style_gain = 1 / math.sqrt(in_channels * self.conv_kernel ** 2) if is_torgb else None

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))
        self._design_filters(filter_size, use_radial_filters)
        self.padding = self._filter_padding()

    def _design_filters(self, filter_size, use_radial_filters):
        """Up filter: cutoff = input f_c, transition 2 f_h; down filter: output f_c (appendix C)."""
        self.up_factor = int(np.rint(self.tmp_sampling_rate / self.in_sampling_rate))
        assert self.in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.register_buffer('up_filter', design_lowpass_filter(
            self.up_taps, self.in_cutoff, self.in_half_width * 2, self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / self.out_sampling_rate))
        assert self.out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        # Radial (jinc) filters give rotation equivariance (-R, sec. 3.3); the critically
        # sampled last layers keep separable filters since they alias anyway.
        self.down_radial = use_radial_filters and not self.is_critically_sampled
        self.register_buffer('down_filter', design_lowpass_filter(
            self.down_taps, self.out_cutoff, self.out_half_width * 2, self.tmp_sampling_rate,
            radial=self.down_radial))

    def _filter_padding(self):
        """[x0, x1, y0, y1] so conv + up + filter + down maps in_size to exactly out_size."""
        pad_total = (self.out_size - 1) * self.down_factor + 1              # needed before down
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # present after up
        pad_total += self.up_taps + self.down_taps - 2                      # consumed by filters
        pad_lo = (pad_total + self.up_factor) // 2                          # centre after zero insertion
        pad_hi = pad_total - pad_lo
        return [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x, w, noise_mode='const', force_fp32=False, update_emas=False):
        del noise_mode  # StyleGAN3 has no per-pixel noise (section 3.2, config C)
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)                                              # [N, I]
        if self.is_torgb:
            styles = styles * self.torgb_style_gain
        dtype = compute_dtype(self.use_fp16, force_fp32, x.device)
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=self.demodulate,
                             padding=self.conv_kernel - 1, input_gain=input_gain)
        return filtered_lrelu.filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
                                             up=self.up_factor, down=self.down_factor, padding=self.padding,
                                             gain=self.lrelu_gain, slope=self.lrelu_slope, clamp=self.conv_clamp)

    def extra_repr(self):
        return '\n'.join([
            f'w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, '
            f'use_fp16={self.use_fp16}',
            f'in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g}',
            f'in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g}',
            f'in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g}',
            f'in_size={list(self.in_size)}, out_size={list(self.out_size)}',
            f'in_channels={self.in_channels}, out_channels={self.out_channels}'])


def layer_schedule(img_resolution, num_layers, num_critical, first_cutoff, first_stopband,
                   last_stopband_rel, margin_size):
    """Per-layer cutoff f_c, stopband f_t, sampling rate s, half-width f_h and size
    (section 3.2 and figure 4b): f_c and f_t grow geometrically from the first layer to the
    last non-critical one; s is the smallest power of two >= 2 f_t (capped at the output
    resolution); the last `num_critical` layers are critically sampled (f_c = s/2)."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    return cutoffs, stopbands, sampling_rates, half_widths, sizes


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image: Fourier input, `num_layers` alias-free layers, ToRGB."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512,
                 num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1,
                 last_stopband_rel=2 ** 0.3, margin_size=10, output_scale=0.25, num_fp16_res=4,
                 **layer_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.num_layers, self.num_critical = num_layers, num_critical
        self.margin_size, self.output_scale, self.num_fp16_res = margin_size, output_scale, num_fp16_res
        cutoffs, stopbands, sampling_rates, half_widths, sizes = layer_schedule(
            img_resolution, num_layers, num_critical, first_cutoff, first_stopband, last_stopband_rel, margin_size)
        # Channel count inversely proportional to the cutoff (coarse layers are wider).
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels
        self.input = SynthesisInput(w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=float(sampling_rates[0]), bandwidth=float(cutoffs[0]))
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=(sampling_rates[idx] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=float(sampling_rates[prev]), out_sampling_rate=float(sampling_rates[idx]),
                in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
                in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]), **layer_kwargs)
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, noise_mode='const', force_fp32=False, update_emas=False):
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f'ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}.')
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self):
        return (f'w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, '
                f'img_channels={self.img_channels}, num_layers={self.num_layers}, '
                f'num_critical={self.num_critical}, margin_size={self.margin_size}, num_fp16_res={self.num_fp16_res}')


class Generator(networks_stylegan2.Generator):
    """Mapping network + alias-free synthesis network; `init_kwargs` holds the constructor kwargs."""

    mapping_network = MappingNetwork
    synthesis_network = SynthesisNetwork
