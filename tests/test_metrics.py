"""Metrics agree with scikit-image and with hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from geocolor.metrics import (
    confusion_matrix,
    iou_per_class,
    l1,
    pixel_accuracy,
    psnr,
    ssim,
    ssim_map,
    to_unit,
)


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 40, 48, generator=g)
    pred = (target + 0.1 * torch.randn(2, 3, 40, 48, generator=g)).clamp(0, 1)
    return pred, target


def test_psnr_matches_skimage(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    pred, target = pair
    ours = psnr(pred, target)
    for i in range(2):
        ref = peak_signal_noise_ratio(target[i].numpy(), pred[i].numpy(), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-3)
    assert math.isinf(psnr(target, target)[0].item())


def test_ssim_matches_skimage(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    pred, target = pair
    ours = ssim(pred, target)
    for i in range(2):
        ref = structural_similarity(
            target[i].permute(1, 2, 0).numpy().astype(np.float64),
            pred[i].permute(1, 2, 0).numpy().astype(np.float64),
            channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )
        assert ours[i].item() == pytest.approx(ref, abs=1e-4)
    assert ssim(target, target).sub(1).abs().max() < 1e-6


def test_l1_and_to_unit() -> None:
    a = torch.zeros(1, 1, 4, 4)
    assert l1(a, a + 0.25).item() == pytest.approx(0.25)
    assert torch.equal(to_unit(torch.tensor([-2.0, -1.0, 0.0, 1.0])), torch.tensor([0.0, 0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\(1, 1, 4, 4\) and \(1, 1, 4, 3\)"):
        l1(a, a[..., :3])


def test_iou_and_accuracy_known_case() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    conf = confusion_matrix(pred, target, 2)
    assert conf.tolist() == [[3, 1], [0, 4]]
    iou = iou_per_class(conf)
    assert iou.tolist() == pytest.approx([3 / 4, 4 / 5])
    assert pixel_accuracy(conf) == pytest.approx(7 / 8)
    perfect = iou_per_class(confusion_matrix(target, target, 3))
    assert perfect[:2].tolist() == [1.0, 1.0] and math.isnan(perfect[2].item())


def test_ssim_map_padded_keeps_the_size_and_matches_the_valid_map_inside() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 40, 40, generator=g), torch.rand(2, 3, 40, 40, generator=g)
    valid = ssim_map(a, b)
    padded = ssim_map(a, b, pad="reflect")
    assert valid.shape == (2, 3, 30, 30) and padded.shape == (2, 3, 40, 40)
    assert torch.allclose(padded[..., 5:-5, 5:-5], valid)
    assert torch.allclose(valid.flatten(1).mean(1).float(), ssim(a, b))
