"""train.py end to end (in-process through click): every cfg trains, writes its files, reloads;
bad inputs give one clear sentence."""

import json
import math

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import train
from tests.training.train_helpers import TINY, make_dataset, only_run_dir
from torch_utils import network_files
from training.config import CFG_NAMES


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield
    torch.use_deterministic_algorithms(False)   # training runs in-process may switch it on


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp('data') / 'imgs', labels=True)


def invoke(*args):
    return CliRunner().invoke(train.main, [str(a) for a in args])


def tiny_run(outdir, data, cfg, *extra, kimg=0.016):
    """4 steps of batch 4 in ticks of 2 steps, ADA on, snapshot every tick."""
    result = invoke('--outdir', outdir, '--cfg', cfg, '--data', data, '--batch', 4, '--gamma', 1,
                    '--ada-kimg', 0.5, *TINY, '--kimg', kimg, '--tick', 0.008, '--snap', 1, *extra)
    assert result.exit_code == 0, f'{result.output[-3000:]}\n{result.exception!r}'
    return only_run_dir(outdir)


@pytest.mark.parametrize('cfg', CFG_NAMES)
def test_each_cfg_trains_a_few_ticks(tmp_path, data, cfg):
    extra = ('--cond', 'True') if cfg == 'stylegan3-t' else ()
    run_dir = tiny_run(tmp_path, data, cfg, *extra)
    for name in ('training_options.json', 'log.txt', 'reals.png', 'fakes_init.png', 'fakes000000.png',
                 'network-snapshot-000000.pt', 'training-state.pt', 'stats.jsonl'):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob('*.tmp*')), 'no temporary files may remain'
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['training_set_kwargs']['resolution'] == 16
    assert options['training_set_kwargs']['use_labels'] == bool(extra)

    records = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    assert [r['Progress/tick'] for r in records] == [0, 1, 2]
    expected_losses = {'Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake', 'Loss/r1_penalty'}
    if cfg.startswith('stylegan2'):
        expected_losses.add('Loss/pl_penalty')  # path-length regularisation is StyleGAN2-only
    seen = set().union(*records)
    assert expected_losses <= seen, expected_losses - seen
    assert all(math.isfinite(v) for r in records for k, v in r.items() if k.startswith('Loss/'))
    log = (run_dir / 'log.txt').read_text()
    assert 'tick 2' in log and 'sec/kimg' in log and 'augment' in log

    nets = network_files.load_network(run_dir / 'network-snapshot-000000.pt')
    G = nets['G_ema']
    assert network_files.load_network(run_dir / 'network-snapshot-000000.pt')['D'] is not None
    c = torch.eye(G.c_dim)[:2] if G.c_dim else None
    img = G(torch.randn([2, G.z_dim]), c)
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
    # Training moved the weights: G differs from the EMA copy that lags behind it.
    assert any(not torch.equal(a, b) for a, b in zip(nets['G'].parameters(), G.parameters()))
    with PIL.Image.open(run_dir / 'fakes000000.png') as im:
        assert im.size[0] % 16 == 0 and im.size[1] % 16 == 0


def test_metrics_are_computed_at_every_snapshot(tmp_path, data):
    """--metrics during training: each snapshot appends one line per metric to metric-<name>.jsonl
    (here with 16 generated images, --metrics-num-gen) and the log prints the value."""
    run_dir = tiny_run(tmp_path, data, 'stylegan3-t', '--metrics', 'swd,eqt50k_int', '--metrics-num-gen', 16)
    for name in ('swd', 'eqt50k_int'):
        lines = [json.loads(line) for line in (run_dir / f'metric-{name}.jsonl').read_text().splitlines()]
        # Snapshots at ticks 0, 1, 2 (all below 1 kimg, hence all named ...000000.pt).
        assert [(r['snapshot'], r['num_gen']) for r in lines] == [('network-snapshot-000000.pt', 16)] * 3
        values = [r['results'][name] for r in lines]
        assert all(math.isfinite(v) and v > 0 for v in values), values
    assert 'eqt50k_int' in (run_dir / 'log.txt').read_text()
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert options['metrics'] == ['swd', 'eqt50k_int'] and options['metrics_num_gen'] == 16


