"""Generator forward time with the native vs the reference ops, against a FLOP bound (not a test).

    python benchmarks/generator.py            # stylegan2, stylegan3-t, -r at 64/128/256, batch 1 and 8
    python benchmarks/generator.py --quick    # stylegan3-t at 256, batch 1 (< 2 minutes)
    python benchmarks/generator.py --cfg stylegan3-r --res 128 --batch 1

Full-size configurations from training/registry.py (channel base 32768, max 512; -R doubled),
random weights, eval mode, no autograd, `noise_mode='const'`, float32 on CPU. Each case times
`G(z, c)` (mapping + synthesis) with the reference ops (STYLEGAN_OPS_IMPL=ref) and the native
ops (STYLEGAN_OPS_IMPL=native) side by side in the same process: the first (FLOP-counting) run
is the warm-up, then the best of `--repeats` native runs and of `--ref-repeats` reference runs
(default 1: the reference is ~10x slower). Native is skipped (null) when it does not build here.

The bound: `gflop` counts the dense convolution and matrix-multiply work per forward (all
images of the batch; FIR filter passes excluded), measured by intercepting the aten calls of a
reference-backend forward, i.e. with every convolution computed directly;
`matmul_gflops` is this machine's fp32 matrix-multiply rate measured in the same run with the
same thread count, and `bound_s = gflop / matmul_gflops` is the time the dense work alone would
take at that rate. `native_over_bound` = native_s / bound_s (1.0 = as fast as pure matmul; the
native backend's Winograd 3x3 convolutions, ops/conv2d_winograd.py, need a quarter of the
multiply-adds and can go below 1). `dense_s` is the time a native forward actually spends
inside torch's dense calls (direct convolutions and the Winograd matmuls) and
`speedup_limit = ref_s / dense_s` the largest `speedup` possible even if every one of our ops
took no time at all.
Prints one JSON object per case, then a summary line.
"""

import argparse
import contextlib
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.dense_work import DenseWork  # noqa: E402
from ops import backend                    # noqa: E402
from training import registry              # noqa: E402

ENV = backend.ENV_VAR


@contextlib.contextmanager
def ops_impl(impl):
    """Force an ops backend for the calls inside (the ops read the variable on every call)."""
    saved = os.environ.get(ENV)
    os.environ[ENV] = impl
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved


def matmul_gflops(size=1024, seconds=1.0):
    """Sustained fp32 matrix-multiply rate of this machine (GFLOP/s), best of several runs."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, deadline = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def time_forward(G, z, impl, repeats):
    """Best wall time of G(z) over `repeats` runs (the FLOP-counting run was the warm-up)."""
    with ops_impl(impl), torch.no_grad():
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            G(z, None, noise_mode='const', force_fp32=True)
            best = min(best, time.perf_counter() - start)
    return best


def dense_work(G, z, impl, repeats=1):
    """(dense GFLOP of one G(z) forward, least seconds spent inside its dense calls over `repeats`
    runs); the first call also serves as the warm-up run of `impl`."""
    best = math.inf
    for _ in range(repeats):
        with ops_impl(impl), torch.no_grad(), DenseWork() as work:
            G(z, None, noise_mode='const', force_fp32=True)
        best = min(best, work.seconds)
    return work.flops / 1e9, best


def run_case(cfg, res, batch, repeats, ref_repeats, gflops_rate, native_ok):
    torch.manual_seed(0)
    G = registry.create_generator(cfg, img_resolution=res).eval().requires_grad_(False)
    z = torch.randn([batch, G.z_dim])
    # The model's dense work: its convolutions computed directly, as the reference backend does
    # (the native backend's Winograd convolutions do a quarter of those multiply-adds).
    gflop, ref_dense_s = dense_work(G, z, 'ref')
    dense_s = dense_work(G, z, 'native', repeats=2)[1] if native_ok else ref_dense_s
    bound_s = gflop / gflops_rate
    native_s = time_forward(G, z, 'native', repeats) if native_ok else None
    ref_s = time_forward(G, z, 'ref', ref_repeats)
    r = lambda v, n=4: None if v is None else round(v, n)  # noqa: E731
    # dense_s: time a native forward spends inside torch's convolutions / matmuls (including
    # the Winograd convolutions' batched matmuls). Even if every op of ours (FIR filters,
    # activations, Winograd transforms) took no time, native could not be faster than this, so
    # ref_s / dense_s bounds the speedup this comparison can show.
    return dict(cfg=cfg, res=res, batch=batch, ref_s=r(ref_s), native_s=r(native_s),
                speedup=r(ref_s / native_s if native_s else None, 2), gflop=r(gflop, 3),
                bound_s=r(bound_s), native_over_bound=r(native_s / bound_s if native_s else None, 2),
                dense_s=r(dense_s), speedup_limit=r(ref_s / dense_s, 2),
                matmul_gflops=r(gflops_rate, 1), threads=torch.get_num_threads())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='only stylegan3-t at 256, batch 1')
    parser.add_argument('--cfg', nargs='*', default=['stylegan2', 'stylegan3-t', 'stylegan3-r'],
                        choices=list(registry.CONFIGS))
    parser.add_argument('--res', nargs='*', type=int, default=[64, 128, 256])
    parser.add_argument('--batch', nargs='*', type=int, default=[1, 8])
    parser.add_argument('--repeats', type=int, default=3, help='timed native runs (best is kept)')
    parser.add_argument('--ref-repeats', type=int, default=1, help='timed reference runs (slow; best is kept)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    args = parser.parse_args(argv)
    if args.quick:
        args.cfg, args.res, args.batch, args.repeats, args.ref_repeats = ['stylegan3-t'], [256], [1], 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    native_ok = backend.native_available()
    if not native_ok:
        print(json.dumps({'warning': 'native ops unavailable; native columns are null'}), flush=True)
    rate = matmul_gflops()
    results = []
    for cfg in args.cfg:
        for res in args.res:
            for batch in args.batch:
                results.append(run_case(cfg, res, batch, args.repeats, args.ref_repeats, rate, native_ok))
                print(json.dumps(results[-1]), flush=True)
    speedups = [r['speedup'] for r in results if r['speedup']]
    if speedups:
        geo = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
        print(json.dumps({'summary': {'geomean_speedup': round(geo, 2), 'cases': len(results)}}), flush=True)


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
