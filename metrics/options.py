"""Options shared by every metric (one value object instead of many loose arguments)."""

import dataclasses

import torch


@dataclasses.dataclass
class MetricOptions:
    G: torch.nn.Module | None = None       # generator (G_ema), eval mode
    dataset_kwargs: dict | None = None     # kwargs of training.dataset.ImageFolderDataset
    device: torch.device = torch.device('cpu')
    batch_size: int = 32                   # images per detector / generator call
    num_gen: int | None = None             # override of the metric's number of generated images
    max_real: int | None = None            # override of the metric's number of real images
    detector_dir: str | None = None        # where detector files live (else $STYLEGAN_DETECTOR_DIR)
    cache_dir: str | None = None           # dataset statistics cache (else $STYLEGAN_CACHE_DIR)
    progress: bool = True                  # tqdm progress bars
    seed: int = 0                          # latents, transforms, subsets: all derived from it
    # Set by run_metrics: the equivariance kinds requested together, and results a shared pass
    # already computed for the metrics still to come ({kind: result}).
    eq_kinds: tuple = ()
    shared: dict | None = None

    def gen_count(self, default: int) -> int:
        return default if self.num_gen is None else int(self.num_gen)

    def real_count(self, default: int | None) -> int | None:
        return default if self.max_real is None else int(self.max_real)
