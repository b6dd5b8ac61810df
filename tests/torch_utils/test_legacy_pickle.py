"""Reference network pickles (FORMAT.md) are read without running code and reproduce the
reference vectors."""

import io
import pickle
import pickletools
import sys

import numpy as np
import pytest
import torch

from tests import refdata
from tests.torch_utils import pickle_writer as pw
from torch_utils import legacy_pickle, network_files

NETS = ['stylegan2', 'stylegan3-t', 'stylegan3-r']

# FORMAT.md section 6: every global of the outer stream, and the only one inside the blobs.
FORMAT_GLOBALS = {
    'torch_utils.persistence._reconstruct_persistent_obj', 'torch._utils._rebuild_parameter',
    'torch._utils._rebuild_tensor_v2', 'torch.storage._load_from_bytes', 'collections.OrderedDict',
    'dnnlib.util.EasyDict', 'numpy._core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype',
    'numpy._core.multiarray.scalar',
}


def _reference(name):
    return refdata.load_json(f'{name}.json'), refdata.load_tensors(f'{name}.G.safetensors'), \
        refdata.load_tensors(f'{name}.D.safetensors')


@pytest.fixture(scope='module')
def snapshot_file(tmp_path_factory):
    """name -> path of a reference-format pickle built from that reference network."""
    root = tmp_path_factory.mktemp('pickles')
    cache = {}

    def get(name):
        if name not in cache:   # fill the cache only after success, so a skip is repeated, not cached
            path = root / f'{name}.pkl'
            path.write_bytes(pw.reference_snapshot(*_reference(name)))
            cache[name] = path
        return cache[name]
    return get


def test_opcode_structure_matches_format(snapshot_file):
    data = snapshot_file('stylegan3-t').read_bytes()
    assert data[:2] == b'\x80\x04'                              # protocol 4 (FORMAT.md 1)
    assert pw.stream_globals(data) == FORMAT_GLOBALS
    ops = [op.name for op, _, _ in pickletools.genops(data)]
    assert ops.count('STACK_GLOBAL') == len(FORMAT_GLOBALS)       # each global once, then memo
    blobs = pw.storage_blobs(data)
    json_ = refdata.load_json('stylegan3-t.json')
    assert len(blobs) == 2 * len(json_['G']['state_dict']) + len(json_['D']['state_dict'])
    assert set().union(*(pw.blob_globals(b) for b in blobs)) == {'torch.FloatStorage'}


@pytest.mark.parametrize('name', NETS)
def test_state_dict_and_kwargs_are_bit_exact(snapshot_file, name):
    """Walking _modules/_parameters/_buffers gives exactly the reference state_dict()."""
    ref_json, G_ref, D_ref = _reference(name)
    with open(snapshot_file(name), 'rb') as f:
        data = legacy_pickle.load_reference_pickle(f)
    assert list(data) == ['G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs']
    for key, ref, kind in [('G_ema', G_ref, 'G'), ('D', D_ref, 'D')]:
        state = legacy_pickle.module_state_dict(data[key])
        assert list(state) == [e['key'] for e in ref_json[kind]['state_dict']]   # torch's order
        assert all(torch.equal(state[k], ref[k]) for k in ref)
        assert legacy_pickle.init_kwargs(data[key]) == ref_json[kind]['init_kwargs']
    assert data['training_set_kwargs']['class_name'] == 'training.dataset.ImageFolderDataset'


def test_numpy_attributes_are_rebuilt(snapshot_file):
    with open(snapshot_file('stylegan3-t'), 'rb') as f:
        G = legacy_pickle.load_reference_pickle(f)['G']
    layer = legacy_pickle.child(legacy_pickle.child(G, 'synthesis'), 'L0_36_64')
    ref_layer = refdata.load_json('stylegan3-t.json')['layers'][1]
    assert layer.state['in_size'].value.dtype == np.int64
    assert layer.state['in_size'].value.tolist() == ref_layer['in_size']
    assert layer.state['in_cutoff'] == np.float64(ref_layer['in_cutoff'])
    assert isinstance(layer.state['use_fp16'], np.bool_)


@pytest.mark.parametrize('name', NETS)
def test_loaded_generator_reproduces_reference_images(snapshot_file, name):
    io_ref = refdata.load_tensors(f'{name}.io.safetensors')
    G = network_files.load_generator(snapshot_file(name))
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    with torch.no_grad():
        img = G(io_ref['z'], None, noise_mode='const', force_fp32=True)
    assert (img - io_ref['img_const']).abs().max().item() <= 1e-4
    assert G.init_kwargs == refdata.load_json(f'{name}.json')['G']['init_kwargs']


