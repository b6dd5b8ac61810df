"""Our network files (.pt snapshots, .safetensors exports), bundled names, random specs, and
clear errors for every kind of bad file."""

import io
import json
import struct

import pytest
import torch

from tests.torch_utils import pickle_writer as pw
from torch_utils import network_files
from torch_utils.network_files import NetworkFileError

TINY = dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16,
            mapping_kwargs=dict(num_layers=1))
TINY_D = dict(img_resolution=16, channel_base=256, channel_max=16)


def _tiny(cfg, seed):
    from training import registry
    torch.manual_seed(seed)
    G = registry.create_generator(cfg, **TINY)
    for p in G.parameters():   # make weights differ from a fresh init, so loading must copy them
        p.data.add_(torch.randn_like(p) * 0.1)
    return G.eval().requires_grad_(False)


@pytest.fixture(scope='module')
def nets():
    from training import registry
    torch.manual_seed(0)
    D = registry.create_discriminator('stylegan3-t', **TINY_D)
    return dict(G=_tiny('stylegan3-t', 1), G_ema=_tiny('stylegan3-t', 2), D=D, G2=_tiny('stylegan2', 3))


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def test_snapshot_round_trip(tmp_path, nets):
    path = tmp_path / 'network-snapshot-000010.pt'
    tsk = dict(class_name='training.dataset.ImageFolderDataset', path='x.zip', resolution=16)
    network_files.save_network_snapshot(path, nets['G'], nets['D'], nets['G_ema'],
                                        training_set_kwargs=tsk, metadata={'kimg': 10})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]          # no temp file left behind
    raw = torch.load(path, weights_only=True)                            # plain data only
    assert raw['G_ema']['arch'] == 'stylegan3-t' and raw['augment_pipe'] is None
    loaded = network_files.load_network(path)
    for key in ('G', 'D', 'G_ema'):
        assert _same_state(loaded[key], nets[key])
        assert not loaded[key].training and not any(p.requires_grad for p in loaded[key].parameters())
    assert loaded['G_ema'].init_kwargs == nets['G_ema'].init_kwargs
    assert loaded['training_set_kwargs'] == tsk and loaded['metadata'] == {'kimg': 10}
    assert loaded['augment_pipe'] is None


def test_safetensors_export_round_trip(tmp_path, nets):
    path = network_files.export_safetensors(nets['G2'], tmp_path / 'g.safetensors', metadata={'kimg': 5})
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        header = f.metadata()
    assert header['arch'] == 'stylegan2' and json.loads(header['init_kwargs']) == nets['G2'].init_kwargs
    loaded = network_files.load_network(path)
    assert _same_state(loaded['G_ema'], nets['G2']) and loaded['metadata'] == {'kimg': 5}
    assert loaded['G'] is None and loaded['D'] is None


def test_fp16_export_loads_as_float32(tmp_path, nets):
    path = network_files.export_safetensors(nets['G2'], tmp_path / 'g16.safetensors', dtype=torch.float16)
    G = network_files.load_generator(path)
    for key, value in G.state_dict().items():
        ref = nets['G2'].state_dict()[key]
        assert value.dtype == ref.dtype
        assert torch.equal(value, ref.half().to(ref.dtype)) if ref.is_floating_point() else torch.equal(value, ref)


def test_bundled_names_resolve_to_models_dir(tmp_path, monkeypatch, nets):
    monkeypatch.setenv('STYLEGAN_MODELS_DIR', str(tmp_path))
    network_files.export_safetensors(nets['G2'], tmp_path / 'tiny-sg2.safetensors')
    assert network_files.resolve_network_path('tiny-sg2') == tmp_path / 'tiny-sg2.safetensors'
    assert _same_state(network_files.load_generator('tiny-sg2'), nets['G2'])
    with pytest.raises(NetworkFileError, match='tiny-sg2'):   # the message lists what exists
        network_files.load_generator('no-such-model')


def test_random_spec_is_deterministic_and_keeps_rng():
    rng = torch.get_rng_state()
    a = network_files.load_generator('random:stylegan2@16')
    b = network_files.load_generator('random:stylegan2@16')
    assert torch.equal(torch.get_rng_state(), rng)
    assert a.img_resolution == 16 and _same_state(a, b)
    for bad in ['random:nope', 'random:stylegan2@17', 'random:stylegan2@x']:
        with pytest.raises(NetworkFileError, match=bad.split('@')[0]):
            network_files.load_generator(bad)


def _edit_snapshot(tmp_path, nets, edit):
    path = tmp_path / 'edited.pt'
    data = network_files.snapshot_dict(nets['G'], nets['D'], nets['G_ema'])
    edit(data)
    torch.save(data, path)
    return path


