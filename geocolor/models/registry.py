"""Architecture name -> builder, so that a model card can rebuild its network.

A model card stores ``arch`` and ``arch_args``; ``build_model(arch, **arch_args)``
returns the untrained network with exactly that structure.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from geocolor.errors import ModelFileError


def _unet(**kw: Any) -> nn.Module:
    from geocolor.models.unet import UNetGenerator

    return UNetGenerator(**kw)


def _patchgan(**kw: Any) -> nn.Module:
    from geocolor.models.patchgan import PatchDiscriminator

    return PatchDiscriminator(**kw)


def _segcolor_resnet34(**kw: Any) -> nn.Module:
    from geocolor.models.segcolor import SegColorNet

    return SegColorNet(**kw)


def _segcolor_unet(**kw: Any) -> nn.Module:
    from geocolor.models.segcolor import SegColorUNet

    return SegColorUNet(**kw)


def _unet_efficientnet(**kw: Any) -> nn.Module:
    from geocolor.models.effunet import EffUNetGenerator

    return EffUNetGenerator(**kw)


def _segcolor_efficientnet(**kw: Any) -> nn.Module:
    from geocolor.models.effunet import SegColorEffNet

    return SegColorEffNet(**kw)


def _ensemble(**kw: Any) -> nn.Module:
    from geocolor.models.ensemble import OutputMean

    try:
        return OutputMean(**kw)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "unet": _unet,
    "patchgan": _patchgan,
    "segcolor-resnet34": _segcolor_resnet34,
    "segcolor-unet": _segcolor_unet,
    "unet-efficientnet": _unet_efficientnet,
    "segcolor-efficientnet": _segcolor_efficientnet,
    "ensemble": _ensemble,
}


def build_model(arch: str, **arch_args: Any) -> nn.Module:
    """Build the network registered as ``arch`` with ``arch_args``.

    Raises:
        ModelFileError: unknown architecture or arguments it does not take.
    """
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ModelFileError(
            f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    try:
        return builder(**arch_args)
    except TypeError as exc:
        raise ModelFileError(f"architecture {arch!r} cannot be built with {arch_args}: {exc}") from None
