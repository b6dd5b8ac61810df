"""Dense work of torch calls: the convolutions and matrix products that both ops backends share.

Used by benchmarks/generator.py (FLOP bound) and benchmarks/train_step.py (speedup limit): what
a forward or training step spends there cannot be made faster by our ops.
"""

import math
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_MATMULS = ('mm', 'addmm', 'bmm')


def _conv_weight(name, args):
    """The weight of a convolution call (forward or backward), else None."""
    return args[2] if name == 'convolution_backward' else args[1] if name == 'convolution' else None


def is_dense(func, args) -> bool:
    """Convolutions (forward and backward) and matrix products, except single-input-channel
    convolutions: the FIR filter passes of the reference ops are not dense work."""
    name = func.overloadpacket.__name__
    weight = _conv_weight(name, args)
    if weight is not None:
        return weight.shape[1] > 1
    return name in _MATMULS


def forward_flops(func, args, out) -> int:
    """2*MACs of a dense forward call (convolution or matrix product); 0 for anything else."""
    name = func.overloadpacket.__name__
    if name == 'convolution':
        w = args[1]
        return 2 * out.numel() * w.shape[1] * math.prod(w.shape[2:])
    a = args[-2] if name == 'addmm' else args[0]
    return 2 * out.numel() * a.shape[-1] if name in _MATMULS else 0


class DenseWork(TorchDispatchMode):
    """Inside the `with`: dense forward FLOPs and wall seconds spent in dense calls (CPU kernels
    run synchronously, so timing around each call is exact enough)."""

    def __init__(self):
        super().__init__()
        self.flops, self.seconds = 0, 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        if is_dense(func, args):
            self.seconds += time.perf_counter() - start
            self.flops += forward_flops(func, args, out)
        return out
