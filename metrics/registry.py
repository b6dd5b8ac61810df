"""The named metrics, `run_metric` (one) and `run_metrics` (several, sharing work where they can):
the entry points of calc_metrics.py, training and models/measure_bundled.py.

A metric is a function `MetricOptions -> dict of results`. Results of a run are appended as
one JSON line to `metric-<name>.jsonl` (next to the network, in the run dir, or at a given path).
"""

import dataclasses
import json
import os
import pathlib
import time
from typing import Callable

import torch

from metrics import equivariance, frechet, inception_score, kid, ppl, precision_recall, swd
from metrics.options import MetricOptions


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    compute: Callable[[MetricOptions], dict]
    needs_data: bool          # needs real images (--data)
    description: str


def _equivariance(kind):
    def compute(opts: MetricOptions) -> dict:
        if opts.shared is not None and kind in opts.shared:     # computed by an earlier one's pass
            return {'psnr_db': opts.shared.pop(kind)['psnr_db']}
        kinds = [kind] + [k for k in opts.eq_kinds if k != kind]
        results = equivariance.compute_equivariance_kinds(opts.G, kinds, opts.gen_count(50000), opts.batch_size,
                                                          opts.device, opts.seed, opts.progress)
        if opts.shared is not None:
            opts.shared.update({k: r for k, r in results.items() if k != kind})
        return {'psnr_db': results[kind]['psnr_db']}
    return compute


EQ_KINDS = {'eqt50k_int': 'int', 'eqt50k_frac': 'frac', 'eqr50k': 'rot'}


METRICS = {spec.name: spec for spec in (
    MetricSpec('fid50k_full', frechet.compute_fid, True, 'FID, 50k generated vs all real images (Inception-v3)'),
    MetricSpec('kid50k_full', kid.compute_kid, True, 'KID, 50k generated vs up to 1M real images'),
    MetricSpec('pr50k3_full', precision_recall.compute_pr, True, 'precision/recall, k=3, 50k each (VGG16)'),
    MetricSpec('is50k', inception_score.compute_is, False, 'Inception Score of 50k generated images'),
    MetricSpec('ppl2_wend', ppl.compute_ppl, False, 'perceptual path length in W, endpoints, no crop'),
    MetricSpec('eqt50k_int', _equivariance('int'), False, 'EQ-T PSNR, integer translations'),
    MetricSpec('eqt50k_frac', _equivariance('frac'), False, 'EQ-T_frac PSNR, fractional translations'),
    MetricSpec('eqr50k', _equivariance('rot'), False, 'EQ-R PSNR, rotations'),
    MetricSpec('swd', swd.compute_swd, True, 'multi-scale sliced Wasserstein distance x1e3 (offline)'),
    MetricSpec('fd_mobilenet', frechet.compute_fd_mobilenet, True, 'Frechet distance, MobileNetV2 features (offline)'),
)}

# Batch sizes the metrics use when the caller does not choose one.
DEFAULT_BATCH = {'ppl2_wend': 2, 'eqt50k_int': 4, 'eqt50k_frac': 4, 'eqr50k': 4}


def is_valid_metric(name: str) -> bool:
    return name in METRICS


def list_metrics() -> list[str]:
    return list(METRICS)


def _check(name, G, dataset_kwargs):
    if name not in METRICS:
        raise ValueError(f'unknown metric {name!r}; choose from {", ".join(METRICS)}.')
    spec = METRICS[name]
    if G is None:
        raise ValueError(f'metric {name} needs a generator.')
    if spec.needs_data and not (dataset_kwargs or {}).get('path'):
        raise ValueError(f'metric {name} needs real images: pass --data (a dataset folder or zip).')
    if name.startswith('eq'):
        equivariance.require_equivariance(G)
    return spec


def run_metrics(names, **kwargs):
    """run_metric for each name in order, yielding (name, results). The equivariance metrics
    among them share one pass (each batch's untransformed images are generated once; see
    metrics/equivariance.py), with the same values as when run alone; the first of them
    computes the pass, so its record carries the pass's whole time."""
    eq_kinds = tuple(EQ_KINDS[name] for name in names if name in EQ_KINDS)
    shared = {}
    for name in names:
        yield name, run_metric(name, **kwargs, _eq_kinds=eq_kinds, _shared=shared)


def run_metric(name: str, G=None, dataset_kwargs=None, *, num_gen=None, max_real=None, batch_size=None,
               device='cpu', detector_dir=None, cache_dir=None, progress=True, seed=0,
               run_dir=None, jsonl_path=None, snapshot=None, num_gpus=1, rank=0,
               _eq_kinds=(), _shared=None) -> dict | None:
    """Compute one named metric and return its results dict (e.g. {'fid50k_full': 3.2}).

    With `jsonl_path`, or `run_dir` (-> `<run_dir>/metric-<name>.jsonl`), one JSON line
    {'metric', 'results', 'snapshot', 'total_time', options..., 'timestamp'} is appended.
    Multi-process training: the metric runs on rank 0 alone (it needs no collectives);
    other ranks return None at once.
    """
    spec = _check(name, G, dataset_kwargs)
    if rank != 0:
        return None
    device = torch.device(device)
    opts = MetricOptions(G=G, dataset_kwargs=dict(dataset_kwargs or {}), device=device,
                         batch_size=batch_size or DEFAULT_BATCH.get(name, 32), num_gen=num_gen,
                         max_real=max_real, detector_dir=detector_dir, cache_dir=cache_dir,
                         progress=progress, seed=seed, eq_kinds=_eq_kinds, shared=_shared)
    start = time.time()
    was_training = G.training
    try:
        G.eval()
        results = result_names(name, spec.compute(opts))
    finally:
        G.train(was_training)
    record = dict(metric=name, results=results, snapshot=None if snapshot is None else str(snapshot),
                  total_time=round(time.time() - start, 3), num_gen=num_gen, max_real=max_real,
                  batch_size=opts.batch_size, device=str(device), seed=seed, timestamp=time.time())
    if jsonl_path is None and run_dir is not None:
        jsonl_path = pathlib.Path(run_dir) / f'metric-{name}.jsonl'
    if jsonl_path is not None:
        append_jsonl(jsonl_path, record)
    return results


def result_names(name: str, results: dict) -> dict:
    """Key results by metric name: one value -> {name: v}; several -> {name_key: v} (e.g. pr50k3_full_recall)."""
    if len(results) == 1:
        return {name: float(next(iter(results.values())))}
    return {(key if key.startswith(name) else f'{name}_{key}'): float(value) for key, value in results.items()}


def append_jsonl(path, record: dict):
    """Append one JSON line; written to a temp file and renamed so a crash never truncates."""
    path = pathlib.Path(path)
    old = path.read_text() if path.is_file() else ''
    if old and not old.endswith('\n'):
        old += '\n'
    tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
    tmp.write_text(old + json.dumps(record) + '\n')
    os.replace(tmp, path)
