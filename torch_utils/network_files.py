"""Network files: write our snapshots and exports, read them and reference pickles (DESIGN.md 4).

Formats read by `load_network` (recognised by content, not by file name):

* our `network-snapshot-*.pt`: `torch.save` of plain data, loaded with `weights_only=True`;
  each network is `{'arch', 'init_kwargs', 'state_dict'}`;
* our `.safetensors` export of G_ema: arch and init_kwargs as JSON in the header metadata;
* reference `network-snapshot-*.pkl` files, through the restricted unpickler of
  `torch_utils.legacy_pickle` (no embedded code runs, nothing the file names is imported);
* bundled model names (files in `models/`) and `random:<cfg>[@res]` specs.

Every network is rebuilt from the registry and `init_kwargs`, then its state dict is loaded
strictly; any mismatch is a `NetworkFileError` naming the file.
"""

import copy
import json
import os
import pathlib
import pickle
import tempfile

import numpy as np
import torch

from torch_utils import bundled, legacy_pickle

FORMAT_NAME = 'stylegan-toolkit/network-snapshot'
FORMAT_VERSION = 1
EXPORT_FORMAT_NAME = 'stylegan-toolkit/generator'
NETWORK_KEYS = ('G', 'D', 'G_ema', 'augment_pipe')
RESULT_KEYS = ('G_ema', 'G', 'D', 'augment_pipe', 'training_set_kwargs', 'metadata')

# Small, quick-to-render defaults for `random:<cfg>` (the README demo before bundled models).
RANDOM_DEFAULTS = dict(img_resolution=64, channel_base=2048, channel_max=64)


class NetworkFileError(ValueError):
    """A network file cannot be used; the message is one sentence naming the file."""


# ---------------------------------------------------------------------------------------------
# Writing.

def plain_data(value):
    """Deep copy as data torch.load(weights_only=True) and JSON accept (numpy -> Python)."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f'{type(value).__name__} is not plain data and cannot go into a network file.')


def network_record(net: torch.nn.Module, arch: str = None) -> dict:
    """`{'arch', 'init_kwargs', 'state_dict'}` of a network (arch from the registry by default)."""
    if arch is None:
        from training import registry
        arch = registry.arch_of(net)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return {'arch': arch, 'init_kwargs': plain_data(net.init_kwargs), 'state_dict': state}


def _augment_record(pipe):
    if pipe is None or isinstance(pipe, dict):
        return plain_data(pipe)
    state = {k: v.detach().cpu().clone() for k, v in pipe.state_dict().items()}
    return {'init_kwargs': plain_data(getattr(pipe, 'init_kwargs', {})), 'state_dict': state}


def _atomic_write(path, write_fn):
    """Write through a temporary file in the same directory, then rename (never a partial file)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def snapshot_dict(G, D, G_ema, augment_pipe=None, training_set_kwargs=None, metadata=None) -> dict:
    """The plain-data snapshot `save_network_snapshot` writes (also reusable by training-state)."""
    from training import registry
    arch = registry.arch_of(G_ema)
    return {
        'format': {'name': FORMAT_NAME, 'version': FORMAT_VERSION},
        'G': network_record(G, arch), 'D': network_record(D, arch), 'G_ema': network_record(G_ema, arch),
        'augment_pipe': _augment_record(augment_pipe),
        'training_set_kwargs': plain_data(training_set_kwargs),
        'metadata': plain_data(metadata or {}),
    }


def save_network_snapshot(path, G, D, G_ema, augment_pipe=None, training_set_kwargs=None, metadata=None):
    """Write `network-snapshot-*.pt` (DESIGN.md 4.1); returns the path."""
    data = snapshot_dict(G, D, G_ema, augment_pipe, training_set_kwargs, metadata)
    return _atomic_write(path, lambda tmp: torch.save(data, tmp))


def export_safetensors(G, path, metadata=None, dtype=None):
    """Write G (usually G_ema) alone as .safetensors, its config as JSON in the header.

    `dtype` (e.g. torch.float16) stores floating-point tensors in that type to save space;
    loading casts them back to the network's own dtype.
    """
    from safetensors.torch import save_file
    record = network_record(G)
    tensors = {k: _storage_cast(v, dtype) for k, v in record['state_dict'].items()}
    header = {'format': EXPORT_FORMAT_NAME, 'format_version': str(FORMAT_VERSION),
              'arch': record['arch'], 'init_kwargs': json.dumps(record['init_kwargs']),
              'metadata': json.dumps(plain_data(metadata or {}))}
    return _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def _storage_cast(t, dtype):
    t = t.contiguous()
    return t.to(dtype) if dtype is not None and t.is_floating_point() else t


