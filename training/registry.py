"""Named network configurations and the factories that build them.

    G = create_generator('stylegan3-t', img_resolution=256, c_dim=0)
    D = create_discriminator('stylegan3-t', img_resolution=256)

Each config carries the reference train.py defaults for its `--cfg` (z/w 512, channel base
32768 and max 512, mapping depth 8 for StyleGAN2 and 2 for StyleGAN3; -R doubles channel
base/max and uses 1x1 convolutions with radial filters). Overrides are constructor kwargs of
the generator/discriminator and replace the preset values (dicts such as `mapping_kwargs` are
merged), so `channel_base` given here is final: it is *not* doubled again for -R.
"""

import copy
import dataclasses

import torch

from training import networks_stylegan2, networks_stylegan3

DEFAULT_BATCH = 32   # batch size the magnitude-EMA default below is derived from


def magnitude_ema_beta(batch_size: int) -> float:
    """StyleGAN3 magnitude-EMA decay: half-life of 20k images, as reference train.py."""
    return 0.5 ** (batch_size / 20000)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    name: str                    # registry name, also stored as `arch` in network files
    description: str
    generator: type              # generator class
    G_kwargs: dict               # generator constructor kwargs (besides c_dim/img_*)
    D_kwargs: dict               # discriminator constructor kwargs (besides c_dim/img_*)


_COMMON = dict(z_dim=512, w_dim=512, channel_base=32768, channel_max=512)
_D_KWARGS = dict(channel_base=32768, channel_max=512, block_kwargs=dict(freeze_layers=0), mapping_kwargs={},
                 epilogue_kwargs=dict(mbstd_group_size=4))
_IMAGE_DEFAULTS = dict(c_dim=0, img_resolution=256, img_channels=3)

CONFIGS = {cfg.name: cfg for cfg in [
    NetworkConfig(
        'stylegan2', 'StyleGAN2 (config F): learned 4x4 constant, skip generator, resnet D.',
        networks_stylegan2.Generator,
        dict(_COMMON, mapping_kwargs=dict(num_layers=8), fused_modconv_default='inference_only'),
        _D_KWARGS),
    NetworkConfig(
        'stylegan2-fourier', 'StyleGAN2 with the StyleGAN3 Fourier-feature input instead of the '
        'constant (StyleGAN3 paper config B); its input can be translated/rotated.',
        networks_stylegan2.Generator,
        dict(_COMMON, mapping_kwargs=dict(num_layers=8), fused_modconv_default='inference_only',
             input_type='fourier'),
        _D_KWARGS),
    NetworkConfig(
        'stylegan3-t', 'StyleGAN3-T: alias-free, translation equivariant (3x3 convolutions).',
        networks_stylegan3.Generator,
        dict(_COMMON, mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=magnitude_ema_beta(DEFAULT_BATCH)),
        _D_KWARGS),
    NetworkConfig(
        'stylegan3-r', 'StyleGAN3-R: alias-free, rotation equivariant (1x1 convolutions, radial filters).',
        networks_stylegan3.Generator,
        dict(_COMMON, channel_base=65536, channel_max=1024, mapping_kwargs=dict(num_layers=2),
             magnitude_ema_beta=magnitude_ema_beta(DEFAULT_BATCH), conv_kernel=1, use_radial_filters=True),
        _D_KWARGS),
]}

# Class names used by the reference pickles (persistent objects) -> our classes.
# `training.networks.*` are StyleGAN2-ADA-PyTorch's names (its Generator takes the synthesis
# options as one `synthesis_kwargs` dict; flatten it before calling ours).
REFERENCE_CLASS_NAMES = {
    'training.networks_stylegan2.Generator': networks_stylegan2.Generator,
    'training.networks_stylegan3.Generator': networks_stylegan3.Generator,
    'training.networks.Generator': networks_stylegan2.Generator,
    'training.networks_stylegan2.Discriminator': networks_stylegan2.Discriminator,
    'training.networks.Discriminator': networks_stylegan2.Discriminator,
}


def get_config(cfg) -> NetworkConfig:
    """A NetworkConfig from a registry name (or a NetworkConfig, returned unchanged)."""
    if isinstance(cfg, NetworkConfig):
        return cfg
    if cfg not in CONFIGS:
        raise ValueError(f'unknown network config {cfg!r}; choose one of {", ".join(CONFIGS)}.')
    return CONFIGS[cfg]


def _merge(preset: dict, overrides: dict) -> dict:
    kwargs = copy.deepcopy(preset)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(kwargs.get(key), dict):
            kwargs[key] = {**kwargs[key], **value}
        else:
            kwargs[key] = value
    return kwargs


def generator_kwargs(cfg, **overrides) -> dict:
    """The full constructor kwargs `create_generator` would use."""
    return _merge({**_IMAGE_DEFAULTS, **get_config(cfg).G_kwargs}, overrides)


def discriminator_kwargs(cfg, **overrides) -> dict:
    """The full constructor kwargs `create_discriminator` would use."""
    return _merge({**_IMAGE_DEFAULTS, **get_config(cfg).D_kwargs}, overrides)


def create_generator(cfg, **overrides) -> torch.nn.Module:
    """Build a freshly initialised generator of config `cfg` (name or NetworkConfig)."""
    return get_config(cfg).generator(**generator_kwargs(cfg, **overrides))


def create_discriminator(cfg, **overrides) -> torch.nn.Module:
    """Build a freshly initialised discriminator (StyleGAN2's, for every config)."""
    get_config(cfg)
    return networks_stylegan2.Discriminator(**discriminator_kwargs(cfg, **overrides))


def generator_class(arch: str) -> type:
    """Generator class for a registry name or a reference pickle class name."""
    if arch in REFERENCE_CLASS_NAMES and arch.endswith('Generator'):
        return REFERENCE_CLASS_NAMES[arch]
    return get_config(arch).generator


def discriminator_class(arch: str) -> type:
    """Discriminator class for a registry name or a reference pickle class name."""
    if arch in REFERENCE_CLASS_NAMES and arch.endswith('Discriminator'):
        return REFERENCE_CLASS_NAMES[arch]
    get_config(arch)
    return networks_stylegan2.Discriminator


def arch_of(G: torch.nn.Module) -> str:
    """Registry name of a generator instance (what network files store as `arch`)."""
    if isinstance(G, networks_stylegan3.Generator):
        return 'stylegan3-r' if G.init_kwargs.get('use_radial_filters', False) else 'stylegan3-t'
    if isinstance(G, networks_stylegan2.Generator):
        return 'stylegan2-fourier' if G.synthesis.input_type == 'fourier' else 'stylegan2'
    raise ValueError(f'{type(G).__name__} is not a generator of this toolkit.')
