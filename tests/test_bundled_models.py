"""The bundled models in models/ (docs/bundled-models.md): each loads by name and renders seed 0
to its committed 16x16 thumbnail; each has a model card and a metrics JSON; all fit in 60 MB."""

import json
import pathlib

import numpy as np
import pytest
import torch

from tests import models_scripts
from torch_utils import bundled, network_files

MODELS = pathlib.Path(__file__).resolve().parents[1] / 'models'
METRIC_KEYS = {'fd_mobilenet', 'swd', 'eqt50k_int', 'eqt50k_frac', 'eqr50k', 'kimg', 'train_hours', 'render_fps'}
EXPECTED_ARCH = {'emoji-sg3t': 'stylegan3-t', 'emoji-sg3r': 'stylegan3-r', 'emoji-sg2f': 'stylegan2-fourier'}
# Thumbnails are box-filtered 4x4 blocks of a 64x64 render: float reordering across CPUs/ops
# backends moves a level or two; a different or broken network moves them by tens.
MAX_LEVEL_DIFF = 4


def bundled_names() -> list[str]:
    """Models committed with their thumbnail (STYLEGAN_MODELS_DIR is not consulted: test the repo)."""
    return sorted(p.name[:-len('.thumb16.png')] for p in MODELS.glob('*.thumb16.png'))


@pytest.fixture(scope='module')
def export_module():
    return models_scripts.load('export_bundled')


@pytest.mark.parametrize('name', bundled_names())
def test_renders_committed_thumbnail(name, export_module, monkeypatch):
    from PIL import Image
    monkeypatch.delenv('STYLEGAN_MODELS_DIR', raising=False)
    assert bundled.find_model(name) is not None, f'{name} is not resolvable as a bundled name'
    G = network_files.load_generator(name)
    assert network_files.network_record(G)['arch'] == EXPECTED_ARCH[name]
    assert G.img_resolution == 64 and G.img_channels == 3
    torch.manual_seed(123)  # the render must not depend on the global RNG
    got = export_module.thumbnail(G).astype(np.int16)                         # [16, 16, 3]
    want = np.asarray(Image.open(MODELS / f'{name}.thumb16.png').convert('RGB')).astype(np.int16)
    assert got.shape == want.shape == (16, 16, 3)
    assert np.abs(got - want).max() <= MAX_LEVEL_DIFF
    # A trained model is not a flat image: the thumbnail has structure (guards a blank expectation).
    assert want.std() > 10


@pytest.mark.parametrize('name', bundled_names())
def test_card_and_metrics_json(name):
    card = (MODELS / f'{name}.md').read_text()
    assert 'train_bundled.sh' in card  # the card records the exact commands
    data = json.loads((MODELS / f'{name}.json').read_text())
    assert set(data) >= METRIC_KEYS
    for key in METRIC_KEYS:
        assert data[key] is None or isinstance(data[key], (int, float)), key
    assert data['kimg'] > 0


def test_total_size_within_budget():
    total = sum(p.stat().st_size for ext in bundled.EXTENSIONS for p in MODELS.glob('*' + ext))
    assert total <= 60 * 2**20


def test_thumbnail_detects_a_different_network(export_module, monkeypatch):
    """The thumbnail comparison is sensitive: slightly perturbed weights miss the tolerance."""
    names = bundled_names()
    if not names:
        pytest.skip('no bundled model committed yet')
    monkeypatch.delenv('STYLEGAN_MODELS_DIR', raising=False)
    G = network_files.load_generator(names[0])
    base = export_module.thumbnail(G).astype(np.int16)
    with torch.no_grad():
        for p in G.parameters():
            p.mul_(1.05)  # a 5% perturbation of every weight
    assert np.abs(export_module.thumbnail(G).astype(np.int16) - base).max() > MAX_LEVEL_DIFF
