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

The default Cloud-Optimized GeoTIFF is written directly: each tile of every level is
compressed as its rows stream (:mod:`geocolor.infer.cogwrite`), and the file is assembled
under a temporary name when the last row is in. Other outputs (COG creation options the
direct writer does not make, an alpha band, PNG, JPEG) stream into a temporary tiled
GeoTIFF next to the target that GDAL then copies to the requested format under another
temporary name. Either way the target is renamed into place when complete
(:func:`geocolor.io.atomic.atomic_path`), so it never holds a partial file and no
temporary file survives a Python-level failure.

The pieces live in modules of one job each: :mod:`geocolor.infer.stream` (the
three stages), :mod:`geocolor.infer.output` (format, creation options, scratch file,
finalisation), :mod:`geocolor.infer.cogwrite` (the direct COG),
:mod:`geocolor.infer.pyramid` (overviews made as the rows stream), :mod:`geocolor.infer.warp`
(the output reprojected onto a map grid, ``dst_crs``),
:mod:`geocolor.infer.preview` (the side-by-side PNG), :mod:`geocolor.infer.sarmodel`
(default model, card scaling, tile settings) and :mod:`geocolor.infer.backend` (running the
network on a batch).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio
import torch
from rasterio.windows import Window

from geocolor.data.sarscale import SarScaling
from geocolor.device import resolve_device
from geocolor.errors import RasterError, UsageError
from geocolor.infer.area import bounds_text, georeference_in, parse_bounds, window_of_bounds
from geocolor.infer.backend import Runner, make_runner
from geocolor.infer.cogwrite import CogWriter, direct_cog_settings, georeference_tags
from geocolor.infer.output import (
    DEFAULT_COG_OPTIONS,
    DEFAULT_GTIFF_OPTIONS,
    SCRATCH_OPTIONS,
    OverviewPlan,
    check_output,
    finalise,
    georeference,
    output_format,
    parse_creation_options,
    quiet_georef_warnings,
    scratch_overviews,
)
from geocolor.infer.preview import write_scene_preview
from geocolor.infer.provenance import model_tags
from geocolor.infer.pyramid import StreamedOverviews, streamable_levels
from geocolor.infer.result import ColorizeResult
from geocolor.infer.sarinput import SarInput, resolve_sar_input
from geocolor.infer.sarmodel import (
    default_batch_size,
    fit_tile_to_scene,
    require_sar_model,
    sar_scaling_of,
    size_multiple,
    tile_settings,
)
from geocolor.infer.stream import (
    ProgressFn,
    lower_io_priority,
    output_tags,
    stream,
    writer_threads,
)
from geocolor.infer.tiling import TileGrid
from geocolor.infer.warp import check_dst_crs, check_dst_res, map_grid, target_crs, warp_output
from geocolor.io.atomic import atomic_path, temporary_path_for
from geocolor.io.creation import check_creation_options, output_driver
from geocolor.io.diskspace import reporting_disk_full
from geocolor.io.modelfile import LoadedModel
from geocolor.io.raster import map_placement, open_raster
from geocolor.io.s1product import (
    BorderNoise,
    SigmaNought,
    border_noise_for,
    border_noise_note,
    calibration_for,
    ipf_version,
    is_product,
    measurement_for,
)
from geocolor.io.source import RasterSource, raster_source
from geocolor.io.stac import asset_for, is_stac_item
from geocolor.models.tta import MODES as TTA_MODES
from geocolor.models.tta import TTARunner

log = logging.getLogger("geocolor.infer")

#: GDAL block cache for a run (bytes): small, so memory does not grow with the scene; raised
#: for very wide scenes to hold a few rows of blocks (see :func:`_gdal_cache_bytes`).
GDAL_CACHE_BYTES = 16 * 2**20


