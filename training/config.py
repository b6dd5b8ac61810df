"""Typed configuration of a training run, with the per-cfg presets of the reference train.py.

`resolve_config(...)` turns command-line values into one `TrainingConfig`; the run writes it as
`training_options.json` and `from_dict()` reads it back for `--resume`.
"""

import dataclasses
from dataclasses import dataclass, field

CFG_NAMES = ('stylegan2', 'stylegan2-fourier', 'stylegan3-t', 'stylegan3-r')
AUG_MODES = ('noaug', 'ada', 'fixed')


def is_stylegan3(cfg: str) -> bool:
    return cfg.startswith('stylegan3')


@dataclass
class DataConfig:
    path: str                              # --data: folder or zip
    use_labels: bool = False               # --cond: condition on dataset.json labels
    xflip: bool = False                    # --mirror: add x-flipped copies
    max_size: int | None = None            # number of images (filled in from the dataset)
    resolution: int | None = None          # image size (filled in from the dataset)
    random_seed: int = 0                   # --seed (subsampling with max_size)
    workers: int = 3                       # --workers: DataLoader processes

    def training_set_kwargs(self) -> dict:
        """The dict stored in network files (reference FORMAT.md section 7)."""
        return {'class_name': 'training.dataset.ImageFolderDataset', 'path': self.path,
                'use_labels': self.use_labels, 'max_size': self.max_size, 'xflip': self.xflip,
                'resolution': self.resolution, 'random_seed': self.random_seed}


@dataclass
class NetworkConfig:
    cfg: str                               # registry name (CFG_NAMES)
    z_dim: int = 512                       # latent size
    w_dim: int = 512                       # intermediate latent size (--w-dim also sets z_dim)
    cbase: int = 32768                     # --cbase: channel budget (channels = cbase / resolution)
    cmax: int = 512                        # --cmax: channel cap
    d_cbase: int | None = None             # --d-cbase: D's channel budget (default: cbase)
    d_cmax: int | None = None              # --d-cmax: D's channel cap (default: cmax)
    map_depth: int = 8                     # --map-depth: mapping layers (8 SG2, 2 SG3)
    mbstd_group: int = 4                   # --mbstd-group: D minibatch-stddev group size
    freezed: int = 0                       # --freezed: frozen D layers (transfer learning)
    fp32: bool = False                     # --fp32: no mixed precision (num_fp16_res=0, no clamp)
    sg3_layers: int | None = None          # --sg3-layers: SG3 synthesis layers (default 14)
    magnitude_ema_beta: float | None = None  # SG3: 0.5 ** (batch / 20k)

    def generator_kwargs(self, c_dim: int, resolution: int, channels: int) -> dict:
        kwargs = dict(z_dim=self.z_dim, w_dim=self.w_dim, c_dim=c_dim, img_resolution=resolution,
                      img_channels=channels, mapping_kwargs={'num_layers': self.map_depth},
                      channel_base=self.cbase, channel_max=self.cmax)
        if self.cfg == 'stylegan3-r':
            # Reference train.py: the rotation-equivariant config has 1x1 convs, so doubles channels.
            kwargs.update(channel_base=self.cbase * 2, channel_max=self.cmax * 2)
        if is_stylegan3(self.cfg):
            kwargs['magnitude_ema_beta'] = self.magnitude_ema_beta
            if self.sg3_layers is not None:
                kwargs['num_layers'] = self.sg3_layers
        if self.fp32:
            kwargs.update(num_fp16_res=0, conv_clamp=None)
        return kwargs

    def discriminator_kwargs(self, c_dim: int, resolution: int, channels: int) -> dict:
        # D's width does not change what G renders or how fast, so small CPU generators can train
        # against a wider critic (--d-cbase / --d-cmax; the reference ties both to G's budget).
        kwargs = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels,
                      channel_base=self.d_cbase or self.cbase, channel_max=self.d_cmax or self.cmax,
                      block_kwargs={'freeze_layers': self.freezed}, mapping_kwargs={},
                      epilogue_kwargs={'mbstd_group_size': self.mbstd_group})
        if self.fp32:
            kwargs.update(num_fp16_res=0, conv_clamp=None)
        return kwargs


@dataclass
class LossConfig:
    r1_gamma: float                        # --gamma: R1 weight
    style_mixing_prob: float = 0.0         # 0.9 for StyleGAN2
    pl_weight: float = 0.0                 # 2 for StyleGAN2 (path-length regularisation)
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    blur_init_sigma: float = 0.0           # stylegan3-r: 10 px
    blur_fade_kimg: float = 0.0            # stylegan3-r: batch * 200 / 32


@dataclass
class OptimConfig:
    G_lr: float = 0.0025                   # --glr (0.002 for StyleGAN2)
    D_lr: float = 0.002                    # --dlr
    betas: tuple = (0.0, 0.99)
    eps: float = 1e-8
    G_reg_interval: int | None = None      # lazy path-length interval (4 for StyleGAN2)
    D_reg_interval: int | None = 16        # lazy R1 interval


@dataclass
class AugmentConfig:
    mode: str = 'ada'                      # --aug: noaug | ada | fixed
    p: float = 0.2                         # --p: probability for --aug fixed
    target: float = 0.6                    # --target: ADA target for E[sign(D(x_real))]
    interval: int = 4                      # ADA adjusts p every N steps
    ada_kimg: float = 500                  # ADA can move p from 0 to 1 within this many kimg
    preset: str = 'bgc'                    # blit + geometric + colour


