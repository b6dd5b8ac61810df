"""Bundled model names -> files in the repository's `models/` directory.

A bundled model `<name>` is any `models/<name>.pt`, `.safetensors` or `.pkl` file; no list is
hard-coded, so adding a model file makes its name usable everywhere (`--network emoji-sg3t`).
`$STYLEGAN_MODELS_DIR` points elsewhere (e.g. for tests or an installed copy).
"""

import os
import pathlib
import re

EXTENSIONS = ('.pt', '.safetensors', '.pkl')   # preference order when several exist
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


def models_dir() -> pathlib.Path:
    env = os.environ.get('STYLEGAN_MODELS_DIR')
    return pathlib.Path(env) if env else pathlib.Path(__file__).resolve().parents[1] / 'models'


def model_names() -> list[str]:
    """Names of all bundled models, sorted."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted({p.name[:-len(ext)] for p in root.iterdir() for ext in EXTENSIONS
                   if p.is_file() and p.name.endswith(ext)})


def find_model(name: str):
    """The file of bundled model `name` (with or without extension), or None."""
    if not _NAME.fullmatch(name):
        return None  # paths and odd strings are never looked up in models/
    root = models_dir()
    candidates = [root / name] if name.endswith(EXTENSIONS) else [root / (name + ext) for ext in EXTENSIONS]
    return next((p for p in candidates if p.is_file()), None)
