"""Many inputs for ``geocolor colorize``: files, directories, stdin, shards; one result each.

:func:`plan_jobs` turns the command's inputs into :class:`Job` s (input, output
and side files); :func:`colorize_job` runs one of them with the pipeline its
model card asks for and returns a JSON-ready result, turning any failure into a
``"failed"`` result so that a batch keeps going. The CLI only presents them.

Output names:

- one input file and an ``-o`` that is not a directory (an existing one, or a path ending
  in ``/``): ``-o`` is the output file;
- otherwise ``-o`` is a directory: files from a directory argument keep their
  path relative to it (``scenes/a/b.tif -> colored/a/b.tif``); files named on
  the command line or on stdin keep their base name. GeoTIFF, PNG and JPEG
  inputs keep their extension; other formats (``.jp2``, ``.vrt``, ...) get ``.tif``, and so
  do Sentinel-1 products (``S1A_..._7E07.SAFE`` or ``.zip`` -> ``S1A_..._7E07.tif``).
- with several inputs, ``--preview`` and ``--mask-out`` are directories too and
  get ``<name>.preview.png`` / ``<name>.mask.png`` for each input.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

from geocolor.errors import GeocolorError, OutsideBounds, RasterError, UsageError
from geocolor.infer.result import ColorizeResult
from geocolor.io.raster import RASTER_ERRORS, gdal_reason, read_failure
from geocolor.io.s1product import is_product
from geocolor.io.source import RasterSource, is_network, raster_source, source_name
from geocolor.io.stac import is_stac_item

log = logging.getLogger("geocolor.infer")

#: Extensions taken from directories.
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt", ".img")
KEEP_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Job:
    """One input and where its results go; ``error`` is set when it cannot even start."""

    input: RasterSource  # a local path, or a URL / GDAL virtual path (geocolor.io.source)
    output: Path
    preview: Path | None = None
    mask_out: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class ColorizeOptions:
    """Everything ``geocolor colorize`` passes to the pipelines, besides the paths."""

    model: Path | str | None = None  # a file, or "sar" / "semantic" for the packaged models
    band: str | None = None
    input_scale: str = "auto"
    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int | None = None  # None: sarmodel.default_batch_size
    device: str = "auto"
    amp: bool = True
    cog: bool = True
    creation_options: dict[str, str] = field(default_factory=dict)
    alpha: bool = False
    overwrite: bool = False
    skip_existing: bool = False
    backend: str = "torch"
    tta: str | None = None  # "flips" | "d4": test-time augmentation (geocolor.models.tta)
    cpu_bf16: bool = False  # bf16 on CPUs with native bf16 (geocolor.infer.backend.use_cpu_bf16)
    dst_crs: str | None = None  # reproject SAR outputs onto this CRS (geocolor.infer.warp)
    dst_res: float | None = None  # ... at this pixel size, on a grid aligned to it
    bounds: tuple[float, float, float, float] | None = None  # W, S, E, N: that part only


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N) -> (I, N)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def _output_name(rel: Path) -> Path:
    return rel if rel.suffix.lower() in KEEP_SUFFIXES else _stem(rel).with_suffix(".tif")


def _stem(rel: Path) -> Path:
    """``rel`` without its extension; a product's ``.SAFE`` goes too (``X.SAFE.zip`` -> ``X``)."""
    stem = rel.with_suffix("")
    zipped_safe = rel.suffix.lower() == ".zip" and stem.suffix.lower() == ".safe"
    return stem.with_suffix("") if zipped_safe else stem


def _rasters_in(directory: Path, exclude: Path | None) -> list[Path]:
    """The rasters under ``directory``, and its Sentinel-1 products (a ``.SAFE`` folder or its
    zip: one input each, whose files are not taken one by one)."""
    found = []
    for root, dirs, files in os.walk(directory):
        here = Path(root)
        products = [d for d in dirs if is_product(here / d)]
        dirs[:] = sorted(d for d in dirs if d not in products and not d.startswith("."))
        for name in sorted(files) + products:
            path = here / name
            if name.startswith("."):
                continue  # hidden files, our own .partial temporaries
            suffix = path.suffix.lower()
            if name not in products and suffix not in RASTER_SUFFIXES and not (
                suffix == ".zip" and is_product(path)
            ):
                continue
            if exclude is not None and exclude in path.resolve().parents:
                continue  # outputs of an earlier run written inside the input directory
            found.append(path)
    return sorted(found)


def _is_folder(path: RasterSource) -> TypeGuard[Path]:
    """A local directory of inputs (a ``.SAFE`` product folder is one input, not a folder)."""
    return isinstance(path, Path) and path.is_dir() and not is_product(path)


