"""gen_images.py end to end on tiny networks, plus the shared gen_utils helpers."""

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import gen_images
from tests import refdata
from tests.torch_utils import pickle_writer as pw
from torch_utils import gen_utils, network_files

TINY = dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16,
            mapping_kwargs=dict(num_layers=1))


def _export(tmp_path_factory, cfg, **overrides):
    from training import registry
    torch.manual_seed(0)
    G = registry.create_generator(cfg, **{**TINY, **overrides})
    for p in G.parameters():   # non-trivial weights (noise strengths, biases, w_avg)
        p.data.add_(torch.randn_like(p) * 0.2)
    G.mapping.w_avg.add_(torch.randn_like(G.mapping.w_avg))
    path = tmp_path_factory.mktemp('nets') / f'{cfg}-{len(overrides)}.safetensors'
    return network_files.export_safetensors(G.eval(), path)


@pytest.fixture(scope='module')
def sg2(tmp_path_factory):
    return _export(tmp_path_factory, 'stylegan2')


def _run(*args):
    result = CliRunner().invoke(gen_images.main, [str(a) for a in args])
    assert 'Traceback' not in result.output
    return result


def _png(path):
    return np.asarray(PIL.Image.open(path))


def test_images_match_direct_generation(tmp_path, sg2):
    result = _run('--network', sg2, '--seeds', '0-2,5', '--batch', 2, '--outdir', tmp_path, '--device', 'cpu')
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ['seed0000.png', 'seed0001.png', 'seed0002.png', 'seed0005.png']
    G = network_files.load_generator(sg2)
    with torch.no_grad():
        img = G(gen_utils.seeds_to_z([2, 5], G.z_dim), None)
    expected = gen_utils.to_uint8(img)                                   # [2, 16, 16, 3]
    for seed, exp in zip([2, 5], expected):
        got = _png(tmp_path / f'seed{seed:04d}.png')
        assert got.shape == (16, 16, 3) and np.abs(got.astype(int) - exp).max() <= 1
    assert not np.array_equal(_png(tmp_path / 'seed0000.png'), _png(tmp_path / 'seed0001.png'))


def test_reference_transform_reproduces_reference_images(tmp_path):
    """--translate 0.125,-0.25 --rotate 10 on the reference SG3-T gives img_transformed_const."""
    ref_json = refdata.load_json('stylegan3-t.json')
    io_ref = refdata.load_tensors('stylegan3-t.io.safetensors')
    net = tmp_path / 'ref.pkl'
    net.write_bytes(pw.snapshot_bytes(None, None, pw.generator_call(
        ref_json, refdata.load_tensors('stylegan3-t.G.safetensors')), keys={'G_ema'}))
    out = tmp_path / 'out'
    result = _run('--network', net, '--seeds', '0-3', '--translate', '0.125,-0.25', '--rotate', 10, '--outdir', out)
    assert result.exit_code == 0, result.output
    expected = gen_utils.to_uint8(io_ref['img_transformed_const'])
    untransformed = gen_utils.to_uint8(io_ref['img_const'])
    for seed in range(4):
        got = _png(out / f'seed{seed:04d}.png').astype(int)
        assert np.abs(got - expected[seed]).max() <= 1
        assert np.abs(got - untransformed[seed]).max() > 1


def test_transform_matrix_and_latents_follow_reference():
    io_ref = refdata.load_tensors('stylegan3-t.io.safetensors')
    for seed in range(4):
        z = gen_utils.seed_to_z(seed, 512)
        assert torch.equal(z, io_ref['z'][seed])

    class FakeG(torch.nn.Module):   # only the buffer set_input_transform writes
        def __init__(self):
            super().__init__()
            self.synthesis = torch.nn.Module()
            self.synthesis.input = torch.nn.Module()
            self.synthesis.input.register_buffer('transform', torch.eye(3))
    G = FakeG()
    gen_utils.set_input_transform(G, (0.125, -0.25), 10)
    assert torch.allclose(G.synthesis.input.transform, io_ref['transform_matrix'], atol=1e-7, rtol=0)


def test_truncation_zero_gives_one_image(tmp_path, sg2):
    assert _run('--network', sg2, '--seeds', '0-1', '--trunc', 0, '--outdir', tmp_path).exit_code == 0
    assert np.array_equal(_png(tmp_path / 'seed0000.png'), _png(tmp_path / 'seed0001.png'))


def test_noise_modes_differ_for_stylegan2(tmp_path, sg2):
    for mode in ['const', 'none', 'random']:
        assert _run('--network', sg2, '--seeds', 3, '--noise-mode', mode, '--outdir', tmp_path / mode).exit_code == 0
    images = {mode: _png(tmp_path / mode / 'seed0003.png') for mode in ['const', 'none', 'random']}
    assert not np.array_equal(images['const'], images['none'])
    assert not np.array_equal(images['const'], images['random'])


def test_conditional_network_needs_class(tmp_path_factory, tmp_path):
    cond = _export(tmp_path_factory, 'stylegan2', c_dim=3)
    result = _run('--network', cond, '--seeds', 0, '--outdir', tmp_path)
    assert result.exit_code != 0 and '--class' in result.output
    result = _run('--network', cond, '--seeds', 0, '--class', 5, '--outdir', tmp_path)
    assert result.exit_code != 0 and 'out of range' in result.output
    assert _run('--network', cond, '--seeds', 0, '--class', 2, '--outdir', tmp_path).exit_code == 0
    assert (tmp_path / 'seed0000.png').is_file()


@pytest.mark.parametrize('args, expected', [
    (['--translate', '0.1,0'], 'no Fourier-feature input'),
    (['--class', '1'], 'unconditional'),
    (['--seeds', '3-1'], 'ends before it starts'),
    (['--seeds', 'abc'], 'not an integer'),
    (['--translate', '0.1'], 'pair of numbers'),
])
def test_bad_options_give_clear_errors(tmp_path, sg2, args, expected):
    base = {'--network': str(sg2), '--seeds': '0', '--outdir': str(tmp_path)}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    result = _run(*[item for pair in base.items() for item in pair])
    assert result.exit_code != 0 and expected in result.output
    assert not list(tmp_path.glob('*.png'))


def test_unreadable_network_is_one_error(tmp_path):
    bad = tmp_path / 'broken.pkl'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n')
    result = _run('--network', bad, '--seeds', 0, '--outdir', tmp_path / 'out')
    assert result.exit_code == 1 and str(bad) in result.output
    assert len(result.output.strip().splitlines()) == 1
