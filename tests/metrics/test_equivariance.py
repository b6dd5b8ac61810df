"""Equivariance metrics: reference fixed-transform checks, transforms, constructed networks."""

import math
import os

import pytest
import torch

from metrics import equivariance as eq
from metrics import image_transforms as T
from tests import refdata
from tests.metrics.helpers import FourierGenerator, reference_generator, tiny_generator


@pytest.mark.parametrize('name', ['stylegan3-t', 'stylegan3-r'])
def test_fixed_transform_checks_match_reference(name):
    expected = refdata.load_json('equivariance.json')['fixed_transform_checks']['results'][name]
    G = reference_generator(name)
    z = refdata.load_tensors(f'{name}.io.safetensors')['z']
    got = eq.fixed_transform_checks(G, z)
    assert [g['kind'] for g in got] == ['int', 'frac', 'rot']
    for g, e in zip(got, expected):
        assert g['sum_mask'] == e['sum_mask'], e['kind']
        assert g['sum_sq_err_masked'] == pytest.approx(e['sum_sq_err_masked'], rel=1e-3), e['kind']
        assert g['psnr_db'] == pytest.approx(e['psnr_db'], rel=1e-3), e['kind']


def test_fixed_transforms_are_the_reference_ones():
    expected = refdata.load_json('equivariance.json')['fixed_transform_checks']['results']['stylegan3-t']
    tf_int, tf_frac, tf_rot = eq.FIXED_TRANSFORMS
    assert [tf_int.tx, tf_int.ty] == expected[0]['t']
    assert [tf_frac.tx, tf_frac.ty] == expected[1]['t']
    assert tf_rot.angle == expected[2]['angle_rad']


def _smooth_image(res=32):
    y, x = torch.meshgrid(torch.arange(res, dtype=torch.float32), torch.arange(res, dtype=torch.float32),
                          indexing='ij')
    img = torch.cos(2 * math.pi * (0.07 * x + 0.03 * y)) + torch.sin(2 * math.pi * 0.05 * y)
    return img[None, None].repeat(2, 3, 1, 1)


def test_integer_translation_moves_content_and_masks_border():
    x = torch.randn(2, 3, 32, 32)
    y, mask = T.integer_translation(x, 2 / 32, -1 / 32)
    assert torch.equal(y[:, :, :31, 2:], x[:, :, 1:, :30])                  # right 2, up 1
    assert mask.sum() == 2 * 3 * 30 * 31 and torch.all(y[mask == 0] == 0)


def test_fractional_translation_with_whole_pixels_equals_integer_shift():
    x = torch.randn(2, 3, 32, 32)
    a, _ = T.integer_translation(x, 3 / 32, -2 / 32)
    b, mask = T.fractional_translation(x, 3 / 32, -2 / 32)
    assert torch.allclose(a * mask, b * mask, atol=1e-6)


def test_fractional_translation_of_smooth_image_is_accurate():
    x = _smooth_image()
    y, mask = T.fractional_translation(x, 0.25 / 32, 0.5 / 32)
    yy, xx = torch.meshgrid(torch.arange(32.) - 0.5, torch.arange(32.) - 0.25, indexing='ij')
    exact = torch.cos(2 * math.pi * (0.07 * xx + 0.03 * yy)) + torch.sin(2 * math.pi * 0.05 * yy)
    assert ((y - exact) * mask).abs().max() < 0.02


def test_rotation_by_quarter_turn_matches_rot90_and_is_counter_clockwise():
    x = _smooth_image()
    y, mask = T.fractional_rotation(x, math.pi / 2)
    assert mask[0, 0].sum() > 300
    assert ((y - torch.rot90(x, 1, dims=(2, 3))) * mask).abs().max() < 1e-3
    y0, mask0 = T.fractional_rotation(x, 0.0)
    assert mask0[0, 0].sum() == 20 * 20 and ((y0 - x) * mask0).abs().max() < 1e-3


def test_bandlimit_filter_polyphase_normalisation():
    f = T.oriented_bandlimit_filter(T.rotation_matrix(0.7))
    assert f.shape == (47, 47)
    phases = torch.nn.functional.pad(f, [0, 1, 0, 1]).reshape(12, 4, 12, 4).sum(dim=(0, 2))
    assert torch.allclose(phases, torch.full([4, 4], 1 / 16), atol=1e-6)
    assert T.oriented_bandlimit_filter(T.rotation_matrix(0.7), up=1).shape == (11, 11)


def test_draw_transform_ranges():
    rng = torch.Generator().manual_seed(0)
    for _ in range(50):
        t = eq.draw_transform('int', 32, rng)
        assert abs(t.tx) <= 0.125 and (t.tx * 32) == round(t.tx * 32) and (t.ty * 32) == round(t.ty * 32)
        assert abs(eq.draw_transform('frac', 32, rng).ty) <= 0.125
        assert abs(eq.draw_transform('rot', 32, rng).angle) <= math.pi


