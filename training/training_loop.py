"""The StyleGAN training loop, as small phase functions around one `Run` object.

    run = setup_run(config, run_dir, resume_state)   # data, networks, optimizers, loss, outputs
    while not done:
        train_step(run)          # G phases, D phases, EMA, ADA    (one global batch)
        if tick boundary:
            report_tick(run)     # status line, stats.jsonl, TensorBoard
            write_snapshot(run)  # every --snap ticks: fakes PNG, network file, training state, metrics

Exact resume. All randomness of a step is drawn right after seeding torch's RNG from
(seed, step, phase, chunk) (`chunk_seed`), the data order is a pure function of the number of
images seen (`InfiniteSampler.index_at`), and the state file holds everything else that
changes (weights, EMA, optimizer moments, path-length mean, ADA p and its counters, counters).
A resumed run therefore computes bit for bit what the uninterrupted run computes, and the
result also does not depend on how the global batch is split into processes and rounds
(chunk k of a batch always gets the same samples and the same seed).
"""

import copy
import dataclasses
import json
import os
import pathlib
import resource
import sys
import time

import numpy as np
import PIL.Image
import torch

from torch_utils import checkpoint, distributed
from torch_utils.training_stats import StatsCollector
from training import registry
from training.config import TrainingConfig
from training.dataset import DatasetError, ImageFolderDataset, InfiniteSampler
from training.loss import StyleGAN2Loss


# ----------------------------------------------------------------------------------------------
# Small records.

@dataclasses.dataclass
class Phase:
    name: str                      # Gmain | Greg | Gboth | Dmain | Dreg | Dboth
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int                  # run every `interval` steps; also the loss gain (lazy reg.)


@dataclasses.dataclass
class Progress:
    cur_nimg: int = 0              # real images shown so far (global)
    cur_tick: int = 0
    batch_idx: int = 0             # optimisation steps so far
    tick_start_nimg: int = 0


@dataclasses.dataclass
class Run:
    config: TrainingConfig
    run_dir: pathlib.Path
    device: torch.device
    rank: int
    world: int
    dataset: ImageFolderDataset
    labels: torch.Tensor           # [N, c_dim] all dataset labels, for sampling gen_c
    sampler: InfiniteSampler
    data_iter: object
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    augment_pipe: object
    ada: object
    loss: StyleGAN2Loss
    phases: list
    stats: StatsCollector
    progress: Progress
    grid: dict                     # z, c and shape of the image grids
    writer: object = None          # TensorBoard SummaryWriter or None
    timing: dict = dataclasses.field(default_factory=dict)


def chunk_seed(seed: int, batch_idx: int, phase_idx: int, chunk_idx: int) -> int:
    """Seed of one chunk of one phase of one step; same on any number of processes."""
    return hash((int(seed), int(batch_idx), int(phase_idx), int(chunk_idx))) & 0x7FFF_FFFF_FFFF_FFFF


# ----------------------------------------------------------------------------------------------
# Setup.

def configure_torch(config: TrainingConfig, device: torch.device):
    """Numerics flags; TF32 stays off, as in the reference, for reproducible training quality."""
    torch.backends.cudnn.benchmark = config.cudnn_benchmark and not config.deterministic
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=device.type != 'cpu')
        torch.backends.cudnn.deterministic = True
        if device.type == 'cuda':
            os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')


def open_dataset(config: TrainingConfig) -> ImageFolderDataset:
    """Open --data and fill the data config with what the dataset says; clear errors."""
    data = config.data
    dataset = ImageFolderDataset(data.path, resolution=data.resolution, use_labels=data.use_labels,
                                 max_size=data.max_size, xflip=data.xflip, random_seed=data.random_seed)
    if data.use_labels and not dataset.has_labels:
        raise DatasetError(f'--cond was given but {data.path} has no labels (no dataset.json with "labels").')
    res = dataset.resolution
    if res < 4 or res & (res - 1):
        raise DatasetError(f'dataset resolution {res}x{res} is not a power of two >= 4; '
                           f'resize it with dataset_tool.py --resolution.')
    if data.resolution is None:
        data.resolution = res
    if data.max_size is None:
        data.max_size = len(dataset) // (2 if data.xflip else 1)
    return dataset


