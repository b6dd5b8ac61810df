"""A tiny stand-in generator with the Generator interface of docs/contracts.md.

Its input layer samples band-limited Fourier features at T x (T = synthesis.input.transform),
followed by pointwise (1x1) layers only, so it is exactly translation- and rotation-equivariant:
ideal to check the Renderer's transform, untransform and layer capture without a real network.
"""

import math

import torch

RES = 16


class StubMapping(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.num_ws = num_ws
        self.weight = torch.nn.Parameter(torch.randn(w_dim, z_dim, generator=g) / math.sqrt(z_dim))
        self.register_buffer('w_avg', torch.randn(w_dim, generator=g) * 0.1)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        w = z @ self.weight.T                                           # [N, w_dim]
        ws = w[:, None, :].repeat(1, self.num_ws, 1)                    # [N, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class StubInput(torch.nn.Module):
    def __init__(self, channels, size):
        super().__init__()
        g = torch.Generator().manual_seed(2)
        self.size = size
        freqs = torch.randn(channels, 2, generator=g)
        freqs = freqs / freqs.norm(dim=1, keepdim=True) * torch.rand(channels, 1, generator=g) * 3  # |f| <= 3 cycles/image
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', torch.rand(channels, generator=g) - 0.5)
        self.register_buffer('transform', torch.eye(3))

    def forward(self, w):
        coords = (torch.arange(self.size, dtype=torch.float32) + 0.5) / self.size - 0.5
        gy, gx = torch.meshgrid(coords, coords, indexing='ij')
        xy = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)        # [H, W, 3]
        t = xy @ self.transform.T                                       # [H, W, 3]
        arg = t[..., :2] @ self.freqs.T + self.phases                   # [H, W, C]
        x = torch.sin(2 * math.pi * arg).permute(2, 0, 1)[None]         # [1, C, H, W]
        return x.repeat(w.shape[0], 1, 1, 1) * (1 + w[:, :1, None, None])


class StubLayer(torch.nn.Module):
    def __init__(self, cin, cout, w_dim, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, generator=g) / math.sqrt(cin))
        self.affine = torch.nn.Parameter(torch.randn(cin, w_dim, generator=g) * 0.1)

    def forward(self, x, w):
        styles = 1 + w @ self.affine.T                                  # [N, cin]
        x = torch.einsum('oc,nchw->nohw', self.weight, x * styles[:, :, None, None])
        return torch.tanh(x)


class StubSynthesis(torch.nn.Module):
    def __init__(self, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.input = StubInput(8, RES)
        self.layer_names = ['L0_16_8', 'L1_16_3']
        self.L0_16_8 = StubLayer(8, 8, w_dim, 3)
        self.L1_16_3 = StubLayer(8, 3, w_dim, 4)

    def forward(self, ws, noise_mode='const', force_fp32=False, update_emas=False):
        x = self.input(ws[:, 0])
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1])
        return x


class StubGenerator(torch.nn.Module):
    def __init__(self, z_dim=8, w_dim=8, num_ws=3, c_dim=0):
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim, self.num_ws = z_dim, w_dim, c_dim, num_ws
        self.img_resolution, self.img_channels = RES, 3
        self.mapping = StubMapping(z_dim, w_dim, num_ws)
        self.synthesis = StubSynthesis(w_dim, num_ws)


def load_stub(network, device):
    """Loader for Renderer(loader=...): 'stub' builds the stand-in, anything else fails."""
    if network != 'stub':
        raise ValueError(f'Cannot open "{network}": the stub loader only knows "stub".')
    return StubGenerator().to(device).eval().requires_grad_(False)
