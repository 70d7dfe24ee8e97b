"""Write two s1s2-la validation fragments as georeferenced GeoTIFF scenes in samples/.

    python samples/make_la_samples.py DATA_DIR      # DATA_DIR = the s1s2-la folder

The s1s2-la set (see samples/README.md) stores each 1024 x 1024 fragment as an
8-bit PNG without georeference, and its bounds in EPSG:3395 in ``pairs.csv``. This
script copies the VH amplitude values of the fragments in :data:`FRAGMENTS` unchanged
into single-band uint8 GeoTIFFs (EPSG:3395, 10 m pixels, band description ``VH``,
units ``amplitude``, tiled, DEFLATE), the form ``geocolor colorize`` reads. The
packaged SAR model never trained on them: 018 is in its north-western hold-out, 059 in
its validation split (see the model card, ``geocolor info sar``).
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_bounds

#: fragment id -> what it shows.
FRAGMENTS = {
    "018": "Simi Hills and the western San Fernando Valley",
    "059": "the Venice and Marina del Rey coast, Santa Monica Bay",
}
HERE = Path(__file__).resolve().parent


def read_fragments(data: Path) -> dict[str, dict[str, str]]:
    """The rows of ``data/pairs.csv`` by fragment id (``"018"`` for ``018.png``)."""
    with open(data / "pairs.csv", newline="") as fh:
        return {r["id"].split(".")[0]: r for r in csv.DictReader(fh)}


def write_fragment(data: Path, row: dict[str, str], dst: Path, sar: np.ndarray | None = None) -> None:
    """Copy one fragment's SAR PNG into a georeferenced GeoTIFF at ``dst``.

    ``sar``: (H, W) uint8 values to write instead of the PNG's (e.g. the fragment turned),
    with the fragment's georeference and tags.
    """
    if sar is None:
        sar = np.asarray(Image.open(data / row["sar"]))
        if sar.ndim == 3:
            sar = sar[..., 0]
    bounds = [float(row[k]) for k in ("xmin_3395", "ymin_3395", "xmax_3395", "ymax_3395")]
    profile = {
        "driver": "GTiff", "dtype": "uint8", "count": 1, "width": sar.shape[1], "height": sar.shape[0],
        "crs": CRS.from_epsg(3395), "transform": from_bounds(*bounds, sar.shape[1], sar.shape[0]),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 2,
    }
    with rasterio.open(dst, "w", **profile) as ds:
        ds.write(sar, 1)
        ds.set_band_description(1, "VH")
        ds.units = ("amplitude",)
        ds.update_tags(1, POLARISATION="VH", SCALE="GRD amplitude / tile p99 x 255")
        ds.update_tags(SOURCE=f"s1s2-la fragment {row['id']} ({row['s1_product']})",
                       ACQUIRED=row["s1_date"], ATTRIBUTION="Contains modified Copernicus Sentinel data [2020]")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    data = Path(sys.argv[1])
    rows = read_fragments(data)
    for fid in FRAGMENTS:
        row = rows[fid]
        date = "".join(reversed(row["s1_date"].split(".")))
        dst = HERE / f"LA_S1A_IW_GRDH_VH_{date}_{fid}.tif"
        write_fragment(data, row, dst)
        print(dst)


if __name__ == "__main__":
    main()
