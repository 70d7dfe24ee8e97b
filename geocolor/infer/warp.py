"""Reprojecting a finished output onto a map grid (``geocolor colorize --dst-crs``).

A GRD measurement is in radar geometry: its rows and columns follow the satellite's track,
and only its ground control points (GCPs) tie it to the map. Its colorized output keeps
that geometry, like the input. ``--dst-crs`` reprojects the output onto a map CRS in the
same run, GDAL's warper fitting the GCPs (or using the input's CRS and transform, or its
RPCs): bilinear, with an alpha band that is 0 outside the scene's footprint and where the
input was nodata. The grid is GDAL's suggested one (about the input's pixel size), or with
``--dst-res`` one of that pixel size whose pixel edges are whole multiples of it (as
``gdalwarp -tr RES RES -tap``; at 10 m in a UTM zone: Sentinel-2's grid). Fitting GCPs is
not terrain correction: in relief, terrain-correct the SAR first (e.g. SNAP's Range-Doppler
Terrain Correction) and colorize that sigma0 GeoTIFF.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import CRSError
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject
from rasterio.warp import transform as transform_coords
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geocolor.device import usable_cores
from geocolor.errors import OutputError, RasterError, UsageError
from geocolor.infer.output import DEFAULT_GTIFF_OPTIONS, SCRATCH_OPTIONS, finalise
from geocolor.io.atomic import temporary_path_for
from geocolor.io.raster import RASTER_ERRORS, map_placement

#: ``--dst-crs utm``: the WGS 84 / UTM zone of the scene's centre.
UTM = "utm"
#: Rows of the warped output per stripe (what one thread warps at a time).
WARP_ROWS = 512
#: ``--dst-res`` is refused when it is finer than GDAL's suggested pixel size divided by the
#: first, or coarser than it times the second: a pixel size in the wrong unit (metres for
#: degrees: a 1-pixel output; centimetres for metres: a disk filled).
RES_RANGE = (8.0, 100.0)


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


def check_dst_res(res: float | None, dst_crs: str | None) -> float | None:
    """``res`` (a pixel size in ``dst_crs``'s units, or None) when it is a positive number
    and ``dst_crs`` is given; else a UsageError."""
    if res is None:
        return None
    if dst_crs is None:
        raise UsageError(f"--dst-res {res:g} sets the pixel size of a reprojection; "
                         "give --dst-crs too (e.g. --dst-crs utm)")
    if not (math.isfinite(res) and res > 0):
        raise UsageError(f"--dst-res {res:g}: give a positive pixel size, e.g. 10 (metres in "
                         "a UTM zone)")
    return float(res)


def utm_zone_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS of a point in degrees: EPSG:326NN north, 327NN south."""
    zone = min(60, int((lon + 180.0) // 6.0) + 1)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _centre_lonlat(ds: rasterio.DatasetReader) -> tuple[float, float]:
    """Longitude and latitude of the dataset's centre from its transform, GCPs or RPCs."""
    placement = map_placement(ds)
    gcps, gcp_crs = ds.gcps
    if placement == "transform":
        x, y = ds.transform * (ds.width / 2, ds.height / 2)
        crs = ds.crs
    elif placement == "gcps" and gcp_crs is not None:
        # the GCP nearest the centre: no mean of longitudes across 180 E
        centre = min(gcps, key=lambda g: (g.row - ds.height / 2) ** 2 + (g.col - ds.width / 2) ** 2)
        x, y, crs = centre.x, centre.y, gcp_crs
    elif placement == "rpcs":
        return float(ds.rpcs.long_off), float(ds.rpcs.lat_off)
    else:
        raise RasterError(
            f"{ds.name}: has no georeference (CRS and transform, GCPs or RPCs) to warp from"
        )
    lons, lats = transform_coords(crs, "EPSG:4326", [x], [y])
    return float(lons[0]), float(lats[0])


def target_crs(src: rasterio.DatasetReader, dst_crs: str) -> CRS:
    """The CRS that ``dst_crs`` (checked by :func:`check_dst_crs`) names for ``src``."""
    return utm_zone_crs(*_centre_lonlat(src)) if dst_crs == UTM else CRS.from_user_input(dst_crs)


def warp_output(
    path: Path, dst_crs: str, cog: bool, options: dict[str, str], *, res: float | None = None,
    named_after: Path | None = None, threads: int | None = None,
) -> dict[str, Any]:
    """Reproject the finished RGB GeoTIFF ``path`` onto ``dst_crs`` (see the module
    docstring), in place; its geocolor tags are kept.

    ``res``: the pixel size in ``dst_crs``'s units, on a grid whose pixel edges are whole
    multiples of it; None: GDAL's suggested grid. The warp is written to a tiled GeoTIFF
    under a temporary name: the output itself when ``cog`` is False (with the user's
    creation ``options``), else a scratch file that GDAL's COG driver copies (``options``
    again) to another temporary name. The result is renamed over ``path``. The temporary
    names are made from ``named_after`` (the final output, when ``path`` is itself a
    temporary). ``threads`` (default: the usable cores) warp stripes of rows at once; the
    result does not depend on their number. Returns the CRS used (``crs``: ``EPSG:NNNN``,
    or WKT) and the pixel size (``res``).
    """
    scratch = temporary_path_for(named_after or path, ".tif")
    target = temporary_path_for(named_after or path, ".tif")
    try:
        with rasterio.open(path) as src:
            grid = map_grid(src, target_crs(src, dst_crs), res)
        layout = SCRATCH_OPTIONS if cog else {**DEFAULT_GTIFF_OPTIONS, **options}
        _warp_in_stripes(path, grid, scratch, layout, threads or usable_cores())
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
    return {"crs": grid.crs.to_string(), "res": grid.transform.a}


@dataclass(frozen=True)
class MapGrid:
    """The grid of a warped output: its CRS, north-up ``transform`` and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int


def map_grid(src: rasterio.DatasetReader, crs: CRS, res: float | None) -> MapGrid:
    """The grid ``src`` is warped onto in ``crs``: GDAL's suggested one (its extent and about
    the source's pixel size), or with ``res`` that extent widened to whole multiples of
    ``res`` (``gdalwarp -tr res res -tap``). A UsageError when ``res`` is outside
    :data:`RES_RANGE` around the suggested pixel size."""
    with WarpedVRT(src, crs=crs) as vrt:  # GDAL's suggested output (GDALSuggestedWarpOutput2)
        suggested = MapGrid(crs, vrt.transform, vrt.width, vrt.height)
        left, bottom, right, top = vrt.bounds
    if res is None:
        return suggested
    left, bottom = math.floor(left / res) * res, math.floor(bottom / res) * res
    right, top = math.ceil(right / res) * res, math.ceil(top / res) * res
    grid = MapGrid(crs, Affine(res, 0.0, left, 0.0, -res, top), round((right - left) / res),
                   round((top - bottom) / res))
    finer, coarser = RES_RANGE
    if not suggested.transform.a / finer <= res <= suggested.transform.a * coarser:
        raise UsageError(
            f"--dst-res {res:g} makes a {grid.width} x {grid.height} output for "
            f"{src.name}: the pixel size is in the CRS's unit ({_unit(crs)}); GDAL suggests "
            f"{suggested.transform.a:.6g} here"
        )
    return grid


def _unit(crs: CRS) -> str:
    """The unit of ``crs``'s coordinates: ``degree``, ``metre`` ..."""
    return "degree" if crs.is_geographic else (crs.linear_units or "unknown unit")


def _reproject_window(src: rasterio.DatasetReader, grid: MapGrid, window: Window) -> np.ndarray:
    """The ``window`` of ``grid`` warped from ``src`` (its CRS and transform, GCPs or RPCs;
    its mask or alpha band): RGBA uint8 (4, rows, columns), bilinear, alpha 0 outside.
    GDAL reads only the source blocks the window needs. (A warped VRT would do the same,
    but rasterio 1.4's drops a GCP source's GCPs when given a transform.)"""
    alpha = ColorInterp.alpha in src.colorinterp
    out = np.zeros((4, int(window.height), int(window.width)), np.uint8)
    reproject(
        rasterio.band(src, [1, 2, 3, 4] if alpha else [1, 2, 3]), out,
        dst_transform=window_transform(window, grid.transform), dst_crs=grid.crs,
        resampling=Resampling.bilinear, src_alpha=4 if alpha else 0, dst_alpha=4,
        dst_nodata=None, **_source_georeference(src)[1],
    )
    return out


def _source_georeference(src: rasterio.DatasetReader) -> tuple[str, dict[str, Any]]:
    """How ``src`` is placed on the map (:func:`~geocolor.io.raster.map_placement`:
    ``transform``, ``gcps`` or ``rpcs``) and the arguments that tell
    :func:`rasterio.warp.reproject` so."""
    placement = map_placement(src)
    if placement == "transform":
        return placement, {}
    if placement == "gcps":
        gcps, gcp_crs = src.gcps
        return placement, {"gcps": gcps, "src_crs": gcp_crs}
    return "rpcs", {"rpcs": src.rpcs, "src_crs": "EPSG:4326"}


def _warp_in_stripes(
    path: Path, grid: MapGrid, dst: Path, layout: dict[str, str], threads: int
) -> None:
    """Write ``path`` warped onto ``grid`` to the RGBA GeoTIFF ``dst`` (creation options
    ``layout``), its tags kept and GEOCOLOR_WARP added (the grid and how). Stripes of
    :data:`WARP_ROWS` rows are warped by ``threads`` threads, each with its own dataset
    (GDAL handles are not shared between threads; GDAL releases the GIL while it warps), at
    most ``2 * threads`` stripes at once, and written in order."""
    with rasterio.open(path) as src:
        how = {"transform": "its CRS and transform", "gcps": f"{len(src.gcps[0])} GCPs",
               "rpcs": "RPCs"}[_source_georeference(src)[0]]
        tags = {**src.tags(), "GEOCOLOR_WARP": f"{grid.crs.to_string()}, pixel size "
                f"{grid.transform.a:.6g} {_unit(grid.crs)}, bilinear, from {how}"}
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 4,
               "dtype": "uint8", "crs": grid.crs, "transform": grid.transform,
               "photometric": "RGB", "alpha": "YES", **layout}
    stripes = [Window(0, y, grid.width, min(WARP_ROWS, grid.height - y))
               for y in range(0, grid.height, WARP_ROWS)]
    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def warp_stripe(window: Window) -> np.ndarray:
        if not hasattr(local, "source"):
            local.source = rasterio.open(path)
            with lock:
                opened.append(local.source)
        return _reproject_window(local.source, grid, window)

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
