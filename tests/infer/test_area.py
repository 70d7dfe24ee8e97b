"""``colorize --bounds W,S,E,N``: only the part of a scene that covers an area."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from colorize_fakes import (
    ChannelCopy,
    copy_model,
    corner_gcps,
    db_scene,
    rpc_scene,
    save_tiny_sar_model,
    write_raster,
)
from rasterio.transform import GCPTransformer
from rasterio.warp import transform as transform_coords
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geocolor.cli import main
from geocolor.errors import RasterError, UsageError
from geocolor.infer.area import parse_bounds, window_of_bounds
from geocolor.infer.scene import colorize_scene

H, W = 150, 200


def lonlat_bounds(ds: rasterio.DatasetReader, rows: tuple[int, int],
                  cols: tuple[int, int]) -> tuple[float, float, float, float]:
    """W, S, E, N of the pixel rectangle ``rows`` x ``cols`` of a map-grid scene, shrunk by a
    tenth of a pixel so that it needs exactly those pixels."""
    (r0, r1), (c0, c1) = rows, cols
    xs, ys = ds.transform * (np.array([c0 + 0.1, c1 - 0.1]), np.array([r1 - 0.1, r0 + 0.1]))
    lons, lats = transform_coords(ds.crs, "EPSG:4326", list(xs), list(ys))
    return min(lons), min(lats), max(lons), max(lats)


@pytest.fixture(scope="module")
def unet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained U-Net: each output pixel depends on its neighbourhood (64-px tiles)."""
    return save_tiny_sar_model(tmp_path_factory.mktemp("m") / "unet.model")


def crop_of_whole(tmp_path: Path, src: Path, window: Window, model: Path) -> np.ndarray:
    """The pixels (and mask) of ``window`` in the output of the whole scene."""
    colorize_scene(src, tmp_path / "whole.tif", model, device="cpu")
    with rasterio.open(tmp_path / "whole.tif") as whole:
        return np.concatenate([whole.read(window=window), whole.dataset_mask(window=window)[None]])


