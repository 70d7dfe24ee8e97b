"""Paired SAR / optical training data: discovery, scene-wise splits, a torch Dataset.

Two layouts are recognised (:func:`detect_layout`):

``kaggle``
    The Kaggle "Sentinel12 Image Pairs Segregated by Terrain" set:
    ``ROOT/v_2/<terrain>/s1/*.png`` paired with ``ROOT/v_2/<terrain>/s2/*.png`` by
    name (``ROIs1970_fall_s1_13_p10.png`` <-> ``ROIs1970_fall_s2_13_p10.png``).
    ROOT may also be ``v_2`` itself or a single ``<terrain>`` folder. The s1 chips
    may have 1 or 3 (identical) channels. Group (the unit of the train/val split)
    = the scene ``<roi>_<season>_<scene>``, shared across terrains, so patches of
    one scene never land on both sides. SAR scaling preset: ``kaggle-vv-db``.
``folders``
    ``ROOT/sar/NAME.png`` paired with ``ROOT/opt/NAME.png`` (larger images, e.g.
    the 1024x1024 s1s2-la fragments). Group = the fragment, merged (union-find)
    with every fragment whose footprint overlaps it, taken from the ``xmin*``,
    ``ymin*``, ``xmax*``, ``ymax*`` columns of ``ROOT/pairs.csv`` when present,
    plus any explicit ``overlaps``. SAR scaling preset: ``s1s2la-vh-amplitude``.

Public API (stable; used by ``train sar`` and ``evaluate``)::

    pairs = find_pairs(root, terrains=None, limit_per_terrain=None)   # -> PairSet
    pairs.pairs         # list[Pair(sar_path, opt_path, group, terrain, name, size)]
    pairs.skipped       # list[Skipped(path, reason)]: unpaired / unreadable files
    pairs.layout, pairs.default_sar_scaling, pairs.summary()
    train, val = split_by_group(pairs.pairs, val_fraction=0.1, seed=0)
    record = split_pairs(pairs, 0.1, seed=0, holdout_region="-119.1,34.0,-118.6,34.35")
    ds = PairedDataset(train, img_size=256, train=True)   # random crops per item
    ds = PairedDataset(val, img_size=256, train=False)    # deterministic grid crops
    sar, opt = ds[i]    # float32 tensors (1, S, S) and (3, S, S) in [-1, 1]
    ds.item_info(i)     # (pair, (top, left)) of a validation item

Training items of large images are ``crops_per_image`` random crops each
(default: as many as fit without overlap, so an epoch sees as many pixels as the
grid would); the crop position comes from numpy's global generator, which the
training driver seeds per item. Validation items are the non-overlapping,
centred grid of ``img_size`` crops of every image. Images smaller than
``img_size`` are resized up (shorter side) first.
"""
from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from geocolor.data import split as _split
from geocolor.data.augment import PairAugment, rotation_source_side
from geocolor.errors import DataError, UsageError

log = logging.getLogger("geocolor.data")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LAYOUT_SCALING = {"kaggle": "kaggle-vv-db", "folders": "s1s2la-vh-amplitude"}
KAGGLE_NAME = re.compile(r"^(?P<roi>ROIs?\d+)_(?P<season>[A-Za-z]+)_s1_(?P<scene>\d+)_p(?P<patch>\d+)$")


def scaling_named_by(path: str | PurePath) -> str | None:
    """The SAR scaling preset a chip's file name tells, or None: ``kaggle-vv-db`` for a
    Kaggle "Sentinel12 Image Pairs" SAR chip (``ROIs1970_fall_s1_13_p10.png``), the one
    naming specific enough to tell how the chip was scaled."""
    return LAYOUT_SCALING["kaggle"] if KAGGLE_NAME.match(Path(path).stem) else None


#: Above this many decoded bytes a dataset reads images from disk on every access.
CACHE_LIMIT_BYTES = 1_500_000_000


@dataclass(frozen=True)
class Pair:
    """One SAR/optical image pair.

    Attributes:
        sar_path, opt_path: the two files.
        group: split unit (scene / ROI / merged overlapping fragments).
        terrain: Kaggle terrain folder name ("" for the folders layout).
        name: the SAR file's stem.
        size: (width, height) from the file header, if checked.
    """

    sar_path: Path
    opt_path: Path
    group: str
    terrain: str = ""
    name: str = ""
    size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Skipped:
    """A file left out, and why (unpaired, unreadable, size mismatch)."""

    path: Path
    reason: str


