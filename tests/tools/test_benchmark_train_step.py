"""benchmarks/train_step.py: the amortised step formula and one real (tiny) run of the CLI."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from benchmarks import train_step

REPO = Path(__file__).resolve().parents[2]


def test_amortised_step_spreads_the_lazy_phases_over_their_intervals():
    timings = {'t_main': 1.0, 't_G': 2.0, 't_all': 4.0}
    stylegan2 = types.SimpleNamespace(G_reg_interval=4, D_reg_interval=16)
    assert train_step.amortised_step(timings, stylegan2) == pytest.approx(1 + 1 / 4 + 2 / 16)
    # StyleGAN3 has no G regularisation phase: t_G is not a separate kind of step.
    stylegan3 = types.SimpleNamespace(G_reg_interval=None, D_reg_interval=16)
    assert train_step.amortised_step(timings, stylegan3) == pytest.approx(1 + 3 / 16)


def test_main_only_run_reports_both_backends_side_by_side():
    cmd = [sys.executable, 'benchmarks/train_step.py', '--cfgs', 'stylegan2', '--configs', 'tiny',
           '--main-only', '--threads', '1']
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line['cfg'] == 'stylegan2' and line['config'] == 'tiny' and line['main_only'] is True
    for impl in ('native', 'ref'):
        steps = line[f'{impl}_steps']
        assert set(steps) == {'warmup', 't_main', 'dense_main'}            # no regularisation steps
        assert line[f'{impl}_s_per_kimg'] == pytest.approx(steps['t_main'] * 1000 / train_step.BATCH, rel=1e-2)
    assert line['speedup'] == pytest.approx(line['ref_s_per_kimg'] / line['native_s_per_kimg'])
    assert line['speedup_limit'] == pytest.approx(line['ref_steps']['t_main'] / line['native_steps']['dense_main'],
                                                  rel=1e-2)
    assert 0 < line['peak_rss_gb'] < 8 and 'native_error' not in line and 'ref_error' not in line
