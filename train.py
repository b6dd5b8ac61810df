"""Train a StyleGAN2 / StyleGAN3 generator.

\b
Examples:
  # StyleGAN3-T on a folder or zip of images, one process:
  python train.py --outdir runs --cfg stylegan3-t --data data/faces.zip --batch 32 --gamma 8.2
  # Two processes (GPUs, or CPU processes with gloo when there is no GPU):
  python train.py --outdir runs --cfg stylegan2 --data data/faces.zip --gpus 2 --batch 32 --gamma 10
  # The same launched by torchrun:
  torchrun --nproc-per-node 2 train.py --outdir runs --cfg stylegan2 --data data/faces.zip --batch 32 --gamma 10
  # Continue the newest run in runs/ exactly where it stopped (or give the run folder):
  python train.py --outdir runs --resume latest
  # Start a new run from the weights of a network file (ours or a reference .pkl):
  python train.py --outdir runs --cfg stylegan3-t --data data/cats.zip --batch 32 --gamma 8 --transfer old.pkl
  # A tiny CPU configuration for experiments:
  python train.py --outdir runs --cfg stylegan2 --data tiny.zip --batch 8 --gamma 1 \\
      --cbase 1024 --cmax 64 --map-depth 2 --w-dim 64 --aug noaug --metrics none --workers 0
"""

import json
import os
import pathlib
import re
import sys

import click
import torch

from torch_utils import checkpoint, distributed
from torch_utils.misc import resolve_device
from training import config as config_lib
from training.config import TrainingConfig

# Options a resumed run may change; everything else comes from its training_options.json.
# --glr / --dlr on resume lower the learning rates of a plateaued run (a cool-down) while
# everything else, Adam's moments included, continues exactly.
RESUME_OVERRIDES = ('kimg', 'tick', 'snap', 'metrics', 'metrics_num_gen', 'workers', 'device', 'data',
                    'dry_run', 'outdir', 'resume', 'nobench', 'gpus', 'glr', 'dlr')


def parse_metrics(text: str, device: torch.device) -> list[str]:
    text = (text or '').strip().lower()
    if text == 'auto':
        # fid50k_full needs ~50k generated images: hours on a CPU, minutes on a GPU.
        return ['fid50k_full'] if device.type == 'cuda' else []
    if text in ('', 'none'):
        return []
    names = [name.strip() for name in text.split(',') if name.strip()]
    import metrics
    for name in names:
        if not metrics.is_valid_metric(name):
            raise click.ClickException(f'unknown metric {name!r}; choose from {", ".join(metrics.list_metrics())}.')
    return names


def next_run_dir(outdir, desc: str) -> pathlib.Path:
    outdir = pathlib.Path(outdir)
    ids = [int(m.group(1)) for m in (re.match(r'^(\d+)-', p.name) for p in outdir.glob('*') if p.is_dir()) if m] \
        if outdir.is_dir() else []
    run_dir = outdir / f'{max(ids, default=-1) + 1:05d}-{desc}'
    if run_dir.exists():
        raise click.ClickException(f'{run_dir} already exists.')
    return run_dir


def describe(config: TrainingConfig, dataset_name: str) -> str:
    desc = (f'{config.network.cfg}-{dataset_name}-gpus{config.num_gpus}-batch{config.batch_size}'
            f'-gamma{config.loss.r1_gamma:g}')
    return desc + (f'-{config.desc}' if config.desc else '')


def write_options(run_dir: pathlib.Path, config: TrainingConfig):
    path = run_dir / 'training_options.json'
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(config.to_dict(), indent=2))
    os.replace(tmp, path)


def print_options(config: TrainingConfig, run_dir):
    c = config
    distributed.print0(json.dumps(c.to_dict(), indent=2))
    distributed.print0(f'\nOutput directory:    {run_dir}\n'
                       f'Network:             {c.network.cfg}\n'
                       f'Number of processes: {c.num_gpus}\n'
                       f'Batch size:          {c.batch_size} images ({c.batch_gpu} per process and round)\n'
                       f'Training duration:   {c.total_kimg:g} kimg\n'
                       f'Dataset path:        {c.data.path}\n'
                       f'Dataset size:        {c.data.max_size} images\n'
                       f'Dataset resolution:  {c.data.resolution}\n'
                       f'Conditional model:   {c.data.use_labels}\n'
                       f'Dataset x-flips:     {c.data.xflip}\n')


