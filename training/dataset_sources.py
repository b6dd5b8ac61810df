"""Readers for the image collections that `dataset_tool.py` converts.

Each reader returns `(total, records)`: the number of images and an iterator of `Record`s
(a name for messages, a PIL image, and an int / list label or None). `open_source` picks the
reader from what the path looks like.
"""

import gzip
import importlib
import io
import json
import pathlib
import pickle
import tarfile
import typing
import unicodedata

import numpy as np
import PIL.Image

from training.dataset import IMAGE_SUFFIXES, LABELS_FILE, DatasetError, open_container


class SourceError(ValueError):
    """A problem with the source the user gave; the message is one sentence."""


class Record(typing.NamedTuple):
    name: str                 # where the image came from, for error messages
    image: PIL.Image.Image
    label: object = None      # int class, list of floats, or None


def open_source(source, subset='all', keep_alpha=False):
    """Return (kind, total, records) for any supported source path (see dataset_tool.py)."""
    if str(source) == 'emoji':
        source = find_emoji_font()
    path = pathlib.Path(source)
    if not path.exists():
        raise SourceError(f'source {path} does not exist.')
    name = path.name.lower()
    if name.endswith(('.ttf', '.otf')):
        return ('emoji', *read_emoji_font(path, subset=subset, keep_alpha=keep_alpha))
    if name.endswith(('.tar.gz', '.tgz', '.tar')):
        return ('CIFAR-10', *read_cifar10(path))
    if path.is_dir() and _mnist_files(path) is not None:
        return ('MNIST', *read_mnist(path))
    if path.is_dir() or name.endswith('.zip'):
        return ('image folder' if path.is_dir() else 'zip', *read_image_container(path))
    raise SourceError(f'cannot tell what kind of source {path} is; expected a folder, a .zip, an '
                      f'MNIST folder, cifar-10-python.tar.gz or a .ttf emoji font.')


# ----------------------------------------------------------------------------------------------
# Folder / zip of images.

def read_image_container(path):
    try:
        container = open_container(path)
    except DatasetError as exc:
        raise SourceError(str(exc)) from None
    files = container.list_files()
    names = [n for n in files if n.lower().endswith(IMAGE_SUFFIXES)]
    labels = _container_labels(container, files)

    def records():
        for name in names:
            try:
                img = PIL.Image.open(io.BytesIO(container.read(name)))
                img.load()
            except Exception as exc:
                raise SourceError(f'image {name} in {path} cannot be read ({type(exc).__name__}: '
                                  f'{exc}); fix or remove it.') from None
            yield Record(name, _normalise_mode(img), labels.get(name) if labels else None)

    return len(names), records()


def _container_labels(container, files) -> dict | None:
    if LABELS_FILE not in files:
        return None
    try:
        entries = json.loads(container.read(LABELS_FILE)).get('labels')
    except (ValueError, AttributeError) as exc:
        raise SourceError(f'{LABELS_FILE} in the source is not valid ({exc}).') from None
    return None if entries is None else {str(n).replace('\\', '/'): label for n, label in entries}


def _normalise_mode(img: PIL.Image.Image) -> PIL.Image.Image:
    """Keep L / RGB / RGBA; map other modes to the nearest of them."""
    if img.mode in ('L', 'RGB', 'RGBA'):
        return img
    if img.mode == 'P' and 'transparency' in img.info or img.mode in ('LA', 'PA'):
        return img.convert('RGBA')
    if img.mode in ('1', 'I;16', 'I', 'F'):
        return img.convert('L')
    return img.convert('RGB')


# ----------------------------------------------------------------------------------------------
# MNIST: IDX files (LeCun's format): 2 zero bytes, a type code, the number of dimensions,
# then one big-endian uint32 per dimension, then the raw data.

_MNIST_IMAGES = 'train-images-idx3-ubyte'
_MNIST_LABELS = 'train-labels-idx1-ubyte'


def _mnist_files(folder: pathlib.Path):
    found = []
    for stem in (_MNIST_IMAGES, _MNIST_LABELS):
        match = [folder / (stem + ext) for ext in ('.gz', '') if (folder / (stem + ext)).is_file()]
        if not match:
            return None
        found.append(match[0])
    return found


