"""sRGB <-> LAB: agreement with scikit-image, round trips, scaling, gradients, input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color, data

from geocolor.data import lab

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: Stated tolerances (see geocolor/data/lab.py): float32 vs scikit-image, in L/a/b units.
SKIMAGE_TOL = 2e-3
ROUND_TRIP_TOL = 1e-4


def _random_rgb(seed: int = 0, shape: tuple[int, int] = (32, 48)) -> np.ndarray:
    rgb = np.random.default_rng(seed).random((*shape, 3))
    # Include the corners of the cube and values around the gamma threshold.
    rgb[0, :8] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.04, 0.04, 0.04],
                  [0.0405, 0.5, 0.003], [1, 1, 0]]
    return rgb


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(device: str, dtype: torch.dtype) -> None:
    rgb = _random_rgb()
    expected = color.rgb2lab(rgb)
    t = torch.tensor(rgb, dtype=dtype, device=device).permute(2, 0, 1)
    got = lab.rgb_to_lab(t).permute(1, 2, 0).cpu().double().numpy()
    tol = SKIMAGE_TOL if dtype == torch.float32 else 1e-8
    np.testing.assert_allclose(got, expected, atol=tol)


def test_rgb_to_lab_matches_skimage_on_a_photo() -> None:
    rgb = data.astronaut()
    np.testing.assert_allclose(lab.rgb_to_lab_np(rgb), color.rgb2lab(rgb), atol=SKIMAGE_TOL)


@pytest.mark.parametrize("device", DEVICES)
def test_lab_to_rgb_matches_skimage(device: str) -> None:
    lab_values = color.rgb2lab(_random_rgb(1))
    expected = color.lab2rgb(lab_values)
    t = torch.tensor(lab_values, dtype=torch.float32, device=device).permute(2, 0, 1)
    got = lab.lab_to_rgb(t).permute(1, 2, 0).cpu().numpy()
    np.testing.assert_allclose(got, expected, atol=ROUND_TRIP_TOL)


@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_batched(device: str) -> None:
    rgb = torch.rand(2, 3, 3, 17, 9, device=device)  # any leading batch shape
    back = lab.lab_to_rgb(lab.rgb_to_lab(rgb))
    assert back.shape == rgb.shape
    assert torch.allclose(back, rgb, atol=ROUND_TRIP_TOL)


def test_ranges_and_model_scaling() -> None:
    rgb = torch.tensor(_random_rgb(2)).permute(2, 0, 1).float()
    values = lab.rgb_to_lab(rgb)
    assert values[0].min() >= -1e-4 and values[0].max() <= 100 + 1e-4
    assert values[1:].abs().max() <= 128
    l, ab = lab.rgb_to_model(rgb)
    assert l.shape == (1, *rgb.shape[-2:]) and ab.shape == (2, *rgb.shape[-2:])
    assert l.min() >= -1 - 1e-6 and l.max() <= 1 + 1e-6
    assert ab.abs().max() <= 1
    # black -> -1, white -> +1, grey has no colour
    bw = torch.tensor([0.0, 1.0, 0.5]).view(1, 1, 3).expand(3, 1, 3)
    l_bw, ab_bw = lab.rgb_to_model(bw)
    assert torch.allclose(l_bw[0, 0, :2], torch.tensor([-1.0, 1.0]), atol=1e-4)
    assert ab_bw.abs().max() < 1e-4
    assert torch.allclose(lab.model_to_rgb(l, ab), rgb, atol=ROUND_TRIP_TOL)


def test_grey_to_model_l_equals_l_of_grey_rgb() -> None:
    grey = torch.rand(1, 1, 5, 7)
    l_expected, _ = lab.rgb_to_model(grey.expand(1, 3, 5, 7))
    assert torch.allclose(lab.grey_to_model_l(grey), l_expected)


def test_gradients_are_finite_at_zero_and_gradcheck() -> None:
    zeros = torch.zeros(1, 3, 4, 4, requires_grad=True)
    (grad,) = torch.autograd.grad(lab.rgb_to_lab(zeros).sum(), zeros)
    assert torch.isfinite(grad).all()
    x = torch.rand(1, 3, 3, 3, dtype=torch.float64).clamp(0.05, 0.95).requires_grad_()
    assert torch.autograd.gradcheck(lab.rgb_to_lab, (x,))
    y = lab.rgb_to_lab(x.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: lab.lab_to_rgb(v, clip=False), (y,))


def test_modules_match_functions() -> None:
    rgb = torch.rand(2, 3, 8, 8)
    assert torch.equal(lab.RgbToLab()(rgb), lab.rgb_to_lab(rgb))
    assert torch.equal(lab.LabToRgb()(lab.rgb_to_lab(rgb)), lab.lab_to_rgb(lab.rgb_to_lab(rgb)))


def test_bad_input_shapes_say_what_they_got() -> None:
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\).*\(4, 8, 8\)"):
        lab.rgb_to_lab(torch.rand(4, 8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        lab.rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="model_to_lab"):
        lab.model_to_lab(torch.rand(1, 4, 4), torch.rand(2, 5, 4))


def test_numpy_helpers_accept_uint8_and_uint16() -> None:
    rgb8 = (np.random.default_rng(3).random((6, 5, 3)) * 255).astype(np.uint8)
    rgb16 = rgb8.astype(np.uint16) * 257
    np.testing.assert_allclose(lab.rgb_to_lab_np(rgb8), lab.rgb_to_lab_np(rgb16), atol=1e-3)
    np.testing.assert_allclose(lab.lab_to_rgb_np(lab.rgb_to_lab_np(rgb8)) * 255, rgb8, atol=0.02)


def test_l_to_grey_is_the_neutral_colour_of_that_lightness() -> None:
    l = torch.rand(2, 1, 9, 7) * 2 - 1
    grey = lab.l_to_grey(l)
    full = lab.model_to_rgb(l, torch.zeros(2, 2, 9, 7))
    assert torch.allclose(grey.expand_as(full), full, atol=ROUND_TRIP_TOL)
    # and its L* is the input's
    back, _ = lab.rgb_to_model(grey.expand(2, 3, 9, 7))
    assert torch.allclose(back, l, atol=1e-4)


def test_fit_chroma_to_gamut_leaves_real_colours_alone() -> None:
    values = lab.rgb_to_lab(torch.rand(2, 3, 17, 9))
    assert torch.equal(lab.fit_chroma_to_gamut(values), values)
    assert lab.in_srgb_gamut(values).all()


def test_fit_chroma_to_gamut_keeps_lightness_and_hue_and_stops_at_the_edge() -> None:
    # navy in the dark, blue and green on bright pixels, yellow near white: all outside sRGB
    wanted = torch.tensor([[15.0, 10, -80], [80, 0, -90], [90, -100, 40], [97, -5, 90]]).T
    wanted = wanted[:, :, None]  # (3, 4, 1)
    assert not lab.in_srgb_gamut(wanted).any()
    fitted = lab.fit_chroma_to_gamut(wanted)
    assert lab.in_srgb_gamut(fitted).all()
    assert torch.equal(fitted[0], wanted[0])  # L*: the colorizer's input, kept
    scale = fitted[1:].norm(dim=0) / wanted[1:].norm(dim=0)
    assert (scale < 1).all()
    assert torch.allclose(fitted[1:], wanted[1:] * scale, atol=1e-4)  # same hue
    # as much chroma as fits: 1 % more is outside again
    assert not lab.in_srgb_gamut(torch.cat([fitted[:1], fitted[1:] * 1.01])).any()
    # sRGB of the fitted colours has the L* asked for; clipping channels would not
    shown = lab.rgb_to_lab(lab.lab_to_rgb(fitted))
    assert torch.allclose(shown[0], wanted[0], atol=0.05)
    clipped = lab.rgb_to_lab(lab.lab_to_rgb(wanted))
    assert (clipped[0] - wanted[0]).abs().max() > 2
    assert torch.allclose(lab.model_to_rgb(wanted[:1] / 50 - 1, wanted[1:] / 128),
                          lab.lab_to_rgb(fitted), atol=1e-6)
