"""Exact resume: an interrupted (SIGKILLed) and resumed run equals the uninterrupted run, bit for bit."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from tests.training.train_helpers import (REPO, TINY, flat_tensors, load_state, make_dataset, only_run_dir,
                                          run_train, train_cmd, train_env)

TOTAL_KIMG = 0.064          # 16 steps of batch 4
TICK_KIMG = 0.008           # 2 steps per tick; the state is written every tick (--snap 1)


def _common(data):
    # --aug ada with a fast ADA (p moves noticeably in 16 steps) so augmentation randomness,
    # p and the controller counters are all part of what must continue exactly.
    return ['--cfg', 'stylegan2', '--data', data, '--batch', 4, '--gamma', 1, '--aug', 'ada',
            '--ada-kimg', 0.5, '--target', 0.0, *TINY, '--tick', TICK_KIMG, '--snap', 1]


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
    """The uninterrupted reference run: its data and final training state."""
    root = tmp_path_factory.mktemp('straight')
    data = make_dataset(root / 'data')
    run_train('--outdir', root / 'runs', *_common(data), '--kimg', TOTAL_KIMG)
    return data, load_state(only_run_dir(root / 'runs'))


def _assert_same_state(expected, actual):
    assert actual['progress'] == expected['progress']
    assert actual['ada'] == expected['ada']
    a, b = flat_tensors(expected), flat_tensors(actual)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'resumed run differs in {len(different)} tensors, e.g. {different[:5]}'


def _kill_when_state_reaches(proc, outdir, min_nimg, timeout=240):
    """SIGKILL `proc` as soon as its training-state.pt is at >= min_nimg; return that nimg."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = list(outdir.glob('*/training-state.pt')) if outdir.is_dir() else []
        if runs:
            try:
                nimg = torch.load(runs[0], map_location='cpu', weights_only=True)['progress']['cur_nimg']
            except Exception:
                nimg = -1  # being replaced right now; look again
            if nimg >= min_nimg:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return nimg
        if proc.poll() is not None:
            raise AssertionError(f'training ended before it could be killed:\n{proc.stdout.read()[-2000:]}')
        time.sleep(0.02)
    proc.kill()
    raise AssertionError('timed out waiting for the training state')


@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_identical(tmp_path, straight):
    data, expected = straight
    assert float(expected['augment_pipe']['p']) > 0, 'ADA should have raised p (target 0)'
    outdir = tmp_path / 'killed'
    proc = subprocess.Popen(train_cmd('--outdir', outdir, *_common(data), '--kimg', TOTAL_KIMG), cwd=REPO,
                            env=train_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed_at = _kill_when_state_reaches(proc, outdir, min_nimg=24)
    assert killed_at < TOTAL_KIMG * 1000, 'the kill must interrupt training'
    run_dir = only_run_dir(outdir)
    run_train('--outdir', outdir, '--resume', 'latest')
    _assert_same_state(expected, load_state(run_dir))
    # stats.jsonl continues without duplicated ticks.
    ticks = [json.loads(line)['Progress/tick'] for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert ticks == list(range(expected['progress']['cur_tick']))


@pytest.mark.slow
def test_resume_with_longer_kimg_equals_straight_run(tmp_path, straight):
    """Stop via --kimg after 8 steps, then continue to 16 steps in the same run folder."""
    data, expected = straight
    run_train('--outdir', tmp_path, *_common(data), '--kimg', TOTAL_KIMG / 2)
    run_dir = only_run_dir(tmp_path)
    assert load_state(run_dir)['progress']['cur_nimg'] == 32
    # A DataLoader worker prefetches ahead of use; the data stream must still continue exactly.
    run_train('--resume', run_dir, '--kimg', TOTAL_KIMG, '--workers', 1)
    _assert_same_state(expected, load_state(run_dir))


def test_resume_with_new_learning_rates_continues_at_them(tmp_path, straight):
    """--glr / --dlr on resume (a cool-down): from the resumed step on the optimisers use the new
    rates (lr 0: G and D stay exactly as they were), and a later plain resume keeps them."""
    data, _ = straight
    run_train('--outdir', tmp_path, *_common(data), '--kimg', TOTAL_KIMG / 2)
    run_dir = only_run_dir(tmp_path)
    before = load_state(run_dir)
    proc = run_train('--resume', run_dir, '--kimg', TOTAL_KIMG * 3 / 4, '--glr', 0, '--dlr', 0)
    assert '--glr: 0.002 -> 0 from here on.' in proc.stdout and '--dlr: 0.002 -> 0' in proc.stdout
    run_train('--resume', run_dir, '--kimg', TOTAL_KIMG)      # no options: the new rates stay
    assert 'Resuming from kimg 0.048 (tick 7; G lr 0, D lr 0).' in (run_dir / 'log.txt').read_text()
    after = load_state(run_dir)
    assert after['progress']['cur_nimg'] == TOTAL_KIMG * 1000
    for net in ('G', 'D'):
        a, b = flat_tensors(before[net]), flat_tensors(after[net])
        changed = [k for k in a if not torch.equal(a[k], b[k]) and not k.endswith('w_avg')]
        assert not changed, f'{net} changed at lr 0: {changed[:3]}'  # w_avg still tracks samples
    assert (after['config']['optim']['G_lr'], after['config']['optim']['D_lr']) == (0, 0)
    assert all(group['lr'] == 0 for opt in after['optimizers'].values() for group in opt['param_groups'])


def test_resume_rejects_changed_options(tmp_path):
    run_dir = tmp_path / '00000-x'
    run_dir.mkdir()
    proc = run_train('--resume', run_dir, '--batch', 8, check=False)
    assert proc.returncode == 1
    assert '--batch cannot change when resuming' in proc.stderr
    proc = run_train('--resume', run_dir, check=False)
    assert proc.returncode == 1 and 'training-state.pt' in proc.stderr and 'Traceback' not in proc.stderr
