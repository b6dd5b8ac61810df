"""avg_spectra.py: spectra of known signals peak where they should, and every sub-command writes its file."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import avg_spectra
from torch_utils import spectra


def _sinusoid(size, fx, fy=0.0):
    y, x = np.mgrid[:size, :size]
    return np.cos(2 * np.pi * (fx * x + fy * y))


@pytest.mark.parametrize('interp', [1, 4])
def test_sinusoid_peaks_at_its_frequency(interp):
    size, freq = 32, 5 / 32                                   # 5 cycles across the image
    img = torch.from_numpy(_sinusoid(size, freq)).float()[None, None]
    power = spectra.power_spectrum(img, beta=8, interp=interp).numpy()
    cut = spectra.spectrum_slices(power)
    peak = cut['freq'][np.argmax(cut['horizontal'][1:]) + 1]  # skip DC
    assert peak == pytest.approx(freq, abs=0.5 / (size * interp))
    # Energy is along the x axis only: the vertical slice through DC is far weaker.
    centre = power.shape[0] // 2
    assert power[centre, centre + round(freq * size * interp)] > 1e3 * power[centre + round(freq * size * interp), centre]


def test_window_preserves_white_noise_power():
    torch.manual_seed(0)
    noise = torch.randn(64, 1, 32, 32)
    power = spectra.power_spectrum(noise, beta=8)
    assert power.mean().item() == pytest.approx(1.0, rel=0.05)


def _write_dataset(folder, freq, count=6, size=16):
    folder.mkdir()
    for i in range(count):
        wave = _sinusoid(size, freq) * 0.8 * (1 if i % 2 else -1)
        rgb = np.repeat(((wave + 1) * 127.5).round().astype(np.uint8)[..., None], 3, axis=2)
        Image.fromarray(rgb).save(folder / f'img{i:02d}.png')


def test_cli_stats_calc_heatmap_slices(tmp_path):
    data = tmp_path / 'data'
    _write_dataset(data, freq=4 / 16)
    runner = CliRunner()
    res = runner.invoke(avg_spectra.cli, ['stats', '--source', str(data)])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    assert abs(stats['mean']) < 0.05 and 0.4 < stats['std'] < 0.7

    npz = tmp_path / 'real.npz'
    res = runner.invoke(avg_spectra.cli, ['calc', '--source', str(data), '--dest', str(npz),
                                          '--mean', str(stats['mean']), '--std', str(stats['std']), '--interp', '2'])
    assert res.exit_code == 0, res.output
    power = np.load(npz)['spectrum']
    assert power.shape == (32, 32)
    cut = spectra.spectrum_slices(power)
    assert cut['freq'][np.argmax(cut['horizontal'][1:]) + 1] == pytest.approx(0.25, abs=1 / 32)

    png = tmp_path / 'heat.png'
    assert runner.invoke(avg_spectra.cli, ['heatmap', str(npz), '--output', str(png)]).exit_code == 0
    assert Image.open(png).size == (32, 32)
    plot = tmp_path / 'slices.png'
    res = runner.invoke(avg_spectra.cli, ['slices', str(npz), str(npz), '--label', 'a', '--label', 'b', '--output', str(plot)])
    assert res.exit_code == 0, res.output
    assert Image.open(plot).size[0] > 500


def test_cli_rejects_non_spectrum_file(tmp_path):
    bad = tmp_path / 'bad.npz'
    np.savez(bad, other=np.zeros(3))
    res = CliRunner().invoke(avg_spectra.cli, ['heatmap', str(bad), '--output', str(tmp_path / 'x.png')])
    assert res.exit_code != 0 and 'is not a spectrum file' in res.output
