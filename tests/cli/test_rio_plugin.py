"""``rio geocolor INPUT OUTPUT``: the rasterio CLI plugin (issue 9)."""
from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from colorize_fakes import db_scene, save_tiny_sar_model, write_raster  # noqa: E402

from geocolor.cli.rio import geocolor as rio_geocolor  # noqa: E402


@pytest.fixture(scope="module")
def rio():
    """rasterio's ``rio`` group with the plugin (registered by the entry point when installed)."""
    from rasterio.rio.main import main_group

    if "geocolor" not in main_group.commands or main_group.commands["geocolor"].name != "geocolor":
        main_group.add_command(rio_geocolor)
    return main_group


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sar_model(tmp_path_factory.mktemp("m") / "tiny.model")


def test_entry_point_is_declared_and_installed() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '[project.entry-points."rasterio.rio_plugins"]' in text
    assert 'geocolor = "geocolor.cli.rio:geocolor"' in text
    found = [ep for ep in entry_points(group="rasterio.rio_plugins") if ep.name == "geocolor"]
    if not found:
        pytest.skip("geocolor is not installed from this tree with its entry points (pip install -e .)")
    assert found[0].load() is rio_geocolor


def test_rio_geocolor_colorizes_a_scene(tmp_path: Path, rio, model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(70, 90), descriptions=("VV", "VH"))
    out = tmp_path / "o.tif"
    r = CliRunner().invoke(rio, ["geocolor", str(src), str(out), "-m", str(model), "--co", "COMPRESS=ZSTD"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    with rasterio.open(out) as o, rasterio.open(src) as i:
        assert o.count == 3 and o.shape == i.shape and o.crs == i.crs and o.transform == i.transform
        assert o.compression.name.lower() == "zstd"
    r = CliRunner().invoke(rio, ["geocolor", str(src), str(out), "-m", str(model)])
    assert r.exit_code == 1 and "exists; pass --overwrite" in r.stderr
    assert CliRunner().invoke(rio, ["geocolor", str(src), str(out), "-m", str(model), "--overwrite"]).exit_code == 0
    # the hint names --skip-existing: rio geocolor has it too
    before = out.stat().st_mtime_ns
    r = CliRunner().invoke(rio, ["geocolor", str(src), str(out), "-m", str(model), "--skip-existing"])
    assert r.exit_code == 0 and out.stat().st_mtime_ns == before


def test_rio_geocolor_errors_and_usage(tmp_path: Path, rio, model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(40, 40), descriptions=("VV", "VH"))
    r = CliRunner().invoke(rio, ["geocolor", str(src), str(tmp_path / "o.tif"), "-m", str(model),
                                 "--co", "COMPRESS=FOO"])
    assert r.exit_code == 2 and "COMPRESS=FOO" in r.output
    r = CliRunner().invoke(rio, ["geocolor", str(tmp_path / "missing.tif"), str(tmp_path / "o.tif"),
                                 "-m", str(model)])
    assert r.exit_code == 1 and "file not found" in r.stderr and "Traceback" not in r.output
    help_text = CliRunner().invoke(rio, ["--help"]).output
    assert "geocolor" in help_text


def test_plugin_and_colorize_share_their_options() -> None:
    """rio geocolor offers every single-input option of geocolor colorize."""
    from geocolor.cli.colorize import colorize

    batch_only = {"inputs", "output", "shard", "as_json"}
    wanted = {p.name for p in colorize.params} - batch_only
    offered = {p.name for p in rio_geocolor.params}
    assert wanted <= offered, wanted - offered
