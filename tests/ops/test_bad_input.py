"""User errors give one clear ValueError naming the offending argument, for every backend.

Validation happens before the backend is chosen, so these run for 'ref' and 'native' alike and
never reach C++ code with bad shapes.
"""

import pytest
import torch

from ops import backend, bias_act, conv2d_resample, filter_design, filtered_lrelu, grid_sample, upfirdn2d

X = torch.zeros(1, 3, 8, 8)
F1 = torch.ones(4) / 4
F2 = torch.ones(4, 4) / 16


@pytest.fixture(params=['ref', 'native'])
def impl(request, monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    return request.param       # validation must not depend on the backend being available


UPFIRDN_BAD = [
    (dict(x=torch.zeros(3, 8, 8)), 'x'),
    (dict(x=torch.zeros(1, 3, 8, 8, dtype=torch.int64)), 'x'),
    (dict(f=torch.ones(2, 2, 2)), 'f'),
    (dict(f=torch.ones(0)), 'f'),
    (dict(f=[1, 2, 1]), 'f'),
    (dict(up=1.5), 'up'),
    (dict(up=0), 'up'),
    (dict(up=[2, 2, 2]), 'up'),
    (dict(down=2.5), 'down'),
    (dict(down=-1), 'down'),
    (dict(padding=[1, 2, 3]), 'padding'),
    (dict(padding=0.5), 'padding'),
    (dict(padding=-20), 'padding'),
    (dict(gain='big'), 'gain'),
]


@pytest.mark.parametrize('bad,arg', UPFIRDN_BAD, ids=[f'{a}-{i}' for i, (_, a) in enumerate(UPFIRDN_BAD)])
def test_upfirdn2d_bad_input(bad, arg, impl):
    kwargs = dict(x=X, f=F1, up=1, down=1, padding=0) | bad
    with pytest.raises(ValueError, match=rf'^{arg}\b'):
        upfirdn2d.upfirdn2d(kwargs.pop('x'), kwargs.pop('f'), impl=impl, **kwargs)


def test_resample_helpers_bad_input(impl):
    with pytest.raises(ValueError, match=r'^up\b'):
        upfirdn2d.upsample2d(X, F2, up=1.5, impl=impl)
    with pytest.raises(ValueError, match=r'^down\b'):
        upfirdn2d.downsample2d(X, F2, down='2', impl=impl)
    with pytest.raises(ValueError, match=r'^f\b'):
        upfirdn2d.filter2d(X, torch.ones(1, 1, 3), impl=impl)
    with pytest.raises(ValueError, match=r'^f\b'):
        upfirdn2d.setup_filter(torch.ones(2, 2, 2))


BIAS_ACT_BAD = [
    (dict(b=torch.zeros(4)), 'b'),
    (dict(b=torch.zeros(3, 1)), 'b'),
    (dict(act='gelu'), 'act'),
    (dict(dim=5), 'dim'),
    (dict(dim=1.0), 'dim'),
    (dict(clamp=-1), 'clamp'),
    (dict(alpha='x'), 'alpha'),
    (dict(gain=[1, 2]), 'gain'),
    (dict(x=[1.0, 2.0]), 'x'),
]


@pytest.mark.parametrize('bad,arg', BIAS_ACT_BAD, ids=[f'{a}-{i}' for i, (_, a) in enumerate(BIAS_ACT_BAD)])
def test_bias_act_bad_input(bad, arg, impl):
    kwargs = dict(x=X, b=torch.zeros(3), act='lrelu') | bad
    with pytest.raises(ValueError, match=rf'^{arg}\b'):
        bias_act.bias_act(kwargs.pop('x'), impl=impl, **kwargs)


FLRELU_BAD = [
    (dict(x=torch.zeros(1, 3, 8)), 'x'),
    (dict(b=torch.zeros(2)), 'b'),
    (dict(fu=torch.ones(2, 2, 2)), 'fu'),
    (dict(fd=torch.ones(1, 2, 2, 2)), 'fd'),
    (dict(up=[2, 2]), 'up'),
    (dict(up=2.5), 'up'),
    (dict(down=0), 'down'),
    (dict(padding=[1, 1, 1]), 'padding'),
    (dict(padding=-10), 'padding'),
    (dict(clamp=-1.0), 'clamp'),
    (dict(slope=None), 'slope'),
    (dict(gain='x'), 'gain'),
]


@pytest.mark.parametrize('bad,arg', FLRELU_BAD, ids=[f'{a}-{i}' for i, (_, a) in enumerate(FLRELU_BAD)])
def test_filtered_lrelu_bad_input(bad, arg, impl):
    kwargs = dict(x=X, fu=F1, fd=F1, b=torch.zeros(3), up=2, down=2, padding=2) | bad
    with pytest.raises(ValueError, match=rf'^{arg}\b'):
        filtered_lrelu.filtered_lrelu(kwargs.pop('x'), impl=impl, **kwargs)


CONV_BAD = [
    (dict(x=torch.zeros(3, 8, 8)), 'x'),
    (dict(w=torch.zeros(4, 3, 3)), 'w'),
    (dict(w=torch.zeros(4, 2, 3, 3)), 'w'),
    (dict(groups=3), 'groups'),
    (dict(groups=0), 'groups'),
    (dict(f=torch.ones(2, 2, 2), up=2), 'f'),
    (dict(up=1.5), 'up'),
    (dict(down=[2, 2]), 'down'),
    (dict(padding=[0, 1]), None),       # [px, py] is valid
    (dict(padding=-5), 'padding'),
    (dict(padding=-3, f=None), 'padding'),
    (dict(padding=-3, down=2), 'padding'),
]


@pytest.mark.parametrize('bad,arg', CONV_BAD, ids=[f'{a}-{i}' for i, (_, a) in enumerate(CONV_BAD)])
def test_conv2d_resample_bad_input(bad, arg, impl):
    kwargs = dict(x=X, w=torch.zeros(4, 3, 3, 3), f=F2, padding=1) | bad
    x, w = kwargs.pop('x'), kwargs.pop('w')
    if arg is None:
        conv2d_resample.conv2d_resample(x, w, impl='ref', **kwargs)
        return
    with pytest.raises(ValueError, match=rf'^{arg}\b'):
        conv2d_resample.conv2d_resample(x, w, impl=impl, **kwargs)


def test_grid_sample_bad_input():
    with pytest.raises(ValueError, match=r'^input\b'):
        grid_sample.grid_sample(torch.zeros(3, 4, 4), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match=r'^grid\b'):
        grid_sample.grid_sample(X, torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match=r'^grid\b'):
        grid_sample.grid_sample(X, torch.zeros(2, 2, 2, 2))
    with pytest.raises(ValueError, match=r'^grid\b'):
        grid_sample.grid_sample(X, torch.zeros(1, 2, 2, 2, dtype=torch.float64))


@pytest.mark.parametrize('bad,arg', [
    (dict(numtaps=0), 'numtaps'), (dict(numtaps=3.5), 'numtaps'), (dict(cutoff=20.0), 'cutoff'),
    (dict(width=0.0), 'width'), (dict(fs=-1.0), 'fs')])
@pytest.mark.parametrize('design', [filter_design.kaiser_lowpass, filter_design.jinc_lowpass])
def test_filter_design_bad_input(design, bad, arg):
    kwargs = dict(numtaps=12, cutoff=2.0, width=12.0, fs=32.0) | bad
    with pytest.raises(ValueError, match=rf'^{arg}\b'):
        design(**kwargs)


def test_bad_impl_name():
    with pytest.raises(ValueError, match=r'^impl\b'):
        upfirdn2d.upfirdn2d(X, F1, impl='cuda')
