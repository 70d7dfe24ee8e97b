"""Photo folders for the semantic model: discovery, masks, image decoding, dataset items."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geocolor.data.semantic import (
    IGNORE_INDEX,
    PhotoRecord,
    SemanticDataset,
    change_exposure,
    find_photos,
    read_mask,
    read_rgb,
    split_records,
)
from geocolor.errors import DataError, RasterError


def _photo(path: Path, size: tuple[int, int] = (40, 30), seed: int = 0) -> np.ndarray:
    """Write a random colour photo of (width, height) ``size``; return its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _mask(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


# ----------------------------------------------------------------------------- discovery
def test_no_data_errors_say_where_they_looked(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        find_photos(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no raw/ folder.*raw"):
        find_photos(tmp_path)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"raw: no photos found.*\.jpg"):
        find_photos(tmp_path)


def test_masks_are_optional_per_photo(tmp_path: Path) -> None:
    _photo(tmp_path / "raw" / "a.jpg")
    _photo(tmp_path / "raw" / "b.png")
    _photo(tmp_path / "raw" / "c.tif")
    _mask(tmp_path / "masks" / "b.png", np.zeros((5, 5)))
    _mask(tmp_path / "masks" / "orphan.png", np.zeros((5, 5)))
    records = find_photos(tmp_path)
    assert [r.image.name for r in records] == ["a.jpg", "b.png", "c.tif"]
    assert [r.mask.name if r.mask else None for r in records] == [None, "b.png", None]


def test_unreadable_photos_are_left_out_and_said(tmp_path: Path, caplog) -> None:
    """As train sar leaves out unreadable pairs: one bad file stopped a whole run."""
    _photo(tmp_path / "raw" / "a.png")
    (tmp_path / "raw" / "b.png").write_bytes(b"not a png at all")
    with caplog.at_level("WARNING", logger="geocolor"):
        records = find_photos(tmp_path)
    assert [r.image.name for r in records] == ["a.png"]
    assert "1 unreadable photo(s) left out (e.g. b.png: unreadable" in caplog.text
    (tmp_path / "raw" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of its photos can be read"):
        find_photos(tmp_path)


def test_duplicate_stems_are_refused(tmp_path: Path) -> None:
    _photo(tmp_path / "raw" / "a.jpg")
    _photo(tmp_path / "raw" / "a.png")
    with pytest.raises(DataError, match="share the name 'a'"):
        find_photos(tmp_path)


def test_split_is_reproducible_and_keeps_one_for_training(tmp_path: Path) -> None:
    for i in range(10):
        _photo(tmp_path / "raw" / f"p{i}.png", (8, 8))
    records = find_photos(tmp_path)
    train, val = split_records(records, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8
    assert split_records(records, 0.2, seed=3) == (train, val)
    assert not set(train) & set(val)
    assert split_records(records[:1], 0.5) == (records[:1], [])
    assert split_records(records, 0.0) == (records, [])


# ----------------------------------------------------------------------------- masks
def test_binary_and_class_index_masks(tmp_path: Path) -> None:
    binary = np.zeros((4, 6), np.uint8)
    binary[1:3, 2:5] = 255
    _mask(tmp_path / "bin.png", binary)
    assert read_mask(tmp_path / "bin.png", 2).tolist() == (binary // 255).tolist()
    classes = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    _mask(tmp_path / "cls.png", classes)
    assert read_mask(tmp_path / "cls.png", 3).tolist() == classes.tolist()
    with pytest.raises(DataError, match=r"not class indices 0\.\.1.*--classes 3"):
        read_mask(tmp_path / "cls.png", 2)


def test_palette_mask_and_nearest_resize(tmp_path: Path) -> None:
    labels = np.zeros((2, 2), np.uint8)
    labels[0, 1] = 1
    labels[1, 0] = 2
    img = Image.fromarray(labels).convert("P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    img.save(tmp_path / "pal.png")
    resized = read_mask(tmp_path / "pal.png", 3, size=(4, 6))
    assert resized.shape == (4, 6)
    assert set(np.unique(resized).tolist()) == {0, 1, 2}  # nearest: no blended values
    assert resized[0, 5] == 1 and resized[3, 0] == 2


# ----------------------------------------------------------------------------- decoding
def test_read_rgb_handles_modes(tmp_path: Path) -> None:
    rgb = _photo(tmp_path / "c.png", (5, 4))
    loaded = read_rgb(tmp_path / "c.png")
    assert loaded.mode == "rgb" and loaded.rgb.dtype == np.float32
    np.testing.assert_allclose(loaded.rgb * 255, rgb, atol=1e-3)

    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    Image.fromarray(grey).save(tmp_path / "g.png")
    g = read_rgb(tmp_path / "g.png")
    assert g.mode == "grey" and g.rgb.shape == (4, 5, 3)
    np.testing.assert_allclose(g.rgb[..., 1] * 255, grey, atol=1e-3)

    grey16 = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    g16 = read_rgb(tmp_path / "g16.png")
    assert g16.mode == "grey" and g16.bit_depth == 16
    np.testing.assert_allclose(g16.rgb[..., 0], grey16 / 65535, atol=1e-6)

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3] = 255  # one opaque red pixel, the rest transparent -> white
    Image.fromarray(rgba).save(tmp_path / "a.png")
    a = read_rgb(tmp_path / "a.png")
    np.testing.assert_allclose(a.rgb[0, 0], [1, 0, 0])
    np.testing.assert_allclose(a.rgb[1, 1], [1, 1, 1])

    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert read_rgb(tmp_path / "p.png").rgb.shape == (4, 5, 3)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "k.jpg")
    assert read_rgb(tmp_path / "k.jpg").rgb.shape == (4, 5, 3)


def test_read_rgb_16bit_rgb_tiff(tmp_path: Path) -> None:
    import rasterio

    data = (np.random.default_rng(0).random((3, 6, 7)) * 65535).astype(np.uint16)
    with rasterio.open(tmp_path / "x.tif", "w", driver="GTiff", width=7, height=6, count=3, dtype="uint16") as ds:
        ds.write(data)
    loaded = read_rgb(tmp_path / "x.tif")
    assert loaded.rgb.shape == (6, 7, 3) and loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb, data.transpose(1, 2, 0) / 65535, atol=1e-6)


def test_read_rgb_applies_exif_orientation(tmp_path: Path) -> None:
    arr = (np.random.default_rng(1).random((10, 20, 3)) * 255).astype(np.uint8)  # 20 wide, 10 high
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    loaded = read_rgb(tmp_path / "rot.jpg")
    assert (loaded.width, loaded.height) == (10, 20)


def test_read_rgb_errors(tmp_path: Path) -> None:
    with pytest.raises(RasterError, match="file not found"):
        read_rgb(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(RasterError, match="not a readable image"):
        read_rgb(tmp_path / "bad.png")
    with pytest.raises(RasterError, match="directory"):
        read_rgb(tmp_path)


# ----------------------------------------------------------------------------- dataset
def test_dataset_items(tmp_path: Path) -> None:
    _photo(tmp_path / "raw" / "a.png", (50, 30))
    _photo(tmp_path / "raw" / "b.png", (21, 33))
    m = np.zeros((3, 5), np.uint8)
    m[:, 3:] = 255
    _mask(tmp_path / "masks" / "a.png", m)
    ds = SemanticDataset(find_photos(tmp_path), image_size=16, classes=2, augment=False)
    assert len(ds) == 2 and ds.with_masks == 1
    a, b = ds[0], ds[1]
    assert a["l"].shape == (1, 16, 16) and a["ab"].shape == (2, 16, 16) and a["mask"].shape == (16, 16)
    assert a["has_mask"] and not b["has_mask"]
    assert set(a["mask"].unique().tolist()) == {0, 1}
    assert (b["mask"] == IGNORE_INDEX).all()
    assert a["l"].min() >= -1 and a["l"].max() <= 1 and a["ab"].abs().max() <= 1
    # deterministic without augmentation
    assert torch.equal(ds[0]["l"], a["l"])


def test_flip_augmentation_moves_mask_with_image(tmp_path: Path) -> None:
    arr = np.zeros((16, 16, 3), np.uint8)
    arr[:, :4] = 255  # white stripe on the left
    (tmp_path / "raw").mkdir()
    Image.fromarray(arr).save(tmp_path / "raw" / "s.png")
    m = np.zeros((16, 16), np.uint8)
    m[:, :4] = 255
    _mask(tmp_path / "masks" / "s.png", m)
    ds = SemanticDataset(find_photos(tmp_path), image_size=16, augment=True, max_zoom=1.0)
    sides = set()
    for seed in range(20):
        torch.manual_seed(seed)
        item = ds[0]
        bright = item["l"][0, 8] > 0
        assert torch.equal(bright, item["mask"][8] == 1)
        sides.add(bool(bright[0]))
    assert sides == {True, False}  # both orientations occur


def test_exposure_change_darkens_without_greying_and_clips_highlights() -> None:
    from geocolor.data.lab import srgb_to_linear

    rgb = torch.tensor([[[0.8]], [[0.4]], [[0.2]]])  # a warm orange pixel, (3, 1, 1)
    assert torch.allclose(change_exposure(rgb, 0.0), rgb, atol=1e-6)
    darker = change_exposure(rgb, -1.5)
    assert (darker < rgb).all()
    # the same chromaticity: linear RGB scaled by one factor, 2 ** -1.5
    ratio = srgb_to_linear(darker) / srgb_to_linear(rgb)
    assert torch.allclose(ratio, torch.full_like(ratio, 2 ** -1.5), rtol=1e-4)
    brighter = change_exposure(rgb, 2.0)
    assert brighter[0].item() == pytest.approx(1.0) and brighter.max() <= 1.0  # red clipped
    assert brighter[2] > rgb[2]


def test_exposure_jitter_varies_brightness_and_keeps_hue(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    Image.fromarray(np.full((16, 16, 3), (60, 120, 180), np.uint8)).save(tmp_path / "raw" / "sky.png")
    records = find_photos(tmp_path)
    plain = SemanticDataset(records, image_size=16, augment=True, max_zoom=1.0)[0]
    ds = SemanticDataset(records, image_size=16, augment=True, max_zoom=1.0, exposure=1.5)
    lightness, hues = [], []
    for seed in range(12):
        torch.manual_seed(seed)
        item = ds[0]
        lightness.append(item["l"].mean().item())
        hues.append(torch.atan2(item["ab"][1], item["ab"][0]).mean().item())
    plain_hue = torch.atan2(plain["ab"][1], plain["ab"][0]).mean().item()
    assert max(lightness) - min(lightness) > 0.3  # L in [-1, 1]: darker and brighter crops
    assert max(abs(h - plain_hue) for h in hues) < 0.05  # radians: still the same blue


def test_dataset_reports_unreadable_photo_as_data_error(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.png").write_bytes(b"junk")  # find_photos leaves it out; a record
    ds = SemanticDataset([PhotoRecord(tmp_path / "raw" / "x.png", None)], image_size=16)
    with pytest.raises(DataError, match="x.png"):
        ds[0]
