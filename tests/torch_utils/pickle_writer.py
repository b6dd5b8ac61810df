"""Test-side writer of reference-format network pickles (shared/reference/FORMAT.md).

Produces the opcode structure of the reference training snapshot with pickle's own machinery:
the pure-Python pickler, extended by one rule — a class that carries `__pickle_global__ =
(module, qualname)` is written as that global (STACK_GLOBAL, memoised) — so we can name
`torch_utils.persistence._reconstruct_persistent_obj` and `dnnlib.util.EasyDict` without those
modules existing. Tensors, parameters and storages go through torch's own reductions
(`_rebuild_parameter`, `_rebuild_tensor_v2`, `_load_from_bytes` with a legacy blob), numpy
values through numpy's, exactly as the reference snapshot does.

The same primitives (`global_ref`, `Call`, `legacy_blob`) build the hostile pickles of the
security tests.
"""

import collections
import functools
import io
import pickle
import re
import struct

import numpy as np
import torch

PERSISTENCE_VERSION = 6
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# Buffer names of the reference networks (everything else in a state dict is a parameter).
KNOWN_BUFFERS = {'w_avg', 'magnitude_ema', 'up_filter', 'down_filter', 'resample_filter',
                 'noise_const', 'transform', 'freqs', 'phases', 'p', 'Hz_geom', 'Hz_fbank'}


@functools.lru_cache(maxsize=None)
def global_ref(module: str, qualname: str) -> type:
    """A class that pickles as the global `module.qualname` (one object per name, so memoised)."""
    def refuse(*args, **kwargs):
        raise RuntimeError(f'{module}.{qualname} is a pickling token and must never be called.')
    return type(qualname.rsplit('.', 1)[-1], (), {'__pickle_global__': (module, qualname), '__new__': refuse})


class Call:
    """Pickles as `func(*args)` (GLOBAL, argument tuple, REDUCE), then BUILD with `state` if given.

    A Call may itself be the `func` of another Call (a computed callable, as in getattr chains).
    """

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, tuple(args), state

    def __call__(self, *args, **kwargs):
        raise RuntimeError('a Call is a pickling token and must never be called.')

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class EasyDict(dict):
    """Pickles like dnnlib.util.EasyDict (NEWOBJ of the global, then SETITEMS)."""
    __pickle_global__ = ('dnnlib.util', 'EasyDict')


class ReferencePickler(pickle._Pickler):
    """The pure-Python pickler plus the `__pickle_global__` rule described in the module doc."""

    def save_global(self, obj, name=None):
        ref = vars(obj).get('__pickle_global__') if isinstance(obj, type) else None
        if ref is None:
            return super().save_global(obj, name)
        module, qualname = ref
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f'{module}\n{qualname}\n'.encode('utf-8'))
        self.memoize(obj)


