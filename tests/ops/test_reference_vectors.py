"""Every case of shared/reference/ops.json against its stored vectors, for each backend.

Outputs and input gradients (and bias_act's second-order grad2_x) must match to 1e-5 relative
in float64 and 1e-4 in float32 (relative to the largest magnitude of the expected tensor).
The StyleGAN3 filter designs must reproduce the stored float64 taps, and their float32 casts
must equal the network buffers bit for bit.
"""

import json

import pytest
import torch

from ops import backend, bias_act, conv2d_resample, filter_design, filtered_lrelu, upfirdn2d
from tests import refdata

TOL = {torch.float64: 1e-5, torch.float32: 1e-4}


def _all_cases() -> list[dict]:
    path = refdata.reference_dir() / 'ops.json'
    return json.loads(path.read_text())['cases'] if path.is_file() else []


def _all_designs() -> list[dict]:
    path = refdata.reference_dir() / 'ops.json'
    if not path.is_file():
        return []
    return [d for d in json.loads(path.read_text())['filter_design']['filters'] if d['filter']]


CASES = {c['name']: c for c in _all_cases()}
DESIGNS = {f"{d['network']}.{d['layer']}.{d['side']}": d for d in _all_designs()}


def _tensors(case) -> dict:
    stored = refdata.load_tensors('ops.safetensors')
    return {name: stored[spec['key']] for name, spec in case['tensors'].items()}


def _leaf(t, dtype):
    return None if t is None else t.to(dtype).clone().requires_grad_(True)


# One runner per op: (case args, tensors cast to dtype, impl) -> dict of computed tensors
# named like the stored ones.

def _run_upfirdn2d(a, t, dtype, impl):
    x = _leaf(t['x'], dtype)
    y = upfirdn2d.upfirdn2d(x, t.get('f'), up=a['up'], down=a['down'], padding=a['padding'],
                            flip_filter=a['flip_filter'], gain=a['gain'], impl=impl)
    grad_x, = torch.autograd.grad((y * t['grad_weight'].to(dtype)).sum(), [x])
    return dict(y=y, grad_x=grad_x)


def _run_filtered_lrelu(a, t, dtype, impl):
    x, b = _leaf(t['x'], dtype), _leaf(t.get('b'), dtype)
    y = filtered_lrelu.filtered_lrelu(x, t.get('fu'), t.get('fd'), b, up=a['up'], down=a['down'],
                                      padding=a['padding'], gain=a['gain'], slope=a['slope'],
                                      clamp=a['clamp'], flip_filter=a['flip_filter'], impl=impl)
    grad_x, grad_b = torch.autograd.grad((y * t['grad_weight'].to(dtype)).sum(), [x, b])
    return dict(y=y, grad_x=grad_x, grad_b=grad_b)


def _run_bias_act(a, t, dtype, impl, case):
    x, b = _leaf(t['x'], dtype), _leaf(t.get('b'), dtype)
    y = bias_act.bias_act(x, b, dim=a['dim'], act=a['act'], alpha=a['alpha'], gain=a['gain'],
                          clamp=a['clamp'], impl=impl)
    weighted = y ** 2 if 'y**2' in case['first_order_loss'] else y
    inputs = [x] if b is None else [x, b]
    grads = torch.autograd.grad((weighted * t['grad_weight'].to(dtype)).sum(), inputs, create_graph=True)
    out = dict(y=y, grad_x=grads[0])
    if b is not None:
        out['grad_b'] = grads[1]
    # grad2_x = d/dx sum(grad_x**2); zero when grad_x does not depend on x (linear).
    if grads[0].requires_grad:
        out['grad2_x'], = torch.autograd.grad((grads[0] ** 2).sum(), [x], allow_unused=True,
                                              materialize_grads=True)
    else:
        out['grad2_x'] = torch.zeros_like(x)
    return out


def _run_conv2d_resample(a, t, dtype, impl):
    x, w = _leaf(t['x'], dtype), _leaf(t['w'], dtype)
    y = conv2d_resample.conv2d_resample(x, w, t.get('f'), up=a['up'], down=a['down'],
                                        padding=a['padding'], groups=a['groups'],
                                        flip_weight=a['flip_weight'], flip_filter=a['flip_filter'],
                                        impl=impl)
    grad_x, grad_w = torch.autograd.grad((y * t['grad_weight'].to(dtype)).sum(), [x, w])
    return dict(y=y, grad_x=grad_x, grad_w=grad_w)


def run_case(case, dtype, impl) -> dict:
    a, t = case['args'], _tensors(case)
    if case['op'] == 'bias_act':
        return _run_bias_act(a, t, dtype, impl, case)
    runner = {'upfirdn2d': _run_upfirdn2d, 'filtered_lrelu': _run_filtered_lrelu,
              'conv2d_resample': _run_conv2d_resample}[case['op']]
    return runner(a, t, dtype, impl)


