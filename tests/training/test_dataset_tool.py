"""dataset_tool.py on every source kind, with small files written here in the real formats."""

import gzip
import io
import json
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import dataset_tool
from training import dataset_sources
from training.dataset import ImageFolderDataset


def _run(*args):
    return CliRunner().invoke(dataset_tool.main, [str(a) for a in args])


def _ok(*args):
    result = _run(*args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _write_idx(path, array):
    """IDX format: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 dims, raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_mnist(folder, count=6):
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = np.arange(count) % 10
    _write_idx(folder / 'train-images-idx3-ubyte.gz', images)
    _write_idx(folder / 'train-labels-idx1-ubyte.gz', labels)
    return images, labels


def _write_cifar(path, counts=(3, 2)):
    """cifar-10-python.tar.gz layout: cifar-10-batches-py/data_batch_N, pickled dicts with
    bytes keys (the originals are Python 2 pickles, read with encoding='bytes')."""
    rng = np.random.default_rng(1)
    all_images, all_labels = [], []
    with tarfile.open(path, 'w:gz') as tar:
        for i, count in enumerate(counts, start=1):
            data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, size=count)]
            batch = {b'batch_label': f'training batch {i} of 5'.encode(), b'labels': labels,
                     b'data': data, b'filenames': [f'f{j}.png'.encode() for j in range(count)]}
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f'cifar-10-batches-py/data_batch_{i}')
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            all_images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            all_labels += labels
    return np.concatenate(all_images), all_labels


def test_mnist_idx_gz(tmp_path):
    images, labels = _write_mnist(tmp_path / 'mnist')
    _ok('--source', tmp_path / 'mnist', '--dest', tmp_path / 'out.zip')
    ds = ImageFolderDataset(tmp_path / 'out.zip', use_labels=True)
    assert len(ds) == 6 and ds.image_shape == [1, 32, 32] and ds.label_dim == 6
    for i in range(6):
        img, label = ds[i]
        np.testing.assert_array_equal(img[0, 2:30, 2:30], images[i])  # padded by 2 px
        assert img[0, :2].sum() == 0 and int(label.argmax()) == labels[i]


def test_cifar10_python_tar(tmp_path):
    images, labels = _write_cifar(tmp_path / 'cifar-10-python.tar.gz')
    _ok('--source', tmp_path / 'cifar-10-python.tar.gz', '--dest', tmp_path / 'out')
    ds = ImageFolderDataset(tmp_path / 'out', use_labels=True)
    assert len(ds) == 5 and ds.image_shape == [3, 32, 32]
    meta = json.loads((tmp_path / 'out' / 'dataset.json').read_text())
    assert [l for _, l in meta['labels']] == labels
    for i in range(5):
        np.testing.assert_array_equal(ds[i][0], images[i].transpose(2, 0, 1))


def test_cifar_refuses_foreign_pickle_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('should never run',))
    payload = pickle.dumps({b'data': Evil(), b'labels': []}, protocol=2)
    with tarfile.open(tmp_path / 'c.tar.gz', 'w:gz') as tar:
        info = tarfile.TarInfo('cifar-10-batches-py/data_batch_1')
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    result = _run('--source', tmp_path / 'c.tar.gz', '--dest', tmp_path / 'o.zip')
    assert result.exit_code == 1 and 'not allowed' in result.output
    assert not (tmp_path / 'o.zip').exists()


def _write_images(folder, sizes, mode='RGB'):
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i, (w, h) in enumerate(sizes):
        channels = {'L': 1, 'RGB': 3, 'RGBA': 4}[mode]
        arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8).squeeze()
        PIL.Image.fromarray(arr, mode).save(folder / f'sub{i % 2}-{i}.png' if i % 2 else folder / f'{i}.png')


def test_folder_with_resolution_and_labels(tmp_path):
    _write_images(tmp_path / 'src', [(20, 20), (24, 24), (30, 30)])
    names = sorted(p.name for p in (tmp_path / 'src').iterdir())
    (tmp_path / 'src' / 'dataset.json').write_text(json.dumps({'labels': [[n, i] for i, n in enumerate(names)]}))
    _ok('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip', '--resolution', '16x16')
    ds = ImageFolderDataset(tmp_path / 'out.zip', use_labels=True)
    assert len(ds) == 3 and ds.image_shape == [3, 16, 16]
    assert [int(ds[i][1].argmax()) for i in range(3)] == [0, 1, 2]


def test_zip_source_center_crop_and_max_images(tmp_path):
    _write_images(tmp_path / 'src', [(40, 20)] * 4, mode='L')
    with zipfile.ZipFile(tmp_path / 'src.zip', 'w') as zf:
        for p in sorted((tmp_path / 'src').iterdir()):
            zf.write(p, f'nested/{p.name}')
    _ok('--source', tmp_path / 'src.zip', '--dest', tmp_path / 'out', '--transform', 'center-crop',
        '--resolution', '8x8', '--max-images', '3')
    ds = ImageFolderDataset(tmp_path / 'out')
    assert len(ds) == 3 and ds.image_shape == [1, 8, 8]
    assert not (tmp_path / 'out' / 'dataset.json').exists()


def test_center_crop_wide_pads_to_square(tmp_path):
    _write_images(tmp_path / 'src', [(64, 32)] * 2)
    _ok('--source', tmp_path / 'src', '--dest', tmp_path / 'out', '--transform', 'center-crop-wide',
        '--resolution', '16x8')
    img = ImageFolderDataset(tmp_path / 'out')[0][0]
    assert img.shape == (3, 16, 16)
    assert img[:, :4].sum() == 0 and img[:, 12:].sum() == 0 and img[:, 4:12].sum() > 0


def test_overwrite_refused_without_force(tmp_path):
    _write_images(tmp_path / 'src', [(8, 8)] * 2)
    (tmp_path / 'out.zip').write_bytes(b'precious')
    result = _run('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip')
    assert result.exit_code == 1 and 'already exists' in result.output and '--force' in result.output
    assert (tmp_path / 'out.zip').read_bytes() == b'precious'
    _ok('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip', '--force')
    assert len(ImageFolderDataset(tmp_path / 'out.zip')) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []  # no temp left


@pytest.mark.parametrize('args, message', [
    (['--resolution', '16'], 'is not a size like 64x64'),
    (['--resolution', '16x8'], 'not square'),
    (['--transform', 'center-crop'], 'needs --resolution'),
])
def test_bad_options(tmp_path, args, message):
    _write_images(tmp_path / 'src', [(8, 8)])
    result = _run('--source', tmp_path / 'src', '--dest', tmp_path / 'o.zip', *args)
    assert result.exit_code == 2 and message in result.output


def test_bad_sources_one_sentence(tmp_path):
    result = _run('--source', tmp_path / 'missing', '--dest', tmp_path / 'o.zip')
    assert result.exit_code == 1 and 'does not exist' in result.output
    _write_images(tmp_path / 'src', [(8, 8), (10, 10)])
    result = _run('--source', tmp_path / 'src', '--dest', tmp_path / 'o.zip')
    assert result.exit_code == 1 and 'use --resolution' in result.output
    assert not (tmp_path / 'o.zip').exists() and 'Traceback' not in result.output
    _write_images(tmp_path / 'wide', [(12, 8)])
    result = _run('--source', tmp_path / 'wide', '--dest', tmp_path / 'o.zip')
    assert result.exit_code == 1 and 'square' in result.output
    (tmp_path / 'src' / 'bad.png').write_bytes(b'not a png')
    result = _run('--source', tmp_path / 'src', '--dest', tmp_path / 'o.zip', '--resolution', '8x8')
    assert result.exit_code == 1 and 'bad.png' in result.output
    (tmp_path / 'mn').mkdir()
    (tmp_path / 'mn' / 'train-images-idx3-ubyte').write_bytes(bytes([0, 0, 8, 3]) + struct.pack('>3I', 5, 28, 28))
    (tmp_path / 'mn' / 'train-labels-idx1-ubyte').write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5]) + bytes(5))
    result = _run('--source', tmp_path / 'mn', '--dest', tmp_path / 'o.zip')
    assert result.exit_code == 1 and 'truncated' in result.output


# -- Noto Color Emoji ------------------------------------------------------------------------------

def _font_or_skip():
    try:
        return dataset_sources.find_emoji_font()
    except dataset_sources.SourceError:
        pytest.skip('Noto Color Emoji font not installed (apt install fonts-noto-color-emoji)')


def test_emoji_subsets_and_alpha(tmp_path):
    font = _font_or_skip()
    _ok('--source', font, '--dest', tmp_path / 'e.zip', '--subset', 'faces-people',
        '--resolution', '16x16', '--max-images', '4')
    ds = ImageFolderDataset(tmp_path / 'e.zip')
    assert len(ds) == 4 and ds.image_shape == [3, 16, 16]
    corners = np.stack([ds[i][0][:, 0, 0] for i in range(4)])
    assert (corners >= 250).all()  # composited on white
    _ok('--source', 'emoji', '--dest', tmp_path / 'a', '--keep-alpha', '--max-images', '2')
    ds = ImageFolderDataset(tmp_path / 'a')
    assert ds.image_shape == [4, 136, 136]
    alpha = ds[0][0][3]
    assert alpha[0, 0] == 0 and alpha.max() == 255  # transparent corner, opaque glyph
    assert 0.05 < (alpha == 255).mean() < 0.95


def test_emoji_face_rule():
    assert dataset_sources.is_face_or_person([0x1F600])            # GRINNING FACE
    assert dataset_sources.is_face_or_person([0x1F469, 0x200D, 0x1F4BB])  # woman technologist
    assert not dataset_sources.is_face_or_person([0x1F550])        # CLOCK FACE ONE OCLOCK
    assert not dataset_sources.is_face_or_person([0x1F37C])        # BABY BOTTLE
    assert not dataset_sources.is_face_or_person([0x1F1E9, 0x1F1EA])  # flag
    font_path = _font_or_skip()
    from fontTools.ttLib import TTFont
    font = TTFont(str(font_path))
    faces = dataset_sources.select_emoji(font, 'faces-people')
    everything = dataset_sources.select_emoji(font, 'all')
    assert set(faces) < set(everything) and 1000 < len(faces) < len(everything)
