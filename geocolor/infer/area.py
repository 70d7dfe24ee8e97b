"""Colorizing part of a scene: ``geocolor colorize --bounds W,S,E,N``.

A full Sentinel-1 IW GRD is 25,000 x 16,700 pixels, minutes of model time on a CPU. Users
mostly want one area of it. ``--bounds`` takes that area in longitude and latitude
(degrees, WGS 84), finds the input's rows and columns that cover it (through the input's
CRS and transform, its GCPs or its RPCs: a GRD in radar geometry is cut along its own rows
and columns) and colorizes that window alone. The output is the window, placed on the map
as the input was: its transform, GCPs or RPCs shifted by the window's offset. Its tiles
are the whole scene's that reach into the window (:class:`~geocolor.infer.tiling.TileGrid`
with an ``origin``), read with the scene's pixels around it, and the input's scaling is the
whole scene's (its reference statistic and calibration), so the cut-out is the whole run's
output there, to the byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.transform import GCPTransformer, RPCTransformer
from rasterio.warp import transform as transform_coords
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geocolor.errors import OutsideBounds, RasterError, UsageError
from geocolor.io.raster import lonlat_footprint, map_placement

#: Points per side of the bounds traced into the scene's pixels (their edges may curve).
EDGE_POINTS = 33


def parse_bounds(value: str | Sequence[float]) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` (degrees; commas or spaces) or four numbers -> (west, south, east,
    north); a UsageError unless west < east, south < north and all lie on the globe."""
    text = value if isinstance(value, str) else ",".join(map(str, value))
    parts = text.replace(",", " ").split()
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"--bounds {text!r}: expected W,S,E,N in degrees, e.g. -118.5,33.9,-118.2,34.1"
        ) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise UsageError(
            f"--bounds {text!r}: needs west < east in [-180, 180] and south < north in "
            "[-90, 90] (an area across the antimeridian: colorize each side)"
        )
    return west, south, east, north


def _outline(bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of :data:`EDGE_POINTS` points along each side of ``bounds``."""
    west, south, east, north = bounds
    t = np.linspace(0.0, 1.0, EDGE_POINTS)
    lons = np.concatenate([west + (east - west) * t, np.full_like(t, east),
                           east - (east - west) * t, np.full_like(t, west)])
    lats = np.concatenate([np.full_like(t, south), south + (north - south) * t,
                           np.full_like(t, north), north - (north - south) * t])
    return lons, lats


def _pixels_of(
    ds: rasterio.DatasetReader, lons: np.ndarray, lats: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (rows, columns) of ``ds`` at these longitudes and latitudes."""
    placement = map_placement(ds)
    if placement == "transform":
        xs, ys = transform_coords("EPSG:4326", ds.crs, lons.tolist(), lats.tolist())
        cols, rows = ~ds.transform * (np.asarray(xs), np.asarray(ys))
        return np.asarray(rows), np.asarray(cols)
    if placement == "gcps":
        gcps, gcp_crs = ds.gcps
        xs, ys = transform_coords("EPSG:4326", gcp_crs or "EPSG:4326", lons.tolist(),
                                  lats.tolist())
        with GCPTransformer(gcps) as t:
            rows, cols = t.rowcol(xs, ys, op=lambda v: v)
    elif placement == "rpcs":
        with RPCTransformer(ds.rpcs) as t:
            rows, cols = t.rowcol(lons.tolist(), lats.tolist(), zs=[0.0] * len(lons),
                                  op=lambda v: v)
    else:
        raise RasterError(f"{ds.name}: has no georeference (CRS and transform, GCPs or RPCs) "
                          "to find --bounds in; drop --bounds")
    return np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)


def window_of_bounds(
    ds: rasterio.DatasetReader, bounds: tuple[float, float, float, float]
) -> Window:
    """The smallest window of whole pixels of ``ds`` that covers ``bounds`` (W, S, E, N in
    degrees), clipped to the scene; :class:`~geocolor.errors.OutsideBounds` when they do
    not meet."""
    rows, cols = _pixels_of(ds, *_outline(bounds))
    if not (np.isfinite(rows).all() and np.isfinite(cols).all()):
        raise RasterError(
            f"{ds.name}: --bounds {bounds_text(bounds)} cannot be placed in its pixels")
    top, bottom = max(0, math.floor(rows.min())), min(ds.height, math.ceil(rows.max()))
    left, right = max(0, math.floor(cols.min())), min(ds.width, math.ceil(cols.max()))
    if bottom <= top or right <= left:
        raise OutsideBounds(f"{ds.name}: --bounds {bounds_text(bounds)} lies outside the scene "
                            f"({footprint_text(ds)})")
    return Window(left, top, right - left, bottom - top)


def footprint_text(ds: rasterio.DatasetReader) -> str:
    """``the scene spans lon A..B, lat C..D``: where it is (for a message)."""
    west, south, east, north = lonlat_footprint(ds) or (math.nan,) * 4
    return f"the scene spans lon {west:.3f}..{east:.3f}, lat {south:.3f}..{north:.3f}"


def bounds_text(bounds: tuple[float, float, float, float]) -> str:
    """``W,S,E,N`` as ``--bounds`` takes it (shortest exact form of each number)."""
    return ",".join(f"{v:g}" for v in bounds)


def georeference_in(georef: dict[str, Any], window: Window) -> dict[str, Any]:
    """``georef`` (:func:`geocolor.infer.output.georeference` of the input) for ``window``
    of it: the transform moved to the window's corner, the GCPs' rows and columns or the
    RPCs' line and sample offsets moved by the window's offset."""
    row_off, col_off = int(window.row_off), int(window.col_off)
    kind = georef["kind"]
    if kind == "transform":
        return {**georef, "transform": window_transform(window, georef["transform"])}
    if kind == "gcps":
        gcps, crs = georef["gcps"]
        moved = [GroundControlPoint(row=g.row - row_off, col=g.col - col_off, x=g.x, y=g.y,
                                    z=g.z, id=g.id, info=g.info) for g in gcps]
        return {**georef, "gcps": (moved, crs)}
    if kind == "rpcs":
        rpcs = georef["rpcs"]
        moved_rpcs = type(rpcs)(**{**rpcs.to_dict(), "line_off": rpcs.line_off - row_off,
                                   "samp_off": rpcs.samp_off - col_off})
        return {**georef, "rpcs": moved_rpcs}
    return georef
