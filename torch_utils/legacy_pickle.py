"""Read reference StyleGAN network pickles without executing anything they contain.

The reference training code pickles every network as a call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` carries the Python
source of the defining module; loading it normally *executes* that source (DESIGN.md 4.2,
`shared/reference/FORMAT.md`). We instead unpickle with an explicit allow-list of globals, each
mapped to an inert stand-in of our own:

* the persistence hook  -> `PersistentObject` (class name + attribute dict; `module_src` dropped),
* tensor / parameter rebuilding -> `TensorRecord` (validated view of a parsed storage),
* `torch.storage._load_from_bytes` -> our own parser of torch's legacy storage blob
  (FORMAT.md section 5), itself a restricted unpickler that allows only `torch.*Storage` names,
* numpy array / dtype / scalar rebuilding, limited to plain numeric dtypes,
* `collections.OrderedDict` and `dnnlib.util.EasyDict` (plain dict stand-in).

Any other global, any persistent id in the outer stream, any BUILD on a stand-in that does not
expect one, is refused with `LegacyPickleError`. Nothing named by the file is ever imported.
"""

import collections
import io
import pickle
import struct

import numpy as np
import torch


class LegacyPickleError(ValueError):
    """The pickle is corrupt, not a reference network pickle, or asks for something unsafe."""


# ---------------------------------------------------------------------------------------------
# Inert records produced by the stand-ins.

class _Inert:
    """Base of all stand-in records: no instance dict, and BUILD (setstate) is refused."""
    __slots__ = ()

    def __setstate__(self, state):
        raise LegacyPickleError(f'the pickle tries to set the state of a {type(self).__name__}, '
                                'which reference network pickles never do.')

    def __reduce__(self):
        raise TypeError(f'{type(self).__name__} is a read-only record and cannot be pickled.')


class PersistentObject(_Inert):
    """What the persistence hook stands for: the object's class name and its attribute dict."""
    __slots__ = ('class_name', 'state', 'version')

    def __init__(self, class_name, state, version):
        self.class_name = class_name
        self.state = state
        self.version = version

    def __repr__(self):
        return f'PersistentObject({self.class_name!r})'


class StorageRecord(_Inert):
    """A flat storage parsed from a legacy blob: a 1-D CPU tensor of its dtype."""
    __slots__ = ('flat',)

    def __init__(self, flat):
        self.flat = flat


class TensorRecord(_Inert):
    """A strided view of a storage, checked to stay inside it; `tensor()` makes a copy."""
    __slots__ = ('storage', 'offset', 'size', 'stride')

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def tensor(self) -> torch.Tensor:
        return self.storage.flat.as_strided(self.size, self.stride, self.offset).clone()


# ---------------------------------------------------------------------------------------------
# Stand-ins for the allowed globals. Each validates its arguments before building anything.

def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict):
        raise LegacyPickleError('a persistent object carries no metadata dict.')
    if meta.get('type') != 'class':
        raise LegacyPickleError(f'unsupported persistent object type {meta.get("type")!r}.')
    class_name, state = meta.get('class_name'), meta.get('state')
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise LegacyPickleError('a persistent object lacks its class name or state.')
    # `module_src` is deliberately ignored: it is code, and we never run it.
    return PersistentObject(class_name, state, meta.get('version'))


