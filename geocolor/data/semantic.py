"""Photos (and optional masks) for the semantic colorization model.

Layout::

    DATA/raw/<stem>.{jpg,jpeg,png,tif,tiff,bmp,webp}   colour photos (the targets)
    DATA/masks/<stem>.png                              optional segmentation, any size

A mask is either binary (0 / 255, or 0 / 1) or a class-index image (values
``0 .. classes-1``, e.g. a palette PNG); it is resized to its photo with nearest
neighbour. Masks are optional per photo: a photo without one still trains the
colour head (on all pixels) and is skipped by the segmentation loss.

Image reading (:func:`read_rgb`) handles what photo folders contain: EXIF
orientation (the image is turned upright), 8/16-bit, greyscale, greyscale+alpha,
RGBA (composited on white), palette and CMYK images, and 16-bit or multi-band
TIFFs (first three bands, scaled by their dtype).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from geocolor.data.lab import linear_to_srgb, rgb_to_model, srgb_to_linear
from geocolor.data.split import SplitRecord, split_by_group
from geocolor.errors import DataError, RasterError
from geocolor.io.files import require_file

log = logging.getLogger("geocolor.data.semantic")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
MASK_SUFFIX = ".png"
#: Value used in label maps for "no label here" (pixels of photos without masks).
IGNORE_INDEX = -1


@dataclass(frozen=True)
class PhotoRecord:
    """One training photo and its mask (``None`` when it has none)."""

    image: Path
    mask: Path | None = None

    @property
    def name(self) -> str:
        return self.image.stem


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``rgb`` float32 ``(H, W, 3)`` in [0, 1] and what it was."""

    rgb: np.ndarray
    mode: str  # "rgb" | "grey"
    source_mode: str  # PIL mode or "tiff:<dtype>x<bands>"
    bit_depth: int

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def _unit(img: Any) -> np.ndarray:
    """8-bit PIL image -> float32 array in [0, 1] (scaled in place: one float copy)."""
    arr = np.asarray(img).astype(np.float32)
    arr *= np.float32(1 / 255)
    return arr


