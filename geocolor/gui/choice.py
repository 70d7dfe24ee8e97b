"""Which model colorizes an input, and what its card says (no Tk here).

The model picker offers the two packaged models and any model file the user
chose. Its default follows the input with the rule ``geocolor colorize`` uses
without ``--model`` (plain pictures get the semantic model; rasters, and grey
pictures named like SAR chips, the SAR one): :func:`default_kind` calls the
engine's rule instead of restating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocolor.io.modelfile import ModelCard, packaged_model_path, read_card

#: Picker keys of the packaged models, by model kind.
PACKAGED_LABELS = {"sar": "Packaged SAR model", "semantic": "Packaged photo model"}
OTHER_LABEL = "Other..."


@dataclass(frozen=True)
class ModelEntry:
    """One model the picker offers: a label and the file behind it."""

    label: str
    path: Path
    kind: str | None = None  # known for the packaged models; read from the card otherwise


def packaged_entries() -> list[ModelEntry]:
    """The packaged SAR and photo models, in picker order (present or not: a missing
    one fails with the engine's own message when it is used)."""
    return [ModelEntry(PACKAGED_LABELS[k], packaged_model_path(k), k) for k in ("sar", "semantic")]


def default_kind(path: Path) -> tuple[str, str]:
    """``("semantic" | "sar", reason)``: the packaged model ``geocolor colorize`` gives ``path``
    without ``--model`` (:func:`geocolor.infer.batch.choose_model_kind`, the one rule).

    Raises:
        RasterError: ``path`` is missing or not a readable raster/image.
    """
    from geocolor.infer.batch import choose_model_kind

    return choose_model_kind(Path(path))


def other_entry(path: Path) -> ModelEntry:
    """A model file the user picked ("Other..."): its card is read to check it and label it.

    Raises:
        ModelFileError: not a geocolor model file (the message names the file).
    """
    path = Path(path)
    card = read_card(path)
    return ModelEntry(f"{path.name} ({_kind_word(card.kind)})", path, card.kind)


def _kind_word(kind: str) -> str:
    return {"sar": "SAR", "semantic": "photo"}.get(kind, kind)


def _trained_on(training: dict[str, Any]) -> str | None:
    data = training.get("data")
    if not isinstance(data, dict):
        return None
    root = data.get("root")
    name = Path(str(root)).name if root else None
    for key, unit in (("pairs", "pairs"), ("photos", "photos"), ("images", "images")):
        if isinstance(data.get(key), int):
            return f"{name} ({data[key]} {unit})" if name else f"{data[key]} {unit}"
    return name


def _scaling(card: ModelCard) -> str | None:
    if card.kind == "sar":
        scaling = card.input.get("sar_scaling")
        if isinstance(scaling, dict):
            name = scaling.get("name") or scaling.get("scheme")
            pol = scaling.get("polarisation")
            return f"{name}" + (f" ({pol})" if pol else "")
        return None
    return str(card.input["l_scaling"]).split(" (")[0] if card.input.get("l_scaling") else "L*a*b*"


def card_summary(card: ModelCard) -> str:
    """One line of the card's key facts: kind, training data, tile size, input scaling.

    e.g. ``SAR model · unet · trained on s1s2-la (69 pairs) · tile 128 px ·
    scaling s1s2la-vh-amplitude (VH)``.
    """
    parts = [f"{_kind_word(card.kind)} model", card.arch]
    trained = _trained_on(card.training)
    parts.append(f"trained on {trained}" if trained else "training data not recorded")
    if card.kind == "sar":
        tile = card.input.get("tile_size")
        parts.append(f"tile {tile} px" if tile else "tile 256 px (default)")
    elif card.input.get("image_size"):
        parts.append(f"network size {card.input['image_size']} px")
    scaling = _scaling(card)
    if scaling:
        parts.append(f"scaling {scaling}")
    if card.kind == "semantic" and card.classes:
        parts.append(f"classes {', '.join(card.classes)}")
    return " · ".join(parts)
