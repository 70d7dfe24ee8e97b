"""One train/validation split record for both trainers and ``evaluate --split``.

A training run writes ``RUN_DIR/split.json``; resume and ``geocolor evaluate
--split`` read it back. The record (version 2)::

    {
      "format": "geocolor-split", "version": 2,
      "kind": "sar" | "semantic",
      "method": {"name": "groups", "val_fraction": 0.1, "seed": 0,
                 "holdout_region": [lon_min, lat_min, lon_max, lat_max] | null},
      "root": "/data/s1s2-la",
      "sides": {
        "train":   [{"id": "sar/003.png", "group": "003"}, ...],
        "val":     [...],
        "holdout": [...]          # only with a geographic hold-out
      }
    }

Item ids are paths relative to ``root`` (SAR: the SAR image, semantic: the
photo); an item outside ``root`` keeps its absolute path. A group is the split
unit: a Kaggle scene, a fragment merged with those it overlaps, or a photo. All
items of a group are on one side.

Sides: ``train`` (trained on), ``val`` (validation during training: model
selection, logs) and, optionally, ``holdout``: a geographic cluster kept out of
both, for a separate, honest figure (``evaluate --split F --subset holdout``).

Version 1 files (before this module) are still read: ``train sar`` wrote
``{"train": {"groups": [...], "pairs": [abs SAR paths]}, "val": {...}}`` and
``train semantic`` ``{"train": [abs photo paths], "val": [...]}``.

Public API::

    train, val = split_by_group(items, group_of, val_fraction, seed)  # the one splitter
    held, rest = holdout_by_region(items, group_of, bounds_of, region)  # geographic hold-out
    rec = SplitRecord.build(kind, method, root, {"train": [(path, group)], ...})
    rec.write(path); rec = read_split(path)
    rec.select("val", items, path_of)   # the items of one side, matched by path then name
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from geocolor.errors import DataError, UsageError

log = logging.getLogger("geocolor.data")

FORMAT = "geocolor-split"
VERSION = 2
SIDES = ("train", "val", "holdout")
T = TypeVar("T")
#: (lon_min, lat_min, lon_max, lat_max) in degrees.
Region = tuple[float, float, float, float]


# ----------------------------------------------------------------------------- splitting
def split_by_group(items: Sequence[T], group_of: Callable[[T], str], val_fraction: float,
                   seed: int = 0) -> tuple[list[T], list[T]]:
    """Split items into (train, val) by whole groups, never within a group.

    Groups are shuffled with ``seed``; each group that still fits under
    ``round(val_fraction * len(items))`` items moves to validation (so one large
    group does not make up the whole validation side); if none fits, the
    smallest group does. At least one group when the fraction is positive and
    there are two or more groups; never all groups. Deterministic for a given
    (items, val_fraction, seed). Order within each side follows ``items``.
    With one item per group this is a plain random split of
    ``max(1, round(val_fraction * n))`` items.
    """
    if not 0 <= val_fraction < 1:
        raise UsageError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    sizes: dict[str, int] = defaultdict(int)
    for it in items:
        sizes[group_of(it)] += 1
    names = sorted(sizes)
    if val_fraction == 0 or len(names) < 2:
        if val_fraction > 0:
            log.warning("only one split group: no validation split")
        return list(items), []
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    target = max(1, round(val_fraction * len(items)))
    val_groups: set[str] = set()
    count = 0
    for g in order:  # greedy: take groups that still fit, so one big group does not fill it alone
        if count + sizes[g] <= target and len(val_groups) < len(names) - 1:
            val_groups.add(g)
            count += sizes[g]
    if not val_groups:  # every group is bigger than the target: the smallest one
        val_groups.add(min(order, key=lambda g: sizes[g]))
    return ([it for it in items if group_of(it) not in val_groups],
            [it for it in items if group_of(it) in val_groups])


def parse_region(text: str) -> Region:
    """``"lon_min,lat_min,lon_max,lat_max"`` (degrees) -> a :data:`Region`; UsageError if malformed."""
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not (values[0] < values[2] and values[1] < values[3]):
        raise UsageError(f"--holdout-region: expected lon_min,lat_min,lon_max,lat_max with min < max "
                         f"(e.g. -119.1,34.0,-118.6,34.35), got {text!r}")
    return values  # type: ignore[return-value]


def holdout_by_region(items: Sequence[T], group_of: Callable[[T], str],
                      bounds_of: Callable[[T], Region | None], region: Region) -> tuple[list[T], list[T]]:
    """(held out, rest): the items whose footprint centre lies in ``region``, with their groups.

    ``bounds_of`` gives an item's (lon_min, lat_min, lon_max, lat_max) or None
    (unknown: the item stays in the rest). A group with any member inside goes
    out whole, so overlapping fragments stay on one side. Raises DataError when
    no footprints are known or nothing lies in the region.
    """
    known = 0
    inside: set[str] = set()
    x0, y0, x1, y1 = region
    for it in items:
        b = bounds_of(it)
        if b is None:
            continue
        known += 1
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            inside.add(group_of(it))
    if not known:
        raise DataError("--holdout-region needs footprints: lon_min, lat_min, lon_max, lat_max columns "
                        "in the data's pairs.csv")
    if not inside:
        raise DataError(f"--holdout-region {','.join(map(str, region))}: no image centre lies in this box "
                        f"({known} footprints known)")
    held = [it for it in items if group_of(it) in inside]
    if len(held) == len(items):
        raise DataError(f"--holdout-region {','.join(map(str, region))}: every image lies in this box; "
                        "nothing would be left to train on")
    return held, [it for it in items if group_of(it) not in inside]


# ----------------------------------------------------------------------------- the record
@dataclass(frozen=True)
class SplitItem:
    """One item of a split: its id (path relative to the record's root) and its group."""

    id: str
    group: str


@dataclass(frozen=True)
class SplitRecord:
    """A split as written to and read from ``split.json`` (see the module docstring)."""

    kind: str
    method: dict[str, Any]
    root: str | None
    sides: dict[str, list[SplitItem]] = field(default_factory=dict)
    version: int = VERSION

    @classmethod
    def build(cls, kind: str, method: Mapping[str, Any], root: Path | str | None,
              sides: Mapping[str, Iterable[tuple[Path | str, str]]]) -> SplitRecord:
        """A record from ``{side: [(path, group), ...]}``; paths under ``root`` become relative."""
        base = Path(root).resolve() if root is not None else None
        out: dict[str, list[SplitItem]] = {}
        for side, entries in sides.items():
            if side not in SIDES:
                raise ValueError(f"unknown split side {side!r}")
            out[side] = [SplitItem(_relative(Path(p), base), str(g)) for p, g in entries]
        return cls(kind, dict(method), str(base) if base is not None else None, out)

    def ids(self, side: str) -> list[str]:
        """The item ids of ``side`` (empty when the side is absent)."""
        return [it.id for it in self.sides.get(side, [])]

    def groups(self, side: str) -> list[str]:
        """The sorted distinct groups of ``side``."""
        return sorted({it.group for it in self.sides.get(side, [])})

    def paths(self, side: str) -> list[Path]:
        """The items of ``side`` as paths (relative ids joined to the record's root)."""
        root = Path(self.root) if self.root else None
        return [Path(i) if Path(i).is_absolute() or root is None else root / i for i in self.ids(side)]

    def select(self, side: str, items: Sequence[T], path_of: Callable[[T], Path],
               source: Path | str = "split.json", *, required: bool = True) -> list[T]:
        """The ``items`` listed on ``side``, in the order of ``items``.

        Matched by exact path, then resolved path, then path relative to a
        data root that moved, then file name. Items of the record that are not
        found are counted in a warning; none at all raises DataError when
        ``required``.
        """
        if side not in SIDES:
            raise UsageError(f"--subset must be one of {', '.join(SIDES)}, got {side!r}")
        if side not in self.sides:
            if required:
                raise DataError(f"{source}: no {side!r} side in this split file "
                                f"(it has {', '.join(self.sides) or 'none'})")
            return []
        wanted = self.paths(side)
        ids = self.ids(side)
        if not wanted:
            return []
        exact = {str(p) for p in wanted}
        chosen = [it for it in items if str(path_of(it)) in exact]
        if not chosen:
            resolved = {str(p.resolve()) for p in wanted}
            chosen = [it for it in items if str(path_of(it).resolve()) in resolved]
        if not chosen:  # the data moved: match the relative id's tail (e.g. sar/003.png)
            tails = {i for i in ids if not Path(i).is_absolute()}
            chosen = [it for it in items if _tail(path_of(it), 2) in tails]
        if not chosen:
            names = {p.name for p in wanted}
            chosen = [it for it in items if path_of(it).name in names]
        if not chosen and required:
            made = f"a {self.kind} run's split, " if self.kind else ""
            where = f"made for {self.root}" if self.root else "made for other data"
            raise DataError(f"{source}: none of its {len(wanted)} {side!r} images is in the data "
                            f"({made}{where}); give that data, or the split of a run on this "
                            "data")
        if 0 < len(chosen) < len(wanted):
            log.warning("%s: %d of %d %r images not found in the data", source, len(wanted) - len(chosen),
                        len(wanted), side)
        return chosen

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "method": self.method,
            "root": self.root,
            "counts": {side: {"items": len(v), "groups": len(self.groups(side))} for side, v in self.sides.items()},
            "sides": {side: [{"id": it.id, "group": it.group} for it in v] for side, v in self.sides.items()},
        }

    def dumps(self) -> str:
        """The JSON text (indented, one item per line)."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def write(self, path: Path | str) -> None:
        """Write atomically to ``path``."""
        from geocolor.io.atomic import atomic_write_text

        atomic_write_text(Path(path), self.dumps())


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return str(path)
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _tail(path: Path, n: int) -> str:
    return "/".join(path.parts[-n:])


def read_split(path: Path | str) -> SplitRecord:
    """Read a ``split.json`` (version 2, or either version 1 format)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: split file not found (a run directory's split.json)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable split.json ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a split file (expected a JSON object)")
    if data.get("format") == FORMAT:
        version = data.get("version")
        if version != VERSION:
            raise DataError(f"{path}: split format version {version} is newer than this geocolor "
                            f"reads ({VERSION}); upgrade geocolor")
        try:
            sides = {side: [SplitItem(str(e["id"]), str(e["group"])) for e in entries]
                     for side, entries in data["sides"].items()}
        except (KeyError, TypeError):
            raise DataError(f"{path}: malformed split file (sides)") from None
        return SplitRecord(str(data.get("kind", "")), dict(data.get("method") or {}), data.get("root"), sides)
    return _read_v1(data, path)


def _read_v1(data: dict[str, Any], path: Path) -> SplitRecord:
    sides: dict[str, list[SplitItem]] = {}
    kind = ""
    for side in ("train", "val"):
        entry = data.get(side)
        if isinstance(entry, dict):  # train sar: {"groups": [...], "pairs": [...]}
            kind = "sar"
            pairs = entry.get("pairs")
            if not isinstance(pairs, list):
                raise DataError(f"{path}: no {side!r} pairs in this split file")
            # v1 did not record each pair's group; a one-group side says it, otherwise unknown
            groups = entry.get("groups") or []
            group = str(groups[0]) if len(groups) == 1 else ""
            sides[side] = [SplitItem(str(p), group or Path(p).stem) for p in pairs]
        elif isinstance(entry, list):  # train semantic: [photo paths]
            kind = kind or "semantic"
            sides[side] = [SplitItem(str(p), Path(p).stem) for p in entry]
    if not sides:
        raise DataError(f"{path}: no 'train' or 'val' list in this split file")
    return SplitRecord(kind, {"name": "unknown (version 1 file)"}, None, sides, version=1)
