"""Opening rasters with clear errors, and describing them (``geocolor info``)."""
from __future__ import annotations

import contextlib
import math
import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError  # rasterio exports it nowhere public
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError

from geocolor.errors import RasterError
from geocolor.io.files import require_file
from geocolor.io.source import (
    RasterSource,
    gdal_path,
    is_network,
    is_virtual,
    raster_source,
    remote_read_env,
    source_path,
)

# rasterio < 1.4 does not derive RasterioIOError (its read/write failures) from RasterioError;
# GDAL errors that rasterio passes on unwrapped (CPLE_*: e.g. a malformed URL) derive from neither.
RASTER_ERRORS = (RasterioError, RasterioIOError, CPLE_BaseError)


@contextlib.contextmanager
def open_raster(path: RasterSource) -> Iterator[rasterio.DatasetReader]:
    """Open ``path`` for reading; a missing, foreign or corrupt file is a :class:`RasterError`.

    URLs and GDAL's virtual paths (``/vsizip/...``: a file inside a zip; ``/vsicurl/...``)
    are read through GDAL, with :data:`~geocolor.io.source.REMOTE_GDAL_DEFAULTS` while the
    dataset is open (:mod:`geocolor.io.source`)."""
    path = raster_source(path)
    if not is_virtual(path):
        require_file(path, RasterError, "a raster")
    with remote_read_env(path):
        try:
            with warnings.catch_warnings():
                # A missing georeference is reported by georeference_kind(), not as a warning.
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                dataset = rasterio.open(gdal_path(path))
        except (RasterioIOError, CPLE_BaseError) as exc:
            reason = _first_line(exc)
            hint = _hint(path, reason)
            raise RasterError(f"{path}: not a readable raster ({reason}){hint}") from None
        with dataset:
            yield dataset


#: A Sentinel-1 product's name (``S1A_IW_GRDH_1SDV_...``), zipped or not.
_S1_PRODUCT_NAME = re.compile(r"^S1[A-D]_[A-Z0-9]{2}_[A-Z]{3,4}", re.IGNORECASE)


def _hint(path: RasterSource, reason: str) -> str:
    """What to do when a remote input fails to open: a Sentinel-1 product (read from local
    disk only), or a server that refused access."""
    if is_virtual(path) and source_path(path).suffix.lower() in (".zip", ".safe"):
        return ("; Sentinel-1 products are read from local disk: download it, or give the URL "
                "of its measurement GeoTIFF")
    if (isinstance(path, Path) and path.suffix.lower() == ".zip"
            and _S1_PRODUCT_NAME.match(path.name) and not zipfile.is_zipfile(path)):
        return ("; it is named like a Sentinel-1 product but is not a readable zip: an "
                "incomplete download? download it again")
    if is_network(path) and re.search(r"\b(401|403)\b", reason):
        return ("; the server refused access: a signed URL may have expired, or credentials "
                "are missing (GDAL reads AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*; "
                "AWS_NO_SIGN_REQUEST=YES for public buckets)")
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def gdal_reason(exc: BaseException) -> str:
    """GDAL's own reason for a failed read or write: the innermost exception of the chain.

    rasterio wraps GDAL errors as "Read failed. See previous exception for details."
    with the real message only in ``__cause__``; a user sees no previous exception.
    """
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = _first_line(exc)
    if "previous exception" in text:
        return "the file ends early or its data is corrupt"
    text = text.removeprefix("Read or write failed. ")  # rasterio < 1.4 puts GDAL's message here
    return text.split(" (this error can be turned as a warning")[0]


def read_failure(path: RasterSource, exc: BaseException) -> RasterError:
    """A :class:`RasterError` for a read that failed, with GDAL's own reason (not rasterio's
    wrapper). Over the network the file is rarely at fault: the message says so."""
    if is_network(path):
        return RasterError(
            f"{path}: reading over the network failed ({gdal_reason(exc)}): the server or the "
            "connection failed after GDAL's retries; run it again (--skip-existing skips the "
            "outputs already written)")
    return RasterError(f"{path}: corrupt or truncated raster ({gdal_reason(exc)})")


def lonlat_footprint(ds: rasterio.DatasetReader) -> tuple[float, float, float, float] | None:
    """West, south, east and north, in degrees (WGS 84), of the scene's outline (each edge
    traced at 9 points) placed by its CRS and transform, its GCPs or its RPCs; None for a
    raster without georeference."""
    from rasterio.transform import GCPTransformer, RPCTransformer
    from rasterio.warp import transform as transform_coords

    t = np.linspace(0.0, 1.0, 9)
    h, w = float(ds.height), float(ds.width)
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), t * h])
    cols = np.concatenate([t * w, np.full_like(t, w), t * w, np.zeros_like(t)])
    kind = map_placement(ds)
    if kind == "transform":
        xs, ys = ds.transform * (cols, rows)
        crs = ds.crs
    elif kind == "gcps":
        gcps, crs = ds.gcps
        with GCPTransformer(gcps) as tr:
            xs, ys = tr.xy(rows.tolist(), cols.tolist(), offset="ul")
        crs = crs or "EPSG:4326"
    elif kind == "rpcs":
        with RPCTransformer(ds.rpcs) as tr:
            xs, ys = tr.xy(rows.tolist(), cols.tolist(), zs=[0.0] * len(rows), offset="ul")
        crs = "EPSG:4326"
    else:
        return None
    lons, lats = transform_coords(crs, "EPSG:4326", list(np.ravel(xs)), list(np.ravel(ys)))
    return min(lons), min(lats), max(lons), max(lats)