def build_networks(config: TrainingConfig, dataset, device):
    net, res, ch, c_dim = config.network, dataset.resolution, dataset.num_channels, dataset.label_dim
    G = registry.create_generator(net.cfg, **net.generator_kwargs(c_dim, res, ch)).train().requires_grad_(False)
    D = registry.create_discriminator(net.cfg, **net.discriminator_kwargs(c_dim, res, ch)).train().requires_grad_(False)
    G.to(device)
    D.to(device)
    G_ema = copy.deepcopy(G).eval()
    return G, D, G_ema


def build_augment(config: TrainingConfig, device):
    """ADA pipe and controller, or (None, None) for --aug noaug."""
    aug = config.augment
    if aug.mode == 'noaug':
        return None, None
    from training import augment
    pipe = augment.AugmentPipe(**augment.AUGPIPE_SPECS[aug.preset]).train().requires_grad_(False).to(device)
    pipe.p.copy_(torch.as_tensor(aug.p))
    ada = None
    if aug.mode == 'ada':
        ada = augment.AdaController(target=aug.target, interval=aug.interval, kimg=aug.ada_kimg)
    return pipe, ada


def build_phases(config: TrainingConfig, G, D) -> list[Phase]:
    """Main and lazily-regularised phases per network (StyleGAN2 sec. 3.1 "lazy regularization").

    A phase run every k steps has its Adam lr and betas rescaled by k/(k+1), so that the
    combined updates behave like one optimiser running every step (StyleGAN2 appendix B).
    """
    opt_cfg, loss_cfg = config.optim, config.loss
    phases = []
    for name, module, lr, interval, reg_active in [
            ('G', G, opt_cfg.G_lr, opt_cfg.G_reg_interval, loss_cfg.pl_weight > 0),
            ('D', D, opt_cfg.D_lr, opt_cfg.D_reg_interval, loss_cfg.r1_gamma > 0)]:
        if interval is None:
            opt = torch.optim.Adam(module.parameters(), lr=lr, betas=opt_cfg.betas, eps=opt_cfg.eps)
            phases.append(Phase(name + 'both', module, opt, 1))
            continue
        ratio = interval / (interval + 1)
        betas = tuple(beta ** ratio for beta in opt_cfg.betas)
        opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=betas, eps=opt_cfg.eps)
        phases.append(Phase(name + 'main', module, opt, 1))
        if reg_active:
            phases.append(Phase(name + 'reg', module, opt, interval))
    return phases


class _ChunkBatchSampler:
    """Index lists of the chunks of each global batch that belong to this rank.

    Global batch s holds stream items [s*B, (s+1)*B); its chunk k holds batch_gpu consecutive
    items and goes to rank k % world (chunks of one rank run as successive rounds).
    """

    def __init__(self, sampler: InfiniteSampler, batch_size, batch_gpu, rank, world, start_item):
        self.sampler, self.batch_size, self.batch_gpu = sampler, batch_size, batch_gpu
        self.rank, self.world, self.start_item = rank, world, start_item

    def __iter__(self):
        base = self.start_item
        while True:
            for k in range(self.rank, self.batch_size // self.batch_gpu, self.world):
                first = base + k * self.batch_gpu
                yield [self.sampler.index_at(first + i) for i in range(self.batch_gpu)]
            base += self.batch_size


def make_data_iterator(config: TrainingConfig, dataset, sampler, rank, world, device):
    batches = _ChunkBatchSampler(sampler, config.batch_size, config.batch_gpu, rank, world, sampler.position)
    workers = config.data.workers
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                                         pin_memory=device.type == 'cuda',
                                         prefetch_factor=2 if workers > 0 else None,
                                         persistent_workers=workers > 0)
    return iter(loader)


def all_labels(dataset) -> torch.Tensor:
    if not dataset.has_labels:
        return torch.zeros([len(dataset), 0])
    return torch.from_numpy(np.stack([dataset.get_label(i) for i in range(len(dataset))]))


