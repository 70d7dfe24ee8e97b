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

__all__ = [
    "default_batch_size", "default_model_path", "fit_tile_to_scene", "require_sar_model",
    "sar_scaling_of", "size_multiple", "tile_settings",
]

#: Default overlap between tiles (pixels), capped at a quarter of the tile. Chosen by
#: measurement (benchmarks/overlap_seams.py, figures in benchmarks/README.md): the smallest
#: overlap whose seam ratio stays <= 1.0 on real s1s2-la scenes for 128- and 256-px tiles
#: (64 px, the former default, costs 1.3x the tiles of 32 px at 256-px tiles for no gain).
DEFAULT_OVERLAP = 32
#: The largest --tile-size: a U-Net's activations on one 4096-px tile already take GBs, and
#: bigger tiles only save a few per cent of overlap.
MAX_TILE = 4096
DEFAULT_BATCH_SIZE = 8
#: Pixels per model call on the CPU for tiles smaller than :data:`CPU_SINGLE_TILE`:
#: 8 tiles of 256 px (small tiles need batches to amortise each call: the ngf-32
#: U-Net ran 13.6 tiles/s at batch 1 and 19.3 at batch 8 on 256-px tiles).
CPU_BATCH_PIXELS = 8 * 256 * 256
MAX_CPU_BATCH = 32
#: Tiles this large run one per call on the CPU: a 512-px tile keeps the cores busy
#: alone, and every extra tile adds working memory and page faults (the packaged model:
#: 2.97 tiles/s at batch 1, 2.87 at 2, 2.81 at 8; peak RSS 0.78 GB at 1, 2.2 GB at 8).
CPU_SINGLE_TILE = 512


def default_batch_size(tile: int, device_type: str) -> int:
    """Tiles per model call when the user gives none: 8 on a GPU; on the CPU one tile of
    :data:`CPU_SINGLE_TILE` px or more, else as many tiles as make :data:`CPU_BATCH_PIXELS`
    (8 at 256 px, 32 at 128; at most :data:`MAX_CPU_BATCH`)."""
    if device_type != "cpu":
        return DEFAULT_BATCH_SIZE
    if tile >= CPU_SINGLE_TILE:
        return 1
    return max(1, min(MAX_CPU_BATCH, CPU_BATCH_PIXELS // (tile * tile)))


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


def size_multiple(loaded: LoadedModel) -> int:
    """What a tile side must be a multiple of for this model's network (1 if it says nothing)."""
    return int(getattr(loaded.network, "multiple", 1))


def tile_settings(
    loaded: LoadedModel, tile_size: int | None, overlap: int | None
) -> tuple[int, int]:
    """(tile, overlap): the card's tile size unless given, checked against the network."""
    multiple = size_multiple(loaded)
    tile = int(tile_size or loaded.card.input.get("tile_size") or 256)
    if tile < multiple or tile % multiple:
        raise UsageError(f"--tile-size {tile}: must be a multiple of {multiple} for this model")
    if tile > MAX_TILE:
        raise UsageError(f"--tile-size {tile}: at most {MAX_TILE}; larger tiles need more memory "
                         "than they save in overlap")
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
    ``(tile, overlap)``. An explicit ``--tile-size`` too: a tile larger than the scene
    only costs memory (4096 px asked for over 20 GB on a 1024-px scene).
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
