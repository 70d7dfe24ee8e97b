"""``geocolor colorize INPUT... -o OUTPUT``: SAR scenes and plain images -> colour."""
from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from geocolor.cli.options import progress_enabled, verbosity
from geocolor.errors import UsageError
from geocolor.io.source import source_name

log = logging.getLogger("geocolor")

#: Same as geocolor.infer.sarinput.INPUT_SCALES (a test keeps them equal); not imported
#: from there so that ``geocolor --help`` does not load rasterio and numpy.
INPUT_SCALES = ("auto", "db", "linear", "amplitude", "dn", "scaled")
#: Same as geocolor.infer.backend.BACKENDS (a test keeps them equal), for the same reason.
BACKENDS = ("torch", "onnxruntime")


class ShardType(click.ParamType):
    """``I/N``: process every N-th input starting at the I-th (0-based)."""

    name = "I/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        from geocolor.infer.batch import parse_shard

        try:
            return parse_shard(str(value))
        except UsageError as exc:
            self.fail(str(exc).removeprefix(f"--shard {value!r}: "), param, ctx)


class CreationOption(click.ParamType):
    """``KEY=VALUE`` GDAL creation option."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE (e.g. COMPRESS=ZSTD)", param, ctx)
        return key.strip().upper(), val.strip()


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < (0 if param.name == "overlap" else 1):
        raise click.BadParameter(f"must be {'>= 0' if param.name == 'overlap' else 'positive'}, got {value}")
    return value


@contextlib.contextmanager
def _bar(enabled: bool, **kwargs: Any) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs) as bar:
        yield bar


def _tile_progress(bar: Any) -> Any:
    if bar is None:
        return None

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)

    return update


@click.command(context_settings={"show_default": True})
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(), required=True,
              help="Output file (one input) or directory (several inputs, a directory, '-', or "
                   "a path ending in '/').")
@click.option("-m", "--model", default=None, show_default=False,
              help="Model file, or 'sar' / 'semantic' for a packaged model [default: sar for GeoTIFF "
              "scenes and grey images named like SAR (_s1_, s1/, sar), semantic for other pictures].")
@click.option("--band", default=None,
              help="Band index (1-based) or description (VV, VH) [default: the model's polarisation].")
@click.option("--input-scale", type=click.Choice(INPUT_SCALES), default="auto",
              help="Unit of the SAR values (scaled: already scaled like the training data, e.g. 8-bit chips); "
              "auto decides from dtype, values and metadata and logs it.")
@click.option("--tile-size", type=int, default=None, callback=_positive, show_default=False,
              help="Tile side in pixels [default: the model card's tile_size, 512 for the packaged "
              "SAR model; a scene smaller than one tile gets one tile its size].")
@click.option("--overlap", type=int, default=None, callback=_positive, show_default=False,
              help="Overlap between tiles in pixels [default: min(32, tile/4)].")
@click.option("--batch-size", type=int, default=None, callback=_positive, show_default=False,
              help="Tiles per model call [default: 8 on a GPU; on the CPU 1 tile of 512 px or "
              "more, else 8 x 256^2 pixels' worth: 8 of 256 px]. The output does not depend on it.")
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, help="Mixed precision on CUDA.")
@click.option("--cpu-bf16", is_flag=True,
              help="SAR scenes on the CPU in bfloat16 where the CPU computes it natively (Intel AMX or "
              "AVX512-BF16): the model about 2x as fast, outputs ~1 DN from float32's on average "
              "(up to ~30 DN at a few pixels); elsewhere a warning and float32.")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch",
              help="Inference engine for SAR models: torch, or onnxruntime on the CPU "
              "(pip install geocolor[onnx]); outputs agree within 1 DN.")
@click.option("--tta", is_flag=True,
              help="Test-time augmentation: average the model over flips (4 passes per tile).")
@click.option("--tta-rotations", is_flag=True,
              help="With --tta, also the 90-degree rotations of square tiles (8 passes; implies --tta).")
@click.option("--cog/--no-cog", default=True, help="Cloud-Optimized GeoTIFF, or a plain tiled GeoTIFF with overviews.")
@click.option("--co", "creation_options", type=CreationOption(), multiple=True,
              help="GDAL creation option of the output driver (repeatable).")
@click.option("--alpha", is_flag=True, help="Nodata as an alpha band instead of an internal mask (GeoTIFF).")
@click.option("--dst-crs", default=None, metavar="CRS",
              help="Reproject SAR outputs onto this CRS: EPSG:32611, WKT, PROJ, or 'utm' (the UTM "
                   "zone of the scene's centre); bilinear, about the input's pixel size, alpha "
                   "band outside the scene. A GRD is warped by its GCPs: not terrain-corrected.")
@click.option("--bounds", default=None, metavar="W,S,E,N",
              help="Colorize only the part of each scene that covers this area (degrees, "
                   "WGS 84): its rows and columns found through the scene's transform, GCPs "
                   "or RPCs; the output is that window, georeferenced like the input.")
@click.option("--dst-res", type=float, default=None, metavar="RES",
              help="With --dst-crs: the pixel size in the CRS's units (metres for UTM), on a "
                   "grid aligned to it (gdalwarp -tap): 10 gives Sentinel-2's 10-m grid "
                   "[default: about the input's].")
@click.option("--preview", type=click.Path(), default=None,
              help="Side-by-side PNG (input | colorized); a directory when there are several "
                   "inputs, or when it ends in '/'.")
@click.option("--mask-out", type=click.Path(), default=None,
              help="Segmentation PNG (semantic models only); a directory when there are several "
                   "inputs, or when it ends in '/'.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose output exists.")
@click.option("--shard", type=ShardType(), default=None, help="Process only every N-th input, from the I-th (0-based).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per input on stdout instead of output paths.")
@click.pass_context
def colorize(
    ctx: click.Context,
    inputs: tuple[str, ...],
    output: str,  # a str: click's Path type would drop the trailing '/' that asks for a directory
    model: str | None,
    band: str | None,
    input_scale: str,
    tile_size: int | None,
    overlap: int | None,
    batch_size: int | None,
    device: str,
    amp: bool,
    cpu_bf16: bool,
    backend: str,
    tta: bool,
    tta_rotations: bool,
    cog: bool,
    creation_options: tuple[tuple[str, str], ...],
    alpha: bool,
    dst_crs: str | None,
    bounds: str | None,
    dst_res: float | None,
    preview: str | None,  # str, as output: a trailing '/' asks for a directory
    mask_out: str | None,
    overwrite: bool,
    skip_existing: bool,
    shard: tuple[int, int] | None,
    as_json: bool,
) -> None:
    """Colorize SAR scenes (GeoTIFF -> RGB GeoTIFF on the same grid) and plain images.

    INPUTS are raster files, Sentinel-1 products (a .SAFE folder or its .zip: the
    measurement GeoTIFF of the model's polarisation, or of --band VV), STAC Items
    (a .json file or its URL: the asset of that polarisation), directories
    (searched recursively) or '-' to read paths from stdin, one per line. A raster
    may also be a URL (https://, s3://, gs://, az://) or a GDAL virtual path
    (/vsicurl/...): it is read in place, only the blocks the tiles need. The
    model card decides the pipeline: a SAR model tiles the scene with overlapping,
    blended tiles and streams the result; a semantic model colorizes plain images. Output paths are printed on stdout
    (or JSON lines with --json); a failed input is one line on stderr and the
    others go on. Exit status: 0 all done, 1 some input failed, 2 bad usage.

    \b
    Examples:
      geocolor colorize scene.tif -o out.tif --preview preview.png
      geocolor colorize S1A_IW_GRDH_1SDV_..._7E07.zip -o out.tif
      geocolor colorize scenes/ -o colored/
      geocolor colorize https://host/S1_VH.tif --bounds -118.5,33.9,-118.3,34.1 -o la.tif
      find . -name '*.tif' | geocolor colorize - -o colored/ --json
    """
    from geocolor.infer import scene  # noqa: F401 - before any raster I/O (GDAL cache settings)
    from geocolor.infer.area import parse_bounds
    from geocolor.infer.batch import ColorizeOptions, ModelCache, plan_jobs
    from geocolor.infer.warp import check_dst_crs, check_dst_res
    from geocolor.io.diskspace import silence_libtiff_stderr

    if verbosity(ctx) <= 0:
        silence_libtiff_stderr()  # a full disk is reported in one line of ours
    if overwrite and skip_existing:
        raise UsageError("--overwrite and --skip-existing exclude each other")
    if output == "-":
        raise UsageError("-o -: outputs are written to files (stdout carries their paths); "
                         "give a file or a directory")
    if band is not None and band.strip().isdigit() and int(band) < 1:
        raise UsageError(f"--band {band}: band indexes start at 1")
    device = _check_engine_options(device, backend, cpu_bf16)
    stdin_lines = sys.stdin if "-" in inputs else ()
    jobs = plan_jobs(list(inputs), output, stdin_lines=stdin_lines, preview=preview,
                     mask_out=mask_out, shard=shard)
    if shard is not None and not jobs:
        log.info("--shard %d/%d: no input falls to this shard; nothing to do", *shard)
    options = ColorizeOptions(
        model=model, band=band, input_scale=input_scale, tile_size=tile_size, overlap=overlap,
        batch_size=batch_size, device=device, amp=amp, cog=cog,
        creation_options=dict(creation_options), alpha=alpha, overwrite=overwrite,
        skip_existing=skip_existing, backend=backend,
        tta="d4" if tta_rotations else "flips" if tta else None, cpu_bf16=cpu_bf16,
        dst_crs=None if dst_crs is None else check_dst_crs(dst_crs),
        dst_res=check_dst_res(dst_res, dst_crs),
        bounds=None if bounds is None else parse_bounds(bounds),
    )
    _check_creation_options(jobs, dict(creation_options), cog, alpha)
    models = ModelCache()
    if model is not None:
        _check_model_options(models, model, mask_out, band, tile_size, overlap)
    elif tile_size is not None or overlap is not None:
        _check_default_tiles(models, tile_size, overlap)

    show = progress_enabled(ctx)
    previous = signal.signal(signal.SIGTERM, _terminate) if _in_main_thread() else None
    try:
        failed, done = _run_all(jobs, options, models, show, as_json)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if bounds is not None and jobs and not done and not failed:
        if shard is not None:  # an array job's other shards may hold the scenes that cover it
            log.info("--shard %d/%d: none of its inputs covers --bounds %s", *shard, bounds)
            return
        click.echo(f"geocolor: error: no input covers --bounds {bounds}", err=True)
        ctx.exit(1)
    if failed:
        ctx.exit(1)


def _check_engine_options(device: str, backend: str, cpu_bf16: bool) -> str:
    """The device to run on (``auto`` means the CPU for onnxruntime), after the checks of
    ``--device``, ``--backend`` and ``--cpu-bf16`` that come before any input is touched:
    a bad combination is bad usage (exit 2); onnxruntime not installed is one line that says
    how to install it (exit 1)."""
    from geocolor.device import resolve_device

    if backend == "onnxruntime" and device == "auto":
        device = "cpu"
    dev = resolve_device(device)
    if backend == "onnxruntime":
        from geocolor.infer.backend import require_onnxruntime

        if dev.type != "cpu":
            raise UsageError(f"--backend onnxruntime runs on the CPU; got --device {device}")
        require_onnxruntime()
    if cpu_bf16:
        from geocolor.infer.backend import use_cpu_bf16

        use_cpu_bf16(cpu_bf16, dev, backend)
    return device


def _check_model_options(
    models: Any, model: str, mask_out: Path | None, band: str | None, tile_size: int | None,
    overlap: int | None,
) -> None:
    """Load ``--model`` once (an invalid file fails the run before any input) and check the
    options that depend on its kind: ``--mask-out`` needs a semantic model with a trained
    segmentation head, ``--band`` a SAR model, ``--tile-size``/``--overlap`` must suit a SAR
    model's network."""
    from geocolor.infer.image import require_trained_segmentation
    from geocolor.infer.sarmodel import tile_settings
    from geocolor.io.modelfile import resolve_model_path

    loaded = models.get(resolve_model_path(model))
    if mask_out is not None:
        if loaded.card.kind != "semantic":
            raise UsageError(f"--mask-out needs a semantic model; {model} is a {loaded.card.kind} model")
        require_trained_segmentation(loaded)
    if loaded.card.kind == "sar":
        tile_settings(loaded, tile_size, overlap)
    elif band is not None:
        raise UsageError(f"--band needs a SAR model; {model} is a {loaded.card.kind} model for "
                         "plain images, which have no bands to choose")


def _check_creation_options(jobs: list, options: dict[str, str], cog: bool, alpha: bool) -> None:
    """Every ``--co`` must be accepted by the driver of every output, before any work (exit 2)."""
    if not options:
        return
    from geocolor.infer.output import (
        DEFAULT_COG_OPTIONS,
        DEFAULT_GTIFF_OPTIONS,
        DEFAULT_PNG_OPTIONS,
    )
    from geocolor.io.creation import check_creation_options, output_driver

    defaults = {"COG": DEFAULT_COG_OPTIONS, "GTiff": DEFAULT_GTIFF_OPTIONS,
                "PNG": DEFAULT_PNG_OPTIONS, "JPEG": {"QUALITY": "90"}}
    drivers = {output_driver(job.output, cog) for job in jobs if job.error is None} or {
        "COG" if cog else "GTiff"}
    for driver in sorted(drivers):
        bands = 4 if alpha and driver in ("COG", "GTiff") else 3
        check_creation_options(driver, options, defaults=defaults[driver], bands=bands)


def _check_default_tiles(models: Any, tile_size: int | None, overlap: int | None) -> None:
    """``--tile-size`` / ``--overlap`` without ``--model``: check them against the packaged SAR model."""
    from geocolor.errors import ModelFileError
    from geocolor.infer.sarmodel import tile_settings
    from geocolor.io.modelfile import default_model_path

    try:
        loaded = models.get(default_model_path("sar"), "sar")
    except ModelFileError:
        return  # reported per input if an input needs it
    tile_settings(loaded, tile_size, overlap)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM: unwind like Ctrl-C, so temporary files are removed and no partial output stays."""
    from geocolor.cli import Terminated

    raise Terminated(128 + signum)


def _run_all(
    jobs: list, options: Any, models: Any, show: bool, as_json: bool
) -> tuple[int, int]:
    """Run the jobs, reporting each; returns how many failed and how many were done (or
    skipped as existing: not those outside ``--bounds``)."""
    from geocolor.infer.batch import colorize_job

    def emit(line: str, err: bool = False) -> None:
        if show:  # print above the progress bars instead of through them
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr if err else sys.stdout)
        else:
            click.echo(line, err=err)
        (sys.stderr if err else sys.stdout).flush()

    from geocolor.infer.heap import deferred_release

    failed = done = 0
    with contextlib.ExitStack() as stack:
        # the next input reuses the memory; the process exits after the last one
        stack.enter_context(deferred_release(release_at_end=False))
        if show:
            from tqdm.contrib.logging import logging_redirect_tqdm

            stack.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger("geocolor")]))
        overall = stack.enter_context(
            _bar(show and len(jobs) > 1, total=len(jobs), unit="input", desc="inputs", position=0))
        for job in jobs:
            with _bar(show, unit="tile", desc=source_name(job.input), leave=False,
                      position=1 if overall else 0) as bar:
                result = colorize_job(job, options, models, progress=_tile_progress(bar))
            if result["status"] == "failed":
                failed += 1
                emit(f"geocolor: error: {result['error']}", err=True)
            elif result.get("reason"):  # a scene outside --bounds: the others may cover it
                emit(f"geocolor: skipped: {result['reason']}", err=True)
            written = result["status"] != "failed" and not result.get("reason")
            done += written
            if as_json:
                emit(json.dumps(result))
            elif written:
                emit(result["output"])
            if overall is not None:
                overall.update(1)
    return failed, done
