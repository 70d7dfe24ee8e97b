"""Preview-resolution images for the GUI's views (no Tk here).

A scene of any size is shown from a decimated read (``out_shape``: GDAL takes the
overviews when the file has them), never from the full raster, so opening a
50,000-pixel-wide scene costs about as much as opening a small one. Every view of
one input has the same size (the input's preview shape), so the views can be
compared pixel for pixel and zoomed together.

Images are 8-bit RGB PIL images; masked (nodata) pixels are black, as in the
CLI's ``--preview`` panels.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from geocolor.errors import GeocolorError, RasterError
from geocolor.gui.choice import ModelEntry

#: Longest side of a preview read: enough to zoom a few times into a window-sized view.
PREVIEW_SIDE = 2048


@dataclass
class InputPreview:
    """What the input view shows and what is known about the input."""

    image: Image.Image  # RGB, longest side <= PREVIEW_SIDE
    width: int  # full-resolution size of the input
    height: int
    plain: bool  # a plain picture (photo) rather than a SAR/georeferenced raster
    description: str  # e.g. "scene 1200 x 1200, georeferenced by transform, shown at 1/2"


def preview_shape(height: int, width: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """(rows, cols) of a read whose longer side is at most ``side``, aspect kept."""
    scale = max(height, width) / side
    if scale <= 1:
        return height, width
    return max(1, round(height / scale)), max(1, round(width / scale))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Plain pictures have no georeference; that is no reason to warn here."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def _stretch(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Float band -> [0, 1] by its 2nd..98th percentiles over valid pixels."""
    data = values.astype(np.float32)
    good = valid & np.isfinite(data)
    if not good.any():
        return np.zeros(data.shape, np.float32)
    lo, hi = np.percentile(data[good], [2, 98])
    out = (data - lo) / (hi - lo if hi > lo else 1.0)
    return np.clip(np.nan_to_num(out), 0, 1).astype(np.float32)


def _grey_image(unit: np.ndarray) -> Image.Image:
    grey = np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def read_scene_preview(
    path: Path, sar_scaling: dict[str, Any] | None = None, side: int = PREVIEW_SIDE
) -> InputPreview:
    """Decimated read of a raster: the band a SAR model would use, as that model sees it.

    Args:
        path: any raster GDAL reads.
        sar_scaling: a SAR model card's ``input.sar_scaling``; with it the view is the
            band and unit scaling the model gets (as in ``colorize --preview``); without
            it, or when the input does not fit the model, the first band stretched by
            its 2..98 % percentiles.

    Raises:
        RasterError: missing, unreadable or corrupt raster.
    """
    from geocolor.infer.sarinput import is_plain_image, read_failure
    from geocolor.io.raster import RASTER_ERRORS, georeference_kind, open_raster

    path = Path(path)
    with _quiet(), open_raster(path) as ds:
        shape = preview_shape(ds.height, ds.width, side)
        plain = is_plain_image(ds, path)
        try:
            image = _scene_view(ds, path, shape, plain, sar_scaling)
        except RASTER_ERRORS as exc:
            raise read_failure(path, exc) from None
        georef = georeference_kind(ds)
        width, height = ds.width, ds.height
    what = "picture" if plain else "scene"
    text = f"{what} {width} x {height}"
    if georef != "none":
        text += f", georeferenced by {georef}"
    if shape[1] < width:
        text += f", shown from a 1/{width / shape[1]:.3g} read"
    return InputPreview(image, width, height, plain, text)


def _scene_view(
    ds: Any, path: Path, shape: tuple[int, int], plain: bool, sar_scaling: dict[str, Any] | None
) -> Image.Image:
    from geocolor.data.sarscale import SarScaling
    from geocolor.errors import GeocolorError
    from geocolor.infer.sarinput import data_bands, resolve_sar_input

    sar = None
    if sar_scaling is not None:
        try:
            sar = resolve_sar_input(ds, path, SarScaling.from_dict(sar_scaling))
        except GeocolorError:
            sar = None  # colorize will report why; show the plain band meanwhile
    if sar is not None:
        data = ds.read(sar.band, out_shape=shape)
        mask = ds.read_masks(sar.band, out_shape=shape) if sar.read_mask else None
        valid = sar.valid(data, mask)
        return _grey_image(np.where(valid, sar.to_unit(data), 0.0))
    bands = data_bands(ds) or [1]
    if plain and len(bands) >= 3 and ds.dtypes[0] == "uint8":
        rgb = ds.read(bands[:3], out_shape=(3, *shape))
        return Image.fromarray(np.moveaxis(rgb, 0, -1))
    data = ds.read(bands[0], out_shape=shape)
    if np.iscomplexobj(data):
        data = np.abs(data)
    valid = ds.read_masks(bands[0], out_shape=shape) > 0
    unit = data / 255.0 if data.dtype == np.uint8 else _stretch(data, valid)
    return _grey_image(np.where(valid, unit, 0.0))


