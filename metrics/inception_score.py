"""Inception Score (Salimans et al. 2016, section 4): exp(E_x KL(p(y|x) || p(y))).

The Inception detector called with `no_output_bias=True` returns class probabilities
p(y|x) (softmax of the logits without the final bias), as in the FID literature.
"""

import numpy as np

from metrics import detectors, features

IS_DEFAULT_GEN = 50000
NUM_SPLITS = 10


def inception_score(probs: np.ndarray, num_splits: int = NUM_SPLITS) -> tuple[float, float]:
    """Mean and std of the score over `num_splits` consecutive parts of `probs` [N, classes]."""
    probs = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(probs, num_splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(opts, num_gen=IS_DEFAULT_GEN, num_splits=NUM_SPLITS) -> dict:
    det = detectors.get_detector('inception', opts.detector_dir, opts.device)
    fn = lambda img: det(img.to(opts.device), no_output_bias=True)
    gen = features.generated_feature_stats(opts, fn, opts.gen_count(num_gen), capture_all=True)
    mean, std = inception_score(gen.get_all(), num_splits)
    return dict(mean=mean, std=std)
