"""Image metrics on tensors: L1, PSNR, SSIM, IoU, pixel accuracy.

Images are (B, C, H, W) floats in [0, 1] unless stated otherwise; each function
returns one value per image (shape (B,)) so callers can average per terrain or
overall. Use :func:`to_unit` to map model outputs from [-1, 1].
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, (B,)."""
    _check_pair(pred, target)
    return (pred - target).abs().flatten(1).mean(1)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, (B,)."""
    _check_pair(pred, target)
    return (pred - target).pow(2).flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, (B,); ``inf`` for identical images."""
    err = mse(pred.double(), target.double())
    return (10 * torch.log10(data_range**2 / err)).float()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, (B,), averaged over channels.

    Gaussian 11x11 window, sigma 1.5, K1=0.01, K2=0.03, valid region only: the same
    definition as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False, data_range=1)``.
    """
    _check_pair(pred, target)
    channels = pred.shape[1]
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size}x{window_size}, got {tuple(pred.shape)}")
    x, y = pred.double(), target.double()
    # The 2-D Gaussian window is separable: two 1-D passes give the same sums as
    # the 11x11 window and are ~10x faster (float64 grouped conv is slow on CPU).
    coords = torch.arange(window_size, dtype=torch.float64, device=x.device) - (window_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # five blurs in one call
    n = stack.shape[1]
    blurred = F.conv2d(stack, g.view(1, 1, 1, -1).expand(n, 1, 1, window_size).contiguous(), groups=n)
    blurred = F.conv2d(blurred, g.view(1, 1, -1, 1).expand(n, 1, window_size, 1).contiguous(), groups=n)
    mu_x, mu_y, exx, eyy, exy = blurred.split(channels, dim=1)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int = -1) -> torch.Tensor:
    """(n_classes, n_classes) counts, rows = target class, columns = predicted class.

    ``pred`` and ``target`` are integer label maps of one shape; target pixels
    equal to ``ignore_index`` are left out.
    """
    keep = target != ignore_index
    t, p = target[keep].long(), pred[keep].long()
    idx = t * n_classes + p
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU of each class from a confusion matrix; NaN for a class absent from both."""
    conf = confusion.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def pixel_accuracy(confusion: torch.Tensor) -> float:
    """Fraction of counted pixels labelled correctly."""
    total = confusion.sum()
    return float(confusion.diag().sum() / total) if total > 0 else float("nan")
