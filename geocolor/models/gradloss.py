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


class SharpnessFloorLoss(nn.Module):
    """How far the batch's edge energy falls short of ``floor`` times the real images'.

    ``ratio`` = mean luma Prewitt magnitude of ``pred`` over that of ``target``, over the
    whole batch (the sharpness ratio that ``geocolor evaluate`` reports). The loss is
    ``max(0, floor - ratio)``: a constraint on the *amount* of detail, not on where it
    goes, so the pixel and SSIM terms decide its placement (where it costs them least).
    Input: two (B, 3, H, W) tensors in [-1, 1]. Output: a scalar in [0, floor].
    """

    def __init__(self, floor: float = 0.8) -> None:
        super().__init__()
        if floor <= 0:
            raise ValueError(f"floor must be positive, got {floor!r}")
        self.floor = float(floor)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        energy_pred = _magnitude(luma(pred.float())).mean()
        energy_target = _magnitude(luma(target.float())).mean().detach()
        return F.relu(self.floor - energy_pred / energy_target.clamp_min(EPS))


#: ``shift_consistency``: the sub-crop is this much smaller than the training crop (a
#: multiple of the generator's largest stride, so that both fit it), and shifts are drawn
#: in 1..SHIFT_RANGE - 1 so that they fall between that stride's grid points.
SHIFT_RANGE = 32
#: Pixels at each border of the sub-crop left out of the comparison: there the two
#: outputs see different context (padding in one, image in the other).
SHIFT_MARGIN = 16
#: Box width whose local mean is taken out of both outputs before they are compared: the
#: mesh (periods of 8-11 px) is kept, while slow changes of colour, which the two crops'
#: different context may rightly bring, are not penalised.
SHIFT_HIGHPASS = 17


def shift_crop(images: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H - SHIFT_RANGE, W - SHIFT_RANGE), starting ``shift`` = (dy, dx) pixels in."""
    dy, dx = shift
    h, w = images.shape[-2] - SHIFT_RANGE, images.shape[-1] - SHIFT_RANGE
    return images[..., dy:dy + h, dx:dx + w]


def shift_consistency(output_of_crop: torch.Tensor, output: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """Mean |hp(G(crop(x, s))) - hp(crop(G(x), s))| away from the borders: 0 for a shift-equivariant G.

    A strided generator can paint a pattern locked to its own grid (a mesh that stays put
    when the scene moves by a few pixels). Such a pattern differs between the two outputs
    here, since the crop moves the scene against the grid; content that follows the scene
    does not. ``hp`` takes out the local mean (a :data:`SHIFT_HIGHPASS`-px box), so only
    fine detail is compared. Inputs: (B, C, h, w) ``output_of_crop`` =
    G(shift_crop(x, shift)) and (B, C, H, W) ``output`` = G(x), h = H - SHIFT_RANGE.
    Output: a scalar >= 0.
    """
    m = SHIFT_MARGIN
    a, b = (_high_pass(y.float())[..., m:-m, m:-m] for y in (output_of_crop, shift_crop(output, shift)))
    return F.l1_loss(a, b)


def _high_pass(y: torch.Tensor) -> torch.Tensor:
    k = SHIFT_HIGHPASS
    return y - F.avg_pool2d(y, k, stride=1, padding=k // 2, count_include_pad=False)