@dataclass
class TrainingConfig:
    network: NetworkConfig
    data: DataConfig
    loss: LossConfig
    optim: OptimConfig
    augment: AugmentConfig
    batch_size: int = 32                   # --batch: total over all processes
    batch_gpu: int = 32                    # --batch-gpu: per process and round
    num_gpus: int = 1                      # --gpus: processes
    total_kimg: float = 25000              # --kimg
    kimg_per_tick: float = 4               # --tick
    snap: int = 50                         # --snap: ticks between snapshots
    seed: int = 0                          # --seed
    ema_kimg: float = 10.0                 # G_ema half-life in kimg (batch * 10 / 32)
    ema_rampup: float | None = 0.05        # half-life at most this fraction of images seen
    metrics: list = field(default_factory=list)
    metrics_num_gen: int | None = None     # --metrics-num-gen: generated images per metric (None: its own count)
    transfer: str | None = None            # --transfer: initial weights
    transfer_d: str | None = None          # --transfer-d: D's initial weights from another file
    d_warmup_kimg: float = 0.0             # --d-warmup: only D trains (G and G_ema frozen) this long
    device: str = 'auto'                   # --device
    deterministic: bool = False            # --deterministic: reproducible kernels
    cudnn_benchmark: bool = True           # off with --nobench
    desc: str = ''

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['training_set_kwargs'] = self.data.training_set_kwargs()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> 'TrainingConfig':
        parts = {'network': NetworkConfig, 'data': DataConfig, 'loss': LossConfig,
                 'optim': OptimConfig, 'augment': AugmentConfig}
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names and k not in parts}
        for key, klass in parts.items():
            sub = {f.name for f in dataclasses.fields(klass)}
            kwargs[key] = klass(**{k: v for k, v in data[key].items() if k in sub})
        kwargs['optim'].betas = tuple(kwargs['optim'].betas)
        return cls(**kwargs)


def resolve_config(*, cfg, data, batch, gamma, gpus=1, batch_gpu=None, cond=False, mirror=False,
                   aug='ada', p=0.2, target=0.6, cbase=32768, cmax=512, d_cbase=None, d_cmax=None, glr=None, dlr=0.002,
                   map_depth=None, mbstd_group=4, freezed=0, w_dim=512, sg3_layers=None,
                   kimg=25000, tick=4, snap=50, seed=0, fp32=False, nobench=False, workers=3,
                   metrics=(), metrics_num_gen=None, transfer=None, device='auto', deterministic=False,
                   desc='', ada_kimg=None, d_warmup=0.0, transfer_d=None) -> TrainingConfig:
    """Reference train.py presets + the given options; raises ValueError on inconsistent values."""
    if cfg not in CFG_NAMES:
        raise ValueError(f'unknown --cfg {cfg!r}; choose one of {", ".join(CFG_NAMES)}.')
    if aug not in AUG_MODES:
        raise ValueError(f'unknown --aug {aug!r}; choose one of {", ".join(AUG_MODES)}.')
    _check_batch(batch, gpus, batch_gpu)
    batch_gpu = batch_gpu or batch // gpus
    if mbstd_group > batch_gpu or batch_gpu % mbstd_group != 0:
        raise ValueError(f'--batch-gpu {batch_gpu} must be a multiple of --mbstd-group {mbstd_group}.')
    sg3 = is_stylegan3(cfg)
    network = NetworkConfig(cfg=cfg, z_dim=w_dim, w_dim=w_dim, cbase=cbase, cmax=cmax, d_cbase=d_cbase, d_cmax=d_cmax,
                            map_depth=map_depth if map_depth is not None else (2 if sg3 else 8),
                            mbstd_group=mbstd_group, freezed=freezed, fp32=fp32, sg3_layers=sg3_layers,
                            magnitude_ema_beta=0.5 ** (batch / 20e3) if sg3 else None)
    loss = LossConfig(r1_gamma=gamma)
    optim = OptimConfig(G_lr=glr if glr is not None else (0.002 if not sg3 else 0.0025), D_lr=dlr)
    if not sg3:
        loss.style_mixing_prob = 0.9     # StyleGAN sec. 3.1
        loss.pl_weight = 2.0             # StyleGAN2 sec. 3.2
        optim.G_reg_interval = 4
    if cfg == 'stylegan3-r':
        loss.blur_init_sigma = 10.0
        loss.blur_fade_kimg = batch * 200 / 32
    augment = AugmentConfig(mode=aug, p=p if aug == 'fixed' else 0.0, target=target)
    if transfer:
        # As the reference does when fine-tuning: react faster, no ramp-ups from scratch.
        augment.ada_kimg = 100
        loss.blur_init_sigma = 0.0
    if ada_kimg is not None:
        augment.ada_kimg = ada_kimg
    return TrainingConfig(
        network=network, loss=loss, optim=optim, augment=augment,
        data=DataConfig(path=str(data), use_labels=cond, xflip=mirror, random_seed=seed, workers=workers),
        batch_size=batch, batch_gpu=batch_gpu, num_gpus=gpus, total_kimg=kimg, kimg_per_tick=tick,
        snap=snap, seed=seed, ema_kimg=batch * 10 / 32, ema_rampup=None if transfer else 0.05,
        metrics=list(metrics), metrics_num_gen=metrics_num_gen, transfer=transfer, device=device,
        deterministic=deterministic, cudnn_benchmark=not nobench, desc=desc, d_warmup_kimg=d_warmup,
        transfer_d=transfer_d)


def _check_batch(batch, gpus, batch_gpu):
    if gpus < 1:
        raise ValueError('--gpus must be at least 1.')
    if batch < 1 or batch % gpus != 0:
        raise ValueError(f'--batch {batch} must be a positive multiple of --gpus {gpus}.')
    if batch_gpu is not None and (batch_gpu < 1 or (batch // gpus) % batch_gpu != 0):
        raise ValueError(f'--batch {batch} / --gpus {gpus} must be a multiple of --batch-gpu {batch_gpu}.')