def setup_run(config: TrainingConfig, run_dir, device, resume_state=None) -> Run:
    rank, world = distributed.get_rank(), distributed.get_world_size()
    configure_torch(config, device)
    torch.manual_seed(config.seed)    # network initialisation: identical on every rank
    np.random.seed(config.seed)
    dataset = open_dataset(config)
    sampler = InfiniteSampler(dataset, rank=0, num_replicas=1, seed=config.seed)
    G, D, G_ema = build_networks(config, dataset, device)
    augment_pipe, ada = build_augment(config, device)
    stats = StatsCollector(device)
    loss_cfg = config.loss
    loss = StyleGAN2Loss(G, D, augment_pipe, r1_gamma=loss_cfg.r1_gamma,
                         style_mixing_prob=loss_cfg.style_mixing_prob, pl_weight=loss_cfg.pl_weight,
                         pl_batch_shrink=loss_cfg.pl_batch_shrink, pl_decay=loss_cfg.pl_decay,
                         blur_init_sigma=loss_cfg.blur_init_sigma, blur_fade_kimg=loss_cfg.blur_fade_kimg,
                         stats=stats, real_logits_hook=ada.accumulate if ada is not None else None)
    run = Run(config=config, run_dir=pathlib.Path(run_dir), device=device, rank=rank, world=world,
              dataset=dataset, labels=all_labels(dataset), sampler=sampler, data_iter=None,
              G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, ada=ada, loss=loss,
              phases=build_phases(config, G, D), stats=stats, progress=Progress(),
              grid=make_grid_setup(config, dataset))
    if resume_state is not None:
        restore_training_state(run, resume_state)
    else:
        if config.transfer:
            transfer_weights(run, config.transfer, d_from_elsewhere=bool(config.transfer_d))
        if config.transfer_d:
            transfer_discriminator(run, config.transfer_d)
    distributed.broadcast_module_(run.G)
    distributed.broadcast_module_(run.D)
    distributed.broadcast_module_(run.G_ema)
    run.data_iter = make_data_iterator(config, dataset, sampler, rank, world, device)
    return run


def transfer_weights(run: Run, path, d_from_elsewhere=False):
    """--transfer: start from another run's weights (G, D, G_ema), strict shapes, fresh state."""
    from torch_utils import network_files
    nets = network_files.load_network(path, device='cpu')
    if nets.get('G') is None and nets.get('G_ema') is None:
        raise checkpoint.CheckpointError(f'{path} contains no generator to transfer.')
    src_G = nets.get('G') if nets.get('G') is not None else nets['G_ema']
    src_G_ema = nets.get('G_ema') if nets.get('G_ema') is not None else src_G
    checkpoint.load_module_state(run.G, src_G.state_dict(), 'G', path)
    checkpoint.load_module_state(run.G_ema, src_G_ema.state_dict(), 'G_ema', path)
    if d_from_elsewhere:
        return                                  # --transfer-d names D's file
    if nets.get('D') is not None:
        checkpoint.load_module_state(run.D, nets['D'].state_dict(), 'D', path)
    else:
        distributed.print0(f'{path} has no discriminator; D starts from random weights.')


def transfer_discriminator(run: Run, path):
    """--transfer-d: D's weights from another run's file (strict shapes), e.g. for a G_ema-only
    --transfer: a trained D judges the transferred G from its first step instead of a D from
    random weights. On the bundled emoji models it slowed the G's drift but did not stop it
    (docs/bundled-models.md, session 14)."""
    from torch_utils import network_files
    nets = network_files.load_network(path, device='cpu')
    if nets.get('D') is None:
        raise checkpoint.CheckpointError(f'{path} contains no discriminator to transfer.')
    checkpoint.load_module_state(run.D, nets['D'].state_dict(), 'D', path)


# ----------------------------------------------------------------------------------------------
# Training state (exact resume).

def training_state(run: Run) -> dict:
    arch = run.config.network.cfg
    return {
        'config': run.config.to_dict(),
        'progress': dataclasses.asdict(run.progress),
        'G': checkpoint.network_entry(run.G, arch),
        'D': checkpoint.network_entry(run.D, arch),
        'G_ema': checkpoint.network_entry(run.G_ema, arch),
        'augment_pipe': None if run.augment_pipe is None else
            {k: v.detach().cpu().clone() for k, v in run.augment_pipe.state_dict().items()},
        'ada': None if run.ada is None else run.ada.state_dict(),
        'optimizers': {p.name: p.opt.state_dict() for p in run.phases},
        'loss': run.loss.state_dict(),
        'sampler': run.sampler.state_dict(),
        'rng': checkpoint.capture_rng_state(),
    }


