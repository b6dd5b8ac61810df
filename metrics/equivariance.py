"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R (StyleGAN3 paper, section 3 and appendix E).

Each metric is a PSNR in dB between the image generated with a transformed synthesis input
and the untransformed image transformed in image space (`metrics/image_transforms.py`):
PSNR = 10 log10(I_max^2 / MSE) with I_max = 2, the width of the nominal [-1, 1] range. The MSE
is one global ratio over all samples, channels and pixels: sum(mask * err^2) / sum(mask).

One random transform is drawn per batch, after that batch's latents:
  * `int`:  t uniform in [-0.125, 0.125]^2, rounded to whole pixels;
  * `frac`: t uniform in [-0.125, 0.125]^2;
  * `rot`:  angle uniform in [-pi, pi].
All from one RNG stream seeded with `seed`, in the reference's order (so with the same seed and
batch size the values equal the reference code's, docs/metrics.md). `int` and `frac` draw the
same random numbers per batch, so `compute_equivariance_kinds` runs them on one stream: each
batch's untransformed images are generated once for both (5 instead of 6 synthesis calls for
all three kinds), with exactly the values each gives alone.
"""

import copy
import dataclasses
import math

import numpy as np
import torch
import tqdm

from metrics import image_transforms as T

I_MAX = 2.0              # peak signal for the PSNR: images span [-1, 1]
TRANSLATE_MAX = 0.125    # translations drawn from [-0.125, 0.125] of the image size
ROTATE_MAX = 1.0         # rotations drawn from [-pi, pi] * ROTATE_MAX
KINDS = ('int', 'frac', 'rot')

NOT_APPLICABLE = ('equivariance metrics need a generator whose synthesis input can be transformed '
                  '(G.synthesis.input.transform, StyleGAN3 or stylegan2-fourier); this network has none.')


@dataclasses.dataclass(frozen=True)
class Transform:
    """One image-space transform: a translation (tx, ty) in image units or a rotation in radians."""
    kind: str                 # 'int' | 'frac' | 'rot'
    tx: float = 0.0
    ty: float = 0.0
    angle: float = 0.0

    def input_matrix(self) -> torch.Tensor:
        """The synthesis-input transform buffer: the inverse of the image-space transform."""
        if self.kind == 'rot':
            return T.rotation_matrix(-torch.tensor(self.angle, dtype=torch.float32))
        m = torch.eye(3, dtype=torch.float32)
        m[0, 2] = -torch.tensor(self.tx, dtype=torch.float32)
        m[1, 2] = -torch.tensor(self.ty, dtype=torch.float32)
        return m


def supports_equivariance(G) -> bool:
    return isinstance(getattr(getattr(getattr(G, 'synthesis', None), 'input', None), 'transform', None),
                      torch.Tensor)


def require_equivariance(G):
    if not supports_equivariance(G):
        raise ValueError(NOT_APPLICABLE)


def synthesize(G, ws: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """G.synthesis(ws) with the input transform buffer temporarily set to `matrix`."""
    buf = G.synthesis.input.transform
    saved = buf.clone()
    try:
        buf.copy_(matrix.to(buf))
        return G.synthesis(ws, noise_mode='const')
    finally:
        buf.copy_(saved)


def reference_and_compare(orig: torch.Tensor, img: torch.Tensor, tf: Transform):
    """(reference, compared image, mask) for one transform; see the module docstring."""
    if tf.kind == 'int':
        ref, mask = T.integer_translation(orig, tf.tx, tf.ty)
        return ref, img, mask
    if tf.kind == 'frac':
        ref, mask = T.fractional_translation(orig, tf.tx, tf.ty)
        return ref, img, mask
    if tf.kind == 'rot':
        angle = torch.tensor(tf.angle, dtype=torch.float32)
        ref, ref_mask = T.fractional_rotation(orig, angle)
        pseudo, pseudo_mask = T.pseudo_rotation(img, angle)
        return ref, pseudo, ref_mask * pseudo_mask
    raise ValueError(f'unknown equivariance transform kind {tf.kind!r}; use one of {KINDS}.')


@torch.no_grad()
def masked_error(G, ws: torch.Tensor, orig: torch.Tensor, tf: Transform) -> tuple[float, float]:
    """(sum of mask * squared error, sum of mask) in float64 for one batch and one transform."""
    img = synthesize(G, ws, tf.input_matrix())
    ref, cmp, mask = reference_and_compare(orig, img, tf)
    err = ((ref.double() - cmp.double()).square() * mask.double()).sum().item()
    return err, mask.double().sum().item()


def psnr_db(sum_sq_err: float, sum_mask: float) -> float:
    if sum_sq_err <= 0:
        return math.inf      # exactly equivariant
    return 20 * math.log10(I_MAX) - 10 * math.log10(sum_sq_err / sum_mask)


def draw_transform(kind: str, img_resolution: int, generator: torch.Generator) -> Transform:
    """One random transform of the given kind (module docstring), from an explicit RNG."""
    return draw_transforms([kind], img_resolution, generator)[0]


def draw_transforms(kinds, img_resolution: int, generator: torch.Generator) -> list:
    """One batch's transforms for kinds sharing a stream: ['rot'], or any of 'int' / 'frac',
    which use one draw of t (rounded for 'int'), as each would draw alone."""
    if list(kinds) == ['rot']:
        angle = (torch.rand([], generator=generator) * 2 - 1) * (ROTATE_MAX * math.pi)
        return [Transform('rot', angle=angle.item())]
    if not kinds or not set(kinds) <= {'int', 'frac'}:
        raise ValueError(f'cannot draw transforms {list(kinds)} from one stream; use one of {KINDS} '
                         f'or int and frac together.')
    t = (torch.rand([2], generator=generator) * 2 - 1) * TRANSLATE_MAX
    rounded = (t * img_resolution).round() / img_resolution
    return [Transform(kind, *(rounded if kind == 'int' else t).tolist()) for kind in kinds]


def _randomize_noise_buffers(G, generator: torch.Generator):
    """StyleGAN2-style constant noise is redrawn per batch, so it does not favour one image."""
    for name, buf in G.named_buffers():
        if name.endswith('.noise_const'):
            buf.copy_(torch.randn(buf.shape, generator=generator).to(buf))


def _random_labels(G, n: int, generator: torch.Generator, device) -> torch.Tensor:
    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim > 0:
        c[torch.arange(n), torch.randint(G.c_dim, [n], generator=generator)] = 1
    return c


@torch.no_grad()
def compute_equivariance(G, kind: str, num_samples: int, batch_size: int = 8,
                         device='cpu', seed: int = 0, progress: bool = True) -> dict:
    """Run one equivariance metric; returns {'psnr_db', 'sum_sq_err', 'sum_mask', 'num_samples'}."""
    return compute_equivariance_kinds(G, [kind], num_samples, batch_size, device, seed, progress)[kind]


@torch.no_grad()
def compute_equivariance_kinds(G, kinds, num_samples: int, batch_size: int = 8,
                               device='cpu', seed: int = 0, progress: bool = True) -> dict:
    """Several equivariance metrics, {kind: result dict}; translations share one pass."""
    require_equivariance(G)
    kinds = list(dict.fromkeys(kinds))
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f'unknown equivariance transform kind {kind!r}; use one of {KINDS}.')
    device = torch.device(device)
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    streams = [[k for k in kinds if k != 'rot'], [k for k in kinds if k == 'rot']]
    results = {}
    for stream in filter(None, streams):
        results.update(_one_stream(G, stream, num_samples, batch_size, device, seed, progress))
    return {kind: results[kind] for kind in kinds}


def _one_stream(G, kinds, num_samples, batch_size, device, seed, progress) -> dict:
    rng = torch.Generator().manual_seed(seed)     # CPU generator: same stream on every device
    identity = torch.eye(3)
    sums = {kind: [0.0, 0.0] for kind in kinds}   # sum of mask * err^2, sum of mask
    bar = tqdm.tqdm(total=num_samples, desc=f'eq-{"/".join(kinds)}', unit='img', disable=not progress,
                    leave=False)
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        _randomize_noise_buffers(G, rng)
        z = torch.randn([n, G.z_dim], generator=rng).to(device)
        ws = G.mapping(z, _random_labels(G, n, rng, 'cpu').to(device))
        orig = synthesize(G, ws, identity)
        for tf in draw_transforms(kinds, G.img_resolution, rng):
            err, msum = masked_error(G, ws, orig, tf)
            sums[tf.kind][0] += err
            sums[tf.kind][1] += msum
        bar.update(n)
    bar.close()
    return {kind: dict(psnr_db=psnr_db(err, msum), sum_sq_err=err, sum_mask=msum, num_samples=num_samples)
            for kind, (err, msum) in sums.items()}


# The fixed transforms of the reference checks (../shared/reference/equivariance.json).
FIXED_TRANSFORMS = (
    Transform('int', tx=2 / 32, ty=-1 / 32),
    Transform('frac', tx=float(np.float32(0.0371)), ty=float(np.float32(-0.0813))),
    Transform('rot', angle=float(np.float32(0.3))),
)


@torch.no_grad()
def fixed_transform_checks(G, z: torch.Tensor, transforms=FIXED_TRANSFORMS) -> list[dict]:
    """RNG-free checks: for the latents z (one batch), the masked error of each given transform."""
    require_equivariance(G)
    G = copy.deepcopy(G).eval().requires_grad_(False)
    c = torch.zeros([z.shape[0], G.c_dim], device=z.device)
    ws = G.mapping(z, c)
    orig = synthesize(G, ws, torch.eye(3))
    results = []
    for tf in transforms:
        err, msum = masked_error(G, ws, orig, tf)
        results.append(dict(kind=tf.kind, transform=tf, sum_sq_err_masked=err, sum_mask=msum,
                            psnr_db=psnr_db(err, msum)))
    return results