def read_with_mask(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return np.concatenate([ds.read(), ds.dataset_mask()[None]])


def test_bounds_on_a_map_grid_scene_give_that_window_in_place(tmp_path: Path, unet: Path) -> None:
    """The window is placed exactly, and its pixels are the whole scene's output there, to
    the byte: its tiles are the whole scene's that reach into it, read with their context."""
    db = db_scene(H, W, bands=1)
    db[0, 100:, :40] = -9999.0  # some nodata, whose mask must match too
    src = write_raster(tmp_path / "s.tif", db, nodata=-9999.0, descriptions=("VV",))
    with rasterio.open(src) as ds:
        bounds = lonlat_bounds(ds, rows=(70, 130), cols=(15, 125))
        transform = ds.transform
    result = colorize_scene(src, tmp_path / "o.tif", unet, device="cpu", bounds=bounds,
                            preview=tmp_path / "p.png")
    col, row, width, height = result["window"]
    window = Window(col, row, width, height)
    # the rectangle's lon/lat box, back on the UTM grid, is turned by the meridians'
    # convergence (about 1 degree here): a row or two more above and below
    assert 68 <= row <= 70 and 130 <= row + height <= 132
    assert 14 <= col <= 15 and 125 <= col + width <= 126
    assert (result["width"], result["height"]) == (width, height)
    with rasterio.open(tmp_path / "o.tif") as out:
        assert out.transform == window_transform(window, transform)
        assert out.tags()["GEOCOLOR_WINDOW"].startswith(
            f"rows {row}-{row + height}, columns {col}-{col + width} of the input (--bounds ")
    got = read_with_mask(tmp_path / "o.tif")
    assert (got[3] == 0).any() and (got[3] == 255).any()
    np.testing.assert_array_equal(got, crop_of_whole(tmp_path, src, window, unet))
    assert (tmp_path / "p.png").is_file()


def test_bounds_on_a_gcp_scene_cut_its_rows_and_columns(tmp_path: Path, unet: Path) -> None:
    """A GRD in radar geometry: the window follows its own rows and columns, and the
    output's GCPs move with it."""
    src = write_raster(tmp_path / "grd.tif", db_scene(H, W, bands=1), crs=None,
                       gcps=corner_gcps(H, W), descriptions=("VV",))
    bounds = (10.1, 49.75, 10.3, 49.95)
    with rasterio.open(src) as ds:
        window = window_of_bounds(ds, bounds)
        gcps, crs = ds.gcps
    colorize_scene(src, tmp_path / "o.tif", unet, device="cpu", bounds=bounds)
    with rasterio.open(tmp_path / "o.tif") as out:
        moved, out_crs = out.gcps
        assert (out.height, out.width) == (window.height, window.width)
    assert out_crs == crs
    assert [(g.row, g.col) for g in moved] == [
        (g.row - window.row_off, g.col - window.col_off) for g in gcps]
    # every corner of the bounds lands inside the output
    with GCPTransformer(moved) as t:
        rows, cols = t.rowcol([10.1, 10.3, 10.1, 10.3], [49.75, 49.75, 49.95, 49.95],
                              op=lambda v: v)
    assert all(0 <= r <= window.height for r in rows) and all(0 <= c <= window.width for c in cols)
    assert 0 < window.width < W and 0 < window.height < H
    np.testing.assert_array_equal(read_with_mask(tmp_path / "o.tif"),
                                  crop_of_whole(tmp_path, src, window, unet))


def test_bounds_on_an_rpc_scene_move_its_rpcs(tmp_path: Path, unet: Path) -> None:
    src = rpc_scene(tmp_path / "rpc.tif", H, W)
    colorize_scene(src, tmp_path / "o.tif", unet, device="cpu",
                   bounds="13.45,44.95,13.55,45.05")
    with rasterio.open(src) as ds, rasterio.open(tmp_path / "o.tif") as out:
        # lines 37.5-112.5 and samples 66.7-133.3 hold that area; GDAL puts an RPC's line
        # and sample at pixel centres: rows 38-113, columns 67.2-133.8
        assert (out.height, out.width) == (75, 67)
        assert out.rpcs.line_off == ds.rpcs.line_off - 38
        assert out.rpcs.samp_off == ds.rpcs.samp_off - 67
    np.testing.assert_array_equal(read_with_mask(tmp_path / "o.tif"),
                                  crop_of_whole(tmp_path, src, Window(67, 38, 67, 75), unet))


def test_bounds_outside_the_scene_are_refused_before_any_work(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "grd.tif", db_scene(H, W, bands=1), crs=None,
                       gcps=corner_gcps(H, W), descriptions=("VV",))
    network = ChannelCopy()
    with pytest.raises(RasterError, match=r"lies outside the scene \(the scene spans lon "
                                          r"9\.900\.\.10\.500, lat 49\.600\.\.50\.100\)"):
        colorize_scene(src, tmp_path / "o.tif", copy_model(network), device="cpu",
                       bounds=(-118.5, 33.9, -118.2, 34.1))
    bare = write_raster(tmp_path / "bare.tif", db_scene(40, 50, bands=1), crs=None,
                        descriptions=("VV",))
    with pytest.raises(RasterError, match="no georeference"):
        colorize_scene(bare, tmp_path / "o.tif", copy_model(network), device="cpu",
                       bounds=(10.1, 49.75, 10.3, 49.95))
    assert network.calls == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.tif", "grd.tif"]


@pytest.mark.parametrize("text", ["10,50,11", "a,b,c,d", "11,49,10,50", "10,51,11,50",
                                  "10,-91,11,50", "170,0,190,1"])
def test_bounds_that_are_not_an_area_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--bounds"):
        parse_bounds(text)


def test_parse_bounds_takes_text_or_numbers() -> None:
    assert parse_bounds("-118.5, 33.9, -118.2, 34.1") == (-118.5, 33.9, -118.2, 34.1)
    assert parse_bounds("-118.5 33.9 -118.2 34.1") == (-118.5, 33.9, -118.2, 34.1)
    assert parse_bounds([-118.5, 33.9, -118.2, 34.1]) == (-118.5, 33.9, -118.2, 34.1)


def test_cli_bounds(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["colorize", str(tmp_path / "x.tif"), "-o",
                                    str(tmp_path / "o.tif"), "--bounds", "11,49,10,50"])
    assert bad.exit_code == 2 and "needs west < east" in bad.output


def test_a_batch_skips_the_scenes_outside_the_bounds(tmp_path: Path) -> None:
    """`find scenes | geocolor colorize - --bounds ...`: the scenes that do not cover the area
    are skipped with a line each, the run succeeds; if none covers it, it fails."""
    import json

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_raster(scenes / "here.tif", db_scene(H, W, bands=1), crs=None, gcps=corner_gcps(H, W),
                 descriptions=("VV",))
    write_raster(scenes / "elsewhere.tif", db_scene(40, 50, bands=1), descriptions=("VV",))
    model = save_tiny_sar_model(tmp_path / "m.model")
    args = ["colorize", str(scenes), "-o", str(tmp_path / "out"), "-m", str(model), "--json"]
    r = CliRunner().invoke(main, [*args, "--bounds", "10.1,49.75,10.3,49.95"])
    assert r.exit_code == 0, r.output
    records = {Path(d["input"]).name: d for d in map(json.loads, r.stdout.splitlines())}
    assert records["here.tif"]["status"] == "ok"
    assert records["elsewhere.tif"]["status"] == "skipped"
    assert "lies outside the scene" in records["elsewhere.tif"]["reason"]
    assert "geocolor: skipped: " in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["here.tif"]
    r = CliRunner().invoke(main, [*args, "--bounds", "-118.5,33.9,-118.2,34.1", "--overwrite"])
    assert r.exit_code == 1
    assert "geocolor: error: no input covers --bounds -118.5,33.9,-118.2,34.1" in r.stderr
    # a shard of an array job: the other shards may hold the scenes that cover the area
    r = CliRunner().invoke(main, [*args, "--bounds", "-118.5,33.9,-118.2,34.1", "--overwrite",
                                  "--shard", "0/2"])
    assert r.exit_code == 0 and "--shard 0/2: none of its inputs covers --bounds" in r.stderr