def assert_close(name, got, expected, tol):
    assert got.shape == expected.shape, f'{name}: shape {list(got.shape)} != {list(expected.shape)}'
    scale = expected.abs().max().item()
    err = (got.detach().double() - expected.double()).abs().max().item()
    assert err <= tol * max(scale, 1e-12), f'{name}: max abs error {err:.3g} > {tol} x {scale:.3g}'


@pytest.fixture(params=['ref', 'native'])
def impl(request, monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)     # test exactly the backend named
    if request.param == 'native' and not backend.native_available():
        pytest.skip('native ops backend not available on this machine')
    return request.param


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('name', sorted(CASES))
def test_case_matches_reference(name, dtype, impl):
    refdata.require_reference()
    case = CASES[name]
    got = run_case(case, dtype, impl)
    expected = _tensors(case)
    checked = [k for k in ('y', 'grad_x', 'grad_b', 'grad_w', 'grad2_x') if k in expected]
    assert set(checked) <= set(got), f'missing outputs {set(checked) - set(got)}'
    for key in checked:
        assert got[key].dtype == dtype, f'{key} has dtype {got[key].dtype}, expected {dtype}'
        assert_close(f'{name}.{key}', got[key], expected[key], TOL[dtype])


def test_every_op_has_cases():
    refdata.require_reference()
    ops_seen = {c['op'] for c in CASES.values()}
    assert ops_seen == {'upfirdn2d', 'filtered_lrelu', 'bias_act', 'conv2d_resample'}


@pytest.mark.parametrize('name', sorted(DESIGNS))
def test_filter_design_matches_network_buffers(name):
    refdata.require_reference()
    d = DESIGNS[name]
    stored = refdata.load_tensors('ops.safetensors')
    design = filter_design.jinc_lowpass if d['radial'] else filter_design.kaiser_lowpass
    taps = design(d['numtaps'], d['cutoff'], d['width'], d['fs'])
    expected = stored[d['filter_float64']['key']]
    assert taps.dtype == torch.float64
    assert_close(name, taps, expected, 1e-12)
    assert torch.equal(taps.float(), stored[d['filter']['key']]), 'float32 cast differs from buffer'


def test_kaiser_lowpass_matches_scipy_firwin():
    signal = pytest.importorskip('scipy.signal')
    for numtaps, cutoff, width, fs in [(12, 2.0, 12.0, 32.0), (24, 4.0, 8.0, 64.0), (7, 0.3, 0.25, 2.0),
                                       (31, 10.0, 1.0, 64.0)]:
        expected = torch.from_numpy(signal.firwin(numtaps, cutoff, width=width, fs=fs))
        taps = filter_design.kaiser_lowpass(numtaps, cutoff, width, fs)
        assert_close(f'firwin{numtaps}', taps, expected, 1e-12)


def test_jinc_lowpass_odd_taps_has_finite_centre():
    taps = filter_design.jinc_lowpass(7, 4.0, 6.0, 32.0)
    assert taps.shape == (7, 7) and torch.isfinite(taps).all()
    assert abs(taps.sum().item() - 1) < 1e-12
    assert torch.allclose(taps, taps.T) and torch.allclose(taps, taps.flip(0))


def _conv2d_resample_definition(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The literal definition of ops.json conventions.conv2d_resample (slow but obvious)."""
    fw, fh = (f.shape[-1], f.shape[0]) if f is not None else (1, 1)
    px0, px1, py0, py1 = padding
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    x = upfirdn2d.upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1],
                            gain=up ** 2, flip_filter=flip_filter, impl='ref')
    x = torch.nn.functional.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl='ref')
    return x


@pytest.mark.parametrize('up,down', [(2, 1), (1, 2), (2, 2), (4, 1), (1, 1)])
@pytest.mark.parametrize('kernel', [(3, 3), (1, 1), (2, 3)])
def test_conv2d_resample_fast_paths_equal_definition(up, down, kernel):
    g = torch.Generator().manual_seed(up * 10 + down + kernel[1])
    groups = 2
    x = torch.randn(2, 4, 7, 6, generator=g, dtype=torch.float64)
    w = torch.randn(6, 2, *kernel, generator=g, dtype=torch.float64)
    f = upfirdn2d.setup_filter(torch.rand(4, generator=g) + 0.2) if up > 1 or down > 1 else None
    for flip_weight in (True, False):
        for padding in ([1, 2, 0, 1], [2, 2, 2, 2]):
            args = (x, w, f, up, down, padding, groups, flip_weight, True)
            got = conv2d_resample.conv2d_resample(*args[:2], f=f, up=up, down=down, padding=padding,
                                                  groups=groups, flip_weight=flip_weight,
                                                  flip_filter=True, impl='ref')
            assert_close('conv2d_resample', got, _conv2d_resample_definition(*args), 1e-12)
