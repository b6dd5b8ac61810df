"""python -m visualizer [NETWORK ...]: the interactive StyleGAN visualizer.

Examples:
    python -m visualizer                                   # bundled StyleGAN3 model
    python -m visualizer network-snapshot-000100.pt other.pkl --browse-dir runs/
    xvfb-run -a python -m visualizer net.pkl --frames 5 --screenshot gui.png --set seed=3
    python -m visualizer net.pkl --offscreen --frames 5 --screenshot gui.png   # no display at all
"""

import json
import pathlib
import sys

import click

from visualizer import gl_utils
from visualizer.render_args import RenderArgs

RANDOM_FALLBACK = 'random:stylegan3-t'


def _preference(name: str) -> int:
    """0 for StyleGAN3-T models (the default: translation equivariant and the fastest to render),
    1 for other StyleGAN3 models, 2 for the rest."""
    name = name.lower()
    if any(tag in name for tag in ('sg3t', 'sg3-t', 'stylegan3-t')):
        return 0
    return 1 if any(tag in name for tag in ('sg3', 'stylegan3')) else 2


def bundled_models() -> list:
    """Names of the models shipped in models/ (torch_utils.bundled), StyleGAN3-T first."""
    from torch_utils import bundled
    return sorted(bundled.model_names(), key=lambda n: (_preference(n), n))


def default_network():
    """(network, notice): the bundled StyleGAN3 model, else a random stylegan3-t with a notice."""
    models = bundled_models()
    if models:
        return models[0], None
    return RANDOM_FALLBACK, ('No bundled model found in models/: showing a randomly initialised stylegan3-t. '
                             'Pass a network file or drop one on the window.')


def _write_report(app, path) -> None:
    result = app.result
    gui = list(app.gui_frame_times)
    report = {
        'layout': app.layout, 'overlay': app.overlay_text, 'frames': app.frame_count,
        'gui_fps': len(gui) / sum(gui) if gui else 0.0, 'fps_limit': app.settings.fps_limit,
        'latency_ms': app.latency_ms,
        'args': json.loads(json.dumps(app.args.__dict__, default=list)),
        'error': result.error if result else None, 'notice': result.notice if result else None,
        'timings': result.timings if result else {}, 'layers': [l.name for l in result.layers] if result else [],
    }
    tmp = pathlib.Path(path).with_suffix('.tmp')
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)


def _run_script(app, frames: int, screenshot, save_image, report) -> None:
    app.wait_for_result()
    for _ in range(max(0, frames - 1)):
        app.step()
    if screenshot:
        gl_utils.save_png(screenshot, app.screenshot())
    if save_image and app.result is not None and app.result.image is not None:
        gl_utils.save_png(save_image, app.result.image)
    if report:
        _write_report(app, report)


@click.command(context_settings={'help_option_names': ['-h', '--help']})
@click.argument('networks', nargs=-1)
@click.option('--capture-dir', default='captures', show_default=True, help='Where "Save image" / "Save GUI" write PNGs.')
@click.option('--browse-dir', multiple=True, help='Training run directory whose snapshots the Network panel lists (repeatable).')
@click.option('--device', default='auto', show_default=True, help='Render device: auto, cpu, cuda, cuda:1, ...')
@click.option('--in-process', is_flag=True, help='Render in the GUI process instead of a worker process.')
@click.option('--render-threads', type=int, help='Torch threads of the renderer [default: cores - 1].')
@click.option('--offscreen', is_flag=True, help='No window: GLFW null platform + OSMesa (for scripts, no display needed).')
@click.option('--frames', type=int, help='Script mode: once the image for the arguments is shown, run N frames and exit.')
@click.option('--screenshot', type=click.Path(dir_okay=False), help='Script mode: save the whole GUI as PNG at the end.')
@click.option('--save-image', type=click.Path(dir_okay=False), help='Script mode: save the rendered image as PNG at the end.')
@click.option('--report', type=click.Path(dir_okay=False), help='Script mode: write layout, overlay text and timings as JSON.')
@click.option('--set', 'settings', multiple=True, metavar='KEY=VALUE', help='Set a render argument, e.g. --set seed=3 --set translate=0.25,0 (repeatable).')
@click.option('--args-json', type=click.Path(exists=True, dir_okay=False), help='Render arguments as a JSON object.')
@click.option('--window-size', default='1280,800', show_default=True, help='Initial window size W,H.')
@click.option('--fps-limit', type=click.IntRange(min=0), help='GUI frame-rate cap, 0 = none [default: the '
              'Performance panel default].')
def main(networks, capture_dir, browse_dir, device, in_process, render_threads, offscreen, frames, screenshot,
         save_image, report, settings, args_json, window_size, fps_limit):
    """Interactive StyleGAN2/StyleGAN3 visualizer: latent interpolation, style mixing, truncation,
    input translation/rotation with untransform, feature maps and power spectra, live on CPU.

    NETWORK: network files (.pt snapshots, reference .pkl, .safetensors) or names of bundled
    models; the first is opened, the others are listed as recent. Without one, the bundled
    StyleGAN3 model is opened.
    """
    script = frames is not None or screenshot or save_image or report
    try:                                    # first, so that a missing display is reported at once
        gl_utils.select_platform(offscreen)
    except gl_utils.NoDisplayError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    try:
        args, notice = _initial_args(networks, device, settings, args_json)
        width, height = _parse_size(window_size)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    from visualizer.app import VisualizerApp      # imports OpenGL: only after select_platform()
    try:
        app = VisualizerApp(args, recent=networks[1:], browse_dirs=browse_dir, bundled_models=bundled_models(),
                            capture_dir=capture_dir, in_process=in_process, offscreen=offscreen,
                            window_size=(width, height), notice=notice, render_threads=render_threads,
                            fps_limit=fps_limit)
    except gl_utils.NoDisplayError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    try:
        if script:
            _run_script(app, frames or 1, screenshot, save_image, report)
        else:
            while app.step():
                pass
    except TimeoutError as error:
        raise click.ClickException(str(error)) from None
    finally:
        app.close()


def _parse_size(text):
    try:
        width, height = (int(v) for v in text.split(','))
    except ValueError:
        raise ValueError(f'--window-size "{text}" is not W,H like 1280,800.') from None
    return width, height


def _initial_args(networks, device, settings, args_json):
    from torch_utils.misc import resolve_device    # imports torch: not needed to report a missing display
    from visualizer import cli_args
    network, notice = (networks[0], None) if networks else default_network()
    args = RenderArgs(network=network, device=str(resolve_device(device)))
    if args_json:
        args = cli_args.apply_json(args, args_json)
    return cli_args.apply_settings(args, settings), notice


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