@dataclass
class PairSet:
    """The result of :func:`find_pairs`."""

    root: Path
    layout: str
    pairs: list[Pair] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def default_sar_scaling(self) -> str:
        """Name of the SAR scaling preset (:mod:`geocolor.data.sarscale`) of this layout."""
        return LAYOUT_SCALING[self.layout]

    def terrains(self) -> list[str]:
        return sorted({p.terrain for p in self.pairs})

    def groups(self) -> list[str]:
        return sorted({p.group for p in self.pairs})

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (for logs and model cards)."""
        per_terrain: dict[str, int] = defaultdict(int)
        for p in self.pairs:
            per_terrain[p.terrain or "-"] += 1
        return {
            "root": str(self.root),
            "layout": self.layout,
            "pairs": len(self.pairs),
            "groups": len(self.groups()),
            "per_terrain": dict(sorted(per_terrain.items())),
            "skipped": len(self.skipped),
        }

    def __len__(self) -> int:
        return len(self.pairs)


# ----------------------------------------------------------------------------- discovery
def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _kaggle_terrain_dirs(root: Path) -> list[Path] | None:
    """The ``<terrain>`` folders (each with s1/ and s2/) of a Kaggle layout rooted at ``root``."""
    if (root / "s1").is_dir() and (root / "s2").is_dir():
        return [root]
    base = root / "v_2" if (root / "v_2").is_dir() else root
    dirs = sorted(d for d in base.iterdir() if d.is_dir() and (d / "s1").is_dir() and (d / "s2").is_dir())
    return dirs or None


def detect_layout(root: Path | str) -> str:
    """``"kaggle"`` or ``"folders"``; a :class:`DataError` saying where it looked otherwise."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data directory not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    if (root / "sar").is_dir() and (root / "opt").is_dir():
        return "folders"
    if _kaggle_terrain_dirs(root):
        return "kaggle"
    raise DataError(
        f"{root}: no training pairs found: looked for {root}/sar + {root}/opt (paired folders) "
        f"and for {root}/[v_2/]<terrain>/s1 + s2 (Kaggle Sentinel12 layout)"
    )


def _header(path: Path) -> tuple[int, int] | str:
    """(width, height) from the header, or the reason the file is unreadable."""
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return f"unreadable ({type(exc).__name__})"


def _check_pair(sar: Path, opt: Path, skipped: list[Skipped]) -> tuple[int, int] | None:
    s, o = _header(sar), _header(opt)
    if isinstance(s, str):
        skipped.append(Skipped(sar, s))
        return None
    if isinstance(o, str):
        skipped.append(Skipped(opt, o))
        return None
    if s != o:
        skipped.append(Skipped(sar, f"size {s[0]}x{s[1]} differs from {opt.name} {o[0]}x{o[1]}"))
        return None
    return s


def _find_kaggle(root: Path, terrains: Sequence[str] | None, limit: int | None, check: bool,
                 skipped: list[Skipped]) -> list[Pair]:
    dirs = _kaggle_terrain_dirs(root) or []
    found = {d.name for d in dirs}
    if terrains:
        unknown = sorted(set(terrains) - found)
        if unknown:
            raise DataError(
                f"{root}: no terrain folder {', '.join(map(repr, unknown))}; found: {', '.join(sorted(found))}"
            )
        dirs = [d for d in dirs if d.name in set(terrains)]
    pairs: list[Pair] = []
    unparsed = 0
    for d in dirs:
        s1 = _images(d / "s1")
        s2 = {p.name: p for p in _images(d / "s2")}
        matched: set[str] = set()
        terrain_pairs: list[Pair] = []
        for sar in s1:
            if "_s1_" not in sar.name:
                skipped.append(Skipped(sar, "name lacks '_s1_'"))
                continue
            opt_name = sar.name.replace("_s1_", "_s2_", 1)
            opt = s2.get(opt_name)
            if opt is None:
                skipped.append(Skipped(sar, f"no matching s2/{opt_name}"))
                continue
            matched.add(opt_name)
            m = KAGGLE_NAME.match(sar.stem)
            if m:
                group = f"{m['roi']}_{m['season']}_{m['scene']}"
            else:
                unparsed += 1
                group = f"{d.name}/{sar.stem}"
            terrain_pairs.append(Pair(sar, opt, group, d.name, sar.stem))
        for name, opt in s2.items():
            if name not in matched:
                skipped.append(Skipped(opt, "no matching s1 image"))
        terrain_pairs.sort(key=lambda p: p.name)
        if limit is not None:
            terrain_pairs = terrain_pairs[:limit]
        pairs += terrain_pairs
    if unparsed:
        log.warning("%d Kaggle file names did not match ROIs<roi>_<season>_s1_<scene>_p<patch>; "
                     "each of those is its own split group", unparsed)
    if check:
        checked = []
        for p in pairs:
            size = _check_pair(p.sar_path, p.opt_path, skipped)
            if size is not None:
                checked.append(Pair(p.sar_path, p.opt_path, p.group, p.terrain, p.name, size))
        pairs = checked
    return pairs


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _bounds_from_csv(path: Path, prefixes: Sequence[str] = ("xmin", "ymin", "xmax", "ymax"),
                     ) -> dict[str, tuple[float, float, float, float]]:
    """Fragment stem -> (xmin, ymin, xmax, ymax) from a pairs.csv (first columns matching ``prefixes``)."""
    out: dict[str, tuple[float, float, float, float]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []

            def col(prefix: str) -> str | None:
                return next((c for c in cols if c.lower().startswith(prefix)), None)

            names = [col(p) for p in prefixes]
            key = "sar" if "sar" in cols else "id" if "id" in cols else None
            if key is None or None in names:
                return {}
            for row in reader:
                try:
                    out[Path(row[key]).stem] = tuple(float(row[n]) for n in names)  # type: ignore[index,misc]
                except (TypeError, ValueError):
                    continue
    except OSError:
        return {}
    return out


def overlapping(bounds: dict[str, tuple[float, float, float, float]]) -> list[tuple[str, str]]:
    """Pairs of names whose boxes share a positive area (touching edges do not count)."""
    names = sorted(bounds)
    out = []
    for i, a in enumerate(names):
        ax0, ay0, ax1, ay1 = bounds[a]
        for b in names[i + 1:]:
            bx0, by0, bx1, by1 = bounds[b]
            if min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0):
                out.append((a, b))
    return out


