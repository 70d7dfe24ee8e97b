"""``colorize --dst-crs``: the output reprojected onto a map grid, with an alpha band."""
from __future__ import annotations

import shutil
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
    write_raster,
)
from rasterio.enums import ColorInterp, Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from rasterio.warp import transform as transform_coords

from geocolor.cli import main
from geocolor.errors import RasterError, UsageError
from geocolor.infer import warp
from geocolor.infer.scene import colorize_scene
from geocolor.infer.warp import utm_zone_crs, warp_output

H, W = 150, 200


def gcp_scene(path: Path) -> Path:
    """A dB scene in radar geometry (GCPs only) whose western third is nodata."""
    db = db_scene(H, W, bands=1)[0]
    db[:, : W // 3] = -9999.0
    return write_raster(path, db, crs=None, gcps=corner_gcps(H, W), nodata=-9999.0,
                        descriptions=("VV",))


def test_a_gcp_scene_is_warped_onto_its_utm_zone_with_an_alpha_band(tmp_path: Path) -> None:
    src = gcp_scene(tmp_path / "grd.tif")
    plain = colorize_scene(src, tmp_path / "radar.tif", copy_model(), device="cpu")
    result = colorize_scene(src, tmp_path / "map.tif", copy_model(), device="cpu", dst_crs="utm")

    assert result["dst_crs"] == "EPSG:32632"  # 10.2 E, 49.8 N
    assert result["georeference"] == "transform" and plain["georeference"] == "gcps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grd.tif", "map.tif", "radar.tif"]
    with rasterio.open(tmp_path / "map.tif") as out:
        assert out.crs.to_epsg() == 32632 and out.count == 4
        assert out.colorinterp[3] == ColorInterp.alpha
        assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert out.tags()["GEOCOLOR_SOURCE"] == "grd.tif"  # the run's tags survive the warp
        assert out.tags()["GEOCOLOR_WARP"] == (
            f"EPSG:32632, pixel size {out.transform.a:.6g} metre, bilinear, from 4 GCPs")
        assert result["dst_res"] == pytest.approx(out.transform.a)
    assert_is_the_warp_of(tmp_path / "radar.tif", tmp_path / "map.tif")


def assert_is_the_warp_of(radar_path: Path, map_path: Path) -> None:
    """``map_path`` holds the radar-geometry output ``radar_path`` warped onto its grid: its
    alpha band is the input's validity and its colours are those GDAL reprojects there."""
    with rasterio.open(radar_path) as radar, rasterio.open(map_path) as out:
        rgb, alpha = out.read([1, 2, 3]), out.read(4)
        expected = np.zeros((3, out.height, out.width), np.float32)
        valid = np.zeros((out.height, out.width), np.uint8)
        gcps, gcp_crs = radar.gcps
        grid = {"gcps": gcps, "src_crs": gcp_crs, "dst_transform": out.transform,
                "dst_crs": out.crs}
        reproject(radar.read([1, 2, 3]).astype(np.float32), expected, resampling=Resampling.bilinear, **grid)
        reproject(radar.dataset_mask(), valid, resampling=Resampling.nearest, **grid)
    inside = (alpha == 255) & (valid == 255)
    assert inside.mean() > 0.4 and (alpha == 0).mean() > 0.2  # nodata third, outside the scene
    assert np.mean((alpha == 255) == (valid == 255)) > 0.97  # alpha 0 where the input was nodata
    # the colours, moved: away from the mask's edge, where GDAL leaves nodata out of the bilinear
    # (the warper approximates the GCP transform to 1/8 px and scales its kernel: ~1 DN apart)
    core = (inside[1:-1, 1:-1] & inside[:-2, 1:-1] & inside[2:, 1:-1]
            & inside[1:-1, :-2] & inside[1:-1, 2:])
    got, want = rgb[0, 1:-1, 1:-1][core].astype(np.float64), expected[0, 1:-1, 1:-1][core]
    assert np.abs(got - want).mean() < 2.0 and np.corrcoef(got, want)[0, 1] > 0.99


@pytest.mark.parametrize("alpha", [False, True])
def test_dst_res_puts_the_output_on_a_grid_aligned_to_that_pixel_size(
    tmp_path: Path, alpha: bool
) -> None:
    src = gcp_scene(tmp_path / "grd.tif")
    colorize_scene(src, tmp_path / "radar.tif", copy_model(), device="cpu", alpha=alpha)
    suggested = colorize_scene(src, tmp_path / "suggested.tif", copy_model(), device="cpu",
                               dst_crs="utm")
    result = colorize_scene(src, tmp_path / "map.tif", copy_model(), device="cpu",
                            dst_crs="utm", dst_res=250.0, alpha=alpha)

    assert 170 < suggested["dst_res"] < 180  # GDAL's own grid: about the scene's pixel size
    assert (result["dst_crs"], result["dst_res"]) == ("EPSG:32632", 250.0)
    with rasterio.open(tmp_path / "suggested.tif") as gdal, rasterio.open(tmp_path / "map.tif") as out:
        t = out.transform
        assert (t.a, t.e, t.b, t.d) == (250.0, -250.0, 0.0, 0.0)
        assert t.c % 250 == 0 and t.f % 250 == 0  # pixel edges on multiples of 250 m
        # the suggested extent, widened by less than a pixel on each side
        left, bottom, right, top = gdal.bounds
        assert 0 <= left - out.bounds.left < 250 and 0 <= out.bounds.right - right < 250
        assert 0 <= bottom - out.bounds.bottom < 250 and 0 <= out.bounds.top - top < 250
        assert out.count == 4 and out.colorinterp[3] == ColorInterp.alpha
        assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert_is_the_warp_of(tmp_path / "radar.tif", tmp_path / "map.tif")


