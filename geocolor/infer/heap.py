"""glibc heap settings for CPU inference: reuse each batch's memory instead of re-faulting it.

A network's activations are tens to hundreds of MB per call. With glibc's defaults
every block above the mmap threshold (at most 32 MB) is a fresh ``mmap``, unmapped
again when torch frees it, so every call page-faults its working set back in. On
the 2-core reference CPU, the packaged SAR model at 8 tiles of 512 px spent a fifth
of its CPU time in the kernel (1.4 M minor faults per 16 tiles) and the old
pipeline also trimmed the heap after every tile row, which did the same to the
blocks below the threshold.

:func:`keep_freed_memory` turns that off for the process, as starting it with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=268435456`` would: large blocks come
from the heap and, once glibc's per-size cache of the small remainders that
aligned allocations leave is full (~7 calls), freed ones are reused by the next
call without a fault. Peak memory stays about what one call needs (measured with the
same batch: +4-6 % at 1536^2 and 6144^2); it is given back at the end of each scene
by :func:`release_freed_memory`, so that the GUI or a long-lived process idles small, or
once at the end of a ``colorize`` batch (:func:`deferred_release`).

Only glibc (Linux) has these knobs; elsewhere both functions do nothing. A user
who set any ``MALLOC_*`` variable, or ``GEOCOLOR_MALLOC_TUNING=0``, keeps their
settings.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Free memory at the top of the heap kept rather than returned (bytes).
TRIM_THRESHOLD = 256 << 20


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None (another platform or C library)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - musl has no mallopt
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def user_opted_out() -> bool:
    """True when the environment already chose the allocator's settings."""
    if os.environ.get("GEOCOLOR_MALLOC_TUNING", "1").strip() in ("0", "false", "no", "off"):
        return True
    return any(name.startswith("MALLOC_") for name in os.environ)


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep large freed blocks for reuse (once per process); True when in effect.

    (Two threads calling it at once may both set the same values: harmless.)
    """
    libc = None if user_opted_out() else _libc()
    kept = bool(libc) and bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    log.debug("heap: large freed blocks %s", "kept for reuse" if kept else "left to the allocator")
    return kept


#: Open :func:`deferred_release` blocks: while any is open, scenes do not trim the heap.
_DEFERRED = 0


def release_freed_memory() -> None:
    """Give the freed heap memory of every thread back to the OS (glibc ``malloc_trim``),
    unless a :func:`deferred_release` block is open (it trims once, when it ends)."""
    libc = _libc()
    if libc is not None and _DEFERRED == 0:
        libc.malloc_trim(0)


@contextlib.contextmanager
def deferred_release(release_at_end: bool = True) -> Iterator[None]:
    """Trim the heap once at the end (``release_at_end``; not at all when the process exits
    next) instead of after every scene: for a batch of inputs, whose next scene reuses the
    memory the last one freed. On 52 chips of 256 px (packaged model, 2 cores) a trim after
    each took 98.6-99.3 ms a chip against 81.1-83.4 ms without, at the same peak RSS
    (657-666 MB); after a 2048^2 scene a trim takes 16-22 ms. glibc still returns free
    memory above :data:`TRIM_THRESHOLD` on its own."""
    global _DEFERRED
    _DEFERRED += 1
    try:
        yield
    finally:
        _DEFERRED -= 1
        if release_at_end:
            release_freed_memory()
