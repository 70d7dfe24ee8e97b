"""``geocolor colorize`` through the real CLI: pipelines, exit codes and every error."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from colorize_fakes import (  # noqa: E402
    AMP_VH,
    corner_gcps,
    db_scene,
    save_tiny_sar_model,
    save_tiny_semantic_model,
    smooth_field,
    write_raster,
)

from geocolor.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sar_model(tmp_path_factory.mktemp("m") / "tiny.model")


@pytest.fixture(scope="module")
def semantic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_semantic_model(tmp_path_factory.mktemp("m") / "semantic.model")


def scene(path: Path, h: int = 70, w: int = 90, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_raster(path, db_scene(h, w, seed), descriptions=("VV", "VH"))


def run(args: list[str], stdin: str | None = None):
    return CliRunner().invoke(main, args, input=stdin)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_one_scene(tmp_path: Path, model: Path) -> None:
    src = scene(tmp_path / "s.tif")
    r = run(["-q", "colorize", str(src), "-o", str(tmp_path / "o.tif"), "-m", str(model),
             "--preview", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "o.tif")
    assert (tmp_path / "p.png").is_file()
    with rasterio.open(tmp_path / "o.tif") as b, rasterio.open(src) as a:
        assert b.crs == a.crs and b.transform == a.transform and b.shape == a.shape


def test_one_scene_into_a_new_directory_named_with_a_slash(tmp_path: Path, model: Path) -> None:
    src = scene(tmp_path / "s.tif")
    r = run(["-q", "colorize", str(src), "-o", f"{tmp_path / 'new'}/", "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "new" / "s.tif")
    assert (tmp_path / "new" / "s.tif").is_file()


def test_directory_mirrors_names(tmp_path: Path, model: Path) -> None:
    scene(tmp_path / "in" / "a.tif")
    scene(tmp_path / "in" / "sub" / "b.tif")
    (tmp_path / "in" / "notes.txt").write_text("not a raster, not picked up")
    r = run(["-q", "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model),
             "--preview", str(tmp_path / "prev")])
    assert r.exit_code == 0, r.output
    assert sorted(lines(r.stdout)) == [str(tmp_path / "out" / "a.tif"), str(tmp_path / "out" / "sub" / "b.tif")]
    assert (tmp_path / "prev" / "sub" / "b.preview.png").is_file()


def test_stdin_json_and_a_bad_file_among_good_ones(tmp_path: Path, model: Path) -> None:
    good = [scene(tmp_path / f"g{i}.tif", seed=i) for i in range(2)]
    bad = tmp_path / "bad.tif"
    bad.write_text("this is not a raster")
    stdin = "\n".join([str(good[0]), str(bad), "", str(good[1])]) + "\n"
    r = run(["-q", "colorize", "-", "-o", str(tmp_path / "out"), "-m", str(model), "--json"], stdin)
    assert r.exit_code == 1
    records = [json.loads(line) for line in lines(r.stdout)]
    assert [rec["status"] for rec in records] == ["ok", "failed", "ok"]
    assert set(records[0]) >= {"input", "output", "status", "error", "tiles", "seconds"}
    assert records[0]["tiles"] > 0 and records[0]["error"] is None
    assert "not a readable raster" in records[1]["error"]
    errors = lines(r.stderr)
    assert len(errors) == 1 and errors[0].startswith("geocolor: error: ") and str(bad) in errors[0]
    assert (tmp_path / "out" / "g1.tif").is_file()


def test_shards_partition_the_inputs(tmp_path: Path, model: Path) -> None:
    for i in range(5):
        scene(tmp_path / "in" / f"s{i}.tif", 20, 20, seed=i)
    outs = []
    for shard in ("0/2", "1/2"):
        r = run(["-q", "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model),
                 "--shard", shard])
        assert r.exit_code == 0, r.output
        outs.append(set(lines(r.stdout)))
    assert len(outs[0]) == 3 and len(outs[1]) == 2 and not outs[0] & outs[1]
    r = run(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--shard", "2/2"])
    assert r.exit_code == 2 and "--shard" in r.output


def test_skip_existing_and_overwrite(tmp_path: Path, model: Path) -> None:
    src = scene(tmp_path / "s.tif")
    out = tmp_path / "o.tif"
    args = ["-q", "colorize", str(src), "-o", str(out), "-m", str(model)]
    assert run(args).exit_code == 0
    r = run(args)
    assert r.exit_code == 1 and "exists; pass --overwrite" in r.stderr
    r = run(args + ["--skip-existing", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "skipped"
    before = out.stat().st_mtime_ns
    assert run(args + ["--overwrite"]).exit_code == 0 and out.stat().st_mtime_ns != before
    assert run(args + ["--overwrite", "--skip-existing"]).exit_code == 2


def test_plain_png_with_a_sar_model(tmp_path: Path, model: Path) -> None:
    from PIL import Image

    Image.fromarray((smooth_field(50, 60) * 255).astype(np.uint8)).save(tmp_path / "chip.png")
    r = run(["-q", "colorize", str(tmp_path / "chip.png"), "-o", str(tmp_path / "c.png"), "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "c.png").size == (60, 50) and Image.open(tmp_path / "c.png").mode == "RGB"


def _error(args: list[str], stdin: str | None = None) -> str:
    r = run(["-q", "colorize", *args], stdin)
    assert r.exit_code == 1, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    errors = lines(r.stderr)
    assert len(errors) == 1, errors
    return errors[0]


def test_each_error_is_one_clear_line(tmp_path: Path, model: Path, semantic: Path) -> None:
    m = ["-m", str(model)]
    out = str(tmp_path / "out.tif")
    assert "file not found" in _error([str(tmp_path / "missing.tif"), "-o", out, *m])
    (tmp_path / "empty").mkdir()
    assert "holds no rasters" in _error([str(tmp_path / "empty"), "-o", str(tmp_path / "o"), *m])
    (tmp_path / "text.tif").write_text("hello")
    assert "not a readable raster" in _error([str(tmp_path / "text.tif"), "-o", out, *m])
    import rasterio.shutil

    whole = scene(tmp_path / "whole.tif", 200, 200)
    rasterio.shutil.copy(whole, tmp_path / "whole_cog.tif", driver="COG")  # header first, then data
    for name, source in (("t1.tif", whole), ("t2.tif", tmp_path / "whole_cog.tif")):
        (tmp_path / name).write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    assert "not a readable raster" in _error([str(tmp_path / "t1.tif"), "-o", out, *m])
    line = _error([str(tmp_path / "t2.tif"), "-o", out, *m])
    # libtiff's own "Read error at row ..." reaches geocolor only through rasterio >= 1.4's error
    # chain; rasterio 1.3 keeps just GDAL's last message ("... TIFFReadEncodedTile() failed.").
    assert "corrupt or truncated raster" in line and "previous exception" not in line
    assert "Read error" in line or "TIFFReadEncodedTile" in line, line
    slc = write_raster(tmp_path / "slc.tif", (np.ones((1, 20, 20)) * (1 + 1j)).astype(np.complex64),
                       gcps=corner_gcps(20, 20))
    assert "complex (SLC)" in _error([str(slc), "-o", out, *m])
    rgb16 = write_raster(tmp_path / "rgb.tif", np.ones((3, 20, 20), np.uint16))
    assert "has 3 bands" in _error([str(rgb16), "-o", out, *m])
    vh = write_raster(tmp_path / "vh.tif", db_scene(20, 20, bands=1), descriptions=("VH",))
    assert "trained on VV" in _error([str(vh), "-o", out, *m])
    empty = write_raster(tmp_path / "nan.tif", np.full((20, 20), np.nan, np.float32))
    assert "all nodata" in _error([str(empty), "-o", out, *m])
    src = scene(tmp_path / "s.tif")
    (tmp_path / "afile").write_text("x")
    assert "cannot create the output directory" in _error([str(src), "-o", str(tmp_path / "afile" / "o.tif"), *m])
    assert "output is the input" in _error([str(src), "-o", str(src), *m, "--overwrite"])
    (tmp_path / "bad.model").write_bytes(b"not a model")
    assert "not a geocolor model file" in _error([str(src), "-o", out, "-m", str(tmp_path / "bad.model")])
    assert "semantic model" in _error([str(src), "-o", out, "-m", str(semantic)])


def test_missing_default_model_says_pass_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import geocolor.io.modelfile as modelfile

    monkeypatch.setattr(modelfile, "packaged_model_path", lambda kind: tmp_path / f"{kind}_default.model")
    src = scene(tmp_path / "s.tif")
    line = _error([str(src), "-o", str(tmp_path / "o.tif")])
    assert "no packaged default sar model" in line and "--model" in line


def test_bad_usage_exits_2(tmp_path: Path, model: Path) -> None:
    src = str(scene(tmp_path / "s.tif"))
    o = str(tmp_path / "o.tif")
    for args in (
        [src, "-o", o, "--co", "NOEQUALS"],
        [src, "-o", o, "--input-scale", "kelvin"],
        [src, "-o", o, "--device", "tpu"],
        [src, "-o", o, "--batch-size", "0"],
        [src, "-o", o, "-m", str(model), "--mask-out", str(tmp_path / "m.png")],
        [src, "-o", o, "-m", str(model), "--tile-size", "72"],
        [src],
    ):
        r = run(["colorize", *args])
        assert r.exit_code == 2, (args, r.output)


def test_model_card_picks_the_pipeline(tmp_path: Path, model: Path, semantic: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --model: GeoTIFF scenes get the SAR default, plain photos the semantic default."""
    from PIL import Image

    import geocolor.io.modelfile as modelfile

    defaults = {"sar": model, "semantic": semantic}
    monkeypatch.setattr(modelfile, "packaged_model_path", lambda kind: defaults[kind])
    scene(tmp_path / "in" / "s.tif")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "in" / "photo.jpg")
    r = run(["-q", "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--json",
             "--mask-out", str(tmp_path / "masks")])
    records = {Path(rec["input"]).name: rec for rec in map(json.loads, lines(r.stdout))}
    assert records["photo.jpg"]["status"] == "ok" and records["photo.jpg"]["kind"] == "semantic"
    assert Image.open(tmp_path / "out" / "photo.jpg").size == (50, 40)
    assert (tmp_path / "masks" / "photo.mask.png").is_file()
    # --mask-out does not apply to the SAR scene: that input fails, the photo does not
    assert records["s.tif"]["status"] == "failed" and "--mask-out" in records["s.tif"]["error"]
    assert r.exit_code == 1
    r = run(["-q", "colorize", str(tmp_path / "in" / "s.tif"), "-o", str(tmp_path / "s.tif"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["kind"] == "sar"


@pytest.mark.slow
def test_sigterm_mid_scene_leaves_nothing(tmp_path: Path, model: Path) -> None:
    """A real `kill` (SIGTERM) while rows are being written: no output, no temporary files."""
    import os
    import signal
    import subprocess
    import time

    src = scene(tmp_path / "big.tif", 1600, 1600)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "geocolor", "-q", "colorize", str(src), "-o", str(out_dir / "o.tif"),
         "-m", str(model), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    deadline = time.monotonic() + 60
    while not any(".partial" in p.name for p in out_dir.iterdir()):
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)  # let it write some rows
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.decode().strip().splitlines() == ["geocolor: terminated"]
    assert list(out_dir.iterdir()) == []


def test_auto_input_scale_is_logged(tmp_path: Path) -> None:
    model = save_tiny_sar_model(tmp_path / "amp.model", AMP_VH)  # GRD amplitude / scene p99
    dn = (np.arange(40 * 50).reshape(40, 50) % 300 + 5).astype(np.uint16)
    src = write_raster(tmp_path / "grd.tif", dn, gcps=corner_gcps(40, 50))
    r = run(["colorize", str(src), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert "input scale dn (uint16 integers are GRD digital numbers" in r.stderr
    r = run(["colorize", str(src), "-o", str(tmp_path / "o2.tif"), "-m", str(model), "--input-scale", "amplitude"])
    assert "input scale amplitude (--input-scale)" in r.stderr


def test_uncalibrated_grd_numbers_for_a_db_model_are_one_clear_error(
    tmp_path: Path, model: Path
) -> None:
    """The dB model would see them as 30-60 dB: a white scene, colourless output."""
    dn = (np.arange(40 * 50).reshape(40, 50) % 300 + 40).astype(np.uint16)
    src = write_raster(tmp_path / "grd.tif", dn, gcps=corner_gcps(40, 50))
    r = run(["colorize", str(src), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "GRD digital numbers are not calibrated" in errors[0]
    assert "calibrated sigma0" in errors[0] and not (tmp_path / "o.tif").exists()


def test_cli_input_scales_match_the_engine() -> None:
    from geocolor.cli.colorize import INPUT_SCALES as cli_scales
    from geocolor.infer.sarinput import INPUT_SCALES

    assert cli_scales == INPUT_SCALES
