"""Test-time augmentation: a network averaged over flips (and 90-degree rotations).

:class:`TTA` wraps any image-to-image network ``(B, C, H, W) -> (B, C', H, W)``
(or one returning a tuple of such maps, like the semantic model's
``(logits, ab)``). For each transform ``g`` of the set it runs the network on
``g(x)``, maps the output back with ``g^-1`` and averages::

    TTA(f)(x) = 1/|G| * sum_g g^-1(f(g(x)))

``mode``:

``flips``
    G = {identity, left-right flip, up-down flip, both}: 4 forward passes.
``d4``
    flips and the 90-degree rotations (the 8 symmetries of a square): 8 forward
    passes, on square inputs only; a non-square input falls back to ``flips``.

Because G is a group, the result is equivariant to G (``TTA(f)(g(x)) ==
g(TTA(f)(x))`` up to float rounding) whatever ``f`` is: a texture or grid that
the network paints in a fixed orientation averages out. Each transform is a
separate forward pass over the same batch and the sum runs in a fixed order,
so the output for one image does not depend on which other images share its
batch (in eval mode) any more than the plain network's does.

:class:`TTARunner` does the same around a batch function of the inference
engine (``geocolor colorize --tta`` wraps the torch or ONNX Runtime runner with
it, so BatchNorm folding and the runner cache stay as they are).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from geocolor.errors import UsageError

MODES = ("flips", "d4")

Transform = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _flip(dims: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: torch.flip(t, dims) if dims else t


def _rot(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: torch.rot90(t, k, dims=(-2, -1))


def transforms(mode: str, square: bool) -> list[Transform]:
    """(forward, inverse) pairs on (..., H, W) tensors, the identity first."""
    if mode not in MODES:
        raise UsageError(f"unknown TTA mode {mode!r}; choose one of {', '.join(MODES)}")
    flips = [(), (-1,), (-2,), (-2, -1)]
    out: list[Transform] = [(_flip(d), _flip(d)) for d in flips]
    if mode == "d4" and square:
        # rot90 then each flip: with the flips above, all 8 symmetries of the square
        for d in flips:
            out.append((lambda t, d=d: _flip(d)(_rot(1)(t)), lambda t, d=d: _rot(-1)(_flip(d)(t))))
    return out


class TTA(nn.Module):
    """``network`` averaged over the transforms of ``mode`` (see the module docstring).

    Attributes the engine reads from the wrapped network (``multiple``, ...) are
    passed through. Outputs are float32.
    """

    def __init__(self, network: nn.Module, mode: str = "flips") -> None:
        super().__init__()
        if mode not in MODES:
            raise UsageError(f"unknown TTA mode {mode!r}; choose one of {', '.join(MODES)}")
        self.network = network
        self.mode = mode

    def __getattr__(self, name: str) -> Any:  # pass through e.g. ``multiple``
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("network"), name)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        square = x.shape[-1] == x.shape[-2]
        total: list[torch.Tensor] | None = None
        steps = transforms(self.mode, square)
        for forward, inverse in steps:
            y = self.network(forward(x))
            parts = [inverse(t.float()) for t in (y if isinstance(y, tuple) else (y,))]
            total = parts if total is None else [a + b for a, b in zip(total, parts, strict=True)]
            single = not isinstance(y, tuple)
        assert total is not None
        result = tuple(t / len(steps) for t in total)
        return result[0] if single else result


class TTARunner:
    """TTA around a batch function ``fn(x) -> y`` of the inference engine (any backend).

    ``fn`` maps a batch ``(B, C, H, W)`` (numpy array or CPU tensor) to a numpy
    array ``(B, C', H, W)``; this runs it once per transform of ``mode`` on the
    transformed batch and returns the average of the inverse-transformed outputs
    (float32 numpy), summed in a fixed order. Other attributes (``pin_memory``)
    pass through to ``fn``.
    """

    def __init__(self, fn: Callable[[object], np.ndarray], mode: str = "flips") -> None:
        if mode not in MODES:
            raise UsageError(f"unknown TTA mode {mode!r}; choose one of {', '.join(MODES)}")
        self.fn = fn
        self.mode = mode

    def __getattr__(self, name: str) -> Any:  # e.g. the runner's pin_memory
        return getattr(self.__dict__["fn"], name)

    def __call__(self, x: object) -> np.ndarray:
        t = torch.as_tensor(x)
        steps = transforms(self.mode, t.shape[-1] == t.shape[-2])
        total: torch.Tensor | None = None
        for forward, inverse in steps:
            y = inverse(torch.as_tensor(np.asarray(self.fn(forward(t).contiguous())), dtype=torch.float32))
            total = y if total is None else total + y
        assert total is not None
        return (total / len(steps)).numpy()


def with_tta(network: nn.Module, mode: str | None) -> nn.Module:
    """``network`` wrapped in :class:`TTA` for ``mode`` ("flips" | "d4"); unchanged for None/"off"."""
    if mode in (None, "", "off", "none"):
        return network
    return TTA(network, mode)
