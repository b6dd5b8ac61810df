"""Generator forward time with the native vs the reference ops, against a FLOP bound (not a test).

    python benchmarks/generator.py            # stylegan2, stylegan3-t, -r at 64/128/256, batch 1 and 8
    python benchmarks/generator.py --quick    # stylegan3-t at 256, batch 1 (< 2 minutes)
    python benchmarks/generator.py --cfg stylegan3-r --res 128 --batch 1

Full-size configurations from training/registry.py (channel base 32768, max 512; -R doubled),
random weights, eval mode, no autograd, `noise_mode='const'`, float32 on CPU. Each case times
`G(z, c)` (mapping + synthesis) with the native ops (STYLEGAN_OPS_IMPL=native; the first,
FLOP-counting run is the warm-up, then the best of `--repeats` runs) and with the reference ops
(STYLEGAN_OPS_IMPL=ref) in a child process started right after, with the same weights: one
warm-up run, then the best of `--ref-repeats` runs (default 1: the reference is ~10x slower).
A case the reference cannot run (full-size StyleGAN3-R at 256 px, batch 8, needs more than
24 GB: it materialises every upsampled intermediate) gets `ref_s` null and a `ref_error`
instead of ending the benchmark. Native is skipped (null) when it does not build here.

The bound: `gflop` counts the dense convolution and matrix-multiply work per forward (all
images of the batch; FIR filter passes excluded), measured by intercepting the aten calls of a
forward with every convolution computed directly (as the reference does; no Winograd);
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
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.dense_work import DenseWork  # noqa: E402
from ops import backend, conv2d_winograd   # noqa: E402
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


def dense_work(G, z, impl, repeats=1, direct=False):
    """(dense GFLOP of one G(z) forward, least seconds spent inside its dense calls over `repeats`
    runs); the first call also serves as the warm-up run of `impl`. `direct`: every convolution
    computed directly (no Winograd), i.e. the model's dense work as the reference does it."""
    best = math.inf
    for _ in range(repeats):
        with ops_impl(impl), direct_convolutions(direct), torch.no_grad(), DenseWork() as work:
            G(z, None, noise_mode='const', force_fp32=True)
        best = min(best, work.seconds)
    return work.flops / 1e9, best


@contextlib.contextmanager
def direct_convolutions(enabled=True):
    """Keep the native backend's Winograd convolutions off for the calls inside."""
    saved = conv2d_winograd.MIN_TILES
    conv2d_winograd.MIN_TILES = math.inf if enabled else saved
    try:
        yield
    finally:
        conv2d_winograd.MIN_TILES = saved


def make_case(cfg, res, batch):
    torch.manual_seed(0)
    G = registry.create_generator(cfg, img_resolution=res).eval().requires_grad_(False)
    return G, torch.randn([batch, G.z_dim])


def reference_time(cfg, res, batch, ref_repeats, timeout=7200) -> dict:
    """{'ref_s': ...} or {'ref_error': ...}: the reference forward runs in a child process, so
    that a case too large for this machine's memory (the reference materialises every upsampled
    intermediate; full-size StyleGAN3-R at 256 px, batch 8, needs more than 24 GB) is reported
    instead of taking the whole benchmark down. One warm-up run, then the timed runs."""
    cmd = [sys.executable, os.path.abspath(__file__), '--ref-case', f'{cfg},{res},{batch},{ref_repeats}',
           '--threads', str(torch.get_num_threads())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'ref_error': f'timeout after {timeout} s'}
    if proc.returncode != 0:
        reason = ('killed (out of memory?)' if proc.returncode < 0
                  else (proc.stderr.strip().splitlines() or ['failed'])[-1])
        return {'ref_error': reason}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ref_case(spec: str):
    cfg, res, batch, ref_repeats = spec.split(',')
    G, z = make_case(cfg, int(res), int(batch))
    time_forward(G, z, 'ref', 1)                                  # warm-up
    print(json.dumps({'ref_s': time_forward(G, z, 'ref', int(ref_repeats))}), flush=True)


def run_case(cfg, res, batch, repeats, ref_repeats, gflops_rate, native_ok):
    G, z = make_case(cfg, res, batch)
    # The model's dense work: its convolutions computed directly, as the reference backend does
    # (the native backend's Winograd convolutions do a quarter of those multiply-adds).
    impl = 'native' if native_ok else 'ref'
    gflop, direct_dense_s = dense_work(G, z, impl, direct=True)
    dense_s = dense_work(G, z, 'native', repeats=2)[1] if native_ok else direct_dense_s
    bound_s = gflop / gflops_rate
    native_s = time_forward(G, z, 'native', repeats) if native_ok else None
    del G, z
    ref = reference_time(cfg, res, batch, ref_repeats)
    ref_s = ref.get('ref_s')
    r = lambda v, n=4: None if v is None else round(v, n)  # noqa: E731
    # dense_s: time a native forward spends inside torch's convolutions / matmuls (including
    # the Winograd convolutions' batched matmuls). Even if every op of ours (FIR filters,
    # activations, Winograd transforms) took no time, native could not be faster than this, so
    # ref_s / dense_s bounds the speedup this comparison can show.
    line = dict(cfg=cfg, res=res, batch=batch, ref_s=r(ref_s), native_s=r(native_s),
                speedup=r(ref_s / native_s if native_s and ref_s else None, 2), gflop=r(gflop, 3),
                bound_s=r(bound_s), native_over_bound=r(native_s / bound_s if native_s else None, 2),
                dense_s=r(dense_s), speedup_limit=r(ref_s / dense_s if ref_s else None, 2),
                matmul_gflops=r(gflops_rate, 1), threads=torch.get_num_threads())
    if 'ref_error' in ref:
        line['ref_error'] = ref['ref_error']
    return line


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
    parser.add_argument('--ref-case', help=argparse.SUPPRESS)   # internal: one reference timing
    args = parser.parse_args(argv)
    if args.quick:
        args.cfg, args.res, args.batch, args.repeats, args.ref_repeats = ['stylegan3-t'], [256], [1], 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ref_case:
        return run_ref_case(args.ref_case)
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
