"""benchmarks/sar_sharpen.py: the pan-sharpening bound chooses detail by the real image, per block."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_SPEC = importlib.util.spec_from_file_location(
    "sar_sharpen", Path(__file__).resolve().parents[1] / "benchmarks" / "sar_sharpen.py")
sharpen = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sharpen)


def test_the_oracle_adds_detail_only_where_it_matches_the_real_image() -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.full((1, 3, 64, 64), 0.5)
    texture = (torch.rand(1, 1, 64, 64, generator=g) - 0.5) * 0.4
    noise = (torch.rand(1, 1, 64, 64, generator=g) - 0.5) * 0.4
    target = base + texture  # the real image: flat colour plus the texture
    detail = torch.cat([texture[..., :32], noise[..., 32:]], dim=-1)  # left half right, right half wrong
    gains = sharpen.oracle_gain_map(base, detail, target, block=32)
    assert gains.shape == (1, 1, 64, 64)
    assert float(gains[..., :32].min()) == 1.0   # the texture itself: exactly gain 1
    assert float(gains[..., 32:].max()) == 0.0   # uncorrelated noise: none


def test_detailed_without_settings_is_the_network_and_sar_detail_is_zero_on_flat_sar() -> None:
    net = torch.nn.Conv2d(1, 3, 3, padding=1)
    with torch.no_grad():  # small outputs, so that the final clamp to [-1, 1] never acts
        net.weight.mul_(0.1)
        net.bias.zero_()
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(sharpen.Detailed(net)(x), net(x).clamp(-1, 1))
        flat = torch.full((1, 1, 32, 32), 0.2)
        assert float(sharpen.sar_detail(flat, 4.0).abs().max()) < 1e-6
        added = sharpen.Detailed(net, sar_gain=0.5)(x) - net(x)
        assert torch.allclose(added, 0.5 * sharpen.sar_detail(x, 4.0).expand_as(added), atol=1e-6)
