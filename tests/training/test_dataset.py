"""ImageFolderDataset, dataset_fingerprint and InfiniteSampler on tiny datasets made here."""

import json
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from training.dataset import DatasetError, ImageFolderDataset, InfiniteSampler, dataset_fingerprint


def _image(seed, size=8, channels=3):
    rng = np.random.default_rng(seed)
    shape = [size, size] if channels == 1 else [size, size, channels]
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _write_folder(root, count=5, size=8, channels=3, labels=None):
    """Images in two sub-folders (recursive discovery) plus an ignored README."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f'{i % 2}/img{i:03d}.png'
        (root / name).parent.mkdir(exist_ok=True)
        PIL.Image.fromarray(_image(i, size, channels)).save(root / name)
        names.append(name)
    (root / 'README.txt').write_text('not an image, ignored')
    if labels is not None:
        (root / 'dataset.json').write_text(json.dumps({'labels': [[n, l] for n, l in zip(names, labels)]}))
    return names


def _zip_folder(folder, dest):
    with zipfile.ZipFile(dest, 'w') as zf:
        for path in sorted(folder.rglob('*')):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return dest


def test_folder_and_zip_agree(tmp_path):
    names = _write_folder(tmp_path / 'data', count=5)
    ds = ImageFolderDataset(tmp_path / 'data')
    dz = ImageFolderDataset(_zip_folder(tmp_path / 'data', tmp_path / 'data.zip'))
    assert len(ds) == len(dz) == 5
    assert ds.image_shape == [3, 8, 8] and ds.resolution == 8 and ds.num_channels == 3
    assert ds.name == 'data' and dz.name == 'data'
    assert not ds.has_labels and ds.label_shape == [0] and ds.label_dim == 0
    for i in range(5):
        img, label = dz[i]
        assert img.dtype == np.uint8 and img.shape == (3, 8, 8)
        assert label.dtype == np.float32 and label.shape == (0,)
        np.testing.assert_array_equal(img, ds[i][0])
    # Sorted names: 0/img000, 0/img002, 0/img004, 1/img001, 1/img003.
    expected = _image(2).transpose(2, 0, 1)
    np.testing.assert_array_equal(ds[1][0], expected)
    assert sorted(names) == ds.image_names
    assert dataset_fingerprint(tmp_path / 'data') == dataset_fingerprint(tmp_path / 'data.zip')


def test_grayscale_and_rgba(tmp_path):
    _write_folder(tmp_path / 'g', count=2, channels=1)
    _write_folder(tmp_path / 'a', count=2, channels=4)
    assert ImageFolderDataset(tmp_path / 'g')[0][0].shape == (1, 8, 8)
    img = ImageFolderDataset(tmp_path / 'a')[0][0]
    assert img.shape == (4, 8, 8)


def test_class_labels_one_hot(tmp_path):
    _write_folder(tmp_path / 'data', count=4, labels=[0, 3, 1, 2])
    ds = ImageFolderDataset(tmp_path / 'data', use_labels=True)
    assert ds.has_labels and ds.label_shape == [4] and ds.label_dim == 4
    # file order: img000 (0), img002 (1), img001 (3), img003 (2)
    assert [int(ds[i][1].argmax()) for i in range(4)] == [0, 1, 3, 2]
    assert all(ds[i][1].sum() == 1 for i in range(4))
    assert not ImageFolderDataset(tmp_path / 'data', use_labels=False).has_labels


def test_float_vector_labels(tmp_path):
    _write_folder(tmp_path / 'data', count=2, labels=[[0.5, -1.0], [2.0, 0.25]])
    ds = ImageFolderDataset(tmp_path / 'data', use_labels=True)
    assert ds.label_shape == [2]
    np.testing.assert_allclose(ds[1][1], [2.0, 0.25])
    assert ds[1][1].dtype == np.float32


def test_missing_label_names_file(tmp_path):
    names = _write_folder(tmp_path / 'data', count=3)
    (tmp_path / 'data' / 'dataset.json').write_text(json.dumps({'labels': [[names[0], 1], [names[1], 0]]}))
    with pytest.raises(DatasetError, match='img002'):
        ImageFolderDataset(tmp_path / 'data', use_labels=True)


def test_xflip_doubles_with_mirrors(tmp_path):
    _write_folder(tmp_path / 'data', count=3)
    ds = ImageFolderDataset(tmp_path / 'data', xflip=True)
    assert len(ds) == 6
    for i in range(3):
        np.testing.assert_array_equal(ds[i + 3][0], ds[i][0][:, :, ::-1])
        assert not np.array_equal(ds[i + 3][0], ds[i][0])


def test_max_size_deterministic_by_seed(tmp_path):
    _write_folder(tmp_path / 'data', count=12)

    def subset(seed):
        ds = ImageFolderDataset(tmp_path / 'data', max_size=5, random_seed=seed)
        return [ds.get_details(i)['name'] for i in range(len(ds))]

    assert len(subset(0)) == 5
    assert subset(0) == subset(0) and subset(7) == subset(7)
    assert any(subset(s) != subset(0) for s in (1, 2, 3))
    assert len(ImageFolderDataset(tmp_path / 'data', max_size=50)) == 12
    ds = ImageFolderDataset(tmp_path / 'data', max_size=5, xflip=True)
    assert len(ds) == 10
    a = ImageFolderDataset(tmp_path / 'data', max_size=5, random_seed=0).fingerprint()
    b = ImageFolderDataset(tmp_path / 'data', max_size=5, random_seed=1).fingerprint()
    assert a != b


def test_fingerprint_changes_with_content(tmp_path):
    _write_folder(tmp_path / 'data', count=2)
    before = dataset_fingerprint(tmp_path / 'data')
    PIL.Image.fromarray(_image(99)).save(tmp_path / 'data' / '0' / 'img000.png')
    assert dataset_fingerprint(tmp_path / 'data') != before


# -- every error case names the file; skip_bad skips and counts ----------------------------------

def _corrupt(root):
    data = (root / '1' / 'img001.png').read_bytes()
    (root / '1' / 'img001.png').write_bytes(data[:60])  # header intact, pixel data truncated
    return 'img001.png'


def _non_image(root):
    (root / '1' / 'img001.png').write_text('this is text, not a PNG')
    return 'img001.png'


def _wrong_resolution(root):
    PIL.Image.fromarray(_image(0, size=16)).save(root / '1' / 'big.png')
    return 'big.png'


def _non_square(root):
    PIL.Image.fromarray(_image(0)[:, :5]).save(root / '1' / 'wide.png')
    return 'wide.png'


def _mixed_channels(root):
    PIL.Image.fromarray(_image(0, channels=1)).save(root / '1' / 'gray.png')
    return 'gray.png'


@pytest.mark.parametrize('damage', [_corrupt, _non_image, _wrong_resolution, _non_square, _mixed_channels])
def test_bad_image_is_named_or_skipped(tmp_path, damage):
    _write_folder(tmp_path / 'data', count=4)
    bad = damage(tmp_path / 'data')
    with pytest.raises(DatasetError, match=bad):
        ds = ImageFolderDataset(tmp_path / 'data', resolution=8)
        for i in range(len(ds)):  # truncated pixel data is only found when decoding
            ds[i]
    with pytest.warns(UserWarning, match='skipped 1 bad image'):
        ds = ImageFolderDataset(tmp_path / 'data', resolution=8, skip_bad=True)
    assert ds.num_skipped == 1 and bad in ds.skipped[0][0]
    assert len(ds) == 3 if damage in (_corrupt, _non_image) else len(ds) == 4
    for i in range(len(ds)):
        assert ds[i][0].shape == (3, 8, 8)


def test_error_mentions_skip_option(tmp_path):
    _write_folder(tmp_path / 'data', count=2)
    _non_square(tmp_path / 'data')
    with pytest.raises(DatasetError, match='skip_bad=True'):
        ImageFolderDataset(tmp_path / 'data')


def test_missing_and_empty_dataset(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        ImageFolderDataset(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no PNG or JPEG'):
        ImageFolderDataset(tmp_path / 'empty')


# -- sampler -------------------------------------------------------------------------------------

def _take(sampler, count):
    it = iter(sampler)
    return [next(it) for _ in range(count)]


def test_sampler_covers_each_epoch_and_is_seeded():
    data = list(range(10))
    stream = _take(InfiniteSampler(data, seed=3), 30)
    for epoch in range(3):
        assert sorted(stream[10 * epoch:10 * epoch + 10]) == data
    assert stream[:10] != stream[10:20]  # epochs differ
    assert stream == _take(InfiniteSampler(data, seed=3), 30)
    assert stream != _take(InfiniteSampler(data, seed=4), 30)


def test_sampler_ranks_partition_the_global_stream():
    data = list(range(7))
    single = _take(InfiniteSampler(data, seed=1), 20)
    r0 = _take(InfiniteSampler(data, rank=0, num_replicas=2, seed=1), 10)
    r1 = _take(InfiniteSampler(data, rank=1, num_replicas=2, seed=1), 10)
    assert single[0::2] == r0 and single[1::2] == r1


def test_sampler_state_round_trip_continues_exactly():
    data = list(range(9))
    straight = _take(InfiniteSampler(data, seed=5), 40)
    first = InfiniteSampler(data, seed=5)
    assert _take(first, 17) == straight[:17]
    first.advance(17)
    state = first.state_dict()
    resumed = InfiniteSampler(data, seed=5)
    resumed.load_state_dict(state)
    assert _take(resumed, 23) == straight[17:]
    with pytest.raises(ValueError, match='seed'):
        InfiniteSampler(data, seed=6).load_state_dict(state)


def test_sampler_with_dataloader_independent_of_workers(tmp_path):
    dataset = list(range(11))

    def batches(num_workers, start=0):
        sampler = InfiniteSampler(dataset, seed=2)
        sampler.load_state_dict({'position': start})
        loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=4, num_workers=num_workers)
        it = iter(loader)
        return [next(it).tolist() for _ in range(3)]

    assert batches(0) == batches(2)
    assert batches(0, start=4) == batches(0)[1:] + batches(0, start=12)[:1]
