"""A picture for the README: SAR | geocolor | real Sentinel-2, row by row (PNG or JPEG).

    python benchmarks/sar_sheet.py OUT.jpg --model FILE --la DIR --fragment 059 [--fragment ...]
        [--xregion DIR --patch NAME] [--side 320] [--tile-size N] [--holdout 018]

Each s1s2-la fragment (``--la``: the s1s2-la folder with pairs.csv) is written as a
georeferenced GeoTIFF exactly as samples/make_la_samples.py does and colorized with
:func:`geocolor.colorize_scene`, the same streaming engine and scene scaling as
``geocolor colorize``. A cross-region patch comes from samples/ (BigEarthNet, dB)
with its Sentinel-2 RGB from the cross-region set (``--xregion``: the folder
benchmarks/make_xregion.py writes). Images are resized to ``--side`` pixels.
``--tile-size`` overrides the card's inference tile (compare models at the same tile:
a model carded at 128 px shows its tile-to-tile colour steps more than at 256).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "samples"))


def _grey_sar(path: Path) -> Image.Image:
    """A SAR GeoTIFF band 'VH' (else band 1) shown as 8-bit grey (its own 1-99 % stretch)."""
    import rasterio

    with rasterio.open(path) as ds:
        index = next((i for i in ds.indexes if (ds.descriptions[i - 1] or "").upper() == "VH"), 1)
        band = ds.read(index).astype(np.float32)
    lo, hi = np.percentile(band, [1, 99])
    return Image.fromarray((np.clip((band - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8))


def colorized(src: Path, model: str, work: Path, tile_size: int | None = None) -> Image.Image:
    """``src`` colorized by ``model`` with :func:`geocolor.colorize_scene` (output in ``work``), as RGB."""
    from geocolor import colorize_scene

    dst = work / f"{src.stem}.rgb.tif"
    colorize_scene(src, dst, model=model, overwrite=True, device="cpu", tile_size=tile_size)
    import rasterio

    with rasterio.open(dst) as ds:
        return Image.fromarray(np.moveaxis(ds.read([1, 2, 3]), 0, -1))


def _row(images: list[Image.Image], side: int) -> Image.Image:
    row = Image.new("RGB", (side * len(images) + 4 * (len(images) - 1), side), "white")
    for i, im in enumerate(images):
        row.paste(im.convert("RGB").resize((side, side), Image.LANCZOS), (i * (side + 4), 0))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", required=True)
    ap.add_argument("--la", type=Path, required=True)
    ap.add_argument("--fragment", action="append", default=[])
    ap.add_argument("--xregion", type=Path)
    ap.add_argument("--patch", action="append", default=[])
    ap.add_argument("--side", type=int, default=320)
    ap.add_argument("--tile-size", type=int, default=None)
    ap.add_argument("--holdout", action="append", default=[],
                    help="fragments labelled as the geographic hold-out instead of validation")
    args = ap.parse_args()

    from make_la_samples import read_fragments, write_fragment

    rows = read_fragments(args.la)
    lines, labels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for fid in args.fragment:
            tif = work / f"la_{fid}.tif"
            write_fragment(args.la, rows[fid], tif)
            real = Image.open(args.la / rows[fid]["opt"])
            lines.append(_row([_grey_sar(tif), colorized(tif, args.model, work, args.tile_size), real], args.side))
            labels.append(f"Los Angeles {fid} ({'hold-out' if fid in args.holdout else 'validation'})")
        for name in args.patch:
            tif = ROOT / "samples" / f"{name}.tif"
            real = Image.open(args.xregion / "opt" / f"{name}.png")
            lines.append(_row([_grey_sar(tif), colorized(tif, args.model, work, args.tile_size), real], args.side))
            labels.append(f"{name.split('_')[5]} (cross-region)")
    head = 22
    width = lines[0].width
    sheet = Image.new("RGB", (width, head + sum(r.height + head for r in lines)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, title in enumerate(("Sentinel-1 VH", "geocolor", "Sentinel-2 (real)")):
        draw.text((i * (args.side + 4) + 6, 5), title, fill="black")
    y = head
    for line, label in zip(lines, labels):
        draw.text((6, y + 4), label, fill="black")
        sheet.paste(line, (0, y + head))
        y += line.height + head
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True, quality=85)  # quality: JPEG only
    print(args.out)


if __name__ == "__main__":
    main()