# ----------------------------------------------------------------------------------------------
# Worker: one per process.

def run_worker(config_dict: dict, run_dir: str, resume: bool):
    """Entry point of every training process (also used by the spawner, so module-level)."""
    from training.training_loop import training_loop
    config = TrainingConfig.from_dict(config_dict)
    device = distributed.init_from_env(resolve_device(config.device))
    try:
        state = checkpoint.load_training_state(run_dir) if resume else None
        training_loop(config, run_dir, device, resume_state=state)
    finally:
        distributed.shutdown()


def launch(config: TrainingConfig, run_dir: pathlib.Path, resume: bool):
    args = (config.to_dict(), str(run_dir), resume)
    if distributed.env_world_size() > 1 or config.num_gpus == 1:
        run_worker(*args)  # torchrun started us (one call per rank), or a single process
        return
    import torch.multiprocessing as mp
    try:
        distributed.spawn(run_worker, config.num_gpus, args)
    except mp.ProcessRaisedException as exc:
        last = [line for line in str(exc).strip().splitlines() if line.strip()][-1]
        raise click.ClickException(f'a training process failed: {last}') from None


# ----------------------------------------------------------------------------------------------
# Resolving the run: new or resumed.

def new_run(opts: dict, device) -> tuple[TrainingConfig, pathlib.Path | None]:
    from training.training_loop import open_dataset
    for name in ('outdir', 'cfg', 'data', 'batch', 'gamma'):
        if opts[name] is None:
            raise click.ClickException(f'--{name.replace("_", "-")} is required for a new run.')
    for name in ('transfer', 'transfer_d'):
        if opts[name] is not None and not pathlib.Path(opts[name]).exists():
            from torch_utils import network_files
            network_files.resolve_network_path(opts[name])  # bundled names are fine too
    config = config_lib.resolve_config(
        cfg=opts['cfg'], data=opts['data'], batch=opts['batch'], gamma=opts['gamma'], gpus=opts['gpus'],
        batch_gpu=opts['batch_gpu'], cond=opts['cond'], mirror=opts['mirror'], aug=opts['aug'],
        p=opts['p'], target=opts['target'], cbase=opts['cbase'], cmax=opts['cmax'], glr=opts['glr'],
        d_cbase=opts['d_cbase'], d_cmax=opts['d_cmax'],
        dlr=opts['dlr'], map_depth=opts['map_depth'], mbstd_group=opts['mbstd_group'],
        freezed=opts['freezed'], w_dim=opts['w_dim'], sg3_layers=opts['sg3_layers'], kimg=opts['kimg'],
        tick=opts['tick'], snap=opts['snap'], seed=opts['seed'], fp32=opts['fp32'],
        nobench=opts['nobench'], workers=opts['workers'], metrics=parse_metrics(opts['metrics'], device),
        metrics_num_gen=opts['metrics_num_gen'], transfer=opts['transfer'], device=opts['device'],
        deterministic=opts['deterministic'], desc=opts['desc'] or '', ada_kimg=opts['ada_kimg'],
        d_warmup=opts['d_warmup'], transfer_d=opts['transfer_d'])
    dataset = open_dataset(config)  # validates and fills resolution / size
    run_dir = None
    if distributed.is_main() and not opts['dry_run']:
        run_dir = next_run_dir(opts['outdir'], describe(config, dataset.name))
    return config, run_dir


