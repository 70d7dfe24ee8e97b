"""``geocolor info PATH``: describe a raster, a Sentinel-1 product or a geocolor model file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from geocolor.cli.options import json_option


def _format_raster(info: dict[str, Any]) -> str:
    lines = [
        f"{info['path']}",
        *([f"  DAMAGED:      {info['damaged']}"] if info.get("damaged") else []),
        f"  driver:       {info['driver']}",
        f"  size:         {info['width']} x {info['height']} pixels, {info['count']} band(s)",
        f"  georeference: {info['georeference']}",
        f"  crs:          {info['crs'] or '-'}",
    ]
    if info["georeference"] == "transform":
        lines.append(f"  transform:    {info['transform']}")
        if info["bounds"]:
            lines.append(f"  bounds:       {info['bounds']}")
    if info["gcps"]["count"]:
        lines.append(f"  gcps:         {info['gcps']['count']} (crs {info['gcps']['crs']})")
    if info["rpcs"]:
        lines.append("  rpcs:         yes")
    if info.get("footprint"):  # what --bounds takes
        west, south, east, north = info["footprint"]
        lines.append(f"  footprint:    lon {west:.5f}..{east:.5f}, lat {south:.5f}..{north:.5f}"
                     " (WGS 84)")
    lines.append(f"  nodata:       {info['nodata']}")
    lines.append(f"  compression:  {info['compression'] or '-'}")
    for key, value in info.get("geocolor", {}).items():  # a geocolor output's provenance
        lines.append(f"  {key.removeprefix('GEOCOLOR_').lower() + ':':<13} {value}")
    for band in info["bands"]:
        r = band["range"]
        value_range = (
            "all nodata"
            if r["min"] is None
            else f"min {r['min']:.6g}, max {r['max']:.6g}, mean {r['mean']:.6g}"
            + (" (sampled)" if r.get("sampled") else "")
        )
        desc = f" '{band['description']}'" if band["description"] else ""
        lines.append(
            f"  band {band['index']}{desc}: {band['dtype']}, {band['color_interp']}, "
            f"block {band['block_size'][1]}x{band['block_size'][0]}, "
            f"overviews {band['overviews'] or '-'}, {value_range}"
        )
    return "\n".join(lines)


def _format_card(info: dict[str, Any]) -> str:
    card = info["card"]
    lines = [f"{info['path']}", f"  geocolor {card['kind']} model, architecture {card['arch']}"]
    training = card.get("training") or {}
    for key, label in (("trained_on", "trained on"), ("limits", "limits")):
        if training.get(key):
            lines.append(f"  {label}: {training[key]}")
    for key in ("arch_args", "input", "training", "metrics"):
        if card.get(key):
            lines.append(f"  {key}:")
            for k, v in card[key].items():
                lines.append(f"    {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    if card.get("classes"):
        lines.append(f"  classes: {', '.join(card['classes'])}")
    lines.append(f"  parameters: {info['parameters']:,} ({card['weights_dtype']})")
    lines.append(f"  written by geocolor {card['geocolor_version']} on {card['created']}")
    return "\n".join(lines)


def describe_path(given: str | Path) -> dict[str, Any]:
    """JSON-ready description of a model file or a raster (local, or a URL: any
    :func:`~geocolor.io.source.raster_source`)."""
    from geocolor.io.modelfile import KINDS, SUFFIX, is_model_file, load_model, resolve_model_path
    from geocolor.io.raster import describe_raster
    from geocolor.io.s1product import (
        annotations_of,
        border_noise_note,
        ipf_version,
        is_product,
        measurements,
    )
    from geocolor.io.source import raster_source
    from geocolor.io.stac import describe_item, is_stac_item

    source = raster_source(given)
    if is_stac_item(source):
        return describe_item(source)
    if not isinstance(source, Path):
        return describe_raster(source)
    path = resolve_model_path(str(source)) if str(source) in KINDS else source  # a packaged one
    if is_model_file(path) or path.suffix.lower() == SUFFIX:
        loaded = load_model(path)  # a .model that is not one says "not a geocolor model file"
        return {
            "type": "model",
            "path": str(path),
            "card": loaded.card.to_dict(),
            "parameters": sum(p.numel() for p in loaded.network.parameters()),
        }
    if is_product(path):
        found = measurements(path)
        first = next((files[0] for files in found.values() if files), None)
        version = ipf_version(path, first) if first else None
        return {
            "type": "product",
            "path": str(path),
            "ipf": None if version is None else f"{version[0]}.{version[1]:02d}",
            "border_noise": border_noise_note(version),
            "polarisations": sorted(found),
            "measurements": [
                {**describe_raster(file), "calibration": annotations_of(path, file)}
                for pol in sorted(found) for file in found[pol]
            ],
        }
    return describe_raster(path)


def _format_item(info: dict[str, Any]) -> str:
    head = ", ".join(str(info[k]) for k in ("collection", "datetime") if info.get(k))
    lines = [f"{info['path']}", f"  STAC Item {info['id']}" + (f" ({head})" if head else "")]
    if not info["polarisations"]:
        lines.append("  no SAR raster among its assets")
    for pol, asset in info["polarisations"].items():
        band = f" band {asset['band']}" if asset.get("band") else ""
        lines.append(f"  {pol}: asset {asset['asset']!r}{band}, {asset['href']}")
    return "\n".join(lines)


def _format_product(info: dict[str, Any]) -> str:
    pols = ", ".join(info["polarisations"]) or "none"
    lines = [f"{info['path']}", f"  Sentinel-1 product, polarisations: {pols}"]
    if info.get("ipf"):
        lines.append(f"  made by IPF {info['ipf']}")
    if info.get("border_noise"):
        lines.append(f"  border: {info['border_noise']}")
    for measurement in info["measurements"]:
        lines += ["  " + line for line in _format_raster(measurement).splitlines()]
        calibration = ", ".join(measurement["calibration"]) or "none (dB models cannot use it)"
        lines.append(f"    calibration:  {calibration}")
    return "\n".join(lines)


@click.command()
@click.argument("path")
@json_option
def info(path: str, as_json: bool) -> None:
    """Describe a raster (size, bands, CRS, georeference, ...) or a geocolor model file.

    PATH 'sar' or 'semantic' describes the packaged model of that kind; a Sentinel-1 product
    (a .SAFE folder or its zip) is described by its measurement GeoTIFFs, a STAC Item (.json,
    or its URL) by its raster of each polarisation. A raster may be a URL (https://, s3://,
    gs://, az://) or a GDAL virtual path (/vsicurl/...).
    """
    described = describe_path(path)
    if as_json:
        click.echo(json.dumps(described))
    elif described["type"] == "model":
        click.echo(_format_card(described))
    elif described["type"] == "product":
        click.echo(_format_product(described))
    elif described["type"] == "stac-item":
        click.echo(_format_item(described))
    else:
        click.echo(_format_raster(described))
