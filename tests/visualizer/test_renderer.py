"""Renderer tests on the equivariant stand-in network (tests/visualizer/stub_net.py)."""

import numpy as np
import pytest
import torch

from torch_utils import gen_utils

from tests.visualizer.stub_net import load_stub
from visualizer import render_ops
from visualizer.renderer import RenderArgs, Renderer

ARGS = RenderArgs(network='stub', device='cpu')


@pytest.fixture
def renderer():
    return Renderer(loader=load_stub)


def _hand_image(G, ws):
    return render_ops.image_to_uint8(G.synthesis(ws)[0])


def _ws_of(G, seeds, psi=1.0):
    z = gen_utils.seeds_to_z(seeds, G.z_dim)
    return G.mapping(z, None, truncation_psi=psi)


def test_integer_seed_matches_direct_call(renderer):
    res = renderer.render(ARGS.replace(seed=3))
    assert res.error is None, res.error_detail
    G = load_stub('stub', 'cpu')
    np.testing.assert_array_equal(res.image, _hand_image(G, _ws_of(G, [3])))
    assert res.image.shape == (16, 16, 3) and res.num_ws == 3 and res.has_input_transform


def test_latent_blend_equals_hand_computed_blend(renderer):
    res = renderer.render(ARGS.replace(seed=5, latent_x=0.25, latent_y=0.5))
    G = load_stub('stub', 'cpu')
    row = render_ops.SEED_ROW
    ws = _ws_of(G, [5, 6, 5 + row, 6 + row])
    w = 0.375 * ws[0] + 0.125 * ws[1] + 0.375 * ws[2] + 0.125 * ws[3]
    expected = _hand_image(G, w[None])
    assert np.abs(res.image.astype(int) - expected).max() <= 1


def test_style_mix_and_psi(renderer):
    G = load_stub('stub', 'cpu')
    res = renderer.render(ARGS.replace(seed=1, stylemix_seed=2, stylemix_layers=(1, 2)))
    ws = _ws_of(G, [1, 2])
    mixed = torch.cat([ws[:1, :1], ws[1:, 1:]], dim=1)
    np.testing.assert_array_equal(res.image, _hand_image(G, mixed))
    # psi = 0 collapses every seed onto w_avg.
    a = renderer.render(ARGS.replace(seed=1, trunc_psi=0.0)).image
    b = renderer.render(ARGS.replace(seed=9, trunc_psi=0.0)).image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, renderer.render(ARGS.replace(seed=1)).image)


def test_integer_translation_shifts_and_untransform_restores(renderer):
    base = renderer.render(ARGS).image.astype(int)
    moved = renderer.render(ARGS.replace(translate=(2 / 16, 1 / 16))).image.astype(int)
    assert np.abs(moved[1:, 2:] - base[:-1, :-2]).max() <= 1            # content moved right 2, down 1
    assert np.abs(moved - base).mean() > 5
    back = renderer.render(ARGS.replace(translate=(2 / 16, 1 / 16), untransform=True)).image.astype(int)
    assert np.abs(back[:-1, :-2] - base[:-1, :-2]).max() <= 2


def test_rotation_untransform_restores_centre(renderer):
    base = renderer.render(ARGS).image.astype(int)
    rotated = renderer.render(ARGS.replace(rotate=0.1)).image.astype(int)
    back = renderer.render(ARGS.replace(rotate=0.1, untransform=True)).image.astype(int)
    centre = (slice(4, 12), slice(4, 12))
    assert np.abs(rotated[centre] - base[centre]).mean() > 5 * np.abs(back[centre] - base[centre]).mean()
    assert np.abs(back[centre] - base[centre]).mean() < 5      # tanh harmonics alias a little at 16 px


def test_layer_capture_shapes_and_single_hook(renderer):
    res = renderer.render(ARGS)
    assert [l.name for l in res.layers] == ['input', 'L0_16_8', 'L1_16_3']
    assert renderer.hook_count == 0 and res.layer_image is None          # nothing selected: no hook
    for layer in res.layers:
        out = renderer.render(ARGS.replace(layer=layer.name, channel=1))
        assert out.error is None
        assert out.layer_image.shape == (layer.shape[1], layer.shape[2], 3)
        assert renderer.hook_count == 1
        assert set(out.stats) == {'output', layer.name}
    handle = renderer._capture.handle
    renderer.render(ARGS.replace(layer='L1_16_3', channel=2))
    assert renderer._capture.handle is handle                           # same selection: hook not re-registered
    renderer.render(ARGS)
    assert renderer.hook_count == 0


def test_layer_channel_selection(renderer):
    G = load_stub('stub', 'cpu')
    feat = G.synthesis.input(_ws_of(G, [0])[:, 0])[0]                   # [8, 16, 16]
    res = renderer.render(ARGS.replace(layer='input', channel=2, normalize=False))
    np.testing.assert_array_equal(res.layer_image, render_ops.feature_to_uint8(feat, 2, False, False, 0))
    rgb = renderer.render(ARGS.replace(layer='input', channel=2, rgb=True, normalize=False)).layer_image
    np.testing.assert_array_equal(rgb[..., 1], render_ops.feature_to_uint8(feat, 3, False, False, 0)[..., 0])