def restore_training_state(run: Run, state: dict):
    path = run.run_dir / checkpoint.STATE_FILE
    for name in ('G', 'D', 'G_ema'):
        checkpoint.load_module_state(getattr(run, name), state[name]['state_dict'], name, path)
    if run.augment_pipe is not None and state.get('augment_pipe') is not None:
        run.augment_pipe.load_state_dict(state['augment_pipe'])
    if run.ada is not None and state.get('ada') is not None:
        run.ada.load_state_dict(state['ada'])
    for phase in run.phases:  # phases sharing an optimizer load the same state twice: harmless
        # load_state_dict also restores the saved lr; keep the one built from the config, which
        # equals it unless the resume changed --glr / --dlr.
        lrs = [group['lr'] for group in phase.opt.param_groups]
        phase.opt.load_state_dict(state['optimizers'][phase.name])
        for group, lr in zip(phase.opt.param_groups, lrs):
            group['lr'] = lr
    run.loss.load_state_dict(state['loss'])
    run.sampler.load_state_dict(state['sampler'])
    run.progress = Progress(**state['progress'])
    checkpoint.restore_rng_state(state['rng'])


def save_training_state(run: Run):
    state = training_state(run)
    if run.rank == 0:
        checkpoint.save_training_state(run.run_dir / checkpoint.STATE_FILE, state)


# ----------------------------------------------------------------------------------------------
# One optimisation step.

def next_real_chunks(run: Run) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's chunks of the next global batch: (images in [-1, 1], labels) per round."""
    rounds = run.config.batch_size // (run.config.batch_gpu * run.world)
    chunks = []
    for _ in range(rounds):
        img, c = next(run.data_iter)
        img = img.to(run.device, non_blocking=True).to(torch.float32) / 127.5 - 1   # [n, C, H, W]
        chunks.append((img, c.to(run.device, non_blocking=True)))
    return chunks


def sample_latents(run: Run, n: int):
    """z ~ N(0, I) and labels of random dataset images, from the (freshly seeded) global RNG."""
    z = torch.randn([n, run.G.z_dim], device=run.device)                    # [n, z_dim]
    idx = torch.randint(len(run.labels), [n])
    return z, run.labels[idx].to(run.device)                                # [n, c_dim]


def run_phase(run: Run, phase: Phase, phase_idx: int, chunks):
    cfg, prog = run.config, run.progress
    num_chunks = cfg.batch_size // cfg.batch_gpu
    phase.opt.zero_grad(set_to_none=True)
    phase.module.requires_grad_(True)
    for round_idx, (real_img, real_c) in enumerate(chunks):
        torch.manual_seed(chunk_seed(cfg.seed, prog.batch_idx, phase_idx, round_idx * run.world + run.rank))
        gen_z, gen_c = sample_latents(run, real_img.shape[0])
        run.loss.accumulate_gradients(phase.name, real_img, real_c, gen_z, gen_c, gain=phase.interval,
                                      num_chunks=num_chunks, cur_nimg=prog.cur_nimg)
    phase.module.requires_grad_(False)
    run.loss.finish_phase(phase.name)
    step_optimizer(phase)


def step_optimizer(phase: Phase):
    """Sum gradients over ranks, scrub NaN/Inf (one bad sample must not ruin the run), step."""
    params = [p for p in phase.module.parameters() if p.grad is not None]
    if not params:
        return
    if distributed.get_world_size() > 1:
        flat = torch.cat([p.grad.flatten() for p in params])
        distributed.all_reduce_sum_(flat)
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(g.view_as(p))
    for p in params:
        torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
    phase.opt.step()


def update_ema(run: Run):
    """G_ema = beta G_ema + (1 - beta) G with a half-life of ema_kimg (ramped up at the start)."""
    cfg = run.config
    ema_nimg = cfg.ema_kimg * 1000
    if cfg.ema_rampup is not None:
        ema_nimg = min(ema_nimg, run.progress.cur_nimg * cfg.ema_rampup)
    beta = 0.5 ** (cfg.batch_size / max(ema_nimg, 1e-8))
    with torch.no_grad():
        ema_params = list(run.G_ema.parameters())
        torch._foreach_lerp_(ema_params, list(run.G.parameters()), 1 - beta)
        for b_ema, b in zip(run.G_ema.buffers(), run.G.buffers()):
            b_ema.copy_(b)


