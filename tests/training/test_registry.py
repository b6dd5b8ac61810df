"""Every registry config at tiny size: builds, runs, trains (gradients), round-trips."""

import functools
import json

import pytest
import torch

from training import networks_stylegan2, networks_stylegan3, registry

CONFIGS = list(registry.CONFIGS)
TINY = dict(img_resolution=16, channel_base=128, channel_max=8, z_dim=16, w_dim=16)


@functools.lru_cache(maxsize=None)
def tiny_pair(cfg, c_dim=0):
    torch.manual_seed(0)
    G = registry.create_generator(cfg, c_dim=c_dim, **TINY)
    D = registry.create_discriminator(cfg, c_dim=c_dim, img_resolution=16, channel_base=128, channel_max=8)
    return G, D


def labels(n, c_dim):
    return torch.eye(c_dim)[torch.arange(n) % c_dim] if c_dim else None


@pytest.mark.parametrize('cfg', CONFIGS)
def test_forward_shapes_and_finite(cfg):
    G, D = tiny_pair(cfg)
    z = torch.randn([2, G.z_dim])
    with torch.no_grad():
        ws = G.mapping(z, None)
        img = G.synthesis(ws, noise_mode='const', force_fp32=True)
        logits = D(img, None)
    assert ws.shape == (2, G.num_ws, G.w_dim)
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    assert logits.shape == (2, 1)
    assert torch.isfinite(img).all() and torch.isfinite(logits).all()
    assert img.std() > 0
    assert registry.arch_of(G) == cfg


# Conditional nets exercise a superset of the parameters (label embedding, D mapping).
@pytest.mark.parametrize('cfg, c_dim', [(cfg, 3) for cfg in CONFIGS] + [('stylegan2', 0)])
def test_every_parameter_gets_a_gradient(cfg, c_dim):
    G, D = tiny_pair(cfg, c_dim)
    G.train()
    D.train()
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    c = labels(4, c_dim)
    img = G(torch.randn([4, G.z_dim]), c, noise_mode='random')
    D(img, c).square().sum().backward()
    for net in (G, D):
        missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not missing, f'parameters without gradient: {missing}'
        assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize('cfg', CONFIGS)
def test_init_kwargs_round_trip(cfg):
    G, D = tiny_pair(cfg)
    for net, cls in ((G, registry.generator_class(registry.arch_of(G))), (D, registry.discriminator_class(cfg))):
        kwargs = json.loads(json.dumps(net.init_kwargs))    # plain data only
        clone = cls(**kwargs).eval()
        assert list(clone.state_dict()) == list(net.state_dict())
        clone.load_state_dict(net.state_dict(), strict=True)
        assert clone.init_kwargs == net.init_kwargs
    G2 = registry.generator_class(cfg)(**G.init_kwargs).eval()
    G2.load_state_dict(G.state_dict())
    G.eval()
    z = torch.randn([2, G.z_dim])
    with torch.no_grad():
        assert torch.equal(G(z, None, noise_mode='const'), G2(z, None, noise_mode='const'))


def test_config_defaults_follow_reference_train_py():
    kw = {name: registry.generator_kwargs(name) for name in CONFIGS}
    assert kw['stylegan2']['mapping_kwargs'] == {'num_layers': 8}
    assert kw['stylegan3-t']['mapping_kwargs'] == {'num_layers': 2}
    assert kw['stylegan3-t']['channel_base'] == 32768 and kw['stylegan3-t']['channel_max'] == 512
    assert kw['stylegan3-r']['channel_base'] == 65536 and kw['stylegan3-r']['channel_max'] == 1024
    assert kw['stylegan3-r']['conv_kernel'] == 1 and kw['stylegan3-r']['use_radial_filters'] is True
    assert kw['stylegan3-t']['magnitude_ema_beta'] == pytest.approx(0.5 ** (32 / 20000))
    assert all(k['z_dim'] == 512 and k['w_dim'] == 512 for k in kw.values())
    assert registry.magnitude_ema_beta(64) == pytest.approx(0.5 ** (64 / 20000))
    # Overrides replace presets; dicts are merged.
    merged = registry.generator_kwargs('stylegan3-t', mapping_kwargs={'lr_multiplier': 0.1}, channel_max=64)
    assert merged['mapping_kwargs'] == {'num_layers': 2, 'lr_multiplier': 0.1} and merged['channel_max'] == 64


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match='unknown network config'):
        registry.create_generator('stylegan4')
    with pytest.raises(ValueError, match='unknown network config'):
        registry.generator_class('nope')
    with pytest.raises(ValueError, match='not a generator'):
        registry.arch_of(torch.nn.Linear(1, 1))


def test_reference_class_names():
    assert registry.generator_class('training.networks_stylegan3.Generator') is networks_stylegan3.Generator
    assert registry.generator_class('training.networks_stylegan2.Generator') is networks_stylegan2.Generator
    assert registry.discriminator_class('training.networks_stylegan2.Discriminator') is networks_stylegan2.Discriminator
    assert registry.generator_class('training.networks.Generator') is networks_stylegan2.Generator
    assert registry.discriminator_class('training.networks.Discriminator') is networks_stylegan2.Discriminator


