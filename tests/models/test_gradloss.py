"""The structure losses of ``train sar``: ``--lambda-grad``, ``--lambda-ssim``, ``--lambda-sharp``,
``--lambda-shift``."""
from __future__ import annotations

import math

import pytest
import torch
from cuda_marks import requires_cuda
from torch.nn import functional as F

from geocolor.models.gradloss import (
    SHIFT_RANGE,
    GradientMagnitudeLoss,
    SharpnessFloorLoss,
    SsimLoss,
    shift_consistency,
    shift_crop,
)


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


def _mesh(side: int = 64, period: int = 8, amplitude: float = 0.05) -> torch.Tensor:
    """A lattice on the pixel axes, like the one a strided generator can draw."""
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    return amplitude * (torch.cos(2 * math.pi * xx / period) + torch.cos(2 * math.pi * yy / period))


class _GridLocked(torch.nn.Module):
    """A shift-equivariant convolution plus a pattern fixed to the pixel grid (period 8)."""

    def __init__(self, mesh: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.mesh = mesh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + _mesh(x.shape[-1], amplitude=0.2)[: x.shape[-2]] if self.mesh else y


@pytest.mark.parametrize("shift", [(3, 5), (8, 1), (17, 30)])
def test_shift_consistency_is_zero_for_an_equivariant_net_and_catches_a_grid_locked_mesh(shift):
    x = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for mesh in (False, True):
        net = _GridLocked(mesh)
        with torch.no_grad():
            loss = float(shift_consistency(net(shift_crop(x, shift)), net(x), shift))
        if mesh:
            assert loss > 0.05  # the mesh stays put while the scene moves
        else:
            assert loss == pytest.approx(0, abs=1e-6)


def test_shift_consistency_forgives_a_mesh_moved_by_whole_periods():
    # a shift by whole periods of the mesh cannot reveal it: the measure is about sub-stride shifts
    x = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    net = _GridLocked(True)
    with torch.no_grad():
        assert float(shift_consistency(net(shift_crop(x, (8, 16))), net(x), (8, 16))) == pytest.approx(0, abs=1e-5)
    assert shift_crop(x, (8, 16)).shape[-2:] == (128 - SHIFT_RANGE, 128 - SHIFT_RANGE)


def test_shift_consistency_ignores_a_change_of_overall_colour():
    # the crop sees less context, which may rightly change its colours a little; only detail counts
    out = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1
    crop = shift_crop(out, (5, 9))
    tinted = crop + torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)
    assert float(shift_consistency(tinted, out, (5, 9))) == pytest.approx(0, abs=1e-5)
    assert float(shift_consistency(torch.roll(crop, 3, dims=-1), out, (5, 9))) > 0.1


def test_sharpness_floor_is_zero_above_the_floor_and_measures_the_shortfall_below():
    x = _scene()
    loss = SharpnessFloorLoss(floor=0.8)
    assert float(loss(x, x)) == 0.0
    assert float(loss(1.5 * x, x)) == 0.0  # more edge energy than the floor: no penalty, no cap
    flat = x.mean((2, 3), keepdim=True).expand_as(x)
    # no energy at all: the whole floor (less the sqrt(EPS) that keeps the root differentiable)
    assert float(loss(flat, x)) == pytest.approx(0.8, abs=5e-3)
    assert float(loss(0.5 * x, x)) == pytest.approx(0.3, abs=5e-3)  # half the energy: 0.8 - 0.5


def test_sharpness_floor_pushes_a_blurry_output_towards_more_detail():
    x = _scene()
    pred = (0.3 * x).requires_grad_(True)
    SharpnessFloorLoss(floor=0.8)(pred, x).backward()
    step = pred.detach() - 0.5 * pred.grad  # one gradient step
    assert SharpnessFloorLoss(floor=0.8)(step, x) < SharpnessFloorLoss(floor=0.8)(pred.detach(), x)
    with pytest.raises(ValueError, match="floor"):
        SharpnessFloorLoss(floor=0)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_ssim_loss_and_its_gradient_are_float32_under_bf16_autocast(device: str) -> None:
    """CUDA training runs the losses inside bf16 autocast (--amp); SSIM's local variances
    (means of squares minus squared means) must not be computed by bf16 convolutions."""
    torch.manual_seed(0)
    target = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 64, 64) * 2 - 1, 5, 1, 2).to(device)
    pred = (target + 0.05 * torch.randn_like(target)).requires_grad_(True)
    loss = SsimLoss()
    plain = loss(pred, target)
    (grad_plain,) = torch.autograd.grad(plain, pred)
    with torch.autocast(device, dtype=torch.bfloat16):
        mixed = loss(pred, target)
    (grad_mixed,) = torch.autograd.grad(mixed, pred)
    assert mixed.dtype == torch.float32
    assert abs(mixed.item() - plain.item()) < 1e-5
    assert torch.allclose(grad_mixed, grad_plain, rtol=1e-4, atol=1e-8)
