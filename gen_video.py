"""Latent-interpolation videos and texture-sticking comparisons (StyleGAN3 paper, Figure 1).

Examples:

    # 2x2 grid looping through 8 seeds
    python gen_video.py --network emoji-sg3t --seeds 0-7 --grid 2x2 --output lerp.mp4

    # Texture sticking, StyleGAN2 vs StyleGAN3-T vs StyleGAN3-R:
    python gen_video.py --mode average --network emoji-sg2f --network emoji-sg3t --network emoji-sg3r --output avg.png
    python gen_video.py --mode strips  --network emoji-sg2f --network emoji-sg3t --output strips.png
    python gen_video.py --mode compare --network emoji-sg2f --network emoji-sg3t \\
        --translate-speed 0.02 --untransform --output compare.mp4
"""

import os
import pathlib

import click
import numpy as np
import torch
import tqdm

from torch_utils import gen_utils, misc, sticking
from torch_utils.latent_paths import looping_path


def _parse_grid(text):
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise click.BadParameter(f'"{text}" is not a grid size like 2x2.') from None
    if w < 1 or h < 1:
        raise click.BadParameter(f'grid {text} must be at least 1x1.')
    return w, h


def _load_all(networks, device):
    from torch_utils.network_files import load_generator
    gens = []
    for spec in networks:
        try:
            gens.append(load_generator(spec, device=device))
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
    return gens


def _labels(networks, labels):
    if labels and len(labels) != len(networks):
        raise click.BadParameter(f'got {len(labels)} --label values for {len(networks)} networks.')
    return list(labels) if labels else [pathlib.Path(str(n)).stem for n in networks]


def _check_output(path, suffixes):
    path = pathlib.Path(path)
    if path.suffix.lower() not in suffixes:
        raise click.BadParameter(f'--output must end with one of {", ".join(suffixes)}, got "{path.name}".')
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise click.ClickException(f'cannot write to {path.parent}: the folder cannot be created.') from None
    if not os.access(path.parent, os.W_OK):
        raise click.ClickException(f'cannot write to {path.parent}: permission denied.')
    return path


def _interp_video(G, seeds, shuffle_seed, grid, num_keyframes, w_frames, kind, trunc, device):
    """Frames [F, H*gh, W*gw, 3] of a looping grid animation (one seed sequence per cell)."""
    gw, gh = grid
    seeds = list(seeds)
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed).shuffle(seeds)
    if num_keyframes is None:
        if len(seeds) % (gw * gh):
            raise click.BadParameter(f'{len(seeds)} seeds do not fill a {gw}x{gh} grid evenly; give --num-keyframes.')
        num_keyframes = len(seeds) // (gw * gh)
    cells = gw * gh
    needed = num_keyframes * cells
    seeds = [seeds[i % len(seeds)] for i in range(needed)]
    ws = sticking.seeds_to_ws(G, seeds, trunc, device).reshape(num_keyframes, cells, G.num_ws, -1)
    path = looping_path(ws.cpu().numpy(), w_frames, kind)                  # [F, cells, num_ws, w_dim]
    frames = []
    for step in tqdm.tqdm(path, desc='frames', unit='frame'):
        imgs = sticking.synthesize(G, torch.from_numpy(step).float().to(device))   # [cells, H, W, 3]
        frames.append(sticking.tile(imgs, gw, gh))
    return frames


@click.command(context_settings=dict(max_content_width=100))
@click.option('--network', 'networks', multiple=True, required=True,
              help='Network file or bundled name; repeat for side-by-side comparisons.')
@click.option('--label', 'labels', multiple=True, help='Label per --network (default: file name).')
@click.option('--mode', type=click.Choice(['interp', 'average', 'strips', 'compare']), default='interp', show_default=True,
              help='interp: latent-interpolation grid video; average/strips: texture-sticking PNG panels; compare: side-by-side video.')
