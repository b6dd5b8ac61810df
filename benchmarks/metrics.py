"""Speed of the metrics with the native vs the reference ops, printed as JSON lines.

\b
  python benchmarks/metrics.py            # eqt50k_int on 1000 samples, fd_mobilenet on 1000 images
  python benchmarks/metrics.py --quick    # 16 samples / 32 images: a smoke run of a few minutes

Network: stylegan3-t at 64x64 with the default config (channel base 32768, max 512), random
weights (seed 0). eqt50k_int: batch 4 as the registered metric. fd_mobilenet: 1000 generated
images (the generator runs the ops) plus 1000 images of a synthetic 64x64 dataset; the dataset
statistics are recomputed every run (a fresh cache dir). Each line: {"bench", "impl", "count",
"seconds", "ms_per_item", "value"}; a last line per benchmark gives the ref/native ratio.
"""

import contextlib
import json
import os
import pathlib
import sys
import tempfile
import time

import click
import numpy as np
import PIL.Image
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from metrics import equivariance, run_metric  # noqa: E402
from ops import backend  # noqa: E402
from training import registry  # noqa: E402


@contextlib.contextmanager
def ops_impl(impl: str):
    """Force one ops backend for the duration (the ops honour $STYLEGAN_OPS_IMPL on every call)."""
    old = os.environ.get(backend.ENV_VAR)
    os.environ[backend.ENV_VAR] = impl
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(backend.ENV_VAR, None)
        else:
            os.environ[backend.ENV_VAR] = old


def make_dataset(root: pathlib.Path, count: int, resolution: int) -> pathlib.Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        blocks = rng.integers(0, 256, [8, 8, 3], dtype=np.uint8)
        img = np.kron(blocks, np.ones([resolution // 8, resolution // 8, 1], np.uint8))
        PIL.Image.fromarray(img).save(root / f'{i:05d}.png')
    return root


def bench_eqt(G, samples: int, device) -> dict:
    start = time.perf_counter()
    r = equivariance.compute_equivariance(G, 'int', samples, batch_size=4, device=device, progress=False)
    return dict(seconds=time.perf_counter() - start, value=r['psnr_db'])


def bench_fd_mobilenet(G, images: int, dataset: pathlib.Path, device) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        r = run_metric('fd_mobilenet', G=G, dataset_kwargs={'path': str(dataset)}, num_gen=images,
                       max_real=images, batch_size=16, device=device, cache_dir=cache, progress=False)
        return dict(seconds=time.perf_counter() - start, value=r['fd_mobilenet'])


@click.command(help=__doc__)
@click.option('--quick', is_flag=True, help='16 EQ samples and 32 images instead of 1000 each.')
@click.option('--samples', type=int, default=None, help='EQ-T samples (default 1000, quick 16).')
@click.option('--images', type=int, default=None, help='fd_mobilenet images per side (default 1000, quick 32).')
@click.option('--impls', default='native,ref', show_default=True, help='Ops backends to compare.')
@click.option('--resolution', type=int, default=64, show_default=True)
@click.option('--device', default='cpu', show_default=True)
def main(quick, samples, images, impls, resolution, device):
    samples = samples or (16 if quick else 1000)
    images = images or (32 if quick else 1000)
    impls = [i.strip() for i in impls.split(',') if i.strip()]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = registry.create_generator('stylegan3-t', img_resolution=resolution).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = make_dataset(pathlib.Path(tmp) / 'data', images, resolution)
        for name, count, fn in (('eqt50k_int', samples, lambda: bench_eqt(G, samples, device)),
                                ('fd_mobilenet', images, lambda: bench_fd_mobilenet(G, images, dataset, device))):
            seconds = {}
            for impl in impls:
                with ops_impl(impl):
                    r = fn()
                seconds[impl] = r['seconds']
                print(json.dumps(dict(bench=name, impl=impl, count=count, seconds=round(r['seconds'], 3),
                                      ms_per_item=round(1000 * r['seconds'] / count, 2),
                                      value=r['value'], threads=torch.get_num_threads())), flush=True)
            if 'ref' in seconds and 'native' in seconds:
                print(json.dumps(dict(bench=name, ratio_ref_over_native=round(seconds['ref'] / seconds['native'], 3))),
                      flush=True)


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
