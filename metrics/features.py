"""Feature statistics of image sets, and the on-disk cache of dataset statistics.

`FeatureStats` accumulates detector features: all of them (KID, precision/recall, IS) and/or
their mean and covariance in float64 (Fréchet distances). Statistics of a *dataset* are cached
under `<cache_dir>/stats/<key>.npz`, where the key hashes the dataset's content fingerprint
(file bytes, subset, mirroring), the detector file's hash and every option that changes the
result, so a changed dataset or detector never reuses stale statistics.
"""

import hashlib
import json
import os
import pathlib
import tempfile

import numpy as np
import torch
import tqdm

from metrics import data as data_lib

ENV_CACHE = 'STYLEGAN_CACHE_DIR'


class FeatureStats:
    """Running collection of [N, D] feature batches."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items=None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self.all_features = []
        self.raw_sum = self.raw_outer = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: torch.Tensor):
        x = x.detach().to('cpu', torch.float64).reshape(x.shape[0], -1).numpy()   # [n, D]
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = x.shape[1]
            self.raw_sum = np.zeros([x.shape[1]])
            self.raw_outer = np.zeros([x.shape[1]] * 2) if self.capture_mean_cov else None
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x.astype(np.float32))
        if self.capture_mean_cov:
            self.raw_sum += x.sum(axis=0)
            self.raw_outer += x.T @ x

    def get_all(self) -> np.ndarray:
        assert self.capture_all
        return np.concatenate(self.all_features) if self.all_features else np.zeros([0, 0], np.float32)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (biased, 1/N) covariance, as the FID literature computes them."""
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_sum / self.num_items
        cov = self.raw_outer / self.num_items - np.outer(mean, mean)
        return mean, cov

    def to_arrays(self) -> dict:
        out = dict(num_items=np.array(self.num_items))
        if self.capture_all:
            out['all'] = self.get_all()
        if self.capture_mean_cov:
            out['raw_sum'], out['raw_outer'] = self.raw_sum, self.raw_outer
        return out

    @classmethod
    def from_arrays(cls, arrays, capture_all: bool, capture_mean_cov: bool):
        stats = cls(capture_all=capture_all, capture_mean_cov=capture_mean_cov)
        stats.num_items = int(arrays['num_items'])
        if capture_all:
            stats.all_features = [arrays['all']]
            stats.num_features = arrays['all'].shape[1]
        if capture_mean_cov:
            stats.raw_sum, stats.raw_outer = arrays['raw_sum'], arrays['raw_outer']
            stats.num_features = stats.raw_sum.shape[0]
        return stats


@torch.no_grad()
def collect(batches, feature_fn, stats: FeatureStats, total: int, desc: str, progress: bool = True):
    """Feed every batch through `feature_fn` into `stats`."""
    with tqdm.tqdm(total=total, desc=desc, unit='img', disable=not progress, leave=False) as bar:
        for images in batches:
            stats.append(feature_fn(images))
            bar.update(images.shape[0])
            if stats.is_full():
                break
    return stats


# ----------------------------------------------------------------------------------------------
# Cache of dataset statistics.

def default_cache_dir(cache_dir=None) -> pathlib.Path:
    if cache_dir:
        return pathlib.Path(cache_dir).expanduser()
    return pathlib.Path(os.environ.get(ENV_CACHE) or '~/.cache/stylegan-toolkit').expanduser()


def dataset_cache_key(dataset, **options) -> str:
    """Hash of the dataset content fingerprint and every option that affects the statistics."""
    payload = json.dumps(dict(dataset=dataset.fingerprint(), resolution=dataset.resolution, **options),
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def cached_arrays(cache_dir, key: str, compute) -> dict:
    """Dict of numpy arrays stored under `key`; `compute()` makes (and atomically stores) it when absent."""
    path = default_cache_dir(cache_dir) / 'stats' / f'{key}.npz'
    if path.is_file():
        try:
            with np.load(path) as arrays:
                return {name: arrays[name] for name in arrays.files}
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache entry: recompute and overwrite it
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix='.npz.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays


def load_or_compute(cache_dir, key: str, compute, capture_all: bool, capture_mean_cov: bool) -> FeatureStats:
    """Cached FeatureStats under `key`, computing them with `compute()` when absent."""
    arrays = cached_arrays(cache_dir, key, lambda: compute().to_arrays())
    return FeatureStats.from_arrays(arrays, capture_all, capture_mean_cov)


def real_feature_stats(opts, feature_fn, detector_id: str, capture_all=False, capture_mean_cov=False,
                       max_items=None, **options) -> FeatureStats:
    """Statistics of the first `max_items` dataset images (cached by content + options)."""
    dataset = data_lib.open_dataset(opts.dataset_kwargs)
    key = dataset_cache_key(dataset, detector=detector_id, max_items=max_items, capture_all=capture_all,
                            capture_mean_cov=capture_mean_cov, **options)

    def compute():
        stats = FeatureStats(capture_all, capture_mean_cov, max_items)
        return collect(data_lib.real_batches(dataset, opts.batch_size, max_items), feature_fn, stats,
                       data_lib.num_real(dataset, max_items), 'real features', opts.progress)

    return load_or_compute(opts.cache_dir, key, compute, capture_all, capture_mean_cov)


def generated_feature_stats(opts, feature_fn, num_items: int, capture_all=False,
                            capture_mean_cov=False) -> FeatureStats:
    """Statistics of `num_items` seeded generator samples (never cached: G changes)."""
    dataset = data_lib.open_dataset(opts.dataset_kwargs) if opts.G.c_dim > 0 and opts.dataset_kwargs else None
    labels = data_lib.LabelSampler.for_generator(opts.G, dataset)
    batches = data_lib.generated_batches(opts.G, num_items, opts.batch_size, opts.device, labels, opts.seed)
    stats = FeatureStats(capture_all, capture_mean_cov, num_items)
    return collect(batches, feature_fn, stats, num_items, 'generated features', opts.progress)
