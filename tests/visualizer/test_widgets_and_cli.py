"""Widget logic, `--set` parsing, the async renderer and import hygiene (no window needed)."""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.visualizer.stub_net import load_stub
from visualizer import cli_args
from visualizer.async_renderer import AsyncRenderer
from visualizer.render_args import RenderArgs, RenderResult
from widgets.equivariance_widget import EquivarianceWidget
from widgets.latent_widget import LatentWidget, drag_latent, snap_latent
from widgets.network_widget import list_snapshots

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeApp:
    def __init__(self, args, result=None):
        self.args, self.result = args, result


def test_set_parsing():
    args = cli_args.apply_settings(RenderArgs(), ['seed=3', 'translate=0.25,-0.5', 'rotate=0.1', 'layer=L2_36_16',
                                                  'fft-show=yes', 'stylemix_layers=0-2,5', 'trunc_cutoff=none'])
    assert (args.seed, args.translate, args.rotate, args.layer) == (3, (0.25, -0.5), 0.1, 'L2_36_16')
    assert args.fft_show is True and args.stylemix_layers == (0, 1, 2, 5) and args.trunc_cutoff is None
    assert cli_args.apply_settings(args, ['layer=none']).layer is None
    for bad in ['colour=red', 'seed', 'seed=abc', 'untransform=maybe', 'translate=1']:
        with pytest.raises(ValueError):
            cli_args.apply_settings(RenderArgs(), [bad])


def test_args_json(tmp_path):
    path = tmp_path / 'args.json'
    path.write_text(json.dumps({'seed': 7, 'translate': [0.5, 0], 'untransform': True}))
    args = cli_args.apply_json(RenderArgs(), path)
    assert (args.seed, args.translate, args.untransform) == (7, (0.5, 0), True)
    path.write_text(json.dumps({'sed': 7}))
    with pytest.raises(ValueError, match='unknown keys'):
        cli_args.apply_json(RenderArgs(), path)


def test_latent_widget_animation_drag_and_snap():
    app, widget = FakeApp(RenderArgs(seed=10)), LatentWidget()
    widget.animate, widget.speed = True, 0.5
    widget.update(app, 0.5)
    assert app.args.latent_x == pytest.approx(0.25)
    assert drag_latent(app.args, 0.5, -1.0).latent_x == pytest.approx(0.75)
    snapped = snap_latent(RenderArgs(seed=10, latent_x=2.6, latent_y=-0.7))
    assert (snapped.seed, snapped.latent_x, snapped.latent_y) == (13, 0.0, -1.0)


def test_equivariance_widget_circle_rounded_to_pixels():
    result = RenderResult(img_resolution=16)
    app, widget = FakeApp(RenderArgs(), result), EquivarianceWidget()
    widget.animate_translate, widget.round_to_pixels, widget.translate_radius = True, True, 0.25
    for _ in range(5):
        widget.update(app, 0.3)
        x, y = app.args.translate
        assert (x * 16) == round(x * 16) and (y * 16) == round(y * 16)
        assert math.hypot(x, y) == pytest.approx(0.25, abs=1 / 16)
    widget.animate_rotate, widget.rotate_speed = True, 0.1
    widget.update(app, 2.0)
    assert app.args.rotate == pytest.approx(0.2)


def test_list_snapshots(tmp_path):
    (tmp_path / 'run1').mkdir()
    for name in ['run1/network-snapshot-000010.pt', 'run1/training-state.pt', 'run1/log.txt', 'net.pkl']:
        (tmp_path / name).write_text('x')
    found = [os.path.relpath(p, tmp_path) for p in list_snapshots(tmp_path)]
    assert found == ['net.pkl', 'run1/network-snapshot-000010.pt']


def test_async_renderer_in_process_latest_args_win():
    renderer = AsyncRenderer(in_process=True, loader=load_stub)
    assert renderer.poll() is None
    for seed in range(3):
        renderer.set_args(RenderArgs(network='stub', seed=seed))
    assert renderer.busy
    result = renderer.poll()
    assert result.args.seed == 2 and result.error is None and not renderer.busy
    assert renderer.poll() is None                     # nothing new requested: nothing rendered


