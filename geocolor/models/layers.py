"""Small shared building blocks."""
from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from geocolor.errors import ConfigError

NORMS = ("batch", "instance")


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """A constructor ``channels -> normalisation module`` for ``norm`` in :data:`NORMS`.

    Instance norm is affine-free and keeps no running statistics (pix2pix style).
    """
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise ConfigError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix initialisation: conv weights ~ N(0, gain), norm weights ~ N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
