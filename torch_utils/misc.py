"""Small helpers shared by the command-line tools."""

import re

import torch


def resolve_device(name: str = 'auto') -> torch.device:
    """Map a `--device` value to a torch.device; `auto` picks CUDA when available, else CPU."""
    if name in (None, '', 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {name} was requested but no CUDA device is available; use --device cpu.')
    return device


def parse_range(text) -> list[int]:
    """Parse '0-3,7' into [0, 1, 2, 3, 7]; accepts a list of ints unchanged."""
    if isinstance(text, (list, tuple)):
        return [int(v) for v in text]
    values = []
    for part in str(text).split(','):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r'(-?\d+)-(-?\d+)', part)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if hi < lo:
                raise ValueError(f'range "{part}" ends before it starts.')
            values.extend(range(lo, hi + 1))
        elif re.fullmatch(r'-?\d+', part):
            values.append(int(part))
        else:
            raise ValueError(f'"{part}" is not an integer or a range like 0-3.')
    if not values:
        raise ValueError(f'"{text}" contains no numbers.')
    return values


def parse_vec2(text) -> tuple[float, float]:
    """Parse 'a,b' into a pair of floats (e.g. `--translate 0.1,-0.2`)."""
    if isinstance(text, (list, tuple)) and len(text) == 2:
        return float(text[0]), float(text[1])
    parts = str(text).split(',')
    if len(parts) != 2:
        raise ValueError(f'"{text}" is not a pair of numbers like 0.1,-0.2.')
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f'"{text}" is not a pair of numbers like 0.1,-0.2.') from None
