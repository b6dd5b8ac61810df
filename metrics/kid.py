"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", section 4).

Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 on Inception
features, averaged over random subsets of equal size drawn from both sets.
"""

import numpy as np

from metrics import features
from metrics.frechet import inception_features

KID_DEFAULT_GEN = 50000
NUM_SUBSETS = 100
MAX_SUBSET_SIZE = 1000


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equally sized samples (eq. 3 of Gretton et al. 2012, m = n)."""
    m = x.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def kid_from_features(real: np.ndarray, gen: np.ndarray, num_subsets=NUM_SUBSETS,
                      max_subset_size=MAX_SUBSET_SIZE, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    if m < 2:
        raise ValueError('KID needs at least 2 real and 2 generated images.')
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)].astype(np.float64)
        y = real[rng.choice(real.shape[0], m, replace=False)].astype(np.float64)
        total += mmd2_unbiased(x, y)
    return total / num_subsets


def compute_kid(opts, max_real=1000000, num_gen=KID_DEFAULT_GEN) -> dict:
    fn, det_id = inception_features(opts)
    real = features.real_feature_stats(opts, fn, det_id, capture_all=True,
                                       max_items=opts.real_count(max_real), features='inception_pool')
    gen = features.generated_feature_stats(opts, fn, opts.gen_count(num_gen), capture_all=True)
    return dict(kid=kid_from_features(real.get_all(), gen.get_all(), seed=opts.seed))
