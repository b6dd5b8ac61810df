"""Numerical gradient checks (float64, tiny shapes) for every op and backend.

First order everywhere; second order (gradgradcheck) for bias_act, upfirdn2d,
conv2d_resample and grid_sample, which R1 / path-length regularisation differentiate twice, and
for filtered_lrelu, whose native backward is a fused kernel with a hand-written adjoint.
"""

import pytest
import torch

from ops import backend, bias_act, conv2d_resample, filtered_lrelu, grid_sample, upfirdn2d
from ops.upfirdn2d import setup_filter

from torch.autograd import gradcheck
from torch.autograd import gradgradcheck as _gradgradcheck


def gradgradcheck(fn, inputs):
    # fast_mode checks random projections of the second-order Jacobian: just as able to catch
    # a wrong formula, much cheaper on the shared 2-core machines.
    return _gradgradcheck(fn, inputs, fast_mode=True)


@pytest.fixture(params=['ref', 'native'])
def impl(request, monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    if request.param == 'native' and not backend.native_available():
        pytest.skip('native ops backend not available on this machine')
    return request.param


def _randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)


def _filter(taps, seed=1, separable=None):
    g = torch.Generator().manual_seed(seed)
    return setup_filter(torch.rand(taps, generator=g) + 0.5, separable=separable)


UPFIRDN_CONFIGS = {
    'up2_sep': dict(f=('sep', 8), up=2, down=1, padding=[4, 3, 4, 3], gain=4),
    'down2_2d': dict(f=('2d', 4), up=1, down=2, padding=[1, 1, 1, 1]),
    'up2down2_crop_flip': dict(f=('sep', 7), up=2, down=2, padding=[-1, 3, 2, -2], flip_filter=True,
                               gain=0.7),
    'aniso': dict(f=('2d', 3), up=[2, 1], down=[1, 2], padding=[2, 1, 0, 1]),
    'identity_crop': dict(f=None, padding=[-1, 2, 0, -1], gain=1.5),
}


def _upfirdn_args(cfg):
    cfg = dict(cfg)
    spec = cfg.pop('f')
    if spec is None:
        return None, cfg
    kind, taps = spec
    return _filter(taps, separable=(kind == 'sep')), cfg


@pytest.mark.parametrize('name', sorted(UPFIRDN_CONFIGS))
def test_upfirdn2d_grad_and_gradgrad(name, impl):
    f, kwargs = _upfirdn_args(UPFIRDN_CONFIGS[name])
    x = _randn(1, 2, 4, 5)
    fn = lambda x: upfirdn2d.upfirdn2d(x, f, impl=impl, **kwargs)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize('act', sorted(bias_act.ACTIVATIONS))
def test_bias_act_grad_and_gradgrad(act, impl):
    x, b = _randn(2, 3, 2, 3, seed=2), _randn(3, seed=3)
    clamp = 1.0 if act in ('lrelu', 'linear') else None   # exercise the clamp on some activations
    fn = lambda x, b: bias_act.bias_act(x, b, act=act, clamp=clamp, impl=impl)
    assert gradcheck(fn, (x, b))
    assert gradgradcheck(fn, (x, b))


def test_bias_act_dim_and_no_bias(impl):
    x, b = _randn(3, 4, 2, seed=4), _randn(4, seed=5)
    assert gradcheck(lambda x, b: bias_act.bias_act(x, b, dim=1, act='tanh', gain=2.0, impl=impl), (x, b))
    assert gradcheck(lambda x: bias_act.bias_act(x, act='swish', impl=impl), (x,))


FLRELU_CONFIGS = {
    'sg3_up2_down2': dict(fu=('sep', 8), fd=('sep', 8), up=2, down=2, padding=[5, 4, 5, 4], clamp=0.8),
    'up3_down2_flip': dict(fu=('2d', 3), fd=('sep', 5), up=3, down=2, padding=[2, -1, 0, 3],
                           gain=1.3, slope=0.1, clamp=1.0, flip_filter=True),
    'radial_fd': dict(fu=('sep', 8), fd=('2d', 4), up=2, down=2, padding=[3, 3, 3, 3]),
    'no_filters': dict(fu=None, fd=None, gain=1.0, slope=1.0, clamp=0.5),
}


@pytest.mark.parametrize('order', [1, 2])
@pytest.mark.parametrize('name', sorted(FLRELU_CONFIGS))
def test_filtered_lrelu_grad(name, impl, order):
    """order 2: double backward through the (fused, on native) input gradient. Away from the
    leaky ReLU's kink and the clamp the second derivative in x is 0, so this checks the
    backward's own adjoint: d/d(dy) of <dx, v> must equal down(act'(mask) * up(v))."""
    cfg = dict(FLRELU_CONFIGS[name])
    fu, _ = _upfirdn_args({'f': cfg.pop('fu')})
    fd, _ = _upfirdn_args({'f': cfg.pop('fd')})
    x, b = _randn(1, 2, 5, 5, seed=6), _randn(2, seed=7)
    fn = lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl=impl, **cfg)
    assert (gradcheck if order == 1 else gradgradcheck)(fn, (x, b))


CONV_CONFIGS = {
    'plain': dict(padding=1),
    'up2_noflipw': dict(f=[1, 3, 3, 1], up=2, padding=1, flip_weight=False),
    'down2': dict(f=[1, 3, 3, 1], down=2, padding=1),
    'groups2_up2': dict(f=[1, 2, 4, 1], up=2, padding=1, groups=2, flip_weight=False, flip_filter=True),
    'asympad': dict(padding=[1, 0, 2, 1]),
    'up2_down2': dict(f=[1, 3, 3, 1], up=2, down=2, padding=1),
}


@pytest.mark.parametrize('name', sorted(CONV_CONFIGS))
def test_conv2d_resample_grad_and_gradgrad(name, impl):
    cfg = dict(CONV_CONFIGS[name])
    f = setup_filter(cfg.pop('f')) if 'f' in cfg else None
    groups = cfg.get('groups', 1)
    x, w = _randn(1, 2 * groups, 4, 4, seed=8), _randn(2 * groups, 2, 3, 3, seed=9)
    fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f, impl=impl, **cfg)
    assert gradcheck(fn, (x, w))
    assert gradgradcheck(fn, (x, w))


def _grid(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    # Some points fall outside [-1, 1] to exercise the zero padding.
    return (torch.rand(n, h, w, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2).requires_grad_(True)


def test_grid_sample_matches_torch():
    x, grid = _randn(2, 3, 5, 6, seed=10), _grid(2, 4, 7, seed=11)
    ours = grid_sample.grid_sample(x, grid)
    theirs = torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros',
                                             align_corners=False)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    g_ours = torch.autograd.grad(ours.square().sum(), [x, grid])
    g_theirs = torch.autograd.grad(theirs.square().sum(), [x, grid])
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_grid_sample_grad_and_gradgrad():
    x, grid = _randn(1, 2, 4, 5, seed=12), _grid(1, 3, 3, seed=13)
    assert gradcheck(grid_sample.grid_sample, (x, grid))
    assert gradgradcheck(grid_sample.grid_sample, (x, grid))


def test_grid_sample_second_order_through_input_only():
    # The R1 pattern: gradient w.r.t. the image, then differentiate its norm w.r.t. the image.
    x, grid = _randn(1, 2, 4, 5, seed=14), _grid(1, 3, 3, seed=15).detach()
    fn = lambda x: grid_sample.grid_sample(x, grid).sin()
    assert gradgradcheck(fn, (x,))
