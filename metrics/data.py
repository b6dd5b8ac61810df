"""Image sources of the metrics: real images from a dataset, generated images from G.

Both yield uint8 NCHW batches with 3 channels (grayscale repeated), the input every detector
expects. Real images come in dataset order (no shuffling), so "the first max_real images"
is a well-defined set whose statistics can be cached.
"""

import copy
import dataclasses

import numpy as np
import torch


def open_dataset(dataset_kwargs: dict):
    """Build the training dataset from its kwargs (as stored in `training_set_kwargs`)."""
    from training.dataset import ImageFolderDataset
    kwargs = dict(dataset_kwargs)
    class_name = kwargs.pop('class_name', None)
    if class_name not in (None, 'training.dataset.ImageFolderDataset'):
        raise ValueError(f'unsupported dataset class {class_name}; only training.dataset.ImageFolderDataset is known.')
    if not kwargs.get('path'):
        raise ValueError('this metric needs real images: pass --data (a dataset folder or zip).')
    kwargs.pop('max_size', None)     # metrics choose their own subset through max_real
    kwargs.pop('random_seed', None)
    return ImageFolderDataset(**kwargs)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] with C in {1, 3} -> [N, 3, H, W]."""
    if images.shape[1] == 1:
        return images.repeat(1, 3, 1, 1)
    if images.shape[1] != 3:
        raise ValueError(f'metrics need 1- or 3-channel images, got {images.shape[1]} channels.')
    return images


def real_batches(dataset, batch_size: int, max_items: int | None = None):
    """Yield uint8 [n, 3, H, W] tensors of the first `max_items` dataset images, in order."""
    total = len(dataset) if max_items is None else min(len(dataset), max_items)
    for start in range(0, total, batch_size):
        idx = range(start, min(start + batch_size, total))
        images = np.stack([dataset.get_image(i) for i in idx])              # [n, C, H, W] uint8
        yield to_rgb(torch.from_numpy(images))


def num_real(dataset, max_items: int | None) -> int:
    return len(dataset) if max_items is None else min(len(dataset), max_items)


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output (nominally [-1, 1]) -> uint8, as image files store it."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


@dataclasses.dataclass
class LabelSampler:
    """Conditioning labels for generated images: drawn from the dataset when it has labels,
    else uniform one-hot classes."""
    c_dim: int
    dataset_labels: np.ndarray | None = None    # [num_images, c_dim] float32

    @classmethod
    def for_generator(cls, G, dataset=None):
        labels = None
        if G.c_dim > 0 and dataset is not None and getattr(dataset, 'has_labels', False):
            labels = np.stack([dataset.get_label(i) for i in range(len(dataset))])
        return cls(G.c_dim, labels)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        c = torch.zeros([n, self.c_dim])
        if self.c_dim == 0:
            return c
        if self.dataset_labels is not None:
            idx = torch.randint(len(self.dataset_labels), [n], generator=generator).numpy()
            return torch.from_numpy(self.dataset_labels[idx])
        c[torch.arange(n), torch.randint(self.c_dim, [n], generator=generator)] = 1
        return c


@torch.no_grad()
def generated_batches(G, num_items: int, batch_size: int, device, labels: LabelSampler,
                      seed: int = 0, truncation_psi: float = 1.0):
    """Yield uint8 [n, 3, H, W] generated images from seeded latents (same seed, same images)."""
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, num_items, batch_size):
        n = min(batch_size, num_items - start)
        z = torch.randn([n, G.z_dim], generator=rng).to(device)
        c = labels.sample(n, rng).to(device)
        # Per-pixel noise (StyleGAN2) is random as in the standard protocol, but seeded inside a
        # forked RNG so the caller's global RNG stream is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + start)
            img = G(z, c, truncation_psi=truncation_psi, noise_mode='random')
        yield to_rgb(to_uint8(img))
