"""Plain images through a semantic model: grey or colour photo -> colour photo (+ segmentation).

The pipeline keeps the input's full resolution and aspect ratio:

1. decode the photo upright (EXIF orientation), as sRGB in [0, 1]
   (:func:`geocolor.data.semantic.read_rgb`: 8/16-bit, grey, RGBA, palette, CMYK);
2. its L* channel at full resolution is kept (a colour input's own colours are
   discarded; only its lightness is used);
3. the network sees a resized copy of L: the shorter side scaled to the model's
   training ``image_size`` (from the card), both sides rounded to the network's
   ``multiple``, aspect ratio kept (long side capped at ``4 * image_size``);
4. the predicted ab (and segmentation logits) are resized back to full
   resolution (bilinear) and joined with the full-resolution L; LAB -> sRGB.

Outputs are written atomically; the colorized image is 8-bit RGB in the format
the destination's extension names (PNG, JPEG, TIFF, ...).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from geocolor.data.lab import L_SCALE, l_to_grey, model_to_rgb, rgb_to_lab
from geocolor.data.semantic import LoadedImage, read_rgb
from geocolor.errors import ModelFileError, OutputError, RasterError, UsageError
from geocolor.infer.preview import save_image
from geocolor.infer.provenance import model_tags, version_tag
from geocolor.infer.result import ColorizeResult, ProgressFn
from geocolor.io.modelfile import LoadedModel, ModelCard
from geocolor.io.source import is_virtual, raster_source
from geocolor.models.tta import with_tta

log = logging.getLogger("geocolor.infer.image")

#: Rows converted at a time between sRGB and LAB (bounds memory on large photos).
STRIPE_ROWS = 1024
#: Longest side of each view in the preview panel.
PREVIEW_MAX_SIDE = 512
DEFAULT_IMAGE_SIZE = 256

#: Segmentation colours: class 0 black, then distinct colours (PASCAL VOC order).
_PALETTE_RGB = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]


def palette(n_classes: int) -> list[tuple[int, int, int]]:
    """Colour of each class in masks and previews (repeats after 21 classes)."""
    return [_PALETTE_RGB[i % len(_PALETTE_RGB)] for i in range(n_classes)]


@dataclass
class ImageColorization:
    """Result of colorizing one decoded image (arrays at the input's full resolution)."""

    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1]
    labels: np.ndarray  # (H, W) int64 class indices
    grey: np.ndarray  # (H, W) float32 in [0, 1]: the input as the network saw it (L only)
    network_size: tuple[int, int]  # (width, height) of the copy the network saw


def require_semantic(model: LoadedModel) -> None:
    """Refuse a model that is not a semantic one (a SAR generator cannot colorize photos)."""
    if model.card.kind != "semantic":
        where = f"{model.path}: " if model.path else ""
        raise ModelFileError(
            f"{where}is a {model.card.kind} model; plain images need a semantic model "
            f"(SAR models colorize GeoTIFF scenes)"
        )


def segmentation_trained(card: ModelCard) -> bool:
    """False for a semantic model trained without masks: its card's data summary says the
    segmentation head is untrained, and its labels are noise. Cards without that summary
    (hand-made, or from before it was recorded) count as trained."""
    data = card.training.get("data") if isinstance(card.training, dict) else None
    summary = data.get("segmentation", "") if isinstance(data, dict) else ""
    return card.kind == "semantic" and not str(summary).startswith("untrained")


def require_trained_segmentation(model: LoadedModel) -> None:
    """Refuse to write masks from a segmentation head that never learnt (``--mask-out``)."""
    if not segmentation_trained(model.card):
        where = f"{model.path}: " if model.path else ""
        raise UsageError(
            f"{where}this model's segmentation head is untrained (it was trained without "
            "masks), so it has no masks to write; drop --mask-out, or train one with "
            "DATA/masks/"
        )