def read_photo_preview(path: Path, side: int = PREVIEW_SIDE) -> InputPreview:
    """A photo as the semantic pipeline decodes it (upright, composited on white), downsized.

    Raises:
        RasterError: missing or unreadable image.
    """
    from geocolor.data.semantic import read_rgb

    image = read_rgb(Path(path))
    rows, cols = preview_shape(image.height, image.width, side)
    pil = Image.fromarray(_to_uint8(image.rgb))
    if (rows, cols) != (image.height, image.width):
        pil = pil.resize((cols, rows), Image.Resampling.LANCZOS)
    text = f"{image.mode} photo {image.width} x {image.height} ({image.source_mode})"
    return InputPreview(pil, image.width, image.height, True, text)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def read_output_preview(path: Path, size: tuple[int, int]) -> Image.Image:
    """The colorized output (GeoTIFF, PNG or JPEG) read at ``size`` = (width, height).

    Pixels outside the output's mask (input nodata) are black.
    """
    import rasterio
    from rasterio.enums import Resampling

    from geocolor.io.raster import RASTER_ERRORS

    cols, rows = size
    try:
        with _quiet(), rasterio.open(path) as ds:
            rgb = ds.read([1, 2, 3], out_shape=(3, rows, cols), resampling=Resampling.average)
            valid = ds.dataset_mask(out_shape=(rows, cols)) > 0
    except RASTER_ERRORS as exc:
        raise RasterError(f"{path}: cannot read the colorized result ({exc})") from None
    rgb[:, ~valid] = 0
    return Image.fromarray(np.moveaxis(rgb, 0, -1))


def segmentation_overlay(mask_path: Path, grey: Image.Image, n_classes: int) -> Image.Image:
    """Class colours over the grey input (45 % grey, 55 % colour), as the CLI's photo preview.

    Args:
        mask_path: the palette PNG ``colorize --mask-out`` writes (pixel = class index).
        grey: the input view; the overlay takes its size.
        n_classes: number of classes of the model (colours from the engine's palette).
    """
    from geocolor.infer.image import palette

    with Image.open(mask_path) as mask:
        labels = np.asarray(mask.resize(grey.size, Image.Resampling.NEAREST))
    k = max(n_classes, 1)
    colours = np.asarray(palette(k), dtype=np.float32)[np.clip(labels, 0, k - 1)]
    light = np.asarray(grey.convert("L"), dtype=np.float32)[..., None]
    return Image.fromarray(_to_uint8((0.45 * light + 0.55 * colours) / 255))


def class_fractions(mask_path: Path, names: list[str]) -> dict[str, float]:
    """Share of the pixels of each class in a segmentation PNG (for the status line)."""
    with Image.open(mask_path) as mask:
        labels = np.asarray(mask)
    counts = np.bincount(labels.ravel(), minlength=len(names))
    total = max(1, int(counts.sum()))
    return {
        names[i] if i < len(names) else f"class{i}": int(c) / total for i, c in enumerate(counts)
    }


def compare_image(before: Image.Image, after: Image.Image, split: float) -> Image.Image:
    """Before/after composite: ``before`` left of ``split`` (0..1 of the width), ``after`` right.

    ``before`` is resized to ``after``'s size if they differ; a thin white line marks the split.
    """
    if before.size != after.size:
        before = before.resize(after.size, Image.Resampling.BILINEAR)
    out = after.convert("RGB").copy()
    x = round(min(max(split, 0.0), 1.0) * out.width)
    if x > 0:
        out.paste(before.convert("RGB").crop((0, 0, x, out.height)), (0, 0))
    if 0 < x < out.width:
        line = max(1, out.width // 400)
        out.paste(
            (255, 255, 255),
            (max(0, x - line // 2), 0, min(out.width, x - line // 2 + line), out.height),
        )
    return out


def read_input_preview(path: Path, plain: bool, entry: ModelEntry) -> InputPreview:
    """The input view: a photo as the photo model decodes it; a raster as the selected SAR
    model sees it (or stretched, for other models)."""
    if plain and entry.kind == "semantic":
        return read_photo_preview(path)
    scaling = None
    if entry.kind == "sar":
        from geocolor.io.modelfile import read_card

        try:
            scaling = read_card(entry.path).input.get("sar_scaling")
        except GeocolorError:
            scaling = None  # the model's own problem is reported when it is used
    return read_scene_preview(path, scaling)
