"""`geocolor info` through the real CLI: rasters of every georeference kind, model files, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geocolor import __version__
from geocolor.cli import main
from geocolor.io.modelfile import ModelCard, save_model
from geocolor.models.unet import UNetGenerator


def _write(path: Path, data: np.ndarray, **profile: object) -> Path:
    count, height, width = data.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=count, dtype=data.dtype, **profile
    ) as dst:
        dst.write(data)
        dst.descriptions = tuple(["VV", "VH"][:count])
    return path


@pytest.fixture
def projected(tmp_path: Path) -> Path:
    data = np.linspace(-25, 0, 2 * 30 * 40, dtype=np.float32).reshape(2, 30, 40)
    data[:, -2:, :] = np.nan
    return _write(
        tmp_path / "proj.tif", data, crs=CRS.from_epsg(32633),
        transform=from_origin(500000, 4600000, 10, 10), nodata=np.nan,
    )


@pytest.fixture
def gcp_only(tmp_path: Path) -> Path:
    data = np.arange(25 * 20, dtype=np.uint16).reshape(1, 25, 20)
    gcps = [
        GroundControlPoint(row=0, col=0, x=10.0, y=50.0),
        GroundControlPoint(row=0, col=19, x=10.5, y=50.0),
        GroundControlPoint(row=24, col=0, x=10.0, y=49.6),
    ]
    path = _write(tmp_path / "grd.tif", data)
    with rasterio.open(path, "r+") as ds:
        ds.gcps = (gcps, CRS.from_epsg(4326))
    return path


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    return _write(tmp_path / "plain.tif", np.full((1, 8, 9), 7, dtype=np.uint8))


def run(*args: str):  # noqa: ANN201 - click Result
    return CliRunner().invoke(main, list(args))


def test_version_and_help() -> None:
    assert run("--version").output.strip() == f"geocolor, version {__version__}"
    result = run("--help")
    assert result.exit_code == 0 and "info" in result.output


def test_projected_raster_human(projected: Path) -> None:
    result = run("info", str(projected))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "40 x 30 pixels, 2 band(s)" in out
    assert "georeference: transform" in out
    assert "EPSG:32633" in out
    assert "band 1 'VV': float32" in out and "band 2 'VH'" in out
    assert "min -25, max" in out  # NaN nodata rows are excluded from the range
    assert "nodata:       nan" in out


def test_projected_raster_json(projected: Path) -> None:
    result = run("info", "--json", str(projected))
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["georeference"] == "transform"
    assert info["crs"] == "EPSG:32633"
    assert info["transform"] == [10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0]
    assert [b["description"] for b in info["bands"]] == ["VV", "VH"]
    assert info["bands"][0]["range"]["min"] == pytest.approx(-25.0, abs=0.1)
    assert info["bands"][0]["range"]["valid_fraction"] == pytest.approx(28 / 30, abs=1e-3)
    assert info["nodata"] == "nan"


def test_gcp_only_raster(gcp_only: Path) -> None:
    info = json.loads(run("info", "--json", str(gcp_only)).stdout)
    assert info["georeference"] == "gcps"
    assert info["crs"] is None
    assert info["gcps"] == {"count": 3, "crs": "EPSG:4326"}
    assert info["bands"][0]["dtype"] == "uint16"
    assert info["bands"][0]["range"]["max"] == 499
    human = run("info", str(gcp_only)).stdout
    assert "georeference: gcps" in human and "gcps:         3 (crs EPSG:4326)" in human


def test_raster_without_georeference(plain: Path) -> None:
    info = json.loads(run("info", "--json", str(plain)).stdout)
    assert info["georeference"] == "none"
    assert info["width"] == 9 and info["height"] == 8
    assert "georeference: none" in run("info", str(plain)).stdout


def test_model_file(tmp_path: Path) -> None:
    path = save_model(
        tmp_path / "g.model",
        UNetGenerator(1, 3, ngf=4, levels=5),
        ModelCard(kind="sar", arch="unet", arch_args={"ngf": 4, "levels": 5},
                  input={"tile_size": 64}, metrics={"psnr": 17.25},
                  training={"trained_on": "Los Angeles, VH, Nov 2020",
                            "limits": "one city; expect its colours elsewhere"}),
    )
    human = run("info", str(path))
    assert human.exit_code == 0, human.output
    assert "geocolor sar model, architecture unet" in human.stdout
    head = human.stdout.splitlines()[:4]  # the card's key facts come first
    assert "  trained on: Los Angeles, VH, Nov 2020" in head
    assert "  limits: one city; expect its colours elsewhere" in head
    assert "psnr: 17.25" in human.stdout
    card = json.loads(run("info", "--json", str(path)).stdout)
    assert card["type"] == "model" and card["card"]["input"]["tile_size"] == 64
    assert card["parameters"] > 0


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.tif", None, "missing.tif: file not found"),
        ("notes.txt", b"just text", "notes.txt: not a readable raster"),
        ("cut.tif", b"II*\x00\x08\x00\x00\x00\x10\x00", "cut.tif: not a readable raster"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run("info", str(path))
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.startswith("geocolor: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_truncated_real_geotiff(tmp_path: Path, projected: Path) -> None:
    cut = tmp_path / "cut.tif"
    data = projected.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = run("info", str(cut))
    assert result.exit_code == 1
    assert "cut.tif" in result.stderr and "Traceback" not in result.stderr


def test_bad_usage_exits_2() -> None:
    assert run("info").exit_code == 2
    assert run("info", "--nope", "x").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_info_gives_the_lon_lat_footprint_that_bounds_takes(
    projected: Path, gcp_only: Path, plain: Path
) -> None:
    """UTM 33N, 400 x 300 m from (500000, 4600000), on the zone's central meridian (15 E);
    GCPs: 10-10.5 E, 49.6-50 N over 19 x 24 pixel steps, extrapolated to the edges of the
    20 x 25 pixels."""
    from rasterio.warp import transform as transform_coords

    lons, lats = transform_coords("EPSG:32633", "EPSG:4326", [500000, 500400, 500400],
                                  [4600000, 4600000, 4599700])
    footprint = json.loads(run("info", str(projected), "--json").output)["footprint"]
    assert footprint[0] == pytest.approx(15.0, abs=1e-6)
    assert footprint[2] == pytest.approx(lons[1], abs=1e-6)
    assert footprint[3] == pytest.approx(lats[1], abs=1e-6)  # the north-east corner: the top
    assert footprint[1] == pytest.approx(lats[2], abs=1e-5)
    footprint = json.loads(run("info", str(gcp_only), "--json").output)["footprint"]
    assert footprint == pytest.approx([10.0, 49.6 - 0.4 / 24, 10.5 + 0.5 / 19, 50.0], abs=1e-6)
    assert "  footprint:    lon 10.00000..10.52632, lat 49.58333..50.00000 (WGS 84)" in run(
        "info", str(gcp_only)).output
    assert json.loads(run("info", str(plain), "--json").output)["footprint"] is None


def test_a_png_cut_short_is_said_to_be_damaged(tmp_path: Path) -> None:
    """GDAL reads a truncated PNG's missing rows as zeros without a word: info said nothing."""
    from PIL import Image

    rng = np.random.default_rng(0)
    whole = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    r = CliRunner().invoke(main, ["info", str(cut)])
    assert r.exit_code == 0 and "DAMAGED:" in r.stdout and "get the file again" in r.stdout
    assert "damaged" in json.loads(CliRunner().invoke(main, ["info", "--json", str(cut)]).stdout)
    r = CliRunner().invoke(main, ["info", str(whole)])
    assert r.exit_code == 0 and "DAMAGED" not in r.stdout


def test_a_link_to_nothing_says_so(tmp_path: Path) -> None:
    """A dangling or looping symbolic link was 'file not found', though the name is there."""
    (tmp_path / "a.tif").symlink_to(tmp_path / "b.tif")
    (tmp_path / "b.tif").symlink_to(tmp_path / "a.tif")
    (tmp_path / "gone.tif").symlink_to(tmp_path / "nothing.tif")
    for name in ("a.tif", "gone.tif"):
        r = CliRunner().invoke(main, ["info", str(tmp_path / name)])
        assert r.exit_code == 1 and "a symbolic link to nothing (or in a loop)" in r.stderr
    r = CliRunner().invoke(main, ["info", str(tmp_path / "nothing.tif")])
    assert r.exit_code == 1 and "file not found" in r.stderr
