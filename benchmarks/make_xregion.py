"""Build the cross-region validation set: the six BigEarthNet S1/S2 example pairs as sar/ + opt/ PNGs.

    .venv/bin/python benchmarks/make_xregion.py OUT_DIR [--wheel FILE.whl]

    geocolor evaluate MODEL OUT_DIR --train-colour R,G,B     # scores a model trained on s1s2-la

The PyPI wheel ``bigearthnet-common==2.8.0`` (Apache-2.0; downloaded with
``pip download --no-deps`` unless ``--wheel`` names a copy) ships
``BigEarthNet-S1-Example.tar.bz2`` and ``BigEarthNet-S2-Example.tar.bz2``: six
real Sentinel-1 (VV, VH sigma0 in dB, float32) / Sentinel-2 L2A (uint16
reflectance x 10000) patches of 120 x 120 pixels at 10 m, on one UTM grid per
pair, from Austria, Ireland, Finland (two, one under snow) and Portugal (other regions and seasons
than s1s2-la's Los Angeles, November 2020). BigEarthNet data: CDLA-Permissive-1.0;
contains modified Copernicus Sentinel data [2017, 2018].

Each pair is converted to the s1s2-la model's scaling (``geocolor.data.sarscale``
preset ``s1s2la-vh-amplitude`` and /work/shared/data/README.md):

``sar/NAME.png``
    VH only: amplitude = 10^(dB/20), divided by its 99th percentile, clipped to
    [0, 1], ``round(255 u)``, uint8, one channel. Exactly what ``geocolor
    colorize`` does with the sample scene (samples/*.tif) of the same patch.
``opt/NAME.png``
    B04, B03, B02 (R, G, B), each divided by its own 99th percentile, clipped,
    ``round(255 u)``, uint8.

Differences from s1s2-la that remain, and that this set measures on purpose or
cannot avoid: other landscapes and seasons; the percentiles are over the
120 x 120 patch, not over a whole Sentinel tile (no tile is available); the
optical is L2A (surface reflectance), s1s2-la's is L1C (top of atmosphere); the
SAR is calibrated sigma0, s1s2-la's GRD digital numbers (the ratio to the
percentile removes a constant calibration factor). Patches are 120 px: a model
with 128-px tiles sees them resized up to 128 (``geocolor evaluate`` does it).

``pairs.csv`` records, per pair: the names, both acquisition dates, the S2 patch
and S1 scene, the UTM bounds and the lon/lat bounds, the two percentiles used,
and the BigEarthNet labels. Prints a JSON summary on stdout.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHEEL = "bigearthnet-common==2.8.0"
MEMBERS = ("bigearthnet_common/BigEarthNet-S1-Example.tar.bz2", "bigearthnet_common/BigEarthNet-S2-Example.tar.bz2")
PERCENTILE = 99.0


def download_wheel(into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into), WHEEL],
                   check=True)
    return next(into.glob("bigearthnet_common-*.whl"))


def extract(wheel: Path, into: Path) -> tuple[Path, Path]:
    """Unpack the two example tarballs from the wheel; returns the S1 and S2 folders."""
    with zipfile.ZipFile(wheel) as zf:
        for member in MEMBERS:
            target = into / Path(member).name
            target.write_bytes(zf.read(member))
            with tarfile.open(target) as tf:
                tf.extractall(into, filter="data")
    return into / "BigEarthNet-S1-Example", into / "BigEarthNet-S2-Example"


def unit_stretch(values: np.ndarray, percentile: float = PERCENTILE) -> tuple[np.ndarray, float]:
    """values / their ``percentile``-th percentile (finite values), clipped to [0, 1]; and that percentile."""
    finite = values[np.isfinite(values)]
    reference = float(np.percentile(finite, percentile)) if finite.size else 0.0
    if not reference > 0:
        raise SystemExit(f"percentile {percentile} is {reference}: cannot stretch")
    unit = np.clip(np.nan_to_num(values.astype(np.float64) / reference, nan=0.0), 0.0, 1.0)
    return unit, reference


def to_uint8(unit: np.ndarray) -> np.ndarray:
    return np.round(unit * 255.0).astype(np.uint8)


def sar_png(vh_db: np.ndarray) -> tuple[np.ndarray, float]:
    """VH sigma0 dB (H, W) -> the s1s2la-vh-amplitude 8-bit image and the amplitude p99."""
    amplitude = np.power(10.0, vh_db.astype(np.float64) / 20.0)
    unit, reference = unit_stretch(amplitude)
    return to_uint8(unit), reference


def opt_png(b04: np.ndarray, b03: np.ndarray, b02: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """S2 bands (H, W) -> (H, W, 3) uint8 RGB, each band over its own p99; and the three p99s."""
    bands, refs = [], []
    for band in (b04, b03, b02):
        unit, ref = unit_stretch(band.astype(np.float64))
        bands.append(to_uint8(unit))
        refs.append(ref)
    return np.stack(bands, axis=-1), refs


def build(s1_root: Path, s2_root: Path, out: Path) -> list[dict]:
    import rasterio
    from PIL import Image
    from rasterio.warp import transform_bounds

    (out / "sar").mkdir(parents=True, exist_ok=True)
    (out / "opt").mkdir(parents=True, exist_ok=True)
    rows = []
    for s1_dir in sorted(d for d in s1_root.iterdir() if d.is_dir()):
        meta = json.loads(next(s1_dir.glob("*_labels_metadata.json")).read_text())
        s2_name = meta["corresponding_s2_patch"]
        s2_dir = s2_root / s2_name
        name = s1_dir.name
        with rasterio.open(next(s1_dir.glob("*_VH.tif"))) as src:
            vh, crs, transform, bounds, shape = src.read(1), src.crs, src.transform, src.bounds, src.shape
        bands = {}
        for b in ("B04", "B03", "B02"):
            with rasterio.open(s2_dir / f"{s2_name}_{b}.tif") as src:
                if src.crs != crs or src.shape != shape or not src.transform.almost_equals(transform):
                    raise SystemExit(f"{s2_dir}: {b} is not on the grid of {s1_dir.name}")
                bands[b] = src.read(1)
        sar, sar_ref = sar_png(vh)
        rgb, opt_refs = opt_png(bands["B04"], bands["B03"], bands["B02"])
        Image.fromarray(sar).save(out / "sar" / f"{name}.png")
        Image.fromarray(rgb).save(out / "opt" / f"{name}.png")
        lon_min, lat_min, lon_max, lat_max = transform_bounds(crs, "EPSG:4326", *bounds)
        s2_meta = json.loads(next(s2_dir.glob("*_labels_metadata.json")).read_text())
        rows.append({
            "id": f"{name}.png", "sar": f"sar/{name}.png", "opt": f"opt/{name}.png",
            "s1_scene": meta.get("scene_source", ""), "s1_date": meta.get("acquisition_time", ""),
            "s2_patch": s2_name, "s2_date": s2_meta.get("acquisition_date", s2_meta.get("acquisition_time", "")),
            "crs": str(crs), "utm_left": bounds.left, "utm_bottom": bounds.bottom, "utm_right": bounds.right,
            "utm_top": bounds.top, "lon_min": round(lon_min, 5), "lat_min": round(lat_min, 5),
            "lon_max": round(lon_max, 5), "lat_max": round(lat_max, 5),
            "vh_amplitude_p99": round(sar_ref, 6), "b04_p99": opt_refs[0], "b03_p99": opt_refs[1],
            "b02_p99": opt_refs[2], "labels": "; ".join(meta.get("labels", [])),
        })
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "README.txt").write_text(
        "Cross-region validation set for s1s2-la SAR models, made by geocolor's benchmarks/make_xregion.py\n"
        "from the BigEarthNet examples in the bigearthnet-common 2.8.0 wheel (BigEarthNet: CDLA-Permissive-1.0;\n"
        "contains modified Copernicus Sentinel data [2017, 2018]). Never train on it. See pairs.csv.\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder (sar/, opt/, pairs.csv)")
    ap.add_argument("--wheel", type=Path, help="a downloaded bigearthnet_common-2.8.0 wheel (else pip download)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        s1, s2 = extract(wheel, Path(tmp))
        rows = build(s1, s2, args.out)
    print(json.dumps({"out": str(args.out), "pairs": len(rows),
                      "names": [r["id"] for r in rows], "s2_dates": [r["s2_date"] for r in rows]}))


if __name__ == "__main__":
    main()
