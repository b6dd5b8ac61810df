"""Multi-scale sliced Wasserstein distance (Progressive GAN paper, Karras et al. 2018, section 5).

Each image is decomposed into a Laplacian pyramid (5-tap binomial filter, down to 16x16). From
every level, random 7x7 neighbourhoods are taken from every image; each set of descriptors is
normalised per colour channel (mean 0, std 1 over the set). The distance between the real and
generated descriptor sets of a level is the sliced Wasserstein distance: the mean absolute
difference of the sorted projections onto random unit directions (4 x 128 of them). Reported
values are x 1e3 per level (`swd_<res>`) and their average (`swd`), as in the paper.
"""

import numpy as np
import torch
import torch.nn.functional as F
import tqdm

from metrics import data as data_lib
from metrics import features

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
SWD_DEFAULT_IMAGES = 8192    # the paper used 16384; halved so CPU memory stays reasonable

_BINOMIAL = torch.tensor([1., 4., 6., 4., 1.]) / 16


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Separable 5-tap binomial blur with reflected borders, per channel."""
    C = x.shape[1]
    k = (_BINOMIAL * gain ** 0.5).to(x)
    x = F.pad(x, [2, 2, 2, 2], mode='reflect')
    x = F.conv2d(x, k.view(1, 1, 1, 5).repeat(C, 1, 1, 1), groups=C)
    return F.conv2d(x, k.view(1, 1, 5, 1).repeat(C, 1, 1, 1), groups=C)


def laplacian_pyramid(x: torch.Tensor, min_resolution: int = MIN_RESOLUTION) -> list[torch.Tensor]:
    """[N, C, H, W] float -> band-pass levels from H down to `min_resolution` (last = low-pass)."""
    levels = []
    while x.shape[2] > min_resolution and x.shape[2] % 2 == 0:
        down = _blur(x)[:, :, ::2, ::2]                                     # [N, C, H/2, W/2]
        up = torch.zeros_like(x)
        up[:, :, ::2, ::2] = down
        levels.append(x - _blur(up, gain=16))                               # zero insertion: gain 4 per axis
        x = down
    levels.append(x)
    return levels


def random_neighbourhoods(level: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random 7x7 patches per image: [N, C, H, W] -> [N * count, C, 7, 7]."""
    N, C, H, W = level.shape
    ys = torch.randint(H - NHOOD_SIZE + 1, [N, count], generator=generator)
    xs = torch.randint(W - NHOOD_SIZE + 1, [N, count], generator=generator)
    patches = level.unfold(2, NHOOD_SIZE, 1).unfold(3, NHOOD_SIZE, 1)       # [N, C, H-6, W-6, 7, 7]
    n_idx = torch.arange(N)[:, None].expand(N, count)
    out = patches[n_idx, :, ys, xs]                                         # [N, count, C, 7, 7]
    return out.reshape(N * count, C, NHOOD_SIZE, NHOOD_SIZE)


def image_descriptors(images: torch.Tensor, generator: torch.Generator,
                      nhoods_per_image: int = NHOODS_PER_IMAGE) -> list[torch.Tensor]:
    """uint8 images -> one [N * nhoods, C, 7, 7] float tensor per pyramid level."""
    pyramid = laplacian_pyramid(images.to(torch.float32))
    return [random_neighbourhoods(level, nhoods_per_image, generator) for level in pyramid]


def normalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over the whole set, flattened to [M, C * 49]."""
    desc = desc.to(torch.float32)
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-8)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, dir_repeats=DIR_REPEATS,
                       dirs_per_repeat=DIRS_PER_REPEAT, seed: int = 0) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections."""
    if a.shape != b.shape:
        raise ValueError(f'SWD needs equally many descriptors, got {a.shape[0]} and {b.shape[0]}.')
    rng = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(dir_repeats):
        dirs = torch.randn([a.shape[1], dirs_per_repeat], generator=rng)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)                        # [D, dirs]
        pa = (dirs.T @ a.T).sort(dim=1).values                              # [dirs, M], sort contiguous rows
        pb = (dirs.T @ b.T).sort(dim=1).values
        total += (pa - pb).abs().mean().item()
    return total / dir_repeats


def collect_descriptors(batches, total: int, seed: int, desc: str, progress=True,
                        nhoods_per_image: int = NHOODS_PER_IMAGE) -> list[torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    per_level = None
    with tqdm.tqdm(total=total, desc=desc, unit='img', disable=not progress, leave=False) as bar:
        for images in batches:
            levels = image_descriptors(images, rng, nhoods_per_image)
            per_level = per_level or [[] for _ in levels]
            for store, d in zip(per_level, levels):
                store.append(d.to(torch.float16))   # half precision: descriptors are many
            bar.update(images.shape[0])
    return [torch.cat(store) for store in per_level]


def swd_from_descriptors(real: list[torch.Tensor], gen: list[torch.Tensor], resolution: int, seed=0) -> dict:
    results = {}
    for i, (r, g) in enumerate(zip(real, gen)):
        m = min(r.shape[0], g.shape[0])
        d = sliced_wasserstein(normalize_descriptors(r[:m]), normalize_descriptors(g[:m]), seed=seed + i)
        results[f'swd_{resolution >> i}'] = d * 1e3
    results['swd'] = float(np.mean(list(results.values())))
    return results


def swd_images(real: torch.Tensor, gen: torch.Tensor, seed: int = 0,
               nhoods_per_image: int = NHOODS_PER_IMAGE) -> dict:
    """SWD of two uint8 image tensors [N, 3, H, W] (same patch positions for both sets)."""
    r = collect_descriptors([real], real.shape[0], seed, 'swd real', False, nhoods_per_image)
    g = collect_descriptors([gen], gen.shape[0], seed, 'swd gen', False, nhoods_per_image)
    return swd_from_descriptors(r, g, real.shape[2], seed)


def compute_swd(opts, max_real=SWD_DEFAULT_IMAGES, num_gen=SWD_DEFAULT_IMAGES) -> dict:
    dataset = data_lib.open_dataset(opts.dataset_kwargs)
    if dataset.resolution != opts.G.img_resolution:
        raise ValueError(f'swd compares images of equal size, but the dataset is {dataset.resolution} px '
                         f'and the generator {opts.G.img_resolution} px.')
    max_real = data_lib.num_real(dataset, opts.real_count(max_real))
    key = features.dataset_cache_key(dataset, kind='swd', max_items=max_real, seed=opts.seed,
                                     nhoods=NHOODS_PER_IMAGE, nhood_size=NHOOD_SIZE)

    def compute_real():
        levels = collect_descriptors(data_lib.real_batches(dataset, opts.batch_size, max_real), max_real,
                                     opts.seed, 'swd real', opts.progress)
        return {f'level{i}': d.numpy() for i, d in enumerate(levels)}

    arrays = features.cached_arrays(opts.cache_dir, key, compute_real)
    real = [torch.from_numpy(arrays[f'level{i}']) for i in range(len(arrays))]
    labels = data_lib.LabelSampler.for_generator(opts.G, dataset)
    num_gen = opts.gen_count(num_gen)
    gen = collect_descriptors(data_lib.generated_batches(opts.G, num_gen, opts.batch_size, opts.device,
                                                         labels, opts.seed),
                              num_gen, opts.seed + 1, 'swd generated', opts.progress)
    return swd_from_descriptors(real, gen, dataset.resolution, opts.seed)