def test_equivariant_network_scores_far_above_aliasing_one():
    good, bad = FourierGenerator(alias=False), FourierGenerator(alias=True)
    for kind in ('int', 'frac'):
        p_good = eq.compute_equivariance(good, kind, num_samples=16, batch_size=4, progress=False)['psnr_db']
        p_bad = eq.compute_equivariance(bad, kind, num_samples=16, batch_size=4, progress=False)['psnr_db']
        assert p_good > p_bad + 20, (kind, p_good, p_bad)
    # Integer translations of a continuous signal sampled at pixel centres are exact.
    assert eq.compute_equivariance(good, 'int', 8, 4, progress=False)['psnr_db'] > 100


def test_stylegan2_is_not_applicable():
    G = tiny_generator('stylegan2')
    with pytest.raises(ValueError, match='input can be transformed'):
        eq.compute_equivariance(G, 'int', 4)
    from metrics import run_metric
    with pytest.raises(ValueError, match='input can be transformed'):
        run_metric('eqr50k', G=G, num_gen=4)


def test_stylegan2_fourier_is_supported():
    G = tiny_generator('stylegan2-fourier')
    out = eq.compute_equivariance(G, 'rot', num_samples=4, batch_size=2, progress=False)
    assert math.isfinite(out['psnr_db']) and out['sum_mask'] > 0


def test_metric_is_seeded_and_leaves_generator_untouched():
    G = FourierGenerator()
    a = eq.compute_equivariance(G, 'frac', 8, 4, seed=3, progress=False)
    b = eq.compute_equivariance(G, 'frac', 8, 4, seed=3, progress=False)
    assert a == b and torch.equal(G.synthesis.input.transform, torch.eye(3))


FULL_EQ = os.environ.get('STYLEGAN_FULL_EQ') == '1'


@pytest.mark.slow
@pytest.mark.skipif(not FULL_EQ, reason='512-sample EQ metrics take minutes per metric; set STYLEGAN_FULL_EQ=1')
@pytest.mark.parametrize('name', ['stylegan3-t', 'stylegan3-r'])
@pytest.mark.parametrize('kind,key', [('int', 'eqt_int'), ('frac', 'eqt_frac'), ('rot', 'eqr')])
def test_full_metric_within_one_db_of_reference(name, kind, key):
    ref = refdata.load_json('equivariance.json')['results'][name][key]['psnr_db']
    got = eq.compute_equivariance(reference_generator(name), kind, num_samples=512, batch_size=8,
                                  progress=False)['psnr_db']
    print(f'{name} {key}: {got:.3f} dB (reference {ref:.3f})')
    assert abs(got - ref) < 1.0


def test_kinds_share_a_pass_with_the_values_of_separate_runs(monkeypatch):
    """All three kinds together: exactly the results of three separate runs (each on the
    reference's RNG stream), with the untransformed images generated once per batch for both
    translation kinds (5 synthesis calls per batch instead of 6)."""
    G = FourierGenerator(alias=True)
    alone = {kind: eq.compute_equivariance(G, kind, 12, 4, seed=5, progress=False) for kind in eq.KINDS}
    calls = []
    real_synthesize = eq.synthesize
    monkeypatch.setattr(eq, 'synthesize', lambda *args: calls.append(1) or real_synthesize(*args))
    together = eq.compute_equivariance_kinds(G, ['rot', 'int', 'frac'], 12, 4, seed=5, progress=False)
    assert together == alone
    assert len(calls) == 3 * 5            # 3 batches x (int+frac: 1 + 2, rot: 1 + 1)
    assert len({r['psnr_db'] for r in together.values()}) == 3   # the kinds really differ


def test_run_metrics_shares_the_equivariance_pass(tmp_path, monkeypatch):
    from metrics import run_metric, run_metrics
    G = FourierGenerator(alias=True)
    names = ['eqt50k_int', 'eqt50k_frac', 'eqr50k']
    alone = {name: run_metric(name, G=G, num_gen=8, progress=False)[name] for name in names}
    passes = []
    real_kinds = eq.compute_equivariance_kinds
    monkeypatch.setattr(eq, 'compute_equivariance_kinds', lambda G, kinds, *a: passes.append(kinds) or real_kinds(G, kinds, *a))
    together = {name: results[name] for name, results in
                run_metrics(names, G=G, num_gen=8, progress=False, run_dir=tmp_path)}
    assert together == alone
    assert passes == [['int', 'frac', 'rot']]
    assert all((tmp_path / f'metric-{name}.jsonl').is_file() for name in names)
