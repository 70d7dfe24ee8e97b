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

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
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