def _find_folders(root: Path, check: bool, overlaps: Iterable[tuple[str, str]] | None,
                  skipped: list[Skipped]) -> list[Pair]:
    sar = {p.stem: p for p in _images(root / "sar")}
    opt = {p.stem: p for p in _images(root / "opt")}
    for stem in sorted(set(opt) - set(sar)):
        skipped.append(Skipped(opt[stem], "no matching sar image"))
    for stem in sorted(set(sar) - set(opt)):
        skipped.append(Skipped(sar[stem], "no matching opt image"))
    stems = sorted(set(sar) & set(opt))
    uf = _UnionFind(stems)
    links = list(overlaps or [])
    csv_path = root / "pairs.csv"
    if csv_path.is_file():
        links += overlapping(_bounds_from_csv(csv_path))
    for a, b in links:
        a, b = Path(a).stem, Path(b).stem
        if a in uf.parent and b in uf.parent:
            uf.union(a, b)
    pairs = []
    for stem in stems:
        size = _check_pair(sar[stem], opt[stem], skipped) if check else None
        if check and size is None:
            continue
        pairs.append(Pair(sar[stem], opt[stem], uf.find(stem), "", stem, size))
    return pairs


def find_pairs(
    root: Path | str,
    terrains: Sequence[str] | None = None,
    limit_per_terrain: int | None = None,
    *,
    check: bool = True,
    overlaps: Iterable[tuple[str, str]] | None = None,
) -> PairSet:
    """Find SAR/optical pairs under ``root`` (layouts: see the module docstring).

    Args:
        root: data directory.
        terrains: Kaggle terrain folders to use (default: all found).
        limit_per_terrain: keep the first N pairs (by name) of each terrain.
        check: read each file's header; unreadable files and size mismatches are
            skipped and reported.
        overlaps: extra (name, name) pairs that must share a split group.

    Raises:
        DataError: no layout recognised, unknown terrain, or no usable pairs
            (the message says where it looked).
        UsageError: ``terrains`` given for the folders layout, or a bad limit.
    """
    root = Path(root)
    layout = detect_layout(root)
    if limit_per_terrain is not None and limit_per_terrain < 1:
        raise UsageError(f"--limit-per-terrain must be >= 1, got {limit_per_terrain}")
    skipped: list[Skipped] = []
    if layout == "kaggle":
        pairs = _find_kaggle(root, terrains, limit_per_terrain, check, skipped)
        where = f"{root}/[v_2/]<terrain>/s1 + s2"
    else:
        if terrains:
            raise UsageError("--terrain applies to the Kaggle layout only; this is a sar/opt folder pair")
        pairs = _find_folders(root, check, overlaps, skipped)
        if limit_per_terrain is not None:
            pairs = pairs[:limit_per_terrain]
        where = f"{root}/sar + {root}/opt"
    result = PairSet(root, layout, pairs, skipped)
    if skipped:
        reasons: dict[str, int] = defaultdict(int)
        for s in skipped:
            reasons[s.reason.split(" (")[0].split("/")[0]] += 1
        log.warning("%s: skipped %d file(s): %s", root, len(skipped),
                    "; ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
        for s in skipped[:20]:
            log.debug("skipped %s: %s", s.path, s.reason)
    if not pairs:
        raise DataError(f"{root}: no usable SAR/optical pairs in {where} ({len(skipped)} file(s) skipped)")
    return result


# ----------------------------------------------------------------------------- splitting
def split_by_group(pairs: Sequence[Pair], val_fraction: float, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (train, val) by whole groups, never by chip.

    :func:`geocolor.data.split.split_by_group` on ``Pair.group`` (see there).
    """
    return _split.split_by_group(pairs, lambda p: p.group, val_fraction, seed)


def footprints(root: Path | str) -> dict[str, tuple[float, float, float, float]]:
    """Fragment stem -> (lon_min, lat_min, lon_max, lat_max) from ``root/pairs.csv`` ({} if none)."""
    return _bounds_from_csv(Path(root) / "pairs.csv", ("lon_min", "lat_min", "lon_max", "lat_max"))


def split_pairs(pairset: PairSet, val_fraction: float, seed: int = 0,
                holdout_region: str | Sequence[float] | None = None) -> _split.SplitRecord:
    """Split ``pairset`` into a :class:`~geocolor.data.split.SplitRecord` (sides train, val[, holdout]).

    With ``holdout_region`` ("lon_min,lat_min,lon_max,lat_max", folders layout
    with lon/lat columns in pairs.csv) the fragments whose centre lies in that box,
    with every fragment they overlap, form the ``holdout`` side first; the rest is
    split by group into train and val (``val_fraction`` of the rest).
    """
    pairs = list(pairset.pairs)
    method: dict[str, Any] = {"name": "groups", "val_fraction": val_fraction, "seed": seed,
                              "holdout_region": None}
    sides: dict[str, list[Pair]] = {}
    if holdout_region is not None:
        region = (_split.parse_region(holdout_region) if isinstance(holdout_region, str)
                  else _split.parse_region(",".join(map(str, holdout_region))))
        if pairset.layout != "folders":
            raise UsageError("--holdout-region needs a sar/ + opt/ folder with a pairs.csv of lon/lat bounds")
        bounds = footprints(pairset.root)
        held, pairs = _split.holdout_by_region(pairs, lambda p: p.group, lambda p: bounds.get(p.name), region)
        sides["holdout"] = held
        method["holdout_region"] = list(region)
        log.info("holdout region %s: %d fragment(s) held out (%s)", ",".join(map(str, region)), len(held),
                 ", ".join(p.name for p in held))
    train, val = split_by_group(pairs, val_fraction, seed)
    sides = {"train": train, "val": val, **sides}
    return _split.SplitRecord.build(
        "sar", method, pairset.root,
        {side: [(p.sar_path, p.group) for p in side_pairs] for side, side_pairs in sides.items()},
    )


def mean_colour(pairs: Sequence[Pair]) -> list[float]:
    """Pixel-weighted mean RGB in [0, 1] of the pairs' whole optical images (the constant baseline)."""
    total = np.zeros(3, np.float64)
    pixels = 0
    for p in pairs:
        a = read_opt(p.opt_path)
        total += a.reshape(-1, 3).sum(0, dtype=np.float64)
        pixels += a.shape[0] * a.shape[1]
    return [round(float(c), 6) for c in total / max(pixels, 1) / 255.0]


# ----------------------------------------------------------------------------- reading
def read_sar(path: Path) -> np.ndarray:
    """SAR image -> (H, W) uint8 (first channel of a 3-channel file; 16-bit rescaled)."""
    a = _read(path)
    if a.ndim == 3:
        a = a[..., 0]
    return _to_uint8(a, path)


def read_opt(path: Path) -> np.ndarray:
    """Optical image -> (H, W, 3) uint8 RGB (alpha dropped, grey repeated)."""
    a = _read(path)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return _to_uint8(a[..., :3], path)


def _read(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode == "P":
                im = im.convert("RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


def _to_uint8(a: np.ndarray, path: Path) -> np.ndarray:
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint16:
        return (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    raise DataError(f"{path}: unsupported pixel type {a.dtype}; expected 8- or 16-bit images")


def _resize_min_side(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    if min(h, w) >= size:
        return a
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    return np.asarray(Image.fromarray(a).resize((nw, nh), Image.BILINEAR))


def grid_offsets(length: int, size: int) -> list[int]:
    """Offsets of the non-overlapping ``size`` windows along ``length``, centred."""
    n = max(1, length // size)
    margin = (length - n * size) // 2
    return [margin + i * size for i in range(n)]


def to_model_range(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float32 (C, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.array(a, copy=True))  # crops of cached (read-only) arrays
    if t.ndim == 2:
        t = t[None]
    else:
        t = t.permute(2, 0, 1)
    return t.float().div_(127.5).sub_(1.0)


class PairedDataset(Dataset):
    """(SAR (1, S, S), optical (3, S, S)) float32 crops in [-1, 1].

    Args:
        pairs: the pairs (e.g. one side of :func:`split_by_group`).
        img_size: crop size S.
        train: random crops (``crops_per_image`` per pair per epoch) if true,
            else the deterministic centred grid of every image.
        crops_per_image: training items per pair (default: the grid count).
        cache: ``"auto"`` keeps decoded images in memory when they fit in
            :data:`CACHE_LIMIT_BYTES` (loaded up front, shared with forked
            workers); ``True`` / ``False`` force it.
        augment: random augmentation of training crops (ignored when ``train`` is false).
    """

    def __init__(self, pairs: Sequence[Pair], img_size: int = 256, train: bool = True,
                 crops_per_image: int | None = None, cache: bool | str = "auto",
                 augment: PairAugment | None = None) -> None:
        if img_size < 16:
            raise UsageError(f"--img-size must be >= 16, got {img_size}")
        self.pairs = list(pairs)
        self.img_size = img_size
        self.train = train
        self.augment = augment if (train and augment is not None and augment.active) else None
        sizes = [p.size or _size_or_fail(p.sar_path) for p in self.pairs]
        self._sizes = [self._effective(w, h) for (w, h) in sizes]
        self._items: list[tuple[int, int, int]] = []  # (pair index, top, left); -1 = random
        for i, (w, h) in enumerate(self._sizes):
            if train:
                n = crops_per_image or len(grid_offsets(h, img_size)) * len(grid_offsets(w, img_size))
                self._items += [(i, -1, -1)] * n
            else:
                self._items += [(i, t, l) for t in grid_offsets(h, img_size) for l in grid_offsets(w, img_size)]
        total = sum(w * h * 4 for w, h in sizes)
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if cache is True or (cache == "auto" and total <= CACHE_LIMIT_BYTES):
            self._cache = [self._load(i) for i in range(len(self.pairs))]

    def _effective(self, w: int, h: int) -> tuple[int, int]:
        s = self.img_size
        if min(w, h) >= s:
            return w, h
        scale = s / min(w, h)
        return max(s, round(w * scale)), max(s, round(h * scale))

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.pairs[i]
        sar, opt = read_sar(p.sar_path), read_opt(p.opt_path)
        if sar.shape[:2] != opt.shape[:2]:
            raise DataError(f"{p.sar_path}: size {sar.shape[1]}x{sar.shape[0]} differs from {p.opt_path}")
        return _resize_min_side(sar, self.img_size), _resize_min_side(opt, self.img_size)

    def __len__(self) -> int:
        return len(self._items)

    def item_info(self, index: int) -> tuple[Pair, tuple[int, int]]:
        """The pair and (top, left) of item ``index`` (-1, -1: a random crop)."""
        i, t, l = self._items[index]
        return self.pairs[i], (t, l)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, top, left = self._items[index]
        sar, opt = self._cache[i] if self._cache is not None else self._load(i)
        h, w = sar.shape[:2]
        s = self.img_size
        side = self.augment.crop_side(s, min(h, w)) if self.augment is not None else s
        angle = self.augment.angle() if self.augment is not None else 0.0
        if angle:  # cut the larger square that the rotated crop comes from
            side = min(rotation_source_side(side, angle), min(h, w))
        if top < 0:
            top = int(np.random.randint(0, h - side + 1))
            left = int(np.random.randint(0, w - side + 1))
        sar, opt = sar[top:top + side, left:left + side], opt[top:top + side, left:left + side]
        if self.augment is not None:
            sar, opt = self.augment(sar, opt, s, angle=angle)
        return to_model_range(sar), to_model_range(opt)


def pair_size(pair: Pair) -> tuple[int, int]:
    """(width, height) of a pair's SAR image, from the pair or the file header.

    Raises:
        DataError: the header cannot be read.
    """
    return pair.size or _size_or_fail(pair.sar_path)


def _size_or_fail(path: Path) -> tuple[int, int]:
    size = _header(path)
    if isinstance(size, str):
        raise DataError(f"{path}: {size}")
    return size