@pytest.mark.parametrize("cog", [True, False])
def test_an_alpha_output_keeps_one_alpha_band(tmp_path: Path, cog: bool) -> None:
    """With --alpha the output has an alpha band already: the warp carries it."""
    src = gcp_scene(tmp_path / "grd.tif")
    colorize_scene(src, tmp_path / "mask.tif", copy_model(), device="cpu", dst_crs="utm")
    colorize_scene(src, tmp_path / "alpha.tif", copy_model(), device="cpu", dst_crs="utm",
                   alpha=True, cog=cog)
    with rasterio.open(tmp_path / "mask.tif") as a, rasterio.open(tmp_path / "alpha.tif") as b:
        assert b.count == 4 and b.colorinterp[3] == ColorInterp.alpha
        assert (a.transform, a.shape) == (b.transform, b.shape)
        assert np.mean(a.read(4) == b.read(4)) > 0.99


def test_a_map_grid_scene_to_lon_lat_as_a_plain_geotiff_with_the_users_options(
    tmp_path: Path,
) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(64, 80, bands=1), descriptions=("VV",))
    result = colorize_scene(src, tmp_path / "o.tif", copy_model(), device="cpu", cog=False,
                            dst_crs="EPSG:4326", creation_options={"COMPRESS": "ZSTD"})
    assert result["dst_crs"] == "EPSG:4326"
    with rasterio.open(tmp_path / "o.tif") as out:
        assert out.crs.to_epsg() == 4326 and out.count == 4
        assert out.compression.name.lower() == "zstd" and out.profile["tiled"]
        assert out.colorinterp[3] == ColorInterp.alpha
        lon, lat = out.transform * (out.width / 2, out.height / 2)
        assert 13.2 < lon < 14.2 and 44.9 < lat < 45.3  # UTM 33N: 100 km west of 15 E, 45 N
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif", "s.tif"]


@pytest.mark.parametrize("res", [None, 250.0])  # a warped VRT, or rasterio.warp.reproject
def test_the_warp_does_not_depend_on_its_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, res: float | None
) -> None:
    monkeypatch.setattr(warp, "WARP_ROWS", 16)  # many stripes, several in flight at once
    colorize_scene(gcp_scene(tmp_path / "grd.tif"), tmp_path / "radar.tif", copy_model(),
                   device="cpu")
    warped = []
    for threads in (1, 3):
        out = shutil.copy(tmp_path / "radar.tif", tmp_path / f"threads{threads}.tif")
        warp_output(Path(out), "utm", cog=True, options={}, res=res, threads=threads)
        with rasterio.open(out) as ds:
            warped.append(ds.read())
    assert warped[0][3].any()
    np.testing.assert_array_equal(warped[0], warped[1])


@pytest.mark.parametrize("res", [None, 200.0])
def test_an_rpc_scene_is_warped_by_its_rpcs(tmp_path: Path, res: float | None) -> None:
    result = colorize_scene(rpc_scene(tmp_path / "rpc.tif", H, W), tmp_path / "o.tif",
                            copy_model(),
                            device="cpu", dst_crs="utm", dst_res=res)
    assert result["dst_crs"] == "EPSG:32633"
    with rasterio.open(tmp_path / "o.tif") as out:
        lons, lats = transform_coords(out.crs, "EPSG:4326", [out.bounds.left, out.bounds.right],
                                      [out.bounds.bottom, out.bounds.top])
        assert lons == pytest.approx([13.35, 13.65], abs=0.01)
        assert lats == pytest.approx([44.9, 45.1], abs=0.01)
        assert (out.read(4) == 255).mean() > 0.9  # a north-up rectangle: nearly all inside
        if res is not None:
            assert out.transform.a == res and out.transform.c % res == 0


@pytest.mark.parametrize("lon, lat, epsg", [(-118.2, 34.0, 32611), (10.0, -30.0, 32732),
                                            (179.99, 0.0, 32660), (-180.0, 0.0, 32601)])
def test_utm_zone(lon: float, lat: float, epsg: int) -> None:
    assert utm_zone_crs(lon, lat).to_epsg() == epsg


