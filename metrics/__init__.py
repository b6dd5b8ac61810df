"""Quality and equivariance metrics of generators (DESIGN.md section 2).

`run_metric(name, G=..., dataset_kwargs=...)` computes a named metric (`list_metrics()`);
`run_metrics(names, ...)` several, sharing work between the equivariance metrics.
calc_metrics.py, the training loop and models/measure_bundled.py call them. See docs/metrics.md.
"""

from metrics.registry import METRICS, is_valid_metric, list_metrics, run_metric, run_metrics

__all__ = ['METRICS', 'is_valid_metric', 'list_metrics', 'run_metric', 'run_metrics']
