"""The visualizer window under Xvfb: what is on screen is what the Renderer renders.

One app (render worker in a separate process, the default) is shared by the tests of this
module; each test changes the render arguments the way a widget does and reads the screen back.
"""

import os
import pickle
import shutil
import subprocess
import time

import numpy as np
import pytest

from visualizer.renderer import RenderArgs, Renderer

pytestmark = pytest.mark.gui


@pytest.fixture(scope='module')
def app(x_display, tiny_sg3):
    from visualizer import gl_utils
    gl_utils.select_platform(offscreen=False)
    from visualizer.app import VisualizerApp
    from widgets import default_widgets
    all_panels = [w.title for w in default_widgets()]          # so every widget's draw() runs
    app = VisualizerApp(RenderArgs(network=tiny_sg3), window_size=(1024, 640), open_panels=all_panels)
    app.settings.fps_limit = 0                 # tests step as fast as possible
    app.wait_for_result()
    yield app
    app.close()


@pytest.fixture(scope='module')
def renderer():
    return Renderer()


def _show(app, **changes):
    """Change the arguments like a widget does, wait until the new image is on screen, read it back."""
    app.args = app.args.replace(**changes)
    result = app.wait_for_result()
    assert result.error is None, result.error_detail
    return result, app.screenshot()


def _region(shot, layout, name='view_rect'):
    """The displayed image at its original resolution (one sample per zoomed pixel)."""
    x, y, w, h = layout[name]
    zoom = layout['zoom']
    return shot[y + zoom // 2:y + h:zoom, x + zoom // 2:x + w:zoom].astype(int)


def _assert_same(a, b, tol=1):
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= tol


def test_screen_shows_the_renderer_image(app, renderer):
    result, shot = _show(app, seed=3)
    expected = renderer.render(app.args).image
    assert app.layout['zoom'] >= 8 and app.layout['view_rect'][2] == 16 * app.layout['zoom']
    _assert_same(_region(shot, app.layout), expected)
    _assert_same(result.image, expected)
    assert app.overlay_text is None


def test_seed_psi_and_style_mix_change_the_image(app, renderer):
    _, shot3 = _show(app, seed=3)
    _, shot4 = _show(app, seed=4)
    a, b = _region(shot3, app.layout), _region(shot4, app.layout)
    assert np.abs(a - b).mean() > 2
    _, mixed = _show(app, stylemix_seed=3, stylemix_layers=(0, 1, 2))
    mixed = _region(mixed, app.layout)
    assert np.abs(mixed - b).mean() > 1
    _assert_same(mixed, renderer.render(app.args).image)
    _, p0 = _show(app, seed=4, stylemix_layers=(), trunc_psi=0.0)
    _, p1 = _show(app, seed=9, trunc_psi=0.0)
    _assert_same(_region(p0, app.layout), _region(p1, app.layout), tol=0)    # psi=0: every seed is w_avg
    _show(app, trunc_psi=1.0, seed=3)


def test_integer_translation_shifts_and_untransform_restores(app):
    _, base = _show(app, seed=3, translate=(0.0, 0.0), untransform=False)
    base = _region(base, app.layout)
    _, moved = _show(app, translate=(2 / 16, 0.0))
    moved = _region(moved, app.layout)
    assert np.abs(moved - base).mean() > 1                               # the picture changed ...
    assert np.abs(moved[:, 2:] - base[:, :-2]).max() <= 1                # ... by moving 2 px right
    _, back = _show(app, untransform=True)
    assert np.abs(_region(back, app.layout)[:, :-2] - base[:, :-2]).max() <= 2
    _, rotated = _show(app, translate=(0.0, 0.0), rotate=0.125, untransform=False)
    assert np.abs(_region(rotated, app.layout) - base).mean() > 1
    _show(app, rotate=0.0)


def test_layer_channel_and_fft_views(app, renderer):
    layers = app.result.layers
    assert [l.name for l in layers][:2] == ['input', 'L0_36_16']
    layer = layers[2]
    result, shot = _show(app, layer=layer.name, channel=1)
    c, h, w = layer.shape
    assert app.layout['view_rect'][2:] == [w * app.layout['zoom'], h * app.layout['zoom']]
    expected = renderer.render(app.args)
    _assert_same(_region(shot, app.layout), expected.layer_image)
    _, shot2 = _show(app, channel=2)
    assert np.abs(_region(shot2, app.layout) - _region(shot, app.layout)).mean() > 1
    _, rgb = _show(app, rgb=True)
    region = _region(rgb, app.layout)
    assert np.abs(region[..., 0] - region[..., 1]).mean() > 1            # colour, not grey
    assert 'spectrum_rect' not in app.layout
    _, fft = _show(app, fft_show=True)
    _assert_same(_region(fft, app.layout, 'spectrum_rect'), renderer.render(app.args).spectrum)
    _show(app, layer=None, rgb=False, fft_show=False, channel=0)


def test_animated_arguments_reach_the_worker_before_the_gui_draws(app, monkeypatch):
    """The worker renders while the GUI draws, so a render shorter than a frame is on screen by
    the next frame (sending after drawing gave 16-20 instead of 30 new images/s at a 30 FPS
    cap with the bundled model: benchmarks/visualizer.py)."""
    latent = next(w for w in app.widgets if w.title == 'Latent')
    seen, draw = [], app._draw_gui

    def recording_draw():
        seen.append((app.args, app.renderer._sent == app.args))
        draw()

    monkeypatch.setattr(app, '_draw_gui', recording_draw)
    latent.animate, latent.speed = True, 0.5
    try:
        for _ in range(5):
            app.step()
    finally:
        latent.animate = False
    assert len({args for args, _ in seen}) == 5          # the animation changed the args every frame
    assert all(sent for _, sent in seen)                   # ... and each was sent before drawing


def _write_hostile_pickle(path, marker):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    path.write_bytes(pickle.dumps({'G_ema': Exploit()}))


def test_bad_files_show_an_error_and_the_app_keeps_running(app, tmp_path, tiny_sg3):
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(os.urandom(256))
    hostile, marker = tmp_path / 'hostile.pkl', tmp_path / 'pwned'
    _write_hostile_pickle(hostile, marker)
    for path in (corrupt, hostile):
        app._on_drop(app.window, [str(path)])                 # GLFW's drop callback, as after a drop
        assert app.args.network == str(path)
        # Until its result arrives the overlay says so. (Not read from a drawn frame: on a busy
        # machine a bad file's error can come back within the first frame.)
        assert app._overlay_message()[0] == f'Loading {path} ...'
        result = app.wait_for_result()
        assert result.error and result.image is None
        assert app.overlay_text.startswith('Error: ') and str(path.name) in app.overlay_text
        shot = app.screenshot()
        x0 = app.layout.get('view_rect', [int(shot.shape[1] * 0.36)])[0] if app.layout else int(shot.shape[1] * 0.36)
        top = shot[:80, x0:]
        assert ((top[..., 0] > 200) & (top[..., 1] < 140)).sum() > 20       # red error text is drawn
    assert not marker.exists()                                          # the pickle's payload never ran
    app.load_network(tiny_sg3)
    result, _ = _show(app, seed=3)
    assert result.image is not None and app.overlay_text is None


def test_mouse_drag_with_xdotool_moves_the_latent(app):
    import glfw
    if shutil.which('xdotool') is None:
        pytest.skip('xdotool is not installed (apt install xdotool).')
    _, before = _show(app, seed=3, latent_x=0.0, latent_y=0.0)
    wid = str(glfw.get_x11_window(app.window))
    glfw.focus_window(app.window)
    x, y, w, h = app.layout['view_rect']
    steps = [['mousemove', '--window', wid, str(x + w * 3 // 4), str(y + h // 2)], ['mousedown', '1'],
             ['mousemove', '--window', wid, str(x + w // 4), str(y + h // 2)], ['mouseup', '1']]
    for step in steps:
        subprocess.run(['xdotool', *step], check=True, timeout=10)
        for _ in range(4):
            app.step()
            time.sleep(0.02)
    assert abs(app.args.latent_x - 0.5) < 0.05 and app.args.latent_y == 0.0   # half an image width = half a seed
    app.wait_for_result()
    after = _region(app.screenshot(), app.layout)
    assert np.abs(after - _region(before, app.layout)).mean() > 1
    app.args = app.args.replace(latent_x=0.0)


def test_capture_saves_image_and_gui(app, tmp_path):
    import imageio.v3 as iio
    app.settings.capture_dir = str(tmp_path)
    result, _ = _show(app, seed=3)
    app.request_capture('image')
    app.request_capture('gui')
    app.step()
    (gui,), (image,) = tmp_path.glob('*-gui.png'), tmp_path.glob('*-image.png')
    np.testing.assert_array_equal(iio.imread(image), result.image)
    assert iio.imread(gui).shape[:2] == (640, 1024)


def test_font_scales_with_window(app):
    import glfw
    from imgui_bundle import imgui
    glfw.set_window_size(app.window, 2048, 1280)
    for _ in range(5):
        app.step()
    large = imgui.get_style().font_scale_main
    glfw.set_window_size(app.window, 1024, 640)
    for _ in range(5):
        app.step()
    assert large > 1.5 * imgui.get_style().font_scale_main


def test_switch_to_in_process_rendering(app, renderer):
    app.renderer.set_in_process(True)
    result, shot = _show(app, seed=6)
    assert app.renderer._process is None
    _assert_same(_region(shot, app.layout), renderer.render(app.args).image)


def test_escape_quits(app):
    import glfw
    if shutil.which('xdotool') is None:
        pytest.skip('xdotool is not installed (apt install xdotool).')
    glfw.focus_window(app.window)
    subprocess.run(['xdotool', 'key', '--window', str(glfw.get_x11_window(app.window)), 'Escape'], check=True, timeout=10)
    for _ in range(20):
        if not app.step():
            break
        time.sleep(0.02)
    assert glfw.window_should_close(app.window)
