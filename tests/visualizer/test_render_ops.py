"""Unit tests of the pure-torch pieces of the visualizer (no network, no GL)."""

import math

import numpy as np
import pytest
import torch

from visualizer import render_ops


def test_latent_corners_bilinear_weights():
    corners = render_ops.latent_corners(5, 0.25, 0.5)
    row = render_ops.SEED_ROW
    assert [s for s, _ in corners] == [5, 6, 5 + row, 6 + row]
    np.testing.assert_allclose([w for _, w in corners], [0.75 * 0.5, 0.25 * 0.5, 0.75 * 0.5, 0.25 * 0.5])
    # An integer position is exactly one seed.
    corners = render_ops.latent_corners(7, 2.0, 0.0)
    assert dict(corners)[9] == 1.0 and sum(w for _, w in corners) == 1.0
    # Negative offsets wrap into the valid seed range.
    assert all(0 <= s < 2 ** 32 for s, _ in render_ops.latent_corners(0, -0.5, -0.5))


def test_blend_ws_matches_hand_computation():
    ws = torch.randn(4, 3, 5)
    weights = [0.1, 0.2, 0.3, 0.4]
    expected = 0.1 * ws[0] + 0.2 * ws[1] + 0.3 * ws[2] + 0.4 * ws[3]
    torch.testing.assert_close(render_ops.blend_ws(ws, weights)[0], expected)


def test_style_mix_replaces_only_selected_entries():
    ws, mix = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    out = render_ops.apply_style_mix(ws, mix, (1, 3, 9))
    assert out[0, :, 0].tolist() == [0, 1, 0, 1]
    assert ws.sum() == 0            # input untouched


def test_input_transform_matches_reference_convention():
    # Reference values of shared/reference/README.md "Transform test": translate (0.125, -0.25), 10 degrees.
    m = render_ops.input_transform((0.125, -0.25), 10 / 360)
    np.testing.assert_allclose(m, [[0.98480773, -0.173648179, -0.166513011],
                                   [0.173648179, 0.98480773, 0.224495918], [0, 0, 1]], atol=1e-7)


def test_identity_untransform_is_identity():
    img = torch.randn(2, 3, 12, 16, dtype=torch.float64)
    torch.testing.assert_close(render_ops.untransform(img, (0, 0), 0), img)


def test_integer_shift_resample_is_exact_roll():
    img = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    # Content moved right by 2 px and down by 1 px: untransform samples img at x + (2, 1) px.
    out = render_ops.untransform(img, (2 / 16, 1 / 16), 0)
    torch.testing.assert_close(out[..., :-1, :-2], img[..., 1:, 2:])
    assert out[..., -1:, :].abs().max() < 1e-9 and out[..., :, -2:].abs().max() < 1e-9   # outside = black


def test_fractional_resample_of_band_limited_signal():
    # A low-frequency cosine is reproduced accurately by the Lanczos-3 interpolator.
    n = 32
    x = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    f = lambda xs: torch.cos(2 * math.pi * 3 * xs)[None, None, None, :].expand(1, 1, n, n)
    out = render_ops.affine_resample(f(x), render_ops.forward_transform((0.3 / n, 0), 0))
    torch.testing.assert_close(out[..., 4:-4], f(x + 0.3 / n)[..., 4:-4], atol=0.02, rtol=0)


def test_rotation_quarter_turn():
    img = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    out = render_ops.affine_resample(img, render_ops.forward_transform((0, 0), 0.25))
    # M maps (x, y) -> (y, -x): out[r, c] = img at x' = y, y' = -x, i.e. img[W-1-c, r].
    torch.testing.assert_close(out[0, 0], img[0, 0].flip(0).T, atol=1e-9, rtol=0)


def test_spectrum_peaks_at_signal_frequency():
    n = 32
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing='ij')
    x = torch.cos(2 * math.pi * 5 * xx / n)[None].double()              # 5 cycles along x
    db = render_ops.power_spectrum_db(x, beta=8)
    peak = np.unravel_index(int(db.argmax()), db.shape)
    assert peak[0] == n // 2 and abs(peak[1] - n // 2) == 5
    rgb = render_ops.spectrum_to_uint8(x, beta=8, range_db=40)
    assert rgb.shape == (n, n, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[peak]) == (252, 255, 164)                           # peak = top of the colour map


def test_colormap_endpoints_and_monotone_brightness():
    rgb = render_ops.colormap(torch.linspace(0, 1, 50)).astype(int)
    assert tuple(rgb[0]) == (0, 0, 4) and tuple(rgb[-1]) == (252, 255, 164)
    assert np.all(np.diff(rgb.sum(axis=1)) >= 0)


@pytest.mark.parametrize('rgb', [False, True])
def test_feature_display(rgb):
    x = torch.randn(5, 6, 7)
    out = render_ops.feature_to_uint8(x, channel=4, rgb=rgb, normalize=True, scale_db=0)
    assert out.shape == (6, 7, 3)
    if rgb:      # channels 4, 5(missing -> black), 6(missing -> black)
        assert out[..., 1].max() == 128 and out[..., 2].max() == 128
    else:
        assert (out[..., 0] == out[..., 1]).all()
    # +6 dB doubles the displayed contrast around mid-grey.
    a = render_ops.feature_to_uint8(x * 0.1, 0, False, False, 0).astype(float) - 128
    b = render_ops.feature_to_uint8(x * 0.1, 0, False, False, 20 * math.log10(2)).astype(float) - 128
    assert abs(np.abs(b).sum() / np.abs(a).sum() - 2) < 0.1
