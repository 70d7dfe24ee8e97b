"""Structure metrics: GMSD against the reference algorithm, sharpness and colourfulness known cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from torch.nn import functional as F

from geocolor.metrics import (
    colourfulness,
    colourfulness_ratio,
    gmsd,
    mean_gradient,
    prewitt_gradients,
    sharpness_ratio,
)


def _reference_gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Xue et al.'s MATLAB GMSD.m, line by line in numpy (grey images in [0, 255])."""
    ave = np.full((2, 2), 0.25)
    a = convolve2d(a, ave, mode="full")[1:, 1:][: a.shape[0], : a.shape[1]][::2, ::2]
    b = convolve2d(b, ave, mode="full")[1:, 1:][: b.shape[0], : b.shape[1]][::2, ::2]
    dx = np.array([[1, 0, -1]] * 3) / 3.0
    dy = dx.T

    def gm(y: np.ndarray) -> np.ndarray:
        # MATLAB conv2 flips the kernel: use correlation via a flipped kernel for the same sign
        gx = convolve2d(y, dx[::-1, ::-1], mode="same")
        gy = convolve2d(y, dy[::-1, ::-1], mode="same")
        return np.sqrt(gx**2 + gy**2)

    ga, gb = gm(a), gm(b)
    q = (2 * ga * gb + 170) / (ga**2 + gb**2 + 170)
    return float(np.std(q, ddof=1))


@pytest.fixture
def scene() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    base = F.interpolate(torch.rand(2, 3, 8, 8, generator=g), size=(48, 48), mode="bilinear")
    return (base + 0.05 * torch.rand(2, 3, 48, 48, generator=g)).clamp(0, 1)


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.ones(x.shape[1], 1, 5, 5) / 25
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k, groups=x.shape[1])


def test_gmsd_matches_the_reference_algorithm(scene: torch.Tensor) -> None:
    grey_a, grey_b = scene[:1, :1], _blur(scene)[:1, :1]
    ours = gmsd(grey_a, grey_b)[0].item()
    ref = _reference_gmsd(grey_a[0, 0].double().numpy() * 255, grey_b[0, 0].double().numpy() * 255)
    assert ours == pytest.approx(ref, rel=1e-4)
    assert ours > 0.01


def test_gmsd_is_zero_for_identical_images_and_grows_with_blur_and_invented_texture(scene: torch.Tensor) -> None:
    assert torch.allclose(gmsd(scene, scene), torch.zeros(2), atol=1e-6)
    mild, strong = _blur(scene), _blur(_blur(_blur(scene)))
    assert (gmsd(mild, scene) > 0).all()
    assert (gmsd(strong, scene) > gmsd(mild, scene)).all()
    g = torch.Generator().manual_seed(2)
    noise = torch.rand(scene.shape, generator=g) - 0.5
    weak, loud = (scene + 0.05 * noise).clamp(0, 1), (scene + 0.4 * noise).clamp(0, 1)
    assert (gmsd(weak, scene) > 0).all()
    assert (gmsd(loud, scene) > gmsd(weak, scene)).all()
    # symmetric in its arguments, and a constant image is far from a textured one
    assert torch.allclose(gmsd(mild, scene), gmsd(scene, mild))
    flat = torch.full_like(scene, 0.5)
    assert (gmsd(flat, scene) > gmsd(mild, scene)).all()


def test_sharpness_ratio(scene: torch.Tensor) -> None:
    assert torch.allclose(sharpness_ratio(scene, scene), torch.ones(2))
    assert (sharpness_ratio(_blur(scene), scene) < 0.8).all()
    assert (sharpness_ratio(scene, _blur(scene)) > 1.2).all()
    assert (mean_gradient(torch.full((1, 3, 9, 9), 0.3)) == 0).all()
    # a vertical step of 1.0 (255 luma units) seen by Prewitt / 3: magnitude 255 on the two
    # valid columns next to the edge, 0 elsewhere
    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1.0
    assert mean_gradient(step).item() == pytest.approx(255 * 2 / 4)


@pytest.mark.parametrize("padding", [0, 1])
def test_prewitt_gradients_are_the_textbook_kernels(padding) -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.rand(2, 1, 13, 17, generator=g, dtype=torch.float64)
    dx = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64) / 3
    expected = F.conv2d(y, torch.stack([dx, dx.t()])[:, None], padding=padding)
    got = prewitt_gradients(y, padding)
    assert got.shape == expected.shape == (2, 2, 11 + 2 * padding, 15 + 2 * padding)
    assert torch.allclose(got, expected, atol=1e-12)
    # a flat region is exactly 0, whatever rounding the CPU's convolution kernels do
    flat = torch.full((1, 1, 9, 9), 0.3, dtype=torch.float64)
    assert (prewitt_gradients(flat, padding)[..., 1:-1, 1:-1] == 0).all()


def test_colourfulness_known_values() -> None:
    grey = torch.rand(2, 1, 16, 16).expand(-1, 3, -1, -1)
    assert torch.allclose(colourfulness(grey), torch.zeros(2), atol=1e-4)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0  # rg = 255, yb = 127.5, no spread
    assert colourfulness(red).item() == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-5)
    half = torch.zeros(1, 3, 4, 4)
    half[:, 0, :, :2] = 1.0  # rg in {255, 0}: std 127.5; yb in {127.5, 0}: std 63.75
    expected = np.hypot(127.5, 63.75) + 0.3 * np.hypot(127.5, 63.75)
    assert colourfulness(half).item() == pytest.approx(expected, rel=1e-5)
    assert colourfulness_ratio(grey[:1, :, :4, :4], half).item() == pytest.approx(0, abs=1e-6)
    assert colourfulness_ratio(half, half).item() == pytest.approx(1)


def test_shape_errors_name_the_shape() -> None:
    with pytest.raises(ValueError, match=r"\(1, 3, 2, 2\)"):
        gmsd(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="RGB"):
        colourfulness(torch.zeros(1, 1, 8, 8))
