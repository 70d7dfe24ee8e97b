"""pix2pix U-Net generator.

For ``levels=8`` a 256x256 input is reduced by eight 4x4 stride-2 convolutions to a
1x1 bottleneck and expanded back with transposed convolutions; each decoder
level is concatenated with its mirror encoder level (skip connections).
"""
from __future__ import annotations

import torch
from torch import nn

from geocolor.errors import UsageError
from geocolor.models.layers import init_weights, norm_layer


def _channels(ngf: int, levels: int) -> list[int]:
    """Encoder output widths: ngf, 2ngf, 4ngf, then 8ngf for every deeper level."""
    return [ngf * min(2**i, 8) for i in range(levels)]


class UNetGenerator(nn.Module):
    """U-Net mapping (B, in_channels, H, W) in [-1, 1] to (B, out_channels, H, W) in [-1, 1].

    Args:
        in_channels: input channels (1 for SAR grey, 3 for RGB).
        out_channels: output channels.
        ngf: width of the first level (64 in pix2pix; about 54 M parameters).
        levels: number of stride-2 down-sampling steps; H and W must be multiples
            of ``2**levels`` (256 for the default 8).
        norm: ``"batch"`` or ``"instance"``.
        dropout: dropout probability in the three innermost decoder blocks.

    Encoder: LeakyReLU(0.2) -> Conv4x4/2 -> norm (no norm on the outermost and
    innermost). Decoder: ReLU -> ConvTranspose4x4/2 -> norm (-> dropout), and Tanh
    at the output.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        ngf: int = 64,
        levels: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if levels < 2:
            raise UsageError(f"U-Net needs at least 2 levels, got {levels}")
        make_norm = norm_layer(norm)
        use_bias = norm == "instance"  # BatchNorm has its own shift
        self.levels = levels
        widths = _channels(ngf, levels)

        self.down = nn.ModuleList()
        prev = in_channels
        for i, width in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Conv2d(prev, width, 4, 2, 1, bias=use_bias))
            if 0 < i < levels - 1:
                layers.append(make_norm(width))
            self.down.append(nn.Sequential(*layers))
            prev = width

        # Decoder block j (innermost first) takes the deeper output concatenated
        # with the skip from encoder level levels-1-j (the innermost has no skip).
        self.up = nn.ModuleList()
        for j in range(levels - 1):
            level = levels - 1 - j
            in_width = widths[level] * (1 if j == 0 else 2)
            out_width = widths[level - 1]
            layers = [
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(in_width, out_width, 4, 2, 1, bias=use_bias),
                make_norm(out_width),
            ]
            if 1 <= j <= 3 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.outermost = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(widths[0] * 2, out_channels, 4, 2, 1),
            nn.Tanh(),
        )
        init_weights(self)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.levels

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`UsageError` unless ``x`` is (B, C, H, W) with H, W multiples of 2**levels."""
        if x.ndim != 4:
            raise UsageError(f"U-Net expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise UsageError(
                f"U-Net with {self.levels} levels needs height and width that are multiples of "
                f"{self.multiple}, got {h}x{w} (input shape {tuple(x.shape)})"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](skips[-1])
        for j, block in enumerate(self.up[1:], start=1):
            x = block(torch.cat([x, skips[-1 - j]], dim=1))
        return self.outermost(torch.cat([x, skips[0]], dim=1))
