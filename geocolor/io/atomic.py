"""Atomic file writes: write under a temporary name in the target's directory, then rename.

A crash, kill, full disk or Ctrl-C while writing leaves the previous file (or no
file) under the final name, never a partial one. The temporary name is
``.<target name>.<pid>@<host>.<random>.partial<suffix>``: hidden, easy to
recognise, and it names the process writing it. Only ``kill -9`` (or a power
cut) can leave one behind; the next write of the same target removes the
temporaries of that target whose writer process no longer exists on this host
(:func:`remove_stale_temporaries`), never those of a live run.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("geocolor.io")


@functools.lru_cache(maxsize=1)
def _default_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask.

    Read once: ``os.umask`` can only be read by setting it, which is not
    thread-safe, and writers may run in background threads.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@functools.lru_cache(maxsize=1)
def _host() -> str:
    """This machine's name as it appears in temporary names (letters, digits and ``-``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname() or "localhost")[:64] or "localhost"


def _pattern(target: Path) -> re.Pattern[str]:
    """Temporary names of ``target``; groups: pid, host."""
    return re.compile(re.escape(f".{target.name}.") + r"(\d+)@([A-Za-z0-9-]+)\.[A-Za-z0-9_]+\.partial")


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` left by writers on this host that no longer run.

    A temporary of another target, of a live process (any user's), or written on
    another host (a shared filesystem) is never touched. Returns the removed paths.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    pattern = _pattern(target)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if not match or match.group(2) != _host() or _process_exists(int(match.group(1))):
            continue
        path = directory / name
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            path.unlink()
            removed.append(path)
    if removed:
        log.info("%s: removed %d temporary file%s left by an interrupted run", target, len(removed),
                 "" if len(removed) == 1 else "s")
    return removed


def temporary_path_for(target: Path, suffix: str = "") -> Path:
    """A fresh, unused temporary path next to ``target`` (same filesystem, so rename is atomic).

    Stale temporaries of the same target (their writer died) are removed first.
    ``mkstemp`` creates the file owner-only (0600); it is given the ordinary
    permissions of a new file so that the renamed output is readable as usual.
    """
    target = Path(target)
    remove_stale_temporaries(target)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}@{_host()}.", suffix=f".partial{suffix}",
        dir=target.parent or Path("."),
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
_host()
