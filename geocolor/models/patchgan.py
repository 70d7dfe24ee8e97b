"""PatchGAN discriminator (pix2pix 70x70, 3 layers)."""
from __future__ import annotations

import torch
from torch import nn

from geocolor.models.layers import init_weights, norm_layer


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: (source, target) -> per-patch real/fake logits.

    Input: source (B, Cs, H, W) and target (B, Ct, H, W) in [-1, 1], concatenated to
    ``in_channels = Cs + Ct``. Output: logits (B, 1, H/8 - 2, W/8 - 2), e.g. 30x30
    for 256x256, each seeing a 70x70 receptive field. No sigmoid: pair with
    BCE-with-logits (or MSE for LSGAN).
    """

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        make_norm = norm_layer(norm)
        use_bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=use_bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([source, target], dim=1))