def test_full_snapshot_with_discriminator_and_dataset(snapshot_file):
    io_ref = refdata.load_tensors('stylegan3-t.io.safetensors')
    net = network_files.load_network(snapshot_file('stylegan3-t'))
    assert net['augment_pipe'] is None
    assert net['training_set_kwargs']['resolution'] == 32
    with torch.no_grad():
        logits = net['D'](io_ref['img_const'], None, force_fp32=True)
    assert (logits - io_ref['D_logits']).abs().max().item() <= 1e-4
    assert all(torch.equal(a, b) for a, b in zip(net['G'].state_dict().values(), net['G_ema'].state_dict().values()))


def test_missing_optional_entries_are_none(tmp_path):
    ref_json, G_ref, D_ref = _reference('stylegan3-t')
    path = tmp_path / 'g_ema_only.pkl'
    path.write_bytes(pw.snapshot_bytes(None, None, pw.generator_call(ref_json, G_ref), keys={'G_ema'}))
    net = network_files.load_network(path)
    assert net['G_ema'] is not None
    assert net['G'] is net['D'] is net['augment_pipe'] is net['training_set_kwargs'] is None


def test_augment_pipe_is_loaded_or_kept_raw(tmp_path):
    ref_json, G_ref, D_ref = _reference('stylegan3-t')
    data = pw.snapshot_bytes(None, None, pw.generator_call(ref_json, G_ref), pw.augment_pipe_call(p=0.25),
                             keys={'G_ema', 'augment_pipe'})
    path = tmp_path / 'with_aug.pkl'
    path.write_bytes(data)
    pipe = network_files.load_network(path)['augment_pipe']
    if isinstance(pipe, dict):   # training.augment not available: raw record
        assert pipe['init_kwargs']['hue'] == 1 and float(pipe['state_dict']['p']) == 0.25
    else:
        assert float(pipe.p) == 0.25


def test_numpy1_global_names_are_accepted():
    """Files written with numpy 1.x name numpy.core.multiarray instead of numpy._core."""
    arr = pw.Call(pw.global_ref('numpy.core.multiarray', '_reconstruct'), (np.ndarray, (0,), b'b'),
                  state=(1, (2,), np.dtype('int64'), False, np.array([3, 4], dtype=np.int64).tobytes()))
    scalar = pw.Call(pw.global_ref('numpy.core.multiarray', 'scalar'), (np.dtype('float64'), np.float64(0.5).tobytes()))
    data = legacy_pickle.load_reference_pickle(io.BytesIO(pw.dumps({'a': arr, 's': scalar})))
    assert data['a'].value.tolist() == [3, 4] and data['s'] == 0.5


def test_legacy_blob_parser_matches_torch():
    """Our blob parser reads what torch's own storage reduction writes, for several dtypes."""
    for t in [torch.randn(5, 3), torch.arange(7, dtype=torch.int64), torch.tensor([True, False]),
              torch.randn(4).half(), torch.randn(0)]:
        storage = torch.TypedStorage(wrap_storage=t.untyped_storage(), dtype=t.dtype, _internal=True)
        reduce_fn, (blob,) = storage.__reduce__()
        assert reduce_fn is torch.storage._load_from_bytes
        flat = legacy_pickle.parse_legacy_storage(blob).flat
        assert flat.dtype == t.dtype and torch.equal(flat, t.reshape(-1))


def test_reader_never_uses_torch_load_or_imports(monkeypatch, snapshot_file):
    def forbidden(*args, **kwargs):
        raise AssertionError('torch.load must not be used on reference pickles')
    monkeypatch.setattr(torch, 'load', forbidden)
    monkeypatch.setattr(torch.storage, '_load_from_bytes', forbidden)
    with open(snapshot_file('stylegan2'), 'rb') as f:
        legacy_pickle.module_state_dict(legacy_pickle.load_reference_pickle(f)['G'])
    assert 'dnnlib' not in sys.modules and 'torch_utils.persistence' not in sys.modules
    assert not any(name.startswith('_imported_module_') for name in sys.modules)


def test_protocol5_numpy_arrays_are_accepted():
    """Python 3.14 pickles default to protocol 5, where numpy uses _frombuffer."""
    data = pickle.dumps({'a': np.arange(3, dtype=np.int64)}, protocol=5)
    assert legacy_pickle.load_reference_pickle(io.BytesIO(data))['a'].value.tolist() == [0, 1, 2]