def _gdal_cache_bytes(width: int) -> int:
    """GDAL's block cache: enough for four full-width rows of 256-px RGB blocks (what the
    writer leaves half-written, what the input rows span, and the half-written rows of the
    overview levels, :mod:`geocolor.infer.pyramid`, which together are narrower than one), at
    least :data:`GDAL_CACHE_BYTES`. A smaller cache makes GDAL flush half-written blocks and
    read them back."""
    return max(GDAL_CACHE_BYTES, 4 * 4 * 256 * 256 * -(-width // 256))


def _direct_cog(
    scratch: Path, grid: TileGrid, options: dict[str, str], overviews: OverviewPlan | None,
    masked: bool, threads: int,
) -> CogWriter | None:
    """A :class:`~geocolor.infer.cogwrite.CogWriter` for the COG, when it can make it (the
    default options, and an even first overview level or none) and the environment does not
    ask for GDAL's driver (``GEOCOLOR_COG_WRITER=gdal``); else None: the COG driver."""
    if os.environ.get("GEOCOLOR_COG_WRITER", "").strip().lower() == "gdal":
        return None
    settings = direct_cog_settings(options)
    if settings is None:
        return None
    if overviews is not None and not streamable_levels(grid.width, grid.height, overviews.factors):
        return None
    writer = CogWriter(scratch, masked, settings, threads, initializer=lower_io_priority)
    try:
        writer.add_level(grid.width, grid.height)
    except BaseException:
        writer.remove()
        raise
    return writer


@dataclass(frozen=True)
class _ToRead:
    """What :func:`_raster_to_read` found for an input."""

    path: RasterSource
    band: str | int | None
    calibration: SigmaNought | None = None
    border: BorderNoise | None = None


def _raster_to_read(src: RasterSource, scaling: SarScaling, band: str | int | None) -> _ToRead:
    """The raster to read for ``src`` and the band to take from it; for a product, also its
    calibration and border noise.

    ``src`` itself; for a STAC Item, its asset of ``band``'s or the model's polarisation;
    or for a Sentinel-1 product (a ``.SAFE`` folder or its zip) its
    measurement GeoTIFF of ``band``'s or the model's polarisation, with the product's
    sigmaNought table and thermal noise when the model wants sigma0 in dB, and its border
    noise when it was made before IPF 2.90.
    """
    if is_stac_item(src):
        asset, key, index = asset_for(src, scaling.polarisation, band)
        log.info("%s: a STAC Item; colorizing its asset %r%s, %s", src, key,
                 f" (band {index})" if index else "", asset)
        # --band chose the asset (and the band in it): the raster's own band naming is not asked
        return _ToRead(asset, index or (None if band is None else 1))
    if not is_product(src):
        return _ToRead(src, band)
    measurement, band = measurement_for(src, scaling.polarisation, band)
    log.info("%s: a Sentinel-1 product; colorizing %s", src, measurement)
    version = ipf_version(src, measurement)
    if note := border_noise_note(version):
        log.info("%s: %s", src, note)
    calibration = (calibration_for(src, measurement, version) if scaling.scheme == "db_clip"
                   else None)
    return _ToRead(Path(measurement), band, calibration, border_noise_for(src, measurement, version))


def _check_run_options(batch_size: int | None, blend_threads: int | None, tta: str | None) -> None:
    """UsageError for a batch size or thread count under 1, or an unknown TTA mode."""
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if blend_threads is not None and blend_threads < 1:
        raise UsageError(f"blend_threads must be at least 1, got {blend_threads}")
    if tta and tta not in TTA_MODES:
        raise UsageError(f"--tta: unknown mode {tta!r}; choose one of {', '.join(TTA_MODES)}")


def provenance_tags(
    model: LoadedModel, tile: int, overlap: int, runner: Runner, tta: str | None
) -> dict[str, str]:
    """What makes an output, for its dataset tags: the model file (name and SHA-256 of its
    bytes; ``(in memory)`` for a model without a file), the tiling, and the engine (backend,
    device, precision; test-time augmentation). The batch size is left out: the output does
    not depend on it."""
    tags = model_tags(model)
    tags["GEOCOLOR_TILING"] = f"{tile} px tiles, {overlap} px overlap"
    engine = getattr(runner, "engine", type(runner).__name__)  # a runner of one's own
    tags["GEOCOLOR_ENGINE"] = engine + (f", TTA {tta}" if tta else "")
    return tags


def _input_window(grid: TileGrid) -> Window | None:
    """The window of the input a grid covers (``--bounds``), or None: all of it."""
    if grid.scene is None:
        return None
    (row, col), (height, width) = grid.origin, (grid.height, grid.width)
    return Window(col, row, width, height)


def _window_tag(grid: TileGrid, area: tuple[float, float, float, float] | None) -> dict[str, str]:
    """GEOCOLOR_WINDOW: which rows and columns of the input a ``--bounds`` output holds."""
    if area is None:
        return {}
    (r0, c0), (h, w) = grid.origin, (grid.height, grid.width)
    return {"GEOCOLOR_WINDOW": (
        f"rows {r0}-{r0 + h}, columns {c0}-{c0 + w} of the input "
        f"(--bounds {bounds_text(area)})"
    )}


def _check_map_target(
    ds: rasterio.DatasetReader, src: RasterSource, dst_crs: str, dst_res: float | None
) -> None:
    """Refuse, before any work, a ``dst_crs`` warp of a raster not placed on the map (no
    georeference, or a transform without a CRS: :func:`~geocolor.io.raster.map_placement`)
    and a ``dst_res`` in the wrong unit (:func:`~geocolor.infer.warp.map_grid`): the output
    has the input's geometry, so the input's grid is the output's."""
    if map_placement(ds) is None:
        raise RasterError(f"{src}: has no georeference (CRS and transform, GCPs or RPCs) "
                          "to place it on a map; drop --dst-crs")
    if dst_res is not None:
        map_grid(ds, target_crs(ds, dst_crs), dst_res)


def _mask_mode(sar: SarInput, alpha: bool, fmt: str) -> str | None:
    """How nodata is written: ``"alpha"`` (an alpha band: asked for, or a PNG), ``"mask"``
    (a GeoTIFF's internal mask) or None (a scene without nodata, or a JPEG)."""
    if not sar.may_have_nodata:
        return None
    if alpha or fmt == "png":
        return "alpha"
    return "mask" if fmt == "gtiff" else None


@dataclass(frozen=True, eq=False)
class _OutputJob:
    """One scene streamed into its output file ``dst`` (format ``fmt``: gtiff, png or jpeg),
    then reprojected onto ``dst_crs`` if given (:mod:`geocolor.infer.warp`).

    The default COG is written directly (:class:`~geocolor.infer.cogwrite.CogWriter`, its
    overviews made as the rows stream); every other output streams into a scratch GeoTIFF
    that GDAL then copies to the requested format. ``options`` are the user's creation
    options; ``mask_mode`` is that of :func:`_mask_mode`; ``threads`` blend and quantise.
    """

    src: RasterSource
    dst: Path
    fmt: str
    cog: bool
    sar: SarInput
    grid: TileGrid
    georef: dict[str, Any]
    options: dict[str, str]
    mask_mode: str | None
    threads: int
    dst_crs: str | None = None
    dst_res: float | None = None
    #: what made the output (:func:`provenance_tags`), in its dataset tags
    run_tags: dict[str, str] = field(default_factory=dict)

    def run(
        self, runner: Runner, batch_size: int, progress: ProgressFn | None,
        preview: str | Path | None,
    ) -> dict[str, Any]:
        """Stream the scene into ``dst`` (renamed into place when complete), write the
        ``preview``, and reproject the output onto ``dst_crs`` if given; no temporary file
        survives. Returns :func:`~geocolor.infer.stream.stream`'s figures, with the overview,
        finalisation and warp times added to its timing and, after a warp, the CRS and pixel
        size used (``dst_crs``, ``dst_res``)."""
        # the preview is put in place after the output: a run stopped during the warp leaves
        # neither
        preview_tmp = None
        if preview is not None:
            preview = Path(preview)
            check_output(self.src, preview, overwrite=True)  # creates its folder
            preview_tmp = temporary_path_for(preview, ".png")
        try:
            with (
                atomic_path(self.dst, suffix=self.dst.suffix) as target_tmp,
                reporting_disk_full(self.dst),
            ):
                stats = self._write(runner, batch_size, progress, target_tmp)
                if preview_tmp is not None:  # in the input's geometry, side by side
                    with reporting_disk_full(preview):  # its own disk, named
                        write_scene_preview(self.src, self.sar, target_tmp, preview_tmp,
                                            window=_input_window(self.grid))
                if self.dst_crs is not None:
                    t0 = time.perf_counter()
                    warped = warp_output(target_tmp, self.dst_crs, self.cog, self.options,
                                         res=self.dst_res, named_after=self.dst)
                    stats["dst_crs"], stats["dst_res"] = warped["crs"], warped["res"]
                    stats["timing"]["warp_s"] = round(time.perf_counter() - t0, 3)
            if preview_tmp is not None:
                os.replace(preview_tmp, preview)
        finally:
            if preview_tmp is not None:
                preview_tmp.unlink(missing_ok=True)
        return stats

    def _write(
        self, runner: Runner, batch_size: int, progress: ProgressFn | None, target: Path
    ) -> dict[str, Any]:
        """Stream the scene and finish the output file at ``target``. The parts made on the
        way (scratch file, COG parts, overview levels) are removed whatever happens, before
        a preview or a warp reads the output."""
        scratch = temporary_path_for(self.dst, ".tif")
        grid = self.grid
        overviews = scratch_overviews(self.fmt, self.cog, grid.width, grid.height, self.options)
        pyramid = direct = None
        try:
            if self.fmt == "gtiff" and self.cog and self.mask_mode != "alpha":
                direct, pyramid = self._streamed_outputs(scratch, overviews)
            stats = stream(
                self.src,
                self.sar,
                grid,
                runner,
                batch_size,
                scratch,
                self.georef,
                self.mask_mode,
                self._scratch_options(),
                None if pyramid is not None else overviews,
                progress,
                self.threads,
                pyramid,
                direct,
                tags=output_tags(self.src, self.sar, self.run_tags),
            )
            if stats["tiles_run"] == 0:
                raise RasterError(f"{self.src}: has no valid pixels (all nodata)")
            if direct is not None:
                self._assemble_cog(direct, pyramid, scratch, target, stats["timing"])
            else:
                self._finalise_scratch(scratch, pyramid, target, stats["timing"])
        finally:
            if pyramid is not None:
                pyramid.remove()
            if direct is not None:
                direct.remove()
            with contextlib.suppress(FileNotFoundError):
                scratch.unlink()
        return stats

    def _scratch_options(self) -> dict[str, str]:
        """Creation options of the scratch GeoTIFF: a plain GeoTIFF output is made from it
        with the user's options, every other output with GDAL's copy from a fast scratch."""
        if self.fmt == "gtiff" and not self.cog:
            return {**DEFAULT_GTIFF_OPTIONS, **self.options}
        return SCRATCH_OPTIONS

    def _streamed_outputs(
        self, scratch: Path, overviews: OverviewPlan | None
    ) -> tuple[CogWriter | None, StreamedOverviews | None]:
        """The direct COG writer (None where GDAL's COG driver must make the file) and the
        overviews made from the rows as they stream (None without overviews)."""
        masked = self.mask_mode == "mask"
        direct = _direct_cog(scratch, self.grid, self.options, overviews, masked, self.threads)
        try:
            pyramid = StreamedOverviews.for_plan(
                scratch, self.grid.width, self.grid.height, overviews, masked=masked, cog=direct,
            )
            if direct is not None and overviews is not None and pyramid is None:
                raise RuntimeError("internal error: a direct COG without its overviews")
        except BaseException:
            if direct is not None:
                direct.remove()
            raise
        return direct, pyramid

    def _assemble_cog(
        self, direct: CogWriter, pyramid: StreamedOverviews | None, scratch: Path, target: Path,
        timing: dict[str, float],
    ) -> None:
        """Compress the overviews' last rows and assemble the COG's parts into ``target``."""
        t0 = time.perf_counter()
        if pyramid is not None:
            pyramid.finish_cog()
        timing["overviews_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        fields = georeference_tags(
            scratch.with_name(f"{scratch.name}.template.tif"), self.grid.width, self.grid.height,
            self.georef, output_tags(self.src, self.sar, self.run_tags),
        )
        direct.assemble(target, fields)
        timing["finalise_s"] = round(time.perf_counter() - t0, 3)
        timing["deflate_cpu_s"] = round(direct.cpu_s, 3)

    def _finalise_scratch(
        self, scratch: Path, pyramid: StreamedOverviews | None, target: Path,
        timing: dict[str, float],
    ) -> None:
        """Finish the streamed overviews, if any, and copy the scratch file to ``target``."""
        source = scratch
        if pyramid is not None:
            t0 = time.perf_counter()
            source = pyramid.finish()
            timing["overviews_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        finalise(source, target, self.fmt, self.cog, self.options)
        timing["finalise_s"] = round(time.perf_counter() - t0, 3)


def colorize_scene(
    src: str | Path,
    dst: str | Path,
    model: LoadedModel | str | Path | None = None,
    *,
    band: str | int | None = None,
    input_scale: str = "auto",
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    amp: bool = True,
    cog: bool = True,
    creation_options: dict[str, Any] | None = None,
    alpha: bool = False,
    preview: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    backend: str = "torch",
    tta: str | None = None,
    cpu_bf16: bool = False,
    blend_threads: int | None = None,
    dst_crs: str | None = None,
    dst_res: float | None = None,
    bounds: str | Sequence[float] | None = None,
) -> ColorizeResult:
    """Colorize a SAR raster (or a plain grey image) with a SAR model, streaming.

    Args:
        src: any GDAL raster (see :mod:`geocolor.infer.sarinput` for what is accepted), or a
            Sentinel-1 product as downloaded, a ``.SAFE`` folder or its ``.zip``: its
            measurement GeoTIFF of the model's polarisation, or of ``band``'s
            (:mod:`geocolor.io.s1product`). A raster may also be a URL (``https://``,
            ``s3://``, ``gs://``, ``az://``) or a GDAL virtual path (``/vsicurl/...``): read
            in place, only the blocks the tiles need (:mod:`geocolor.io.source`).
        dst: output path: ``.tif`` (RGB uint8 GeoTIFF on the input's grid,
            Cloud-Optimized unless ``cog=False``), ``.png`` or ``.jpg`` (plain image).
        model: a loaded SAR model, a model file path, or None for the packaged default.
        band: 1-based index or description (``VV``/``VH``); default: the card's polarisation.
        input_scale: ``auto``, ``db``, ``linear``, ``amplitude``, ``dn`` or ``scaled``.
        tile_size: tile side (default: the card's ``input.tile_size``, else 256); a multiple
            of the network's required multiple. Either is shrunk to fit a scene smaller than
            one tile (:func:`~geocolor.infer.sarmodel.fit_tile_to_scene`).
        overlap: overlap between tiles (default ``min(32, tile_size // 4)``).
        batch_size: tiles per model call (the result does not depend on it); default
            :func:`~geocolor.infer.sarmodel.default_batch_size` (8 on a GPU; on the CPU one
            tile of 512 px or more, 8 of 256 px).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: mixed precision (bf16, or fp16 where bf16 is unsupported) on CUDA.
        cpu_bf16: bf16 on CPUs that compute it natively (Intel AMX or AVX512-BF16): the
            model about 2x as fast there; outputs 0.3-1 DN from float32's on average, up
            to ~30 DN at a few pixels (42-51 dB PSNR against float32 on real scenes, the
            same accuracy against Sentinel-2 within 0.1 dB); elsewhere a warning and
            float32 (:func:`geocolor.infer.backend.use_cpu_bf16`).
        blend_threads: threads that blend the tiles and quantise the output (the result does
            not depend on it); default :func:`~geocolor.infer.stream.writer_threads`: 1 on the
            CPU, half the cores (at most 8) when the model runs on a GPU.
        cog: write a Cloud-Optimized GeoTIFF (else a tiled GeoTIFF with overviews).
        creation_options: GDAL creation options of the output driver (``COMPRESS=ZSTD`` ...).
        alpha: GeoTIFF nodata as an alpha band instead of an internal mask.
        preview: also write a side-by-side PNG (input | colorized) here.
        overwrite: replace an existing ``dst``.
        progress: called as ``progress(tiles_done, tiles_total)`` from the writer thread.
        backend: ``torch`` or ``onnxruntime`` (CPU; ``pip install geocolor[onnx]``); the
            output is the same within 1 DN (:mod:`geocolor.infer.backend`).
        tta: test-time augmentation: ``flips`` (each tile averaged over 4 flips) or
            ``d4`` (flips and 90-degree rotations: 8 passes); None: off
            (:class:`geocolor.models.tta.TTARunner`).
        dst_crs: reproject the GeoTIFF output onto this CRS (``EPSG:32611``, WKT, PROJ, or
            ``utm``: the UTM zone of the scene's centre): bilinear, GDAL's suggested pixel
            size, an alpha band outside the footprint; from the GCPs for a GRD, which is not
            terrain correction (:mod:`geocolor.infer.warp`). None: the input's grid.
        dst_res: with ``dst_crs``, the output's pixel size in that CRS's units (metres for
            UTM), on a grid whose pixel edges are whole multiples of it (as ``gdalwarp -tap``;
            10 gives Sentinel-2's 10-m grid in a UTM zone). None: GDAL's suggested size.
        bounds: colorize only the window of the input that covers this area: west, south,
            east, north in degrees (WGS 84), or ``"W,S,E,N"``; found through the input's
            transform, GCPs or RPCs, the output placed on the map like the input
            (:mod:`geocolor.infer.area`). The scaling stays the whole scene's.

    Returns:
        A :class:`~geocolor.infer.result.ColorizeResult` (kind ``"sar"``): input,
        output, model, width, height, seconds, tiles (sent to the model),
        tiles_skipped (all nodata), preview; details: band, input_scale, reference
        (the amplitude percentile, if the scaling uses one), georeference
        ("transform" | "gcps" | "rpcs" | "none") and timing (model_s,
        reader_cpu_s, writer_cpu_s, finalise_s; with a COG, overviews_cpu_s and overviews_s;
        with a directly written COG, deflate_cpu_s). ``result["tiles"]`` works too.

    Raises:
        RasterError, OutputError (also for a full disk, after removing the
        temporaries), ModelFileError, UsageError (all GeocolorError).
    """
    started = time.perf_counter()
    given, dst = raster_source(src), Path(dst)
    fmt = output_format(dst)
    loaded = require_sar_model(model)
    scaling = sar_scaling_of(loaded)
    to_read = _raster_to_read(given, scaling, band)
    src, band = to_read.path, to_read.band
    tile, overlap = tile_settings(loaded, tile_size, overlap)
    _check_run_options(batch_size, blend_threads, tta)
    if dst_crs is not None:
        if fmt != "gtiff":
            raise UsageError(f"--dst-crs needs a GeoTIFF output; {dst} is {fmt.upper()}")
        dst_crs = check_dst_crs(dst_crs)
    dst_res = check_dst_res(dst_res, dst_crs)
    area = None if bounds is None else parse_bounds(bounds)
    dev = resolve_device("cpu" if backend == "onnxruntime" and device == "auto" else device)
    options = parse_creation_options(creation_options)
    check_creation_options(
        output_driver(dst, cog), options,
        defaults={"COG": DEFAULT_COG_OPTIONS, "GTiff": DEFAULT_GTIFF_OPTIONS}.get(output_driver(dst, cog)),
        bands=4 if alpha and fmt == "gtiff" else 3,
    )

    # A small GDAL block cache from the first read on: memory must not grow with the scene.
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, GDAL_TIFF_INTERNAL_MASK=True),
        quiet_georef_warnings(),
        contextlib.ExitStack() as stack,
    ):
        with open_raster(src) as ds:
            if _gdal_cache_bytes(ds.width) > GDAL_CACHE_BYTES:
                stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_gdal_cache_bytes(ds.width)))
            # first: a scene outside the area is skipped before any other work
            window = None if area is None else window_of_bounds(ds, area)
            check_output(src, dst, overwrite)
            sar = resolve_sar_input(ds, src, scaling, band=band, input_scale=input_scale,
                                    calibration=to_read.calibration, border=to_read.border)
            asked = tile
            tile, overlap = fit_tile_to_scene(tile, overlap, ds.height, ds.width,
                                              size_multiple(loaded))
            if tile_size is not None and tile < asked:  # a bigger tile only costs memory
                log.info("%s: --tile-size %d is larger than the scene; one tile of %d px holds "
                         "it", src, asked, tile)
            grid = (TileGrid(ds.height, ds.width, tile, overlap) if window is None else
                    TileGrid(int(window.height), int(window.width), tile, overlap,
                             origin=(int(window.row_off), int(window.col_off)),
                             scene=(ds.height, ds.width)))
            georef = georeference(ds) if fmt == "gtiff" else {"kind": "none"}
            if dst_crs is not None:
                _check_map_target(ds, src, dst_crs, dst_res)
            if window is not None:
                georef = georeference_in(georef, window)
        log.info(
            "%s: %s; %d tile%s of %d px (overlap %d)%s",
            src,
            sar.describe(),
            len(grid),
            "" if len(grid) == 1 else "s",
            tile,
            overlap,
            "" if window is None else f"; {grid.width} x {grid.height} px at row "
            f"{grid.origin[0]}, column {grid.origin[1]} (--bounds)",
        )
        runner = make_runner(loaded.network, backend, dev, amp, tile, cpu_bf16=cpu_bf16)
        if tta:
            runner = TTARunner(runner, tta)
        if batch_size is None:
            batch_size = default_batch_size(tile, dev.type)
        job = _OutputJob(
            src, dst, fmt, cog, sar, grid, georef, options, _mask_mode(sar, alpha, fmt),
            threads=writer_threads(dev.type) if blend_threads is None else blend_threads,
            dst_crs=dst_crs, dst_res=dst_res,
            run_tags={**provenance_tags(loaded, tile, overlap, runner, tta),
                      **_window_tag(grid, area)},
        )
        stats = job.run(runner, batch_size, progress, preview)
    return ColorizeResult(
        input=str(given),
        output=str(dst),
        kind="sar",
        model=str(loaded.path) if loaded.path else None,
        width=grid.width,
        height=grid.height,
        seconds=round(time.perf_counter() - started, 3),
        tiles=stats["tiles_run"],
        tiles_skipped=stats["tiles_skipped"],
        preview=str(preview) if preview is not None else None,
        details={
            "band": sar.band,
            "input_scale": sar.scale,
            "reference": sar.reference,
            "georeference": "transform" if stats.get("dst_crs") else georef["kind"],
            "backend": backend,
            "tile_size": tile,
            "overlap": overlap,
            "batch_size": batch_size,
            "dst_crs": stats.get("dst_crs"),
            "dst_res": stats.get("dst_res"),
            "window": None if window is None else [grid.origin[1], grid.origin[0],
                                                   grid.width, grid.height],
            "timing": stats["timing"],
        },
    )
