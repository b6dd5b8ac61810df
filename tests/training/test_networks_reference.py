"""Our networks against the reference vectors in ../shared/reference (README.md there).

Each reference network is rebuilt from its JSON init_kwargs, its G/D state dicts are loaded
strictly, and every tensor of <name>.io.safetensors is reproduced (max |diff| <= 1e-4).
The per-layer `debug.*` tensors are captured in the same forward pass with hooks.
"""

import functools
import math

import pytest
import torch

from tests import refdata
from training import networks_stylegan2, registry

NETWORKS = ['stylegan2', 'stylegan3-t', 'stylegan3-r', 'stylegan3-t-cond5']
SG3_NETWORKS = [n for n in NETWORKS if n.startswith('stylegan3')]
TOL = 1e-4


def assert_close(actual, expected, tol=TOL, what=''):
    assert actual.shape == expected.shape, f'{what}: shape {list(actual.shape)} != {list(expected.shape)}'
    diff = (actual.double() - expected.double()).abs().max().item()
    assert diff <= tol, f'{what}: max |diff| {diff:.3g} > {tol:g}'


@functools.lru_cache(maxsize=None)
def load_networks(name):
    meta = refdata.load_json(f'{name}.json')
    G = registry.generator_class(meta['G']['class_name'])(**meta['G']['init_kwargs']).eval()
    G.load_state_dict(refdata.load_tensors(f'{name}.G.safetensors'), strict=True)
    D = registry.discriminator_class(meta['D']['class_name'])(**meta['D']['init_kwargs']).eval()
    D.load_state_dict(refdata.load_tensors(f'{name}.D.safetensors'), strict=True)
    return meta, G.requires_grad_(False), D.requires_grad_(False)


def _debug_modules(G):
    """(debug name, module, output picker) for every layer with reference debug tensors."""
    syn = G.synthesis
    if hasattr(syn, 'layer_names'):  # StyleGAN3
        yield 'affine.input', syn.input.affine, lambda out: out
        yield 'act.input', syn.input, lambda out: out
        for name in syn.layer_names:
            yield f'affine.{name}', getattr(syn, name).affine, lambda out: out
            yield f'act.{name}', getattr(syn, name), lambda out: out
        return
    for res in syn.block_resolutions:
        block = getattr(syn, f'b{res}')
        for layer in ('conv0', 'conv1', 'torgb'):
            if hasattr(block, layer):
                yield f'affine.b{res}.{layer}', getattr(block, layer).affine, lambda out: out
        yield f'act.b{res}.x', block, lambda out: out[0]
        yield f'act.b{res}.img', block, lambda out: out[1]


@functools.lru_cache(maxsize=None)
def run_generator(name):
    """All generator outputs of one reference network, computed once per test session."""
    meta, G, _ = load_networks(name)
    io = refdata.load_tensors(f'{name}.io.safetensors')
    c = io.get('c')
    out, captured, hooks = {}, {}, []
    def recorder(key, pick):
        def hook(_module, _inputs, output):  # returns None: the output is left unchanged
            captured.setdefault(key, pick(output).detach().clone())
        return hook

    for key, module, pick in _debug_modules(G):
        hooks.append(module.register_forward_hook(recorder(key, pick)))
    with torch.no_grad():
        out['ws_psi1'] = G.mapping(io['z'], c)
        out['ws_psi0.5'] = G.mapping(io['z'], c, truncation_psi=0.5)
        try:
            out['img_const'] = G.synthesis(io['ws_psi1'], noise_mode='const', force_fp32=True)
        finally:
            for hook in hooks:
                hook.remove()
        out['debug'] = captured
        if 'img_none' in io:
            out['img_none'] = G.synthesis(io['ws_psi1'], noise_mode='none', force_fp32=True)
        if 'transform_matrix' in io:
            transform = G.synthesis.input.transform
            saved = transform.clone()
            transform.copy_(io['transform_matrix'])
            try:
                out['img_transformed_const'] = G.synthesis(io['ws_psi1'], noise_mode='const', force_fp32=True)
            finally:
                transform.copy_(saved)
    return out


# ----------------------------------------------------------------------------------------------
# Construction facts.

@pytest.mark.parametrize('name', NETWORKS)
def test_state_dict_keys_shapes_and_kwargs(name):
    meta, G, D = load_networks(name)
    for net, entry in ((G, meta['G']), (D, meta['D'])):
        expected = [(e['key'], e['shape']) for e in entry['state_dict']]
        assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == expected
        assert net.init_kwargs == entry['init_kwargs']
        assert sum(p.numel() for p in net.parameters()) == entry['num_params']
    assert G.num_ws == meta['num_ws']
    assert registry.arch_of(G) == meta['cfg']


