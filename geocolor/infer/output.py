"""Output files of the scene pipeline: format, creation options, the scratch file, finalisation.

The scene is streamed into a tiled *scratch* GeoTIFF (:func:`open_scratch`) next to the
target; :func:`finalise` then turns it into the requested format (a Cloud-Optimized
GeoTIFF through GDAL's COG driver, PNG or JPEG) under a temporary name that the caller
renames onto the target when complete (:func:`geocolor.io.atomic.atomic_path`). For a
plain tiled GeoTIFF (``cog=False``) the scratch file is the output.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning

from geocolor.errors import OutputError, UsageError
from geocolor.io.raster import RASTER_ERRORS, georeference_kind

#: DEFLATE level 1, not GDAL's 6: on a real 4096^2 output it compresses in 0.44 s
#: instead of 1.05 s for a file 2.6 % larger (a 1024^2 sample COG: 6.8 % larger;
#: benchmarks/README.md); level 6 remains one ``--co LEVEL=6`` (``ZLEVEL`` for a plain
#: GeoTIFF) away.
DEFAULT_COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "LEVEL": "1",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "512",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}
#: zlib level 3, not 6, for a plain-image output: a colorized 256 x 256 SAR chip encodes in
#: 8.5 ms instead of 31 (a third of the whole chip's time with the packaged model) for a file
#: 12 % larger; 16 % larger at 1024^2, in 125 ms instead of 318. ``--co ZLEVEL=6`` restores it.
DEFAULT_PNG_OPTIONS = {"ZLEVEL": "3"}
DEFAULT_GTIFF_OPTIONS = {
    "TILED": "YES",
    "BLOCKXSIZE": "512",
    "BLOCKYSIZE": "512",
    "COMPRESS": "DEFLATE",
    "ZLEVEL": "1",
    "PREDICTOR": "2",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}
#: The intermediate file of the COG/PNG/JPEG routes: fast to write, read once.
SCRATCH_OPTIONS = {
    "TILED": "YES",
    "BLOCKXSIZE": "256",
    "BLOCKYSIZE": "256",
    "COMPRESS": "ZSTD",
    "ZSTD_LEVEL": "1",
    "BIGTIFF": "IF_SAFER",
}


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


def check_output(
    src: Path | str, dst: Path, overwrite: bool, *, can_skip: bool = True
) -> None:
    """Refuse an output that is the input, exists (unless ``overwrite``) or cannot be written.

    ``src``: a local path, or a URL or GDAL virtual path (``str``, never the output).
    ``can_skip``: the command has ``--skip-existing``, so the message offers it.
    """
    if isinstance(src, Path) and dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: output is the input file; choose another output path")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give an output file name")
    if dst.exists() and not overwrite:
        skip = " or --skip-existing to skip it" if can_skip else ""
        raise OutputError(f"{dst}: exists; pass --overwrite to replace it{skip}")
    parent = dst.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{parent}: cannot create the output directory ({exc.strerror})"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: output directory is not writable")


def parse_creation_options(options: dict[str, Any] | None) -> dict[str, str]:
    """GDAL creation options with upper-case names and string values."""
    return {str(k).upper(): str(v) for k, v in (options or {}).items()}


@contextlib.contextmanager
def quiet_georef_warnings() -> Iterator[None]:
    """Silence rasterio's NotGeoreferencedWarning (plain images and GCP scenes are fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def georeference(ds: rasterio.DatasetReader) -> dict[str, Any]:
    """How ``ds`` is georeferenced: ``{"kind": "transform"|"gcps"|"rpcs"|"none"}`` + the data."""
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


def open_scratch(
    path: Path,
    width: int,
    height: int,
    georef: dict[str, Any],
    alpha: bool,
    options: dict[str, str],
) -> rasterio.io.DatasetWriter:
    """Create the RGB uint8 (+ alpha) GeoTIFF the pipeline streams into, on the input's grid."""
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
    except RASTER_ERRORS as exc:
        raise OutputError(
            f"{path}: cannot create the output ({str(exc).strip().splitlines()[0]})"
        ) from None
    if georef.get("kind") == "gcps":
        ds.gcps = georef["gcps"]
    elif georef.get("kind") == "rpcs":
        ds.rpcs = georef["rpcs"]
    ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue] + (
        [ColorInterp.alpha] if alpha else []
    )
    return ds


def overview_factors(width: int, height: int, smallest: int = 256) -> list[int]:
    """Decimation factors 2, 4, ... until the smallest overview is about ``smallest`` px."""
    factors, f = [], 2
    while max(width, height) / f >= smallest // 2 and max(width, height) > smallest:
        factors.append(f)
        f *= 2
    return factors


