"""Hostile pickles are refused with one clear NetworkFileError, and nothing they ask for runs.

Every payload tries to create a marker file; the tests prove the file never appears.
"""

import collections
import sys

import numpy as np
import pytest
import torch

from tests import refdata
from tests.torch_utils import pickle_writer as pw
from torch_utils import network_files
from torch_utils.network_files import NetworkFileError

ref = pw.global_ref


def _touch_cmd(marker):
    return f'touch {marker}'


def _valid_g_ema_state(extra_kwargs=None):
    """A minimal persistent Generator state (the payload sits inside it)."""
    kwargs = dict(z_dim=4, w_dim=4, c_dim=0, img_resolution=16, img_channels=3)
    kwargs.update(extra_kwargs or {})
    return pw.module_state({}, {}, {}, kwargs)


PAYLOADS = {
    'os_system': lambda m: pw.Call(ref('os', 'system'), (_touch_cmd(m),)),
    'posix_system': lambda m: pw.Call(ref('posix', 'system'), (_touch_cmd(m),)),
    'subprocess_popen': lambda m: pw.Call(ref('subprocess', 'Popen'), (['touch', str(m)],)),
    'subprocess_check_call': lambda m: pw.Call(ref('subprocess', 'check_call'), (['touch', str(m)],)),
    'builtins_eval': lambda m: pw.Call(ref('builtins', 'eval'), (f'open({str(m)!r}, "w")',)),
    'builtins_exec': lambda m: pw.Call(ref('builtins', 'exec'), (f'open({str(m)!r}, "w").close()',)),
    'builtins_open': lambda m: pw.Call(ref('builtins', 'open'), (str(m), 'w')),
    'importlib_import_module': lambda m: pw.Call(
        pw.Call(ref('builtins', 'getattr'), (pw.Call(ref('importlib', 'import_module'), ('os',)), 'system')),
        (_touch_cmd(m),)),
    'importlib_alone': lambda m: pw.Call(ref('importlib', 'import_module'), ('antigravity',)),
    'getattr_chain_via_allowed_global': lambda m: pw.Call(
        pw.Call(ref('builtins', 'getattr'), (ref('collections', 'OrderedDict'), '__init__')), ()),
    'torch_load_global': lambda m: pw.Call(ref('torch', 'load'), (str(m),)),
    'arbitrary_class_reduce': lambda m: pw.Call(ref('pathlib', 'Path'), (str(m),)),
    'our_own_network_class': lambda m: pw.Call(ref('training.networks_stylegan3', 'Generator'), ()),
    'copyreg_reconstructor': lambda m: pw.Call(ref('copyreg', '_reconstructor'), (object, object, None)),
    'nested_in_init_kwargs': lambda m: pw.persistent_call('Generator', _valid_g_ema_state(
        {'mapping_kwargs': {'num_layers': pw.Call(ref('os', 'system'), (_touch_cmd(m),))}}), ''),
    'hostile_storage_blob': lambda m: pw.tensor_call(torch.zeros(2), blob=pw.legacy_blob(
        torch.zeros(2), object_pickle=pw.dumps(pw.Call(ref('os', 'system'), (_touch_cmd(m),)), protocol=2))),
    'blob_with_non_storage_global': lambda m: pw.tensor_call(torch.zeros(2), blob=pw.legacy_blob(
        torch.zeros(2), storage_global=('os', 'system'))),
    'numpy_object_dtype_scalar': lambda m: pw.Call(ref('numpy._core.multiarray', 'scalar'),
                                                   (np.dtype(object), b'\0' * 8)),
    'numpy_object_array': lambda m: np.array([pw.Call(ref('os', 'system'), (_touch_cmd(m),))], dtype=object),
    'numpy_structured_dtype': lambda m: np.zeros(2, dtype=[('a', 'f4'), ('b', 'i4')]),
    'build_on_persistent_record': lambda m: pw.Call(
        ref('torch_utils.persistence', '_reconstruct_persistent_obj'),
        (dict(type='class', version=6, module_src='', class_name='Generator', state={}),),
        state={'__class__': ref('collections', 'OrderedDict')}),
    'tensor_reads_beyond_storage': lambda m: pw.Call(ref('torch._utils', '_rebuild_tensor_v2'), (
        pw.Call(ref('torch.storage', '_load_from_bytes'), (pw.legacy_blob(torch.zeros(2)),)),
        0, (1000,), (1,), False, collections.OrderedDict())),
    'malformed_module_state': lambda m: pw.persistent_call('Generator', {
        '_init_kwargs': {}, '_buffers': {'w': pw.tensor_call(torch.zeros(2))}, '_non_persistent_buffers_set': 7,
        '_modules': {'synthesis': pw.persistent_call('SynthesisNetwork', {'_modules': {
            'b4': pw.persistent_call('SynthesisBlock', {}, '')}}, '')}}, ''),
    'negative_stride_tensor': lambda m: pw.Call(ref('torch._utils', '_rebuild_tensor_v2'), (
        pw.Call(ref('torch.storage', '_load_from_bytes'), (pw.legacy_blob(torch.zeros(4)),)),
        3, (2,), (-1,), False, collections.OrderedDict())),
    'fake_persistent_object_with_code': lambda m: pw.persistent_call(
        'Generator', {'_modules': {}}, module_src=f'open({str(m)!r}, "w").close()\nclass Generator: pass\n'),
}