# ---------------------------------------------------------------------------------------------
# Rebuilding networks from records.

def build_network(record: dict, kind: str, source) -> torch.nn.Module:
    """Rebuild network `kind` ('G', 'D' or 'G_ema') from its record, loading the state strictly."""
    from training import registry
    if not isinstance(record, dict) or not {'arch', 'init_kwargs', 'state_dict'} <= set(record):
        raise NetworkFileError(f'{source}: {kind} is not a network record (arch, init_kwargs, state_dict).')
    arch, kwargs, state = record['arch'], record['init_kwargs'], record['state_dict']
    try:
        cls = registry.discriminator_class(arch) if kind == 'D' else registry.generator_class(arch)
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten; keep the caller's RNG
            net = cls(**kwargs)
    except Exception as exc:  # user-supplied kwargs can fail in any way inside a constructor
        raise NetworkFileError(f'{source}: cannot build {kind} ({arch}) from its init_kwargs: {_first_line(exc)}') from None
    _load_state_strict(net, state, f'{kind} ({arch})', source)
    return net.eval().requires_grad_(False)


def _load_state_strict(net, state, what, source):
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NetworkFileError(f'{source}: the state of {what} is not a dict of tensors.')
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = [f'{name} {_short(keys)}' for name, keys in
                [('missing', missing), ('unexpected', unexpected), ('wrong shape', wrong)] if keys]
    if problems:
        raise NetworkFileError(f'{source}: the weights do not match {what}: {"; ".join(problems)}.')
    net.load_state_dict(state, strict=True)


def _short(keys, limit=3):
    shown = ', '.join(keys[:limit])
    return f'[{shown}{", ..." if len(keys) > limit else ""}] ({len(keys)})'


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _build_augment_pipe(record, source):
    """AugmentPipe from `{'init_kwargs', 'state_dict'}`; the raw record if the class is absent."""
    if record is None:
        return None
    try:
        from training.augment import AugmentPipe
    except ImportError:
        return record
    try:
        pipe = AugmentPipe(**record['init_kwargs'])
    except (TypeError, ValueError, KeyError) as exc:
        raise NetworkFileError(f'{source}: cannot build the augment pipe from its init_kwargs: {_first_line(exc)}') from None
    _load_state_strict(pipe, record['state_dict'], 'the augment pipe', source)
    return pipe.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# Reading each format into records.

def _sniff(path: pathlib.Path) -> str:
    with open(path, 'rb') as f:
        head = f.read(16)
    if not head:
        raise NetworkFileError(f'{path}: the file is empty.')
    if head.startswith(b'PK\x03\x04'):
        return 'torch'
    if head[:1] == b'\x80' and len(head) >= 2 and 2 <= head[1] <= 5:
        return 'pickle'
    if len(head) >= 9 and head[8:9] == b'{' and int.from_bytes(head[:8], 'little') < (100 << 20):
        return 'safetensors'
    raise NetworkFileError(f'{path}: not a network file (expected a .pt snapshot, a .safetensors '
                           'export or a reference .pkl).')


def _read_torch(path) -> dict:
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused a class or function reference
        raise NetworkFileError(f'{path}: a PyTorch file holding pickled Python objects, which are not loaded '
                               'for safety (stylegan-toolkit snapshots hold plain data only).') from None
    except Exception as exc:  # zip errors come in many types
        raise NetworkFileError(f'{path}: not a readable PyTorch file, it may be truncated or corrupt '
                               f'({_first_line(exc)}).') from None
    fmt = data.get('format') if isinstance(data, dict) else None
    if not (isinstance(fmt, dict) and fmt.get('name') == FORMAT_NAME):
        raise NetworkFileError(f'{path}: a PyTorch file, but not a stylegan-toolkit network snapshot.')
    if fmt.get('version') != FORMAT_VERSION:
        raise NetworkFileError(f'{path}: snapshot format version {fmt.get("version")} is not supported '
                               f'(this toolkit reads version {FORMAT_VERSION}).')
    if data.get('G_ema') is None:
        raise NetworkFileError(f'{path}: the snapshot holds no G_ema.')
    return data


