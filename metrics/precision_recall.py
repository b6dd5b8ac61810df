"""Improved precision and recall (Kynkäänniemi et al. 2019, section 3).

Each set's manifold is the union of hyperspheres around its VGG16 features with radius the
distance to the k-th nearest neighbour (k = 3). Precision is the fraction of generated
samples inside the real manifold; recall the fraction of real samples inside the generated one.
"""

import torch

from metrics import detectors, features

PR_DEFAULT = 50000
NHOOD_SIZE = 3


def _kth_radii(feats: torch.Tensor, k: int, row_batch: int) -> torch.Tensor:
    """Distance of every sample to its k-th nearest neighbour (itself excluded)."""
    radii = []
    for rows in feats.split(row_batch):
        dist = torch.cdist(rows, feats)                                      # [r, N]
        radii.append(dist.kthvalue(k + 1, dim=1).values)                     # +1: self at distance 0
    return torch.cat(radii)


def manifold_coverage(manifold: torch.Tensor, probes: torch.Tensor, k: int = NHOOD_SIZE,
                      row_batch: int = 1024) -> float:
    """Fraction of `probes` inside the k-NN hypersphere union of `manifold`."""
    radii = _kth_radii(manifold, k, row_batch)                               # [M]
    inside = []
    for rows in probes.split(row_batch):
        dist = torch.cdist(rows, manifold)                                   # [r, M]
        inside.append((dist <= radii[None, :]).any(dim=1))
    return torch.cat(inside).float().mean().item()


def precision_recall(real, gen, k: int = NHOOD_SIZE) -> dict:
    real = torch.as_tensor(real, dtype=torch.float32)
    gen = torch.as_tensor(gen, dtype=torch.float32)
    return dict(precision=manifold_coverage(real, gen, k), recall=manifold_coverage(gen, real, k))


def compute_pr(opts, max_real=PR_DEFAULT, num_gen=PR_DEFAULT) -> dict:
    det = detectors.get_detector('vgg16', opts.detector_dir, opts.device)
    fn = lambda img: det(img.to(opts.device), return_features=True)
    real = features.real_feature_stats(opts, fn, det.digest, capture_all=True,
                                       max_items=opts.real_count(max_real), features='vgg16_fc')
    gen = features.generated_feature_stats(opts, fn, opts.gen_count(num_gen), capture_all=True)
    return precision_recall(real.get_all(), gen.get_all())
