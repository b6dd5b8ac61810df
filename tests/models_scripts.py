"""Import the scripts of models/ (not a package) as modules, for the tests of the bundled models."""

import importlib.util
import pathlib

MODELS = pathlib.Path(__file__).resolve().parents[1] / 'models'


def load(name: str):
    """A fresh module object for models/<name>.py, so a test can patch it without touching others."""
    spec = importlib.util.spec_from_file_location(name, MODELS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