def _read_safetensors(path) -> dict:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework='pt', device='cpu') as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise NetworkFileError(f'{path}: cannot be read as safetensors ({_first_line(exc)}).') from None
    if header.get('format') != EXPORT_FORMAT_NAME or 'arch' not in header:
        raise NetworkFileError(f'{path}: a safetensors file without stylegan-toolkit generator metadata '
                               '(arch, init_kwargs).')
    try:
        kwargs, metadata = json.loads(header['init_kwargs']), json.loads(header.get('metadata', '{}'))
    except (KeyError, json.JSONDecodeError):
        raise NetworkFileError(f'{path}: the safetensors metadata has no valid init_kwargs JSON.') from None
    net = {'arch': header['arch'], 'init_kwargs': kwargs, 'state_dict': state}
    return {'G_ema': net, 'metadata': metadata}


def _read_reference_pickle(path) -> dict:
    """Records from a reference snapshot pickle (FORMAT.md), via the restricted unpickler."""
    try:
        with open(path, 'rb') as f:
            data = legacy_pickle.load_reference_pickle(f)
        return _reference_records(data)
    except legacy_pickle.LegacyPickleError as exc:
        raise NetworkFileError(f'{path}: refused to load reference pickle: {exc}') from None
    except (TypeError, AttributeError, KeyError, IndexError, RuntimeError) as exc:  # odd structure
        raise NetworkFileError(f'{path}: refused to load reference pickle: it is malformed '
                               f'({type(exc).__name__}: {_first_line(exc)}).') from None


def _reference_records(data) -> dict:
    if data == legacy_pickle.LEGACY_MAGIC:
        raise legacy_pickle.LegacyPickleError('it is an old-style torch.save file, not a network snapshot.')
    if isinstance(data, tuple) and len(data) == 3:
        raise legacy_pickle.LegacyPickleError('it is a TensorFlow-era StyleGAN pickle, which is not supported.')
    if not isinstance(data, dict) or not isinstance(data.get('G_ema'), legacy_pickle.PersistentObject):
        raise legacy_pickle.LegacyPickleError('it is not a StyleGAN network snapshot (no G_ema network).')
    arch = _reference_arch(data['G_ema'])
    records = {'metadata': {'source_format': 'reference-pickle'}}
    for key, expected in [('G', 'Generator'), ('G_ema', 'Generator'), ('D', 'Discriminator')]:
        obj = data.get(key)
        if obj is None:
            continue
        if not isinstance(obj, legacy_pickle.PersistentObject) or obj.class_name != expected:
            raise legacy_pickle.LegacyPickleError(f'{key} is not a reference {expected}.')
        kwargs = legacy_pickle.init_kwargs(obj)
        if expected == 'Generator':
            kwargs = _flatten_synthesis_kwargs(kwargs)
        records[key] = {'arch': arch, 'init_kwargs': kwargs, 'state_dict': legacy_pickle.module_state_dict(obj)}
    records['augment_pipe'] = _reference_augment_record(data.get('augment_pipe'))
    tsk = data.get('training_set_kwargs')
    records['training_set_kwargs'] = None if tsk is None else legacy_pickle.plain_value(tsk)
    return records


def _flatten_synthesis_kwargs(kwargs: dict) -> dict:
    """StyleGAN2-ADA-PyTorch generators take `synthesis_kwargs={...}` as one dict argument,
    where the StyleGAN3 code base (and ours) takes those options as keyword arguments."""
    nested = kwargs.get('synthesis_kwargs')
    if not isinstance(nested, dict):
        return kwargs
    flat = {k: v for k, v in kwargs.items() if k != 'synthesis_kwargs'}
    flat.update(nested)
    return flat