def test_transfer_copies_weights_and_checks_shapes(tmp_path, data):
    source = tiny_run(tmp_path / 'a', data, 'stylegan2', '--aug', 'noaug', kimg=0.004)
    snapshot = source / 'network-snapshot-000000.pt'
    # lr 0: the new run must hold exactly the transferred weights after its step.
    run_dir = tiny_run(tmp_path / 'b', data, 'stylegan2', '--aug', 'noaug', '--transfer', snapshot,
                       '--glr', 0, '--dlr', 0, kimg=0.004)
    src = torch.load(snapshot, weights_only=True)
    state = torch.load(run_dir / 'training-state.pt', weights_only=True)
    for net in ('G', 'D'):
        for key, value in src[net]['state_dict'].items():
            if not key.endswith('w_avg'):  # the running average still tracks new samples
                assert torch.equal(state[net]['state_dict'][key], value), (net, key)
    result = invoke('--outdir', tmp_path / 'c', '--cfg', 'stylegan2', '--data', data, '--batch', 4,
                    '--gamma', 1, *TINY[:2], '--cmax', 16, *TINY[4:], '--transfer', snapshot, '--kimg', 0.004)
    assert result.exit_code == 1
    assert 'does not match the network' in result.output and 'Traceback' not in result.output


def test_transfer_d_takes_d_from_its_own_file(tmp_path, data):
    """--transfer A --transfer-d B: G and G_ema from A, D from B (lr 0, so the state holds them)."""
    g_source = tiny_run(tmp_path / 'a', data, 'stylegan2', '--aug', 'noaug', '--seed', 1, kimg=0.004)
    d_source = tiny_run(tmp_path / 'b', data, 'stylegan2', '--aug', 'noaug', '--seed', 2, kimg=0.004)
    g_file, d_file = g_source / 'network-snapshot-000000.pt', d_source / 'network-snapshot-000000.pt'
    run_dir = tiny_run(tmp_path / 'c', data, 'stylegan2', '--aug', 'noaug', '--transfer', g_file,
                       '--transfer-d', d_file, '--glr', 0, '--dlr', 0, kimg=0.004)
    state = torch.load(run_dir / 'training-state.pt', weights_only=True)
    g_src, d_src = (torch.load(f, weights_only=True) for f in (g_file, d_file))
    assert _changed(g_src['D']['state_dict'], d_src['D']['state_dict'])     # the seeds give two Ds
    assert not _changed(d_src['D']['state_dict'], state['D']['state_dict'])
    for net in ('G', 'G_ema'):
        assert not _changed(g_src[net]['state_dict'], state[net]['state_dict']), net
    assert json.loads((run_dir / 'training_options.json').read_text())['transfer_d'] == str(d_file)

    # A G_ema-only file (a bundled model's format) has no D to give: one sentence.
    g_only = tmp_path / 'g_only.safetensors'
    network_files.export_safetensors(network_files.load_generator(g_file), g_only)
    result = invoke('--outdir', tmp_path / 'd', '--cfg', 'stylegan2', '--data', data, '--batch', 4,
                    '--gamma', 1, *TINY, '--transfer', g_file, '--transfer-d', g_only, '--kimg', 0.004)
    assert result.exit_code == 1, result.output
    assert f'{g_only} contains no discriminator to transfer.' in result.output
    assert 'Traceback' not in result.output


def _changed(before: dict, after: dict) -> set:
    """Names of the weights that differ (w_avg is a running mean of samples, not a weight)."""
    return {key for key, value in before.items() if not key.endswith('w_avg') and not torch.equal(after[key], value)}