def read_idx(path: pathlib.Path) -> np.ndarray:
    opener = gzip.open if path.name.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise SourceError(f'{path} cannot be read ({exc}).') from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SourceError(f'{path} is not an unsigned-byte IDX file.')
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(ndim)]
    if len(data) != header + int(np.prod(shape)):
        raise SourceError(f'{path} has {len(data) - header} data bytes but its header announces '
                          f'shape {shape}; the file is truncated or corrupt.')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist(folder: pathlib.Path):
    images_path, labels_path = _mnist_files(folder)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise SourceError(f'MNIST files in {folder} disagree: images {list(images.shape)}, '
                          f'labels {list(labels.shape)}.')

    def records():
        for i, (digit, label) in enumerate(zip(images, labels)):
            padded = np.pad(digit, 2)  # 28x28 -> 32x32, a power of two for the networks
            yield Record(f'{images_path.name}[{i}]', PIL.Image.fromarray(padded, 'L'), int(label))

    return len(images), records()


# ----------------------------------------------------------------------------------------------
# CIFAR-10, python version: a tar.gz of pickled dicts {b'data': uint8 [N, 3072], b'labels': [N]}.

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The CIFAR batches are pickles; allow only what numpy arrays need, never arbitrary code."""

    _ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
                ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
                ('numpy', 'ndarray'), ('numpy', 'dtype'),
                ('_codecs', 'encode')}  # how Python 3 writes bytes in protocol-2 pickles

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f'global {module}.{name} is not allowed in a CIFAR batch')
        module = module.replace('numpy.core.', 'numpy._core.') if hasattr(np, '_core') else module
        return getattr(importlib.import_module(module), name)


def _load_cifar_batch(data: bytes, member: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(data), encoding='bytes').load()
        images = np.asarray(batch[b'data'], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b'labels'], dtype=np.int64)
    except Exception as exc:
        raise SourceError(f'CIFAR-10 member {member} is not a valid batch ({exc}).') from None
    if len(images) != len(labels):
        raise SourceError(f'CIFAR-10 member {member} has {len(images)} images but {len(labels)} labels.')
    return images.transpose(0, 2, 3, 1), labels  # [N, 32, 32, 3]


def read_cifar10(path: pathlib.Path):
    try:
        with tarfile.open(path) as tar:
            members = {pathlib.PurePosixPath(m.name).name: m for m in tar.getmembers() if m.isfile()}
            names = [f'data_batch_{i}' for i in range(1, 6) if f'data_batch_{i}' in members]
            if not names:
                raise SourceError(f'{path} contains no CIFAR-10 data_batch_N files.')
            batches = [_load_cifar_batch(tar.extractfile(members[n]).read(), n) for n in names]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceError(f'{path} is not a readable tar archive ({exc}).') from None
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])

    def records():
        for i, (img, label) in enumerate(zip(images, labels)):
            yield Record(f'{path.name}[{i}]', PIL.Image.fromarray(img, 'RGB'), int(label))

    return len(images), records()


# ----------------------------------------------------------------------------------------------
# Noto Color Emoji: colour PNG bitmaps in the font's CBDT table (one strike, 136x128 px).

EMOJI_SUBSETS = ('all', 'faces-people')
EMOJI_FONT_PATHS = ('/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf',       # Debian/Ubuntu
                    '/usr/share/fonts/noto/NotoColorEmoji.ttf',                # Arch
                    '/usr/share/fonts/google-noto-color-emoji/NotoColorEmoji.ttf')  # Fedora

# faces-people rule: an emoji qualifies when one of its code points has a Unicode name
# containing one of these words (whole words, hyphens split words), and no name contains an
# excluded word. Skin-tone, gender and hair variants follow their base emoji.
PEOPLE_WORDS = frozenset('''FACE FACES PERSON PEOPLE MAN MEN WOMAN WOMEN BOY GIRL BABY CHILD
    ADULT FAMILY COUPLE PRINCE PRINCESS BUST BUSTS SANTA MOTHER ANGEL GUARDSMAN OFFICER WORKER
    DETECTIVE NINJA MAGE FAIRY VAMPIRE MERPERSON ELF GENIE ZOMBIE TROLL SUPERHERO SUPERVILLAIN
    DANCER FATHER RUNNER PEDESTRIAN SURFER SWIMMER BICYCLIST SKIER SNOWBOARDER GOLFER LIFTER
    WRESTLERS JUGGLING FENCER HEAD'''.split())
# Names that contain a people word but show no person: "CLOCK FACE ONE OCLOCK", "BABY BOTTLE",
# "BABY CHICK", "BABY SYMBOL".
EXCLUDED_WORDS = frozenset({'CLOCK', 'BOTTLE', 'CHICK', 'SYMBOL'})


def find_emoji_font() -> pathlib.Path:
    for candidate in EMOJI_FONT_PATHS:
        if pathlib.Path(candidate).is_file():
            return pathlib.Path(candidate)
    raise SourceError('the Noto Color Emoji font is not installed (Debian/Ubuntu: apt install '
                      'fonts-noto-color-emoji); pass its .ttf path as --source.')


def emoji_sequences(font) -> dict[str, tuple[int, ...]]:
    """Glyph name -> code point sequence, from the cmap and the GSUB ligatures (ZWJ sequences,
    flags, skin tones)."""
    cmap = font.getBestCmap()
    glyph_to_cp = {}
    for cp, glyph in sorted(cmap.items()):
        glyph_to_cp.setdefault(glyph, cp)
    sequences = {glyph: (cp,) for glyph, cp in glyph_to_cp.items()}
    if 'GSUB' in font:
        for lookup in font['GSUB'].table.LookupList.Lookup:
            for table in lookup.SubTable:
                for first, ligatures in getattr(table, 'ligatures', {}).items():
                    for lig in ligatures:
                        parts = [first, *lig.Component]
                        if all(p in glyph_to_cp for p in parts):
                            sequences.setdefault(lig.LigGlyph, tuple(glyph_to_cp[p] for p in parts))
    return sequences


def is_face_or_person(sequence) -> bool:
    words = set()
    for cp in sequence:
        try:
            words.update(unicodedata.name(chr(cp)).replace('-', ' ').split())
        except ValueError:  # code point newer than this Python's Unicode database
            continue
    return bool(words & PEOPLE_WORDS) and not words & EXCLUDED_WORDS


def select_emoji(font, subset: str) -> list[str]:
    """Names of the bitmap glyphs in `subset`, in the font's glyph order."""
    if subset not in EMOJI_SUBSETS:
        raise SourceError(f'unknown emoji subset {subset!r}; choose one of {", ".join(EMOJI_SUBSETS)}.')
    strike = font['CBDT'].strikeData[0]
    order = {name: i for i, name in enumerate(font.getGlyphOrder())}
    glyphs = sorted(strike.keys(), key=order.get)
    if subset == 'all':
        return glyphs
    sequences = emoji_sequences(font)
    return [g for g in glyphs if g in sequences and is_face_or_person(sequences[g])]


