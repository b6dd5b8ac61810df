"""benchmarks/generator.py times the reference forward in a child process, so that a case the
reference cannot fit in memory is reported (ref_error) instead of ending the whole run."""

import subprocess

from benchmarks import generator


def test_reference_time_runs_in_a_child_process():
    result = generator.reference_time('stylegan2', 64, 1, 1)
    assert set(result) == {'ref_s'} and 0 < result['ref_s'] < 60


def test_a_killed_reference_run_is_reported(monkeypatch):
    killed = subprocess.CompletedProcess(args=[], returncode=-9, stdout='', stderr='')
    monkeypatch.setattr(generator.subprocess, 'run', lambda *a, **k: killed)
    assert generator.reference_time('stylegan3-r', 256, 8, 1) == {'ref_error': 'killed (out of memory?)'}
    failed = subprocess.CompletedProcess(args=[], returncode=1, stdout='', stderr='Traceback\nValueError: bad')
    monkeypatch.setattr(generator.subprocess, 'run', lambda *a, **k: failed)
    assert generator.reference_time('stylegan2', 64, 1, 1) == {'ref_error': 'ValueError: bad'}