@pytest.mark.parametrize('cfg', ['stylegan2-fourier', 'stylegan3-t'])
def test_integer_translation_shifts_fourier_input(cfg):
    """A translation by one input pixel (1 / sampling_rate units) shifts the features by one pixel."""
    G, _ = tiny_pair(cfg)
    inp = G.synthesis.input
    w = torch.randn([2, G.w_dim])
    step = 1 / inp.sampling_rate
    with torch.no_grad():
        base = inp(w)
        try:
            inp.transform.copy_(torch.tensor([[1, 0, 2 * step], [0, 1, -step], [0, 0, 1]]))
            moved = inp(w)
        finally:
            inp.transform.copy_(torch.eye(3))
    # moved(x, y) = base(x + 2, y - 1) in pixels.
    torch.testing.assert_close(moved[:, :, 1:, :-2], base[:, :, :-1, 2:], atol=1e-5, rtol=0)
    assert (moved - base).abs().max() > 0.1


def test_fourier_variant_keeps_stylegan2_layout():
    G, _ = tiny_pair('stylegan2-fourier')
    G_const, _ = tiny_pair('stylegan2')
    assert G.num_ws == G_const.num_ws
    assert 'synthesis.b4.const' not in G.state_dict() and 'synthesis.b4.const' in G_const.state_dict()
    extra = set(G.state_dict()) - set(G_const.state_dict())
    assert extra == {f'synthesis.input.{k}' for k in ('weight', 'transform', 'freqs', 'phases',
                                                      'affine.weight', 'affine.bias')}


def test_fourier_variant_image_follows_input_translation():
    """Translating the input moves stylegan2-fourier's image content (not equivariantly)."""
    G, _ = tiny_pair('stylegan2-fourier')
    G.eval()
    ws = G.mapping(torch.randn([1, G.z_dim]), None)
    with torch.no_grad():
        base = G.synthesis(ws)
        G.synthesis.input.transform[0, 2] = 0.25
        moved = G.synthesis(ws)
        G.synthesis.input.transform.copy_(torch.eye(3))
    assert (moved - base).abs().max() > 1e-3


def test_truncation_and_cutoff():
    G, _ = tiny_pair('stylegan3-t')
    z = torch.randn([3, G.z_dim])
    w_avg = torch.randn([G.w_dim])
    saved = G.mapping.w_avg.clone()
    with torch.no_grad():
        G.mapping.w_avg.copy_(w_avg)
        ws = G.mapping(z, None)
        half = G.mapping(z, None, truncation_psi=0.5)
        cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
        G.mapping.w_avg.copy_(saved)
    torch.testing.assert_close(half, w_avg + 0.5 * (ws - w_avg))
    torch.testing.assert_close(cut[:, :4], half[:, :4])
    torch.testing.assert_close(cut[:, 4:], ws[:, 4:])


def test_update_emas_tracks_statistics():
    G, _ = tiny_pair('stylegan3-t')
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    ema_before, w_avg_before = layer.magnitude_ema.clone(), G.mapping.w_avg.clone()
    with torch.no_grad():
        G(torch.randn([2, G.z_dim]), None, update_emas=True)
        assert not torch.equal(layer.magnitude_ema, ema_before)
        assert not torch.equal(G.mapping.w_avg, w_avg_before)
        layer.magnitude_ema.copy_(ema_before)
        G.mapping.w_avg.copy_(w_avg_before)


def test_sg2_noise_modes_and_architectures():
    torch.manual_seed(1)
    for arch in ('orig', 'skip', 'resnet'):
        G = registry.create_generator('stylegan2', architecture=arch, **TINY).eval()
        with torch.no_grad():
            for layer in G.modules():
                if isinstance(layer, networks_stylegan2.SynthesisLayer):
                    layer.noise_strength.fill_(0.5)
            ws = G.mapping(torch.randn([2, G.z_dim]), None)
            const = [G.synthesis(ws, noise_mode='const') for _ in range(2)]
            rand = [G.synthesis(ws, noise_mode='random') for _ in range(2)]
            none = G.synthesis(ws, noise_mode='none')
        assert torch.equal(const[0], const[1])
        assert not torch.equal(rand[0], rand[1])
        assert not torch.equal(const[0], none)
        assert const[0].shape == (2, 3, 16, 16)
        with pytest.raises(ValueError, match='noise_mode'):
            G.synthesis(ws, noise_mode='bogus')
    for arch in ('orig', 'skip', 'resnet'):
        D = registry.create_discriminator('stylegan2', architecture=arch, img_resolution=16, channel_base=128,
                                          channel_max=8)
        assert D(torch.randn([4, 3, 16, 16])).shape == (4, 1)


def test_bad_inputs_are_clear_errors():
    G, D = tiny_pair('stylegan3-t')
    with pytest.raises(ValueError, match='ws must have shape'):
        G.synthesis(torch.zeros([1, 3, G.w_dim]))
    with pytest.raises(ValueError, match='z must have shape'):
        G.mapping(torch.zeros([1, G.z_dim + 1]), None)
    with pytest.raises(ValueError, match='img must have shape'):
        D(torch.zeros([1, 3, 8, 8]))
    with pytest.raises(ValueError, match='power of two'):
        registry.create_generator('stylegan2', img_resolution=24)


def test_second_order_gradients_for_regularisers():
    """Path-length regularisation (G) and R1 (D) differentiate through a gradient."""
    G, D = tiny_pair('stylegan2')
    G.train()
    ws = G.mapping(torch.randn([2, G.z_dim]), None).detach().requires_grad_(True)
    img = G.synthesis(ws, noise_mode='const')
    (grad_ws,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    G.zero_grad(set_to_none=True)
    grad_ws.square().sum().backward()
    assert G.synthesis.b8.conv0.weight.grad.abs().sum() > 0
    real = torch.randn([4, 3, 16, 16], requires_grad=True)
    (grad_img,) = torch.autograd.grad(D(real, None).sum(), real, create_graph=True)
    D.zero_grad(set_to_none=True)
    grad_img.square().sum().backward()
    assert D.b16.conv0.weight.grad.abs().sum() > 0