def read_emoji_font(path: pathlib.Path, subset='all', keep_alpha=False):
    from fontTools.ttLib import TTFont  # only this source needs fontTools
    try:
        font = TTFont(str(path))
        has_bitmaps = 'CBDT' in font and 'CBLC' in font
    except Exception as exc:
        raise SourceError(f'{path} is not a readable font ({exc}).') from None
    if not has_bitmaps:
        raise SourceError(f'{path} has no colour bitmaps (CBDT table); use NotoColorEmoji.ttf.')
    glyphs = select_emoji(font, subset)
    strike = font['CBDT'].strikeData[0]

    def records():
        for glyph in glyphs:
            bitmap = strike[glyph]
            if not hasattr(bitmap, 'imageData'):
                bitmap.decompile()
            rgba = PIL.Image.open(io.BytesIO(bitmap.imageData)).convert('RGBA')
            yield Record(f'{path.name}:{glyph}', _emoji_canvas(rgba, keep_alpha))

    return len(glyphs), records()


def _emoji_canvas(rgba: PIL.Image.Image, keep_alpha: bool) -> PIL.Image.Image:
    """Centre the bitmap on a transparent square, then composite on white unless keep_alpha."""
    side = max(rgba.size)
    canvas = PIL.Image.new('RGBA', (side, side), (255, 255, 255, 0))
    canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    if keep_alpha:
        return canvas
    white = PIL.Image.new('RGBA', canvas.size, (255, 255, 255, 255))
    return PIL.Image.alpha_composite(white, canvas).convert('RGB')
