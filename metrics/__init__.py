"""Quality and equivariance metrics of generators (DESIGN.md section 2).

`run_metric(name, G=..., dataset_kwargs=...)` computes a named metric (`list_metrics()`);
calc_metrics.py and the training loop both call it. See docs/metrics.md.
"""

from metrics.registry import METRICS, is_valid_metric, list_metrics, run_metric

__all__ = ['METRICS', 'is_valid_metric', 'list_metrics', 'run_metric']