def network_size(height: int, width: int, image_size: int, multiple: int) -> tuple[int, int]:
    """(height, width) of the network's copy: shorter side ~``image_size``, aspect kept.

    Both sides are multiples of ``multiple`` (at least one multiple); the longer
    side is capped at ``4 * image_size``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image of size {width}x{height}")
    scale = image_size / min(height, width)
    cap = 4 * image_size

    def fit(side: int) -> int:
        n = max(1, round(side * scale / multiple)) * multiple
        return min(n, max(multiple, cap // multiple * multiple))

    return fit(height), fit(width)


def _stripes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, rows: int = STRIPE_ROWS) -> torch.Tensor:
    """Apply a per-pixel ``fn`` to ``(C, H, W)`` in stripes of rows."""
    if x.shape[-2] <= rows:
        return fn(x)
    return torch.cat([fn(x[..., i : i + rows, :]) for i in range(0, x.shape[-2], rows)], dim=-2)


def l_channel(rgb: np.ndarray) -> torch.Tensor:
    """Full-resolution model input ``(1, H, W)``: L* of ``rgb`` (H, W, 3) scaled to [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    return _stripes(lambda s: rgb_to_lab(s)[:1] / L_SCALE - 1, t)


def _network_multiple(network: torch.nn.Module) -> int:
    return int(getattr(network, "multiple", 32))


@torch.inference_mode()
def predict(
    network: torch.nn.Module,
    l_full: torch.Tensor,
    image_size: int,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Run the network on a resized copy of ``l_full`` and bring its outputs back to full size.

    Args:
        network: a semantic network (L -> (seg logits, ab)) in eval mode.
        l_full: ``(1, H, W)`` L scaled to [-1, 1], at the input's resolution.
        image_size: the model's training size (card ``input["image_size"]``).
        device: where to run the network.

    Returns:
        ``(ab (2, H, W) in [-1, 1] on the CPU, labels (H, W) int64, (net_h, net_w))``.
    """
    h, w = l_full.shape[-2:]
    nh, nw = network_size(h, w, image_size, _network_multiple(network))
    x = l_full[None].to(device)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    logits, ab = network(x.clamp(-1, 1))
    ab = ab.float()
    logits = logits.float()
    if (nh, nw) != (h, w):
        ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
    labels = _upsampled_argmax(logits, (h, w))
    return ab[0].cpu(), labels.cpu(), (nh, nw)


def _upsampled_argmax(logits: torch.Tensor, size: tuple[int, int], rows: int = STRIPE_ROWS) -> torch.Tensor:
    """argmax over classes of bilinearly upsampled ``(1, C, h, w)`` logits, by stripes of rows.

    Equal to ``F.interpolate(logits, size, mode="bilinear").argmax(1)[0]`` but never
    holds ``C x H x W`` floats at once: columns are interpolated first (small:
    ``h`` rows), then each stripe of output rows (the same formula as PyTorch's,
    ``align_corners=False``).
    """
    h, w = size
    cols = F.interpolate(logits, size=(logits.shape[-2], w), mode="bilinear", align_corners=False)
    src_h = cols.shape[-2]
    out = []
    for top in range(0, h, rows):
        r = torch.arange(top, min(h, top + rows), dtype=torch.float64, device=cols.device)
        y = ((r + 0.5) * (src_h / h) - 0.5).clamp(min=0)
        y0 = y.floor().long().clamp(max=src_h - 1)
        y1 = (y0 + 1).clamp(max=src_h - 1)
        wy = (y - y0).to(cols.dtype).view(1, 1, -1, 1)
        stripe = (cols[:, :, y0, :] * (1 - wy) + cols[:, :, y1, :] * wy)[0]
        out.append(_argmax_classes(stripe))
    return torch.cat(out, dim=0)


def _argmax_classes(scores: torch.Tensor) -> torch.Tensor:
    """argmax over the first dim of ``(C, H, W)`` (first maximum wins, like ``argmax``).

    A running comparison over the few classes is much faster on the CPU than
    ``argmax`` along a strided channel dim.
    """
    best = scores[0].clone()
    labels = torch.zeros(scores.shape[1:], dtype=torch.int64, device=scores.device)
    for c in range(1, scores.shape[0]):
        better = scores[c] > best
        best = torch.where(better, scores[c], best)
        labels[better] = c
    return labels


def colorize_loaded(model: LoadedModel, image: LoadedImage, device: str | torch.device = "cpu",
                    tta: str | None = None) -> ImageColorization:
    """Colorize a decoded image with a semantic model (arrays in, arrays out).

    ``tta``: ``flips`` or ``d4`` averages the network over flips (and, for square
    network inputs, rotations): :class:`geocolor.models.tta.TTA`.
    """
    require_semantic(model)
    network = model.network
    _move(network, device)
    network = with_tta(network, tta)
    image_size = int(model.card.input.get("image_size", DEFAULT_IMAGE_SIZE))
    l_full = l_channel(image.rgb)
    ab, labels, (nh, nw) = predict(network, l_full, image_size, device)
    # L and ab are joined stripe by stripe: no full-size LAB array is held.
    rgb = torch.cat([
        model_to_rgb(l_full[:, i : i + STRIPE_ROWS], ab[:, i : i + STRIPE_ROWS])
        for i in range(0, l_full.shape[-2], STRIPE_ROWS)
    ], dim=-2)
    del ab
    grey = _stripes(l_to_grey, l_full)
    return ImageColorization(
        rgb=rgb.permute(1, 2, 0).numpy(),
        labels=labels.numpy().astype(np.int64),
        grey=grey[0].numpy(),
        network_size=(nw, nh),
    )


def _move(network: torch.nn.Module, device: str | torch.device) -> None:
    param = next(network.parameters(), None)
    if param is not None and param.device != torch.device(device):
        network.to(device)


def _to_uint8(x: np.ndarray, rows: int = STRIPE_ROWS) -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded), a stripe of rows at a time (no full-size float temporaries)."""
    out = np.empty(x.shape, np.uint8)
    for i in range(0, x.shape[0], rows):
        part = np.clip(x[i : i + rows], 0, 1)
        part *= 255
        part += 0.5
        out[i : i + rows] = part
    return out


def _check_writable_image_path(path: Path, what: str) -> None:
    from PIL import Image

    ext = path.suffix.lower()
    if ext not in Image.registered_extensions():
        raise OutputError(
            f"{path}: unknown image format {ext or '(no extension)'!r} for the {what}; "
            "use .png, .jpg or .tif"
        )


def mask_image(labels: np.ndarray, n_classes: int) -> Any:
    """The label map as a palette ('P' mode) PIL image: pixel value = class index."""
    from PIL import Image

    img = Image.fromarray(labels.astype(np.uint8))  # mode L; putpalette makes it P, values kept
    flat = [c for rgb in palette(max(n_classes, 1)) for c in rgb]
    img.putpalette(flat + [0] * (768 - len(flat)))
    return img


def preview_image(result: ImageColorization, n_classes: int, max_side: int = PREVIEW_MAX_SIDE,
                  segmentation: bool = True) -> Any:
    """Side-by-side panel: input (as the model saw it: L) | segmentation | colorized; without
    ``segmentation`` (an untrained head) input | colorized."""
    from PIL import Image, ImageDraw

    h, w = result.labels.shape
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey_small = Image.fromarray(_to_uint8(result.grey)).resize(size, Image.Resampling.LANCZOS)
    views = [(grey_small.convert("RGB"), "input (L)")]
    if segmentation:
        views.append((_segmentation_overlay(result.labels, grey_small, n_classes), "segmentation"))
    colour = Image.fromarray(_to_uint8(result.rgb)).resize(size, Image.Resampling.LANCZOS)
    views.append((colour, "colorized"))
    gap, caption = 4, 16
    panel = Image.new("RGB", (len(views) * size[0] + (len(views) - 1) * gap, size[1] + caption),
                      (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for i, (view, title) in enumerate(views):
        x = i * (size[0] + gap)
        panel.paste(view, (x, caption))
        draw.text((x + 2, 2), title, fill=(0, 0, 0))
    return panel


def _segmentation_overlay(labels: np.ndarray, grey_small: Any, n_classes: int) -> Any:
    """The class colours over the grey input, at preview size (``grey_small``: mode L)."""
    from PIL import Image

    # Made at preview size: a full-size float overlay of a 50 MP photo is GBs.
    small = np.asarray(Image.fromarray(labels.astype(np.uint8)).resize(grey_small.size,
                                                                       Image.Resampling.NEAREST))
    k = max(n_classes, 1)
    colours = np.asarray(palette(k), dtype=np.float32)[small.clip(0, k - 1)] / 255
    overlay = 0.45 * (np.asarray(grey_small, dtype=np.float32)[..., None] / 255) + 0.55 * colours
    return Image.fromarray(_to_uint8(overlay))


def _as_semantic(model: LoadedModel | str | Path | None) -> LoadedModel:
    """A loaded semantic model: ``model`` itself, the file (or packaged name) it gives, or the default."""
    if isinstance(model, LoadedModel):
        require_semantic(model)
        return model
    from geocolor.io.modelfile import default_model_path, load_model

    return load_model(default_model_path("semantic") if model is None else model, kind="semantic")


def _local_photo(src: str | Path) -> Path:
    """``src`` as a local path; a URL or GDAL virtual path is refused (photos are decoded by
    Pillow, from local files)."""
    source = raster_source(src)
    if is_virtual(source):
        raise RasterError(f"{src}: photos are read from local files; download it first "
                          "(URLs are read in place for SAR rasters only)")
    return Path(source)


def colorize_image(
    src: str | Path,
    dst: str | Path,
    model: LoadedModel | str | Path | None = None,
    *,
    mask_out: str | Path | None = None,
    preview: str | Path | None = None,
    device: str | torch.device = "auto",
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    tta: str | None = None,
) -> ColorizeResult:
    """Colorize one photo with a semantic model, at the photo's full resolution.

    The sibling of :func:`geocolor.colorize_scene`: same argument order, defaults,
    overwrite rule, progress callback and result type.

    Args:
        src: photo (JPEG, PNG, TIFF, BMP, WebP; colour or grey, 8 or 16 bit).
        dst: colorized output; the extension picks the format (8-bit RGB).
        model: a loaded ``semantic`` model, a model file, ``"semantic"`` or None
            (both: the packaged semantic model).
        mask_out: optional segmentation as a palette PNG (pixel = class index).
        preview: optional panel input | segmentation | colorized.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        overwrite: replace an existing ``dst`` (``mask_out`` and ``preview`` are
            side files and always replaced, as for scenes).
        progress: called as ``progress(steps_done, steps_total)``: read, network,
            output, then each side file.
        tta: test-time augmentation, ``flips`` or ``d4`` (see :func:`colorize_loaded`).

    Returns:
        A :class:`~geocolor.infer.result.ColorizeResult` (kind ``"semantic"``; its
        width and height equal the upright input's); details: ``input_mode``
        (``"rgb"``/``"grey"``), ``network_size`` (the ``[width, height]`` the network
        saw) and ``classes`` (the fraction of pixels per class).

    Raises:
        ModelFileError: ``model`` is not a semantic model.
        RasterError: ``src`` is missing or not a readable image.
        OutputError: ``dst`` exists (without ``overwrite``), is the input, has an
            unknown extension, cannot be created, or the disk is full.
    """
    if isinstance(src, LoadedModel):  # the 0.1 order colorize_image(model, src, dst)
        import warnings

        warnings.warn("colorize_image(model, src, dst) is deprecated; use colorize_image(src, dst, model)",
                      DeprecationWarning, stacklevel=2)
        src, dst, model = dst, model, src  # type: ignore[assignment]
    from geocolor.device import resolve_device
    from geocolor.infer.output import check_output
    from geocolor.io.diskspace import reporting_disk_full

    started = time.perf_counter()
    loaded = _as_semantic(model)
    if mask_out is not None:
        require_trained_segmentation(loaded)
    src, dst = _local_photo(src), Path(dst)
    side_files = [Path(p) for p in (mask_out, preview) if p is not None]
    for path, what in ((dst, "output"), *((p, "side file") for p in side_files)):
        _check_writable_image_path(path, what)
    dev = resolve_device(device)
    total = 3 + len(side_files)
    report = progress or (lambda done, total: None)
    check_output(src, dst, overwrite)
    for path in side_files:
        check_output(src, path, overwrite=True)  # creates its folder
    report(0, total)
    image = read_rgb(src)
    report(1, total)
    result = colorize_loaded(loaded, image, dev, tta=tta)
    report(2, total)
    from PIL import Image

    done = 2
    n_classes = max(len(loaded.card.classes), int(loaded.card.arch_args.get("n_classes", 2)))
    outputs = [(dst, lambda: Image.fromarray(_to_uint8(result.rgb)))]
    text = {**version_tag(), "GEOCOLOR_SOURCE": Path(src).name, **model_tags(loaded),
            "GEOCOLOR_ENGINE": f"torch {dev.type} float32" + (f", TTA {tta}" if tta else "")}
    if mask_out is not None:
        outputs.append((Path(mask_out), lambda: mask_image(result.labels, n_classes)))
    trained = segmentation_trained(loaded.card)
    if preview is not None:
        outputs.append((Path(preview), lambda: preview_image(result, n_classes, segmentation=trained)))
    for path, make in outputs:
        with reporting_disk_full(path):
            save_image(make(), path, text=text if path == dst else None)
        done += 1
        report(done, total)
    details: dict[str, Any] = {"input_mode": image.mode, "network_size": list(result.network_size)}
    if trained:  # an untrained head's class shares would be noise
        details["classes"] = _class_shares(result.labels, loaded.card.classes, n_classes)
    else:
        details["segmentation"] = "untrained (the model was trained without masks)"
    return ColorizeResult(
        input=str(src),
        output=str(dst),
        kind="semantic",
        model=str(loaded.path) if loaded.path else None,
        width=image.width,
        height=image.height,
        seconds=round(time.perf_counter() - started, 3),
        preview=str(preview) if preview is not None else None,
        mask=str(mask_out) if mask_out is not None else None,
        details=details,
    )


def _class_shares(labels: np.ndarray, names: list[str], n_classes: int) -> dict[str, float]:
    """Share of the pixels of each class, by class name (``class<i>`` where unnamed)."""
    counts = np.bincount(labels.ravel(), minlength=n_classes)
    pixels = max(1, int(counts.sum()))
    return {names[i] if i < len(names) else f"class{i}": round(int(c) / pixels, 6)
            for i, c in enumerate(counts)}


__all__ = [
    "ImageColorization",
    "colorize_image",
    "colorize_loaded",
    "mask_image",
    "network_size",
    "palette",
    "predict",
    "preview_image",
    "require_semantic",
    "require_trained_segmentation",
    "segmentation_trained",
]