def _snapshot_with(payload):
    """Bury the payload where a network would be (G_ema), as in a real snapshot."""
    return pw.dumps({'G': None, 'D': None, 'G_ema': payload, 'augment_pipe': None,
                     'training_set_kwargs': None})


@pytest.mark.parametrize('name', sorted(PAYLOADS))
def test_hostile_pickle_is_refused(tmp_path, name):
    marker = tmp_path / 'marker'
    path = tmp_path / f'{name}.pkl'
    path.write_bytes(_snapshot_with(PAYLOADS[name](marker)))
    modules_before = set(sys.modules)
    with pytest.raises(NetworkFileError) as info:
        network_files.load_network(path)
    message = str(info.value)
    assert str(path) in message and '\n' not in message
    assert not marker.exists()
    assert set(sys.modules) == modules_before   # nothing named by the file was imported


def test_refused_global_is_named(tmp_path):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(_snapshot_with(PAYLOADS['os_system'](tmp_path / 'marker')))
    with pytest.raises(NetworkFileError, match=r'os\.system.*refused'):
        network_files.load_network(path)


@pytest.mark.parametrize('header', [b'', b'\x80\x02'], ids=['protocol0', 'protocol2'])
def test_text_global_opcode_is_refused(tmp_path, header):
    marker = tmp_path / 'marker'
    path = tmp_path / 'global_opcode.pkl'
    path.write_bytes(header + f"cos\nsystem\n(Vtouch {marker}\ntR.".encode())
    with pytest.raises(NetworkFileError, match='os.system' if header else 'not a network file'):
        network_files.load_network(path)
    assert not marker.exists()


def test_outer_persistent_id_is_refused(tmp_path):
    path = tmp_path / 'persid.pkl'
    path.write_bytes(b'\x80\x02X\x03\x00\x00\x00abcQ.')   # BINPERSID in the outer stream
    with pytest.raises(NetworkFileError, match='persistent id'):
        network_files.load_network(path)


def test_valid_snapshot_with_hostile_module_src_loads_without_running_it(tmp_path):
    """The embedded module source is never executed, even when the rest of the file is valid."""
    marker = tmp_path / 'marker'
    src = f'import os\nos.system("touch {marker}")\nopen({str(marker)!r}, "w").close()\n'
    ref_json = refdata.load_json('stylegan3-t.json')
    G = refdata.load_tensors('stylegan3-t.G.safetensors')
    path = tmp_path / 'snapshot.pkl'
    path.write_bytes(pw.snapshot_bytes(None, None, pw.generator_call(ref_json, G, module_src=src), keys={'G_ema'}))
    G_loaded = network_files.load_generator(path)
    assert torch.equal(G_loaded.state_dict()['mapping.w_avg'], G['mapping.w_avg'])
    assert not marker.exists()
