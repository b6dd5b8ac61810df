"""Training speed and memory per cfg: seconds per kimg and peak RSS, native vs reference ops.

    python benchmarks/train_step.py            # every cfg, full-size and small config (slow)
    python benchmarks/train_step.py --quick    # stylegan2 + stylegan3-t, small config only
    python benchmarks/train_step.py --cfgs stylegan3-t --configs full --main-only   # slow cases

64x64 RGB, batch 8 (one process, one round), --aug ada at p = 0.2 (so augmentation runs), as
train.py sets things up. Each case runs in its own process (clean peak RSS), once with
STYLEGAN_OPS_IMPL=ref and once with native; one JSON line per (cfg, config):
{cfg, config, ref_s_per_kimg, native_s_per_kimg, speedup, peak_rss_gb, ref_peak_rss_gb, ...}.

`speedup_limit` = ref t_main / native dense_main: the seconds of a native main step spent
inside torch's convolutions and matmuls (forward and backward), which both backends share, bound
how much faster the native ops can make the step.

Seconds per kimg are amortised over the lazy regularisation schedule: a main-only step (t_main),
a step with the G path-length phase (t_G, every 4th step for StyleGAN2) and a step with every
phase (t_all, every 16th) are timed after one warm-up step, and
    s/step = t_main + (t_G - t_main) / 4 + (t_all - t_G) / 16,   s/kimg = s/step * 1000 / batch.
`--main-only` times the warm-up and the main-only step alone (s/step = t_main, marked
"main_only": true): for cases whose steps take many minutes.
"""

import argparse
import functools
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RES, BATCH = 64, 8
CONFIGS = {
    'full': {},                                                            # train.py defaults
    'small': dict(cbase=4096, cmax=128, w_dim=256, map_depth=2),           # a CPU-sized model
    'tiny': dict(cbase=512, cmax=16, w_dim=32, map_depth=1),               # seconds: smoke tests
}


def make_dataset(root: pathlib.Path, num=16):
    import numpy as np
    import PIL.Image
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(num):
        PIL.Image.fromarray((rng.rand(RES, RES, 3) * 255).astype(np.uint8)).save(root / f'{i:03d}.png')
    return root


def run_case(cfg: str, config: str, threads: int, main_only: bool = False) -> dict:
    """In this process: build the run as train.py does, time the three kinds of step (only the
    main step with main_only), then the dense work of one main step."""
    import torch
    from training.config import resolve_config
    from training import training_loop as tl
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(pathlib.Path(tmp) / 'data')
        conf = resolve_config(cfg=cfg, data=str(data), batch=BATCH, gamma=1, aug='fixed', p=0.2, workers=0,
                              **CONFIGS[config])
        run = tl.setup_run(conf, tmp, torch.device('cpu'))
        timings = {}
        steps = [('warmup', 1), ('t_main', 1)] + ([] if main_only else [('t_G', 4), ('t_all', 0)])
        for name, batch_idx in steps:
            run.progress.batch_idx = batch_idx
            start = time.perf_counter()
            tl.train_step(run)
            timings[name] = time.perf_counter() - start
        # Seconds of a main-only step spent inside torch's dense convolutions / matmuls (forward
        # and backward), which both ops backends share (see speedup_limit in main()).
        run.progress.batch_idx = 1
        from benchmarks.dense_work import DenseWork
        with DenseWork() as dense:
            tl.train_step(run)
        timings['dense_main'] = dense.seconds
    per_step = timings['t_main'] if main_only else amortised_step(timings, conf.optim)
    return {'s_per_kimg': per_step * 1000 / BATCH, 's_per_step': per_step, 'main_only': main_only,
            'steps': {k: round(v, 3) for k, v in timings.items()},
            'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def amortised_step(timings: dict, optim) -> float:
    """Seconds per step over the lazy regularisation schedule (module docstring)."""
    g_interval = optim.G_reg_interval or 1
    t_main, t_g, t_all = timings['t_main'], timings['t_G'], timings['t_all']
    if g_interval == 1:  # StyleGAN3: no separate G regularisation phase
        t_g = t_main
    return t_main + (t_g - t_main) / g_interval + (t_all - t_g) / optim.D_reg_interval


def spawn_case(cfg, config, impl, threads, timeout, main_only=False) -> dict:
    env = dict(os.environ, STYLEGAN_OPS_IMPL=impl, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, '--case', f'{cfg},{config}', '--threads', str(threads)]
    cmd += ['--main-only'] if main_only else []
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'error': f'timeout after {timeout} s'}
    if proc.returncode != 0:
        reason = 'killed (out of memory?)' if proc.returncode < 0 else proc.stderr.strip().splitlines()[-1:]
        return {'error': str(reason)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='stylegan2 + stylegan3-t small configs only')
    parser.add_argument('--cfgs', default='stylegan2,stylegan2-fourier,stylegan3-t,stylegan3-r')
    parser.add_argument('--configs', default='small,full')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--timeout', type=int, default=3600, help='seconds per case')
    parser.add_argument('--impls', default='native,ref', help='which ops backends to run (for very slow cases)')
    parser.add_argument('--main-only', action='store_true',
                        help='time only the main-only step (s/step = t_main), for very slow cases')
    parser.add_argument('--case', help=argparse.SUPPRESS)   # internal: run one case in this process
    args = parser.parse_args()
    if args.case:
        cfg, config = args.case.split(',')
        print(json.dumps(run_case(cfg, config, args.threads, args.main_only)))
        return
    cfgs, configs = args.cfgs.split(','), args.configs.split(',')
    if args.quick:
        cfgs, configs = ['stylegan2', 'stylegan3-t'], ['small']
    for cfg in cfgs:
        for config in configs:
            skipped = {'error': 'not run (--impls)'}
            impls = args.impls.split(',')
            run = functools.partial(spawn_case, cfg, config, threads=args.threads, timeout=args.timeout,
                                    main_only=args.main_only)
            native = run('native') if 'native' in impls else skipped
            ref = run('ref') if 'ref' in impls else skipped
            line = {'cfg': cfg, 'config': config, 'resolution': RES, 'batch': BATCH, 'main_only': args.main_only,
                    'ref_s_per_kimg': ref.get('s_per_kimg'), 'native_s_per_kimg': native.get('s_per_kimg'),
                    'speedup': (ref['s_per_kimg'] / native['s_per_kimg'])
                    if 's_per_kimg' in ref and 's_per_kimg' in native else None,
                    'peak_rss_gb': native.get('peak_rss_gb'), 'ref_peak_rss_gb': ref.get('peak_rss_gb'),
                    # Even with free ops, a main step cannot beat its dense (shared) work:
                    'speedup_limit': (ref['steps']['t_main'] / native['steps']['dense_main'])
                    if 'steps' in ref and 'steps' in native else None,
                    'native_steps': native.get('steps'), 'ref_steps': ref.get('steps')}
            for name, result in (('native', native), ('ref', ref)):
                if 'error' in result:
                    line[f'{name}_error'] = result['error']
            print(json.dumps(line), flush=True)


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
