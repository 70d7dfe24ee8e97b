"""Test-time augmentation: equivariance by construction, batch-size independence, tuple outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from geocolor.errors import UsageError
from geocolor.models.tta import TTA, transforms, with_tta


class Lopsided(nn.Module):
    """Deliberately not flip-equivariant: an asymmetric conv, batch norm, and a horizontal ramp."""

    multiple = 8

    def __init__(self, out_channels: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        ramp = torch.linspace(-1, 1, x.shape[-1]).view(1, 1, 1, -1)
        return torch.tanh(self.norm(self.conv(x)) + ramp)


@pytest.fixture
def net() -> Lopsided:
    n = Lopsided()
    n.norm.running_mean.uniform_(-0.2, 0.2)
    n.norm.running_var.uniform_(0.5, 2.0)
    return n.eval()


def _images(n: int = 5, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("mode", ["flips", "d4"])
def test_tta_output_is_equivariant_even_when_the_network_is_not(net: Lopsided, mode: str) -> None:
    x = _images()
    tta = TTA(net, mode).eval()
    with torch.inference_mode():
        base = tta(x)
        for forward, _inverse in transforms(mode, square=True):
            assert torch.allclose(tta(forward(x)), forward(base), atol=1e-5)
        plain = net(x)
        # the plain network is not equivariant: the check above is not trivially true
        assert not torch.allclose(net(torch.flip(x, (-1,))), torch.flip(plain, (-1,)), atol=1e-2)
    assert not torch.allclose(base, plain, atol=1e-3)


def test_tta_leaves_an_equivariant_network_unchanged() -> None:
    pointwise = nn.Conv2d(1, 3, 1).eval()
    x = _images()
    with torch.inference_mode():
        assert torch.allclose(TTA(pointwise, "d4")(x), pointwise(x), atol=1e-6)


@pytest.mark.parametrize("mode", ["flips", "d4"])
def test_tta_output_does_not_depend_on_batch_size(net: Lopsided, mode: str) -> None:
    x = _images(7)
    tta = TTA(net, mode).eval()
    with torch.inference_mode():
        together = tta(x)
        alone = torch.cat([tta(x[i:i + 1]) for i in range(len(x))])
        pairs = torch.cat([tta(x[i:i + 2]) for i in range(0, len(x), 2)])
    assert torch.allclose(together, alone, atol=1e-6)
    assert torch.allclose(together, pairs, atol=1e-6)


def test_passes_counts_tuples_and_non_square_inputs(net: Lopsided) -> None:
    with torch.inference_mode():
        TTA(net, "d4")(_images(2))
        assert net.calls == 8
        net.calls = 0
        TTA(net, "d4")(_images(2, 16, 24))  # not square: rotations are skipped
        assert net.calls == 4

    class Pair(nn.Module):
        multiple = 16

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.cat([x, -x], 1), x[..., :, :].cumsum(-1)

    wrapped = with_tta(Pair(), "flips")
    assert wrapped.multiple == 16  # attributes pass through
    out = wrapped(_images(1, 8, 12))
    assert isinstance(out, tuple) and out[0].shape == (1, 2, 8, 12) and out[1].shape == (1, 1, 8, 12)
    assert with_tta(net, None) is net and with_tta(net, "off") is net
    with pytest.raises(UsageError, match="flips, d4"):
        TTA(net, "rotate")


def test_runner_wrapper_matches_the_module_wrapper(net: Lopsided) -> None:
    from geocolor.models.tta import TTARunner

    def runner(x: object) -> np.ndarray:  # an engine runner: array or tensor in, numpy out
        with torch.inference_mode():
            return net(torch.as_tensor(x)).numpy()

    runner.pin_memory = False  # type: ignore[attr-defined]
    x = _images(3)
    wrapped = TTARunner(runner, "d4")
    assert wrapped.pin_memory is False
    got = wrapped(x.numpy())
    with torch.inference_mode():
        want = TTA(net, "d4")(x).numpy()
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-6)
