"""Reprojecting a finished output onto a map grid (``geocolor colorize --dst-crs``).

A GRD measurement is in radar geometry: its rows and columns follow the satellite's track,
and only its ground control points (GCPs) tie it to the map. Its colorized output keeps
that geometry, like the input. ``--dst-crs`` reprojects the output onto a map CRS in the
same run, GDAL's warper fitting the GCPs (or using the input's CRS and transform, or its
RPCs): bilinear, at GDAL's suggested pixel size (about the input's), with an alpha band
that is 0 outside the scene's footprint and where the input was nodata. Fitting GCPs is
not terrain correction: in relief, terrain-correct the SAR first (e.g. SNAP's Range-Doppler
Terrain Correction) and colorize that sigma0 GeoTIFF.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import CRSError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as transform_coords
from rasterio.windows import Window

from geocolor.device import usable_cores
from geocolor.errors import OutputError, RasterError, UsageError
from geocolor.infer.output import DEFAULT_GTIFF_OPTIONS, SCRATCH_OPTIONS, finalise
from geocolor.io.atomic import temporary_path_for
from geocolor.io.raster import RASTER_ERRORS

#: ``--dst-crs utm``: the WGS 84 / UTM zone of the scene's centre.
UTM = "utm"
#: Rows of the warped output per stripe (what one thread warps at a time).
WARP_ROWS = 512


def check_dst_crs(text: str) -> str:
    """``text`` when rasterio reads it as a CRS (``EPSG:32611``, WKT, PROJ) or it is ``utm``;
    else a UsageError."""
    if text.strip().lower() == UTM:
        return UTM
    try:
        with rasterio.Env():  # GDAL's and PROJ's messages go to logging, not stderr
            CRS.from_user_input(text)
    except CRSError:
        raise UsageError(
            f"--dst-crs {text!r}: not a CRS; give e.g. EPSG:32611, a WKT or PROJ string, or utm"
        ) from None
    return text


def utm_zone_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS of a point in degrees: EPSG:326NN north, 327NN south."""
    zone = min(60, int((lon + 180.0) // 6.0) + 1)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _centre_lonlat(ds: rasterio.DatasetReader) -> tuple[float, float]:
    """Longitude and latitude of the dataset's centre from its transform, GCPs or RPCs."""
    gcps, gcp_crs = ds.gcps
    if ds.crs is not None and not ds.transform.is_identity:
        x, y = ds.transform * (ds.width / 2, ds.height / 2)
        crs = ds.crs
    elif gcps and gcp_crs is not None:  # the GCP nearest the centre: no mean across 180 E
        centre = min(gcps, key=lambda g: (g.row - ds.height / 2) ** 2 + (g.col - ds.width / 2) ** 2)
        x, y, crs = centre.x, centre.y, gcp_crs
    elif ds.rpcs is not None:
        return float(ds.rpcs.long_off), float(ds.rpcs.lat_off)
    else:
        raise RasterError(
            f"{ds.name}: has no georeference (CRS and transform, GCPs or RPCs) to warp from"
        )
    lons, lats = transform_coords(crs, "EPSG:4326", [x], [y])
    return float(lons[0]), float(lats[0])


def warp_output(
    path: Path, dst_crs: str, cog: bool, options: dict[str, str], *,
    named_after: Path | None = None, threads: int | None = None,
) -> str:
    """Reproject the finished RGB GeoTIFF ``path`` onto ``dst_crs`` (see the module
    docstring), in place; its geocolor tags are kept.

    The warp is written to a tiled GeoTIFF under a temporary name: the output itself when
    ``cog`` is False (with the user's creation ``options``), else a scratch file that GDAL's
    COG driver copies (``options`` again) to another temporary name. The result is renamed
    over ``path``. The temporary names are made from ``named_after`` (the final output, when
    ``path`` is itself a temporary). ``threads`` (default: the usable cores) warp stripes of
    rows at once; the result does not depend on their number. Returns the CRS used
    (``EPSG:NNNN``, or WKT).
    """
    scratch = temporary_path_for(named_after or path, ".tif")
    target = temporary_path_for(named_after or path, ".tif")
    try:
        if dst_crs == UTM:
            with rasterio.open(path) as src:
                crs = utm_zone_crs(*_centre_lonlat(src))
        else:
            crs = CRS.from_user_input(dst_crs)
        layout = SCRATCH_OPTIONS if cog else {**DEFAULT_GTIFF_OPTIONS, **options}
        _warp_in_stripes(path, crs, scratch, layout, threads or usable_cores())
        finalise(scratch, target, "gtiff", cog, options)
        os.replace(target, path)
    except RASTER_ERRORS as exc:
        raise OutputError(
            f"{named_after or path}: cannot reproject it to {dst_crs} "
            f"({str(exc).strip().splitlines()[0]})"
        ) from None
    finally:
        scratch.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
    return crs.to_string()


def _warped(src: rasterio.DatasetReader, crs: CRS) -> WarpedVRT:
    """``src`` on GDAL's suggested grid in ``crs``, bilinear, with an alpha band: the
    source's own (an ``--alpha`` output), warped, or one added. With a transform passed in,
    rasterio 1.4 drops a GCP source's GCPs, so none is."""
    has_alpha = ColorInterp.alpha in src.colorinterp
    return WarpedVRT(src, crs=crs, resampling=Resampling.bilinear, add_alpha=not has_alpha)


def _warp_in_stripes(path: Path, crs: CRS, dst: Path, layout: dict[str, str], threads: int) -> None:
    """Write ``path`` warped onto ``crs`` to the RGBA GeoTIFF ``dst`` (creation options
    ``layout``), its tags kept. Stripes of :data:`WARP_ROWS` rows are warped by ``threads``
    threads, each with its own dataset and warped VRT (GDAL handles are not shared between
    threads; GDAL releases the GIL while it warps), at most ``2 * threads`` stripes at once,
    and written in order."""
    with rasterio.open(path) as src, _warped(src, crs) as vrt:
        profile = {"driver": "GTiff", "width": vrt.width, "height": vrt.height, "count": 4,
                   "dtype": "uint8", "crs": vrt.crs, "transform": vrt.transform,
                   "photometric": "RGB", "alpha": "YES", **layout}
        tags = src.tags()
    stripes = [Window(0, y, profile["width"], min(WARP_ROWS, profile["height"] - y))
               for y in range(0, profile["height"], WARP_ROWS)]
    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def warp_stripe(window: Window) -> np.ndarray:
        if not hasattr(local, "vrt"):
            source = rasterio.open(path)
            local.vrt = _warped(source, crs)
            with lock:
                opened.extend([local.vrt, source])
        return local.vrt.read(window=window)

    try:
        with rasterio.open(dst, "w", **profile) as out, ThreadPoolExecutor(threads) as pool:
            out.update_tags(**tags)
            pending: deque = deque()
            for window in stripes:
                pending.append((window, pool.submit(warp_stripe, window)))
                if len(pending) >= 2 * threads:
                    done, future = pending.popleft()
                    out.write(future.result(), window=done)
            while pending:
                done, future = pending.popleft()
                out.write(future.result(), window=done)
    finally:
        for dataset in opened:
            dataset.close()
