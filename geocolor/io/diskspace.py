"""A full disk while writing an output: one clear error instead of GDAL's and libtiff's lines.

When the disk fills, libtiff prints ``_tiffWriteProc: No space left on device.``
on stderr, and the exception that reaches geocolor only says "Write failed. See
previous exception for details." (or nothing at all: GDAL may go on writing a
corrupt file). :func:`reporting_disk_full` wraps the body of an atomic write: a
failure caused by a full disk (ENOSPC in the exception chain, GDAL's message, or
almost no free space left where the output goes) becomes an
:class:`~geocolor.errors.OutputError` that names the output, says there is no
space, and says that nothing was left behind, which the atomic write's cleanup
makes true before the error reaches anyone. :func:`silence_libtiff_stderr`
stops the raw lines (the CLI calls it unless ``-v``).
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from geocolor.errors import OutputError

_FULL_TEXTS = ("no space left on device", "disk full", "not enough space", "file too large")
#: Less free space than this where an output failed to write: the disk is taken as full.
NEARLY_FULL_BYTES = 2**20


class _DiskFullSeen(logging.Handler):
    """Notes whether GDAL logged a full-disk message (from any thread) while it was attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().lower()
        except Exception:  # noqa: BLE001 - a malformed record must not break the writer
            return
        if any(t in text for t in _FULL_TEXTS):
            self.seen = True


def _is_disk_full(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        if any(t in str(current).lower() for t in _FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _free_bytes(directory: Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def raise_if_disk_full(path: Path) -> None:
    """``OSError(ENOSPC)`` when the filesystem of ``path`` has (almost) no space left.

    For writers whose failures GDAL does not raise (libtiff reports a full disk
    only on stderr): call it before working further on a file that may be corrupt.
    """
    directory = Path(path).parent
    free = _free_bytes(directory)
    if free is not None and free < NEARLY_FULL_BYTES:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def silence_libtiff_stderr() -> None:
    """Stop libtiff from printing its own error lines (``_tiffWriteProc: No space left on
    device.``) on stderr; geocolor reports the failure in one line instead.

    libtiff's process-wide error handler prints them (GDAL routes only per-file
    errors through its own handler). Best effort, Linux only: the libtiff loaded
    by GDAL is found in ``/proc/self/maps`` and its global handler set to none.
    """
    import ctypes

    try:
        import rasterio  # noqa: F401 - loads GDAL and its libtiff

        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libtiff" in line and "/" in line}
    except OSError:
        return
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.TIFFSetErrorHandler.restype = ctypes.c_void_p
            lib.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
            lib.TIFFSetErrorHandler(None)
        except (OSError, AttributeError):
            continue


def disk_full_error(target: Path) -> OutputError:
    """The one-line error for ``target``: which output, no space, nothing left."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    return OutputError(
        f"{target}: no space left on the device holding {directory}; "
        "nothing was written (the partial output and temporary files were removed). "
        "Free some space or write elsewhere."
    )


@contextlib.contextmanager
def reporting_disk_full(target: Path) -> Iterator[None]:
    """Turn a write failure caused by a full disk into :func:`disk_full_error` (other errors pass).

    Put it inside the atomic write (while the partial files still fill the disk, so
    that the free space tells); the atomic write removes them before the error
    reaches anyone, which makes its "nothing was written" true.
    """
    watcher = _DiskFullSeen()
    gdal_log = logging.getLogger("rasterio")
    gdal_log.addHandler(watcher)
    try:
        yield
    except (KeyboardInterrupt, SystemExit, OutputError):  # an OutputError is said already
        raise
    except BaseException as exc:
        free = _free_bytes(Path(target).parent)
        if watcher.seen or _is_disk_full(exc) or (free is not None and free < NEARLY_FULL_BYTES):
            raise disk_full_error(target) from None
        raise
    finally:
        gdal_log.removeHandler(watcher)