def read_path_lines(lines: Iterable[str]) -> list[str]:
    """Paths from stdin: one per line; blank lines and ``#`` comments ignored."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def plan_jobs(
    inputs: list[str],
    output: Path | str,
    *,
    stdin_lines: Iterable[str] = (),
    preview: Path | str | None = None,
    mask_out: Path | str | None = None,
    shard: tuple[int, int] | None = None,
) -> list[Job]:
    """Expand inputs (``-`` reads ``stdin_lines``) into jobs, then keep this shard's.

    Inputs that are URLs or GDAL virtual paths stay text (:func:`~geocolor.io.source.raster_source`)
    and are named in an output directory by their file name, without a URL's query.

    ``preview`` and ``mask_out`` name files for one input; directories (named after each
    input) for several, or when they end in ``/`` or are directories already.

    Raises:
        UsageError: no inputs at all, several inputs with ``-o`` naming an existing file, or
            ``--preview`` / ``--mask-out`` naming the output itself.
    """
    entries: list[RasterSource] = []
    for arg in inputs:
        lines = read_path_lines(stdin_lines) if arg == "-" else [arg]
        entries += [raster_source(line) for line in lines]
    if not entries:
        raise UsageError("no inputs given (stdin was empty)" if "-" in inputs else "no inputs given")
    single = len(inputs) == 1 and inputs[0] != "-" and not _is_folder(raster_source(inputs[0]))
    named_dir = str(output).endswith(("/", "\\"))  # a Path would have lost it
    output = Path(output)
    to_dir = not single or output.is_dir() or named_dir
    if to_dir and output.is_file():
        folder = len(inputs) == 1 and inputs[0] != "-"  # single is False: it is a directory
        what = "a directory of inputs needs" if folder else "several inputs need"
        raise UsageError(f"-o {output}: {what} an output directory, and this is a file")
    exclude = output.resolve() if to_dir else None

    if to_dir:
        for path in entries:
            if _is_folder(path) and (path.resolve() == exclude or exclude in path.resolve().parents):
                where = "is" if path.resolve() == exclude else "contains"
                raise UsageError(
                    f"-o {output}: the output directory {where} the input directory {path}; "
                    "write the outputs to another directory"
                )
    jobs: list[Job] = []
    for path in entries:
        if not to_dir:
            jobs.append(_single_job(path, output, preview, mask_out))
            continue
        if _is_folder(path):
            rasters = _rasters_in(path, exclude)
            if not rasters:
                jobs.append(Job(path, output, error=(
                    f"{path}: directory holds no rasters (looked for {', '.join(RASTER_SUFFIXES)})")))
            for raster in rasters:
                jobs.append(_dir_job(raster, raster.relative_to(path), output, preview, mask_out))
        elif not source_name(path):  # https://host/ or .../items/: nothing to name it by
            jobs.append(Job(path, output, error=(
                f"{path}: names no file to call its output after in {output}; "
                "give it with -o FILE, alone")))
        else:
            jobs.append(_dir_job(path, Path(source_name(path)), output, preview, mask_out))

    seen: dict[Path, RasterSource] = {}
    unique: list[Job] = []
    for job in jobs:
        key = job.output.resolve()
        if job.error is None and key in seen:
            if _same_input(job.input, seen[key]):
                log.warning("%s: given more than once; colorized once", job.input)
                continue
            job = replace(job, error=(
                f"{job.input}: its output {job.output} is also the output of {seen[key]}; "
                "give the inputs distinct names"))
        elif job.error is None:
            seen[key] = job.input
        unique.append(job)
    jobs = unique
    if shard is not None:
        index, count = shard
        jobs = [job for k, job in enumerate(jobs) if k % count == index]
    return jobs


def _same_input(a: RasterSource, b: RasterSource) -> bool:
    """Whether two inputs are one file (local paths resolved; URLs as written)."""
    if isinstance(a, Path) and isinstance(b, Path):
        return a.resolve() == b.resolve()
    return str(a) == str(b)


def _single_job(
    path: RasterSource, output: Path, preview: Path | str | None, mask_out: Path | str | None
) -> Job:
    """The job of a lone input written to the file ``output``; a preview or mask path that is
    a directory (or ends in ``/``) gets a file named after the output."""
    extras: list[Path | None] = []
    for extra, suffix in ((preview, ".preview.png"), (mask_out, ".mask.png")):
        if extra is None:
            extras.append(None)
            continue
        named_dir = str(extra).endswith(("/", "\\")) or Path(extra).is_dir()
        extra = Path(extra) / f"{_stem(Path(output.name))}{suffix}" if named_dir else Path(extra)
        if extra.resolve() == output.resolve():
            flag = "--preview" if suffix == ".preview.png" else "--mask-out"
            raise UsageError(f"{flag} {extra}: is the output itself; give the PNG another name")
        extras.append(extra)
    return Job(path, output, *extras)


def _dir_job(
    path: RasterSource, rel: Path, out_dir: Path, preview: Path | str | None,
    mask_out: Path | str | None,
) -> Job:
    stem = _stem(rel)
    return Job(
        path,
        out_dir / _output_name(rel),
        Path(preview) / stem.parent / f"{stem.name}.preview.png" if preview else None,
        Path(mask_out) / stem.parent / f"{stem.name}.mask.png" if mask_out else None,
    )


class ModelCache:
    """Loads each model file once per run (and remembers a failure to load it)."""

    def __init__(self) -> None:
        self._models: dict[tuple[Path, str | None], Any] = {}

    def get(self, path: Path, kind: str | None = None) -> Any:
        from geocolor.io.modelfile import load_model

        key = (Path(path), kind)
        if key not in self._models:
            try:
                self._models[key] = load_model(path, kind=kind)
            except GeocolorError as exc:
                self._models[key] = exc
        value = self._models[key]
        if isinstance(value, Exception):
            raise value
        return value


def input_is_plain_image(path: RasterSource) -> bool:
    """Whether ``path`` is a plain picture (semantic pipeline by default) rather than a SAR raster."""
    from geocolor.infer.sarinput import is_plain_image
    from geocolor.io.raster import open_raster

    if is_product(path) or is_stac_item(path):
        return False
    with open_raster(path) as ds:
        return is_plain_image(ds, path)


def choose_model_kind(path: RasterSource) -> tuple[str, str]:
    """The packaged model an input gets without ``--model``, and why (for the log).

    - a Sentinel-1 product (a ``.SAFE`` folder or its zip), or a STAC Item: ``sar``;
    - a raster that is not a plain picture (georeferenced, or not 8-bit): ``sar``;
    - a grey 8-bit picture whose name or folder says SAR (``_s1_``, ``/s1/``,
      ``sar``; e.g. Kaggle Sentinel-1 chips): ``sar``;
    - any other plain picture (PNG, JPEG, 8-bit TIFF without georeference): ``semantic``.
    """
    from geocolor.infer.sarinput import is_grey_image, is_plain_image, sar_name_hint
    from geocolor.io.raster import open_raster

    if is_product(path):
        return "sar", "a Sentinel-1 product"
    if is_stac_item(path):
        return "sar", "named like a STAC Item"
    with open_raster(path) as ds:
        if not is_plain_image(ds, path):
            return "sar", "a georeferenced or non-8-bit raster"
        hint = sar_name_hint(path)
        if hint and is_grey_image(ds):
            return "sar", f"a grey 8-bit image named like SAR ({hint!r})"
    return "semantic", "a plain image (pass --model sar for SAR chips)"


def colorize_job(
    job: Job, options: ColorizeOptions, models: ModelCache, progress: Any = None
) -> dict[str, Any]:
    """Run one job; never raises a :class:`GeocolorError` (it becomes a ``failed`` result).

    Returns:
        ``{input, output, status ("ok" | "skipped" | "failed"), error, tiles, seconds, kind}``;
        an input that ``--bounds`` does not meet is ``skipped`` with a ``reason``.
    """
    started = time.perf_counter()
    result: dict[str, Any] = {
        "input": str(job.input),
        "output": str(job.output),
        "status": "ok",
        "error": None,
        "tiles": 0,
        "seconds": 0.0,
        "kind": None,
    }
    created = _missing_directories(job)
    try:
        if job.error:
            raise RasterError(job.error)
        if options.skip_existing and job.output.exists():
            log.info("%s: %s exists; skipped (--skip-existing)", job.input, job.output)
            result["status"] = "skipped"
            return result
        if (source := _geocolor_output_of(job.input)) is not None:
            result.update(status="skipped", reason=(
                f"{job.input}: is geocolor's output (of {source}), not colorized again"))
            return result
        details = _run(job, options, models, progress)
        result["tiles"] = details.tiles
        result["kind"] = details.kind
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: what the job made goes too
        _remove_empty(created)
        raise
    except OutsideBounds as exc:  # the other scenes of a batch may cover the area
        result.update(status="skipped", reason=_with_input(job.input, str(exc)))
    except GeocolorError as exc:
        result.update(status="failed", error=_with_input(job.input, str(exc)))
    except RASTER_ERRORS as exc:  # a read or write that failed deep in GDAL
        log.debug("failed", exc_info=True)
        result.update(status="failed", error=str(read_failure(job.input, exc))
                      if is_network(job.input) else _with_input(job.input, gdal_reason(exc)))
    except MemoryError as exc:
        log.debug("failed", exc_info=True)
        result.update(status="failed", error=_with_input(job.input, _out_of_memory(exc)))
    except OSError as exc:
        log.debug("failed", exc_info=True)
        name = exc.filename or job.output
        result.update(status="failed", error=_with_input(job.input, f"{name}: {exc.strerror or exc}"))
    except Exception as exc:  # noqa: BLE001 - keep going past one bad input; -v shows the traceback
        log.debug("failed", exc_info=True)
        said = (_out_of_memory(exc) if isinstance(exc, RuntimeError) and _OOM.search(str(exc))
                else f"{type(exc).__name__}: {exc}")
        result.update(status="failed", error=_with_input(job.input, said))
    finally:
        result["seconds"] = round(time.perf_counter() - started, 3)
        if result["status"] == "failed":
            _remove_empty(created)
    return result


#: How torch says an allocation failed (CPU allocator, CUDA, MPS).
_OOM = re.compile(r"can't allocate memory|out of memory|OutOfMemory", re.IGNORECASE)


def _out_of_memory(exc: BaseException) -> str:
    """One line for an allocation that failed: the size asked for, and what to lower."""
    asked = re.search(r"allocate (\d+) bytes", str(exc))
    size = f" ({int(asked.group(1)) / 2**30:.1f} GiB asked for)" if asked else ""
    return f"out of memory{size}; lower --batch-size or --tile-size, or free memory"


def _geocolor_output_of(path: RasterSource) -> str | None:
    """The input a local file was colorized from, when it is an output of geocolor's (its
    ``GEOCOLOR_SOURCE`` tag: a GeoTIFF's, or a PNG's text); else None. An earlier run's outputs
    written beside the scenes are found again by the next run over that folder."""
    from geocolor.io.raster import open_raster

    if not isinstance(path, Path) or not path.is_file() or is_product(path) or is_stac_item(path):
        return None
    try:
        with open_raster(path) as ds:
            return ds.tags().get("GEOCOLOR_SOURCE")
    except (GeocolorError, *RASTER_ERRORS):
        return None  # not a raster: the run says so


def _missing_directories(job: Job) -> list[Path]:
    """Directories the job's outputs would create (they do not exist yet), deepest first."""
    missing: set[Path] = set()
    for path in (job.output, job.preview, job.mask_out):
        if path is None:
            continue
        parent = Path(path).absolute().parent
        while not parent.exists() and parent != parent.parent:
            missing.add(parent)
            parent = parent.parent
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(directories: list[Path]) -> None:
    """Remove those of ``directories`` (deepest first) that a failed job created and left empty."""
    for directory in directories:
        try:
            directory.rmdir()  # only succeeds when empty: never removes anyone's files
        except OSError:
            pass


