"""Visualizer speed: render FPS, GUI FPS while the worker renders continuously, and latency.

Prints JSON lines with `network`, `mode`, `gui_fps`, `render_fps`, `latency_ms` (and details).
Default network: a 64x64 stylegan3-t (14 layers, channel_base 512, channel_max 16, random
weights), small enough to render at >= 20 FPS on one CPU core, or
pass --network (e.g. a bundled model). Uses the X display when there is one, else --offscreen. `*_cpu_ms` are CPU times per frame of
the measuring process (GUI: including the software GL threads), which stay meaningful when
other jobs share the cores and wall-clock FPS do not.

    python benchmarks/visualizer.py                     # default small SG3-T
    python benchmarks/visualizer.py --network models/<bundled>.pt --seconds 20
"""

import json
import os
import statistics
import sys
import tempfile
import time

import click

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def make_network(path, res, cbase, cmax, layers) -> str:
    import torch
    from torch_utils import network_files
    from training import registry
    torch.manual_seed(0)
    G = registry.create_generator('stylegan3-t', img_resolution=res, channel_base=cbase, channel_max=cmax,
                                  num_layers=layers)
    network_files.export_safetensors(G, path)
    return path


def bench_renderer(network, frames, threads) -> dict:
    """Render FPS of the Renderer alone (in this process), seed changing every frame."""
    import torch
    from visualizer.renderer import RenderArgs, Renderer
    torch.set_num_threads(threads)
    renderer, args = Renderer(), RenderArgs(network=network)
    first = renderer.render(args)
    if first.error:
        raise click.ClickException(first.error)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(frames):
        renderer.render(args.replace(latent_x=i / frames))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU time per frame tells what the machine can do even when other jobs share the cores.
    return {'render_fps': frames / elapsed, 'render_ms': 1000 * elapsed / frames,
            'render_cpu_ms': 1000 * cpu / frames, 'threads': threads}


def bench_gui(network, seconds, offscreen, threads, fps_limit=None) -> dict:
    """GUI FPS with the latent animating (new args every frame) and the worker rendering; call
    gl_utils.select_platform(offscreen) first."""
    from visualizer.app import VisualizerApp
    from visualizer.render_args import RenderArgs
    app = VisualizerApp(RenderArgs(network=network), offscreen=offscreen, render_threads=threads,
                        fps_limit=fps_limit)
    try:
        app.wait_for_result(timeout=300)
        latent = next(w for w in app.widgets if w.title == 'Latent')
        latent.animate, latent.speed = True, 0.5
        frames, results, latencies = 0, 0, []
        last = app.result
        start, cpu_start = time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            app.step()
            frames += 1
            if app.result is not last:
                last, results = app.result, results + 1
                latencies.append(app.latency_ms)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        latent.animate = False
        render_ms = statistics.median(app.render_frame_times) if app.render_frame_times else float('nan')
        return {'gui_fps': frames / elapsed, 'gui_cpu_ms': 1000 * cpu / frames, 'render_fps': results / elapsed, 'worker_render_ms': render_ms,
                'latency_ms': statistics.median(latencies) if latencies else float('nan'),
                'latency_frames': (statistics.median(latencies) / render_ms) if latencies else float('nan'),
                'fps_limit': app.settings.fps_limit, 'threads': app.renderer.num_threads}
    finally:
        app.close()


@click.command()
@click.option('--network', help='Network to benchmark [default: a generated 64x64 stylegan3-t].')
@click.option('--res', default=64, show_default=True)
@click.option('--cbase', default=512, show_default=True, help='channel_base of the generated network.')
@click.option('--cmax', default=16, show_default=True, help='channel_max of the generated network.')
@click.option('--layers', default=14, show_default=True, help='num_layers of the generated network.')
@click.option('--frames', default=20, show_default=True, help='Frames of the renderer-only measurement.')
@click.option('--seconds', default=15.0, show_default=True, help='Duration of the GUI measurement.')
@click.option('--offscreen/--display', default=None, help='Force offscreen (OSMesa) or the X display.')
@click.option('--threads', type=int, help='Torch threads of the renderer [default: cores - 1].')
@click.option('--fps-limit', type=click.IntRange(min=0), help="GUI frame-rate cap [default: the app's].")
def main(network, res, cbase, cmax, layers, frames, seconds, offscreen, threads, fps_limit):
    from visualizer import gl_utils
    from visualizer.async_renderer import default_render_threads
    threads = threads or default_render_threads()
    if offscreen is None:
        offscreen = not gl_utils.display_available()
    try:                        # first, so that a missing display or OSMesa is reported before any work
        gl_utils.select_platform(offscreen)
    except gl_utils.NoDisplayError as error:
        raise click.ClickException(str(error)) from None
    with tempfile.TemporaryDirectory() as tmp:
        name = network or f'stylegan3-t {res}px cbase={cbase} cmax={cmax} layers={layers}'
        path = network or make_network(os.path.join(tmp, 'bench.safetensors'), res, cbase, cmax, layers)
        line = {'network': name, 'mode': 'renderer', **bench_renderer(path, frames, threads)}
        print(json.dumps(line), flush=True)
        line = {'network': name, 'mode': 'gui+worker', 'offscreen': offscreen, **bench_gui(path, seconds, offscreen, threads, fps_limit)}
        print(json.dumps(line), flush=True)


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
