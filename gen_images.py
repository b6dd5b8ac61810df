"""Generate images from a trained generator, one PNG per seed.

Examples:

\b
    # Bundled model, seeds 0..3 and 7, truncation 0.7
    python gen_images.py --network emoji-sg3t --seeds 0-3,7 --trunc 0.7 --outdir out
\b
    # A reference StyleGAN3 pickle, translated and rotated input
    python gen_images.py --network network-snapshot-000100.pkl --seeds 0 --translate 0.1,-0.2 --rotate 10 --outdir out
\b
    # A randomly initialised small network (no file needed)
    python gen_images.py --network random:stylegan3-t --seeds 0-7 --outdir out

--network accepts our .pt snapshots and .safetensors exports, reference .pkl snapshots
(read safely, no code in them runs), bundled model names (files in models/) and
random:<cfg>[@res]. Latents follow the reference convention
z = np.random.RandomState(seed).randn(z_dim), so seeds match images of the reference tools.
"""

import os
import pathlib
import tempfile

import click
import PIL.Image
import torch
import tqdm

from torch_utils import gen_utils, misc, network_files


def _parse_seeds(ctx, param, value):
    try:
        return misc.parse_range(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_vec2(ctx, param, value):
    try:
        return misc.parse_vec2(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def save_png(array, path: pathlib.Path) -> None:
    """Write one uint8 HWC image through a temporary file, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        mode = 'L' if array.shape[2] == 1 else 'RGB'
        PIL.Image.fromarray(array[:, :, 0] if mode == 'L' else array, mode).save(tmp, format='PNG')
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def generate(G, seeds, *, psi=1.0, class_idx=None, noise_mode='const', batch=4, device='cpu'):
    """Yield (seed, uint8 HWC image) for each seed, `batch` seeds per forward pass."""
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = gen_utils.seeds_to_z(chunk, G.z_dim, device)                       # [B, z_dim]
        c = gen_utils.class_labels(G, class_idx, len(chunk), device)           # [B, c_dim]
        rng_devices = [device] if torch.device(device).type == 'cuda' else []
        with torch.no_grad(), torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(chunk[0])  # noise_mode='random' is reproducible per run
            img = G(z, c, truncation_psi=psi, noise_mode=noise_mode)          # [B, C, H, W]
        yield from zip(chunk, gen_utils.to_uint8(img))


@click.command(help=__doc__)
@click.option('--network', 'network', required=True, metavar='PATH|NAME',
              help='Network file (.pt, .safetensors, reference .pkl), bundled model name, or random:<cfg>[@res].')
@click.option('--seeds', callback=_parse_seeds, required=True, help='Seeds, e.g. 0-3,7.')
@click.option('--trunc', 'psi', type=float, default=1.0, show_default=True, help='Truncation psi.')
@click.option('--class', 'class_idx', type=int, default=None, help='Class label (conditional networks).')
@click.option('--noise-mode', type=click.Choice(['const', 'random', 'none']), default='const',
              show_default=True, help='Per-pixel noise (StyleGAN2; StyleGAN3 ignores it).')
@click.option('--translate', callback=_parse_vec2, default='0,0', show_default=True, metavar='X,Y',
              help='Translate the input (canvas units; StyleGAN3 / stylegan2-fourier).')
@click.option('--rotate', type=float, default=0.0, show_default=True, metavar='DEG',
              help='Rotate the input by this many degrees (StyleGAN3 / stylegan2-fourier).')
@click.option('--outdir', type=click.Path(file_okay=False, path_type=pathlib.Path), required=True,
              help='Where to save seedNNNN.png files.')
@click.option('--device', default='auto', show_default=True, help='auto, cpu, cuda or cuda:N.')
@click.option('--batch', type=click.IntRange(min=1), default=4, show_default=True, help='Seeds per forward pass.')
def main(network, seeds, psi, class_idx, noise_mode, translate, rotate, outdir, device, batch):
    try:
        device = misc.resolve_device(device)
        G = network_files.load_generator(network, device)
        gen_utils.set_input_transform(G, translate, rotate)
        gen_utils.class_labels(G, class_idx, 1)  # validate --class before any work
    except ValueError as exc:  # NetworkFileError is a ValueError
        raise click.ClickException(str(exc)) from None
    if any(s < 0 or s >= 2**32 for s in seeds):
        raise click.BadParameter('seeds must be in 0..2^32-1.', param_hint='--seeds')
    outdir.mkdir(parents=True, exist_ok=True)
    images = generate(G, seeds, psi=psi, class_idx=class_idx, noise_mode=noise_mode, batch=batch, device=device)
    for seed, array in tqdm.tqdm(images, total=len(seeds), unit='img', desc='Generating'):
        save_png(array, outdir / f'seed{seed:04d}.png')
    click.echo(f'Wrote {len(seeds)} image(s) to {outdir}')


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()  # pylint: disable=no-value-for-parameter