def _check_ints(values, what):
    if not isinstance(values, (tuple, list)) or not all(type(v) is int and v >= 0 for v in values):
        raise LegacyPickleError(f'invalid tensor {what} {values!r}.')
    return tuple(values)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageRecord):
        raise LegacyPickleError('a tensor is not backed by a storage blob.')
    size, stride = _check_ints(size, 'size'), _check_ints(stride, 'stride')
    offset = _check_ints((storage_offset,), 'offset')[0]
    if len(size) != len(stride):
        raise LegacyPickleError('a tensor has different numbers of sizes and strides.')
    numel = storage.flat.numel()
    if int(np.prod(size, dtype=np.float64)) > numel:  # reference tensors never broadcast storage
        raise LegacyPickleError('a tensor has more elements than its storage.')
    if all(size):  # non-empty: the last element addressed must lie inside the storage
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel:
            raise LegacyPickleError('a tensor addresses data beyond the end of its storage.')
    elif offset > numel:
        raise LegacyPickleError('a tensor starts beyond the end of its storage.')
    return TensorRecord(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, TensorRecord):
        raise LegacyPickleError('a parameter does not wrap a tensor.')
    return data  # only the data matters: our modules own their Parameter objects


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict: a plain dict (the attribute sugar is not needed)."""
    __slots__ = ()


# numpy ------------------------------------------------------------------------------------------
_NUMPY_CODES = {'b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8'}


class _Dtype(_Inert):
    """numpy.dtype stand-in: only plain numeric / bool codes, no fields, no objects."""
    __slots__ = ('code', 'dtype')

    def __init__(self, code, align=False, copy=True):
        if code not in _NUMPY_CODES:
            raise LegacyPickleError(f'numpy dtype {code!r} is not allowed (only numbers and bools).')
        self.code, self.dtype = code, np.dtype(code)

    def __setstate__(self, state):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise LegacyPickleError('invalid numpy dtype state.')
        byteorder, rest = state[1], state[2:5] + state[8:]
        if byteorder not in ('<', '>', '|', '=') or any(v is not None for v in rest) or state[7] != 0:
            raise LegacyPickleError('numpy dtype with fields, sub-arrays or object flags is not allowed.')
        if byteorder in '<>':
            self.dtype = self.dtype.newbyteorder(byteorder)


class _NdarrayType(_Inert):
    """The `numpy.ndarray` token passed to `_reconstruct`; never instantiated by the file."""
    __slots__ = ()

    def __init__(self, *args):
        raise LegacyPickleError('the pickle tries to construct numpy.ndarray directly.')


class NumpyArrayRecord(_Inert):
    """numpy array built from raw bytes of an allowed dtype; see `value`."""
    __slots__ = ('value',)

    def __init__(self):
        self.value = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5:
            raise LegacyPickleError('invalid numpy array state.')
        _, shape, dtype, fortran, raw = state
        self.value = _array_from_bytes(raw, dtype, shape, 'F' if fortran else 'C')


def _array_from_bytes(raw, dtype, shape, order):
    if not isinstance(dtype, _Dtype):
        raise LegacyPickleError('numpy array without an allowed dtype.')
    shape = _check_ints(shape, 'shape')
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if not isinstance(raw, (bytes, bytearray)):
        raise LegacyPickleError('numpy array data is not raw bytes (object arrays are refused).')
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.dtype.itemsize:
        raise LegacyPickleError('numpy array data has the wrong length.')
    return np.frombuffer(raw, dtype=dtype.dtype).reshape(shape, order=order).copy()


def _np_reconstruct(subtype, shape, typecode):
    if subtype is not _NdarrayType:
        raise LegacyPickleError('numpy _reconstruct called for something other than ndarray.')
    return NumpyArrayRecord()


def _np_frombuffer(buffer, dtype, shape, order):
    # numpy's protocol-5 array reduction (pickle default protocol from Python 3.14 on).
    record = NumpyArrayRecord()
    record.value = _array_from_bytes(buffer, dtype, shape, 'F' if order == 'F' else 'C')
    return record


def _np_scalar(dtype, data):
    if not isinstance(dtype, _Dtype) or not isinstance(data, bytes) or len(data) != dtype.dtype.itemsize:
        raise LegacyPickleError('invalid numpy scalar.')
    return np.frombuffer(data, dtype=dtype.dtype)[0]


def _with_numpy_names(entries):
    # numpy 2 renamed numpy.core to numpy._core; files from either era name their own.
    out = {}
    for (module, name), target in entries.items():
        out[(module, name)] = target
        if module.startswith('numpy._core.'):
            out[('numpy.core.' + module[len('numpy._core.'):], name)] = target
    return out


_ALLOWED_GLOBALS = _with_numpy_names({
    ('torch_utils.persistence', '_reconstruct_persistent_obj'): _reconstruct_persistent_obj,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
    ('torch.storage', '_load_from_bytes'): lambda data: parse_legacy_storage(data),
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('dnnlib.util', 'EasyDict'): _EasyDict,
    ('numpy._core.multiarray', '_reconstruct'): _np_reconstruct,
    ('numpy._core.multiarray', 'scalar'): _np_scalar,
    ('numpy._core.numeric', '_frombuffer'): _np_frombuffer,
    ('numpy', 'ndarray'): _NdarrayType,
    ('numpy', 'dtype'): _Dtype,
})


class _RestrictedUnpickler(pickle.Unpickler):
    """Outer-stream unpickler: allow-listed globals only, no persistent ids."""

    def find_class(self, module, name):
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise LegacyPickleError(f'it references "{module}.{name}", which is not part of a '
                                    'network pickle and could run code, so it was refused.')
        return target

    def persistent_load(self, pid):
        raise LegacyPickleError('it contains a persistent id, which network pickles never use.')


# ---------------------------------------------------------------------------------------------
# torch's legacy storage blob (FORMAT.md section 5).

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_VERSION = 1001
_STORAGE_DTYPES = {
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64, 'HalfStorage': torch.float16,
    'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8,
    'BoolStorage': torch.bool,
}


class _StorageType(_Inert):
    """Token for a `torch.*Storage` class named inside a blob."""
    __slots__ = ('dtype',)

    def __init__(self, dtype):
        self.dtype = dtype


class _StorageRef(_Inert):
    __slots__ = ('dtype', 'key', 'numel')

    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = dtype, key, numel


class _BlobUnpickler(pickle.Unpickler):
    """Inner-blob unpickler: only `torch.<X>Storage` globals and the storage persistent id."""

    def find_class(self, module, name):
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise LegacyPickleError(f'a storage blob references "{module}.{name}", which is not a '
                                'torch storage type and could run code, so it was refused.')

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == 'storage'):
            raise LegacyPickleError('a storage blob has an unexpected persistent id.')
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(numel) is not int:
            raise LegacyPickleError('a storage blob has a malformed storage reference.')
        if numel < 0 or (len(pid) == 6 and pid[5] is not None):
            raise LegacyPickleError('a storage blob uses storage views, which are not supported.')
        return _StorageRef(storage_type.dtype, key, numel)


def _blob_pickle(stream, unpickler_class):
    try:
        return unpickler_class(stream).load()
    except LegacyPickleError:
        raise
    except Exception as exc:  # corrupt bytes surface as many exception types
        raise LegacyPickleError(f'a storage blob is corrupt ({type(exc).__name__}).') from None


def parse_legacy_storage(blob) -> StorageRecord:
    """Parse one legacy `torch.save` blob holding a single storage, without torch.load."""
    if not isinstance(blob, bytes):
        raise LegacyPickleError('a storage blob is not a byte string.')
    stream = io.BytesIO(blob)
    if _blob_pickle(stream, _BlobUnpickler) != LEGACY_MAGIC:
        raise LegacyPickleError('a storage blob lacks the legacy torch magic number.')
    if _blob_pickle(stream, _BlobUnpickler) != _LEGACY_VERSION:
        raise LegacyPickleError('a storage blob has an unsupported legacy format version.')
    sys_info = _blob_pickle(stream, _BlobUnpickler)
    if not isinstance(sys_info, dict) or sys_info.get('little_endian') is not True:
        raise LegacyPickleError('a storage blob is not little-endian, which is not supported.')
    ref = _blob_pickle(stream, _BlobUnpickler)
    if not isinstance(ref, _StorageRef):
        raise LegacyPickleError('a storage blob does not hold a bare storage.')
    if _blob_pickle(stream, _BlobUnpickler) != [ref.key]:
        raise LegacyPickleError('a storage blob has an inconsistent key list.')
    return StorageRecord(_read_storage_bytes(stream, ref))


def _read_storage_bytes(stream, ref) -> torch.Tensor:
    header = stream.read(8)
    if len(header) != 8 or struct.unpack('<q', header)[0] != ref.numel:
        raise LegacyPickleError('a storage blob has an inconsistent element count.')
    nbytes = ref.numel * torch.empty((), dtype=ref.dtype).element_size()
    data = stream.read(nbytes)
    if len(data) != nbytes or stream.read(1):
        raise LegacyPickleError('a storage blob has the wrong amount of data.')
    if nbytes == 0:
        return torch.empty(0, dtype=ref.dtype)
    return torch.frombuffer(bytearray(data), dtype=ref.dtype)  # writable private copy


# ---------------------------------------------------------------------------------------------
# Public entry points.

def load_reference_pickle(stream) -> object:
    """Unpickle a reference snapshot from a binary stream into inert records (no code runs)."""
    try:
        return _RestrictedUnpickler(stream).load()
    except LegacyPickleError:
        raise
    except RecursionError:
        raise LegacyPickleError('it is nested too deeply to be a network pickle.') from None
    except Exception as exc:  # truncated/corrupt input surfaces as many exception types
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LegacyPickleError(f'it is not a readable pickle ({detail}).') from None


def plain_value(value):
    """Convert unpickled kwargs (EasyDict, numpy scalars/arrays) into plain Python data."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise LegacyPickleError('its kwargs have a non-string key.')
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_value(v) for v in value)
    if isinstance(value, NumpyArrayRecord):
        return value.value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise LegacyPickleError(f'its kwargs hold a {type(value).__name__}, which is not plain data.')


