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


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    """Issue 9 item 3: leftovers of a `kill -9`ed run go away when the output is written again."""
    from geocolor.io.atomic import _host, temporary_path_for

    target = tmp_path / "o.tif"
    dead = _dead_pid()
    stale = [tmp_path / f".o.tif.{dead}@{_host()}.ab_12.partial.tif",
             tmp_path / f".o.tif.{dead}@{_host()}.x9z.partial"]
    for path in stale:
        path.write_bytes(b"half a GeoTIFF")
    others = [
        tmp_path / f".other.tif.{dead}@{_host()}.abc.partial.tif",  # another output's
        tmp_path / f".o.tif.{dead}@some-other-host.abc.partial.tif",  # written on another host
        tmp_path / ".o.tif.k3j4h5.partial.tif",  # no writer recorded: cannot tell
        tmp_path / "o.tif.partial.tif",  # not hidden: not ours
    ]
    for path in others:
        path.write_bytes(b"keep")
    with atomic_path(target, ".tif") as tmp:
        assert tmp.name.startswith(f".o.tif.{os.getpid()}@{_host()}.")
        tmp.write_bytes(b"complete")
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in others)
    assert target.read_bytes() == b"complete"
    assert temporary_path_for(tmp_path / "p.tif").exists()


def test_live_writers_temporaries_are_kept(tmp_path: Path) -> None:
    """Another live run writing the same output: its temporary is never removed."""
    import subprocess
    import sys

    from geocolor.io.atomic import _host, remove_stale_temporaries

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / f".o.tif.{live.pid}@{_host()}.q1w2e3.partial.tif"
        theirs.write_bytes(b"being written")
        ours = tmp_path / f".o.tif.{os.getpid()}@{_host()}.r4t5y6.partial.tif"
        ours.write_bytes(b"being written here")
        assert remove_stale_temporaries(tmp_path / "o.tif") == []
        with atomic_path(tmp_path / "o.tif") as tmp:
            tmp.write_bytes(b"x")
        assert theirs.exists() and ours.exists()
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temporaries(tmp_path / "o.tif") == [theirs]