def test_fft_of_layer_and_of_image(renderer):
    res = renderer.render(ARGS.replace(fft_show=True))
    assert res.spectrum.shape == (16, 16, 3)
    a = renderer.render(ARGS.replace(layer='input', fft_show=True, fft_all=True)).spectrum
    b = renderer.render(ARGS.replace(layer='input', fft_show=True, fft_all=False, channel=0)).spectrum
    assert not np.array_equal(a, b) and not np.array_equal(a, res.spectrum)


def test_errors_are_returned_not_raised(renderer):
    res = renderer.render(ARGS.replace(network='missing.pkl'))
    assert res.image is None and 'stub loader' in res.error and 'Traceback' in res.error_detail
    assert 'No network' in renderer.render(RenderArgs()).error
    assert 'noise mode' in renderer.render(ARGS.replace(noise_mode='loud')).error
    assert renderer.render(ARGS).error is None                           # still works afterwards


def test_network_cache_per_file_and_device():
    calls = []

    def loader(network, device):
        calls.append((network, str(device)))
        return load_stub('stub', device)
    renderer = Renderer(loader=loader)
    for seed in range(3):
        renderer.render(ARGS.replace(seed=seed))
    assert calls == [('stub', 'cpu')]
    res = renderer.render(ARGS)
    assert 'load' not in res.timings and {'mapping', 'synthesis', 'total'} <= set(res.timings)


# ----------------------------------------------------------------------------------------------
# Every architecture of the registry, tiny.

TINY = {
    'stylegan2': dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16),
    'stylegan2-fourier': dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16),
    'stylegan3-t': dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16, num_layers=4),
    'stylegan3-r': dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16, num_layers=4),
}


def _expected_layer_shape(name, G):
    """Shape implied by the layer name: SG3 'L<i>_<size>_<channels>', SG2 block 'b<res>'."""
    if name.startswith('L'):
        _, size, channels = name.split('_')
        return int(channels), int(size), int(size)
    if name.startswith('b'):
        res = int(name[1:])
        return getattr(G.synthesis, name).out_channels, res, res
    return None


@pytest.mark.parametrize('cfg', sorted(TINY))
def test_every_architecture_renders_and_captures_every_layer(cfg):
    from training import registry
    torch.manual_seed(0)
    G = registry.create_generator(cfg, **TINY[cfg]).eval().requires_grad_(False)
    renderer = Renderer(loader=lambda network, device: G)
    args = RenderArgs(network=cfg, seed=1)
    res = renderer.render(args)
    assert res.error is None, res.error_detail
    z = gen_utils.seeds_to_z([1], G.z_dim)
    np.testing.assert_array_equal(res.image, render_ops.image_to_uint8(G.synthesis(G.mapping(z, None))[0]))
    assert res.has_input_transform == (cfg != 'stylegan2')
    assert len(res.layers) >= 3
    for layer in res.layers:
        expected = _expected_layer_shape(layer.name, G)
        if expected is not None:
            assert layer.shape == expected, layer.name
        out = renderer.render(args.replace(layer=layer.name, channel=layer.shape[0] - 1, fft_show=True))
        assert out.error is None, out.error_detail
        assert out.layer_image.shape == (layer.shape[1], layer.shape[2], 3)
        assert out.spectrum.shape == out.layer_image.shape
        assert renderer.hook_count == 1
    moved = renderer.render(args.replace(translate=(0.25, 0)))
    if res.has_input_transform:
        assert not np.array_equal(moved.image, res.image)
    else:
        assert moved.notice and np.array_equal(moved.image, res.image)


def test_noise_mode_and_seed_on_stylegan2():
    from training import registry
    torch.manual_seed(0)
    G = registry.create_generator('stylegan2', **TINY['stylegan2']).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():      # fresh nets have zero noise strength: make noise visible
            if name.endswith('noise_strength'):
                p.fill_(0.5)
    renderer = Renderer(loader=lambda network, device: G)
    args = RenderArgs(network='sg2', noise_mode='random')
    a, b = renderer.render(args.replace(noise_seed=1)).image, renderer.render(args.replace(noise_seed=1)).image
    c = renderer.render(args.replace(noise_seed=2)).image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    const, none = renderer.render(args.replace(noise_mode='const')).image, renderer.render(args.replace(noise_mode='none')).image
    assert not np.array_equal(const, none) and not np.array_equal(const, a)


def test_conditional_network_class_selection():
    from training import registry
    torch.manual_seed(0)
    G = registry.create_generator('stylegan2', c_dim=3, **TINY['stylegan2']).eval().requires_grad_(False)
    renderer = Renderer(loader=lambda network, device: G)
    args = RenderArgs(network='cond', seed=1)
    res = renderer.render(args.replace(class_idx=2))
    assert res.error is None and res.c_dim == 3
    z = gen_utils.seeds_to_z([1], G.z_dim)
    expected = render_ops.image_to_uint8(G.synthesis(G.mapping(z, torch.eye(3)[2:3]))[0])
    np.testing.assert_array_equal(res.image, expected)
    assert not np.array_equal(res.image, renderer.render(args.replace(class_idx=0)).image)
