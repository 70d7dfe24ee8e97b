"""The GUI's Tk-free parts: model choice, previews, the background run with cancel, saving.

These run everywhere (no display, no tkinter needed).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from colorize_fakes import save_tiny_semantic_model
from gui_fakes import make_scene
from PIL import Image

from geocolor.errors import GeocolorError, ModelFileError, OutputError, RasterError
from geocolor.gui import choice, jobs, previews
from geocolor.io.modelfile import read_card


def run_job(
    src: Path, model: Path, workdir: Path, job_class: type = jobs.ColorizeJob
) -> jobs.Snapshot:
    workdir.mkdir(exist_ok=True)
    job = job_class(src, model, workdir, device="cpu").start()
    assert job.wait(60), "the run did not end"
    return job.snapshot()


# ---------------------------------------------------------------- model choice


def test_default_kind_follows_the_colorize_rule(scene: Path, photo: Path, tmp_path: Path) -> None:
    from geocolor.infer.batch import choose_model_kind

    assert choice.default_kind(scene)[0] == "sar"
    assert choice.default_kind(photo)[0] == "semantic"
    grey_tif = tmp_path / "grey8.tif"  # 8-bit TIFF without georeference: a plain picture
    Image.fromarray(np.full((20, 30), 99, np.uint8)).save(grey_tif)
    assert choice.default_kind(grey_tif)[0] == "semantic"
    chip = tmp_path / "s1" / "ROIs1970_fall_s1_13_p10.png"  # a grey chip named like SAR
    chip.parent.mkdir()
    Image.fromarray(np.full((20, 30), 99, np.uint8)).save(chip)
    for path in (scene, photo, grey_tif, chip):
        assert choice.default_kind(path) == choose_model_kind(path)  # the CLI's rule, not a copy
    assert choice.default_kind(chip)[0] == "sar"
    with pytest.raises(RasterError, match="not found"):
        choice.default_kind(tmp_path / "missing.tif")


def test_card_summary_names_kind_data_tile_and_scaling(
    sar_model: Path, semantic_model: Path
) -> None:
    line = choice.card_summary(read_card(sar_model))
    assert line.startswith("SAR model")
    assert "tile 64 px" in line and "scaling db_clip (VV)" in line
    assert "training data not recorded" in line
    photo_line = choice.card_summary(read_card(semantic_model))
    assert photo_line.startswith("photo model") and "network size 64 px" in photo_line
    assert "classes background, object" in photo_line


def test_packaged_card_summary_says_what_it_was_trained_on() -> None:
    path = choice.packaged_entries()[0].path
    if not path.is_file():
        pytest.skip("no packaged SAR model in this checkout")
    line = choice.card_summary(read_card(path))
    assert "trained on s1s2-la (62 pairs)" in line and "tile 512 px" in line


def test_other_entry_checks_the_card(semantic_model: Path, tmp_path: Path) -> None:
    entry = choice.other_entry(semantic_model)
    assert entry.kind == "semantic" and entry.label == "tiny_semantic.model (photo)"
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.model: not a geocolor model file"):
        choice.other_entry(junk)


# ---------------------------------------------------------------- previews


def test_scene_preview_is_a_decimated_read(tmp_path: Path) -> None:
    big = make_scene(tmp_path / "big.tif", h=900, w=1300)
    view = previews.read_scene_preview(big, side=256)
    assert view.image.size == (256, 177) and (view.width, view.height) == (1300, 900)
    assert not view.plain and "georeferenced by transform" in view.description
    assert "1/5.08 read" in view.description
    grey = np.asarray(view.image)
    assert grey.std() > 10  # a stretched picture, not a flat field


def test_scene_preview_as_the_sar_model_sees_it(scene: Path, sar_model: Path) -> None:
    scaling = read_card(sar_model).input["sar_scaling"]
    seen = np.asarray(previews.read_scene_preview(scene, scaling).image)[..., 0].astype(float)
    with rasterio.open(scene) as ds:
        vv = ds.read(1)  # dB in [-25, 0]: the model's unit is (dB + 25) / 25
    expected = np.clip((vv + 25) / 25, 0, 1) * 255
    assert np.abs(seen - expected).max() <= 1.0


def test_photo_preview_and_errors(photo: Path, tmp_path: Path) -> None:
    view = previews.read_photo_preview(photo)
    assert view.plain and view.image.size == (120, 90) and view.description.startswith("grey photo")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(GeocolorError, match="bad.png"):
        previews.read_photo_preview(bad)


def test_compare_image_splits_before_and_after() -> None:
    before = Image.new("RGB", (100, 40), (0, 0, 0))
    after = Image.new("RGB", (100, 40), (200, 100, 50))
    split = np.asarray(previews.compare_image(before, after, 0.3))
    assert (split[:, :29] == 0).all() and (split[:, 31:] == (200, 100, 50)).all()
    assert (np.asarray(previews.compare_image(before, after, 0.0)) == np.asarray(after)).all()
    assert (np.asarray(previews.compare_image(before, after, 1.0)) == 0).all()


# ---------------------------------------------------------------- the background run


def test_run_writes_the_engines_output(scene: Path, sar_model: Path, tmp_path: Path) -> None:
    snap = run_job(scene, sar_model, tmp_path / "work")
    assert snap.state == jobs.DONE, snap.error
    result = snap.result
    assert result.kind == "sar" and result.mask is None and result.tiles > 0
    assert snap.done == snap.total > 0
    with rasterio.open(result.output) as out, rasterio.open(scene) as src:
        assert out.crs == src.crs and out.transform == src.transform and out.shape == src.shape
        assert out.count == 3 and out.dtypes[0] == "uint8"
    assert jobs.leftovers(tmp_path / "work") == []


def test_a_model_trained_without_masks_gives_no_segmentation_view(
        photo: Path, tmp_path: Path) -> None:
    from geocolor.io.modelfile import load_model, save_model

    tiny = load_model(save_tiny_semantic_model(tmp_path / "tiny.model"))
    card = dataclasses.replace(tiny.card, training={"data": {"segmentation": "untrained: no masks"}})
    colour_only = save_model(tmp_path / "colour_only.model", tiny.network, card)
    snap = run_job(photo, colour_only, tmp_path / "work")
    assert snap.state == jobs.DONE, snap.error
    assert snap.result.mask is None and snap.done == snap.total == 3  # read, network, colour PNG
    assert jobs.leftovers(tmp_path / "work") == []


def test_photo_run_has_a_segmentation(photo: Path, semantic_model: Path, tmp_path: Path) -> None:
    snap = run_job(photo, semantic_model, tmp_path / "work")
    assert snap.state == jobs.DONE, snap.error
    assert snap.done == snap.total == 4  # read, network, colour PNG, mask PNG
    assert snap.result.classes == ["background", "object"]
    with Image.open(snap.result.mask) as mask:
        assert mask.mode == "P" and mask.size == (120, 90)


class CancelAfterFirstTiles(jobs.ColorizeJob):
    """Cancels itself as soon as the engine reports the first finished tiles (deterministic)."""

    def progress(self, done: int, total: int) -> None:
        if done > 0:
            self.cancel()
        super().progress(done, total)


def test_cancel_mid_run_stops_cleanly_and_leaves_nothing(tmp_path: Path, sar_model: Path) -> None:
    src = make_scene(tmp_path / "in" / "wide.tif", h=300, w=400)
    work = tmp_path / "work"
    snap = run_job(src, sar_model, work, CancelAfterFirstTiles)
    assert snap.state == jobs.CANCELLED and snap.result is None and snap.error is None
    assert 0 < snap.done < snap.total  # it stopped mid-run
    assert list(work.iterdir()) == []  # no output, no scratch file, no .partial


@pytest.mark.parametrize(
    "cancel_at", [1, 2, 3]
)  # after reading, after the network, after the colour PNG
def test_cancel_photo_mid_run_leaves_nothing(
    photo: Path, semantic_model: Path, tmp_path: Path, cancel_at: int
) -> None:
    class CancelAtStep(jobs.ColorizeJob):
        def progress(self, done: int, total: int) -> None:
            if done >= cancel_at:
                self.cancel()
            super().progress(done, total)

    work = tmp_path / "work"
    snap = run_job(photo, semantic_model, work, CancelAtStep)
    assert snap.state == jobs.CANCELLED and snap.done == cancel_at < snap.total
    assert list(work.iterdir()) == []


def test_cancel_at_the_first_report_leaves_nothing(
    scene: Path, sar_model: Path, tmp_path: Path
) -> None:
    class CancelAtStart(jobs.ColorizeJob):
        def progress(self, done: int, total: int) -> None:
            self.cancel()
            super().progress(done, total)

    work = tmp_path / "work"
    snap = run_job(scene, sar_model, work, CancelAtStart)
    assert snap.state == jobs.CANCELLED and snap.done == 0
    assert list(work.iterdir()) == []


def test_failed_run_reports_the_clis_line(
    scene: Path, semantic_model: Path, tmp_path: Path
) -> None:
    from geocolor.cli import main

    snap = run_job(scene, semantic_model, tmp_path / "work")
    assert snap.state == jobs.FAILED
    cli = CliRunner().invoke(
        main,
        ["-q", "colorize", str(scene), "-o", str(tmp_path / "o.tif"), "-m", str(semantic_model)],
    )
    assert cli.exit_code == 1
    assert cli.stderr.strip() == f"geocolor: error: {snap.error}"
    assert "\n" not in snap.error and "Traceback" not in snap.error


def test_missing_model_is_one_line(scene: Path, tmp_path: Path) -> None:
    snap = run_job(scene, tmp_path / "nope.model", tmp_path / "work")
    assert (
        snap.state == jobs.FAILED
        and snap.error == f"{tmp_path / 'nope.model'}: model file not found"
    )


# ---------------------------------------------------------------- saving


@pytest.fixture
def scene_result(scene: Path, sar_model: Path, tmp_path: Path) -> jobs.RunResult:
    snap = run_job(scene, sar_model, tmp_path / "work")
    assert snap.state == jobs.DONE, snap.error
    return snap.result


def test_save_scene_is_the_clis_cog(
    scene_result: jobs.RunResult, scene: Path, sar_model: Path, tmp_path: Path
) -> None:
    from geocolor.cli import main

    saved = jobs.save_result(scene_result, tmp_path / "out" / "saved.tif")
    cli_out = tmp_path / "cli.tif"
    r = CliRunner().invoke(
        main,
        ["-q", "colorize", str(scene), "-o", str(cli_out), "-m", str(sar_model), "--device", "cpu"],
    )
    assert r.exit_code == 0, r.output
    with rasterio.open(saved) as a, rasterio.open(cli_out) as b:
        assert a.profile == b.profile and a.crs == b.crs and a.transform == b.transform
        assert (a.read() == b.read()).all()
        assert a.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert jobs.leftovers(saved.parent) == []


def test_save_refuses_to_overwrite_unless_confirmed(
    scene_result: jobs.RunResult, tmp_path: Path
) -> None:
    dst = tmp_path / "exists.tif"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        jobs.save_result(scene_result, dst)
    assert dst.read_bytes() == b"keep me"
    jobs.save_result(scene_result, dst, overwrite=True)
    with rasterio.open(dst) as ds:
        assert ds.count == 3


def test_save_scene_as_png_and_bad_extension(scene_result: jobs.RunResult, tmp_path: Path) -> None:
    png = jobs.save_result(scene_result, tmp_path / "s.png")
    with Image.open(png) as img, rasterio.open(scene_result.output) as cog:
        assert img.format == "PNG" and img.size == (cog.width, cog.height)
    with pytest.raises(OutputError, match=r"cannot save a scene as '\.bmp'"):
        jobs.save_result(scene_result, tmp_path / "s.bmp")
    with pytest.raises(OutputError, match="output is the input"):
        jobs.save_result(scene_result, scene_result.input, overwrite=True)


def test_save_photo_png_and_jpeg(photo: Path, semantic_model: Path, tmp_path: Path) -> None:
    snap = run_job(photo, semantic_model, tmp_path / "work")
    result = snap.result
    png = jobs.save_result(result, tmp_path / "c.png")
    assert png.read_bytes() == result.output.read_bytes()
    jpg = jobs.save_result(result, tmp_path / "c.jpg")
    with Image.open(jpg) as img:
        assert img.format == "JPEG" and img.size == (120, 90) and img.mode == "RGB"


# ---------------------------------------------------------------- the command without Tk


def test_gui_help_and_missing_tkinter(monkeypatch: pytest.MonkeyPatch) -> None:
    from geocolor.cli import main

    monkeypatch.setitem(sys.modules, "tkinter", None)  # import tkinter now raises ImportError
    r = CliRunner().invoke(main, ["gui", "--help"])
    assert r.exit_code == 0 and "PATH" in r.output
    r = CliRunner().invoke(main, ["gui"])
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "python3-tk" in r.stderr
    assert r.stderr.startswith("geocolor: error: this Python has no tkinter")


def test_gui_without_a_display_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tkinter", reason="this Python has no tkinter")
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY decides only on X11")
    from geocolor.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = CliRunner().invoke(main, ["gui"])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "cannot open a window" in r.stderr and "Traceback" not in r.output


def test_only_the_gui_package_imports_tkinter() -> None:
    """Layering: nothing below the CLI/GUI imports tkinter, and the CLI imports it only when run."""
    import subprocess

    import geocolor

    root = Path(geocolor.__file__).parent
    importers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "import tkinter" in p.read_text() or "from tkinter" in p.read_text()
    )
    assert all(name.startswith("gui/") or name == "cli/gui.py" for name in importers), importers
    code = (
        "import sys, geocolor.cli, geocolor.gui.jobs, geocolor.gui.previews, geocolor.gui.choice; "
        "print('tkinter' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