def test_d_warmup_trains_only_d_first(tmp_path, data):
    """--d-warmup 0.008 (2 steps of batch 4): G and G_ema hold the transferred weights while D
    learns; the steps after it train G too."""
    source = tiny_run(tmp_path / 'a', data, 'stylegan2', '--aug', 'noaug', kimg=0.004)
    src = torch.load(source / 'network-snapshot-000000.pt', weights_only=True)
    warm = ('--aug', 'noaug', '--transfer', source / 'network-snapshot-000000.pt', '--d-warmup', 0.008)
    during = torch.load(tiny_run(tmp_path / 'b', data, 'stylegan2', *warm, kimg=0.008) / 'training-state.pt',
                        weights_only=True)
    assert during['progress']['cur_nimg'] == 8
    for net in ('G', 'G_ema'):
        assert not _changed(src[net]['state_dict'], during[net]['state_dict']), net
    assert _changed(src['D']['state_dict'], during['D']['state_dict'])
    after_dir = tiny_run(tmp_path / 'c', data, 'stylegan2', *warm, kimg=0.016)
    after = torch.load(after_dir / 'training-state.pt', weights_only=True)
    for net in ('G', 'G_ema'):
        assert _changed(src[net]['state_dict'], after[net]['state_dict']), net
    assert json.loads((after_dir / 'training_options.json').read_text())['d_warmup_kimg'] == 0.008


def _widest_conv(state_dict) -> int:
    return max(v.shape[0] for v in state_dict.values() if v.ndim == 4)


def test_d_width_options_change_only_d(tmp_path, data):
    run_dir = tiny_run(tmp_path, data, 'stylegan2', '--d-cbase', 128, '--d-cmax', 8, kimg=0.004)
    state = torch.load(run_dir / 'network-snapshot-000000.pt', weights_only=True)
    assert _widest_conv(state['D']['state_dict']) == 8      # D: min(128 / res, 8) channels
    assert _widest_conv(state['G']['state_dict']) == 32     # G keeps --cmax 32 of TINY
    assert _widest_conv(state['G_ema']['state_dict']) == 32
    options = json.loads((run_dir / 'training_options.json').read_text())
    assert (options['network']['d_cbase'], options['network']['d_cmax']) == (128, 8)


def _error_of(*args) -> str:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert 'Traceback' not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(lines) == 1, result.output
    return lines[0]


def test_bad_inputs_give_one_sentence(tmp_path, data):
    common = ['--outdir', tmp_path / 'runs', '--batch', 4, '--gamma', 1, *TINY]
    assert 'does not exist' in _error_of(*common, '--cfg', 'stylegan2', '--data', tmp_path / 'missing')
    assert "unknown --cfg 'stylegan4'" in _error_of(*common, '--cfg', 'stylegan4', '--data', data)

    unlabelled = make_dataset(tmp_path / 'unlabelled', num=8)
    assert '--cond was given but' in _error_of(*common, '--cfg', 'stylegan2', '--data', unlabelled, '--cond', 'True')

    mixed = make_dataset(tmp_path / 'mixed', num=8)
    PIL.Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(mixed / 'big.png')
    msg = _error_of(*common, '--cfg', 'stylegan2', '--data', mixed)
    assert 'big.png' in msg and '32x32' in msg

    odd = make_dataset(tmp_path / 'odd', num=8, res=24)
    assert 'not a power of two' in _error_of(*common, '--cfg', 'stylegan2', '--data', odd)

    corrupt = make_dataset(tmp_path / 'corrupt', num=8)
    (corrupt / 'img000.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    assert 'img000.png' in _error_of(*common, '--cfg', 'stylegan2', '--data', corrupt)

    assert 'multiple of --gpus' in _error_of(*common[:2], '--batch', 5, '--gpus', 2, '--gamma', 1,
                                              '--cfg', 'stylegan2', '--data', data)
    assert "unknown metric 'fid1'" in _error_of(*common, '--cfg', 'stylegan2', '--data', data, '--metrics', 'fid1')
    assert '--data is required' in _error_of('--outdir', tmp_path, '--cfg', 'stylegan2', '--batch', 4, '--gamma', 1)
    assert not (tmp_path / 'runs').exists(), 'failed starts must not leave run folders behind'


def test_dry_run_prints_options_and_writes_nothing(tmp_path, data):
    result = invoke('--outdir', tmp_path / 'runs', '--cfg', 'stylegan3-r', '--data', data, '--batch', 8,
                    '--gamma', 2, '--dry-run')
    assert result.exit_code == 0, result.output
    assert '"blur_init_sigma": 10.0' in result.output and '"channel_base"' not in result.output
    assert '"cbase": 32768' in result.output and 'Dry run' in result.output
    assert not (tmp_path / 'runs').exists()
