"""The ab-bin vocabulary of the colour-classification loss."""
from __future__ import annotations

import math

import pytest
import torch

from geocolor.data.abbins import (
    BIN_STEP,
    ab_bin_centres,
    annealed_mean,
    nearest_bin,
    rebalance_weights,
    soft_encode,
)
from geocolor.data.lab import AB_SCALE, rgb_to_lab


def _srgb_ab(n: int = 4096, seed: int = 0) -> torch.Tensor:
    """(1, 2, 1, n) ab / 128 of random sRGB colours, the primaries and greys included."""
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(3, 1, n, generator=g)
    rgb[:, 0, :8] = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
                                  [0.5, 0.5, 0.5], [1, 1, 1]], dtype=torch.float32).T
    return (rgb_to_lab(rgb)[1:] / AB_SCALE)[None]


def test_every_srgb_colour_lies_in_its_nearest_bins_cell():
    centres = ab_bin_centres()
    assert centres.shape == (262, 2) and centres.dtype == torch.float32
    ab = _srgb_ab()
    nearest = centres[nearest_bin(ab, centres)[0, 0]]  # (n, 2)
    gap = (nearest - ab[0, :, 0].T).abs() * AB_SCALE
    assert float(gap.max()) <= BIN_STEP / 2 + 1e-3


def test_soft_targets_sum_to_one_and_peak_at_the_nearest_bin():
    centres = ab_bin_centres()
    ab = _srgb_ab(256)
    target = soft_encode(ab, centres)
    assert target.shape == (1, 262, 1, 256)
    assert torch.allclose(target.sum(1), torch.ones(1, 1, 256), atol=1e-5)
    assert int((target > 0).sum(1).max()) == 5
    assert torch.equal(target.argmax(1), nearest_bin(ab, centres))


def test_rebalancing_lifts_rare_colours_and_keeps_the_loss_scale():
    centres = ab_bin_centres()
    counts = torch.zeros(262, dtype=torch.int64)
    grey = int(nearest_bin(torch.zeros(1, 2, 1, 1), centres))
    blue = int(nearest_bin(_srgb_ab()[..., 2:3], centres))
    counts[grey], counts[blue] = 990, 10
    w = rebalance_weights(counts, centres, mix=0.5)
    assert w.shape == (262,) and bool((w > 0).all())
    assert float(w[blue]) > 5 * float(w[grey])
    assert torch.allclose(rebalance_weights(counts, centres, mix=1.0), torch.ones(262), atol=1e-4)
    with pytest.raises(ValueError, match="mix"):
        rebalance_weights(counts, centres, mix=1.5)


def test_annealed_mean_moves_from_the_mean_to_the_mode_as_t_falls():
    centres = ab_bin_centres()
    logits = torch.full((1, 262, 1, 1), -5.0)
    logits[0, 10], logits[0, 200] = 2.0, 1.0
    mode = annealed_mean(logits, centres, temperature=0.01)[0, :, 0, 0]
    assert torch.allclose(mode, centres[10], atol=1e-4)
    warm = annealed_mean(logits, centres, temperature=1.0)[0, :, 0, 0]
    probs = torch.softmax(logits[0, :, 0, 0], 0)
    assert torch.allclose(warm, probs @ centres, atol=1e-5)
    cold_gap = float((annealed_mean(logits, centres, 0.38)[0, :, 0, 0] - centres[10]).norm())
    assert cold_gap < float((warm - centres[10]).norm())
    assert math.isfinite(float(annealed_mean(torch.randn(2, 262, 3, 3), centres).sum()))
