"""``geocolor colorize`` and ``info``: nothing surprising (issue 9).

Model choice (``--model sar|semantic``), nothing left behind, one clean line for
every user error with the right exit code (2 usage, 1 failure).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from colorize_fakes import (  # noqa: E402
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


@pytest.fixture()
def packaged(model: Path, semantic: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The tiny models stand in for the packaged ones (which may be retrained at any time)."""
    import geocolor.io.modelfile as modelfile

    defaults = {"sar": model, "semantic": semantic}
    monkeypatch.setattr(modelfile, "packaged_model_path", lambda kind: defaults[kind])
    return defaults


def scene(path: Path, h: int = 70, w: int = 90, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_raster(path, db_scene(h, w, seed), descriptions=("VV", "VH"))


def grey_png(path: Path, colour: bool = False) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    grey = (smooth_field(48, 64) * 255).astype(np.uint8)
    if colour:
        rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
        Image.fromarray(rgb).save(path)
    else:
        Image.fromarray(grey).save(path)
    return path


def run(args: list[str], stdin: str | None = None):
    return CliRunner().invoke(main, args, input=stdin)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def one_error_line(r, code: int) -> str:
    assert r.exit_code == code, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    errors = lines(r.stderr)
    if code == 2:  # click's usage errors: "Usage: ...", "Try ...", blank, "Error: ..."
        errors = [line for line in errors if line.startswith("Error")]
    assert len(errors) == 1, r.stderr
    return errors[0]


# ----------------------------------------------------------------------------- item 2: which model


def test_model_names_pick_the_packaged_models(tmp_path: Path, packaged: dict[str, Path]) -> None:
    png = grey_png(tmp_path / "photo.png")
    r = run(["colorize", str(png), "-o", str(tmp_path / "a.png"), "--model", "sar", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kind"] == "sar"
    assert "sar model tiny.model (--model sar)" in r.stderr
    r = run(["colorize", str(png), "-o", str(tmp_path / "b.png"), "-m", "semantic", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kind"] == "semantic"


def test_grey_chip_named_like_sar_gets_the_sar_model(tmp_path: Path, packaged: dict[str, Path]) -> None:
    """Kaggle s1 chips are grey PNGs: without --model they must not go to the photo model."""
    chips = [
        grey_png(tmp_path / "v_2" / "agri" / "s1" / "ROIs1970_fall_s1_13_p10.png"),
        grey_png(tmp_path / "chips" / "scene_sar_7.png"),
    ]
    photo = grey_png(tmp_path / "photos" / "grandma.png")
    colour = grey_png(tmp_path / "s1" / "colour_s1_1.png", colour=True)
    r = run(["colorize", *map(str, [*chips, photo, colour]), "-o", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    kinds = {Path(rec["input"]).name: rec["kind"] for rec in map(json.loads, lines(r.stdout))}
    assert kinds == {"ROIs1970_fall_s1_13_p10.png": "sar", "scene_sar_7.png": "sar",
                     "grandma.png": "semantic", "colour_s1_1.png": "semantic"}
    # every input's choice and the reason are logged
    assert "ROIs1970_fall_s1_13_p10.png: sar model tiny.model (a grey 8-bit image named like SAR" in r.stderr
    assert "grandma.png: semantic model semantic.model (a plain image (pass --model sar" in r.stderr
    scene_tif = scene(tmp_path / "s.tif")
    r = run(["colorize", str(scene_tif), "-o", str(tmp_path / "s_out.tif")])
    assert r.exit_code == 0 and "sar model tiny.model (a georeferenced or non-8-bit raster)" in r.stderr


def test_info_names_the_packaged_model(packaged: dict[str, Path]) -> None:
    r = run(["info", "sar", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["type"] == "model" and info["card"]["kind"] == "sar"
    assert json.loads(run(["info", "semantic", "--json"]).stdout)["card"]["kind"] == "semantic"


def test_evaluate_and_export_take_the_packaged_names_too(
    tmp_path: Path, packaged: dict[str, Path]
) -> None:
    """As colorize's --model and info: 'semantic' and 'sar' name the packaged models."""
    photos = tmp_path / "photos" / "raw"
    grey_png(photos / "a.png", colour=True)
    r = run(["evaluate", "semantic", str(photos.parent), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == str(packaged["semantic"])
    pytest.importorskip("onnx")
    r = run(["export", "sar", "-o", str(tmp_path / "sar.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sar.onnx").is_file()


# ----------------------------------------------------------------------------- items 3, 4: nothing left behind


@pytest.mark.slow
def test_kill_9_leftovers_are_removed_by_the_next_run(tmp_path: Path, model: Path) -> None:
    src = scene(tmp_path / "big.tif", 1600, 1600)
    out = tmp_path / "out"
    out.mkdir()
    args = [sys.executable, "-m", "geocolor", "-q", "colorize", str(src), "-o", str(out / "o.tif"),
            "-m", str(model), "--device", "cpu"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not any(".partial" in p.name for p in out.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    leftovers = [p.name for p in out.iterdir()]
    assert leftovers and all(".partial" in name for name in leftovers)  # what kill -9 leaves
    done = subprocess.run(args, capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir()] == ["o.tif"]


def test_no_empty_output_directory_when_every_input_fails(tmp_path: Path, model: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.tif", "sub/b.tif"):
        (tmp_path / "in" / name).write_text("not a raster")
    r = run(["-q", "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model),
             "--preview", str(tmp_path / "prev")])
    assert r.exit_code == 1 and len(lines(r.stderr)) == 2
    assert not (tmp_path / "out").exists() and not (tmp_path / "prev").exists()
    # a directory that existed before stays, with what it held
    (tmp_path / "out").mkdir()
    r = run(["-q", "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model)])
    assert r.exit_code == 1 and (tmp_path / "out").is_dir() and list((tmp_path / "out").iterdir()) == []
    # one good input among bad ones keeps its directory
    scene(tmp_path / "in" / "sub" / "good.tif")
    r = run(["-q", "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "-m", str(model)])
    assert r.exit_code == 1 and (tmp_path / "out2" / "sub" / "good.tif").is_file()


# ----------------------------------------------------------------------------- items 6, 7, 9: usage errors


@pytest.mark.parametrize("co,driver_text", [
    ("COMPRESS=FOO", "'FOO' is an unexpected value for COMPRESS"),
    ("BLOCKSIZE=13", "BLOCKSIZE"),
    ("NOSUCHOPTION=1", "does not support creation option NOSUCHOPTION"),
])
def test_creation_options_are_checked_before_any_work(tmp_path: Path, model: Path, co: str,
                                                      driver_text: str) -> None:
    src = scene(tmp_path / "s.tif")
    out = tmp_path / "new" / "o.tif"
    line = one_error_line(run(["colorize", str(src), "-o", str(out), "-m", str(model), "--co", co]), 2)
    assert f"--co {co}" in line and "COG" in line and driver_text in line
    assert ".partial" not in line and not (tmp_path / "new").exists()


@pytest.mark.parametrize("co", ["BLOCKSIZE=abc", "BLOCKSIZE=0", "BLOCKSIZE=-16"])
def test_bad_block_sizes_are_one_usage_error_not_a_crash(tmp_path: Path, model: Path, co: str) -> None:
    """GDAL's COG driver aborts the process on these; geocolor refuses them first."""
    src = scene(tmp_path / "s.tif")
    out = tmp_path / "new" / "o.tif"
    line = one_error_line(run(["colorize", str(src), "-o", str(out), "-m", str(model), "--co", co]), 2)
    assert f"--co {co}" in line and "positive whole number" in line
    assert not (tmp_path / "new").exists()


def test_good_creation_options_are_applied(tmp_path: Path, model: Path) -> None:
    src = scene(tmp_path / "s.tif")
    for extra, compression in ((["--co", "COMPRESS=ZSTD"], "zstd"), (["--no-cog", "--co", "COMPRESS=LZW"], "lzw")):
        out = tmp_path / f"{compression}.tif"
        r = run(["-q", "colorize", str(src), "-o", str(out), "-m", str(model), *extra])
        assert r.exit_code == 0, r.output
        with rasterio.open(out) as ds:
            assert ds.compression.name.lower() == compression
    r = run(["colorize", str(src), "-o", str(tmp_path / "x.tif"), "-m", str(model), "--no-cog",
             "--co", "COMPRESS=FOO"])
    assert "GTiff" in one_error_line(r, 2)
    r = run(["colorize", str(src), "-o", str(tmp_path / "x.png"), "-m", str(model), "--co", "ZLEVEL=99"])
    assert "PNG" in one_error_line(r, 2)


@pytest.mark.parametrize("option", [["--tile-size", "100"], ["--overlap", "256"], ["--tile-size", "72"],
                                    ["--tile-size", "8192"]])
def test_tile_options_are_one_usage_error(tmp_path: Path, model: Path, packaged: dict[str, Path],
                                          option: list[str]) -> None:
    for i in range(3):
        scene(tmp_path / "in" / f"s{i}.tif", seed=i)
    for with_model in (["-m", str(model)], []):  # without --model: checked against the packaged SAR model
        r = run(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *with_model, *option])
        line = one_error_line(r, 2)
        assert option[0] in line
    assert not (tmp_path / "out").exists()


def test_band_with_a_semantic_model_or_band_0_is_a_usage_error(tmp_path: Path, semantic: Path,
                                                               model: Path) -> None:
    png = grey_png(tmp_path / "p.png")
    line = one_error_line(run(["colorize", str(png), "-o", str(tmp_path / "o.png"), "-m", str(semantic),
                               "--band", "VV"]), 2)
    assert "--band needs a SAR model" in line
    src = scene(tmp_path / "s.tif")
    line = one_error_line(run(["colorize", str(src), "-o", str(tmp_path / "o.tif"), "-m", str(model),
                               "--band", "0"]), 2)
    assert "--band 0" in line


def test_output_directory_that_is_the_input_directory(tmp_path: Path, model: Path) -> None:
    d = tmp_path / "d"
    scene(d / "s.tif")
    line = one_error_line(run(["colorize", str(d), "-o", str(d), "-m", str(model), "--overwrite"]), 2)
    assert "the output directory is the input directory" in line and "holds no rasters" not in line
    line = one_error_line(run(["colorize", str(d), "-o", str(tmp_path), "-m", str(model)]), 2)
    assert "contains the input directory" in line
    assert sorted(p.name for p in d.iterdir()) == ["s.tif"]
    # an output directory inside the input directory stays allowed (its files are not inputs)
    r = run(["-q", "colorize", str(d), "-o", str(d / "colored"), "-m", str(model)])
    assert r.exit_code == 0 and (d / "colored" / "s.tif").is_file()


# ----------------------------------------------------------------------------- items 10, 11: messages


def test_huge_values_leak_no_numpy_warning(tmp_path: Path) -> None:
    """dB values far outside any real range (a wrong file) overflow 10^(dB/20) quietly."""
    from colorize_fakes import AMP_VH

    amp_model = save_tiny_sar_model(tmp_path / "amp.model", AMP_VH)
    data = db_scene(40, 50, bands=1)[0]
    data[:5] = 3.0e38
    src = write_raster(tmp_path / "huge_vh.tif", data, descriptions=("VH",))
    r = run(["colorize", str(src), "-o", str(tmp_path / "o.tif"), "-m", str(amp_model),
             "--input-scale", "db"])
    assert "RuntimeWarning" not in r.stderr and "overflow" not in r.stderr, r.stderr
    assert r.exit_code == 0, r.output


def test_info_on_random_bytes_named_model(tmp_path: Path) -> None:
    bad = tmp_path / "random.model"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    line = one_error_line(run(["info", str(bad)]), 1)
    assert "not a geocolor model file" in line and "raster" not in line


def test_truncated_jpeg_names_gdal_reason(tmp_path: Path, model: Path) -> None:
    from PIL import Image

    rgb = (np.random.default_rng(0).random((300, 300, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    for args in (["info", str(tmp_path / "cut.jpg")],
                 ["colorize", str(tmp_path / "cut.jpg"), "-o", str(tmp_path / "o.png"), "-m", str(model)]):
        line = one_error_line(run(["-q", *args]), 1)
        assert "previous exception" not in line and "corrupt or truncated" in line, line
        assert "Premature end of JPEG file" in line


def test_tile_size_help_names_the_card_default() -> None:
    r = run(["colorize", "--help"])
    text = " ".join(r.output.split())
    assert "--tile-size" in text and "model card's tile_size" in text and "256]" not in text
    assert "'sar' / 'semantic'" in text


def test_output_and_preview_paths_that_cannot_work_are_usage_errors(
    tmp_path: Path, model: Path
) -> None:
    src = scene(tmp_path / "s.tif")
    line = one_error_line(run(["colorize", str(src), "-o", "-", "-m", str(model)]), 2)
    assert "-o -: outputs are written to files" in line and not Path("-").exists()
    out = tmp_path / "o.tif"
    line = one_error_line(run(["colorize", str(src), "-o", str(out), "-m", str(model),
                               "--preview", str(out)]), 2)
    assert "is the output itself" in line and not out.exists()
    # a preview named as a directory gets a file in it, named after the output
    r = run(["colorize", str(src), "-o", str(out), "-m", str(model),
             "--preview", str(tmp_path / "previews") + "/"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "previews" / "o.preview.png").is_file()


def test_band_given_for_a_photo_in_a_batch_is_said_to_be_ignored(
    tmp_path: Path, packaged: dict[str, Path]
) -> None:
    png = grey_png(tmp_path / "in" / "photo.png", colour=True)
    r = run(["colorize", str(png), "-o", str(tmp_path / "o.png"), "--band", "VV"])
    assert r.exit_code == 0, r.output
    assert "--band VV is for SAR inputs" in r.stderr and "(ignored)" in r.stderr


def test_an_interrupted_input_leaves_no_directory_it_made(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geocolor.infer.batch as batch

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "_run", interrupted)
    src = scene(tmp_path / "s.tif")
    out = tmp_path / "new" / "sub" / "o.tif"
    r = run(["colorize", str(src), "-o", str(out), "-m", str(model),
             "--preview", str(tmp_path / "p" / "q.png")])
    assert r.exit_code == 130
    assert not (tmp_path / "new").exists() and not (tmp_path / "p").exists()


def test_usage_errors_point_at_the_commands_help_and_top_level_options(tmp_path: Path) -> None:
    src = scene(tmp_path / "s.tif")
    r = CliRunner().invoke(main, ["colorize", str(src), "-o", str(tmp_path / "o.tif"),
                                  "--tile-size", "100"], prog_name="geocolor")
    assert r.exit_code == 2 and "Try 'geocolor colorize --help'" in r.stderr
    r = CliRunner().invoke(main, ["train", "sar", str(tmp_path), "-o", str(tmp_path / "r"),
                                  "--config", str(tmp_path / "none.toml")], prog_name="geocolor")
    assert r.exit_code == 2 and "Try 'geocolor train sar --help'" in r.stderr
    r = CliRunner().invoke(main, ["colorize", str(src), "-o", str(tmp_path / "o.tif"), "-q"],
                           prog_name="geocolor")
    assert r.exit_code == 2
    assert "No such option '-q'; -q goes before the command: geocolor -q colorize" in r.stderr


def test_an_input_given_twice_is_colorized_once(tmp_path: Path, model: Path) -> None:
    src = scene(tmp_path / "s.tif")
    r = run(["colorize", str(src), str(tmp_path / "." / "s.tif"), "-o", str(tmp_path / "out") + "/",
             "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert lines(r.stdout) == [str(tmp_path / "out" / "s.tif")]
    assert "given more than once; colorized once" in r.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "o.tif").write_text("x")
    line = one_error_line(run(["colorize", str(tmp_path / "empty"), "-o", str(tmp_path / "o.tif"),
                               "-m", str(model)]), 2)
    assert "a directory of inputs needs an output directory" in line


def test_geocolor_outputs_in_an_input_folder_are_not_colorized_again(
    tmp_path: Path, model: Path
) -> None:
    """colorize scenes/ -o scenes/colored/, then colorize scenes/ -o elsewhere/: the first
    run's outputs were taken for scenes (and failed as 3-band rasters)."""
    scenes = tmp_path / "scenes"
    scene(scenes / "a.tif")
    r = run(["colorize", str(scenes), "-o", str(scenes / "colored"), "-m", str(model)])
    assert r.exit_code == 0, r.output
    r = run(["colorize", str(scenes), "-o", str(tmp_path / "again"), "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert lines(r.stdout) == [str(tmp_path / "again" / "a.tif")]
    assert "colored/a.tif: is geocolor's output (of a.tif), not colorized again" in r.stderr


@pytest.mark.parametrize("failure", [
    MemoryError("Unable to allocate 7.28 TiB for an array"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 3221225472 bytes. Error code 12"),
])
def test_out_of_memory_says_what_to_lower(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    import geocolor.infer.batch as batch

    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(batch, "_run", fail)
    line = one_error_line(run(["colorize", str(scene(tmp_path / "s.tif")), "-o",
                               str(tmp_path / "o.tif"), "-m", str(model)]), 1)
    assert "out of memory" in line and "lower --batch-size or --tile-size" in line
    assert "alloc_cpu" not in line
    if isinstance(failure, RuntimeError):
        assert "(3.0 GiB asked for)" in line
