"""Structure losses: gradient magnitude (edge energy where the real image has it) and SSIM.

Pixel L1 alone makes a SAR -> optical generator paint the conditional median, a
smooth wash with a fraction of the real image's edge energy (sharpness ratio
0.1-0.2 in our runs). This loss compares *magnitudes* of the luma gradients, not
their signs, so the generator is asked for texture of the right strength in the
right places (streets, field edges) without having to guess its exact phase,
which speckle hides. It is the training-side counterpart of GMSD (Xue et al.
2014), which ``geocolor evaluate`` reports: both look at Prewitt magnitudes of
the luma, at full and half resolution.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from geocolor.metrics import luma, prewitt_gradients, ssim

#: Keeps sqrt differentiable on flat areas (gradient units of [-1, 1] images).
EPS = 1e-6


class GradientMagnitudeLoss(nn.Module):
    """Mean |m(pred) - m(target)| of luma Prewitt magnitudes over ``scales``.

    Args:
        scales: average-pooling factors (1 = full resolution; GMSD works at 2).

    Input: two (B, 3, H, W) tensors in [-1, 1] (H, W >= 3 * max(scales)).
    Output: a scalar; 0 when the edge strength matches everywhere.
    """

    def __init__(self, scales: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        if not scales or min(scales) < 1:
            raise ValueError(f"scales must be positive pooling factors, got {scales!r}")
        self.scales = tuple(scales)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        yp, yt = luma(pred.float()), luma(target.float())
        total = pred.new_zeros((), dtype=torch.float32)
        for s in self.scales:
            p, t = (F.avg_pool2d(y, s) if s > 1 else y for y in (yp, yt))
            total = total + F.l1_loss(_magnitude(p), _magnitude(t))
        return total / len(self.scales)


def _magnitude(y: torch.Tensor) -> torch.Tensor:
    # EPS inside the root: sqrt has an infinite derivative at 0 (flat areas).
    return (prewitt_gradients(y, 0).pow(2).sum(1, keepdim=True) + EPS).sqrt()


class SsimLoss(nn.Module):
    """1 - SSIM (Wang et al. 2004; the 11x11 Gaussian window that evaluate uses), float32.

    Input: two (B, 3, H, W) tensors in [-1, 1] (H, W >= 11), compared in [0, 1].
    Output: a scalar in [0, 2]; 0 for identical images. Unlike L1 it rewards local
    structure whose phase matches the real image's and punishes texture that does
    not, which balances the gradient-magnitude loss.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = (pred.float() + 1) / 2, (target.float() + 1) / 2
        return 1 - ssim(p, t, dtype=torch.float32).mean()
