"""The one split record: round trip, version-1 files, geographic hold-out, evaluate --subset holdout."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geocolor.data.paired import find_pairs, split_pairs
from geocolor.data.split import (
    SplitRecord,
    holdout_by_region,
    parse_region,
    read_split,
    split_by_group,
)
from geocolor.errors import DataError, UsageError


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _la_like(root: Path) -> Path:
    """6 fragments on a 3x2 lon/lat grid; 000 and 001 overlap (one group), like s1s2-la."""
    rng = np.random.default_rng(0)
    rows = ["id,sar,opt,xmin_3395,ymin_3395,xmax_3395,ymax_3395,lon_min,lat_min,lon_max,lat_max"]
    for i in range(6):
        col, row = i % 3, i // 3
        x0 = col * 100 - (20 if i == 1 else 0)  # 001 overlaps 000 by 20 %
        lon0, lat0 = -119.0 + col * 0.1 - (0.02 if i == 1 else 0), 34.0 + row * 0.1
        rows.append(f"{i:03d}.png,sar/{i:03d}.png,opt/{i:03d}.png,{x0},{row * 100},{x0 + 100},{row * 100 + 100},"
                    f"{lon0:.3f},{lat0:.3f},{lon0 + 0.1:.3f},{lat0 + 0.1:.3f}")
        _png(root / "sar" / f"{i:03d}.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
        _png(root / "opt" / f"{i:03d}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    root = _la_like(tmp_path / "data")
    record = split_pairs(find_pairs(root), 0.2, seed=1, holdout_region="-119.05,33.95,-118.9,34.05")
    path = tmp_path / "split.json"
    record.write(path)
    back = read_split(path)
    assert back == record
    assert back.kind == "sar" and back.version == 2
    assert back.method == {"name": "groups", "val_fraction": 0.2, "seed": 1,
                           "holdout_region": [-119.05, 33.95, -118.9, 34.05]}
    doc = json.loads(path.read_text())
    assert doc["format"] == "geocolor-split" and doc["sides"]["train"][0]["id"].startswith("sar/")
    # ids are relative to the root: the record still selects after the data moves
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    pairs = find_pairs(moved).pairs
    for side in ("train", "val", "holdout"):
        chosen = back.select(side, pairs, lambda p: p.sar_path)
        assert [p.name for p in chosen] == [Path(i).stem for i in back.ids(side)]


def test_holdout_region_keeps_overlapping_fragments_together(tmp_path: Path) -> None:
    pairset = find_pairs(_la_like(tmp_path / "data"))
    # the box holds only 000's centre (-118.95, 34.05); 001 overlaps 000 and goes with it
    record = split_pairs(pairset, 0.25, seed=0, holdout_region="-119.0,34.0,-118.93,34.1")
    assert sorted(Path(i).stem for i in record.ids("holdout")) == ["000", "001"]
    sides = [set(record.ids(s)) for s in ("train", "val", "holdout")]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sum(map(len, sides)) == 6 and len(sides[1]) == 1
    assert not set(record.groups("holdout")) & (set(record.groups("train")) | set(record.groups("val")))
    with pytest.raises(DataError, match="no image centre"):
        split_pairs(pairset, 0.25, holdout_region="10,10,11,11")
    with pytest.raises(DataError, match="nothing would be left"):
        split_pairs(pairset, 0.25, holdout_region="-120,33,-118,35")
    with pytest.raises(UsageError, match="lon_min,lat_min,lon_max,lat_max"):
        parse_region("1,2,3")
    with pytest.raises(UsageError):
        parse_region("3,2,1,4")  # min > max
    assert holdout_by_region(["a", "b"], str, lambda x: (0, 0, 2, 2) if x == "a" else None, (0, 0, 1, 1)) \
        == (["a"], ["b"])


def test_one_splitter_by_group_and_per_photo() -> None:
    items = [f"g{i // 3}/x{i}" for i in range(12)]  # 4 groups of 3
    train, val = split_by_group(items, lambda s: s.split("/")[0], 0.25, seed=2)
    assert len(val) == 3 and {v.split("/")[0] for v in val} & {t.split("/")[0] for t in train} == set()
    assert split_by_group(items, lambda s: s.split("/")[0], 0.25, seed=2) == (train, val)
    photos = [f"p{i}" for i in range(10)]
    train, val = split_by_group(photos, str, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8
    assert split_by_group(photos[:1], str, 0.5) == (photos[:1], [])


def test_version_1_files_are_still_read(tmp_path: Path) -> None:
    sar_v1 = tmp_path / "sar.json"
    sar_v1.write_text(json.dumps({"train": {"groups": ["a", "b"], "pairs": ["/d/sar/a.png", "/d/sar/b.png"]},
                                  "val": {"groups": ["c"], "pairs": ["/d/sar/c.png"]}}))
    rec = read_split(sar_v1)
    assert rec.version == 1 and rec.kind == "sar"
    assert rec.ids("val") == ["/d/sar/c.png"] and rec.groups("val") == ["c"]
    sem_v1 = tmp_path / "sem.json"
    sem_v1.write_text(json.dumps({"train": ["/p/raw/a.jpg"], "val": ["/p/raw/b.jpg"]}))
    rec = read_split(sem_v1)
    assert rec.kind == "semantic" and rec.paths("train") == [Path("/p/raw/a.jpg")]
    # rewritten, a version-1 record becomes a version-2 file that reads back the same items
    rec.write(tmp_path / "v2.json")
    assert read_split(tmp_path / "v2.json").ids("val") == ["/p/raw/b.jpg"]


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="split file not found"):
        read_split(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="not a readable split.json"):
        read_split(tmp_path / "x.json")
    (tmp_path / "future.json").write_text(json.dumps({"format": "geocolor-split", "version": 9, "sides": {}}))
    with pytest.raises(DataError, match="upgrade geocolor"):
        read_split(tmp_path / "future.json")
    rec = SplitRecord.build("sar", {}, tmp_path, {"train": [(tmp_path / "a.png", "a")]})
    with pytest.raises(DataError, match="no 'holdout' side"):
        rec.select("holdout", [], Path)


def test_train_sar_holdout_region_and_evaluate_holdout(tmp_path: Path) -> None:
    """train sar --holdout-region writes the three sides; evaluate --subset holdout scores them."""
    from click.testing import CliRunner

    from geocolor.cli import main

    data = _la_like(tmp_path / "data")
    run = tmp_path / "run"
    res = CliRunner().invoke(main, [
        "-q", "train", "sar", str(data), "-o", str(run), "--max-steps", "1", "--arch", "unet",
        "--img-size", "32", "--ngf", "4", "--ndf", "4", "--levels", "2", "--batch-size", "2", "--lambda-content", "0",
        "--workers", "0", "--val-fraction", "0.25", "--device", "cpu",
        "--holdout-region", "-119.0,34.0,-118.93,34.1"])
    assert res.exit_code == 0, res.output + str(res.exception)
    record = read_split(run / "split.json")
    assert sorted(Path(i).stem for i in record.ids("holdout")) == ["000", "001"]
    res = CliRunner().invoke(main, ["evaluate", str(run / "model.model"), str(data), "--split",
                                    str(run / "split.json"), "--subset", "holdout", "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["images"] == 2 and doc["split"]["subset"] == "holdout"
    # the mean training colour baseline: recorded in the card from the train side of the split
    assert doc["mean_train_colour_source"] == "model card"
    opts = [np.asarray(Image.open(str(p).replace("/sar/", "/opt/")), np.float64) for p in record.paths("train")]
    assert opts and doc["mean_train_colour"] == pytest.approx(
        (np.concatenate([o.reshape(-1, 3) for o in opts]).mean(0) / 255).tolist(), abs=1e-5)
    res = CliRunner().invoke(main, ["train", "sar", str(data), "-o", str(tmp_path / "r2"),
                                    "--holdout-region", "1,2,3"])
    assert res.exit_code == 2 and "--holdout-region" in res.stderr
