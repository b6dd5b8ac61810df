"""The native Winograd F(4x4, 3x3) convolution (ops/conv2d_winograd.py) against torch's direct
conv2d: values (float32 and float64, batches, groups, paddings, odd sizes, per-channel scales),
when it is used and when it steps aside (autograd, the reference backend), its weight-transform
cache, and a StyleGAN3 generator whose layers take it."""

import pytest
import torch
import torch.nn.functional as F

from ops import backend, conv2d_winograd
from ops.native import functions
from training import registry

pytestmark = pytest.mark.skipif(not backend.native_available(), reason='native ops backend unavailable')


@pytest.fixture
def always_winograd(monkeypatch):
    """Take the Winograd path for any size (the thresholds only decide where it is faster)."""
    monkeypatch.setattr(conv2d_winograd, 'MIN_TILES', 1)
    monkeypatch.setattr(conv2d_winograd, 'MIN_CHANNEL_PRODUCT', 0)
    monkeypatch.setattr(conv2d_winograd, 'MIN_CHANNEL_PRODUCT_LARGE', 0)


@pytest.fixture
def winograd_calls(monkeypatch):
    calls = []
    original = functions.winograd_conv3x3
    monkeypatch.setattr(functions, 'winograd_conv3x3', lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def _direct(x, w, in_scale, out_scale, padding, groups):
    y = F.conv2d(x * in_scale[:, :, None, None], w, padding=padding, groups=groups)
    return y * out_scale[:, :, None, None]


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 2e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize('batch,cin,cout,h,w,padding,groups', [
    (1, 8, 8, 9, 9, 2, 1), (1, 5, 7, 10, 13, 0, 1), (2, 6, 4, 13, 11, 1, 2), (3, 4, 6, 7, 8, 3, 1),
    (1, 3, 3, 3, 3, 0, 1), (2, 16, 8, 30, 17, 2, 4)])
def test_matches_direct_convolution(always_winograd, winograd_calls, dtype, tol, batch, cin, cout, h, w,
                                    padding, groups):
    gen = torch.Generator().manual_seed(batch * 100 + h)
    x = torch.randn(batch, cin * groups, h, w, generator=gen, dtype=dtype)
    weight = torch.randn(cout * groups, cin, 3, 3, generator=gen, dtype=dtype)
    in_scale = torch.rand(batch, cin * groups, generator=gen, dtype=dtype) + 0.5
    out_scale = torch.rand(batch, cout * groups, generator=gen, dtype=dtype) + 0.5
    with torch.no_grad():
        got = conv2d_winograd.scaled_conv2d(x, weight, in_scale, out_scale, padding=padding, groups=groups)
        plain = conv2d_winograd.conv2d(x, weight, padding=padding, groups=groups)
    want = _direct(x, weight, in_scale, out_scale, padding, groups)
    assert len(winograd_calls) == 2
    assert got.shape == want.shape
    assert (got - want).abs().max() <= tol * want.abs().max()
    plain_want = F.conv2d(x, weight, padding=padding, groups=groups)
    assert (plain - plain_want).abs().max() <= tol * plain_want.abs().max()


def test_steps_aside_for_autograd_and_the_reference_backend(always_winograd, winograd_calls):
    x = torch.randn(1, 8, 12, 12, requires_grad=True)
    weight = torch.randn(8, 8, 3, 3)
    y = conv2d_winograd.conv2d(x, weight, padding=1)
    assert not winograd_calls and y.grad_fn is not None       # torch's conv2d, with its gradient
    (gx,) = torch.autograd.grad(y.square().sum(), x)
    (want,) = torch.autograd.grad(F.conv2d(x, weight, padding=1).square().sum(), x)
    torch.testing.assert_close(gx, want)
    with torch.no_grad():
        conv2d_winograd.conv2d(x, weight, padding=1, impl='ref')
        assert not winograd_calls
        conv2d_winograd.conv2d(x, weight, padding=1, impl='native')
        assert len(winograd_calls) == 1
    assert not conv2d_winograd.applies(x, torch.randn(8, 8, 1, 1))  # only 3x3 filters


def test_thresholds_keep_narrow_layers_direct(winograd_calls):
    """Narrow layers (the bundled 64 px models: <= 128 channels on <= 76 px maps) are faster
    direct; wide ones on large maps take Winograd."""
    with torch.no_grad():
        assert not conv2d_winograd.applies(torch.randn(1, 128, 36, 36), torch.randn(128, 128, 3, 3), 2)
        assert not conv2d_winograd.applies(torch.randn(1, 256, 12, 12), torch.randn(256, 256, 3, 3), 2)
        assert conv2d_winograd.applies(torch.randn(1, 256, 36, 36), torch.randn(256, 256, 3, 3), 2)
        assert conv2d_winograd.applies(torch.randn(1, 128, 150, 150), torch.randn(128, 128, 3, 3), 2)


def test_cached_weight_transform_follows_the_weight(always_winograd):
    x = torch.randn(1, 8, 10, 10)
    weight = torch.nn.Parameter(torch.randn(8, 8, 3, 3))
    with torch.no_grad():
        first = conv2d_winograd.conv2d(x, weight, padding=1, cache_weight=True)
        assert conv2d_winograd._cached_transform(weight, x.dtype) is not None
        weight.mul_(2)                                        # in place: a new version
        second = conv2d_winograd.conv2d(x, weight, padding=1, cache_weight=True)
    torch.testing.assert_close(second, first * 2, rtol=1e-5, atol=1e-5)
    key = (id(weight), x.dtype)
    del weight
    assert key not in conv2d_winograd._CACHE                  # dropped with the weight


def test_stylegan3_generator_uses_winograd_and_matches_the_reference(winograd_calls, monkeypatch):
    """A StyleGAN3-T whose 256-channel layers on 36 px maps take the Winograd path: its image
    equals the reference backend's (direct convolutions) to float32 rounding, well inside the
    1e-4 the reference vectors allow."""
    torch.manual_seed(0)
    G = registry.create_generator('stylegan3-t', img_resolution=16, channel_base=4096, channel_max=256,
                                  num_layers=6).eval().requires_grad_(False)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        native = G(z, None, noise_mode='const')
        assert len(winograd_calls) == 6                       # every 3x3 layer, once
        monkeypatch.setenv(backend.ENV_VAR, 'ref')
        ref = G(z, None, noise_mode='const')
    assert len(winograd_calls) == 6
    assert (native - ref).abs().max() <= 1e-5         # measured 6e-7 (images within +-0.5)


def test_large_batches_run_in_chunks(always_winograd, monkeypatch):
    """Batches whose transformed tiles exceed the chunk budget run a few images at a time, into
    the same output; the result is unchanged."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(5, 6, 14, 15, generator=gen)
    weight = torch.randn(4, 6, 3, 3, generator=gen)
    in_scale, out_scale = torch.rand(5, 6, generator=gen), torch.rand(5, 4, generator=gen)
    chunks = []
    original = functions._winograd_chunk
    monkeypatch.setattr(functions, '_winograd_chunk', lambda x, *a: chunks.append(len(x)) or original(x, *a))
    monkeypatch.setattr(functions, '_WINOGRAD_CHUNK_BYTES', 2 * 36 * 6 * 4 * 4 * 4)  # two images
    with torch.no_grad():
        got = conv2d_winograd.scaled_conv2d(x, weight, in_scale, out_scale, padding=1)
    assert chunks == [2, 2, 1]
    want = _direct(x, weight, in_scale, out_scale, 1, 1)
    assert (got - want).abs().max() <= 2e-5 * want.abs().max()
