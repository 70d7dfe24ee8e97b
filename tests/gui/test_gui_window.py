"""The real Tk window, driven as a user would: open, colorize, views, save, cancel, reset, errors.

Marker ``gui``: these need a display and skip without one (with the reason). Run them
on a headless machine with ``xvfb-run -a python -m pytest -m gui``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from gui_fakes import pump_until

from geocolor.gui import jobs

pytestmark = pytest.mark.gui


def pick_model(app: Any, dialogs: Any, path: Path) -> None:
    """Choose "Other..." in the picker and answer the file dialog with ``path``."""
    dialogs.models.append(str(path))
    app.model_box.current(len(app.entries))  # the "Other..." item
    app.model_box.event_generate("<<ComboboxSelected>>")
    settle(app)


def settle(app: Any) -> None:
    """Pump the event loop until the window has finished reading or saving in the background."""
    pump_until(app.root, lambda: not app.busy)


def open_file(app: Any, path: Path) -> bool:
    started = app.open_path(path)
    settle(app)
    return started


def colorize(app: Any, pump: Any) -> jobs.Snapshot:
    app.colorize_button.invoke()
    assert app.running or app.job.snapshot().state != jobs.RUNNING
    pump(app.root, lambda: not app.running)
    return app.job.snapshot()


def enabled(widget: Any) -> bool:
    return not widget.instate(["disabled"])


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def test_scene_open_colorize_views_save(
    make_app: Any, dialogs: Any, pump: Any, scene: Path, sar_model: Path, tmp_path: Path
) -> None:
    app = make_app()
    assert dialogs.errors == []  # building the window reported nothing
    assert not enabled(app.colorize_button)  # nothing open yet
    dialogs.inputs.append(str(scene))
    app.open_button.invoke()
    settle(app)
    assert app.input == scene and app.input_view.image.size == (170, 150)
    assert app.model_box.get() == "Packaged SAR model"  # the default follows the input
    pick_model(app, dialogs, sar_model)
    assert app.model_box.get() == "tiny_sar.model (SAR)"
    assert "SAR model" in app.model_status.cget("text") and "tile 64 px" in app.model_status.cget(
        "text"
    )

    snap = colorize(app, pump)
    assert snap.state == jobs.DONE, snap.error
    assert dialogs.errors == []
    assert str(app.progress["value"]) in ("100", "100.0")
    assert app.status.cget("text").startswith(
        "scene 170 x 150, georeferenced by transform · done in"
    )
    # views: input | colorized (no segmentation for a SAR model), same size, really coloured
    assert not app.shows_segmentation and not app.segmentation_view.winfo_ismapped()
    assert app.colour_view.winfo_ismapped()
    colour = pixels(app.colour_view.image)
    assert app.colour_view.image.size == app.input_view.image.size
    assert colour.std() > 1 and np.abs(colour - pixels(app.input_view.image)).mean() > 1
    # before/after: the slider at 0 shows all "after", at 1 all "before"
    app.compare.set_split(0.0)
    assert (pixels(app.compare.view.image) == colour).all()
    app.compare.set_split(1.0)
    assert (pixels(app.compare.view.image) == pixels(app.input_view.image)).all()
    # wheel zoom zooms all side-by-side views together; Fit goes back
    app.root.update()
    app.colour_view.event_generate("<Button-4>", x=50, y=50)
    assert app.viewport.zoom == pytest.approx(1.25)
    assert app.input_view.geometry[0] == pytest.approx(app.colour_view.geometry[0])
    app.fit_button.invoke()
    assert app.viewport.zoom == 1.0

    # Save: the same georeferenced COG as 'geocolor colorize'
    out = tmp_path / "out" / "scene_rgb.tif"
    out.parent.mkdir()
    dialogs.saves.append(str(out))
    app.save_button.invoke()
    settle(app)
    assert dialogs.errors == [] and dialogs.confirms == []
    assert app.status.cget("text") == f"Saved {out}"
    with (
        rasterio.open(out) as saved,
        rasterio.open(scene) as src,
        rasterio.open(app.result.output) as engine,
    ):
        assert (
            saved.crs == src.crs and saved.transform == src.transform and saved.shape == src.shape
        )
        assert (saved.read() == engine.read()).all()
    assert jobs.leftovers(out.parent) == []

    # Saving again over it: asked first; "no" keeps the file, "yes" replaces it
    before = out.stat().st_mtime_ns
    dialogs.confirm_answer = False
    dialogs.saves.append(str(out))
    app.save_button.invoke()
    assert dialogs.confirms == [f"{out} exists. Replace it?"] and not app.busy
    assert out.stat().st_mtime_ns == before and app.status.cget("text") == "Not saved."
    dialogs.confirm_answer = True
    app.save(out)
    settle(app)
    assert len(dialogs.confirms) == 2 and app.status.cget("text") == f"Saved {out}"


def test_photo_shows_segmentation_and_saves_jpeg(
    make_app: Any, dialogs: Any, pump: Any, photo: Path, semantic_model: Path, tmp_path: Path
) -> None:
    from PIL import Image

    app = make_app()
    assert open_file(app, photo)
    assert app.model_box.get() == "Packaged photo model"  # the default follows the input
    pick_model(app, dialogs, semantic_model)
    snap = colorize(app, pump)
    assert snap.state == jobs.DONE, snap.error
    assert app.shows_segmentation and app.segmentation_view.winfo_ismapped()
    assert app.segmentation_view.image.size == app.colour_view.image.size == (120, 90)
    assert "classes background" in app.status.cget("text")
    jpg = tmp_path / "photo.jpg"
    dialogs.saves.append(str(jpg))
    app.root.focus_force()
    app.root.event_generate("<Control-s>")  # the keyboard shortcut
    settle(app)
    with Image.open(jpg) as img:
        assert img.format == "JPEG" and img.size == (120, 90)


class SlowJob(jobs.ColorizeJob):
    """The real run, slowed at each progress report so that the test can cancel mid-way."""

    def progress(self, done: int, total: int) -> None:
        time.sleep(0.05)
        super().progress(done, total)


def test_cancel_mid_run(
    make_app: Any, dialogs: Any, pump: Any, tmp_path: Path, sar_model: Path
) -> None:
    from gui_fakes import make_scene

    src = make_scene(tmp_path / "in" / "big.tif", h=400, w=400)
    app = make_app(job_factory=SlowJob)
    open_file(app, src)
    pick_model(app, dialogs, sar_model)
    app.colorize_button.invoke()
    assert app.running and enabled(app.cancel_button)
    assert not enabled(app.save_button) and not enabled(app.open_button)
    pump(app.root, lambda: app.job.snapshot().done > 0)
    started = time.monotonic()
    app.cancel_button.invoke()
    pump(app.root, lambda: not app.running, timeout=10)
    snap = app.job.snapshot()
    assert snap.state == jobs.CANCELLED and 0 < snap.done < snap.total
    assert time.monotonic() - started < 5
    assert app.status.cget("text") == "Cancelled; nothing was written."
    assert app.result is None and app.colour_view.image is None and dialogs.errors == []
    assert list(app.workdir.iterdir()) == []  # the atomic writers left nothing behind
    assert enabled(app.colorize_button)  # ready for another run


def test_reset_clears_everything(
    make_app: Any, dialogs: Any, pump: Any, scene: Path, sar_model: Path
) -> None:
    app = make_app()
    open_file(app, scene)
    pick_model(app, dialogs, sar_model)
    assert colorize(app, pump).state == jobs.DONE
    workdir = app.workdir
    app.reset_button.invoke()
    assert app.input is None and app.result is None and app.preview is None
    assert app.input_view.image is None and app.colour_view.image is None
    assert app.compare.view.image is None
    assert not workdir.exists()
    assert app.model_box.get() == "Packaged SAR model" and not app.model_chosen
    for button in (app.colorize_button, app.save_button, app.cancel_button):
        assert not enabled(button)


def test_errors_are_one_line_dialogs(
    make_app: Any, dialogs: Any, pump: Any, scene: Path, semantic_model: Path, tmp_path: Path
) -> None:
    from geocolor.cli import main

    app = make_app()
    missing = tmp_path / "missing.tif"
    assert not app.open_path(missing)
    assert dialogs.errors == [f"{missing}: file not found"]
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00 truncated")
    assert not app.open_path(corrupt)
    assert dialogs.errors[-1].startswith(f"{corrupt}: not a readable raster")
    # a photo model on a georeferenced SAR scene: the CLI's message, word for word
    open_file(app, scene)
    pick_model(app, dialogs, semantic_model)
    assert colorize(app, pump).state == jobs.FAILED
    cli = CliRunner().invoke(
        main,
        ["-q", "colorize", str(scene), "-o", str(tmp_path / "x.tif"), "-m", str(semantic_model)],
    )
    assert cli.stderr.strip() == f"geocolor: error: {dialogs.errors[-1]}"
    # an unexpected failure inside the window is one line too, never a traceback
    app.root.after(0, lambda: 1 / 0)
    pump(app.root, lambda: dialogs.errors[-1].startswith("ZeroDivisionError"))
    assert dialogs.errors[-1] == "ZeroDivisionError: division by zero"
    assert all("\n" not in e and "Traceback" not in e for e in dialogs.errors)
    # a file that is no model, chosen with "Other...": refused, the previous choice stays
    junk = tmp_path / "junk.model"
    junk.write_text("no")
    pick_model(app, dialogs, junk)
    assert dialogs.errors[-1] == f"{junk}: not a geocolor model file (unknown format, or truncated)"
    assert app.model_box.get() == "tiny_semantic.model (photo)"


@pytest.mark.parametrize(
    ("model", "label"),
    [
        (None, "Packaged SAR model"),
        ("semantic", "Packaged photo model"),
        ("TINY", "tiny_sar.model (SAR)"),
    ],
)
def test_cli_opens_path_and_model(
    tk_root: Any,
    scene: Path,
    sar_model: Path,
    model: str | None,
    label: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``geocolor gui PATH [-m MODEL]`` opens PATH with that model (the main loop is stubbed)."""
    from geocolor.cli import main
    from geocolor.gui import app as app_module

    seen: dict[str, Any] = {}

    class Watched(app_module.App):
        def __init__(self, root: Any, **kwargs: Any) -> None:
            super().__init__(root, **kwargs)
            root.mainloop = lambda n=0: self._stop(seen)

        def _stop(self, into: dict[str, Any]) -> None:
            pump_until(self.root, lambda: self.preview is not None and not self.busy, timeout=20)
            into.update(title=self.root.title(), model=self.model_box.get(), input=self.input)
            self.close()

    monkeypatch.setattr(app_module, "App", Watched)
    args = ["gui", str(scene), "--device", "cpu"]
    if model:
        args += ["-m", str(sar_model) if model == "TINY" else model]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert seen == {"title": "geocolor - scene.tif", "model": label, "input": scene}
