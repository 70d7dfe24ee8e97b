"""Preview panels: small side-by-side PNGs of what went in and what came out.

:func:`write_scene_preview` makes the SAR panel (input as the model saw it | colour
output) from the finished raster, reading decimated copies of both (never the
full scene); :func:`save_image` is the atomic PIL save that the photo pipeline
(:mod:`geocolor.infer.image`) uses for its outputs and its own panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from geocolor.infer.output import check_output, quiet_georef_warnings
from geocolor.infer.sarinput import SarInput
from geocolor.io.atomic import atomic_path
from geocolor.io.raster import open_raster
from geocolor.io.source import RasterSource

#: Longest side of one panel of a --preview image.
PREVIEW_SIDE = 1024

#: zlib level of the PNGs written with Pillow (photo outputs, masks, previews). Pillow's
#: default, 6, took 91 ms for a colorized Kodak photo (768 x 512) and made it larger than
#: level 3 did (408 against 387 KB, in 26 ms); on 22 other photos level 3 was 4.6 % larger
#: than 6 in 55 % of its time.
PNG_COMPRESS_LEVEL = 3


def save_image(img: Any, path: Path, text: dict[str, str] | None = None, **kwargs: Any) -> None:
    """Save a PIL image atomically; the extension picks the format (JPEG: RGB, quality 95;
    PNG: zlib level :data:`PNG_COMPRESS_LEVEL`). ``text``: key-value pairs a PNG keeps as
    text chunks (other formats: not written)."""
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg") and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if ext in (".jpg", ".jpeg"):
        kwargs.setdefault("quality", 95)
    if ext == ".png":
        kwargs.setdefault("compress_level", PNG_COMPRESS_LEVEL)
    if ext == ".png" and text:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        kwargs["pnginfo"] = info
    with atomic_path(path, suffix=ext) as tmp:
        img.save(tmp, **kwargs)


def write_scene_preview(
    src: RasterSource, sar: SarInput, output: Path, preview: Path, side: int = PREVIEW_SIDE,
    window: Window | None = None,
) -> Path:
    """Side-by-side PNG: the input as the model saw it (grey) | the colorized output.

    Panels are decimated so that their longest side is at most ``side`` pixels
    (small scenes are enlarged by an integer factor to at least 512 px). ``window``: the
    part of the input that ``output`` colorized (None: all of it).
    """
    from PIL import Image

    with quiet_georef_warnings():
        with rasterio.open(output) as out:
            width, height = out.width, out.height
            scale = max(width, height) / side
            shape = (
                (height, width)
                if scale <= 1
                else (max(1, round(height / scale)), max(1, round(width / scale)))
            )
            rgb = out.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
            valid = out.dataset_mask(out_shape=shape) > 0
        with open_raster(src) as ds:
            data = ds.read(sar.band, out_shape=shape, window=window)
            mask = (ds.read_masks(sar.band, out_shape=shape, window=window)
                    if sar.read_mask else None)
    # the input's pixel coordinates of the decimated read's pixel centres (for a calibration)
    row0, col0 = (0, 0) if window is None else (int(window.row_off), int(window.col_off))
    rows = row0 + (np.arange(shape[0]) + 0.5) * (height / shape[0]) - 0.5
    cols = col0 + (np.arange(shape[1]) + 0.5) * (width / shape[1]) - 0.5
    grey = np.rint(sar.to_unit(data, rows, cols) * 255).astype(np.uint8)
    grey[~(sar.valid(data, mask) & valid)] = 0
    rgb[:, ~valid] = 0
    gap = max(2, shape[1] // 100)
    panel = np.zeros((shape[0], 2 * shape[1] + gap, 3), dtype=np.uint8)
    panel[:, :, :] = 255
    panel[:, : shape[1]] = grey[..., None]
    panel[:, shape[1] + gap :] = np.moveaxis(rgb, 0, -1)
    factor = max(1, 512 // max(shape))
    image = Image.fromarray(panel)
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    check_output(src, preview, overwrite=True)
    with atomic_path(preview, suffix=".png") as tmp:
        image.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return preview
