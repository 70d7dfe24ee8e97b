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
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as transform_coords

from geocolor.errors import OutputError, RasterError, UsageError
from geocolor.infer.output import DEFAULT_GTIFF_OPTIONS, SCRATCH_OPTIONS, all_cores, finalise
from geocolor.io.atomic import temporary_path_for
from geocolor.io.raster import RASTER_ERRORS

#: ``--dst-crs utm``: the WGS 84 / UTM zone of the scene's centre.
UTM = "utm"


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
    elif gcps and gcp_crs is not None:
        x = sum(g.x for g in gcps) / len(gcps)
        y = sum(g.y for g in gcps) / len(gcps)
        crs = gcp_crs
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
    named_after: Path | None = None,
) -> str:
    """Reproject the finished RGB GeoTIFF ``path`` onto ``dst_crs`` (see the module
    docstring), in place; its geocolor tags are kept. The warp goes to a tiled GeoTIFF
    under a temporary name (the output itself when ``cog`` is False, written with the user's
    creation ``options``), which GDAL's COG driver then copies (``options`` again) to
    another temporary name; the result is renamed over ``path``. The temporary names are
    made from ``named_after`` (the final output, when ``path`` is itself a temporary).
    Returns the CRS used (``EPSG:NNNN``, or WKT)."""
    scratch = temporary_path_for(named_after or path, ".tif")
    target = temporary_path_for(named_after or path, ".tif")
    try:
        with rasterio.open(path) as src:
            if dst_crs == UTM:
                crs = utm_zone_crs(*_centre_lonlat(src))
            else:
                crs = CRS.from_user_input(dst_crs)
            tags = src.tags()
            # GDAL's suggested grid: with a transform passed in, rasterio 1.4 drops the GCPs
            with WarpedVRT(src, crs=crs, resampling=Resampling.bilinear, add_alpha=True) as vrt:
                layout = SCRATCH_OPTIONS if cog else {**DEFAULT_GTIFF_OPTIONS, **options}
                with rasterio.Env(**all_cores()):
                    rasterio.shutil.copy(vrt, scratch, driver="GTiff", **layout)
        with rasterio.open(scratch, "r+") as ds:  # a warped VRT has no tags of its own
            ds.update_tags(**tags)
        finalise(scratch, target, "gtiff", cog, options)
        os.replace(target, path)
    except RASTER_ERRORS as exc:
        raise OutputError(
            f"{path}: cannot reproject it to {dst_crs} ({str(exc).strip().splitlines()[0]})"
        ) from None
    finally:
        scratch.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
    return crs.to_string()