def map_placement(ds: rasterio.DatasetReader) -> str | None:
    """How ``ds`` is placed on the map: ``"transform"`` (a CRS and an affine transform),
    ``"gcps"`` or ``"rpcs"``; None when it is not (no georeference, or a transform without a
    CRS): what ``--dst-crs``, ``--bounds`` and the lon/lat footprint need."""
    kind = georeference_kind(ds)
    if kind == "none" or (kind == "transform" and ds.crs is None):
        return None
    return kind


def georeference_kind(ds: rasterio.DatasetReader) -> str:
    """``"transform"`` (CRS + affine), ``"gcps"``, ``"rpcs"`` or ``"none"``."""
    if ds.crs is not None and not ds.transform.is_identity:
        return "transform"
    gcps, _ = ds.gcps
    if gcps:
        return "gcps"
    if ds.rpcs is not None:
        return "rpcs"
    if not ds.transform.is_identity:
        return "transform"
    return "none"


def _value_range(ds: rasterio.DatasetReader, band: int, max_side: int = 1024) -> dict[str, Any]:
    """Min/max/mean of a band from a decimated read (overviews when present), nodata masked."""
    scale = max(ds.width, ds.height) / max_side
    out_shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale))) if scale > 1 else None
    data = ds.read(band, out_shape=out_shape, masked=True)
    if np.iscomplexobj(data):
        data = np.abs(data)
    values = data.compressed() if np.ma.isMaskedArray(data) else np.ravel(data)
    values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if values.size == 0:
        return {"min": None, "max": None, "mean": None, "valid_fraction": 0.0}
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "valid_fraction": round(values.size / max(1, data.size), 4),
        "sampled": out_shape is not None,
    }


def describe_raster(path: RasterSource) -> dict[str, Any]:
    """Everything ``geocolor info`` reports about a raster, as JSON-ready data."""
    path = raster_source(path)
    with open_raster(path) as ds:
        try:
            gcps, gcp_crs = ds.gcps
            bands = []
            for i in range(1, ds.count + 1):
                bands.append(
                    {
                        "index": i,
                        "dtype": ds.dtypes[i - 1],
                        "description": ds.descriptions[i - 1],
                        "nodata": ds.nodatavals[i - 1],
                        "block_size": list(ds.block_shapes[i - 1]),
                        "overviews": ds.overviews(i),
                        "color_interp": ds.colorinterp[i - 1].name,
                        "range": _value_range(ds, i),
                    }
                )
        except RASTER_ERRORS as exc:
            raise read_failure(path, exc) from None
        info: dict[str, Any] = {
            "type": "raster",
            "path": str(path),
            "driver": ds.driver,
            "width": ds.width,
            "height": ds.height,
            "count": ds.count,
            "crs": ds.crs.to_string() if ds.crs else None,
            "georeference": georeference_kind(ds),
            "transform": list(ds.transform)[:6],
            "bounds": list(ds.bounds) if ds.crs else None,
            "gcps": {"count": len(gcps), "crs": gcp_crs.to_string() if gcp_crs else None},
            "rpcs": ds.rpcs is not None,
            "nodata": _nan_to_str(ds.nodata),
            "compression": ds.compression.name if ds.compression else None,
            "interleave": ds.interleaving.name if ds.interleaving else None,
            "bands": bands,
            "footprint": _footprint_of(ds),
            # what made a geocolor output: version, input, model, tiling, engine, warp
            "geocolor": {k: v for k, v in ds.tags().items() if k.startswith("GEOCOLOR_")},
        }
    for band in info["bands"]:
        band["nodata"] = _nan_to_str(band["nodata"])
    if (damage := _picture_damage(path, info["driver"])) is not None:
        info["damaged"] = damage
    return info


def _picture_damage(path: RasterSource, driver: str) -> str | None:
    """What is wrong with a local PNG or JPEG whose data is cut short or corrupt (GDAL reads
    the missing rows as zeros without a word), or None. Pillow checks a PNG's chunks and
    their checksums without decoding; a JPEG is decoded."""
    if driver not in ("PNG", "JPEG") or not isinstance(path, Path):
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify() if driver == "PNG" else image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        return f"{exc}; it may be cut short: get the file again"
    return None


def _footprint_of(ds: rasterio.DatasetReader) -> list[float] | None:
    """:func:`lonlat_footprint` for ``geocolor info`` (W, S, E, N; None where it cannot be
    placed)."""
    try:
        footprint = lonlat_footprint(ds)
    except RASTER_ERRORS:  # GCPs that GDAL cannot fit, a CRS PROJ cannot transform
        return None
    return None if footprint is None else [round(v, 6) for v in footprint]


def _nan_to_str(value: float | None) -> float | str | None:
    """JSON has no NaN; nodata=NaN is reported as the string ``"nan"``."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value
