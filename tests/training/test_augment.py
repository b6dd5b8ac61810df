"""ADA AugmentPipe and AdaController: gradients (incl. second order), ranges, identity at
p=0, distributions from the ADA paper appendix B, and the p update rule."""

import math

import pytest
import torch

from training.augment import AUGPIPE_SPECS, AdaController, AugmentPipe, band_filter_bank

SINGLE_AUGS = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness',
               'contrast', 'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout']


def _pipe(p=1.0, dtype=torch.float64, **kwargs):
    pipe = AugmentPipe(**kwargs).to(dtype)
    pipe.p.fill_(p)
    return pipe


def _seeded(pipe, seed):
    """The pipe as a deterministic function of the images (same random draws every call)."""
    def run(x):
        torch.manual_seed(seed)
        return pipe(x)
    return run


def _smooth_images(n, size=16, dtype=torch.float64):
    y, x = torch.meshgrid(torch.linspace(0, 3, size, dtype=dtype), torch.linspace(0, 3, size, dtype=dtype),
                          indexing='ij')
    phase = torch.arange(n, dtype=dtype)[:, None, None, None]
    r = torch.sin(x + phase) * torch.cos(y)
    return torch.cat([r, torch.cos(x - y + phase), torch.sin(2 * y - phase) * 0.8], dim=1) * 0.9  # [N,3,H,W]


def test_reference_interface():
    pipe = AugmentPipe(**AUGPIPE_SPECS['bgc'])
    sd = pipe.state_dict()
    assert list(sd) == ['p', 'Hz_geom', 'Hz_fbank']
    assert sd['p'].shape == () and sd['p'].item() == 0
    assert sd['Hz_geom'].shape == (12,) and abs(sd['Hz_geom'].sum().item() - 1) < 1e-6
    assert sd['Hz_fbank'].shape == (4, 43) and all(v.dtype == torch.float32 for v in sd.values())
    assert pipe.xint_max == 0.125 and pipe.scale_std == 0.2 and pipe.rotate_max == 1
    assert pipe.imgfilter_bands == [1, 1, 1, 1] and pipe.cutout_size == 0.5 and pipe.noise_std == 0.1
    assert pipe.xflip == 1 and pipe.imgfilter == 0
    assert set(AUGPIPE_SPECS) == {'blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc',
                                  'bgcf', 'bgcfn', 'bgcfnc'}
    rebuilt = AugmentPipe(**pipe.init_kwargs)
    rebuilt.load_state_dict(sd, strict=True)


def test_filter_bank_splits_octaves_and_sums_to_identity():
    bank = torch.tensor(band_filter_bank())
    impulse = torch.zeros(43, dtype=torch.float64)
    impulse[21] = 1
    torch.testing.assert_close(bank.sum(0), impulse)
    n = torch.arange(43, dtype=torch.float64) - 21

    def response(w):
        return (bank * torch.cos(w * n)).sum(1)   # zero-phase filters: real responses

    torch.testing.assert_close(response(0.0), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))
    torch.testing.assert_close(response(math.pi), torch.tensor([0, 0, 0, 1.0], dtype=torch.float64))
    for band, centre in enumerate([math.pi / 16, 3 * math.pi / 16, 3 * math.pi / 8, 3 * math.pi / 4]):
        assert response(centre).argmax() == band


def test_p_zero_is_exact_identity():
    x = torch.randn(3, 3, 16, 16)
    pipe = _pipe(0.0, torch.float32, **AUGPIPE_SPECS['bgcfnc'])
    assert torch.equal(pipe(x), x)