@click.option('--seeds', default='0-7', show_default=True, help='Seeds (e.g. 0-3,7): keyframes, or the centre seed(s) for average/strips/compare.')
@click.option('--shuffle-seed', type=int, default=None, help='Shuffle the keyframe seeds with this seed.')
@click.option('--grid', default='1x1', show_default=True, help='Grid WxH of the interp video.')
@click.option('--num-keyframes', type=int, default=None, help='Keyframes per cell (default: seeds / cells).')
@click.option('--w-frames', type=int, default=60, show_default=True, help='Frames between keyframes.')
@click.option('--kind', type=click.Choice(['cubic', 'linear']), default='cubic', show_default=True, help='Interpolation.')
@click.option('--trunc', type=float, default=1.0, show_default=True, help='Truncation psi.')
@click.option('--num-samples', type=int, default=64, show_default=True, help='average: images averaged per network.')
@click.option('--radius', type=float, default=0.25, show_default=True, help='average: size of the z neighbourhood.')
@click.option('--frames', 'num_frames', type=int, default=120, show_default=True, help='strips/compare: number of frames.')
@click.option('--axis', type=click.Choice(['column', 'row']), default='column', show_default=True, help='strips: slice direction.')
@click.option('--latent-speed', type=float, default=0.01, show_default=True, help='strips/compare: latent movement per frame (in seeds).')
@click.option('--translate-speed', type=float, default=0.0, show_default=True, help='strips/compare: input translation per frame (x, in image widths).')
@click.option('--rotate-speed', type=float, default=0.0, show_default=True, help='compare: input rotation per frame (degrees).')
@click.option('--untransform', is_flag=True, help='compare: warp each frame back by the input transform.')
@click.option('--output', required=True, type=click.Path(dir_okay=False), help='.mp4 for interp/compare, .png for average/strips.')
@click.option('--fps', type=int, default=30, show_default=True)
@click.option('--zoom', type=click.IntRange(min=1), default=1, show_default=True,
              help='Enlarge every image this many times (nearest neighbour): sharp panels of small models.')
@click.option('--device', default='auto', show_default=True, help='auto, cpu or cuda.')
def main(networks, labels, mode, seeds, shuffle_seed, grid, num_keyframes, w_frames, kind, trunc, num_samples,
         radius, num_frames, axis, latent_speed, translate_speed, rotate_speed, untransform, output, fps, zoom,
         device):
    """Generate latent-interpolation videos and texture-sticking comparisons."""
    try:
        seeds = misc.parse_range(seeds)
        device = misc.resolve_device(device)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    names = _labels(networks, labels)
    video = mode in ('interp', 'compare')
    output = _check_output(output, ['.mp4', '.mkv', '.mov', '.gif'] if video else ['.png'])
    gens = _load_all(networks, device)
    moving = translate_speed != 0 or rotate_speed != 0
    for G, name in zip(gens, names):
        if moving and not gen_utils.has_input_transform(G):
            raise click.ClickException(f'{name} has no input transform (plain StyleGAN2), so it cannot translate or '
                                       'rotate its input; use a StyleGAN3 or stylegan2-fourier network.')
    try:
        _dispatch(mode, gens, networks, names, seeds, output, fps, locals())
    except (ValueError, RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'Saved {output}')


def _dispatch(mode, gens, networks, names, seeds, output, fps, opt):
    """Produce the output of one mode; `opt` holds the remaining command-line options."""
    if mode == 'interp':
        if len(gens) != 1:
            raise click.BadParameter('--mode interp takes exactly one --network.')
        frames = _interp_video(gens[0], seeds, opt['shuffle_seed'], _parse_grid(opt['grid']), opt['num_keyframes'],
                               opt['w_frames'], opt['kind'], opt['trunc'], opt['device'])
        sticking.write_video(output, [sticking.zoom(f, opt['zoom']) for f in frames], fps)
    elif mode == 'average':
        panels = [sticking.neighbourhood_average(G, seeds[0], opt['num_samples'], opt['radius'], opt['trunc'], opt['device'])
                  for G in gens]
        sticking.write_png(output, sticking.label_panels([sticking.zoom(p, opt['zoom']) for p in panels], names))
    else:
        compare = mode == 'compare'     # strips: latent motion and translation only, never warped back
        per_net = [sticking.path_frames(net, seeds[0], opt['num_frames'], opt['latent_speed'], opt['translate_speed'],
                                        opt['rotate_speed'] if compare else 0.0, opt['untransform'] and compare,
                                        opt['trunc'], opt['device'])
                   for net in tqdm.tqdm(networks, desc='networks')]
        if compare:
            frames = [sticking.label_panels([sticking.zoom(f, opt['zoom']) for f in row], names) for row in zip(*per_net)]
            sticking.write_video(output, frames, fps)
        else:
            strips = [sticking.zoom(sticking.pixel_strip(frames, opt['axis']), opt['zoom']) for frames in per_net]
            sticking.write_png(output, sticking.label_panels(strips, names))


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
