"""Make the README's photo sheet: one row per photo, grey input | geocolor | real photo.

Usage (from the repository root; the photos are the hold-out of
benchmarks/collect_photos.py, never committed)::

    python docs/photo_sheet.py geocolor/weights/semantic_default.model \
        /work/photos/holdout/raw/kodim{04,12,16,23}.png -o docs/photo_sheet.png

Each view is scaled to ``--height`` pixels (default 160) and the sheet is saved as
an optimised PNG.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from geocolor.data.semantic import read_rgb
from geocolor.infer.image import colorize_loaded
from geocolor.io.modelfile import load_model

GAP = 4
LABEL_H = 18


def _u8(x: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))


def sheet(model_path: Path, photos: list[Path], height: int) -> Image.Image:
    """(grey | geocolor | real) rows, each view ``height`` px tall, column titles on top."""
    model = load_model(model_path)
    rows = []
    for path in photos:
        image = read_rgb(path)
        result = colorize_loaded(model, image)
        views = [_u8(result.grey).convert("RGB"), _u8(result.rgb), _u8(image.rgb)]
        width = round(image.width * height / image.height)
        rows.append([v.resize((width, height), Image.Resampling.LANCZOS) for v in views])
    col_w = max(r[0].width for r in rows)
    out = Image.new("RGB", (3 * col_w + 2 * GAP, LABEL_H + len(rows) * (height + GAP) - GAP), "white")
    draw = ImageDraw.Draw(out)
    for c, title in enumerate(("grey input", "geocolor", "real photo")):
        draw.text((c * (col_w + GAP) + 4, 3), title, fill="black")
    for r, views in enumerate(rows):
        for c, view in enumerate(views):
            out.paste(view, (c * (col_w + GAP), LABEL_H + r * (height + GAP)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/photo_sheet.png"))
    ap.add_argument("--height", type=int, default=160)
    args = ap.parse_args()
    img = sheet(args.model, args.photos, args.height)
    tmp = args.output.with_name(args.output.name + ".tmp.png")
    img.save(tmp, optimize=True)
    tmp.replace(args.output)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
