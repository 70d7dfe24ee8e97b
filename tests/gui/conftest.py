"""Fixtures of the GUI tests: tiny models and inputs, a Tk root (or a skip), dialogs that record."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_fakes import save_tiny_sar_model, save_tiny_semantic_model
from gui_fakes import FakeDialogs, make_photo, make_scene, pump_until


@pytest.fixture(scope="session")
def sar_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained tiny SAR model: VV, dB clipped to [-25, 0], 64-px tiles."""
    return save_tiny_sar_model(tmp_path_factory.mktemp("models") / "tiny_sar.model")


@pytest.fixture(scope="session")
def semantic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_semantic_model(tmp_path_factory.mktemp("models") / "tiny_semantic.model")


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return make_scene(tmp_path / "in" / "scene.tif")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    return make_photo(tmp_path / "in" / "grey.png")


@pytest.fixture
def tk_root() -> Any:
    """A real Tk root window; the test is skipped (with the reason) when there is no display."""
    tkinter = pytest.importorskip("tkinter", reason="this Python has no tkinter (python3-tk)")
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        pytest.skip("no display: set DISPLAY or run under 'xvfb-run -a python -m pytest -m gui'")
    try:
        root = tkinter.Tk()
    except tkinter.TclError as exc:
        pytest.skip(f"cannot open a Tk window: {exc}")
    root.geometry("960x480")
    root.update()
    yield root
    try:
        root.destroy()
    except tkinter.TclError:
        pass  # the test closed it
    gc.collect()  # Tk objects of this test die here, in the main thread, not in a later worker's GC


@pytest.fixture
def pump() -> Callable[..., None]:
    return pump_until


@pytest.fixture
def dialogs() -> FakeDialogs:
    return FakeDialogs()


@pytest.fixture
def make_app(tk_root: Any, dialogs: FakeDialogs) -> Callable[..., Any]:
    """Build the real window on ``tk_root`` with recording dialogs, running on the CPU."""
    from geocolor.gui.app import App

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("dialogs", dialogs)
        kwargs.setdefault("device", "cpu")
        kwargs.setdefault("poll_ms", 10)
        app = App(tk_root, **kwargs)
        tk_root.update()
        return app

    return make