def _check_value(actual, expected, what):
    if isinstance(expected, float):
        assert actual is not None and math.isclose(float(actual), expected, rel_tol=1e-9, abs_tol=1e-9), \
            f'{what}: {actual} != {expected}'
    elif isinstance(expected, list):
        assert [float(a) for a in actual] == pytest.approx(expected, abs=1e-9), f'{what}: {actual} != {expected}'
    else:
        assert actual == expected, f'{what}: {actual!r} != {expected!r}'


LAYER_ATTRIBUTES = ['in_channels', 'out_channels', 'in_size', 'out_size', 'in_sampling_rate',
                    'out_sampling_rate', 'tmp_sampling_rate', 'in_cutoff', 'out_cutoff', 'in_half_width',
                    'out_half_width', 'up_factor', 'down_factor', 'up_taps', 'down_taps', 'down_radial',
                    'padding', 'conv_kernel', 'is_torgb', 'is_critically_sampled', 'use_fp16', 'conv_clamp',
                    'magnitude_ema_beta', 'lrelu_gain', 'lrelu_slope', 'demodulate', 'torgb_style_gain']


@pytest.mark.parametrize('name', SG3_NETWORKS)
def test_sg3_layer_attributes(name):
    meta, G, _ = load_networks(name)
    syn = G.synthesis
    assert syn.layer_names == meta['synthesis']['layer_names']
    for key in ('num_ws', 'num_layers', 'num_critical', 'margin_size', 'output_scale', 'num_fp16_res'):
        _check_value(getattr(syn, key), meta['synthesis'][key], key)
    for key in ('channels', 'size', 'sampling_rate', 'bandwidth'):
        _check_value(getattr(syn.input, key), meta['synthesis']['input'][key], f'input.{key}')
    stored = refdata.load_tensors(f'{name}.G.safetensors')
    assert len(meta['layers']) == len(syn.layer_names)
    for entry in meta['layers']:
        layer = getattr(syn, entry['name'])
        for key in LAYER_ATTRIBUTES:
            _check_value(getattr(layer, key), entry[key], f'{entry["name"]}.{key}')
        # Filters designed at construction equal the reference buffers (bit for bit in float32).
        for kind, taps, cutoff, half_width in (('up', layer.up_taps, layer.in_cutoff, layer.in_half_width),
                                               ('down', layer.down_taps, layer.out_cutoff, layer.out_half_width)):
            ours = getattr(layer, f'{kind}_filter')
            design = entry[f'{kind}_filter_design']
            if design is None:
                assert ours is None and entry[f'{kind}_filter_shape'] is None
                continue
            assert list(ours.shape) == entry[f'{kind}_filter_shape']
            assert (taps, cutoff, 2 * half_width, layer.tmp_sampling_rate) == pytest.approx(
                (design['numtaps'], design['cutoff'], design['width'], design['fs']))
            assert design['kind'].startswith('radial') == (ours.ndim == 2)
            assert_close(ours, stored[f'synthesis.{entry["name"]}.{kind}_filter'], tol=1e-7,
                         what=f'{entry["name"]}.{kind}_filter')


@pytest.mark.parametrize('name', SG3_NETWORKS)
def test_sg3_filters_designed_not_loaded(name):
    """The filters are designed from the schedule at construction, before any loading."""
    meta = refdata.load_json(f'{name}.json')
    G = registry.generator_class(meta['G']['class_name'])(**meta['G']['init_kwargs'])
    stored = refdata.load_tensors(f'{name}.G.safetensors')
    for key, value in G.state_dict().items():
        if key.endswith('_filter'):
            assert_close(value, stored[key], tol=1e-7, what=key)


def test_sg2_block_facts():
    meta, G, _ = load_networks('stylegan2')
    syn = G.synthesis
    assert syn.block_resolutions == meta['synthesis']['block_resolutions']
    for entry in meta['blocks']:
        block = getattr(syn, entry['name'])
        for key in ('resolution', 'in_channels', 'architecture', 'is_last', 'use_fp16', 'num_conv',
                    'num_torgb', 'fused_modconv_default'):
            _check_value(getattr(block, key), entry[key], f'{entry["name"]}.{key}')
        for layer_name, facts in entry['layers'].items():
            layer = getattr(block, layer_name)
            assert list(layer.weight.shape) == facts['weight_shape']
            _check_value(layer.conv_clamp, facts['conv_clamp'], f'{layer_name}.conv_clamp')
            if layer_name == 'torgb':
                _check_value(layer.weight_gain, facts['weight_gain'], 'torgb.weight_gain')
                continue
            for key in ('up', 'padding', 'activation', 'act_gain', 'use_noise', 'resolution'):
                _check_value(getattr(layer, key), facts[key], f'{entry["name"]}.{layer_name}.{key}')


