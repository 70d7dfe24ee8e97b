"""Self-describing model files: weights plus a model card, loaded without unpickling code.

A geocolor model file is a ``torch.save`` archive holding only tensors and plain
data::

    {"format": "geocolor-model", "format_version": 1,
     "card": "<model card as JSON text>", "state_dict": {name: tensor}}

It is read with ``torch.load(weights_only=True)``, whose restricted unpickler
refuses any object that is not a tensor or a plain container, so a file crafted to
run code on loading is rejected and the code never runs. Files are written
atomically (temporary name, then rename).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geocolor import __version__
from geocolor.errors import ModelFileError
from geocolor.io.atomic import atomic_path
from geocolor.io.files import require_file
from geocolor.models.registry import build_model

FORMAT = "geocolor-model"
FORMAT_VERSION = 1
KINDS = ("sar", "semantic")
#: Suggested extension of model files.
SUFFIX = ".model"
#: Where the packaged default models live (``<kind>_default.model``).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def packaged_model_path(kind: str) -> Path:
    """Path of the packaged default model of ``kind`` (it may not exist in a dev checkout)."""
    return WEIGHTS_DIR / f"{kind}_default{SUFFIX}"


def default_model_path(kind: str) -> Path:
    """The packaged default model of ``kind``, or a clear error when it is not installed."""
    path = packaged_model_path(kind)
    if not path.is_file():
        raise ModelFileError(
            f"no packaged default {kind} model is installed (looked for {path}); "
            f"pass --model PATH with a {kind} model file (train one with 'geocolor train {kind}')"
        )
    return path


def resolve_model_path(model: str | Path) -> Path:
    """``"sar"`` / ``"semantic"`` name the packaged models; anything else is a file path.

    (A file that happens to be called ``sar`` in the current directory is ``./sar``.) A
    ``Path("sar")``, as a command-line argument typed as a path arrives, names one too.
    """
    if str(model) in KINDS:
        return default_model_path(str(model))
    return Path(model)


@dataclass(frozen=True)
class ModelCard:
    """What a model is and how to feed it; everything inference needs besides the weights.

    Attributes:
        kind: ``"sar"`` (SAR grey -> RGB generator) or ``"semantic"`` (L -> seg + ab).
        arch: registry name (see :mod:`geocolor.models.registry`).
        arch_args: keyword arguments that rebuild the network.
        input: how inputs were scaled, e.g. ``{"sar_scaling": {...}, "tile_size": 256}``
            for SAR models or ``{"image_size": 256}`` for semantic ones.
        training: data summary, steps, wall time, command.
        metrics: validation metrics (e.g. ``{"psnr": 18.2, "ssim": 0.41}``).
        classes: names of the segmentation classes (semantic models).
        geocolor_version: version that wrote the file.
        created: ISO-8601 UTC timestamp.
        weights_dtype: dtype of the stored floating-point weights.
    """

    kind: str
    arch: str
    arch_args: dict[str, Any]
    input: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    geocolor_version: str = __version__
    created: str = ""
    weights_dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model card") -> ModelCard:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"kind", "arch", "arch_args"} - data.keys()
        if missing:
            raise ModelFileError(f"{source}: model card lacks {', '.join(sorted(missing))}")
        if data["kind"] not in KINDS:
            raise ModelFileError(f"{source}: unknown model kind {data['kind']!r}")
        # Unknown keys come from newer geocolor versions; keep loading, drop them.
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class LoadedModel:
    """A network in eval mode with the card it came with."""

    card: ModelCard
    network: nn.Module
    path: Path | None = None


def _stored_state(network: nn.Module, half: bool) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in network.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
        state[name] = tensor
    return state


def save_model(path: Path | str, network: nn.Module, card: ModelCard, half: bool = False) -> Path:
    """Write ``network``'s weights and ``card`` to ``path`` atomically.

    Args:
        half: store floating-point weights as float16 (half the size; they are
            cast back to float32 on loading).

    Returns:
        The path written.
    """
    path = Path(path)
    card = dataclasses.replace(
        card,
        created=card.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        weights_dtype="float16" if half else "float32",
        geocolor_version=__version__,
    )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "card": json.dumps(card.to_dict()),
        "state_dict": _stored_state(network, half),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _load_payload(path: Path) -> dict[str, Any]:
    require_file(path, ModelFileError, "a model file", missing="model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a geocolor model file (unknown format, or truncated)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path}: refused to load: the file contains objects other than weights "
            f"and could run code ({first[:160]})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt archives
        raise ModelFileError(f"{path}: corrupt or truncated model file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a geocolor model file (a bare state dict or a foreign checkpoint?)"
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer geocolor (format {payload['format_version']}); upgrade geocolor"
        )
    return payload


def read_card(path: Path | str) -> ModelCard:
    """Read and validate only the model card of ``path`` (a file, or ``"sar"`` /
    ``"semantic"`` for a packaged model)."""
    path = resolve_model_path(path)
    payload = _load_payload(path)
    try:
        data = json.loads(payload["card"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: model card missing or not valid JSON") from None
    return ModelCard.from_dict(data, source=str(path))


def load_model(path: Path | str, kind: str | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file: rebuild its network from the card and load the weights.

    Args:
        path: model file, or ``"sar"`` / ``"semantic"`` for the packaged models.
        kind: if given (``"sar"`` | ``"semantic"``), a file of another kind is refused.
        device: where to put the network.

    Returns:
        :class:`LoadedModel` with the network in eval mode (float32).

    Raises:
        ModelFileError: missing, foreign, corrupt, unsafe, wrong kind, or weights
            that do not fit the architecture.
    """
    path = resolve_model_path(path)
    payload = _load_payload(path)
    try:
        card = ModelCard.from_dict(json.loads(payload["card"]), source=str(path))
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: model card missing or not valid JSON") from None
    if kind is not None and card.kind != kind:
        raise ModelFileError(f"{path}: is a {card.kind} model, but a {kind} model is needed here")
    try:
        network = build_model(card.arch, **card.arch_args)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: no weights in the model file")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        network.load_state_dict(state)
    except RuntimeError:
        raise ModelFileError(
            f"{path}: weights do not fit architecture {card.arch!r} "
            f"({_state_mismatch(network.state_dict(), state)}); the file is damaged, or was "
            "written by another version of geocolor") from None
    damaged = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if damaged:
        raise ModelFileError(
            f"{path}: {len(damaged)} weight tensor{'s hold' if len(damaged) > 1 else ' holds'} NaN or "
            f"infinite values (first: {damaged[0]}); the file is damaged, or its training "
            "diverged: use another model file")
    network.to(device).eval()
    return LoadedModel(card=card, network=network, path=path)


def _state_mismatch(wanted: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """Which weights of ``given`` differ from what the network ``wanted`` (names and shapes),
    in a few words: missing, unexpected and reshaped ones, the first of each named."""
    missing = [k for k in wanted if k not in given]
    extra = [k for k in given if k not in wanted]
    reshaped = [k for k in wanted if k in given and given[k].shape != wanted[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape, e.g. {k}: {list(given[k].shape)} in the "
                     f"file, {list(wanted[k].shape)} in the architecture")
    return "; ".join(parts) or "they cannot be loaded"


def is_model_file(path: Path | str) -> bool:
    """Cheap check: a zip archive whose member list looks like ``torch.save`` output."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(name.endswith("data.pkl") for name in zf.namelist())
    except zipfile.BadZipFile:
        return False
