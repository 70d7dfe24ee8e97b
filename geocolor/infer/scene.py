"""The streaming scene pipeline behind ``geocolor colorize`` for SAR models.

One scene flows through three stages that run at the same time::

    reader thread          main thread              writer thread
    read a band of rows -> model on batches     ->  blend tiles into a row buffer,
    mask, scale, pad,      (inference_mode,         write finished rows, mask,
    cut tiles, batch       AMP on CUDA)             overviews at the end

The reader reads one full-width band of rows per tile row (the rows of one tile
row), converts it to the model's unit scale (:mod:`geocolor.infer.sarinput`),
reflect-pads it and cuts the tiles; tiles whose pixels are all nodata are
counted but not sent to the model. The writer adds each tile's output times the
blending window (:mod:`geocolor.infer.tiling`) into a buffer of ``tile`` rows;
when a tile row is done, the rows no later tile touches are divided by the
(separable) summed weights, quantised and written, and the buffer shifts up.
Memory holds one band of input rows, one buffer of output rows and a few batches
in the queues: it does not grow with the scene's height, and grows with its
width only through those row buffers.

The rows are streamed into a temporary tiled GeoTIFF next to the target; it is
then copied to a Cloud-Optimized GeoTIFF (or PNG/JPEG) under another temporary
name that is renamed onto the target when complete
(:func:`geocolor.io.atomic.atomic_path`), so the target never holds a partial
file and no temporary file survives a Python-level failure.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import rasterio
import rasterio.shutil
import torch
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from geocolor import __version__
from geocolor.data.sarscale import SarScaling
from geocolor.device import resolve_device
from geocolor.errors import ModelFileError, OutputError, RasterError, UsageError
from geocolor.infer.sarinput import SarInput, read_failure, resolve_sar_input
from geocolor.infer.tiling import TileGrid
from geocolor.io.atomic import atomic_path, temporary_path_for
from geocolor.io.modelfile import LoadedModel, load_model, packaged_model_path
from geocolor.io.raster import georeference_kind, open_raster

log = logging.getLogger("geocolor.infer")

#: Default overlap between tiles (pixels), capped at a quarter of the tile.
DEFAULT_OVERLAP = 64
DEFAULT_BATCH_SIZE = 8
#: GDAL block cache for a run (bytes): small, so memory does not grow with the scene; raised
#: for very wide scenes to hold a few rows of blocks (see :func:`_gdal_cache_bytes`).
GDAL_CACHE_BYTES = 16 * 2**20
#: Batches waiting between stages (each queue).
QUEUE_DEPTH = 3
#: Longest side of one panel of a --preview image.
PREVIEW_SIDE = 1024

DEFAULT_COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "512",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}
DEFAULT_GTIFF_OPTIONS = {
    "TILED": "YES",
    "BLOCKXSIZE": "512",
    "BLOCKYSIZE": "512",
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "2",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}
#: The intermediate file of the COG/PNG/JPEG routes: fast to write, read once.
_SCRATCH_OPTIONS = {
    "TILED": "YES",
    "BLOCKXSIZE": "256",
    "BLOCKYSIZE": "256",
    "COMPRESS": "ZSTD",
    "ZSTD_LEVEL": "1",
    "BIGTIFF": "IF_SAFER",
}

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------- helpers


def output_format(dst: Path) -> str:
    """``"gtiff"``, ``"png"`` or ``"jpeg"`` from the output's extension."""
    suffix = dst.suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix in (".jpg", ".jpeg"):
        return "jpeg"
    if suffix in (".tif", ".tiff", ""):
        return "gtiff"
    raise UsageError(f"{dst}: unknown output format {suffix!r}; use .tif, .png or .jpg")


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse an output that is the input, exists (unless ``overwrite``) or cannot be written."""
    if dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: output is the input file; choose another output path")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give an output file name")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: exists; pass --overwrite to replace it or --skip-existing to skip it")
    parent = dst.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{parent}: cannot create the output directory ({exc.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: output directory is not writable")


def sar_scaling_of(loaded: LoadedModel) -> SarScaling:
    """The SAR scaling recorded in a SAR model's card."""
    data = loaded.card.input.get("sar_scaling")
    where = loaded.path or "model"
    if not isinstance(data, dict):
        raise ModelFileError(f"{where}: model card has no input.sar_scaling; cannot scale SAR input for it")
    try:
        return SarScaling.from_dict(data)
    except Exception as exc:  # noqa: BLE001 - ConfigError or TypeError from a bad card
        raise ModelFileError(f"{where}: invalid input.sar_scaling in the model card ({exc})") from None


