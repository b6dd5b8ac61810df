"""gen_video.py: latent videos and the texture-sticking tools on tiny random networks."""

import imageio
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import gen_video
from torch_utils import gen_utils, sticking
from torch_utils.latent_paths import looping_path
from torch_utils.network_files import load_generator

SG3 = 'random:stylegan3-t@16'
SG2 = 'random:stylegan2@16'


def _run(*args):
    return CliRunner().invoke(gen_video.main, [str(a) for a in args] + ['--device', 'cpu'])


def _read_video(path):
    with imageio.get_reader(path) as reader:
        return [frame for frame in reader]


def test_looping_path_visits_keyframes_and_closes():
    keys = np.random.RandomState(0).randn(4, 3, 5)
    for kind in ('linear', 'cubic'):
        path = looping_path(keys, 6, kind)
        assert path.shape == (24, 3, 5)
        np.testing.assert_allclose(path[::6], keys, atol=1e-12)
        # The step from the last frame back to the first is as small as a regular step.
        steps = np.linalg.norm(np.diff(np.concatenate([path, path[:1]]), axis=0).reshape(24, -1), axis=1)
        assert steps[-1] < 2 * np.median(steps)


def test_interp_video_has_expected_frames_and_size(tmp_path):
    out = tmp_path / 'lerp.mp4'
    res = _run('--network', SG3, '--seeds', '0-3', '--grid', '2x1', '--w-frames', '2', '--output', out)
    assert res.exit_code == 0, res.output
    frames = _read_video(out)
    assert len(frames) == 2 * 2                      # 2 keyframes per cell x 2 frames per keyframe
    assert frames[0].shape == (16, 32, 3)


def test_average_of_identical_neighbourhood_is_the_image():
    G = load_generator(SG3, device='cpu')
    avg = sticking.neighbourhood_average(G, seed=5, num_samples=3, radius=0.0, trunc=1.0, device='cpu')
    with torch.no_grad():
        img = G(gen_utils.seeds_to_z([5], G.z_dim), None, noise_mode='const')
    expected = sticking.to_rgb_uint8(img)[0]
    assert np.abs(avg.astype(int) - expected.astype(int)).max() <= 1
    wide = sticking.neighbourhood_average(G, seed=5, num_samples=3, radius=1.0, trunc=1.0, device='cpu')
    assert np.abs(wide.astype(int) - expected.astype(int)).max() > 1


def test_strip_of_moving_bar_is_a_diagonal():
    size, num = 8, 8
    frames = []
    for f in range(num):
        frame = np.zeros((size, size, 3), np.uint8)
        for y in range(size):
            frame[y, (f + y) % size] = 255                # a slanted bar moving right by 1 px/frame
        frames.append(frame)
    strip = sticking.pixel_strip(frames, 'column')
    assert strip.shape == (size, num, 3)
    bright = np.argwhere(strip[..., 0] == 255)            # (y, frame) pairs with x == size // 2
    assert all((f + y) % size == size // 2 for y, f in bright) and len(bright) == num
    assert sticking.pixel_strip(frames, 'row').shape == (num, size, 3)


def test_strips_and_average_panels(tmp_path):
    strips = tmp_path / 'strips.png'
    res = _run('--mode', 'strips', '--network', SG3, '--network', SG3, '--label', 'a', '--label', 'b',
               '--frames', '6', '--translate-speed', '0.05', '--output', strips)
    assert res.exit_code == 0, res.output
    assert Image.open(strips).size == (6 + 4 + 6, 16 + 14)
    avg = tmp_path / 'avg.png'
    res = _run('--mode', 'average', '--network', SG3, '--num-samples', '4', '--output', avg)
    assert res.exit_code == 0, res.output
    assert Image.open(avg).size == (16, 30)


def test_zoom_enlarges_panels_by_pixel_replication(tmp_path):
    plain, zoomed = tmp_path / 'avg1.png', tmp_path / 'avg3.png'
    for path, extra in ((plain, []), (zoomed, ['--zoom', '3'])):
        res = _run('--mode', 'average', '--network', SG3, '--num-samples', '4', '--output', path, *extra)
        assert res.exit_code == 0, res.output
    small = np.asarray(Image.open(plain))[14:]           # below the 14-pixel label row
    big = np.asarray(Image.open(zoomed))
    assert big.shape == (16 * 3 + 14, 16 * 3, 3)
    assert np.array_equal(big[14:], np.repeat(np.repeat(small, 3, axis=0), 3, axis=1))


def test_compare_video_untransform_keeps_integer_shift_still(tmp_path):
    out = tmp_path / 'cmp.mp4'
    res = _run('--mode', 'compare', '--network', SG3, '--frames', '3', '--latent-speed', '0',
               '--translate-speed', '0.0625', '--untransform', '--output', out)   # one pixel per frame
    assert res.exit_code == 0, res.output
    frames = _read_video(out)
    assert len(frames) == 3
    # Without untransform the content moves; with it, the frames agree away from the border.
    moved = sticking.path_frames(SG3, 0, 3, 0.0, 0.0625, 0.0, False, 1.0, 'cpu')
    still = sticking.path_frames(SG3, 0, 3, 0.0, 0.0625, 0.0, True, 1.0, 'cpu')
    inner = (slice(3, -3), slice(3, -3))
    diff_moved = np.abs(moved[2][inner].astype(int) - moved[0][inner].astype(int)).mean()
    diff_still = np.abs(still[2][inner].astype(int) - still[0][inner].astype(int)).mean()
    assert diff_still < 0.5 * diff_moved


def test_clear_errors(tmp_path):
    res = _run('--mode', 'compare', '--network', SG2, '--translate-speed', '0.1', '--output', tmp_path / 'x.mp4')
    assert res.exit_code != 0 and 'no input transform' in res.output
    res = _run('--network', SG3, '--output', tmp_path / 'x.png')
    assert res.exit_code != 0 and '--output must end with' in res.output
    res = _run('--network', SG3, '--output', '/proc/forbidden/x.mp4')
    assert res.exit_code == 1 and 'cannot write to /proc/forbidden' in res.output
    res = _run('--network', 'no-such-file.pt', '--output', tmp_path / 'y.mp4')
    assert res.exit_code != 0 and 'no-such-file' in res.output


def test_missing_ffmpeg_is_one_clear_error(tmp_path, monkeypatch):
    def no_ffmpeg(*args, **kwargs):
        raise RuntimeError('No ffmpeg exe could be found.')
    monkeypatch.setattr(imageio, 'get_writer', no_ffmpeg)
    out = tmp_path / 'v.mp4'
    res = _run('--network', SG3, '--seeds', '0', '--w-frames', '1', '--output', out)
    assert res.exit_code == 1 and 'install imageio-ffmpeg or ffmpeg' in res.output
    assert not out.exists() and not list(tmp_path.iterdir())      # nothing half-written is left
