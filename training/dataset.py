"""Image datasets for training and metrics: a folder or a zip of PNG/JPEG images.

Layout (what `dataset_tool.py` writes, and what users bring):

    <root>/.../*.png|*.jpg|*.jpeg     images, any depth; all square, same size, same channels
    <root>/dataset.json               optional: {"labels": [[relative/name.png, label], ...]}

A label is an integer class (turned into a one-hot vector of `max_class + 1` entries) or a list
of floats (used as is). Other files (README, .txt, ...) are ignored; files with an image suffix
that cannot be read are an error naming the file, or are skipped and counted with
`skip_bad=True`.

Cost model: the constructor reads only image *headers* (size and mode), so opening a large
dataset is fast. Truncated pixel data is therefore found when the image is decoded; with
`skip_bad=True` the constructor decodes every image once so that bad ones can be dropped
before training starts.
"""

import hashlib
import io
import json
import os
import pathlib
import warnings
import zipfile

import numpy as np
import PIL.Image
import torch

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
LABELS_FILE = 'dataset.json'

# PIL mode -> number of channels we deliver. Palette images become RGB or RGBA depending on
# whether they carry transparency (resolved per file in `_channels_of`).
_MODE_CHANNELS = {'1': 1, 'L': 1, 'LA': 2, 'RGB': 3, 'YCbCr': 3, 'CMYK': 3, 'RGBA': 4}
_CHANNEL_MODES = {1: 'L', 2: 'LA', 3: 'RGB', 4: 'RGBA'}


class DatasetError(ValueError):
    """A problem with the dataset that the user can fix; the message names the file."""


# ----------------------------------------------------------------------------------------------
# File access: one small class per container kind, so the dataset logic does not care.

class _FolderSource:
    def __init__(self, root: pathlib.Path):
        self.root = root

    def list_files(self) -> list[str]:
        names = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()  # deterministic walk order, although we sort again below
            for fname in filenames:
                rel = os.path.relpath(os.path.join(dirpath, fname), self.root)
                names.append(rel.replace(os.sep, '/'))
        return sorted(names)

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def __getstate__(self):
        return {'root': self.root}


