"""Shared helpers of the metric tests: reference networks, tiny generators, stand-in detectors."""

import math

import numpy as np
import PIL.Image
import torch

from tests import refdata


def reference_generator(name: str):
    """A reference network rebuilt from <name>.json and <name>.G.safetensors (strict)."""
    from training import registry
    meta = refdata.load_json(f'{name}.json')
    G = registry.generator_class(meta['G']['class_name'])(**meta['G']['init_kwargs'])
    G.load_state_dict(refdata.load_tensors(f'{name}.G.safetensors'), strict=True)
    return G.eval().requires_grad_(False)


def tiny_generator(arch: str = 'stylegan3-t', resolution: int = 16, c_dim: int = 0, seed: int = 0):
    from training import registry
    torch.manual_seed(seed)
    kwargs = dict(img_resolution=resolution, c_dim=c_dim, z_dim=16, w_dim=16,
                  channel_base=256 if arch.startswith('stylegan3') else 64, channel_max=16)
    return registry.create_generator(arch, **kwargs).eval().requires_grad_(False)


class FourierGenerator(torch.nn.Module):
    """A stand-in generator that renders band-limited sinusoids at pixel centres.

    The image is a continuous function of the input coordinates moved by the transform buffer,
    so it is translation-equivariant by construction. With `alias=True` the signal is hard
    thresholded (harmonics far above Nyquist) and sampled on a grid of half the resolution,
    then nearest-upsampled: the result is anchored to the pixel grid and aliases.
    """

    def __init__(self, resolution=32, alias=False, num_freqs=6, z_dim=8):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, z_dim, 1
        self.img_resolution, self.img_channels = resolution, 3
        gen = torch.Generator().manual_seed(1)
        self.register_buffer('freqs', (torch.rand([num_freqs, 2], generator=gen) * 2 - 1) * 0.2 * resolution)
        self.alias = alias
        self.synthesis = torch.nn.Module()
        self.synthesis.input = torch.nn.Module()
        self.synthesis.input.register_buffer('transform', torch.eye(3))
        self.synthesis.forward = self._synthesis

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        return z[:, None, :]                                                # [N, 1, z_dim]

    def _synthesis(self, ws, noise_mode='const', force_fp32=False, update_emas=False):
        res = self.img_resolution // 2 if self.alias else self.img_resolution
        centres = (torch.arange(res, dtype=torch.float32) + 0.5) / res - 0.5    # image spans [-0.5, 0.5]
        y, x = torch.meshgrid(centres, centres, indexing='ij')
        pts = torch.stack([x, y, torch.ones_like(x)], dim=-1) @ self.synthesis.input.transform.T
        phases = ws[:, 0, :self.freqs.shape[0]]                             # [N, F]
        arg = 2 * math.pi * (pts[..., :2] @ self.freqs.T)                   # [H, W, F]
        img = torch.sin(arg[None] + phases[:, None, None, :]).mean(-1)      # [N, H, W]
        if self.alias:
            img = torch.sign(img).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
        return 0.5 * img[:, None].repeat(1, 3, 1, 1)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, noise_mode='const', force_fp32=False):
        return self._synthesis(self.mapping(z, c))


class StandInDetector(torch.nn.Module):
    """Tiny deterministic detector with the call signature of the FID-literature detectors."""

    def __init__(self, num_features=16, num_classes=10):
        super().__init__()
        gen = torch.Generator().manual_seed(7)
        self.register_buffer('proj', torch.randn([3 * 4 * 4, num_features], generator=gen) / 7)
        self.register_buffer('cls', torch.randn([num_features, num_classes], generator=gen))

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False,
                resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(img.to(torch.float32) / 255, 4).flatten(1)
        feats = x @ self.proj
        if return_lpips:
            return feats / feats.square().sum(dim=1, keepdim=True).sqrt().clamp(min=1e-8)
        if return_features:
            return feats
        return (feats @ self.cls).softmax(dim=1)


def write_dataset(root, num_images=8, resolution=16, seed=0):
    """A folder of random-blob PNG images; returns the folder path."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        img = rng.integers(0, 256, [resolution // 4, resolution // 4, 3]).astype(np.uint8)
        img = np.kron(img, np.ones([4, 4, 1], np.uint8))
        PIL.Image.fromarray(img).save(root / f'img{i:03d}.png')
    return root