def resumed_run(opts: dict, explicit: set, device) -> tuple[TrainingConfig, pathlib.Path]:
    fixed = sorted(name for name in explicit if name not in RESUME_OVERRIDES)
    if fixed:
        names = ', '.join('--' + n.replace('_', '-') for n in fixed)
        raise click.ClickException(f'{names} cannot change when resuming; the run keeps its '
                                   f'training_options.json (start a new run with --transfer instead).')
    if opts['resume'] == 'latest':
        if opts['outdir'] is None:
            raise click.ClickException('--resume latest needs --outdir to look for runs in.')
        run_dir = checkpoint.latest_run_dir(opts['outdir'])
    else:
        run_dir = pathlib.Path(opts['resume'])
        if not (run_dir / checkpoint.STATE_FILE).is_file():
            raise click.ClickException(f'{run_dir} is not a run folder with a {checkpoint.STATE_FILE}.')
    state = checkpoint.load_training_state(run_dir)
    config = TrainingConfig.from_dict(state['config'])
    for name in ('kimg', 'tick', 'snap', 'workers', 'device', 'data', 'nobench'):
        if name in explicit:
            _override(config, name, opts[name])
    if 'metrics' in explicit:
        config.metrics = parse_metrics(opts['metrics'], device)
    if 'metrics_num_gen' in explicit:
        config.metrics_num_gen = opts['metrics_num_gen']
    for name, field in (('glr', 'G_lr'), ('dlr', 'D_lr')):
        if name in explicit and opts[name] != getattr(config.optim, field):
            distributed.print0(f'--{name}: {getattr(config.optim, field):g} -> {opts[name]:g} from here on.')
            setattr(config.optim, field, opts[name])
    if ('gpus' in explicit or distributed.env_world_size() > 1) and opts['gpus'] != config.num_gpus:
        raise click.ClickException(f'this run was trained with --gpus {config.num_gpus}; resume it with the '
                                   f'same number of processes (the global batch stays the same).')
    return config, run_dir


def _override(config: TrainingConfig, name: str, value):
    if name == 'kimg':
        config.total_kimg = value
    elif name == 'tick':
        config.kimg_per_tick = value
    elif name == 'snap':
        config.snap = value
    elif name == 'workers':
        config.data.workers = value
    elif name == 'device':
        config.device = value
    elif name == 'data':
        config.data.path = str(value)
    elif name == 'nobench':
        config.cudnn_benchmark = not value


# ----------------------------------------------------------------------------------------------