@pytest.mark.parametrize('name', SINGLE_AUGS)
def test_each_augmentation_changes_images_and_has_exact_gradients(name):
    pipe = _pipe(**{name: 1})
    x = _smooth_images(1, size=8).requires_grad_(True)
    # Some draws are no-ops (a flip coin says "no", a quarter turn of 0): use the first seed
    # whose draw changes the image; every seed must give an image of the same shape.
    seed = next(s for s in range(20) if not torch.allclose(_seeded(pipe, s)(x), x))
    run = _seeded(pipe, seed)
    assert torch.autograd.gradcheck(run, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize('name', ['bg', 'bgcfnc'])
def test_second_order_gradients(name):
    """R1 differentiates grad(D(aug(x)), x); this needs double backward through the pipe."""
    pipe = _pipe(**AUGPIPE_SPECS[name])
    x = _smooth_images(1, size=8).requires_grad_(True)
    assert torch.autograd.gradgradcheck(_seeded(pipe, 3), (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_r1_style_penalty_backpropagates():
    pipe = _pipe(1.0, torch.float32, **AUGPIPE_SPECS['bgc'])
    weight = torch.randn(3, 3, 3, 3, requires_grad=True)
    x = _smooth_images(2, dtype=torch.float32).requires_grad_(True)
    logits = torch.nn.functional.conv2d(pipe(x), weight).square().sum()
    (grad,) = torch.autograd.grad(logits, x, create_graph=True)
    grad.square().sum().backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_blit_moves_pixels_exactly():
    x = torch.randn(16, 3, 8, 8, dtype=torch.float64)
    torch.manual_seed(0)
    y = _pipe(**AUGPIPE_SPECS['blit'])(x)
    for a, b in zip(x, y):   # every output pixel (all channels) is an input pixel of that image
        inputs = a.reshape(3, -1).T
        outputs = b.reshape(3, -1).T
        assert (outputs[:, None, :] == inputs[None, :, :]).all(dim=2).any(dim=1).all()
    assert not torch.equal(x, y)


def test_geometric_ranges_and_constant_images():
    torch.manual_seed(0)
    x = _smooth_images(8)
    y = _pipe(**AUGPIPE_SPECS['bg'])(x)
    assert y.abs().max() <= 1.25 * x.abs().max()     # bilinear + low-pass: tiny overshoot only
    const = torch.full([4, 3, 16, 16], 0.5, dtype=torch.float64)
    y = _pipe(xfrac=1, scale=1)(const)               # reflect padding keeps constants constant
    torch.testing.assert_close(y, const)


def test_resampling_is_accurate_for_an_integer_shift():
    """The 2x-oversampled path (geometric) and the exact blit path agree on a pure shift."""
    from training import augment
    x = _smooth_images(1, size=24)
    g_inv = augment.translate2d(torch.tensor([2.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64))
    resampled = augment._resample(x, g_inv, AugmentPipe().Hz_geom)
    exact = augment._blit(x, g_inv)
    assert (resampled - exact)[..., 4:-4, 4:-4].abs().max() < 0.01


def test_color_distributions_follow_the_paper():
    torch.manual_seed(0)
    n = 4000
    x = torch.rand(n, 3, 1, 2, dtype=torch.float64) * 2 - 1
    luma = x.mean(dim=1)
    b = _pipe(brightness=1)(x) - x                      # b ~ N(0, 0.2^2), same for all pixels
    assert torch.allclose(b, b[:, :1, :1, :1].expand_as(b))
    assert abs(b[:, 0, 0, 0].std().item() - 0.2) < 0.02
    c = _pipe(contrast=1)(x) / x                         # c ~ 2^N(0, 0.5^2)
    assert abs(torch.log2(c[:, 0, 0, 0]).std().item() - 0.5) < 0.05
    for name in ('hue', 'saturation'):                   # both act off the grey axis only
        torch.testing.assert_close(_pipe(**{name: 1})(x).mean(dim=1), luma)
    hue = _pipe(hue=1)(x)                                # a rotation keeps the chroma length
    torch.testing.assert_close((hue - hue.mean(1, keepdim=True)).norm(dim=1), (x - luma[:, None]).norm(dim=1))
    flipped = _pipe(lumaflip=1)(x)
    flipped_luma = flipped.mean(dim=1)
    is_flipped = torch.isclose(flipped_luma, -luma).all(dim=(1, 2))
    is_kept = torch.isclose(flipped, x).flatten(1).all(dim=1)
    assert (is_flipped | is_kept).all() and 0.4 < is_flipped.double().mean() < 0.6


def test_grayscale_images_stay_single_channel():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    y = _pipe(1.0, torch.float32, **AUGPIPE_SPECS['bgc'])(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_noise_and_cutout():
    torch.manual_seed(0)
    x = torch.zeros(2000, 1, 16, 16, dtype=torch.float64)
    noise = _pipe(noise=1)(x)
    sigma = noise.flatten(1).std(dim=1)                 # sigma ~ |N(0, 0.1^2)|
    assert abs(sigma.mean().item() - 0.1 * math.sqrt(2 / math.pi)) < 0.005
    ones = torch.ones(500, 1, 16, 16, dtype=torch.float64)
    cut = _pipe(cutout=1)(ones)
    assert set(cut.unique().tolist()) == {0.0, 1.0}
    holes = (cut == 0).flatten(1).sum(dim=1)
    assert holes.max() <= 64 and (holes > 0).all()      # a square of at most half the size
    rows = (cut[:, 0] == 0).any(dim=2).sum(dim=1)
    cols = (cut[:, 0] == 0).any(dim=1).sum(dim=1)
    assert torch.equal(rows * cols, holes)               # the hole is a rectangle


def test_probability_gates_each_image():
    torch.manual_seed(0)
    x = torch.rand(2000, 3, 1, 1, dtype=torch.float64)
    y = _pipe(0.3, brightness=1)(x)
    changed = (y != x).flatten(1).any(dim=1).double().mean().item()
    assert abs(changed - 0.3) < 0.04
    pipe = _pipe(0.5, brightness=0.5)
    changed = (pipe(x) != x).flatten(1).any(dim=1).double().mean().item()
    assert abs(changed - 0.25) < 0.04


# -- ADA controller ------------------------------------------------------------------------------

def _run_controller(controller, pipe, sign, steps, batch=8):
    for _ in range(steps):
        controller.accumulate(torch.full([batch, 1], float(sign)))
        controller.step(pipe, batch)


def test_ada_p_rises_when_d_overfits_and_falls_otherwise():
    pipe = _pipe(0.0, torch.float32, **AUGPIPE_SPECS['bgc'])
    ada = AdaController(target=0.6, interval=4, kimg=0.1)   # 100 images to go from 0 to 1
    _run_controller(ada, pipe, +1, steps=8)                 # D(real) > 0 always: r_t = 1 > 0.6
    assert pipe.p.item() == pytest.approx(2 * 8 * 4 / 100)
    assert ada.rt == 1.0
    _run_controller(ada, pipe, +1, steps=100)
    assert pipe.p.item() == 1.0                             # clamped
    _run_controller(ada, pipe, -1, steps=4)
    assert pipe.p.item() == pytest.approx(1 - 32 / 100)
    _run_controller(ada, pipe, -1, steps=100)
    assert pipe.p.item() == 0.0


def test_ada_uses_target_threshold():
    pipe = _pipe(0.5, torch.float32)
    ada = AdaController(target=0.6, interval=1, kimg=1)
    logits = torch.tensor([1.0, 1.0, 1.0, -1.0])            # r_t = 0.5 < 0.6 -> p falls
    ada.accumulate(logits)
    ada.step(pipe, 4)
    assert pipe.p.item() == pytest.approx(0.5 - 4 / 1000)


def test_ada_state_round_trip_continues_exactly():
    signs = [1, 1, -1, 1, 1, 1, -1, 1, 1, 1]
    straight_pipe, straight = _pipe(0.0, torch.float32), AdaController(interval=4, kimg=0.5)
    for s in signs:
        _run_controller(straight, straight_pipe, s, steps=1)
    pipe, first = _pipe(0.0, torch.float32), AdaController(interval=4, kimg=0.5)
    for s in signs[:6]:                                     # stop mid-interval
        _run_controller(first, pipe, s, steps=1)
    state = first.state_dict()
    resumed = AdaController()
    resumed.load_state_dict(state)
    for s in signs[6:]:
        _run_controller(resumed, pipe, s, steps=1)
    assert pipe.p.item() == straight_pipe.p.item() and resumed.state_dict() == straight.state_dict()
