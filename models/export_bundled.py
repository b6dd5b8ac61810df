"""Export a training snapshot's G_ema as a bundled model: models/<name>.safetensors + test thumbnail.

    python models/export_bundled.py --snapshot /work/runs/emoji-sg3t/00000-.../network-snapshot-000040.pt \
        --name emoji-sg3t [--kimg 40.3] [--train-hours 1.9]

--kimg defaults to the snapshot's exact progress (its cur_nimg: file names round down to whole
kimg) and --train-hours to the wall time of the run's log.txt up to that snapshot, both stored
in the file's metadata. For a run continued from a bundle (`models/train_bundled.sh transfer`),
both include the progress and hours of that bundle (../transfer-base.json).

Writes
  models/<name>.safetensors  G_ema only; float16 storage when every output pixel of the check
                             seeds stays within --fp16-tol of the float32 network (else float32)
  models/<name>.thumb16.png  seed 0, psi 1, rendered from the exported file and box-filtered to
                             16x16: the expectation of tests/test_bundled_models.py
  models/<name>.grid.png     seeds 0-63 as two 8x8 grids side by side: psi 1 (left), psi 0.7 (right)
and prints kimg, training time, the fp16 error and file size as JSON. The model card (.md) and
metrics (.json) are written by models/measure_bundled.py (docs/bundled-models.md).
"""

import json
import os
import pathlib
import sys

import click
import numpy as np
import torch

MODELS = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(MODELS.parent), str(MODELS)]   # the repo's packages and measure_bundled beside this file

from torch_utils import gen_utils, network_files, sticking  # noqa: E402
from measure_bundled import read_transfer_base, snapshot_info, training_time  # noqa: E402

CHECK_SEEDS = range(8)
THUMB_SEED = 0
THUMB_SIZE = 16


def render(G, seeds) -> torch.Tensor:
    """Float images [N, 3, H, W] of the given seeds at psi 1 (deterministic: noise 'const')."""
    z = torch.stack([gen_utils.seed_to_z(s, G.z_dim) for s in seeds])     # [N, z_dim]
    with torch.no_grad():
        return G(z, None, truncation_psi=1, noise_mode='const')


def thumbnail(G) -> np.ndarray:
    """uint8 [16, 16, 3]: seed THUMB_SEED averaged over square pixel blocks (robust to tiny numeric noise)."""
    img = render(G, [THUMB_SEED])                                          # [1, 3, H, W]
    small = torch.nn.functional.adaptive_avg_pool2d(img, THUMB_SIZE)       # [1, 3, 16, 16]
    return gen_utils.to_uint8(small)[0]


def sample_grid(G) -> np.ndarray:
    """uint8 [8*H, 2*8*W + gap, 3]: seeds 0-63 at psi 1 (left) and psi 0.7 (right), for the model card."""
    z = torch.stack([gen_utils.seed_to_z(s, G.z_dim) for s in range(64)])  # [64, z_dim]
    panels = []
    for psi in (1.0, 0.7):
        with torch.no_grad():
            imgs = gen_utils.to_uint8(torch.cat([G(zb, None, truncation_psi=psi, noise_mode='const')
                                                 for zb in z.split(16)]))   # [64, H, W, 3]
        h, w = imgs.shape[1:3]
        panels.append(imgs.reshape(8, 8, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(8 * h, 8 * w, 3))
    gap = np.full((panels[0].shape[0], 8, 3), 255, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1]], axis=1)


def fp16_error(G, path) -> float:
    """Largest absolute output difference (in [-1, 1] image units) of the fp16 file vs G."""
    G16 = network_files.load_generator(path)
    return float((render(G16, CHECK_SEEDS) - render(G, CHECK_SEEDS)).abs().max())


def snapshot_progress(snapshot: pathlib.Path) -> float:
    """Exact kimg of a snapshot within its run, from its metadata (file names round down to whole kimg)."""
    kimg, _ = snapshot_info(snapshot)
    if kimg is None:
        raise click.ClickException(f'{snapshot} records no training progress; pass --kimg.')
    return kimg


def run_hours(snapshot: pathlib.Path, run_kimg: float) -> float:
    """Training wall time up to the snapshot, summed over the resumed segments of the run's log.txt."""
    log = snapshot.parent / 'log.txt'
    if not log.is_file():
        raise click.ClickException(f'{snapshot.parent} has no log.txt to take the training time from; pass --train-hours.')
    try:
        return training_time(log.read_text(), run_kimg).hours
    except ValueError as e:
        raise click.ClickException(f'{e} Pass --train-hours.') from None


def total_progress(snapshot: pathlib.Path, kimg, train_hours) -> tuple[float, float]:
    """(kimg, hours) of the snapshot, plus the bundle a continued run started from; given values win."""
    base = read_transfer_base(snapshot.parent)
    run_kimg = snapshot_progress(snapshot) if kimg is None or train_hours is None else None
    if kimg is None:
        kimg = round(run_kimg + (base.kimg if base else 0), 3)
    if train_hours is None:
        train_hours = round(run_hours(snapshot, run_kimg) + (base.hours if base else 0), 2)
    return kimg, train_hours


@click.command()
@click.option('--snapshot', required=True, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
              help='network-snapshot-*.pt')
@click.option('--name', required=True, help='Bundled model name, e.g. emoji-sg3t')
@click.option('--kimg', type=float, default=None, help='Training progress of the snapshot [default: from its metadata]')
@click.option('--train-hours', type=float, default=None,
              help='Wall-clock training time so far [default: from the run\'s log.txt]')
@click.option('--fp16-tol', type=float, default=1e-2, show_default=True)
def main(snapshot, name, kimg, train_hours, fp16_tol):
    kimg, train_hours = total_progress(snapshot, kimg, train_hours)
    G = network_files.load_generator(snapshot)
    dest = MODELS / f'{name}.safetensors'
    meta = {'source_snapshot': os.path.basename(snapshot), 'kimg': kimg, 'train_hours': train_hours,
            'dataset': 'Noto Color Emoji, faces-people, 64x64 on white (models/train_bundled.sh)'}
    network_files.export_safetensors(G, dest, metadata={**meta, 'storage': 'float16'}, dtype=torch.float16)
    err = fp16_error(G, dest)
    storage = 'float16'
    if err > fp16_tol:  # the issue allows fp16 storage only while outputs stay within 1e-2
        network_files.export_safetensors(G, dest, metadata={**meta, 'storage': 'float32'})
        storage = 'float32'
    exported = network_files.load_generator(dest)
    sticking.write_png(MODELS / f'{name}.thumb16.png', thumbnail(exported))
    sticking.write_png(MODELS / f'{name}.grid.png', sample_grid(exported))
    print(json.dumps({'name': name, 'file': str(dest), 'kimg': kimg, 'train_hours': train_hours,
                      'storage': storage, 'fp16_max_abs_err': err,
                      'bytes': dest.stat().st_size}))


if __name__ == '__main__':
    main()