def tile_settings(loaded: LoadedModel, tile_size: int | None, overlap: int | None) -> tuple[int, int]:
    """(tile, overlap): the card's tile size unless given, checked against the network."""
    multiple = int(getattr(loaded.network, "multiple", 1))
    tile = int(tile_size or loaded.card.input.get("tile_size") or 256)
    if tile < multiple or tile % multiple:
        raise UsageError(f"--tile-size {tile}: must be a multiple of {multiple} for this model")
    overlap = min(DEFAULT_OVERLAP, tile // 4) if overlap is None else int(overlap)
    if not 0 <= overlap <= tile // 2:
        raise UsageError(f"--overlap {overlap}: must be between 0 and half the tile size ({tile // 2})")
    return tile, overlap


def default_model_path(kind: str) -> Path:
    """The packaged default model of ``kind``, or a clear error when it is not installed."""
    path = packaged_model_path(kind)
    if not path.is_file():
        raise ModelFileError(
            f"no packaged default {kind} model is installed (looked for {path}); "
            f"pass --model PATH with a {kind} model file (train one with 'geocolor train {kind}')"
        )
    return path


def _gdal_cache_bytes(width: int) -> int:
    """GDAL's block cache: enough for three full-width rows of 256-px RGB blocks (what the
    writer leaves half-written and what the input rows span), at least :data:`GDAL_CACHE_BYTES`."""
    return max(GDAL_CACHE_BYTES, 3 * 4 * 256 * 256 * -(-width // 256))


def _heap_trimmer() -> Callable[[], None]:
    """A function that returns the freed heap memory of all threads to the OS (glibc), else a no-op.

    glibc raises its mmap threshold after large blocks are freed, so later
    row-band-sized numpy arrays come from per-thread heaps that keep the memory
    when they are freed: the process would grow with the scene's width and the
    number of threads. ``malloc_trim(0)`` after each row of tiles gives it back.
    (Pinning ``M_MMAP_THRESHOLD`` instead also works but makes every large
    activation of the network a fresh mapping: about 15 % slower on CPU.)
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            trim = ctypes.CDLL("libc.so.6").malloc_trim
            trim.argtypes = [ctypes.c_size_t]
            return lambda: trim(0) and None
        except (OSError, AttributeError):  # not glibc
            pass
    return lambda: None


_trim_heap = _heap_trimmer()


def _parse_options(options: dict[str, Any] | None) -> dict[str, str]:
    return {str(k).upper(): str(v) for k, v in (options or {}).items()}


@contextlib.contextmanager
def _quiet_georef_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


# --------------------------------------------------------------------------- pipeline pieces


@dataclass
class _Batch:
    """Tiles travelling reader -> model -> writer."""

    tiles: list[tuple[int, int]] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    x: Any = None  # (B, 1, T, T) model input (numpy or pinned tensor)
    y: np.ndarray | None = None  # (B, 3, T, T) model output in [-1, 1]
    #: (k, r): tile row r is complete once the first k tiles of this batch are added.
    completes: list[tuple[int, int]] = field(default_factory=list)
    skipped: int = 0


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Stopped(Exception):
    pass


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event, alive: Callable[[], bool] | None = None) -> Any:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if alive is not None and not alive():
                raise RuntimeError("a pipeline thread ended unexpectedly") from None
            continue


def _reader(
    src: Path,
    sar: SarInput,
    grid: TileGrid,
    batch_size: int,
    pin: bool,
    out: queue.Queue,
    stop: threading.Event,
    timing: dict[str, float],
) -> None:
    """Read row bands, cut tiles, skip all-nodata ones, and queue batches."""
    try:
        with open_raster(src) as ds:
            pending = _Batch()
            tile = grid.tile
            for r, y in enumerate(grid.ys):
                a, b = grid.scene_span(y, grid.height)
                window = Window(0, a, grid.width, b - a)
                try:
                    data = ds.read(sar.band, window=window)
                    mask = ds.read_masks(sar.band, window=window) if sar.read_mask else None
                except RasterioError as exc:
                    raise read_failure(src, exc) from None
                valid = sar.valid(data, mask)
                band = sar.to_unit(data)
                del data, mask
                band[~valid] = 0.0
                band *= np.float32(2.0)  # -> the model's [-1, 1], in place
                band -= np.float32(1.0)
                top, bottom = grid.row_pads(r)
                for c, x in enumerate(grid.xs):
                    xa, xb = grid.scene_span(x, grid.width)
                    tile_valid = valid[:, xa:xb]
                    if not tile_valid.any():
                        pending.skipped += 1
                        continue
                    pending.tiles.append((r, c))
                    pending.masks.append(tile_valid.copy())  # no view keeps the row band alive
                    pads = ((top, bottom), (xa - x, x + tile - xb))
                    piece = band[:, xa:xb]
                    # reflect about the scene's edges (only edge tiles need it)
                    pending.inputs.append(np.pad(piece, pads, mode="reflect") if any(map(any, pads)) else piece)
                    if len(pending.tiles) == batch_size:
                        _put(out, _stack(pending, pin), stop)
                        pending = _Batch()
                del band, valid
                _trim_heap()
                pending.completes.append((len(pending.tiles), r))
                if not pending.tiles:  # nothing waiting: pass the row on right away
                    _put(out, pending, stop)
                    pending = _Batch()
            if pending.tiles or pending.completes or pending.skipped:
                _put(out, _stack(pending, pin), stop)
        timing["reader_cpu_s"] = time.thread_time()
        _put(out, _END, stop)
    except _Stopped:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        with contextlib.suppress(_Stopped):
            _put(out, _Failure(exc), stop)


def _stack(batch: _Batch, pin: bool) -> _Batch:
    if batch.inputs:
        x = np.stack(batch.inputs)[:, None]
        batch.x = torch.from_numpy(x).pin_memory() if pin else x
        batch.inputs = []
    return batch


class _Writer:
    """Blends tile outputs into a ``tile``-row buffer and writes finished rows."""

    def __init__(self, dataset: rasterio.io.DatasetWriter, grid: TileGrid, mask_mode: str | None) -> None:
        self.ds = dataset
        self.grid = grid
        self.mask_mode = mask_mode  # None | "mask" | "alpha"
        self.acc = np.zeros((3, grid.tile, grid.width), dtype=np.float32)
        self.valid = np.zeros((grid.tile, grid.width), dtype=bool)
        self.top = 0  # scene row of buffer row 0
        self.rows_written = 0

    def add(self, batch: _Batch, start: int, stop: int) -> None:
        """Blend tiles ``start:stop`` of ``batch`` into the buffer."""
        grid = self.grid
        for k in range(start, stop):
            r, c = batch.tiles[k]
            y, x = grid.ys[r], grid.xs[c]
            ya, yb = grid.scene_span(y, grid.height)
            xa, xb = grid.scene_span(x, grid.width)
            out = batch.y[k, :, ya - y: yb - y, xa - x: xb - x]
            w = grid.window[ya - y: yb - y, xa - x: xb - x]
            self.acc[:, ya - self.top: yb - self.top, xa:xb] += out * w
            self.valid[ya - self.top: yb - self.top, xa:xb] |= batch.masks[k]

    def finish_row(self, r: int) -> None:
        grid = self.grid
        end = max(self.top, grid.rows_done_after(r))
        n = end - self.top
        if n <= 0:
            return
        block = self.acc[:, :n]  # in place: these rows are cleared below anyway
        block /= grid.norm_y[self.top:end, None]
        block /= grid.norm_x[None, :]  # now the blend in [-1, 1]
        block += 1.0
        block *= 127.5
        np.rint(block, out=block)
        np.clip(block, 0, 255, out=block)
        rgb = block.astype(np.uint8)
        valid = self.valid[:n]
        rgb[:, ~valid] = 0
        window = Window(0, self.top, grid.width, n)
        self.ds.write(rgb, indexes=[1, 2, 3], window=window)
        if self.mask_mode == "mask":
            self.ds.write_mask(valid.astype(np.uint8) * 255, window=window)
        elif self.mask_mode == "alpha":
            self.ds.write(valid.astype(np.uint8) * 255, indexes=4, window=window)
        self.rows_written += n
        # shift the rows still in flight up, n rows at a time (no overlapping copy, no temporary)
        keep = grid.tile - n
        for i in range(0, keep, n):
            j = min(keep, i + n)
            self.acc[:, i:j] = self.acc[:, i + n: j + n]
            self.valid[i:j] = self.valid[i + n: j + n]
        self.acc[:, keep:] = 0.0
        self.valid[keep:] = False
        self.top = end
        _trim_heap()


def _writer_loop(
    writer: _Writer,
    total: int,
    progress: ProgressFn | None,
    inbox: queue.Queue,
    stop: threading.Event,
    errors: list[BaseException],
    timing: dict[str, float],
) -> None:
    done = 0
    try:
        while True:
            item = _get(inbox, stop)
            if item is _END:
                timing["writer_cpu_s"] = time.thread_time()
                return
            start = 0
            for k, r in item.completes:
                writer.add(item, start, k)
                writer.finish_row(r)
                start = k
            writer.add(item, start, len(item.tiles))
            done += len(item.tiles) + item.skipped
            if progress is not None:
                progress(done, total)
    except _Stopped:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        errors.append(exc)
        stop.set()


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def run_model(network: torch.nn.Module, x: Any, device: torch.device, amp: bool = True) -> np.ndarray:
    """One batch (B, 1, T, T) in [-1, 1] -> (B, 3, T, T) float32 numpy in [-1, 1]."""
    tensor = torch.as_tensor(x)
    if device.type == "cuda":
        tensor = tensor.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), _autocast(device, amp):
        y = network(tensor)
    return y.float().cpu().numpy()


# --------------------------------------------------------------------------- output files


def _georeference(ds: rasterio.DatasetReader) -> dict[str, Any]:
    kind = georeference_kind(ds)
    info: dict[str, Any] = {"kind": kind}
    if kind == "transform":
        info["crs"] = ds.crs
        info["transform"] = ds.transform
    elif kind == "gcps":
        info["gcps"] = ds.gcps
    elif kind == "rpcs":
        info["rpcs"] = ds.rpcs
    return info


def _open_scratch(
    path: Path, width: int, height: int, georef: dict[str, Any], alpha: bool, options: dict[str, str]
) -> rasterio.io.DatasetWriter:
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 4 if alpha else 3,
        "dtype": "uint8",
        "photometric": "RGB",
        "interleave": "pixel",
    }
    if alpha:
        profile["alpha"] = "YES"
    profile.update({k.lower(): v for k, v in options.items()})
    if georef.get("kind") == "transform":
        profile["crs"] = georef["crs"]
        profile["transform"] = georef["transform"]
    try:
        ds = rasterio.open(path, "w", **profile)
    except RasterioError as exc:
        raise OutputError(f"{path}: cannot create the output ({str(exc).strip().splitlines()[0]})") from None
    if georef.get("kind") == "gcps":
        ds.gcps = georef["gcps"]
    elif georef.get("kind") == "rpcs":
        ds.rpcs = georef["rpcs"]
    ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue] + (
        [ColorInterp.alpha] if alpha else []
    )
    return ds


def _overview_factors(width: int, height: int, smallest: int = 256) -> list[int]:
    factors, f = [], 2
    while max(width, height) / f >= smallest // 2 and max(width, height) > smallest:
        factors.append(f)
        f *= 2
    return factors


def _finalise(scratch: Path, target_tmp: Path, fmt: str, cog: bool, options: dict[str, str]) -> None:
    """Turn the streamed scratch file into the final format at ``target_tmp``."""
    if fmt == "gtiff" and not cog:
        os.replace(scratch, target_tmp)
        return
    if fmt == "gtiff":
        opts = {**DEFAULT_COG_OPTIONS, **options}
        driver = "COG"
    elif fmt == "png":
        opts, driver = {"ZLEVEL": "6", **options}, "PNG"
    else:
        opts, driver = {"QUALITY": "90", **options}, "JPEG"
    try:
        with rasterio.Env(GDAL_PAM_ENABLED=fmt == "gtiff"):
            rasterio.shutil.copy(scratch, target_tmp, driver=driver, **opts)
    except RasterioError as exc:
        raise OutputError(f"cannot write the {driver} output ({str(exc).strip().splitlines()[0]})") from None


def write_preview(
    src: Path, sar: SarInput, output: Path, preview: Path, side: int = PREVIEW_SIDE
) -> Path:
    """Side-by-side PNG: the input as the model saw it (grey) | the colorized output.

    Panels are decimated so that their longest side is at most ``side`` pixels
    (small scenes are enlarged by an integer factor to at least 512 px).
    """
    from PIL import Image

    with _quiet_georef_warnings():
        with rasterio.open(output) as out:
            width, height = out.width, out.height
            scale = max(width, height) / side
            shape = (height, width) if scale <= 1 else (max(1, round(height / scale)), max(1, round(width / scale)))
            rgb = out.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
            valid = out.dataset_mask(out_shape=shape) > 0
        with rasterio.open(src) as ds:
            data = ds.read(sar.band, out_shape=shape)
            mask = ds.read_masks(sar.band, out_shape=shape) if sar.read_mask else None
    grey = np.rint(sar.to_unit(data) * 255).astype(np.uint8)
    grey[~(sar.valid(data, mask) & valid)] = 0
    rgb[:, ~valid] = 0
    gap = max(2, shape[1] // 100)
    panel = np.zeros((shape[0], 2 * shape[1] + gap, 3), dtype=np.uint8)
    panel[:, :, :] = 255
    panel[:, : shape[1]] = grey[..., None]
    panel[:, shape[1] + gap:] = np.moveaxis(rgb, 0, -1)
    factor = max(1, 512 // max(shape))
    image = Image.fromarray(panel)
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    check_output(src, preview, overwrite=True)
    with atomic_path(preview, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return preview


# --------------------------------------------------------------------------- the engine


def _as_loaded(model: LoadedModel | str | Path | None) -> LoadedModel:
    if isinstance(model, LoadedModel):
        if model.card.kind != "sar":
            raise ModelFileError(
                f"{model.path or 'model'}: is a {model.card.kind} model; a SAR scene needs a sar model"
            )
        return model
    path = default_model_path("sar") if model is None else Path(model)
    return load_model(path, kind="sar")


def colorize_scene(
    src: str | Path,
    dst: str | Path,
    model: LoadedModel | str | Path | None = None,
    *,
    band: str | int | None = None,
    input_scale: str = "auto",
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "auto",
    amp: bool = True,
    cog: bool = True,
    creation_options: dict[str, Any] | None = None,
    alpha: bool = False,
    preview: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Colorize a SAR raster (or a plain grey image) with a SAR model, streaming.

    Args:
        src: any GDAL raster (see :mod:`geocolor.infer.sarinput` for what is accepted).
        dst: output path: ``.tif`` (RGB uint8 GeoTIFF on the input's grid,
            Cloud-Optimized unless ``cog=False``), ``.png`` or ``.jpg`` (plain image).
        model: a loaded SAR model, a model file path, or None for the packaged default.
        band: 1-based index or description (``VV``/``VH``); default: the card's polarisation.
        input_scale: ``auto``, ``db``, ``linear``, ``amplitude``, ``dn`` or ``scaled``.
        tile_size: tile side (default: the card's ``input.tile_size``, else 256); a
            multiple of the network's required multiple.
        overlap: overlap between tiles (default ``min(64, tile_size // 4)``).
        batch_size: tiles per model call (the result does not depend on it).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: mixed precision (bf16, or fp16 where bf16 is unsupported) on CUDA.
        cog: write a Cloud-Optimized GeoTIFF (else a tiled GeoTIFF with overviews).
        creation_options: GDAL creation options of the output driver (``COMPRESS=ZSTD`` ...).
        alpha: GeoTIFF nodata as an alpha band instead of an internal mask.
        preview: also write a side-by-side PNG (input | colorized) here.
        overwrite: replace an existing ``dst``.
        progress: called as ``progress(tiles_done, tiles_total)`` from the writer thread.

    Returns:
        A JSON-ready summary: input, output, kind ("sar"), width, height, tiles (sent
        to the model), tiles_skipped (all nodata), seconds, band, input_scale,
        reference (the amplitude percentile, if the scaling uses one),
        georeference ("transform" | "gcps" | "rpcs" | "none") and timing
        (model_s, reader_cpu_s, writer_cpu_s, finalise_s).

    Raises:
        RasterError, OutputError, ModelFileError, UsageError (all GeocolorError).
    """
    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    fmt = output_format(dst)
    loaded = _as_loaded(model)
    scaling = sar_scaling_of(loaded)
    network = loaded.network
    tile, overlap = tile_settings(loaded, tile_size, overlap)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    dev = resolve_device(device)
    options = _parse_options(creation_options)

    # A small GDAL block cache from the first read on: memory must not grow with the scene.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, GDAL_TIFF_INTERNAL_MASK=True), \
            _quiet_georef_warnings(), contextlib.ExitStack() as stack:
        with open_raster(src) as ds:
            if _gdal_cache_bytes(ds.width) > GDAL_CACHE_BYTES:
                stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_gdal_cache_bytes(ds.width)))
            check_output(src, dst, overwrite)
            sar = resolve_sar_input(ds, src, scaling, band=band, input_scale=input_scale)
            grid = TileGrid(ds.height, ds.width, tile, overlap)
            georef = _georeference(ds) if fmt == "gtiff" else {"kind": "none"}
        log.info(
            "%s: %s; %d tile%s of %d px (overlap %d)",
            src, sar.describe(), len(grid), "" if len(grid) == 1 else "s", tile, overlap,
        )
        mask_mode = None
        if sar.may_have_nodata:
            mask_mode = "alpha" if (alpha or fmt == "png") else ("mask" if fmt == "gtiff" else None)
        scratch_options = {**DEFAULT_GTIFF_OPTIONS, **options} if (fmt == "gtiff" and not cog) else _SCRATCH_OPTIONS

        network.to(dev)
        if dev.type == "cuda":
            network.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True  # every call has the same tile shape
        network.eval()

        scratch = temporary_path_for(dst, ".tif")
        try:
            with atomic_path(dst, suffix=dst.suffix) as target_tmp:
                stats = _stream(src, sar, grid, network, dev, amp, batch_size, scratch, georef,
                                mask_mode, scratch_options, fmt == "gtiff" and not cog, progress)
                if stats["tiles_run"] == 0:
                    raise RasterError(f"{src}: has no valid pixels (all nodata)")
                t0 = time.perf_counter()
                _finalise(scratch, target_tmp, fmt, cog, options)
                stats["timing"]["finalise_s"] = round(time.perf_counter() - t0, 3)
                if preview is not None:
                    write_preview(src, sar, target_tmp, Path(preview))
        finally:
            with contextlib.suppress(FileNotFoundError):
                scratch.unlink()
    return {
        "input": str(src),
        "output": str(dst),
        "kind": "sar",
        "width": grid.width,
        "height": grid.height,
        "tiles": stats["tiles_run"],
        "tiles_skipped": stats["tiles_skipped"],
        "seconds": round(time.perf_counter() - started, 3),
        "band": sar.band,
        "input_scale": sar.scale,
        "reference": sar.reference,
        "georeference": georef["kind"],
        "timing": stats["timing"],
    }


def _stream(
    src: Path,
    sar: SarInput,
    grid: TileGrid,
    network: torch.nn.Module,
    device: torch.device,
    amp: bool,
    batch_size: int,
    scratch: Path,
    georef: dict[str, Any],
    mask_mode: str | None,
    options: dict[str, str],
    build_overviews: bool,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Run reader, model and writer over the whole scene into ``scratch``."""
    stop = threading.Event()
    to_model: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
    to_writer: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
    writer_errors: list[BaseException] = []
    timing: dict[str, float] = {"model_s": 0.0}
    tiles_run = 0
    ds = _open_scratch(scratch, grid.width, grid.height, georef, mask_mode == "alpha", options)
    ds.update_tags(
        GEOCOLOR_VERSION=__version__,
        GEOCOLOR_SOURCE=src.name,
        GEOCOLOR_INPUT=sar.describe(),
    )
    writer = _Writer(ds, grid, mask_mode)
    reader_thread = threading.Thread(
        target=_reader,
        args=(src, sar, grid, batch_size, device.type == "cuda", to_model, stop, timing),
        name="geocolor-reader",
        daemon=True,
    )
    writer_thread = threading.Thread(
        target=_writer_loop,
        args=(writer, len(grid), progress, to_writer, stop, writer_errors, timing),
        name="geocolor-writer",
        daemon=True,
    )
    if progress is not None:
        progress(0, len(grid))
    try:
        reader_thread.start()
        writer_thread.start()
        while True:
            item = _get(to_model, stop, alive=reader_thread.is_alive)
            if isinstance(item, _Failure):
                raise item.exc
            if item is _END:
                _put(to_writer, _END, stop)
                break
            if item.x is not None:
                t0 = time.perf_counter()
                item.y = run_model(network, item.x, device, amp)
                timing["model_s"] += time.perf_counter() - t0
                item.x = None
                tiles_run += len(item.tiles)
            _put(to_writer, item, stop)
        writer_thread.join()
        if writer_errors:
            raise writer_errors[0]
        if writer.rows_written != grid.height:
            raise RuntimeError(f"internal error: wrote {writer.rows_written} of {grid.height} rows")
        if build_overviews:
            factors = _overview_factors(grid.width, grid.height)
            if factors:
                ds.build_overviews(factors, Resampling.average)
    except _Stopped:
        if writer_errors:
            raise writer_errors[0] from None
        raise
    finally:
        stop.set()
        reader_thread.join(timeout=10)
        writer_thread.join(timeout=10)
        ds.close()
    skipped = len(grid) - tiles_run
    return {"tiles_run": tiles_run, "tiles_skipped": skipped,
            "timing": {k: round(v, 3) for k, v in timing.items()}}