def test_utm_of_a_gcp_scene_across_the_antimeridian(tmp_path: Path) -> None:
    from rasterio.control import GroundControlPoint

    gcps = [GroundControlPoint(row=r, col=c, x=x, y=-17.0 - r / H * 0.5, z=0.0)
            for r in (0, H // 2, H) for c, x in ((0, 179.7), (W // 2, 179.95), (W, -179.8))]
    src = write_raster(tmp_path / "fiji.tif", db_scene(H, W, bands=1), crs=None, gcps=gcps,
                       descriptions=("VV",))
    with rasterio.open(src) as ds:
        assert warp._centre_lonlat(ds)[0] == pytest.approx(179.95)  # not the mean, ~60 E
    result = colorize_scene(src, tmp_path / "o.tif", copy_model(), device="cpu", dst_crs="utm")
    assert result["dst_crs"] == "EPSG:32760"  # zone 60 south


def test_what_cannot_be_warped_is_refused_before_any_work(tmp_path: Path) -> None:
    src = gcp_scene(tmp_path / "grd.tif")
    with pytest.raises(UsageError, match="needs a GeoTIFF output"):
        colorize_scene(src, tmp_path / "o.png", copy_model(), device="cpu", dst_crs="utm")
    with pytest.raises(UsageError, match="not a CRS"):
        colorize_scene(src, tmp_path / "o.tif", copy_model(), device="cpu", dst_crs="EPSG:99999")
    with pytest.raises(UsageError, match="give --dst-crs too"):
        colorize_scene(src, tmp_path / "o.tif", copy_model(), device="cpu", dst_res=10.0)
    with pytest.raises(UsageError, match="positive pixel size"):
        colorize_scene(src, tmp_path / "o.tif", copy_model(), device="cpu", dst_crs="utm",
                       dst_res=0.0)
    network = ChannelCopy()
    model = copy_model(network)
    # metres meant, degrees given: a 2 x 2 output; centimetres: 10^7 times the pixels
    with pytest.raises(UsageError, match=r"2 x 2 output .*unit \(degree\); GDAL suggests"):
        colorize_scene(src, tmp_path / "o.tif", model, device="cpu", dst_crs="EPSG:4326",
                       dst_res=10.0)
    with pytest.raises(UsageError, match=r"unit \(metre\)"):
        colorize_scene(src, tmp_path / "o.tif", model, device="cpu", dst_crs="utm",
                       dst_res=0.01)
    bare = write_raster(tmp_path / "bare.tif", db_scene(40, 50, bands=1), crs=None,
                        descriptions=("VV",))
    with pytest.raises(RasterError, match="no georeference"):
        colorize_scene(bare, tmp_path / "o.tif", model, device="cpu", dst_crs="utm")
    # a transform without a CRS does not place a raster on the map either
    no_crs = tmp_path / "no_crs.tif"
    with rasterio.open(no_crs, "w", driver="GTiff", width=50, height=40, count=1,
                       dtype="float32", transform=from_origin(500000, 4600000, 10, 10)) as ds:
        ds.write(db_scene(40, 50, bands=1))
        ds.descriptions = ("VV",)
    for dst_crs in ("utm", "EPSG:4326"):
        with pytest.raises(RasterError, match="no_crs.tif: has no georeference"):
            colorize_scene(no_crs, tmp_path / "o.tif", model, device="cpu", dst_crs=dst_crs)
    assert network.calls == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.tif", "grd.tif", "no_crs.tif"]


def test_cli_dst_crs(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["colorize", str(tmp_path / "x.tif"), "-o",
                                    str(tmp_path / "o.tif"), "--dst-crs", "not-a-crs"])
    assert bad.exit_code == 2 and "--dst-crs 'not-a-crs': not a CRS" in bad.output
    alone = CliRunner().invoke(main, ["colorize", str(tmp_path / "x.tif"), "-o",
                                      str(tmp_path / "o.tif"), "--dst-res", "10"])
    assert alone.exit_code == 2 and "--dst-res 10 sets the pixel size" in alone.output


def test_a_run_stopped_during_the_warp_leaves_neither_output_nor_preview(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview is put in place after the output: Ctrl-C during the warp used to leave the
    preview of an output that was never written."""
    import geocolor.infer.scene as scene

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    src = gcp_scene(tmp_path / "grd.tif")
    monkeypatch.setattr(scene, "warp_output", stopped)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        colorize_scene(src, out / "map.tif", copy_model(), device="cpu", dst_crs="utm",
                       preview=out / "p.png")
    assert list(out.iterdir()) == []  # no output, no preview, no temporaries
    monkeypatch.undo()
    colorize_scene(src, out / "map.tif", copy_model(), device="cpu", dst_crs="utm",
                   preview=out / "p.png")
    assert sorted(p.name for p in out.iterdir()) == ["map.tif", "p.png"]
