"""Pair discovery, layouts, skipped files, split by scene/fragment, the dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geocolor.data.paired import (
    PairedDataset,
    detect_layout,
    find_pairs,
    grid_offsets,
    overlapping,
    split_by_group,
)
from geocolor.errors import DataError, UsageError


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _kaggle(root: Path, terrains=("agri", "urban"), scenes=(1, 2, 3), patches=2, size=32, s1_channels=1):
    rng = np.random.default_rng(0)
    for terrain in terrains:
        for scene in scenes:
            for patch in range(patches):
                grey = rng.integers(0, 256, (size, size), dtype=np.uint8)
                s1 = np.repeat(grey[..., None], 3, axis=2) if s1_channels == 3 else grey
                name = f"ROIs1868_summer_s1_{scene}_p{patch}.png"
                _png(root / "v_2" / terrain / "s1" / name, s1)
                _png(root / "v_2" / terrain / "s2" / name.replace("_s1_", "_s2_"),
                     rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def _folders(root: Path, n=4, size=64):
    rng = np.random.default_rng(1)
    for i in range(n):
        _png(root / "sar" / f"{i:03d}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
        _png(root / "opt" / f"{i:03d}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def test_kaggle_layout_pairs_by_name_and_groups_by_scene(tmp_path):
    root = _kaggle(tmp_path / "k")
    ps = find_pairs(root)
    assert ps.layout == "kaggle" and ps.default_sar_scaling == "kaggle-vv-db"
    assert len(ps) == 2 * 3 * 2 and not ps.skipped
    for p in ps.pairs:
        assert p.opt_path.name == p.sar_path.name.replace("_s1_", "_s2_")
        assert p.opt_path.parent.parent == p.sar_path.parent.parent
        assert p.size == (32, 32)
    # a scene's patches share one group across terrains: 3 scenes -> 3 groups
    assert ps.groups() == ["ROIs1868_summer_1", "ROIs1868_summer_2", "ROIs1868_summer_3"]
    assert ps.terrains() == ["agri", "urban"]


@pytest.mark.parametrize("sub", ["", "v_2", "v_2/agri"])
def test_kaggle_root_may_be_v2_or_a_terrain(tmp_path, sub):
    root = _kaggle(tmp_path / "k")
    ps = find_pairs(root / sub if sub else root)
    assert len(ps) == (6 if sub.endswith("agri") else 12)


def test_terrain_filter_and_deterministic_limit(tmp_path):
    root = _kaggle(tmp_path / "k")
    ps = find_pairs(root, terrains=["urban"], limit_per_terrain=3)
    assert ps.terrains() == ["urban"] and len(ps) == 3
    assert [p.name for p in ps.pairs] == sorted(p.name for p in ps.pairs)
    assert [p.name for p in ps.pairs] == [p.name for p in find_pairs(root, ["urban"], 3).pairs]
    with pytest.raises(DataError, match="no terrain folder 'forest'.*found: agri, urban"):
        find_pairs(root, terrains=["forest"])


def test_three_channel_s1_reads_as_one_channel(tmp_path):
    root = _kaggle(tmp_path / "k", s1_channels=3)
    ds = PairedDataset(find_pairs(root).pairs, img_size=32, train=False)
    sar, opt = ds[0]
    assert sar.shape == (1, 32, 32) and opt.shape == (3, 32, 32)
    assert sar.dtype == torch.float32 and -1 <= sar.min() and sar.max() <= 1


def test_unpaired_and_unreadable_files_are_skipped_with_reasons(tmp_path, caplog):
    root = _kaggle(tmp_path / "k")
    s1 = root / "v_2" / "agri" / "s1"
    (root / "v_2" / "agri" / "s2" / "ROIs1868_summer_s2_1_p0.png").unlink()  # s1 left unpaired
    _png(root / "v_2" / "agri" / "s2" / "ROIs1868_summer_s2_9_p0.png", np.zeros((32, 32, 3), np.uint8))
    (s1 / "ROIs1868_summer_s1_2_p0.png").write_bytes(b"not a png")  # unreadable
    with caplog.at_level("WARNING", logger="geocolor"):
        ps = find_pairs(root)
    reasons = {s.path.name: s.reason for s in ps.skipped}
    assert reasons["ROIs1868_summer_s1_1_p0.png"].startswith("no matching s2/")
    assert reasons["ROIs1868_summer_s2_9_p0.png"] == "no matching s1 image"
    assert reasons["ROIs1868_summer_s1_2_p0.png"].startswith("unreadable")
    assert len(ps) == 12 - 2 and ps.summary()["skipped"] == 3
    assert "skipped 3 file(s)" in caplog.text


def test_no_pairs_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no training pairs found: looked for .*sar \+ .*opt"):
        find_pairs(empty)
    with pytest.raises(DataError, match="data directory not found"):
        find_pairs(tmp_path / "missing")
    (tmp_path / "f" / "sar").mkdir(parents=True)
    (tmp_path / "f" / "opt").mkdir()
    with pytest.raises(DataError, match=r"no usable SAR/optical pairs in .*/f/sar \+ .*/f/opt"):
        find_pairs(tmp_path / "f")


def test_folders_layout_groups_overlapping_fragments(tmp_path):
    root = _folders(tmp_path / "la", n=5)
    # 000-001 overlap, 001-002 overlap (chain), 003 only touches 002 (edge), 004 apart
    bounds = [(0, 0, 10, 10), (8, 0, 18, 10), (16, 0, 26, 10), (26, 0, 36, 10), (100, 100, 110, 110)]
    (root / "pairs.csv").write_text("id,sar,xmin_3395,ymin_3395,xmax_3395,ymax_3395\n" + "".join(
        f"{i:03d}.png,sar/{i:03d}.png,{b[0]},{b[1]},{b[2]},{b[3]}\n" for i, b in enumerate(bounds)))
    assert overlapping({f"{i:03d}": b for i, b in enumerate(bounds)}) == [("000", "001"), ("001", "002")]
    ps = find_pairs(root)
    assert ps.layout == "folders" and ps.default_sar_scaling == "s1s2la-vh-amplitude"
    groups = {p.name: p.group for p in ps.pairs}
    assert groups["000"] == groups["001"] == groups["002"]
    assert len({groups["000"], groups["003"], groups["004"]}) == 3
    for seed in range(10):
        train, val = split_by_group(ps.pairs, 0.4, seed)
        sides = {p.name: "t" for p in train} | {p.name: "v" for p in val}
        assert sides["000"] == sides["001"] == sides["002"]


def test_explicit_overlaps_and_terrain_refused_for_folders(tmp_path):
    root = _folders(tmp_path / "la", n=3)
    ps = find_pairs(root, overlaps=[("000.png", "002.png")])
    assert ps.pairs[0].group == ps.pairs[2].group != ps.pairs[1].group
    with pytest.raises(UsageError, match="Kaggle layout only"):
        find_pairs(root, terrains=["x"])


def test_split_by_group_never_splits_a_group_and_is_deterministic(tmp_path):
    ps = find_pairs(_kaggle(tmp_path / "k", scenes=tuple(range(10))))
    train, val = split_by_group(ps.pairs, 0.2, seed=3)
    assert not {p.group for p in train} & {p.group for p in val}
    assert len(train) + len(val) == len(ps)
    assert 0 < len(val) <= round(0.2 * len(ps))
    assert split_by_group(ps.pairs, 0.2, seed=3) == (train, val)
    assert split_by_group(ps.pairs, 0.2, seed=4) != (train, val)
    assert split_by_group(ps.pairs, 0.0)[1] == []


def test_large_images_random_train_crops_and_grid_val_crops(tmp_path):
    ps = find_pairs(_folders(tmp_path / "la", n=2, size=100))
    assert grid_offsets(100, 32) == [2, 34, 66]
    val = PairedDataset(ps.pairs, img_size=32, train=False)
    assert len(val) == 2 * 9
    pair, (top, left) = val.item_info(4)
    assert (top, left) == (34, 34)
    sar, opt = val[4]
    full = np.asarray(Image.open(pair.sar_path))
    assert torch.equal(sar[0], torch.tensor(full[34:66, 34:66]).float() / 127.5 - 1)
    train = PairedDataset(ps.pairs, img_size=32, train=True)
    assert len(train) == 18
    np.random.seed(0)
    a = train[0][0]
    np.random.seed(0)
    assert torch.equal(a, train[0][0])
    assert len(PairedDataset(ps.pairs, img_size=32, train=True, crops_per_image=5)) == 10


def test_small_images_are_resized_up(tmp_path):
    ps = find_pairs(_kaggle(tmp_path / "k", size=24))
    sar, opt = PairedDataset(ps.pairs, img_size=32, train=True)[0]
    assert sar.shape == (1, 32, 32) and opt.shape == (3, 32, 32)


def test_layout_detection(tmp_path):
    assert detect_layout(_folders(tmp_path / "f", n=1)) == "folders"
    assert detect_layout(_kaggle(tmp_path / "k", terrains=("a",), scenes=(1,))) == "kaggle"
