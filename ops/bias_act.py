"""bias_act: add a bias, apply an activation, scale by a gain, clamp (DESIGN.md section 5).

    y = clamp(act(x + b, alpha) * gain, -clamp, clamp)

The default gains keep the signal magnitude unchanged for unit-variance input (He et al.
2015; StyleGAN2 "equalized learning rate"), e.g. sqrt(2) for (leaky) ReLU. Only `lrelu` uses
`alpha` (its negative slope); every other activation ignores it.
"""

import dataclasses
import math
from typing import Callable

import torch
import torch.nn.functional as F

from ops import _validate
from ops.backend import resolve_impl
from ops.upfirdn2d import _native_function


@dataclasses.dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]  # (x, alpha) -> y, twice differentiable
    def_alpha: float                                      # default alpha when None is passed
    def_gain: float                                       # default gain when None is passed


ACTIVATIONS = {
    'linear':   Activation(lambda x, _: x,                          0.0, 1.0),
    'relu':     Activation(lambda x, _: torch.relu(x),              0.0, math.sqrt(2)),
    'lrelu':    Activation(lambda x, a: F.leaky_relu(x, a),         0.2, math.sqrt(2)),
    'tanh':     Activation(lambda x, _: torch.tanh(x),              0.0, 1.0),
    'sigmoid':  Activation(lambda x, _: torch.sigmoid(x),           0.0, 1.0),
    'elu':      Activation(lambda x, _: F.elu(x),                   0.0, 1.0),
    'selu':     Activation(lambda x, _: F.selu(x),                  0.0, 1.0),
    'softplus': Activation(lambda x, _: F.softplus(x),              0.0, 1.0),
    'swish':    Activation(lambda x, _: x * torch.sigmoid(x),       0.0, math.sqrt(2)),
}


def resolve_args(act: str, alpha, gain, clamp) -> tuple[float, float, float | None]:
    """Validate and fill in the per-activation defaults -> (alpha, gain, clamp)."""
    if act not in ACTIVATIONS:
        raise ValueError(f'act must be one of {sorted(ACTIVATIONS)}, got {act!r}.')
    spec = ACTIVATIONS[act]
    alpha = spec.def_alpha if alpha is None else _validate.number(alpha, 'alpha')
    gain = spec.def_gain if gain is None else _validate.number(gain, 'gain')
    clamp = _validate.number(clamp, 'clamp', allow_none=True)
    if clamp is not None and clamp < 0:
        raise ValueError(f'clamp must be non-negative or None, got {clamp!r}.')
    return alpha, gain, clamp


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='auto'):
    """y = clamp(act(x + b broadcast along `dim`, alpha) * gain, -clamp, clamp)."""
    x = _validate.tensor(x, 'x')
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f'dim must be an int, got {dim!r}.')
    if b is not None and not 0 <= dim < x.ndim:
        raise ValueError(f'dim must be in [0, {x.ndim - 1}] for x of shape {list(x.shape)}, got {dim}.')
    b = _validate.bias(b, x, dim)
    alpha, gain, clamp = resolve_args(act, alpha, gain, clamp)
    if resolve_impl(impl, x) == 'native':
        native = _native_function('bias_act')
        if native is not None:
            return native(x, b, dim, act, alpha, gain, clamp)
    return bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def bias_act_ref(x, b, dim, act, alpha, gain, clamp) -> torch.Tensor:
    """Reference implementation; alpha/gain already resolved to floats."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)               # bias broadcast along `dim`
    x = ACTIVATIONS[act].func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x