@pytest.mark.parametrize('name', ['stylegan3-t', 'stylegan3-t-cond5'])
def test_discriminator_block_facts(name):
    meta, _, D = load_networks(name)
    for entry in meta['D']['blocks']:
        block = getattr(D, entry['name'])
        for key in ('resolution', 'in_channels', 'architecture', 'use_fp16', 'num_layers'):
            _check_value(getattr(block, key), entry[key], f'{entry["name"]}.{key}')
        for layer_name, facts in entry['layers'].items():
            layer = getattr(block, layer_name)
            for key in ('activation', 'up', 'down', 'padding', 'weight_gain', 'act_gain', 'conv_clamp'):
                _check_value(getattr(layer, key), facts[key], f'{entry["name"]}.{layer_name}.{key}')
            assert list(layer.weight.shape) == facts['weight_shape']
            assert (layer.bias is not None) == facts['has_bias']
    epi = meta['D']['epilogue']
    _check_value(D.b4.cmap_dim, epi['cmap_dim'], 'cmap_dim')
    _check_value(D.b4.mbstd.group_size, epi['mbstd_group_size'], 'mbstd_group_size')
    _check_value(D.b4.out.out_features, epi['out']['out_features'], 'out.out_features')
    if meta['D']['mapping'] is not None:
        _check_value(D.mapping.num_layers, meta['D']['mapping']['num_layers'], 'mapping.num_layers')
        _check_value(D.mapping.w_dim, meta['D']['mapping']['w_dim'], 'mapping.w_dim')


# ----------------------------------------------------------------------------------------------
# Input/output vectors.

@pytest.mark.parametrize('name', NETWORKS)
def test_mapping(name):
    io = refdata.load_tensors(f'{name}.io.safetensors')
    out = run_generator(name)
    assert_close(out['ws_psi1'], io['ws_psi1'], what='ws_psi1')
    assert_close(out['ws_psi0.5'], io['ws_psi0.5'], what='ws_psi0.5')


@pytest.mark.parametrize('name', NETWORKS)
def test_images(name):
    io = refdata.load_tensors(f'{name}.io.safetensors')
    out = run_generator(name)
    keys = [k for k in ('img_const', 'img_none', 'img_transformed_const') if k in io]
    assert keys[0] == 'img_const' and len(keys) == 2
    for key in keys:
        assert_close(out[key], io[key], what=key)


@pytest.mark.parametrize('name', NETWORKS)
def test_debug_tensors(name):
    """Every per-layer style affine and activation (channel 0 image and statistics)."""
    io = refdata.load_tensors(f'{name}.io.safetensors')
    debug = run_generator(name)['debug']
    checked = 0
    for key, expected in io.items():
        if not key.startswith('debug.'):
            continue
        kind, layer = key.split('.', 2)[1:]
        if kind == 'affine':
            assert_close(debug[f'affine.{layer}'], expected, what=key)
            checked += 1
            continue
        act = debug[f'act.{layer}']
        if kind == 'act_s0c0':
            assert_close(act[0, 0], expected, what=key)
        else:  # actstats: mean, std (N-1), min, max per sample over C, H, W
            flat = act.double().flatten(1)
            stats = torch.stack([flat.mean(1), flat.std(1), flat.amin(1), flat.amax(1)], dim=1)
            assert_close(stats, expected, what=key)
        checked += 1
    assert checked >= 3 * 4


def test_generator_forward_equals_mapping_then_synthesis():
    _, G, _ = load_networks('stylegan2')
    io = refdata.load_tensors('stylegan2.io.safetensors')
    with torch.no_grad():
        img = G(io['z'], None, truncation_psi=1, noise_mode='const', force_fp32=True)
    assert_close(img, io['img_const'], what='G(z)')


def test_sg2_training_path_matches_fused_path():
    """Train mode uses the non-fused modulated conv ('inference_only'); same maths."""
    _, G, _ = load_networks('stylegan2')
    io = refdata.load_tensors('stylegan2.io.safetensors')
    try:
        G.train()
        with torch.no_grad():
            img = G.synthesis(io['ws_psi1'], noise_mode='const', force_fp32=True)
    finally:
        G.eval()
    assert_close(img, io['img_const'], what='non-fused img_const')


@pytest.mark.parametrize('name', NETWORKS)
def test_discriminator_logits(name):
    _, _, D = load_networks(name)
    io = refdata.load_tensors(f'{name}.io.safetensors')
    c = io.get('c')
    with torch.no_grad():
        logits = D(io['img_const'], c, force_fp32=True)
        single = torch.cat([D(io['img_const'][i:i + 1], None if c is None else c[i:i + 1]) for i in range(4)])
    assert_close(logits, io['D_logits'], what='D_logits')
    assert_close(single, io['D_logits_batch1'], what='D_logits_batch1')


def test_conditional_generator_needs_labels():
    _, G, _ = load_networks('stylegan3-t-cond5')
    with pytest.raises(ValueError, match='conditional'):
        G.mapping(torch.zeros([1, 512]), None)


def test_discriminator_class_is_stylegan2():
    assert registry.discriminator_class('stylegan3-r') is networks_stylegan2.Discriminator