@click.command(help=__doc__)
@click.pass_context
@click.option('--outdir', help='Where to make the run folder', metavar='DIR')
@click.option('--cfg', help='Network config: stylegan2, stylegan2-fourier, stylegan3-t, stylegan3-r', metavar='STR')
@click.option('--data', help='Training data (folder or zip)', metavar='PATH')
@click.option('--gpus', help='Number of processes (GPUs, or CPU processes with gloo)', metavar='INT',
              type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--batch', help='Total batch size', metavar='INT', type=click.IntRange(min=1))
@click.option('--gamma', help='R1 regularisation weight', metavar='FLOAT', type=click.FloatRange(min=0))
@click.option('--cond', help='Train a conditional model (labels from dataset.json)', metavar='BOOL',
              type=bool, default=False, show_default=True)
@click.option('--mirror', help='Enable dataset x-flips', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--aug', help='Augmentation mode: noaug, ada, fixed', metavar='STR', default='ada', show_default=True)
@click.option('--resume', help='Continue a run exactly: its folder, or "latest" in --outdir', metavar='RUN_DIR|latest')
@click.option('--transfer', help='Start from the weights of a network file (ours or a reference .pkl)', metavar='FILE')
@click.option('--transfer-d', help='Start D from the D of this network file instead (e.g. another run of '
              'the same D size, when --transfer names a G-only file)', metavar='FILE')
@click.option('--freezed', help='Freeze the first layers of D', metavar='INT', type=click.IntRange(min=0),
              default=0, show_default=True)
@click.option('--p', help='Probability for --aug fixed', metavar='FLOAT', type=click.FloatRange(0, 1),
              default=0.2, show_default=True)
@click.option('--target', help='Target value for --aug ada', metavar='FLOAT', type=click.FloatRange(0, 1),
              default=0.6, show_default=True)
@click.option('--ada-kimg', help='ADA speed: kimg for p to go from 0 to 1 (default 500, 100 with --transfer)',
              metavar='KIMG', type=click.FloatRange(min=1e-3))
@click.option('--d-warmup', help='Train only D for the first KIMG kimg, G and G_ema fixed (a --transfer '
              'from a G-only file, whose D starts from random weights)', metavar='KIMG',
              type=click.FloatRange(min=0), default=0, show_default=True)
@click.option('--batch-gpu', help='Samples per process and round (default: batch / gpus)', metavar='INT',
              type=click.IntRange(min=1))
@click.option('--cbase', help='Capacity multiplier', metavar='INT', type=click.IntRange(min=1), default=32768,
              show_default=True)
@click.option('--cmax', help='Max. feature maps', metavar='INT', type=click.IntRange(min=1), default=512,
              show_default=True)
@click.option('--d-cbase', help='Capacity multiplier of D only  [default: --cbase]', metavar='INT',
              type=click.IntRange(min=1))
@click.option('--d-cmax', help='Max. feature maps of D only  [default: --cmax]', metavar='INT',
              type=click.IntRange(min=1))
@click.option('--glr', help='G learning rate (default: 0.002 stylegan2, 0.0025 stylegan3)', metavar='FLOAT',
              type=click.FloatRange(min=0))
@click.option('--dlr', help='D learning rate', metavar='FLOAT', type=click.FloatRange(min=0), default=0.002,
              show_default=True)
@click.option('--map-depth', help='Mapping network depth (default: 8 stylegan2, 2 stylegan3)', metavar='INT',
              type=click.IntRange(min=1))
@click.option('--mbstd-group', help='Minibatch std group size', metavar='INT', type=click.IntRange(min=1),
              default=4, show_default=True)
@click.option('--w-dim', help='Size of z and w (small CPU configs)', metavar='INT', type=click.IntRange(min=1),
              default=512, show_default=True)
@click.option('--sg3-layers', help='StyleGAN3 synthesis layers (default 14; small CPU configs)', metavar='INT',
              type=click.IntRange(min=2))
@click.option('--desc', help='String to include in the run folder name', metavar='STR')
@click.option('--metrics', help='Metrics to compute at snapshots, comma separated, or none '
              '(auto: fid50k_full on CUDA, none on CPU)', metavar='LIST', default='auto', show_default=True)
@click.option('--metrics-num-gen', help='Generated images per metric at each snapshot (default: the '
              "metric's own count, e.g. 50k): cheaper, noisier metrics on CPU", metavar='INT',
              type=click.IntRange(min=2))
@click.option('--kimg', help='Total training duration', metavar='KIMG', type=click.FloatRange(min=0),
              default=25000, show_default=True)
@click.option('--tick', help='How often to print progress', metavar='KIMG', type=click.FloatRange(min=0),
              default=4, show_default=True)
@click.option('--snap', help='How often to save snapshots and the training state', metavar='TICKS',
              type=click.IntRange(min=1), default=50, show_default=True)
@click.option('--seed', help='Random seed', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--fp32', help='Disable mixed precision', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--nobench', help='Disable cuDNN benchmarking', metavar='BOOL', type=bool, default=False,
              show_default=True)
@click.option('--workers', help='DataLoader worker processes', metavar='INT', type=click.IntRange(min=0),
              default=3, show_default=True)
@click.option('--device', help='auto, cpu, cuda', metavar='STR', default='auto', show_default=True)
@click.option('--deterministic', help='Reproducible kernels (bitwise-repeatable runs on CPU)', is_flag=True)
@click.option('-n', '--dry-run', help='Print training options and exit', is_flag=True)
def main(ctx, **opts):
    explicit = {name for name in opts
                if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    try:
        _main(opts, explicit)
    except click.ClickException:
        raise
    except (ValueError, FileNotFoundError) as exc:  # user-fixable problems: one sentence, exit 1
        raise click.ClickException(str(exc)) from None


def _main(opts: dict, explicit: set):
    device = resolve_device(opts['device'])
    world_env = distributed.env_world_size()
    if world_env > 1:  # torchrun: WORLD_SIZE is the number of processes
        if 'gpus' in explicit and opts['gpus'] != world_env:
            raise click.ClickException(f'--gpus {opts["gpus"]} disagrees with torchrun\'s {world_env} processes.')
        opts['gpus'] = world_env
        distributed.init_from_env(device)
    if opts['resume'] is not None:
        config, run_dir = resumed_run(opts, explicit, device)
        resume = True
    else:
        config, run_dir = new_run(opts, device)
        resume = False
    run_dir = distributed.broadcast_object(run_dir)
    print_options(config, run_dir)
    if opts['dry_run']:
        distributed.print0('Dry run; exiting.')
        return
    if distributed.is_main() and not resume:
        run_dir.mkdir(parents=True)
        write_options(run_dir, config)
    distributed.barrier()
    launch(config, run_dir, resume)


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
