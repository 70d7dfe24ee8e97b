"""Semantic colorization networks: L channel -> (segmentation logits, ab).

Both take L scaled to [-1, 1], shape (B, 1, H, W), and return
``(seg_logits (B, n_classes, H, W), ab (B, 2, H, W) in [-1, 1])``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from geocolor.errors import UsageError
from geocolor.models.pretrained import load_pretrained_state


def _head(out_channels: int, tanh: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(64, 32, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, out_channels, 1),
    ]
    if tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _check_l_input(x: torch.Tensor, multiple: int) -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise UsageError(f"expected L input of shape (B, 1, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise UsageError(f"input height and width must be multiples of {multiple}, got {h}x{w}")


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SegColorNet(nn.Module):
    """ResNet34 encoder on L (256x256x1 -> 8x8x512), transposed-conv decoder, two heads.

    Decoder: ConvTranspose 512->256->128->64 (each stride 2, 8 -> 64 px at 256
    input), then bilinear up-sampling to the input size; heads 64->32->n_classes
    (logits) and 64->32->2 (ab, Tanh).

    Args:
        n_classes: segmentation classes (2: background/foreground).
        pretrained: start the encoder from ImageNet ResNet34 weights; the RGB
            stem is collapsed to one channel by summing its filters.
        weights_file: explicit ResNet34 state dict, else torchvision's cache.
    """

    multiple = 32

    def __init__(self, n_classes: int = 2, pretrained: bool = False, weights_file: str | Path | None = None):
        super().__init__()
        import torchvision

        resnet = torchvision.models.resnet34(weights=None)
        if pretrained:
            resnet.load_state_dict(
                load_pretrained_state(
                    "resnet34", weights_file, hint="Or train from scratch with --no-pretrained."
                )
            )
        stem = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        with torch.no_grad():
            stem.weight.copy_(resnet.conv1.weight.sum(dim=1, keepdim=True))
        self.encoder = nn.Sequential(
            stem, resnet.bn1, resnet.relu, resnet.maxpool,
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4,
        )
        self.decoder = nn.Sequential(_up(512, 256), _up(256, 128), _up(128, 64))
        self.seg_head = _head(n_classes)
        self.color_head = _head(2, tanh=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_l_input(x, self.multiple)
        features = self.decoder(self.encoder(x))
        features = F.interpolate(features, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.seg_head(features), self.color_head(features)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class SegColorUNet(nn.Module):
    """The U-Net alternative: 4 poolings, widths base..8*base, same two heads.

    Input (B, 1, H, W) with H, W multiples of 16; outputs as :class:`SegColorNet`.
    """

    multiple = 16

    def __init__(self, n_classes: int = 2, base: int = 32):
        super().__init__()
        widths = [base, base * 2, base * 4, base * 8, base * 16]
        self.inc = _double_conv(1, widths[0])
        self.downs = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(4))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in reversed(range(4))
        )
        self.up_convs = nn.ModuleList(_double_conv(widths[i] * 2, widths[i]) for i in reversed(range(4)))
        self.to64 = nn.Sequential(nn.Conv2d(widths[0], 64, 3, padding=1), nn.ReLU(inplace=True))
        self.seg_head = _head(n_classes)
        self.color_head = _head(2, tanh=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_l_input(x, self.multiple)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, conv in zip(self.ups, self.up_convs):
            y = conv(torch.cat([up(y), skips.pop()], dim=1))
        features = self.to64(y)
        return self.seg_head(features), self.color_head(features)
