"""Issue 8: the COG's overviews are made while the rows stream (geocolor.infer.pyramid).

The output must be the one GDAL's overviews gave: every level's pixels and mask, the full
resolution, the georeference and the tags, for scenes whose levels halve exactly and for
those where GDAL finishes the pyramid from the last streamed level.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from colorize_fakes import corner_gcps, db_scene, write_raster
from rasterio.enums import Resampling

import geocolor.infer.scene as scene_module
from geocolor.infer.pyramid import StreamedOverviews, halve, streamable_levels
from geocolor.infer.scene import colorize_scene


def _through_the_cog_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most tests here are about the levels handed to GDAL's COG driver (through a VRT), so
    they do not let the COG be written directly (that route: tests/infer/test_cogwrite.py)."""
    monkeypatch.setattr(scene_module, "_direct_cog", lambda *args, **kwargs: None)


def _gdal_average_overview(tmp_path: Path, rgb: np.ndarray, valid: np.ndarray | None) -> tuple:
    """GDAL's own factor-2 AVERAGE overview of ``rgb`` (and its mask)."""
    c, h, w = rgb.shape
    path = tmp_path / "gdal.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype="uint8", tiled=True,
        blockxsize=16, blockysize=16, photometric="RGB",
    ) as ds:
        ds.write(rgb)
        if valid is not None:
            ds.write_mask(valid.astype(np.uint8) * 255)
        ds.build_overviews([2], Resampling.average)
    with rasterio.open(path, overview_level=0) as ds:
        return ds.read(), ds.read_masks(1) > 0


@pytest.mark.parametrize("masked", [True, False])
def test_halve_is_gdals_average(tmp_path: Path, masked: bool) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (3, 48, 64), dtype=np.uint8)
    valid = None
    if masked:
        valid = rng.random((48, 64)) > 0.35  # blocks with 0-4 valid pixels, and ties at .5
        valid[:8] = False
        rgb *= valid  # the pipeline writes 0 outside the data
    expected, expected_valid = _gdal_average_overview(tmp_path, rgb, valid)
    out, out_valid = halve(rgb, valid)
    np.testing.assert_array_equal(out, expected)
    if masked:
        np.testing.assert_array_equal(out_valid, expected_valid)
        assert not out_valid[:4].any() and out_valid[4:].mean() > 0.9
    else:
        assert out_valid is None


def test_streamable_levels_stop_at_the_first_odd_parent() -> None:
    assert streamable_levels(4096, 2048, (2, 4, 8)) == 3
    assert streamable_levels(16700 * 2, 25000, (2, 4, 8, 16)) == 3  # 12500 -> 6250 -> 3125
    assert streamable_levels(1030, 2050, (2, 4)) == 1  # 515 x 1025 is odd
    assert streamable_levels(1025, 2048, (2, 4)) == 0
    assert streamable_levels(4096, 4096, (4, 8)) == 0  # not the halving series


def _levels(path: Path) -> list[tuple]:
    with rasterio.open(path) as ds:
        gcps = [(g.row, g.col, g.x, g.y, g.id) for g in ds.gcps[0]], ds.gcps[1]
        levels = [(ds.read(), ds.read_masks(1), ds.tags(), ds.crs, ds.transform, gcps,
                   ds.overviews(1), ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"))]
        count = len(ds.overviews(1))
    for i in range(count):
        with rasterio.open(path, overview_level=i) as ds:
            levels.append((ds.read(), ds.read_masks(1)))
    return levels


def _assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for level_a, level_b in zip(a, b):
        for x, y in zip(level_a, level_b):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            else:
                assert x == y


@pytest.mark.parametrize(
    ("height", "width", "gcps", "factors"),
    [
        (256, 1024, False, [2, 4, 8]),  # every level halves exactly
        (260, 1032, False, [2, 4, 8, 16]),  # ... 65 x 129 at 8: GDAL makes 16 from it
        (258, 1026, True, [2, 4, 8]),  # 129 x 513 at 2: GDAL makes 4 and 8; GCPs
    ],
)
def test_streamed_overviews_give_gdals_output(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch,
    height: int, width: int, gcps: bool, factors: list[int],
) -> None:
    _through_the_cog_driver(monkeypatch)
    db = db_scene(height, width, bands=1)
    db[:, :, :37] = np.nan  # a nodata margin: partial and empty blocks at every level
    db[:, height // 2 :, width - 50 :] = np.nan
    src = write_raster(tmp_path / "s.tif", db, descriptions=("VV",),
                       **({"gcps": corner_gcps(height, width)} if gcps else {}))
    options = {"BLOCKSIZE": "128"}  # several levels on a small scene
    made = []
    real = StreamedOverviews.for_plan.__func__

    def spy(cls, *args, **kwargs):
        made.append(real(cls, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(StreamedOverviews, "for_plan", classmethod(spy))
    colorize_scene(src, tmp_path / "new.tif", sar_model, device="cpu", creation_options=options)
    assert made and made[0] is not None  # streamed this time
    monkeypatch.setattr(StreamedOverviews, "for_plan", classmethod(lambda cls, *a, **k: None))
    colorize_scene(src, tmp_path / "old.tif", sar_model, device="cpu", creation_options=options)

    new, old = _levels(tmp_path / "new.tif"), _levels(tmp_path / "old.tif")
    assert new[0][6] == factors and new[0][7] == "COG"
    assert (new[1][1] == 0).any() and (new[-1][1] == 255).any()
    assert bool(new[0][5][0]) == gcps and "GEOCOLOR_VERSION" in new[0][2]
    _assert_same(new, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.tif", "old.tif", "s.tif"]


def test_the_cog_driver_copies_the_streamed_levels(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a copy of GDAL's by chance: levels marked on their way out reach the COG."""
    import geocolor.infer.pyramid as pyramid

    _through_the_cog_driver(monkeypatch)
    src = write_raster(tmp_path / "s.tif", db_scene(256, 1024, bands=1), descriptions=("VV",))
    colorize_scene(src, tmp_path / "plain.tif", sar_model, device="cpu",
                   creation_options={"BLOCKSIZE": "128"})
    real = pyramid.halve

    def marked(rgb: np.ndarray, valid: np.ndarray | None) -> tuple:
        out, out_valid = real(rgb, valid)
        return out ^ np.uint8(1), out_valid

    monkeypatch.setattr(pyramid, "halve", marked)
    colorize_scene(src, tmp_path / "marked.tif", sar_model, device="cpu",
                   creation_options={"BLOCKSIZE": "128"})
    with rasterio.open(tmp_path / "plain.tif") as a, rasterio.open(tmp_path / "marked.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())  # full resolution untouched
    with rasterio.open(tmp_path / "plain.tif", overview_level=0) as a, rasterio.open(
        tmp_path / "marked.tif", overview_level=0
    ) as b:
        assert np.array_equal(a.read() ^ np.uint8(1), b.read())


@pytest.mark.parametrize("route", ["cog driver", "direct COG"])
def test_no_temporary_is_left_when_a_run_stops(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """Stopped halfway (level files or spools of every level exist by then), a run leaves
    nothing behind."""
    if route == "cog driver":
        _through_the_cog_driver(monkeypatch)
    src = write_raster(tmp_path / "s.tif", db_scene(256, 1024, bands=1), descriptions=("VV",))
    out = tmp_path / "out"
    calls = []

    def stop_halfway(done: int, total: int) -> None:
        calls.append(done)
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_scene(src, out / "o.tif", sar_model, device="cpu", batch_size=2,
                       creation_options={"BLOCKSIZE": "128"}, progress=stop_halfway)
    assert len(calls) > 2
    assert list(out.iterdir()) == []