def _with_input(path: RasterSource, message: str) -> str:
    return message if str(path) in message else f"{path}: {message}"


def _run(job: Job, options: ColorizeOptions, models: ModelCache, progress: Any) -> ColorizeResult:
    from geocolor.infer.image import colorize_image
    from geocolor.infer.scene import colorize_scene
    from geocolor.io.modelfile import default_model_path, resolve_model_path

    if options.model is not None:
        model_path = resolve_model_path(options.model)
        model = models.get(model_path)
        kind = model.card.kind
        reason = f"--model {options.model}"
    else:
        kind, reason = choose_model_kind(job.input)
        model_path = default_model_path(kind)
        model = models.get(model_path, kind)
    log.info("%s: %s model %s (%s)", job.input, kind, model_path.name, reason)

    if kind == "semantic":
        if not input_is_plain_image(job.input):
            raise RasterError(
                f"{job.input}: is a SAR/georeferenced raster, but {model_path} is a semantic model "
                "for plain images; pass a SAR model with --model"
            )
        if options.band is not None:  # a batch may mix scenes and photos: not an error
            log.warning("%s: --band %s is for SAR inputs; a plain picture has no bands to choose "
                        "(ignored)", job.input, options.band)
        if options.dst_crs is not None or options.bounds is not None:
            flag = "--dst-crs reprojects" if options.dst_crs is not None else "--bounds cuts"
            raise UsageError(f"{flag} SAR scenes; {job.input} is a plain picture "
                             "for the semantic model, without a georeference")
        return colorize_image(
            job.input, job.output, model, mask_out=job.mask_out, preview=job.preview,
            device=options.device, overwrite=options.overwrite, progress=progress, tta=options.tta,
        )
    if job.mask_out is not None:
        raise UsageError(f"--mask-out needs a semantic model; {model_path} is a SAR model")
    return colorize_scene(
        job.input,
        job.output,
        model,
        band=options.band,
        input_scale=options.input_scale,
        tile_size=options.tile_size,
        overlap=options.overlap,
        batch_size=options.batch_size,
        device=options.device,
        amp=options.amp,
        cog=options.cog,
        creation_options=options.creation_options,
        alpha=options.alpha,
        preview=job.preview,
        overwrite=options.overwrite,
        progress=progress,
        backend=options.backend,
        tta=options.tta,
        cpu_bf16=options.cpu_bf16,
        dst_crs=options.dst_crs,
        dst_res=options.dst_res,
        bounds=options.bounds,
    )

