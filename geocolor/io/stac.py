"""A STAC Item as an input: the catalogue record of one scene, pointing at its rasters.

Cloud collections of Sentinel-1 (Microsoft Planetary Computer's ``sentinel-1-grd`` and
``sentinel-1-rtc``, Element 84's Earth Search, the Copernicus Data Space) describe each scene
as a STAC Item: a GeoJSON ``Feature`` whose ``assets`` map names (``"vh"``, ``"vv"``) to
rasters (``href``: a URL, an object-store path, or a path relative to the Item). geocolor
takes such an Item (a local ``.json`` file, or its URL) and colorizes the asset of the model's
polarisation (or ``--band``'s), read in place like any URL (:mod:`geocolor.io.source`).

An asset's polarisation is read from its ``sar:polarizations`` (the STAC SAR extension),
else from its key, else from its title. Rasters only: an asset of another media type (a
thumbnail, XML metadata, a zipped product) is never picked.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

from geocolor.errors import RasterError, UsageError
from geocolor.io.s1product import polarisation_named
from geocolor.io.source import RasterSource, raster_source, source_name

#: Seconds to wait for an Item's URL to answer.
FETCH_TIMEOUT_S = 60
#: Largest Item read (a scene's record is a few kB; a whole collection is not an Item).
MAX_ITEM_BYTES = 16 * 1024 * 1024
#: Media types and file endings of raster assets.
_RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2")
_RASTER_ENDINGS = (".tif", ".tiff", ".jp2", ".vrt")


def is_stac_item(src: RasterSource) -> bool:
    """Whether ``src`` names a STAC Item by its form: a local ``.json`` file, or a URL whose
    path ends in ``.json`` or in ``/items/<id>`` with an id without a file ending (a STAC
    API's Item). The contents are checked when it is read (:func:`read_item`)."""
    if isinstance(src, Path):
        return src.suffix.lower() == ".json" and src.is_file()
    if not urlsplit(src).scheme or src.startswith("/vsi"):
        return False
    path = urlsplit(src).path.rstrip("/")
    if path.lower().endswith(".json"):
        return True
    # a STAC API's Item: .../items/<id>, an id without a file ending (a raster under a folder
    # called items/ is not one)
    head, _, last = path.rpartition("/")
    return head.endswith("/items") and not PurePosixPath(last).suffix


def read_item(src: RasterSource) -> dict[str, Any]:
    """The Item at ``src`` (:func:`is_stac_item`) as a dict.

    Raises:
        RasterError: it cannot be read, is not JSON, or is not a STAC Item (a ``Feature``
            with ``assets``).
    """
    if not isinstance(src, Path) and urlsplit(src).scheme.lower() not in ("http", "https"):
        raise RasterError(f"{src}: STAC Items are read from a local file or an http(s) URL; "
                          "download this one first (its assets may stay where they are)")
    try:
        if isinstance(src, Path):
            with src.open("rb") as file:
                text = file.read(MAX_ITEM_BYTES + 1)
        else:
            with urllib.request.urlopen(src, timeout=FETCH_TIMEOUT_S) as answer:  # noqa: S310
                text = answer.read(MAX_ITEM_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise RasterError(f"{src}: the server answered {exc.code} {exc.reason}; check the URL "
                          "(and, for a signed one, that it has not expired)") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RasterError(f"{src}: reading the STAC Item failed ({reason}); check the path or "
                          "the network and run it again") from None
    if len(text) > MAX_ITEM_BYTES:
        raise RasterError(f"{src}: over {MAX_ITEM_BYTES // 2**20} MB; a STAC Item is the record "
                          "of one scene (give the Item, not its collection)")
    try:
        item = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RasterError(f"{src}: not JSON ({exc}); give a STAC Item or a raster") from None
    if isinstance(item, dict) and item.get("type") == "FeatureCollection":
        count = len(item.get("features") or [])
        raise RasterError(f"{src}: a collection of {count} STAC Items (a search's results?); "
                          "give the Items one by one, e.g. their 'self' links on stdin: "
                          "jq -r '.features[].links[] | select(.rel == \"self\") | .href' "
                          f"{source_name(src)} | geocolor colorize - -o DIR/")
    if not (isinstance(item, dict) and item.get("type") == "Feature"
            and isinstance(item.get("assets"), dict)):
        if isinstance(item, dict):
            kind = f"a {item['type']!r}" if "type" in item else "JSON without a 'type'"
            kind += "" if item.get("type") != "Feature" else " without assets"
        else:
            kind = f"a JSON {type(item).__name__}"
        raise RasterError(f"{src}: not a STAC Item (a GeoJSON Feature with assets; this is "
                          f"{kind}); give one scene's Item or a raster")
    return item


def _is_raster(asset: dict[str, Any]) -> bool:
    media = str(asset.get("type", "")).lower()
    if media:
        return media.startswith(_RASTER_TYPES)
    return urlsplit(str(asset.get("href", ""))).path.lower().endswith(_RASTER_ENDINGS)


def _polarisations_of(key: str, asset: dict[str, Any]) -> list[str]:
    """The polarisations an asset holds, in its bands' order: its ``sar:polarizations``, else
    the one its key or title names (none: not a SAR band)."""
    listed = asset.get("sar:polarizations")
    if isinstance(listed, list) and listed and all(isinstance(p, str) for p in listed):
        return [p.upper() for p in listed]
    named = polarisation_named(key) or polarisation_named(str(asset.get("title", "")))
    return [named] if named else []


@dataclass(frozen=True)
class PolarisationAsset:
    """Where an Item keeps one polarisation: its asset and, in an asset of several
    polarisations, the band (1-based, the ``sar:polarizations`` order); None: the asset's
    own single band."""

    key: str
    asset: dict[str, Any]
    band: int | None = None


def polarisation_assets(item: dict[str, Any]) -> dict[str, PolarisationAsset]:
    """The Item's raster assets by polarisation: ``{"VH": PolarisationAsset, ...}``. An asset
    of one polarisation wins over a band of an asset of several; else the first in the Item's
    order."""
    single: dict[str, PolarisationAsset] = {}
    shared: dict[str, PolarisationAsset] = {}
    for key, asset in item["assets"].items():
        if not (isinstance(asset, dict) and asset.get("href") and _is_raster(asset)):
            continue
        pols = _polarisations_of(key, asset)
        for index, pol in enumerate(pols, 1):
            if len(pols) == 1:
                single.setdefault(pol, PolarisationAsset(key, asset))
            else:
                shared.setdefault(pol, PolarisationAsset(key, asset, index))
    return {**shared, **single}


def resolve_href(src: RasterSource, href: str) -> RasterSource:
    """An asset's ``href`` as an input: absolute (a URL, an object-store path, a local path)
    as it is, relative to the Item's own place otherwise (its folder, or its URL)."""
    if urlsplit(href).scheme or href.startswith("/"):
        return raster_source(href)
    if isinstance(src, Path):
        return src.parent / PurePosixPath(href)
    return raster_source(urljoin(src, href))


def asset_for(
    src: RasterSource, polarisation: str, band: str | int | None
) -> tuple[RasterSource, str, int | None]:
    """The raster of an Item to colorize, its asset's key and the band to read in it (None:
    its only one): that of ``band``'s polarisation if given, else the model's
    ``polarisation``.

    Raises:
        RasterError: not an Item, or none of its raster assets has that polarisation.
        UsageError: ``--band`` given as a number (an Item's bands are its polarisations).
    """
    item = read_item(src)
    found = polarisation_assets(item)
    held = ", ".join(sorted(found))
    name = item.get("id", "")
    if band is not None and str(band).strip().isdigit():
        choices = " or ".join(f"--band {pol}" for pol in sorted(found)) or "--band VV"
        raise UsageError(f"{src}: a STAC Item's bands are its polarisations: pass {choices}")
    if not found:
        raise RasterError(
            f"{src}: Item {name} has no SAR raster among its assets (none is a GeoTIFF whose "
            "sar:polarizations, key or title names a polarisation); give a raster's URL instead")
    want = (polarisation if band is None else str(band)).strip().upper()
    if want not in found:
        if band is not None:
            raise RasterError(f"{src}: Item {name} has no {want} raster (it holds {held})")
        hint = f" (pass --band {sorted(found)[0]} to use it anyway)"
        raise RasterError(f"{src}: Item {name} holds {held}, but the model was trained on "
                          f"{want}{hint}")
    chosen = found[want]
    return resolve_href(src, str(chosen.asset["href"])), chosen.key, chosen.band


def describe_item(src: RasterSource) -> dict[str, Any]:
    """JSON-ready description of the Item at ``src``: its id, collection, date and the raster
    of each polarisation (asset key and resolved place), nothing read from the rasters."""
    item = read_item(src)
    properties = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    return {
        "type": "stac-item",
        "path": str(src),
        "id": item.get("id"),
        "collection": item.get("collection"),
        "datetime": properties.get("datetime"),
        "polarisations": {
            pol: {"asset": found.key, "href": str(resolve_href(src, str(found.asset["href"]))),
                  **({"band": found.band} if found.band else {})}
            for pol, found in sorted(polarisation_assets(item).items())
        },
    }
