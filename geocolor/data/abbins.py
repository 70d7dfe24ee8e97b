"""Quantised a*b* colours: the classes of the colour-classification loss.

Regressing ab with a mean-squared error predicts the *mean* of the plausible
colours of a pixel: a sky that is blue in some training photos and white in others
comes out grey-cream. Zhang, Isola and Efros ("Colorful Image Colorization",
ECCV 2016) instead classify each pixel into one of the ab bins of a
10-unit grid, reweight rare colours, and decode with an *annealed mean* (the
mean of the distribution sharpened by a temperature), which keeps the mode's
saturation without the mode's speckle. This module holds that vocabulary:

* :func:`ab_bin_centres`: the bin centres, ``(Q, 2)`` in the model's ab scaling
  (ab / 128): Q = 262 bins of a 10-unit grid hold every sRGB colour;
* :func:`soft_encode`: ab images -> soft one-hot targets over the bins;
* :func:`nearest_bin`: ab images -> the index of the nearest bin;
* :func:`rebalance_weights`: the class weights from a histogram of training colours;
* :func:`annealed_mean`: logits -> ab.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch.nn import functional as F

from geocolor.data.lab import AB_SCALE, lab_to_rgb

#: Grid step of the bins in a*b* units, and the largest |a|, |b| centre.
BIN_STEP = 10.0
BIN_LIMIT = 110.0
#: Spread (a*b* units) of the Gaussian soft encoding and of the histogram smoothing.
SIGMA = 5.0
#: Neighbours that share a pixel's soft target.
NEIGHBOURS = 5
#: The paper's annealed-mean temperature and rebalancing mix.
TEMPERATURE = 0.38
REBALANCE = 0.5


@functools.lru_cache(maxsize=1)
def _centres_np() -> np.ndarray:
    steps = np.arange(-BIN_LIMIT, BIN_LIMIT + 1e-6, BIN_STEP)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    centres = np.stack([a.ravel(), b.ravel()], axis=1)  # (G, 2)
    # A bin is kept when any of 5x5 points of its cell is an sRGB colour at some L:
    # then every sRGB colour's nearest grid centre is a kept bin.
    offsets = np.linspace(-BIN_STEP / 2, BIN_STEP / 2, 5)
    da, db = np.meshgrid(offsets, offsets, indexing="ij")
    points = centres[:, None, :] + np.stack([da.ravel(), db.ravel()], axis=1)[None]  # (G, 25, 2)
    lightness = torch.arange(0.0, 101.0, 1.0, dtype=torch.float64)
    flat = torch.from_numpy(points.reshape(-1, 2))
    lab = torch.stack([lightness[:, None].expand(-1, len(flat)),
                       flat[:, 0][None].expand(len(lightness), -1),
                       flat[:, 1][None].expand(len(lightness), -1)])  # (3, L, G*25)
    rgb = lab_to_rgb(lab, clip=False)
    in_gamut = ((rgb >= 0) & (rgb <= 1)).all(dim=0).any(dim=0).view(len(centres), -1).any(dim=1).numpy()
    return (centres[in_gamut] / AB_SCALE).astype(np.float32)


def ab_bin_centres() -> torch.Tensor:
    """Centres of the bins that hold sRGB colours: ``(Q, 2)`` float32 in ab / 128 units.

    A 10-unit grid over a*, b* in [-110, 110], kept where the bin's cell holds an
    sRGB colour at some lightness L in 0..100: Q = 262 (the paper's 313 also count
    bins that only its ImageNet pixels reached).
    """
    return torch.from_numpy(_centres_np().copy())


def _squared_distances(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) ab and (Q, 2) centres (ab / 128) -> (B, Q, H, W) squared a*b* distances."""
    diff = ab.float().unsqueeze(1) - centres.to(ab.device).view(1, -1, 2, 1, 1)
    return (diff * AB_SCALE).pow(2).sum(dim=2)


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, neighbours: int = NEIGHBOURS,
                sigma: float = SIGMA) -> torch.Tensor:
    """Soft one-hot targets: each pixel's ``neighbours`` nearest bins, Gaussian-weighted.

    Args:
        ab: (B, 2, H, W) in ab / 128 units. centres: (Q, 2), same units.

    Returns:
        (B, Q, H, W) float32; every pixel's weights are >= 0 and sum to 1.
    """
    d2 = _squared_distances(ab, centres)
    near_d2, near_idx = d2.topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-near_d2 / (2 * sigma * sigma), dim=1)
    return torch.zeros_like(d2).scatter_(1, near_idx, weights)


def nearest_bin(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) ab (ab / 128) -> (B, H, W) int64 index of the nearest bin centre."""
    return _squared_distances(ab, centres).argmin(dim=1)


def rebalance_weights(counts: torch.Tensor, centres: torch.Tensor, mix: float = REBALANCE,
                      sigma: float = SIGMA) -> torch.Tensor:
    """Class weights that lift rare colours: ``w ∝ 1 / ((1 - mix) p + mix / Q)``.

    ``p`` is the histogram of nearest bins (``counts``, (Q,)) smoothed by a Gaussian
    of ``sigma`` a*b* units and normalised; the weights are scaled so that their
    expectation under ``p`` is 1 (the loss keeps its scale). ``mix`` 1 gives equal
    weights; 0 would weight by inverse frequency alone.

    Returns:
        (Q,) float32 weights > 0.
    """
    q = centres.shape[0]
    if counts.shape != (q,):
        raise ValueError(f"counts must have shape ({q},), got {tuple(counts.shape)}")
    if not 0 <= mix <= 1:
        raise ValueError(f"mix must be in [0, 1], got {mix}")
    p = counts.double() / counts.double().sum().clamp_min(1)
    d2 = ((centres.double()[:, None, :] - centres.double()[None, :, :]) * AB_SCALE).pow(2).sum(-1)
    kernel = torch.exp(-d2 / (2 * sigma * sigma))
    p = kernel @ p
    p = p / p.sum().clamp_min(1e-12)
    w = 1.0 / ((1 - mix) * p + mix / q)
    w = w / (p * w).sum()
    return w.float()


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Decode bin logits to ab: the mean of ``softmax(logits / T)`` over the bin centres.

    T = 1 is the distribution's mean (smooth, desaturated); T -> 0 its mode
    (saturated, patchy). Args: logits (B, Q, H, W); centres (Q, 2) in ab / 128.

    Returns:
        (B, 2, H, W) ab in ab / 128 units, in the logits' dtype.
    """
    probs = F.softmax(logits.float() / temperature, dim=1)
    ab = torch.einsum("bqhw,qc->bchw", probs, centres.float().to(logits.device))
    return ab.to(logits.dtype)
