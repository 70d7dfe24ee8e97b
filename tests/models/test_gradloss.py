"""The gradient-magnitude (structure) loss of ``train sar --lambda-grad``."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from geocolor.models.gradloss import GradientMagnitudeLoss, SsimLoss


def _scene(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 32, 32, generator=g) * 2 - 1


def test_zero_for_the_same_image_and_for_edges_of_the_other_sign():
    loss = GradientMagnitudeLoss()
    x = _scene()
    assert float(loss(x, x)) == pytest.approx(0, abs=1e-3)
    # magnitudes only: an inverted image has the same edge strength everywhere
    assert float(loss(-x, x)) == pytest.approx(0, abs=1e-3)


def test_blur_and_a_flat_image_cost_more_than_a_sharp_guess():
    loss = GradientMagnitudeLoss()
    x = _scene()
    blurred = F.avg_pool2d(x, 5, stride=1, padding=2)
    flat = x.mean((2, 3), keepdim=True).expand_as(x)
    assert float(loss(flat, x)) > float(loss(blurred, x)) > float(loss(x, x))


def test_gradients_are_finite_on_flat_images():
    pred = torch.zeros(1, 3, 16, 16, requires_grad=True)
    GradientMagnitudeLoss()(pred, torch.zeros(1, 3, 16, 16)).backward()
    assert torch.isfinite(pred.grad).all()


def test_scales_must_be_positive():
    with pytest.raises(ValueError, match="scales"):
        GradientMagnitudeLoss(scales=(0,))


def test_ssim_loss_is_zero_for_the_same_image_and_punishes_texture_out_of_phase():
    loss = SsimLoss()
    x = _scene()
    shifted = torch.roll(x, shifts=1, dims=-1)  # same texture strength, wrong phase
    assert float(loss(x, x)) == pytest.approx(0, abs=1e-5)
    assert float(loss(shifted, x)) > float(loss(F.avg_pool2d(x, 3, stride=1, padding=1), x)) > 0
