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


def readme_rows() -> dict[str, list[str]]:
    """{name: cells} of the README's bundled-models table."""
    rows = {}
    for line in (MODELS.parent / 'README.md').read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 9 and cells[0].strip('`') in EXPECTED_ARCH:
            rows[cells[0].strip('`')] = cells
    return rows


def test_readme_table_agrees_with_the_metrics_jsons():
    """The README's numbers are the JSONs' numbers, its EQ values are the full 50k metrics as it
    says, and its sentence on the paper's ordering (Figure 5) quotes the JSONs' differences."""
    import re
    rows = readme_rows()
    assert sorted(rows) == sorted(bundled_names())
    data = {name: json.loads((MODELS / f'{name}.json').read_text()) for name in rows}
    for name, (_, cfg, kimg, fd, swd, eqt, eqr, fps, card) in rows.items():
        d = data[name]
        assert cfg == EXPECTED_ARCH[name] and card == f'[{name}.md](models/{name}.md)'
        assert kimg == f'{d["kimg"]:.1f}', name
        assert fd == f'{d["fd_mobilenet_first"]:.0f} → {d["fd_mobilenet"]:.0f}', name
        assert swd == f'{d["swd_first"]:.0f} → {d["swd"]:.0f}', name
        assert eqt == f'{d["eqt50k_int"]:.1f} / {d["eqt50k_frac"]:.1f}', name
        assert eqr == f'{d["eqr50k"]:.1f}' and fps == f'{d["render_fps"]:.0f}', name
        assert d['eq_num_samples'] == 50000, f'{name}: the README quotes the full 50k EQ metrics'
    text = ' '.join((MODELS.parent / 'README.md').read_text().split())
    t_gain = data['emoji-sg3t']['eqt50k_int'] - data['emoji-sg2f']['eqt50k_int']
    r_gain = data['emoji-sg3r']['eqr50k'] - data['emoji-sg3t']['eqr50k']
    assert f'StyleGAN3-T is {t_gain:.1f} dB more translation-equivariant' in text
    assert f'StyleGAN3-R is {r_gain:.1f} dB more rotation-equivariant' in text
    assert t_gain >= 20 and r_gain >= 10     # issue #8's acceptance: the paper's ordering
    assert re.search(r'CPU cores \((\d+)-(\d+) kimg', text).groups() == tuple(
        f'{v:.0f}' for v in (min(d['kimg'] for d in data.values()), max(d['kimg'] for d in data.values())))
