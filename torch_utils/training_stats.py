"""Scalar statistics collected during training, reduced over ranks once per tick.

Unlike a module-level registry, a `StatsCollector` is an ordinary object that the training
loop creates and passes to whoever reports (the loss, the phases), so two trainings (or a
test) in one process never mix their numbers.

Each named statistic keeps three running moments (count, sum, sum of squares) as a float64
tensor; `report()` only adds to them (no device sync), `collect()` all-reduces every moment in
one call and returns mean / std / count per name.
"""

import math

import torch

from torch_utils import distributed


class StatsCollector:
    def __init__(self, device: torch.device | str = 'cpu'):
        self.device = torch.device(device)
        self._moments: dict[str, torch.Tensor] = {}   # name -> float64 [3] = (n, sum, sum of squares)

    def report(self, name: str, value) -> None:
        """Add every element of `value` (tensor, number or sequence) to statistic `name`."""
        values = torch.as_tensor(value).detach().flatten().to(torch.float64)
        if values.numel() == 0:
            return
        values = values.to(self.device)
        delta = torch.stack([values.new_tensor(float(values.numel())), values.sum(), values.square().sum()])
        if name in self._moments:
            self._moments[name] += delta
        else:
            self._moments[name] = delta

    def report0(self, name: str, value) -> None:
        """Report on rank 0 only: for values that are the same on every rank (timings, p)."""
        if distributed.is_main():
            self.report(name, value)
        else:
            self._moments.setdefault(name, torch.zeros(3, dtype=torch.float64, device=self.device))

    def names(self) -> list[str]:
        return sorted(self._moments)

    def collect(self, reset: bool = True) -> dict[str, dict[str, float]]:
        """Sum the moments over ranks; return {name: {'num', 'mean', 'std'}}.

        Every rank must call this at the same time with the same names reported (the training
        phases are identical on all ranks, so they are).
        """
        names = self.names()
        if not names:
            return {}
        flat = torch.stack([self._moments[n] for n in names])   # [names, 3]
        distributed.all_reduce_sum_(flat)
        flat = flat.cpu().tolist()
        result = {}
        for name, (num, total, total_sq) in zip(names, flat):
            if num == 0:
                continue
            mean = total / num
            var = max(total_sq / num - mean * mean, 0.0)
            result[name] = {'num': num, 'mean': mean, 'std': math.sqrt(var)}
        if reset:
            self._moments.clear()
        return result


def flatten_means(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """{name: mean} for logging as one flat JSON record."""
    return {name: value['mean'] for name, value in stats.items()}