@dataclass(frozen=True)
class OverviewPlan:
    """Overviews to build in the scratch file once its last row is written."""

    factors: tuple[int, ...]
    resampling: Resampling

    def build(self, ds: rasterio.io.DatasetWriter) -> None:
        """Build these overviews (and those of an internal mask) in ``ds``, open for writing.

        On all cores (GDAL's multi-threaded overview computation; the model is done by
        now, so they are idle): 0.47 s instead of 0.71 s for a 4096^2 scene on 2 cores,
        the same pixels. A ``GDAL_NUM_THREADS`` in the environment is left as it is.
        """
        with rasterio.Env(**all_cores()):
            ds.build_overviews(list(self.factors), self.resampling)


def all_cores() -> dict[str, str]:
    """GDAL config for multi-threaded work once the model is done (its cores are idle then):
    ``GDAL_NUM_THREADS=ALL_CPUS``, unless the environment sets it already."""
    return {} if "GDAL_NUM_THREADS" in os.environ else {"GDAL_NUM_THREADS": "ALL_CPUS"}


#: COG creation options that change which overviews the driver makes (or reproject):
#: with any of them the driver builds its own, as the user asked.
_COG_OVERVIEW_OPTIONS = frozenset(
    {"OVERVIEWS", "OVERVIEW_COUNT", "TILING_SCHEME", "TARGET_SRS", "RES", "EXTENT",
     "ZOOM_LEVEL", "ZOOM_LEVEL_STRATEGY", "ALIGNED_LEVELS"}
)


def cog_overview_factors(width: int, height: int, blocksize: int) -> list[int]:
    """The factors GDAL's COG driver picks by default: halve until the larger side fits one block.

    (Matches GDAL 3.x: 8192 px with 512-px blocks -> 2, 4, 8, 16; 1025 -> 2; 512 -> none.)
    """
    factors, f, side = [], 1, max(width, height)
    while side > blocksize:
        f *= 2
        side //= 2
        factors.append(f)
    return factors


def scratch_overviews(
    fmt: str, cog: bool, width: int, height: int, options: dict[str, str]
) -> OverviewPlan | None:
    """The overviews the pipeline builds into its scratch file, or None.

    - Plain tiled GeoTIFF (``cog=False``): the scratch file is the output, so it gets
      its overviews (2, 4, ... down to ~256 px, averaged).
    - COG: the same levels and resampling the COG driver would choose, so that the
      driver copies them instead of computing them itself, which is slower (it
      computes them into a temporary DEFLATE file and compresses them twice; the
      scratch's are ZSTD level 1). Full resolution and its mask are unchanged, and so
      are the overviews where a side is a multiple of the level's factor; otherwise
      that level is one pixel larger (the GeoTIFF driver rounds overview sizes up,
      as ``gdaladdo`` does, the COG driver down) and covers the scene's last pixels.
      Options that change the overviews (``OVERVIEWS``, ``OVERVIEW_COUNT``, a tiling
      scheme, ...) leave them to the driver.
    - PNG and JPEG: none.
    """
    if fmt != "gtiff":
        return None
    if not cog:
        factors = overview_factors(width, height)
        return OverviewPlan(tuple(factors), Resampling.average) if factors else None
    opts = {**DEFAULT_COG_OPTIONS, **options}
    if _COG_OVERVIEW_OPTIONS & opts.keys():
        return None
    resampling = _resampling(opts["OVERVIEW_RESAMPLING"])
    try:
        blocksize = int(opts["BLOCKSIZE"])
    except ValueError:
        return None
    factors = cog_overview_factors(width, height, blocksize)
    if resampling is None or not factors:
        return None
    return OverviewPlan(tuple(factors), resampling)


def _resampling(name: str) -> Resampling | None:
    """rasterio's enum member for a GDAL resampling name (``CUBICSPLINE`` -> cubic_spline)."""
    key = name.strip().lower().replace("cubicspline", "cubic_spline")
    return Resampling.__members__.get(key)


def finalise(scratch: Path, target_tmp: Path, fmt: str, cog: bool, options: dict[str, str]) -> None:
    """Turn the streamed scratch file into the final format at ``target_tmp``."""
    if fmt == "gtiff" and not cog:
        os.replace(scratch, target_tmp)
        return
    if fmt == "gtiff":
        opts = {**DEFAULT_COG_OPTIONS, **options}
        driver = "COG"
    elif fmt == "png":
        # the GEOCOLOR_* tags (what made the output) as PNG text chunks
        opts, driver = {**DEFAULT_PNG_OPTIONS, "WRITE_METADATA_AS_TEXT": "YES", **options}, "PNG"
    else:
        opts, driver = {"QUALITY": "90", **options}, "JPEG"
    try:
        # all cores also decode the scratch file (the driver's own NUM_THREADS only encodes):
        # 0.38 -> 0.33 s for a 4096 x 8192 scene on 2 cores
        with rasterio.Env(GDAL_PAM_ENABLED=fmt == "gtiff", **all_cores()):
            rasterio.shutil.copy(scratch, target_tmp, driver=driver, **opts)
    except RASTER_ERRORS as exc:
        raise OutputError(
            f"cannot write the {driver} output ({str(exc).strip().splitlines()[0]})"
        ) from None
