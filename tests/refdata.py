"""Access to the reference test vectors in ../shared/reference (or $STYLEGAN_REFERENCE_DIR)."""

import functools
import json
import os
import pathlib

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]


def reference_dir() -> pathlib.Path:
    env = os.environ.get('STYLEGAN_REFERENCE_DIR')
    return pathlib.Path(env) if env else _REPO.parent / 'shared' / 'reference'


def require_reference() -> pathlib.Path:
    path = reference_dir()
    if not (path / 'README.md').is_file():
        pytest.skip(f'reference vectors not found at {path} (set STYLEGAN_REFERENCE_DIR)')
    return path


@functools.lru_cache(maxsize=None)
def load_json(name: str) -> dict:
    return json.loads((require_reference() / name).read_text())


@functools.lru_cache(maxsize=None)
def load_tensors(name: str) -> dict:
    from safetensors.torch import load_file
    return load_file(str(require_reference() / name))