def _reference_arch(G) -> str:
    """Registry name of a reference generator, from its structure and kwargs (not its source)."""
    synthesis = legacy_pickle.child(G, 'synthesis')
    if synthesis is None:
        raise legacy_pickle.LegacyPickleError('its generator has no synthesis network.')
    if legacy_pickle.child(synthesis, 'input') is not None:
        kwargs = legacy_pickle.init_kwargs(G)
        radial = kwargs.get('conv_kernel') == 1 and kwargs.get('use_radial_filters', False)
        return 'stylegan3-r' if radial else 'stylegan3-t'
    if legacy_pickle.child(synthesis, 'b4') is not None:
        return 'stylegan2'
    raise legacy_pickle.LegacyPickleError('its generator is neither a StyleGAN2 nor a StyleGAN3 generator.')


def _reference_augment_record(obj):
    if obj is None:
        return None
    if not isinstance(obj, legacy_pickle.PersistentObject) or obj.class_name != 'AugmentPipe':
        raise legacy_pickle.LegacyPickleError('augment_pipe is not a reference AugmentPipe.')
    return {'init_kwargs': legacy_pickle.init_kwargs(obj), 'state_dict': legacy_pickle.module_state_dict(obj)}


def _random_records(spec: str) -> dict:
    """`random:<cfg>[@res]`: a freshly initialised small generator, seed 0."""
    from training import registry
    cfg, _, res = spec[len('random:'):].partition('@')
    if cfg not in registry.CONFIGS:
        raise NetworkFileError(f'{spec}: unknown config {cfg!r}; choose one of {", ".join(registry.CONFIGS)}.')
    overrides = dict(RANDOM_DEFAULTS)
    if res:
        if not res.isdigit() or int(res) < 4 or int(res) & (int(res) - 1):
            raise NetworkFileError(f'{spec}: the resolution after "@" must be a power of two >= 4.')
        overrides['img_resolution'] = int(res)
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream untouched
        torch.manual_seed(0)
        G = registry.create_generator(cfg, **overrides)
    return {'G_ema': network_record(G, cfg), 'metadata': {'random': spec}}


def read_records(path_or_name) -> tuple[dict, object]:
    """Raw records (no networks built yet) and the source used in messages."""
    if isinstance(path_or_name, str) and path_or_name.startswith('random:'):
        return _random_records(path_or_name), path_or_name
    path = resolve_network_path(path_or_name)
    kind = _sniff(path)
    reader = {'torch': _read_torch, 'safetensors': _read_safetensors, 'pickle': _read_reference_pickle}[kind]
    return reader(path), path


# ---------------------------------------------------------------------------------------------
# Public API.

def resolve_network_path(name_or_path) -> pathlib.Path:
    """An existing file path, or the file of a bundled model name in `models/`."""
    path = pathlib.Path(os.path.expanduser(str(name_or_path)))
    if path.is_file():
        return path
    if path.exists():
        raise NetworkFileError(f'{path}: is not a file.')
    found = bundled.find_model(str(name_or_path))
    if found is not None:
        return found
    names = bundled.model_names()
    hint = f'bundled models: {", ".join(names)}' if names else 'no bundled models are installed'
    raise NetworkFileError(f'{name_or_path}: no such file or bundled model ({hint}; '
                           'or use random:<cfg> for a randomly initialised network).')


def load_network(path_or_name, device='cpu') -> dict:
    """Load every network a file holds: dict with the keys of `RESULT_KEYS` (missing -> None)."""
    records, source = read_records(path_or_name)
    device = torch.device(device)
    result = dict.fromkeys(RESULT_KEYS)
    for kind in ('G_ema', 'G', 'D'):
        if records.get(kind) is not None:
            result[kind] = build_network(records[kind], kind, source).to(device)
    pipe = _build_augment_pipe(records.get('augment_pipe'), source)
    result['augment_pipe'] = pipe.to(device) if isinstance(pipe, torch.nn.Module) else pipe
    result['training_set_kwargs'] = copy.deepcopy(records.get('training_set_kwargs'))
    result['metadata'] = copy.deepcopy(records.get('metadata')) or {}
    return result


def load_generator(path_or_name, device='cpu') -> torch.nn.Module:
    """G_ema only, in eval mode with requires_grad False (the one inference tools use)."""
    records, source = read_records(path_or_name)
    if records.get('G_ema') is None:
        raise NetworkFileError(f'{source}: the file holds no G_ema generator.')
    return build_network(records['G_ema'], 'G_ema', source).to(torch.device(device))
