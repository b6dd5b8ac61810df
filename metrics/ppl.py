"""Perceptual path length (StyleGAN paper, Karras et al. 2019, section 4.2, eq. 2-3).

l = E[ d(g(lerp(w0, w1, t)), g(lerp(w0, w1, t + eps))) / eps^2 ] with d the LPIPS distance
(squared difference of normalised VGG16 features). `ppl2_wend`: W space, path endpoints
(t = 0), full images, eps = 1e-4. The mean excludes the 1% tails of the distances.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
import tqdm

from metrics import detectors

PPL_DEFAULT_SAMPLES = 50000
EPSILON = 1e-4


def _lerp(a, b, t):
    return a + (b - a) * t


def _lpips_input(img: torch.Tensor) -> torch.Tensor:
    """Generator output -> [0, 255] float RGB, downsampled by area averaging above 256 px."""
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    factor = img.shape[2] // 256
    if factor > 1:
        img = F.avg_pool2d(img, factor)
    return (img + 1) * (255 / 2)


def _randomize_noise_buffers(G, generator):
    for name, buf in G.named_buffers():
        if name.endswith('.noise_const'):
            buf.copy_(torch.randn(buf.shape, generator=generator).to(buf))


@torch.no_grad()
def path_distances(G, lpips, num_samples: int, batch_size: int, device, epsilon=EPSILON,
                   sampling='end', seed=0, progress=True) -> np.ndarray:
    """Scaled LPIPS distances of `num_samples` small steps along W-space paths."""
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    rng = torch.Generator().manual_seed(seed)
    dists = []
    for start in tqdm.trange(0, num_samples, batch_size, desc='ppl', disable=not progress, leave=False):
        n = min(batch_size, num_samples - start)
        _randomize_noise_buffers(G, rng)
        t = torch.rand([n], generator=rng) * (1 if sampling == 'full' else 0)
        z = torch.randn([n * 2, G.z_dim], generator=rng).to(device)
        c = torch.zeros([n * 2, G.c_dim], device=device)
        if G.c_dim > 0:
            c[torch.arange(n * 2), torch.randint(G.c_dim, [n], generator=rng).repeat(2)] = 1
        w0, w1 = G.mapping(z, c).chunk(2)                                    # [n, num_ws, w_dim] each
        t = t.to(device)[:, None, None]
        ws = torch.cat([_lerp(w0, w1, t), _lerp(w0, w1, t + epsilon)])       # [2n, num_ws, w_dim]
        img = G.synthesis(ws, noise_mode='const')
        f0, f1 = lpips(_lpips_input(img), resize_images=False, return_lpips=True).chunk(2)
        dists.append(((f0 - f1).square().sum(dim=1) / epsilon ** 2).cpu().numpy())
    return np.concatenate(dists)


def robust_mean(dists: np.ndarray) -> float:
    """Mean over the values between the 1st and 99th percentiles (outlier rejection)."""
    lo = np.percentile(dists, 1, method='lower')
    hi = np.percentile(dists, 99, method='higher')
    return float(np.extract(np.logical_and(dists >= lo, dists <= hi), dists).mean())


def compute_ppl(opts, num_samples=PPL_DEFAULT_SAMPLES) -> dict:
    vgg = detectors.get_detector('vgg16', opts.detector_dir, opts.device)
    d = path_distances(opts.G, vgg, opts.gen_count(num_samples), opts.batch_size, opts.device,
                       seed=opts.seed, progress=opts.progress)
    return dict(ppl=robust_mean(d))
