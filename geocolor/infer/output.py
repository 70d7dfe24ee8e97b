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
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from geocolor.errors import OutputError, UsageError
from geocolor.io.raster import georeference_kind

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


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse an output that is the input, exists (unless ``overwrite``) or cannot be written."""
    if dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: output is the input file; choose another output path")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give an output file name")
    if dst.exists() and not overwrite:
        raise OutputError(
            f"{dst}: exists; pass --overwrite to replace it or --skip-existing to skip it"
        )
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
    except RasterioError as exc:
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


def finalise(scratch: Path, target_tmp: Path, fmt: str, cog: bool, options: dict[str, str]) -> None:
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
        raise OutputError(
            f"cannot write the {driver} output ({str(exc).strip().splitlines()[0]})"
        ) from None