@pytest.mark.slow
def test_async_renderer_worker_process():
    renderer = AsyncRenderer(loader=load_stub, num_threads=1)
    try:
        for seed in range(5):
            renderer.set_args(RenderArgs(network='stub', seed=seed))
        seen = []
        while renderer.busy:
            result = renderer.poll()
            if result is not None:
                seen.append(result.args.seed)
        assert seen[-1] == 4 and seen == sorted(seen)  # newest last, never an older one after a newer
        assert renderer._process.is_alive()
    finally:
        renderer.close()


def test_import_hygiene():
    """The Renderer never imports GL/imgui; widgets never import torch."""
    code = ('import sys; import visualizer.renderer; assert not {"OpenGL", "imgui_bundle", "glfw"} & set(sys.modules); '
            'import widgets; import visualizer.async_renderer')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)
    code = 'import sys, widgets, visualizer.async_renderer; assert "torch" not in sys.modules, "torch"'
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_display_exits_with_code_2():
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    result = subprocess.run([sys.executable, '-m', 'visualizer', 'random:stylegan3-t'], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count('\n') == 0 and 'xvfb-run' in result.stderr and '--offscreen' in result.stderr


def test_offscreen_without_osmesa_exits_with_one_sentence():
    """Without libOSMesa, PyOpenGL would fail deep inside its import; we say what to install."""
    code = ("import ctypes.util, runpy, sys; find = ctypes.util.find_library; "
            "ctypes.util.find_library = lambda name: None if name == 'OSMesa' else find(name); "
            "sys.argv = ['visualizer', 'random:stylegan3-t', '--offscreen', '--frames', '1']; "
            "runpy.run_module('visualizer', run_name='__main__')")
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count('\n') == 0 and 'libosmesa6' in result.stderr, result.stderr


@pytest.mark.slow
def test_offscreen_script_mode_screenshot_contains_the_image(tmp_path, tiny_sg3):
    """--offscreen needs no X server at all (GLFW null platform + OSMesa)."""
    import imageio.v3 as iio
    import numpy as np
    from visualizer.renderer import Renderer
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    shot, report = tmp_path / 'gui.png', tmp_path / 'report.json'
    cmd = [sys.executable, '-m', 'visualizer', tiny_sg3, '--offscreen', '--in-process', '--frames', '2',
           '--screenshot', str(shot), '--report', str(report), '--set', 'seed=3', '--set', 'translate=0.125,0',
           '--window-size', '800,500', '--fps-limit', '25']
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = json.loads(report.read_text())
    assert info['error'] is None and info['args']['seed'] == 3 and info['fps_limit'] == 25
    x, y, w, h = info['layout']['view_rect']
    zoom = info['layout']['zoom']
    image = iio.imread(shot)[y + zoom // 2:y + h:zoom, x + zoom // 2:x + w:zoom]
    expected = Renderer().render(RenderArgs(network=tiny_sg3, seed=3, translate=(0.125, 0))).image
    assert image.shape == expected.shape
    assert np.abs(image.astype(int) - expected).max() <= 1


def test_default_network_is_the_stylegan3_t_model(monkeypatch):
    """`python -m visualizer` without arguments opens the StyleGAN3-T bundled model, whatever
    other bundled models exist (issue #8)."""
    from torch_utils import bundled
    from visualizer import __main__ as entry
    monkeypatch.setattr(bundled, 'model_names', lambda: ['emoji-sg2f', 'emoji-sg3r', 'emoji-sg3t', 'faces-stylegan2'])
    assert entry.default_network() == ('emoji-sg3t', None)
    assert entry.bundled_models() == ['emoji-sg3t', 'emoji-sg3r', 'emoji-sg2f', 'faces-stylegan2']
    monkeypatch.setattr(bundled, 'model_names', lambda: [])
    network, notice = entry.default_network()
    assert network == entry.RANDOM_FALLBACK and 'No bundled model' in notice


def test_gui_frame_rate_cap_leaves_cpu_to_the_renderer():
    """Rendering on the CPU, the GUI draws at most 30 frames/s by default (it shares the cores
    with the render worker); on a GPU 60."""
    from visualizer.app import AppSettings, CPU_FPS_LIMIT, default_fps_limit
    assert default_fps_limit('cpu') == CPU_FPS_LIMIT == 30
    assert default_fps_limit('cuda:1') == AppSettings.fps_limit == 60
