"""Turn `--set KEY=VALUE` strings and JSON objects into RenderArgs (no GL, no torch)."""

import dataclasses
import json
import pathlib

from torch_utils.misc import parse_range, parse_vec2
from visualizer.render_args import RenderArgs

_TRUE, _FALSE = {'1', 'true', 'yes', 'on'}, {'0', 'false', 'no', 'off'}
_OPTIONAL = {'network', 'class_idx', 'trunc_cutoff', 'layer'}


def _parse_value(name: str, text: str):
    default = RenderArgs.__dataclass_fields__[name].default
    if name in _OPTIONAL and text.lower() in ('', 'none'):
        return None
    if name == 'translate':
        return parse_vec2(text)
    if name == 'stylemix_layers':
        return () if text.lower() in ('', 'none') else tuple(parse_range(text))
    if isinstance(default, bool):
        if text.lower() not in _TRUE | _FALSE:
            raise ValueError(f'{name} must be true or false, not "{text}".')
        return text.lower() in _TRUE
    if name in ('seed', 'stylemix_seed', 'noise_seed', 'channel', 'class_idx', 'trunc_cutoff'):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def apply_settings(args: RenderArgs, settings) -> RenderArgs:
    """settings: iterable of 'key=value' strings. Unknown keys and bad values are one-sentence errors."""
    changes = {}
    for item in settings:
        key, sep, value = item.partition('=')
        key = key.strip().replace('-', '_')
        if not sep or key not in RenderArgs.__dataclass_fields__:
            names = ', '.join(f.name for f in dataclasses.fields(RenderArgs))
            raise ValueError(f'"{item}" is not KEY=VALUE with KEY one of: {names}.')
        try:
            changes[key] = _parse_value(key, value.strip())
        except ValueError as error:
            raise ValueError(f'--set {item}: {error}') from None
    return args.replace(**changes)


def apply_json(args: RenderArgs, path) -> RenderArgs:
    """A JSON object of RenderArgs fields (lists become tuples)."""
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'Cannot read render arguments from {path}: {error}.') from None
    unknown = set(data) - set(RenderArgs.__dataclass_fields__)
    if not isinstance(data, dict) or unknown:
        raise ValueError(f'{path} must be a JSON object of render arguments; unknown keys: {sorted(unknown)}.')
    return args.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