def module_state_dict(obj: PersistentObject, prefix: str = '') -> dict:
    """Walk `_parameters`, `_buffers` and `_modules` into dotted state-dict keys (torch's order)."""
    state = obj.state
    non_persistent = state.get('_non_persistent_buffers_set') or set()
    result = {}
    for group in ('_parameters', '_buffers'):
        for name, value in _named_entries(state, group, obj):
            if value is None or (group == '_buffers' and name in non_persistent):
                continue
            if not isinstance(value, TensorRecord):
                raise LegacyPickleError(f'{prefix}{name} of {obj.class_name} is not a tensor.')
            result[prefix + name] = value.tensor()
    for name, child in _named_entries(state, '_modules', obj):
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise LegacyPickleError(f'submodule {prefix}{name} of {obj.class_name} is not a network object.')
        result.update(module_state_dict(child, f'{prefix}{name}.'))
    return result


def _named_entries(state, group, obj):
    entries = state.get(group, {})
    if not isinstance(entries, dict) or not all(isinstance(k, str) for k in entries):
        raise LegacyPickleError(f'{group} of {obj.class_name} is not a dict of names.')
    return entries.items()


def child(obj: PersistentObject, name: str):
    """The persistent submodule `name` of `obj`, or None."""
    value = obj.state.get('_modules', {}).get(name) if isinstance(obj.state.get('_modules'), dict) else None
    return value if isinstance(value, PersistentObject) else None


def init_kwargs(obj: PersistentObject) -> dict:
    """The constructor kwargs recorded by the persistence wrapper, as plain data."""
    args, kwargs = obj.state.get('_init_args', ()), obj.state.get('_init_kwargs')
    if args:
        raise LegacyPickleError(f'{obj.class_name} was built with positional arguments, which is not supported.')
    if not isinstance(kwargs, dict):
        raise LegacyPickleError(f'{obj.class_name} carries no init_kwargs.')
    return plain_value(kwargs)