class _ZipSource:
    """Zip archive access; the handle is reopened in each process (DataLoader workers fork)."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._zip = None
        self._pid = None
        try:
            self._handle()
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(f'{path} is not a readable zip file ({exc}).') from None

    def _handle(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def list_files(self) -> list[str]:
        return sorted(info.filename for info in self._handle().infolist() if not info.is_dir())

    def read(self, name: str) -> bytes:
        return self._handle().read(name)

    def __getstate__(self):
        return {'path': self.path, '_zip': None, '_pid': None}


def open_container(path) -> '_FolderSource | _ZipSource':
    path = pathlib.Path(path)
    if path.is_dir():
        return _FolderSource(path)
    if path.is_file():
        if path.suffix.lower() != '.zip':
            raise DatasetError(f'{path} is neither a folder nor a .zip file.')
        return _ZipSource(path)
    raise DatasetError(f'dataset {path} does not exist.')


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


# ----------------------------------------------------------------------------------------------
# Image decoding.

def _channels_of(img: PIL.Image.Image, name: str) -> int:
    if img.mode == 'P':
        return 4 if 'transparency' in img.info else 3
    if img.mode not in _MODE_CHANNELS:
        raise DatasetError(f'image {name} has unsupported pixel mode {img.mode} '
                           f'(use 8-bit grayscale, RGB or RGBA)')
    return _MODE_CHANNELS[img.mode]


def _probe(data: bytes, name: str, full: bool) -> tuple[int, int, int]:
    """Return (channels, height, width) of an encoded image; decode fully when `full`."""
    try:
        img = PIL.Image.open(io.BytesIO(data))
        if full:
            img.load()
    except Exception as exc:  # PIL raises many types for bad data
        if isinstance(exc, PIL.UnidentifiedImageError):
            raise DatasetError(f'image {name} is not a PNG or JPEG image') from None
        raise DatasetError(f'image {name} is corrupt ({type(exc).__name__}: {exc})') from None
    return _channels_of(img, name), img.height, img.width


def decode_image(data: bytes, name: str, channels: int, where: str = '') -> np.ndarray:
    """Decode to uint8 [C, H, W] with the requested channel count."""
    try:
        img = PIL.Image.open(io.BytesIO(data))
        img = img.convert(_CHANNEL_MODES[channels])
        array = np.asarray(img, dtype=np.uint8)  # [H, W] or [H, W, C]
    except Exception as exc:
        raise DatasetError(f'{where}image {name} is corrupt ({type(exc).__name__}: {exc}); '
                           f'fix or remove it, or open the dataset with skip_bad=True.') from None
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return np.ascontiguousarray(array.transpose(2, 0, 1))  # [C, H, W]


# ----------------------------------------------------------------------------------------------
# Labels.

def _parse_labels(source, names: list[str], use_labels: bool) -> np.ndarray | None:
    """Raw labels aligned with `names`: int64 [N] (classes) or float32 [N, L]; None if absent."""
    if not use_labels:
        return None
    if LABELS_FILE not in source.list_files():
        return None
    try:
        meta = json.loads(source.read(LABELS_FILE))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f'{LABELS_FILE} is not valid JSON ({exc}).') from None
    entries = meta.get('labels') if isinstance(meta, dict) else None
    if entries is None:
        return None
    table = {str(entry[0]).replace('\\', '/'): entry[1] for entry in entries}
    missing = [name for name in names if name not in table]
    if missing:
        raise DatasetError(f'{LABELS_FILE} has no label for image {missing[0]} '
                           f'({len(missing)} image(s) without a label).')
    values = [table[name] for name in names]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        labels = np.asarray(values, dtype=np.int64)
        if labels.size and labels.min() < 0:
            raise DatasetError(f'{LABELS_FILE} contains a negative class label.')
        return labels
    try:
        labels = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise DatasetError(f'{LABELS_FILE} labels must all be integers or all be '
                           f'lists of numbers of equal length.') from None
    if labels.ndim != 2:
        raise DatasetError(f'{LABELS_FILE} labels must all be integers or all be '
                           f'lists of numbers of equal length.')
    return labels


# ----------------------------------------------------------------------------------------------

class ImageFolderDataset(torch.utils.data.Dataset):
    """Square images from a folder or zip, optionally labelled, x-flipped and subsampled.

    Args:
        path:        folder or .zip file.
        resolution:  expected image size; None means "whatever the images have".
        use_labels:  read dataset.json; without it (or when absent) labels are empty [0].
        max_size:    keep at most this many images, chosen by a seeded shuffle (then sorted).
        xflip:       append a horizontally mirrored copy of every image (doubles the length).
        random_seed: seed of the `max_size` subsampling.
        skip_bad:    drop unreadable / mismatching images (counted in `num_skipped`) instead
                     of raising `DatasetError`.
    """

    def __init__(self, path, resolution=None, use_labels=False, max_size=None, xflip=False,
                 random_seed=0, skip_bad=False):
        self._path = str(path)
        self._source = open_container(path)
        self._use_labels = bool(use_labels)
        self._xflip = bool(xflip)
        self._skip_bad = bool(skip_bad)
        self.skipped: list[tuple[str, str]] = []  # (file, reason) of every skipped image

        names = [n for n in self._source.list_files() if _is_image_name(n)]
        if not names:
            raise DatasetError(f'dataset {path} contains no PNG or JPEG images.')
        self._image_names, self._raw_shape = self._scan(names, resolution)
        self._raw_labels = _parse_labels(self._source, self._image_names, self._use_labels)

        raw_idx = np.arange(len(self._image_names), dtype=np.int64)
        if max_size is not None and raw_idx.size > max_size:
            # A seeded permutation picks the subset; sorting keeps file order for readability.
            rng = np.random.default_rng(int(random_seed))
            raw_idx = np.sort(rng.permutation(raw_idx.size)[:max_size])
        self._flip = np.zeros(raw_idx.size, dtype=bool)
        if self._xflip:
            raw_idx = np.concatenate([raw_idx, raw_idx])
            self._flip = np.concatenate([self._flip, np.ones_like(self._flip)])
        self._raw_idx = raw_idx
        self._fingerprint = None

    # -- scanning ------------------------------------------------------------------------------

    def _scan(self, names: list[str], resolution) -> tuple[list[str], tuple[int, int, int]]:
        """Check every image header; return the good names and the common [C, H, W]."""
        probes = []  # (name, (C, H, W)) of images that could be opened
        for name in names:
            try:
                shape = _probe(self._source.read(name), name, full=self._skip_bad)
            except DatasetError as exc:
                self._reject(name, str(exc))
                continue
            probes.append((name, shape))
        reference = self._reference_shape(probes, resolution)
        good = []
        for name, shape in probes:
            problem = _shape_problem(name, shape, reference, resolution, self._first_name)
            if problem:
                self._reject(name, problem)
            else:
                good.append(name)
        if not good:
            raise DatasetError(f'dataset {self._path} has no usable images '
                               f'({len(self.skipped)} skipped; first: {self.skipped[0][1]}).')
        if self.skipped:
            warnings.warn(f'dataset {self._path}: skipped {len(self.skipped)} bad image(s); '
                          f'first: {self.skipped[0][1]}.', stacklevel=3)
        return good, reference

    def _reject(self, name: str, reason: str):
        if not self._skip_bad:
            raise DatasetError(f'{self._path}: {reason}; fix or remove it, or open the dataset '
                               f'with skip_bad=True to skip such images.')
        self.skipped.append((name, reason))

    def _reference_shape(self, probes, resolution) -> tuple[int, int, int]:
        if not probes:
            raise DatasetError(f'dataset {self._path} has no readable images '
                               f'(first problem: {self.skipped[0][1]}).')
        if not self._skip_bad:
            name, shape = probes[0]
            self._first_name = name
            return shape
        # When skipping, the most common shape wins so one odd file cannot reject all others.
        shapes = [shape for _, shape in probes
                  if resolution is None or shape[1:] == (resolution, resolution)]
        shapes = shapes or [shape for _, shape in probes]
        values, counts = np.unique(np.asarray(shapes), axis=0, return_counts=True)
        best = tuple(int(v) for v in values[counts.argmax()])
        self._first_name = next(name for name, shape in probes if shape == best)
        return best

    # -- torch Dataset API -----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._raw_idx.size)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        image = self.get_image(idx)
        return image, self.get_label(idx)

    def get_image(self, idx: int) -> np.ndarray:
        """uint8 [C, H, W]; mirrored when `idx` falls in the x-flipped half."""
        name = self._image_names[self._raw_idx[idx]]
        image = decode_image(self._source.read(name), name, self._raw_shape[0], f'{self._path}: ')
        if tuple(image.shape) != self._raw_shape:  # header lied (e.g. multi-frame files)
            raise DatasetError(f'image {name} decoded to shape {list(image.shape)}, expected '
                               f'{list(self._raw_shape)}.')
        if self._flip[idx]:
            image = np.ascontiguousarray(image[:, :, ::-1])
        return image

    def get_label(self, idx: int) -> np.ndarray:
        """float32 [label_dim]: one-hot class, float vector, or empty when unlabelled."""
        if self._raw_labels is None:
            return np.zeros([0], dtype=np.float32)
        raw = self._raw_labels[self._raw_idx[idx]]
        if self._raw_labels.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[raw] = 1
            return onehot
        return raw.astype(np.float32).copy()

    def get_details(self, idx: int) -> dict:
        raw = int(self._raw_idx[idx])
        return dict(raw_idx=raw, name=self._image_names[raw], xflip=bool(self._flip[idx]),
                    raw_label=None if self._raw_labels is None else self._raw_labels[raw].copy())

    # -- properties ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return pathlib.Path(self._path.rstrip('/\\')).stem

    @property
    def path(self) -> str:
        return self._path

    @property
    def image_names(self) -> list[str]:
        """Relative names of the usable images in file order (before subsampling / flipping)."""
        return list(self._image_names)

    @property
    def image_shape(self) -> list[int]:
        return list(self._raw_shape)  # [C, H, W]

    @property
    def num_channels(self) -> int:
        return self._raw_shape[0]

    @property
    def resolution(self) -> int:
        return self._raw_shape[1]

    @property
    def label_shape(self) -> list[int]:
        if self._raw_labels is None:
            return [0]
        if self._raw_labels.dtype == np.int64:
            return [int(self._raw_labels.max()) + 1]
        return list(self._raw_labels.shape[1:])

    @property
    def label_dim(self) -> int:
        return self.label_shape[0]

    @property
    def has_labels(self) -> bool:
        return self.label_dim != 0

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def fingerprint(self) -> str:
        """Hash of the image stream this object delivers: file contents, subset and flipping.

        Cached statistics (e.g. FID reference features) should be keyed by this value.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(dataset_fingerprint(self._path).encode())
            h.update(json.dumps({'names': self._image_names, 'raw_idx': self._raw_idx.tolist(),
                                 'xflip': self._flip.tolist()}).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint



def _shape_problem(name, shape, reference, resolution, reference_name) -> str | None:
    channels, height, width = shape
    if height != width:
        return f'image {name} is {width}x{height} pixels but images must be square'
    if resolution is not None and height != resolution:
        return (f'image {name} is {width}x{height} pixels but the dataset resolution is '
                f'{resolution}x{resolution}')
    if (height, width) != tuple(reference[1:]):
        return (f'image {name} is {width}x{height} pixels but other images are '
                f'{reference[2]}x{reference[1]} (e.g. {reference_name})')
    if channels != reference[0]:
        return (f'image {name} has {channels} channel(s) but other images have {reference[0]} '
                f'(e.g. {reference_name})')
    return None


def dataset_fingerprint(path) -> str:
    """SHA-256 over the sorted relative names and bytes of every file in a folder or zip.

    Independent of the container (a folder and a zip of the same files agree) and of file
    timestamps; any renamed, added or edited file changes it.
    """
    source = open_container(path)
    h = hashlib.sha256()
    for name in source.list_files():
        data = source.read(name)
        h.update(f'{name}\0{len(data)}\0'.encode())
        h.update(data)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------

class InfiniteSampler(torch.utils.data.Sampler):
    """Endless, seeded stream of dataset indices, split across ranks, with an exact position.

    The stream is a pure function of (seed, item number): global item g belongs to epoch
    g // N and is taken by rank g % num_replicas. Each epoch reorders one seeded base
    permutation by moving every item at most `window * N` places, so epochs differ but an
    image does not come back within roughly (1 - window) * N samples.

    Position and resume: a DataLoader pulls indices ahead of use (how far depends on its
    worker count), so only the consumer knows how many samples were really used. The training
    loop therefore calls `advance(n)` after consuming n samples of this rank; `state_dict()`
    records that count, and after `load_state_dict()` a *new* iterator continues at exactly
    the next unused sample, whatever the number of workers.
    """

    def __init__(self, dataset, rank=0, num_replicas=1, seed=0, window=0.5, shuffle=True):
        num_items = len(dataset)
        if num_items <= 0:
            raise ValueError('InfiniteSampler needs a non-empty dataset.')
        if not 0 <= rank < num_replicas:
            raise ValueError(f'rank {rank} is outside [0, {num_replicas}).')
        if not 0 <= window <= 1:
            raise ValueError(f'window must lie in [0, 1], got {window}.')
        self.num_items = num_items
        self.rank = int(rank)
        self.num_replicas = int(num_replicas)
        self.seed = int(seed)
        self.window = float(window)
        self.shuffle = bool(shuffle)
        self.position = 0  # samples of this rank consumed so far (see `advance`)
        self._cached_epoch = (None, None)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._cached_epoch[0] == epoch:
            return self._cached_epoch[1]
        n = self.num_items
        if not self.shuffle:
            order = np.arange(n)
        else:
            base = np.random.default_rng([self.seed, 0]).permutation(n)
            jitter = np.random.default_rng([self.seed, 1, epoch]).random(n) * (self.window * n)
            order = base[np.argsort(np.arange(n) + jitter, kind='stable')]
        self._cached_epoch = (epoch, order)
        return order

    def index_at(self, k: int) -> int:
        """Dataset index of this rank's k-th sample (k counts from the start of the stream)."""
        epoch, offset = divmod(self.rank + self.num_replicas * k, self.num_items)
        return int(self._epoch_order(epoch)[offset])

    def __iter__(self):
        k = self.position
        while True:
            yield self.index_at(k)
            k += 1

    def advance(self, num_samples: int):
        """Record that this rank consumed `num_samples` more samples of the stream."""
        self.position += int(num_samples)

    def state_dict(self) -> dict:
        return dict(position=self.position, seed=self.seed, num_items=self.num_items,
                    rank=self.rank, num_replicas=self.num_replicas, window=self.window,
                    shuffle=self.shuffle)

    def load_state_dict(self, state: dict):
        for key in ('seed', 'num_items', 'num_replicas', 'window', 'shuffle'):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f'sampler state has {key}={state[key]!r} but this run has '
                                 f'{getattr(self, key)!r}; the data stream cannot continue exactly.')
        self.position = int(state['position'])
