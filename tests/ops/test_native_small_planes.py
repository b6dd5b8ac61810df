"""StyleGAN2's many small planes (4-tap blur and skip down-sampling of 128-512 channel maps of
16-32 px) run in the native flat multi-plane kernel (FlatPlanes in upfirdn2d.cpp), which once
lost to torch's depthwise conv there. It must equal the reference at those shapes, with first-
and second-order gradients (the backward is the same kernel with the adjoint geometry)."""

import pytest
import torch

from ops import backend, upfirdn2d


@pytest.mark.parametrize('down,size', [(1, 17), (1, 32), (2, 16), (2, 33), ((2, 1), 20)])
@pytest.mark.parametrize('separable', [True, False])
def test_small_planes_match_reference(down, size, separable):
    if not backend.native_available():
        pytest.skip('native ops backend unavailable')
    torch.manual_seed(0)
    f1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f1 / f1.sum() if separable else torch.outer(f1, f1) / f1.sum() ** 2
    x = torch.randn(1, 128, size, size, dtype=torch.float64, requires_grad=True)
    outs = {}
    for impl in ('ref', 'native'):
        y = upfirdn2d.upfirdn2d(x, f, down=down, padding=[1, 2, 1, 2], impl=impl)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        (ggx,) = torch.autograd.grad(gx.square().sum(), x)
        outs[impl] = (y, gx, ggx)
    for a, b in zip(outs['ref'], outs['native']):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_filter_taps_cache_follows_the_filter():
    """Taps are cached per filter tensor: an in-place change of the filter must take effect,
    and filters made under torch.inference_mode (no version counter) must work too."""
    if not backend.native_available():
        pytest.skip('native ops backend unavailable')
    x = torch.randn(1, 8, 12, 12)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    before = upfirdn2d.upfirdn2d(x, f, padding=1, impl='native')
    f.mul_(2)       # same tensor object, new values
    torch.testing.assert_close(upfirdn2d.upfirdn2d(x, f, padding=1, impl='native'), before * 4)
    torch.testing.assert_close(upfirdn2d.upfirdn2d(x, f, padding=1, impl='native'),
                               upfirdn2d.upfirdn2d(x, f, padding=1, impl='ref'))
    with torch.inference_mode():
        g = upfirdn2d.setup_filter([1, 3, 3, 1])
        torch.testing.assert_close(upfirdn2d.upfirdn2d(x, g, impl='native'), upfirdn2d.upfirdn2d(x, g, impl='ref'))


@pytest.mark.parametrize('down', [1, 2])
def test_flat_kernel_borders_are_zero_after_another_geometry(down):
    """The flat kernel's per-thread buffer is reused across calls: samples a previous call
    copied into what is now padding must not leak into the output. Runs on one thread so that
    both calls share the buffer."""
    if not backend.native_available():
        pytest.skip('native ops backend unavailable')
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        big = torch.full([1, 64, 24, 24], 1e6)            # fills the buffer's rows and columns
        upfirdn2d.upfirdn2d(big, f, down=down, padding=0, impl='native')
        x = torch.randn(1, 64, 20, 18, generator=torch.Generator().manual_seed(3))
        got = upfirdn2d.upfirdn2d(x, f, down=down, padding=[3, 2, 3, 1], impl='native')
    finally:
        torch.set_num_threads(threads)
    want = upfirdn2d.upfirdn2d(x, f, down=down, padding=[3, 2, 3, 1], impl='ref')
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
