"""Atomic writes never leave a partial file under the final name."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from geocolor.io.atomic import _default_file_mode, atomic_path, atomic_write_text


def test_success_renames_into_place(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with atomic_path(target, ".png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".partial.png") and tmp.name.startswith(".")
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert os.listdir(tmp_path) == ["out.png"]


def test_failure_keeps_old_file_and_removes_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_output_gets_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    _default_file_mode.cache_clear()
    try:
        atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
        _default_file_mode.cache_clear()
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