def d_warming_up(run: Run) -> bool:
    """--d-warmup: G and G_ema stay fixed while a D from random weights learns to judge them.

    A --transfer run from a G_ema-only file starts D from scratch, and a G trained against that D
    at once follows the gradients of a D that is still near chance.
    """
    return run.progress.cur_nimg < run.config.d_warmup_kimg * 1000


def train_step(run: Run):
    chunks = next_real_chunks(run)
    buffers_before = distributed.buffer_snapshot(run.G)
    warming = d_warming_up(run)
    for phase_idx, phase in enumerate(run.phases):  # phase_idx stays the seed index when G sits out
        if run.progress.batch_idx % phase.interval == 0 and not (warming and phase.module is run.G):
            run_phase(run, phase, phase_idx, chunks)
    distributed.merge_buffer_updates_(run.G, buffers_before)  # w_avg / magnitude EMAs changed per rank
    if not warming:
        update_ema(run)
    run.progress.cur_nimg += run.config.batch_size
    run.progress.batch_idx += 1
    run.sampler.advance(run.config.batch_size)
    if run.ada is not None:
        run.ada.step(run.augment_pipe, run.config.batch_size)   # adjusts p every `interval` steps


# ----------------------------------------------------------------------------------------------
# Image grids.

def make_grid_setup(config: TrainingConfig, dataset) -> dict:
    res = dataset.resolution
    gw, gh = int(np.clip(1920 // res, 4, 16)), int(np.clip(1080 // res, 4, 12))
    rng = np.random.RandomState(config.seed)
    idx = rng.choice(len(dataset), gw * gh, replace=len(dataset) < gw * gh)
    gen = torch.Generator().manual_seed(config.seed)
    z = torch.randn([gw * gh, config.network.z_dim], generator=gen)
    c = torch.from_numpy(np.stack([dataset.get_label(int(i)) for i in idx]))
    return {'shape': (gw, gh), 'indices': idx, 'z': z, 'c': c}


def save_image_grid(images: np.ndarray, path, grid_shape):
    """images: uint8 [N, C, H, W] -> one PNG of gw x gh tiles (written to a temp name first)."""
    gw, gh = grid_shape
    n, ch, h, w = images.shape
    canvas = images.reshape(gh, gw, ch, h, w).transpose(0, 3, 1, 4, 2).reshape(gh * h, gw * w, ch)
    mode = {1: 'L', 3: 'RGB', 4: 'RGBA'}.get(ch)
    if mode is None:
        canvas, mode = canvas[:, :, 0], 'L'
    elif ch == 1:
        canvas = canvas[:, :, 0]
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + '.tmp.png')
    PIL.Image.fromarray(canvas, mode).save(tmp)
    os.replace(tmp, path)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def generate_grid(run: Run) -> np.ndarray:
    images = []
    with torch.no_grad():
        batch = max(run.config.batch_gpu, 16)  # inference needs far less memory than training
        for z, c in zip(run.grid['z'].split(batch), run.grid['c'].split(batch)):
            images.append(to_uint8(run.G_ema(z.to(run.device), c.to(run.device), noise_mode='const')))
    return np.concatenate(images)


def write_initial_images(run: Run):
    if run.rank != 0:
        return
    reals = np.stack([run.dataset.get_image(int(i)) for i in run.grid['indices']])
    save_image_grid(reals, run.run_dir / 'reals.png', run.grid['shape'])
    save_image_grid(generate_grid(run), run.run_dir / 'fakes_init.png', run.grid['shape'])


# ----------------------------------------------------------------------------------------------
# Ticks, snapshots, metrics.

def memory_gb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in GB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20   # KiB on Linux
    try:
        with open('/proc/self/statm') as f:
            cur = int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 30
    except OSError:
        cur = peak
    return cur, peak


def report_tick(run: Run, done: bool) -> dict:
    """Collect statistics over ranks, print the one-line status, append stats.jsonl."""
    prog, now = run.progress, time.time()
    tick_kimg = (prog.cur_nimg - prog.tick_start_nimg) / 1000
    tick_time = now - run.timing['tick_start']
    cur_mem, peak_mem = memory_gb()
    fields = {
        'Progress/tick': prog.cur_tick, 'Progress/kimg': prog.cur_nimg / 1000,
        'Timing/total_sec': now - run.timing['start'], 'Timing/sec_per_tick': tick_time,
        'Timing/sec_per_kimg': tick_time / max(tick_kimg, 1e-8),
        'Timing/maintenance_sec': run.timing.get('maintenance', 0.0),
        'Resources/cpu_mem_gb': cur_mem, 'Resources/peak_cpu_mem_gb': peak_mem,
    }
    if run.device.type == 'cuda':
        fields['Resources/peak_gpu_mem_gb'] = torch.cuda.max_memory_allocated(run.device) / 2 ** 30
        torch.cuda.reset_peak_memory_stats(run.device)
    if run.augment_pipe is not None:
        fields['Progress/augment'] = float(run.augment_pipe.p)
    collected = run.stats.collect()
    line = (f"tick {prog.cur_tick:<5d} kimg {prog.cur_nimg / 1000:<8.1f} "
            f"time {_format_time(fields['Timing/total_sec']):<10s} sec/tick {tick_time:<7.1f} "
            f"sec/kimg {fields['Timing/sec_per_kimg']:<7.2f} maintenance {fields['Timing/maintenance_sec']:<5.1f} "
            f"cpumem {cur_mem:<5.2f} peak {peak_mem:<5.2f}")
    if 'Resources/peak_gpu_mem_gb' in fields:
        line += f" gpumem {fields['Resources/peak_gpu_mem_gb']:<5.2f}"
    if 'Progress/augment' in fields:
        line += f" augment {fields['Progress/augment']:.3f}"
    distributed.print0(line)
    record = dict(fields, **{name: value['mean'] for name, value in collected.items()}, timestamp=now)
    if run.rank == 0:
        with open(run.run_dir / 'stats.jsonl', 'a') as f:
            f.write(json.dumps(record) + '\n')
        if run.writer is not None:
            for name, value in record.items():
                if name != 'timestamp':
                    run.writer.add_scalar(name, value, global_step=int(prog.cur_nimg / 1e3))
            run.writer.flush()
    return record


def _format_time(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f'{s}s'
    if s < 3600:
        return f'{s // 60}m {s % 60:02d}s'
    return f'{s // 3600}h {(s // 60) % 60:02d}m'


def snapshot_name(run: Run) -> str:
    return f'network-snapshot-{run.progress.cur_nimg // 1000:06d}.pt'


def replica_divergence(run: Run) -> float:
    """Largest |rank-0 value - own value| over all weights and buffers of G, D, G_ema (max over ranks).

    The ranks apply identical summed gradients, so this must be exactly 0; anything else means
    a replica drifted (e.g. a rank-dependent code path) and the run would silently degrade.
    """
    if run.world <= 1:
        return 0.0
    worst = torch.zeros([], dtype=torch.float64, device=run.device)
    for net in (run.G, run.D, run.G_ema):
        for tensor in list(net.parameters()) + list(net.buffers()):
            if tensor.numel() == 0 or not tensor.is_floating_point():
                continue
            reference = tensor.detach().clone()
            torch.distributed.broadcast(reference, src=0)
            worst = torch.maximum(worst, (reference - tensor.detach()).abs().max().double())
    torch.distributed.all_reduce(worst, op=torch.distributed.ReduceOp.MAX)
    return float(worst)


def write_snapshot(run: Run):
    """Fakes grid, network file, training state, then metrics on the new network file."""
    from torch_utils import network_files
    prog = run.progress
    divergence = replica_divergence(run)
    if divergence != 0:
        raise RuntimeError(f'the {run.world} training processes hold different weights (max difference '
                           f'{divergence:g}); this is a bug, please report it.')
    if run.rank == 0:
        save_image_grid(generate_grid(run), run.run_dir / f'fakes{prog.cur_nimg // 1000:06d}.png',
                        run.grid['shape'])
        metadata = {'cfg': run.config.network.cfg, 'cur_nimg': prog.cur_nimg, 'config': run.config.to_dict(),
                    'num_processes': run.world, 'replicas_checked': run.world > 1}
        network_files.save_network_snapshot(run.run_dir / snapshot_name(run), run.G, run.D, run.G_ema,
                                            augment_pipe=run.augment_pipe,
                                            training_set_kwargs=run.config.data.training_set_kwargs(),
                                            metadata=metadata)
    save_training_state(run)
    evaluate_metrics(run)
    distributed.barrier()


def evaluate_metrics(run: Run):
    """Each --metrics entry on G_ema; results appended to metric-<name>.jsonl (rank 0 computes)."""
    if not run.config.metrics:
        return
    import metrics
    runs = metrics.run_metrics(run.config.metrics, G=run.G_ema, dataset_kwargs=run.config.data.training_set_kwargs(),
                               num_gen=run.config.metrics_num_gen, device=run.device, num_gpus=run.world,
                               rank=run.rank, progress=False, run_dir=run.run_dir, snapshot=snapshot_name(run))
    for _, results in runs:
        if results is not None:
            distributed.print0(' '.join(f'{k} {v:.4g}' for k, v in _plain(results).items()))


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


# ----------------------------------------------------------------------------------------------
# Driver.

class _Tee:
    """Copy of stdout into log.txt (rank 0); installed only while the loop runs."""

    def __init__(self, path, stream):
        self.file, self.stream = open(path, 'a'), stream

    def write(self, text):
        self.stream.write(text)
        self.file.write(text)
        self.file.flush()

    def flush(self):
        self.stream.flush()
        self.file.flush()


def open_writer(run_dir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: stats.jsonl is enough
        return None
    return SummaryWriter(str(run_dir))


def trim_stats(run_dir, cur_nimg):
    """After a resume, drop stats.jsonl records written after the state we continue from."""
    path = pathlib.Path(run_dir) / 'stats.jsonl'
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get('Progress/kimg', 0) * 1000 <= cur_nimg]
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(''.join(line + '\n' for line in keep))
    os.replace(tmp, path)


def is_tick_boundary(run: Run) -> bool:
    prog, cfg = run.progress, run.config
    done = prog.cur_nimg >= cfg.total_kimg * 1000
    return done or prog.cur_tick == 0 or prog.cur_nimg >= prog.tick_start_nimg + cfg.kimg_per_tick * 1000


def training_loop(config: TrainingConfig, run_dir, device, resume_state=None) -> Run:
    """Train until --kimg; returns the final Run (tests inspect it)."""
    run_dir = pathlib.Path(run_dir)
    stdout = sys.stdout
    if distributed.is_main():
        sys.stdout = _Tee(run_dir / 'log.txt', stdout)
    try:
        run = setup_run(config, run_dir, device, resume_state)
        if run.rank == 0:
            run.writer = open_writer(run_dir)
        if resume_state is None:
            write_initial_images(run)
        else:
            if run.rank == 0:
                trim_stats(run_dir, run.progress.cur_nimg)
            distributed.print0(f'Resuming from kimg {run.progress.cur_nimg / 1000:.3f} (tick {run.progress.cur_tick}; '
                               f'G lr {config.optim.G_lr:g}, D lr {config.optim.D_lr:g}).')
        _loop(run)
        return run
    finally:
        if sys.stdout is not stdout:
            sys.stdout.file.close()
            sys.stdout = stdout


def _loop(run: Run):
    cfg, prog = run.config, run.progress
    distributed.print0(f'Training for {cfg.total_kimg} kimg...')
    run.timing.update(start=time.time(), tick_start=time.time(), maintenance=0.0)
    done = prog.cur_nimg >= cfg.total_kimg * 1000
    while not done:
        train_step(run)
        done = prog.cur_nimg >= cfg.total_kimg * 1000
        if not is_tick_boundary(run):
            continue
        report_tick(run, done)
        maintenance_start = time.time()
        snapshot_due = done or prog.cur_tick % cfg.snap == 0
        # Advance the tick counters first: the state written below must describe the start of
        # the next tick, which is where a resumed run continues.
        prog.cur_tick += 1
        prog.tick_start_nimg = prog.cur_nimg
        if snapshot_due:
            write_snapshot(run)
        run.timing.update(tick_start=time.time(), maintenance=time.time() - maintenance_start)
    if run.writer is not None:
        run.writer.close()
    distributed.print0('Exiting...')
