"""Sentinel-1 products as they are downloaded: a ``.SAFE`` folder, or the ``.zip`` it comes in.

A GRD product keeps one GeoTIFF per polarisation in ``<name>.SAFE/measurement/``
(``s1a-iw-grd-vh-<start>-<stop>-<orbit>-<take>-<n>.tiff``: uint16 amplitude DN with GCPs),
beside its annotations, calibration tables and previews. geocolor colorizes one of those
GeoTIFFs: :func:`measurement_for` picks the one of the polarisation wanted, inside a zip
through GDAL's ``/vsizip/`` (nothing is extracted).
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from geocolor.errors import RasterError, UsageError

#: A measurement GeoTIFF inside a zipped product: ``<name>.SAFE/measurement/<file>.tiff``.
_ZIP_MEMBER = re.compile(r"^[^/]+\.safe/measurement/[^/]+\.tiff?$", re.IGNORECASE)
#: The polarisation in a measurement file's name (``s1a-iw-grd-vh-...``).
_POLARISATION = re.compile(r"(?:^|-)(vv|vh|hh|hv)(?:-|\.|$)", re.IGNORECASE)


def is_product(path: Path) -> bool:
    """Whether ``path`` is a Sentinel-1 product: a ``*.SAFE`` folder with a ``measurement``
    folder, or a zip holding one."""
    name = path.name.lower()
    if name.endswith(".safe"):
        return (path / "measurement").is_dir()
    if name.endswith(".zip") and path.is_file():
        return bool(_zip_measurements(path))
    return False


def _zip_measurements(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return sorted(n for n in archive.namelist() if _ZIP_MEMBER.match(n))
    except (zipfile.BadZipFile, OSError):
        return []


def measurements(path: Path) -> dict[str, list[str]]:
    """The product's measurement GeoTIFFs by polarisation (``"VH"``: paths rasterio opens;
    ``/vsizip/{ZIP}/...`` inside a zip), each list sorted."""
    if path.is_dir():
        files = [str(p) for p in sorted((path / "measurement").glob("*.tif*"))]
    else:
        root = path.resolve()
        files = [f"/vsizip/{{{root}}}/{member}" for member in _zip_measurements(path)]
    found: dict[str, list[str]] = {}
    for file in files:
        match = _POLARISATION.search(Path(file).name)
        if match:
            found.setdefault(match.group(1).upper(), []).append(file)
    return found


def measurement_for(
    path: Path, polarisation: str, band: str | int | None
) -> tuple[str, int | None]:
    """The measurement GeoTIFF of a product to colorize, and the ``band`` to read from it.

    Args:
        polarisation: the model's (used when ``band`` is None).
        band: ``--band``: a polarisation name (``VV``) picks that measurement, which is then
            read as band 1 whatever the model's polarisation.

    Raises:
        RasterError: no measurement GeoTIFF, no measurement of the wanted polarisation, or
            several (the swaths of an SLC product).
        UsageError: ``band`` is a number (a product's bands are its polarisations).
    """
    found = measurements(path)
    if not found:
        raise RasterError(
            f"{path}: a Sentinel-1 product without measurement GeoTIFFs "
            "(<name>.SAFE/measurement/*.tiff); is the download complete?"
        )
    held = ", ".join(sorted(found))
    if band is not None and str(band).strip().isdigit():
        choices = " or ".join(f"--band {pol}" for pol in sorted(found))
        raise UsageError(
            f"{path}: a Sentinel-1 product's bands are its polarisations: pass {choices}"
        )
    want = (polarisation if band is None else str(band)).strip().upper()
    if want not in found:
        if band is not None:
            raise RasterError(f"{path}: has no {want} measurement (it holds {held})")
        raise RasterError(
            f"{path}: holds {held}, but the model was trained on {want} "
            f"(pass --band {sorted(found)[0]} to use it anyway)"
        )
    files = found[want]
    if len(files) > 1:
        raise RasterError(
            f"{path}: holds {len(files)} {want} measurement files (the swaths of an SLC "
            "product?); geocolor colorizes GRD products, or pass one of the files"
        )
    return files[0], None if band is None else 1