def _from_pil(img: Any, path: Path) -> LoadedImage:
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float32)
        depth = 16
        scale = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / scale, 0, 1)
        return LoadedImage(np.repeat(grey[..., None], 3, axis=2), "grey", mode, depth)
    if mode == "F":
        arr = np.asarray(img).astype(np.float32)
        hi = float(arr.max(initial=0))
        grey = np.clip(arr / (hi if hi > 1 else 1.0), 0, 1)
        return LoadedImage(np.repeat(grey[..., None], 3, axis=2), "grey", mode, 32)
    if mode in ("1", "L", "LA"):
        if mode == "LA":
            rgba = _unit(img.convert("RGBA"))
            grey = _composite_on_white(rgba)[..., 0]
        else:
            grey = _unit(img.convert("L"))
        return LoadedImage(np.repeat(grey[..., None], 3, axis=2), "grey", mode, 8)
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode_after = img.mode
    else:
        mode_after = mode
    if mode_after in ("RGBA", "RGBa", "LA", "PA"):
        rgba = _unit(img.convert("RGBA"))
        rgb = _composite_on_white(rgba)
    else:
        rgb = _unit(img.convert("RGB"))
    is_grey = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
    return LoadedImage(rgb, "grey" if is_grey else "rgb", mode, 8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + (1 - alpha)


def _read_tiff_with_rasterio(path: Path) -> LoadedImage:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            bands = min(ds.count, 3)
            data = ds.read(list(range(1, bands + 1))).astype(np.float32)
            dtype = ds.dtypes[0]
    except RasterioIOError as exc:
        raise RasterError(f"{path}: not a readable image ({str(exc).splitlines()[0]})") from None
    if np.dtype(dtype).kind in "ui":
        data = data / float(np.iinfo(np.dtype(dtype)).max)
    else:
        hi = float(np.nanmax(data)) if data.size else 1.0
        data = data / (hi if hi > 1 else 1.0)
    data = np.clip(np.nan_to_num(data), 0, 1)
    if bands < 3:
        rgb = np.repeat(data[:1], 3, axis=0)
        mode = "grey"
    else:
        rgb = data
        mode = "rgb"
    return LoadedImage(
        np.ascontiguousarray(rgb.transpose(1, 2, 0)), mode, f"tiff:{dtype}x{bands}", np.dtype(dtype).itemsize * 8
    )


def read_rgb(path: Path | str) -> LoadedImage:
    """Decode a photo to float32 sRGB ``(H, W, 3)`` in [0, 1], upright (EXIF orientation applied).

    Raises:
        RasterError: missing, a directory, or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    require_file(path, RasterError, "an image")
    try:
        with Image.open(path) as img:
            img.load()
            multi_band_tiff = path.suffix.lower() in (".tif", ".tiff") and img.mode not in (
                "1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I;16L", "I", "F",
            )
            if not multi_band_tiff:
                return _from_pil(img, path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise RasterError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    # TIFFs PIL cannot decode (16-bit RGB, float, many bands): rasterio/GDAL reads them.
    return _read_tiff_with_rasterio(path)


def read_mask(path: Path | str, classes: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask as an int64 ``(H, W)`` label map with values in ``0 .. classes-1``.

    Binary masks (values only 0 and 255) map 255 to class 1. With ``size``
    ``(height, width)`` the mask is resized with nearest neighbour.

    Raises:
        DataError: unreadable mask, or values that are not valid class indices.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode not in ("P", "L", "I", "I;16", "1"):
                img = img.convert("L")
            if size is not None and (img.height, img.width) != tuple(size):
                img = img.resize((size[1], size[0]), Image.Resampling.NEAREST)
            arr = np.asarray(img).astype(np.int64)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable mask ({type(exc).__name__}: {exc})") from None
    values = np.unique(arr)
    if values.size and values.max() >= classes:
        if set(values.tolist()) <= {0, 255}:
            arr = (arr == 255).astype(np.int64)
        else:
            raise DataError(
                f"{path}: mask values {values.tolist()[:10]} are not class indices 0..{classes - 1} "
                f"(nor a binary 0/255 mask); use --classes {int(values.max()) + 1} if they are classes"
            )
    return arr


def _unreadable(path: Path) -> str | None:
    """Why the image at ``path`` cannot be opened (its header only is read), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return f"unreadable ({type(exc).__name__})"


def find_photos(root: Path | str) -> list[PhotoRecord]:
    """Photos under ``root/raw`` paired with ``root/masks/<stem>.png`` where present.

    Raises:
        DataError: no ``raw/`` folder or no images in it (the message says where
            it looked and which extensions count).
    """
    root = Path(root)
    raw = root / "raw"
    exts = ", ".join(IMAGE_SUFFIXES)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found (expected {raw}/ with photos and optional {root / 'masks'}/)")
    if not raw.is_dir():
        raise DataError(
            f"{root}: no raw/ folder; looked for photos in {raw}/ ({exts}) and masks in {root / 'masks'}/"
        )
    images = sorted(p for p in raw.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{raw}: no photos found (looked for {exts})")
    unreadable = {p: why for p in images if (why := _unreadable(p))}
    if unreadable:  # left out, as train sar leaves out unreadable pairs
        first = next(iter(unreadable))
        log.warning("%s: %d unreadable photo(s) left out (e.g. %s: %s)", raw, len(unreadable),
                    first.name, unreadable[first])
        images = [p for p in images if p not in unreadable]
        if not images:
            raise DataError(f"{raw}: none of its photos can be read (e.g. {first.name}: "
                            f"{unreadable[first]})")
    masks_dir = root / "masks"
    records = []
    seen: dict[str, Path] = {}
    for image in images:
        if image.stem in seen:
            raise DataError(f"{raw}: two photos share the name {image.stem!r} ({seen[image.stem].name}, {image.name})")
        seen[image.stem] = image
        mask = masks_dir / f"{image.stem}{MASK_SUFFIX}"
        records.append(PhotoRecord(image, mask if mask.is_file() else None))
    if masks_dir.is_dir():
        stems = set(seen)
        orphans = sorted(p.name for p in masks_dir.glob(f"*{MASK_SUFFIX}") if p.stem not in stems)
        if orphans:
            log.warning("%s: %d mask(s) without a photo in raw/ ignored (e.g. %s)", masks_dir, len(orphans), orphans[0])
    return records


def split_records(
    records: Sequence[PhotoRecord], val_fraction: float, seed: int = 0
) -> tuple[list[PhotoRecord], list[PhotoRecord]]:
    """Split photos into (train, validation), reproducibly for a seed.

    :func:`geocolor.data.split.split_by_group` with each photo its own group:
    with ``val_fraction`` > 0 at least one photo is held out (when there are at
    least two); with 0 the validation list is empty.
    """
    return split_by_group(records, lambda r: str(r.image), val_fraction, seed)


def split_record(root: Path | str, train: Sequence[PhotoRecord], val: Sequence[PhotoRecord],
                 val_fraction: float, seed: int) -> SplitRecord:
    """The :class:`~geocolor.data.split.SplitRecord` of a photo split (group = the photo's stem)."""
    return SplitRecord.build(
        "semantic", {"name": "photos", "val_fraction": val_fraction, "seed": seed}, root,
        {"train": [(r.image, r.image.stem) for r in train], "val": [(r.image, r.image.stem) for r in val]},
    )


def _resize_chw(t: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    if mode == "nearest":
        return F.interpolate(t[None].float(), size=size, mode="nearest")[0].to(t.dtype)
    return F.interpolate(t[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


class SemanticDataset(Dataset):
    """Square training crops of photos in the model's LAB scaling.

    Each item is a dict:

    * ``l``: ``(1, S, S)`` float32, L scaled to [-1, 1] (the input);
    * ``ab``: ``(2, S, S)`` float32, ab / 128 (the colour target);
    * ``mask``: ``(S, S)`` int64 class indices, :data:`IGNORE_INDEX` everywhere
      for photos without a mask;
    * ``has_mask``: bool tensor;
    * ``index``: position of the photo in ``records``.

    With ``augment`` the shorter side is scaled to ``S * U(1, max_zoom)``, a
    random ``S x S`` crop is taken and (with ``flip``) flipped left-right with
    probability 1/2, and (with ``exposure`` > 0) its exposure changed by
    ``U(-exposure, exposure)`` stops (see :func:`change_exposure`); without,
    the shorter side is scaled to ``S`` and the centre crop taken. ``repeat`` > 1 lists
    every photo that many times per epoch (more random crops of a small photo set).
    Randomness comes from ``torch``'s generator, which the DataLoader seeds per
    worker, so a seeded run is reproducible.

    Decoded photos are cached in memory (``cache=True``; photo folders for this
    model are small).
    """

    def __init__(
        self,
        records: Sequence[PhotoRecord],
        image_size: int = 256,
        classes: int = 2,
        augment: bool = False,
        max_zoom: float = 1.5,
        cache: bool = True,
        flip: bool = True,
        repeat: int = 1,
        exposure: float = 0.0,
    ):
        if not records:
            raise DataError("no photos to build a dataset from")
        if image_size < 16:
            raise DataError(f"image size must be at least 16 pixels, got {image_size}")
        self.records = list(records)
        self.image_size = int(image_size)
        self.classes = int(classes)
        self.augment = augment
        self.max_zoom = float(max_zoom)
        self.flip = flip
        self.exposure = float(exposure)
        self.repeat = max(1, int(repeat))
        self.cache = cache
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __len__(self) -> int:
        return len(self.records) * self.repeat

    @property
    def with_masks(self) -> int:
        """How many photos have a mask."""
        return sum(r.mask is not None for r in self.records)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if index in self._cache:
            return self._cache[index]
        record = self.records[index]
        try:
            image = read_rgb(record.image)
        except RasterError as exc:
            raise DataError(str(exc)) from None
        rgb = torch.from_numpy(image.rgb).permute(2, 0, 1).contiguous()
        mask = None
        if record.mask is not None:
            mask = torch.from_numpy(read_mask(record.mask, self.classes, (image.height, image.width)))
        if self.cache:
            self._cache[index] = (rgb, mask)
        return rgb, mask

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = index % len(self.records)
        rgb, mask = self._load(index)
        s = self.image_size
        h, w = rgb.shape[-2:]
        zoom = 1.0
        if self.augment and self.max_zoom > 1:
            zoom = 1.0 + float(torch.rand(())) * (self.max_zoom - 1.0)
        scale = s * zoom / min(h, w)
        nh, nw = max(s, math.ceil(h * scale)), max(s, math.ceil(w * scale))
        rgb = _resize_chw(rgb, (nh, nw), "bilinear").clamp(0, 1)
        if mask is not None:
            mask = _resize_chw(mask[None], (nh, nw), "nearest")[0]
        if self.augment:
            top = int(torch.randint(0, nh - s + 1, ()))
            left = int(torch.randint(0, nw - s + 1, ()))
        else:
            top, left = (nh - s) // 2, (nw - s) // 2
        rgb = rgb[:, top : top + s, left : left + s]
        if mask is not None:
            mask = mask[top : top + s, left : left + s]
        if self.augment and self.flip and float(torch.rand(())) < 0.5:
            rgb = rgb.flip(-1)
            if mask is not None:
                mask = mask.flip(-1)
        if self.augment and self.exposure > 0:
            stops = (2.0 * float(torch.rand(())) - 1.0) * self.exposure
            rgb = change_exposure(rgb, stops)
        l, ab = rgb_to_model(rgb)
        has_mask = mask is not None
        if mask is None:
            mask = torch.full((s, s), IGNORE_INDEX, dtype=torch.int64)
        return {
            "l": l.contiguous(),
            "ab": ab.contiguous(),
            "mask": mask.long().contiguous(),
            "has_mask": torch.tensor(has_mask),
            "index": torch.tensor(index),
        }


def change_exposure(rgb: torch.Tensor, stops: float) -> torch.Tensor:
    """sRGB ``(*, 3, H, W)`` in [0, 1] -> the same scene ``stops`` brighter (negative: darker).

    The scale is applied in linear light, where it keeps each pixel's chromaticity (a
    darker exposure of a red roof is a darker red, not a greyer one), then clipped to
    white as a sensor would.
    """
    linear = srgb_to_linear(rgb) * (2.0 ** stops)
    return linear_to_srgb(linear.clamp(0.0, 1.0)).clamp(0.0, 1.0)


def describe_records(records: Sequence[PhotoRecord]) -> dict[str, Any]:
    """Summary for model cards and logs."""
    return {
        "photos": len(records),
        "with_masks": sum(r.mask is not None for r in records),
    }