def dumps(obj, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    ReferencePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Persistent network objects (FORMAT.md section 3).

def persistent_call(class_name: str, state: dict, module_src: str, **meta_overrides) -> Call:
    """`_reconstruct_persistent_obj(meta)` for one object."""
    meta = dict(type='class', version=PERSISTENCE_VERSION, module_src=module_src,
                class_name=class_name, state=state)
    meta.update(meta_overrides)
    return Call(global_ref('torch_utils.persistence', '_reconstruct_persistent_obj'), (meta,))


def _hook_dicts() -> dict:
    names = ['_backward_pre_hooks', '_backward_hooks', '_forward_hooks', '_forward_hooks_with_kwargs',
             '_forward_hooks_always_called', '_forward_pre_hooks', '_forward_pre_hooks_with_kwargs',
             '_state_dict_hooks', '_state_dict_pre_hooks', '_load_state_dict_pre_hooks',
             '_load_state_dict_post_hooks']
    return {name: collections.OrderedDict() for name in names}


def _as_easydict(value):
    """Nested option groups of init_kwargs are EasyDicts in the reference (FORMAT.md section 3)."""
    if isinstance(value, dict):
        return EasyDict({k: _as_easydict(v) for k, v in value.items()})
    return value


def module_state(params: dict, buffers: dict, children: dict, init_kwargs=None, attrs=None) -> dict:
    """The attribute dict torch's Module.__getstate__ returns, in the reference's field order."""
    state = {'training': False, '_parameters': params, '_buffers': buffers,
             '_non_persistent_buffers_set': set()}
    state.update(_hook_dicts())
    state['_is_full_backward_hook'] = None
    state['_modules'] = children
    kwargs = init_kwargs or {}
    state['_init_args'] = ()
    state['_init_kwargs'] = {k: _as_easydict(v) for k, v in kwargs.items()}
    state.update(attrs or {})
    return state


def _param(t: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(t.detach().to('cpu').clone().contiguous(), requires_grad=False)


def persistent_module(class_name: str, init_kwargs: dict, state_dict: dict, module_src: str,
                      class_name_of=None, attrs=None, none_buffers=None) -> Call:
    """A persistent object tree built from a flat state dict.

    class_name_of(path) names each submodule (default: `reference_class_name`); `attrs` maps a
    submodule path ('' = root) to extra plain attributes (e.g. numpy sizes and cutoffs);
    `none_buffers` maps a path to buffer names registered as None (e.g. SG3 ToRGB filters).
    """
    class_name_of = class_name_of or reference_class_name
    tree = {}
    for key, value in state_dict.items():
        *path, leaf = key.split('.')
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return _tree_to_call(tree, '', class_name, init_kwargs, module_src, class_name_of,
                         attrs or {}, none_buffers or {})


def _tree_to_call(node, path, class_name, init_kwargs, module_src, class_name_of, attrs, none_buffers):
    params, buffers, children = {}, {}, {}
    for name, value in node.items():
        if isinstance(value, dict):
            sub = f'{path}.{name}' if path else name
            children[name] = _tree_to_call(value, sub, class_name_of(sub), None, module_src,
                                           class_name_of, attrs, none_buffers)
        elif name in KNOWN_BUFFERS:
            buffers[name] = value.detach().to('cpu').clone().contiguous()
        else:
            params[name] = _param(value)
    for name in none_buffers.get(path, ()):
        buffers[name] = None
    state = module_state(params, buffers, children, init_kwargs, attrs.get(path))
    return persistent_call(class_name, state, module_src)


_CLASS_PATTERNS = [  # (regex on the last path component(s), reference class name)
    (r'mapping', 'MappingNetwork'), (r'synthesis', 'SynthesisNetwork'),
    (r'synthesis\.input', 'SynthesisInput'), (r'synthesis\.L\d+_\d+_\d+', 'SynthesisLayer'),
    (r'synthesis\.b\d+', 'SynthesisBlock'), (r'synthesis\.b\d+\.conv[01]', 'SynthesisLayer'),
    (r'synthesis\.b\d+\.torgb', 'ToRGBLayer'), (r'b\d+', 'DiscriminatorBlock'),
    (r'b\d+\.(fromrgb|conv0|conv1|skip)', 'Conv2dLayer'), (r'epilogue', 'DiscriminatorEpilogue'),
    (r'epilogue\.mbstd', 'MinibatchStdLayer'), (r'epilogue\.conv', 'Conv2dLayer'),
]


def reference_class_name(path: str) -> str:
    """Reference class of a submodule path of G or D (the loader does not depend on these)."""
    for pattern, name in _CLASS_PATTERNS:
        if re.fullmatch(pattern, path):
            return name
    return 'FullyConnectedLayer'  # mapping.fc*, embed, affine, epilogue.fc/out


# ---------------------------------------------------------------------------------------------
# Whole snapshots (FORMAT.md sections 2 and 7).

FAKE_MODULE_SRC = {  # stand-ins for the embedded sources; one shared string object per module
    'networks_stylegan2': '# training/networks_stylegan2.py (source not included in tests)\n',
    'networks_stylegan3': '# training/networks_stylegan3.py (source not included in tests)\n',
    'augment': '# training/augment.py (source not included in tests)\n',
}


def reference_training_set_kwargs(resolution: int = 32) -> dict:
    return dict(class_name='training.dataset.ImageFolderDataset', path='datasets/tiny.zip',
                use_labels=False, max_size=100, xflip=False, resolution=resolution, random_seed=0)


def snapshot_bytes(G, D, G_ema, augment_pipe=None, training_set_kwargs=None, keys=None) -> bytes:
    """Pickle the top-level snapshot dict (five keys in reference order, or only `keys`)."""
    values = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe,
                  training_set_kwargs=training_set_kwargs)
    return dumps({k: v for k, v in values.items() if keys is None or k in keys})


def sg3_layer_attrs(layers: list) -> dict:
    """Numpy-typed plain attributes of SG3 synthesis layers, from a reference JSON `layers` list."""
    attrs = {}
    for layer in layers:
        attrs[f'synthesis.{layer["name"]}'] = {
            'in_size': np.asarray(layer['in_size'], dtype=np.int64),
            'out_size': np.asarray(layer['out_size'], dtype=np.int64),
            'in_cutoff': np.float64(layer['in_cutoff']), 'out_cutoff': np.float64(layer['out_cutoff']),
            'in_half_width': np.float64(layer['in_half_width']),
            'use_fp16': np.bool_(layer['use_fp16']), 'padding': list(layer['padding']),
            'conv_clamp': layer['conv_clamp'], 'is_torgb': layer['is_torgb'],
        }
    return attrs


# ---------------------------------------------------------------------------------------------
# Legacy storage blobs (FORMAT.md section 5), for hand-made and hostile variants.

def legacy_blob(values: torch.Tensor, storage_global=('torch', 'FloatStorage'), key: str = '0',
                object_pickle: bytes = None) -> bytes:
    """One legacy torch blob holding `values` as a flat storage; `object_pickle` replaces
    the persistent-id pickle (to build hostile blobs)."""
    flat = values.detach().reshape(-1).contiguous()
    sys_info = {'protocol_version': 1001, 'little_endian': True,
                'type_sizes': {'short': 2, 'int': 4, 'long': 4}}
    if object_pickle is None:
        object_pickle = _persid_pickle(('storage', global_ref(*storage_global), key, 'cpu', flat.numel(), None))
    parts = [pickle.dumps(LEGACY_MAGIC, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps(sys_info, protocol=2), object_pickle, pickle.dumps([key], protocol=2),
             struct.pack('<q', flat.numel()), flat.numpy().tobytes()]
    return b''.join(parts)


def _persid_pickle(pid: tuple) -> bytes:
    class PersidPickler(ReferencePickler):
        def persistent_id(self, obj):
            return pid if obj is _MARK else None
    buf = io.BytesIO()
    PersidPickler(buf, protocol=2).dump(_MARK)
    return buf.getvalue()


_MARK = object()


def tensor_call(values: torch.Tensor, blob: bytes = None) -> Call:
    """`_rebuild_tensor_v2(_load_from_bytes(blob), 0, size, stride, False, OrderedDict())`."""
    blob = legacy_blob(values) if blob is None else blob
    storage = Call(global_ref('torch.storage', '_load_from_bytes'), (blob,))
    size = tuple(values.shape)
    stride = tuple(torch.empty(size).stride())
    return Call(global_ref('torch._utils', '_rebuild_tensor_v2'),
                (storage, 0, size, stride, False, collections.OrderedDict()))


# ---------------------------------------------------------------------------------------------
# A complete snapshot of one reference network (shared/reference/<name>.*).

def ordered_state(tensors: dict, key_list: list) -> dict:
    """safetensors files sort their keys; restore `state_dict()` order from the JSON key list."""
    return {entry['key']: tensors[entry['key']] for entry in key_list}


def generator_call(ref_json: dict, G_tensors: dict, module_src: str = None) -> Call:
    sg3 = 'layers' in ref_json
    src = module_src or FAKE_MODULE_SRC['networks_stylegan3' if sg3 else 'networks_stylegan2']
    attrs, none_buffers = {}, {}
    if sg3:
        attrs = sg3_layer_attrs(ref_json['layers'])
        torgb = f'synthesis.{ref_json["layers"][-1]["name"]}'
        none_buffers = {torgb: ['up_filter', 'down_filter']}  # registered as None (FORMAT.md 3)
    return persistent_module('Generator', ref_json['G']['init_kwargs'],
                             ordered_state(G_tensors, ref_json['G']['state_dict']), src,
                             attrs=attrs, none_buffers=none_buffers)


def discriminator_call(ref_json: dict, D_tensors: dict) -> Call:
    return persistent_module('Discriminator', ref_json['D']['init_kwargs'],
                             ordered_state(D_tensors, ref_json['D']['state_dict']),
                             FAKE_MODULE_SRC['networks_stylegan2'])


def augment_pipe_call(p: float = 0.25) -> Call:
    """A reference AugmentPipe (FORMAT.md section 8) with the train.py 'bgc' kwargs."""
    kwargs = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                  brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    buffers = {'p': torch.tensor(p), 'Hz_geom': torch.linspace(-0.1, 0.8, 12),
               'Hz_fbank': torch.linspace(-1, 1, 4 * 43).reshape(4, 43)}
    attrs = {'xint_max': 0.125, 'scale_std': 0.2, 'imgfilter_bands': [1, 1, 1, 1], 'noise_std': 0.1}
    state = module_state({}, buffers, {}, kwargs, attrs)
    return persistent_call('AugmentPipe', state, FAKE_MODULE_SRC['augment'])


def reference_snapshot(ref_json, G_tensors, D_tensors, augment_pipe=None, keys=None,
                       module_src: str = None) -> bytes:
    """The bytes of a reference `network-snapshot-*.pkl` holding these weights (G == G_ema)."""
    return snapshot_bytes(generator_call(ref_json, G_tensors, module_src),
                          discriminator_call(ref_json, D_tensors),
                          generator_call(ref_json, G_tensors, module_src), augment_pipe,
                          reference_training_set_kwargs(ref_json['G']['init_kwargs']['img_resolution']),
                          keys=keys)


def stream_globals(data: bytes) -> set:
    """Every GLOBAL / STACK_GLOBAL target of a pickle stream, with memoised operands resolved."""
    import pickletools
    memo, stack, found = {}, [], set()
    for op, arg, _ in pickletools.genops(data):
        if op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE'):
            stack.append(arg)
        elif op.name == 'MEMOIZE':
            memo[len(memo)] = stack[-1] if stack else None
        elif op.name in ('BINPUT', 'LONG_BINPUT', 'PUT'):
            memo[arg] = stack[-1] if stack else None
        elif op.name in ('BINGET', 'LONG_BINGET', 'GET'):
            stack.append(memo.get(arg))
        elif op.name == 'GLOBAL':
            found.add(arg.replace(' ', '.'))
            stack.append(None)
        elif op.name == 'STACK_GLOBAL':
            found.add(f'{stack[-2]}.{stack[-1]}')
            stack.append(None)
        else:
            stack.append(None)  # placeholder: only string operands of STACK_GLOBAL matter
    return found


def storage_blobs(data: bytes) -> list:
    """The legacy storage blobs (bytes arguments starting with the legacy magic pickle)."""
    import pickletools
    magic = pickle.dumps(LEGACY_MAGIC, protocol=2)
    return [arg for op, arg, _ in pickletools.genops(data)
            if isinstance(arg, bytes) and arg.startswith(magic)]


def blob_globals(blob: bytes) -> set:
    """Globals named by the five small pickles at the start of a legacy blob."""
    import pickletools
    stream, found = io.BytesIO(blob), set()
    for _ in range(5):
        for op, arg, _ in pickletools.genops(stream):
            if op.name == 'GLOBAL':
                found.add(arg.replace(' ', '.'))
    return found
