"""SAR models at inference: the default model, its card's scaling, tile settings.

Shared by the scene pipeline (:mod:`geocolor.infer.scene`), the batch driver
(:mod:`geocolor.infer.batch`) and the CLI, which checks ``--tile-size`` and
``--overlap`` against a model before any input is read.
"""

from __future__ import annotations

from pathlib import Path

from geocolor.data.sarscale import SarScaling
from geocolor.errors import ModelFileError, UsageError
from geocolor.infer.tiling import smallest_tile
from geocolor.io.modelfile import LoadedModel, default_model_path, load_model

__all__ = ["default_model_path", "fit_tile_to_scene", "require_sar_model", "sar_scaling_of", "tile_settings"]

#: Default overlap between tiles (pixels), capped at a quarter of the tile. Chosen by
#: measurement (benchmarks/overlap_seams.py, figures in benchmarks/README.md): the smallest
#: overlap whose seam ratio stays <= 1.0 on real s1s2-la scenes for 128- and 256-px tiles
#: (64 px, the former default, costs 1.3x the tiles of 32 px at 256-px tiles for no gain).
DEFAULT_OVERLAP = 32
DEFAULT_BATCH_SIZE = 8


def sar_scaling_of(loaded: LoadedModel) -> SarScaling:
    """The SAR scaling recorded in a SAR model's card."""
    data = loaded.card.input.get("sar_scaling")
    where = loaded.path or "model"
    if not isinstance(data, dict):
        raise ModelFileError(
            f"{where}: model card has no input.sar_scaling; cannot scale SAR input for it"
        )
    try:
        return SarScaling.from_dict(data)
    except Exception as exc:  # noqa: BLE001 - ConfigError or TypeError from a bad card
        raise ModelFileError(
            f"{where}: invalid input.sar_scaling in the model card ({exc})"
        ) from None


def tile_settings(
    loaded: LoadedModel, tile_size: int | None, overlap: int | None
) -> tuple[int, int]:
    """(tile, overlap): the card's tile size unless given, checked against the network."""
    multiple = int(getattr(loaded.network, "multiple", 1))
    tile = int(tile_size or loaded.card.input.get("tile_size") or 256)
    if tile < multiple or tile % multiple:
        raise UsageError(f"--tile-size {tile}: must be a multiple of {multiple} for this model")
    overlap = min(DEFAULT_OVERLAP, tile // 4) if overlap is None else int(overlap)
    if not 0 <= overlap <= tile // 2:
        raise UsageError(
            f"--overlap {overlap}: must be between 0 and half the tile size ({tile // 2})"
        )
    return tile, overlap


def fit_tile_to_scene(tile: int, overlap: int, height: int, width: int, multiple: int) -> tuple[int, int]:
    """(tile, overlap) for a scene: the card's tile, or a smaller one when the scene fits in one.

    A scene smaller than one tile is colorized as one centred tile; a 120-px chip on a
    512-px tile would cost 18x its pixels. The tile then shrinks to the smallest multiple of
    ``multiple`` that holds the scene and the grid's edge padding (``overlap // 2`` a side),
    never below ``multiple``; the overlap is capped at a quarter of it. Larger scenes keep
    ``(tile, overlap)``. Only for the default tile: an explicit ``--tile-size`` is kept.
    """
    fitted = smallest_tile(max(height, width) + 2 * (overlap // 2), multiple)
    if fitted >= tile:
        return tile, overlap
    return fitted, min(overlap, fitted // 4)


def require_sar_model(model: LoadedModel | str | Path | None) -> LoadedModel:
    """A loaded SAR model: ``model`` itself, the file it names, or the packaged default."""
    if isinstance(model, LoadedModel):
        if model.card.kind != "sar":
            raise ModelFileError(
                f"{model.path or 'model'}: is a {model.card.kind} model; "
                "a SAR scene needs a sar model"
            )
        return model
    path = default_model_path("sar") if model is None else model  # a file, or "sar"
    return load_model(path, kind="sar")