@pytest.mark.parametrize('edit, expected', [
    (lambda d: d['G_ema']['state_dict'].pop('mapping.w_avg'), r'missing \[mapping\.w_avg\]'),
    (lambda d: d['G_ema']['state_dict'].update(extra=torch.zeros(1)), r'unexpected \[extra\]'),
    (lambda d: d['G_ema']['state_dict'].update({'mapping.w_avg': torch.zeros(3)}), 'wrong shape'),
    (lambda d: d['G_ema']['init_kwargs'].update(bogus_option=1), 'cannot build G_ema'),
    (lambda d: d['G_ema'].update(arch='stylegan9'), 'cannot build G_ema'),
    (lambda d: d['format'].update(version=99), 'version 99'),
], ids=['missing', 'unexpected', 'shape', 'kwargs', 'arch', 'version'])
def test_mismatch_is_one_clear_error(tmp_path, nets, edit, expected):
    path = _edit_snapshot(tmp_path, nets, edit)
    with pytest.raises(NetworkFileError, match=expected) as info:
        network_files.load_network(path)
    assert str(path) in str(info.value) and '\n' not in str(info.value)


def _bad_files(nets):
    good_pt = io.BytesIO()
    torch.save(network_files.snapshot_dict(nets['G'], nets['D'], nets['G_ema']), good_pt)
    good_pkl = pw.snapshot_bytes(None, None, pw.persistent_module(
        'Generator', nets['G2'].init_kwargs, nets['G2'].state_dict(), ''), keys={'G_ema'})
    other_pt, module_pt, legacy_pt = io.BytesIO(), io.BytesIO(), io.BytesIO()
    torch.save({'model': torch.zeros(2)}, other_pt)
    torch.save(torch.nn.Linear(2, 2), module_pt)
    torch.save({'a': torch.zeros(2)}, legacy_pt, _use_new_zipfile_serialization=False)
    header = json.dumps({'w': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]}}).encode()
    bare_safetensors = struct.pack('<Q', len(header)) + header + b'\0' * 4
    return {
        'empty.pkl': b'',
        'truncated.pt': good_pt.getvalue()[:5000],
        'truncated.pkl': good_pkl[:len(good_pkl) // 2],
        'image.pkl': b'\x89PNG\r\n\x1a\n' + b'\0' * 64,
        'noise.pkl': bytes(range(256)) * 4,
        'other_format.pt': other_pt.getvalue(),
        'pickled_module.pt': module_pt.getvalue(),
        'legacy_torch.pt': legacy_pt.getvalue(),
        'no_metadata.safetensors': bare_safetensors,
        'truncated.safetensors': bare_safetensors[:-2],
        'corrupt_blob.pkl': good_pkl.replace(b'FloatStorage', b'FloatStoragf'),
    }


def test_bad_files_give_one_clear_error(tmp_path, nets):
    for name, data in _bad_files(nets).items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(NetworkFileError) as info:
            network_files.load_network(path)
        message = str(info.value)
        assert str(path) in message and '\n' not in message, (name, message)


def test_missing_path_and_directory(tmp_path):
    for target in [tmp_path / 'nothing.pkl', tmp_path]:
        with pytest.raises(NetworkFileError, match=str(target)):
            network_files.load_network(target)


def test_tiny_reference_pickle_of_our_network(tmp_path, nets):
    """A reference-format pickle of a StyleGAN2 generator loads as arch stylegan2."""
    path = tmp_path / 'sg2.pkl'
    path.write_bytes(pw.snapshot_bytes(None, None, pw.persistent_module(
        'Generator', nets['G2'].init_kwargs, nets['G2'].state_dict(), ''), keys={'G_ema'}))
    assert _same_state(network_files.load_generator(path), nets['G2'])


def test_snapshot_keeps_augment_pipe(tmp_path, nets):
    augment = pytest.importorskip('training.augment')
    pipe = augment.AugmentPipe(xflip=1, rotate90=1, xint=1)
    pipe.p.fill_(0.3)
    path = network_files.save_network_snapshot(tmp_path / 'snap.pt', nets['G'], nets['D'], nets['G_ema'],
                                               augment_pipe=pipe)
    loaded = network_files.load_network(path)['augment_pipe']
    assert isinstance(loaded, augment.AugmentPipe) and float(loaded.p) == pytest.approx(0.3)
    assert loaded.init_kwargs == pipe.init_kwargs


def test_stylegan2_ada_nested_synthesis_kwargs(tmp_path, nets):
    """StyleGAN2-ADA-PyTorch pickles pass synthesis options as one `synthesis_kwargs` dict."""
    kwargs = dict(nets['G2'].init_kwargs)
    synthesis = {k: kwargs.pop(k) for k in ('channel_base', 'channel_max') if k in kwargs}
    kwargs['synthesis_kwargs'] = synthesis
    path = tmp_path / 'ada.pkl'
    path.write_bytes(pw.snapshot_bytes(None, None, pw.persistent_module(
        'Generator', kwargs, nets['G2'].state_dict(), ''), keys={'G_ema'}))
    G = network_files.load_generator(path)
    assert _same_state(G, nets['G2']) and G.init_kwargs['channel_base'] == 256
