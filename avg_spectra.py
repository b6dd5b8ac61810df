"""Spectral analysis of datasets and generators (StyleGAN3 paper, Figures 2 and 13).

    python avg_spectra.py stats   --source data.zip
    python avg_spectra.py calc    --source data.zip --dest real.npz --mean M --std S
    python avg_spectra.py calc    --source emoji-sg3t --dest fake.npz --mean M --std S --num 1000
    python avg_spectra.py heatmap real.npz --output real.png
    python avg_spectra.py slices  real.npz fake.npz --output slices.png
"""

import json
import os
import pathlib

import click
import numpy as np
import torch
import tqdm

from torch_utils import misc, spectra


def _is_dataset(source: str) -> bool:
    path = pathlib.Path(source)
    return path.is_dir() or path.suffix.lower() == '.zip'


def _dataset_batches(source, num, batch):
    """Yield float image batches in [-1, 1] from a dataset folder or zip."""
    from training.dataset import ImageFolderDataset
    dataset = ImageFolderDataset(source)
    count = len(dataset) if num is None else min(num, len(dataset))
    for start in range(0, count, batch):
        images = np.stack([dataset[i][0] for i in range(start, min(start + batch, count))])
        yield torch.from_numpy(images).float() / 127.5 - 1


def _generator_batches(source, num, batch, device, trunc):
    """Yield generated image batches for seeds 0..num-1 (z drawn as gen_images.py does)."""
    from torch_utils import gen_utils
    from torch_utils.network_files import load_generator
    G = load_generator(source, device=device)
    if G.c_dim:
        raise click.ClickException('spectra of conditional generators are not supported; use a dataset instead.')
    num = 1000 if num is None else num
    for start in range(0, num, batch):
        seeds = range(start, min(start + batch, num))
        z = torch.stack([gen_utils.seed_to_z(s, G.z_dim) for s in seeds]).to(device)
        with torch.no_grad():
            yield G(z, None, truncation_psi=trunc, noise_mode='const').cpu()


def _batches(source, num, batch, device, trunc):
    try:
        if _is_dataset(source):
            yield from _dataset_batches(source, num, batch)
        else:
            yield from _generator_batches(source, num, batch, misc.resolve_device(device), trunc)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _total(source, num):
    if _is_dataset(source) or num is not None:
        return num
    return 1000


def _save_atomic(path: pathlib.Path, write):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp' + path.suffix)
    write(tmp)
    os.replace(tmp, path)


source_option = click.option('--source', required=True, help='Dataset (folder or zip) or network (file or bundled name).')
num_option = click.option('--num', type=int, default=None, help='Number of images (default: whole dataset, or 1000 generated).')
device_option = click.option('--device', default='auto', show_default=True, help='auto, cpu or cuda.')


@click.group()
def cli():
    """Average power spectra of datasets and generators."""


@cli.command()
@source_option
@num_option
@click.option('--batch', type=int, default=64, show_default=True)
@device_option
def stats(source, num, batch, device):
    """Print the pixel mean and standard deviation (in [-1, 1] units) as JSON."""
    total, total_sq, count = 0.0, 0.0, 0
    for images in tqdm.tqdm(_batches(source, num, batch, device, 1.0), desc='stats', unit='batch'):
        total += images.double().sum().item()
        total_sq += images.double().square().sum().item()
        count += images.numel()
    mean = total / count
    std = max(total_sq / count - mean ** 2, 0.0) ** 0.5
    click.echo(json.dumps({'mean': mean, 'std': std, 'num_pixels': count}))


@cli.command()
@source_option
@click.option('--dest', required=True, type=click.Path(dir_okay=False), help='Output .npz file.')
@click.option('--mean', type=float, default=0.0, show_default=True, help='Pixel mean from `stats`.')
@click.option('--std', type=float, default=1.0, show_default=True, help='Pixel std from `stats`.')
@num_option
@click.option('--beta', type=float, default=8.0, show_default=True, help='Kaiser window beta.')
@click.option('--interp', type=int, default=4, show_default=True, help='Zero-padding factor of the FFT (finer frequency grid).')
@click.option('--trunc', type=float, default=1.0, show_default=True, help='Truncation psi for generators.')
@click.option('--batch', type=int, default=16, show_default=True)
@device_option
def calc(source, dest, mean, std, num, beta, interp, trunc, batch, device):
    """Compute the average power spectrum and save it as .npz."""
    if interp < 1 or beta < 0:
        raise click.BadParameter('--interp must be >= 1 and --beta >= 0.')
    acc = spectra.SpectrumAccumulator(mean=mean, std=std, beta=beta, interp=interp)
    for images in tqdm.tqdm(_batches(source, num, batch, device, trunc), desc='spectrum', unit='batch'):
        acc.add(images)
    power = acc.result()
    meta = json.dumps(dict(source=source, num=acc.count, mean=mean, std=std, beta=beta, interp=interp, trunc=trunc))
    _save_atomic(pathlib.Path(dest), lambda p: np.savez(open(p, 'wb'), spectrum=power, meta=meta))
    click.echo(f'Saved the spectrum of {acc.count} images to {dest}')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only; never needs a display
    import matplotlib.pyplot as plt
    return plt


def _load_spectrum(path):
    try:
        with np.load(path) as data:
            return data['spectrum'], json.loads(str(data['meta']))
    except (OSError, KeyError, ValueError) as exc:
        raise click.ClickException(f'{path} is not a spectrum file written by `avg_spectra.py calc` ({exc}).') from None


@cli.command()
@click.argument('npz', type=click.Path(exists=True, dir_okay=False))
@click.option('--output', required=True, type=click.Path(dir_okay=False), help='Output PNG.')
@click.option('--db-range', type=float, default=80.0, show_default=True, help='Shown dynamic range below the peak.')
@click.option('--cmap', default='inferno', show_default=True, help='Matplotlib colormap.')
def heatmap(npz, output, db_range, cmap):
    """Render a spectrum as a dB heatmap image."""
    plt = _pyplot()
    power, _ = _load_spectrum(npz)
    db = spectra.to_db(power)
    db = np.clip(db, db.max() - db_range, db.max())
    rgba = plt.get_cmap(cmap)((db - db.min()) / max(db.max() - db.min(), 1e-12))
    _save_atomic(pathlib.Path(output), lambda p: plt.imsave(p, rgba, format='png'))
    click.echo(f'Saved {output}')


@cli.command()
@click.argument('npz', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option('--output', required=True, type=click.Path(dir_okay=False), help='Output PNG.')
@click.option('--label', multiple=True, help='Legend label per file (default: file name).')
def slices(npz, output, label):
    """Plot 1-D slices (horizontal and diagonal) of several spectra in one figure."""
    plt = _pyplot()
    if label and len(label) != len(npz):
        raise click.BadParameter(f'got {len(label)} --label values for {len(npz)} files.')
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for i, path in enumerate(npz):
        power, _ = _load_spectrum(path)
        cut = spectra.spectrum_slices(power)
        name = label[i] if label else pathlib.Path(path).stem
        axes[0].plot(cut['freq'], spectra.to_db(cut['horizontal']), label=name)
        axes[1].plot(cut['freq_diagonal'], spectra.to_db(cut['diagonal']), label=name)
    for ax, title in zip(axes, ['horizontal', 'diagonal']):
        ax.set_title(title)
        ax.set_xlabel('frequency (cycles / pixel)')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('power (dB)')
    axes[0].legend()
    fig.tight_layout()
    _save_atomic(pathlib.Path(output), lambda p: fig.savefig(p, format='png', dpi=100))
    click.echo(f'Saved {output}')


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    cli()
