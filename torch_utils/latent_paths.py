"""Smooth, looping paths through latent space for videos.

A path is given by keyframes (e.g. the w of a list of seeds) and visits them in order, returning
to the first one so that the video loops without a jump.
"""

import numpy as np


def looping_path(keyframes: np.ndarray, frames_per_key: int, kind: str = 'cubic') -> np.ndarray:
    """Sample a closed path through `keyframes` [K, ...] with `frames_per_key` frames per segment.

    `linear` blends neighbouring keyframes; `cubic` uses a periodic Catmull-Rom spline, which
    passes through every keyframe with a continuous first derivative, so motion never stops
    abruptly at a keyframe. Returns [K * frames_per_key, ...]; frame i*frames_per_key is
    keyframe i exactly.
    """
    keyframes = np.asarray(keyframes, dtype=np.float64)
    if keyframes.ndim < 1 or len(keyframes) < 1:
        raise ValueError('looping_path needs at least one keyframe.')
    if frames_per_key < 1:
        raise ValueError(f'frames_per_key must be >= 1, got {frames_per_key}.')
    if kind not in ('linear', 'cubic'):
        raise ValueError(f"kind must be 'linear' or 'cubic', got {kind!r}.")
    num_keys = len(keyframes)
    t = np.arange(num_keys * frames_per_key) / frames_per_key   # position along the loop, in keys
    index = np.floor(t).astype(int)
    frac = (t - index).reshape((-1,) + (1,) * (keyframes.ndim - 1))
    p1 = keyframes[index % num_keys]
    p2 = keyframes[(index + 1) % num_keys]
    if kind == 'linear':
        return p1 + (p2 - p1) * frac
    p0 = keyframes[(index - 1) % num_keys]
    p3 = keyframes[(index + 2) % num_keys]
    # Catmull-Rom in Hermite form: tangents (p2 - p0)/2 and (p3 - p1)/2.
    f2, f3 = frac ** 2, frac ** 3
    return (p1 * (2 * f3 - 3 * f2 + 1) + (p2 - p0) * 0.5 * (f3 - 2 * f2 + frac)
            + p2 * (-2 * f3 + 3 * f2) + (p3 - p1) * 0.5 * (f3 - f2))
