"""Inputs and dialogs for the GUI tests (imported by path, like tests/infer/colorize_fakes.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from colorize_fakes import db_scene, write_raster


def make_scene(path: Path, h: int = 150, w: int = 170, seed: int = 0) -> Path:
    """A georeferenced 2-band (VV, VH) sigma0 dB GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_raster(path, db_scene(h, w, seed), descriptions=("VV", "VH"))


def make_photo(path: Path, h: int = 90, w: int = 120) -> Path:
    """A grey 8-bit photo (PNG or JPEG by extension)."""
    from PIL import Image

    yy, xx = np.mgrid[0:h, 0:w]
    grey = (127 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.uint8)
    Image.fromarray(grey).save(path)
    return path


class FakeDialogs:
    """Records what the window would have shown, and answers its questions."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.confirms: list[str] = []
        self.confirm_answer = True
        self.inputs: list[str] = []  # answers of the Open dialog, in order
        self.models: list[str] = []
        self.saves: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)

    def confirm(self, message: str) -> bool:
        self.confirms.append(message)
        return self.confirm_answer

    def open_input(self, initialdir: str | None) -> str | None:
        return self.inputs.pop(0) if self.inputs else None

    def open_model(self, initialdir: str | None) -> str | None:
        return self.models.pop(0) if self.models else None

    def save_as(self, initialdir: str | None, initialfile: str, filetypes: list) -> str | None:
        return self.saves.pop(0) if self.saves else None


def pump_until(root: Any, until: Callable[[], bool], timeout: float = 30.0) -> None:
    """Run the Tk event loop until ``until()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"the window did not get there within {timeout:g} s")
        root.update()
        time.sleep(0.005)  # let the worker threads run between event-loop passes
    root.update()
