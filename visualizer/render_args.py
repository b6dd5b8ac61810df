"""What the visualizer asks the Renderer for, and what it gets back (DESIGN.md section 3).

Plain data only (dataclasses, numpy arrays): the GUI process, the widgets and the render worker
all share these types, and widgets must not import torch.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

NOISE_MODES = ('const', 'random', 'none')


@dataclass(frozen=True)
class RenderArgs:
    """Everything that determines one rendered frame. Frozen: edit with dataclasses.replace()."""
    network: Optional[str] = None           # network file or bundled/random name; None = nothing to render
    device: str = 'cpu'                     # torch device of the renderer ('auto' = cuda if available)
    force_fp32: bool = False                # run every layer in float32 even where fp16 is configured

    # Latent: position (seed + latent_x, latent_y) on the seed plane; the four surrounding integer
    # points are seeds and their w are blended bilinearly (see render_ops.latent_corners).
    seed: int = 0
    latent_x: float = 0.0
    latent_y: float = 0.0
    class_idx: Optional[int] = None         # conditional networks only; None = class 0

    stylemix_seed: int = 0                  # w for the selected w indices come from this seed
    stylemix_layers: tuple = ()             # indices into ws [0, num_ws) taken from stylemix_seed
    trunc_psi: float = 1.0                  # truncation psi (StyleGAN2 paper, section B)
    trunc_cutoff: Optional[int] = None      # truncate only the first `cutoff` w entries; None = all
    noise_mode: str = 'const'               # 'const' | 'random' | 'none' (StyleGAN2 noise inputs)
    noise_seed: int = 0                     # seed of the per-pixel noise when noise_mode='random'

    # Input transform of StyleGAN3 / stylegan2-fourier (StyleGAN3 paper, section 3.1):
    translate: tuple = (0.0, 0.0)           # in image widths, as gen_images.py --translate
    rotate: float = 0.0                     # in turns (1 = 360 degrees)
    untransform: bool = False               # resample the output back (band-limited) to judge equivariance

    # Feature-map inspection.
    layer: Optional[str] = None             # name from RenderResult.layers; None = final image only
    channel: int = 0                        # first displayed channel
    rgb: bool = False                       # show channels [channel, channel+3) as RGB
    normalize: bool = True                  # divide the feature map by its std before display
    scale_db: float = 0.0                   # display gain in dB (20 log10)

    # Power spectrum of the selected layer (or of the image when no layer is selected).
    fft_show: bool = False
    fft_all: bool = True                    # average the spectra of all channels, else the displayed ones
    fft_range_db: float = 50.0              # dynamic range of the colour map
    fft_beta: float = 8.0                   # Kaiser window beta (reduces leakage from the image border)

    def replace(self, **changes) -> 'RenderArgs':
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class LayerInfo:
    name: str
    shape: tuple                            # (C, H, W) of the layer output for one sample
    dtype: str


@dataclass
class RenderResult:
    args: Optional[RenderArgs] = None       # the request this result answers
    image: Optional[np.ndarray] = None      # uint8 [H, W, 3] final output
    layer_image: Optional[np.ndarray] = None  # uint8 [h, w, 3] selected feature map
    spectrum: Optional[np.ndarray] = None   # uint8 [h, w, 3] colour-mapped power spectrum (dB)
    layers: list = field(default_factory=list)   # [LayerInfo] in forward order
    stats: dict = field(default_factory=dict)    # name -> {'mean', 'std', 'max'}
    timings: dict = field(default_factory=dict)  # name -> milliseconds
    num_ws: int = 0
    c_dim: int = 0                          # > 0: conditional network (RenderArgs.class_idx applies)
    img_resolution: int = 0
    has_input_transform: bool = False
    error: Optional[str] = None             # one sentence for the overlay
    error_detail: Optional[str] = None      # traceback for the console
    notice: Optional[str] = None            # non-fatal message (e.g. option ignored by this network)
