"""Atomic file writes: write under a temporary name in the target's directory, then rename.

A crash, kill, full disk or Ctrl-C while writing leaves the previous file (or no
file) under the final name, never a partial one. The temporary name starts with
``.`` and contains ``.partial`` so that a leftover is easy to recognise.
"""
from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Iterator


@functools.lru_cache(maxsize=1)
def _default_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask.

    Read once: ``os.umask`` can only be read by setting it, which is not
    thread-safe, and writers may run in background threads.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temporary_path_for(target: Path, suffix: str = "") -> Path:
    """A fresh, unused temporary path next to ``target`` (same filesystem, so rename is atomic).

    ``mkstemp`` creates the file owner-only (0600); it is given the ordinary
    permissions of a new file so that the renamed output is readable as usual.
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".partial{suffix}", dir=target.parent or Path(".")
    )
    try:
        os.fchmod(fd, _default_file_mode())
    finally:
        os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path; on success rename it onto ``target``, on any error remove it.

    ``suffix`` (e.g. ``".png"``) ends the temporary name, for writers that choose
    a format by extension. The caller writes the file at the yielded path.
    """
    target = Path(target)
    tmp = temporary_path_for(target, suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (fsync before the rename)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(target: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


_default_file_mode()  # read the umask now, in the importing (main) thread
