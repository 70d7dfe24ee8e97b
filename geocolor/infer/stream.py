"""The streaming pipeline: reader thread -> model (main thread) -> writer thread.

The reader reads one full-width band of rows per tile row, converts it to the
model's unit scale (:mod:`geocolor.infer.sarinput`), reflect-pads it and cuts the
tiles; tiles whose pixels are all nodata are counted but not sent to the model.
The writer adds each tile's output times the blending window
(:mod:`geocolor.infer.tiling`) into a buffer of ``tile`` rows; when a tile row is
done, the rows no later tile touches are divided by the (separable) summed
weights, quantised and written, and the buffer shifts up. Memory holds one band
of input rows, one buffer of output rows and a few batches in the queues.

When the model runs on a GPU, the writer's work (blending and quantising) is the
bottleneck, so it is split by column stripes over several threads
(:func:`writer_threads`). The overviews of a COG are made from each band of
written rows in a thread of their own (:mod:`geocolor.infer.pyramid`).
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from geocolor.device import usable_cores
from geocolor.infer.backend import Runner
from geocolor.infer.cogwrite import CogWriter
from geocolor.infer.heap import release_freed_memory
from geocolor.infer.output import OverviewPlan, open_scratch
from geocolor.infer.provenance import version_tag
from geocolor.infer.pyramid import StreamedOverviews
from geocolor.infer.sarinput import BorderMask, SarInput, read_failure
from geocolor.infer.tiling import TileGrid
from geocolor.io.diskspace import raise_if_disk_full
from geocolor.io.raster import RASTER_ERRORS, open_raster
from geocolor.io.source import RasterSource, source_name

#: Batches waiting between stages (each queue).
QUEUE_DEPTH = 3
#: Nice increment of the I/O threads: reader, writer, blend, overview and compression threads
#: (Linux sets it per thread), so that on few cores the model's threads would keep their
#: cores and the I/O work, which can wait in the queues, fill the gaps. 0, the default, turns
#: it off: neither 10 nor 19 changed the CPU ratio beyond this host's noise (nineteenth and
#: twentieth sessions, benchmarks/README.md).
IO_THREAD_NICE = 0

ProgressFn = Callable[[int, int], None]


@dataclass
class _Batch:
    """Tiles travelling reader -> model -> writer."""

    tiles: list[tuple[int, int]] = field(default_factory=list)
    masks: list[np.ndarray | None] = field(default_factory=list)  # per tile; None: all valid
    inputs: list[np.ndarray] = field(default_factory=list)
    x: Any = None  # (B, 1, T, T) model input (numpy or pinned tensor)
    y: np.ndarray | None = None  # (B, 3, T, T) model output in [-1, 1]
    #: (k, r): tile row r is complete once the first k tiles of this batch are added.
    completes: list[tuple[int, int]] = field(default_factory=list)
    skipped: int = 0


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Stopped(Exception):
    pass


def lower_io_priority() -> None:
    """Give the calling thread :data:`IO_THREAD_NICE` more niceness (Linux only; best effort)."""
    if IO_THREAD_NICE <= 0 or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + IO_THREAD_NICE))


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event, alive: Callable[[], bool] | None = None) -> Any:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if alive is not None and not alive():
                raise RuntimeError("a pipeline thread ended unexpectedly") from None
            continue


def _reader(
    src: RasterSource,
    sar: SarInput,
    grid: TileGrid,
    batch_size: int,
    pin: bool,
    out: queue.Queue,
    stop: threading.Event,
    timing: dict[str, float],
) -> None:
    """Read row bands, cut tiles, skip all-nodata ones, and queue batches. A window of the
    input (``grid.origin``) is read with the pixels around it that its tiles reach."""
    try:
        lower_io_priority()
        with open_raster(src) as ds, BorderMask(sar, ds) as border:
            pending = _Batch()
            tile = grid.tile
            row0, col0 = grid.origin
            # the band's columns: those the tiles read (past a window's edges: the scene's)
            left = grid.data_span(grid.xs[0], 1)[0]
            right = grid.data_span(grid.xs[-1], 1)[1]
            for r, y in enumerate(grid.ys):
                a, b = grid.data_span(y, 0)
                window = Window(col0 + left, row0 + a, right - left, b - a)
                try:
                    data = ds.read(sar.band, window=window)
                    mask = ds.read_masks(sar.band, window=window) if sar.read_mask else None
                except RASTER_ERRORS as exc:
                    raise read_failure(src, exc) from None
                valid = sar.valid(data, mask)
                border.apply(valid, data, row0 + a, col0 + left)
                # the model's [-1, 1], -1 outside the data
                band = sar.to_model(data, valid, *_places(sar, row0 + a, row0 + b,
                                                           col0 + left, col0 + right))
                del data, mask
                # per column of the band (a tile spans all its rows): one pass each, instead
                # of one per tile over its own and its neighbours' overlapping columns
                any_valid, all_valid = valid.any(axis=0), valid.all(axis=0)
                top, bottom = grid.row_pads(r)
                for c, x in enumerate(grid.xs):
                    xa, xb = grid.data_span(x, 1)
                    ba, bb = xa - left, xb - left  # the band's columns
                    if not any_valid[ba:bb].any():
                        pending.skipped += 1
                        continue
                    pending.tiles.append((r, c))
                    # None: every pixel valid; a copy, so that no view keeps the band alive
                    full = all_valid[ba:bb].all()
                    pending.masks.append(None if full else valid[:, ba:bb].copy())
                    pads = ((top, bottom), (xa - x, x + tile - xb))
                    piece = band[:, ba:bb]
                    # reflect about the scene's edges (only edge tiles need it)
                    pending.inputs.append(
                        np.pad(piece, pads, mode="reflect") if any(map(any, pads)) else piece
                    )
                    if len(pending.tiles) == batch_size:
                        _put(out, _stack(pending, pin), stop)
                        pending = _Batch()
                del band, valid
                pending.completes.append((len(pending.tiles), r))
                if not pending.tiles:  # nothing waiting: pass the row on right away
                    _put(out, pending, stop)
                    pending = _Batch()
            if pending.tiles or pending.completes or pending.skipped:
                _put(out, _stack(pending, pin), stop)
        timing["reader_cpu_s"] = time.thread_time()
        _put(out, _END, stop)
    except _Stopped:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        with contextlib.suppress(_Stopped):
            _put(out, _Failure(exc), stop)


def _places(sar: SarInput, a: int, b: int, c: int, d: int) -> tuple[np.ndarray | None, ...]:
    """The input's rows ``a:b`` and columns ``c:d`` of a band, where the conversion needs
    them (a calibrated input); else nothing."""
    if sar.calibration is None:
        return ()
    return np.arange(a, b, dtype=np.float64), np.arange(c, d, dtype=np.float64)


def _stack(batch: _Batch, pin: bool) -> _Batch:
    if batch.inputs:
        x = np.stack(batch.inputs)[:, None]
        batch.x = torch.from_numpy(x).pin_memory() if pin else x
        batch.inputs = []
    return batch


def column_stripes(width: int, parts: int) -> list[tuple[int, int]]:
    """``[a, b)`` column ranges splitting ``width`` columns into ``parts`` near-equal stripes
    (fewer when the scene is narrower than ``parts`` columns)."""
    parts = max(1, min(parts, width))
    edges = [round(i * width / parts) for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def writer_threads(device_type: str) -> int:
    """Threads that blend and quantise the output (:class:`_Writer`).

    One when the model runs on the CPU: its threads want every core, and the writer's work
    fits in the gaps. On a GPU the model is no longer the bottleneck and the writer is
    (fifteenth session, ``benchmarks/README.md``: 16-20 CPU-s of blending for 2-4 s of model
    on an H100), so half the cores, at most 8, take a column stripe each.
    """
    if device_type == "cpu":
        return 1
    return max(1, min(8, usable_cores() // 2))


class _Writer:
    """Blends tile outputs into a ``tile``-row buffer and writes finished rows.

    With ``threads`` > 1 the buffer is cut into column stripes, one per thread, and each thread
    blends, quantises and shifts its own stripe (numpy releases the GIL there). Every pixel
    still sums its tiles in the same order, so the output is bit-identical to one thread's.
    """

    def __init__(
        self,
        dataset: rasterio.io.DatasetWriter | None,
        grid: TileGrid,
        mask_mode: str | None,
        threads: int = 1,
        pyramid: StreamedOverviews | None = None,
        cog: CogWriter | None = None,
    ) -> None:
        """Rows go to ``dataset``, or to level 0 of ``cog`` when it is given (then
        ``dataset`` is None)."""
        self.ds = dataset
        self.cog = cog
        self.pyramid = pyramid
        self.grid = grid
        self.mask_mode = mask_mode  # None | "mask" | "alpha"
        self.acc = np.zeros((3, grid.tile, grid.width), dtype=np.float32)
        self.valid = np.zeros((grid.tile, grid.width), dtype=bool)
        self.top = 0  # scene row of buffer row 0
        self.rows_written = 0
        self.stripes = column_stripes(grid.width, threads)
        self.pool = (
            ThreadPoolExecutor(len(self.stripes) - 1, thread_name_prefix="geocolor-blend",
                               initializer=lower_io_priority)
            if len(self.stripes) > 1
            else None
        )
        # the overviews get a thread of their own, so that where cores are free (a GPU run)
        # they do not lengthen the writer's path; one worker keeps the bands in order
        self.overview_pool = (
            ThreadPoolExecutor(1, thread_name_prefix="geocolor-overviews",
                               initializer=lower_io_priority)
            if pyramid is not None
            else None
        )
        self.overview_jobs: collections.deque[Future] = collections.deque()
        self.overview_cpu_s = 0.0

    def close(self) -> None:
        """Stop the stripe and overview threads (idempotent)."""
        for pool in (self.pool, self.overview_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self.overview_pool = None

    def _send_to_overviews(self, rgb: np.ndarray, valid: np.ndarray | None) -> None:
        """Queue a written band of rows for the overview thread (at most QUEUE_DEPTH waiting)."""
        while len(self.overview_jobs) >= QUEUE_DEPTH:
            self.overview_jobs.popleft().result()
        self.overview_jobs.append(self.overview_pool.submit(self._push_overviews, rgb, valid))

    def _push_overviews(self, rgb: np.ndarray, valid: np.ndarray | None) -> None:
        start = time.thread_time()
        with rasterio.Env():  # GDAL's error handler is per thread (see _in_gdal_env)
            self.pyramid.push(rgb, valid)
        self.overview_cpu_s += time.thread_time() - start

    def drain(self) -> None:
        """Wait for the overview thread to take every band sent (raises what it raised)."""
        while self.overview_jobs:
            self.overview_jobs.popleft().result()

    def _each_stripe(self, work: Callable[[int, int], None]) -> None:
        """``work(a, b)`` for every column stripe: the calling thread takes the first."""
        if self.pool is None:
            work(0, self.grid.width)
            return
        futures = [self.pool.submit(work, a, b) for a, b in self.stripes[1:]]
        try:
            work(*self.stripes[0])
        finally:
            for future in futures:
                future.result()

    def take(self, batch: _Batch) -> None:
        """Blend a batch of model outputs, writing each tile row as soon as it is complete."""
        start = 0
        for k, r in batch.completes:
            self.add(batch, start, k)
            self.finish_row(r)
            start = k
        self.add(batch, start, len(batch.tiles))

    def add(self, batch: _Batch, start: int, stop: int) -> None:
        """Blend tiles ``start:stop`` of ``batch`` into the buffer."""
        self._each_stripe(lambda a, b: self._add_columns(batch, start, stop, a, b))

    def _add_columns(self, batch: _Batch, start: int, stop: int, c0: int, c1: int) -> None:
        grid = self.grid
        for k in range(start, stop):
            r, c = batch.tiles[k]
            y, x = grid.ys[r], grid.xs[c]
            ya, yb = grid.scene_span(y, grid.height)
            tile_a, tile_b = grid.scene_span(x, grid.width)
            xa, xb = max(tile_a, c0), min(tile_b, c1)
            if xa >= xb:
                continue
            out = batch.y[k, :, ya - y : yb - y, xa - x : xb - x]
            w = grid.window[ya - y : yb - y, xa - x : xb - x]
            self.acc[:, ya - self.top : yb - self.top, xa:xb] += out * w
            valid = self.valid[ya - self.top : yb - self.top, xa:xb]
            if batch.masks[k] is None:
                valid[...] = True
            else:  # the mask covers the tile's data span (wider than the output in a window)
                ma, mc = grid.data_span(y, 0)[0], grid.data_span(x, 1)[0]
                valid |= batch.masks[k][ya - ma : yb - ma, xa - mc : xb - mc]

    def finish_row(self, r: int) -> None:
        grid = self.grid
        end = max(self.top, grid.rows_done_after(r))
        n = end - self.top
        if n <= 0:
            return
        rgb = np.empty((3, n, grid.width), dtype=np.uint8)
        self._each_stripe(lambda a, b: self._quantise(rgb, n, a, b))
        valid = self.valid[:n]
        if self.cog is not None:
            self.cog.push(0, rgb, valid)  # copies the rows: the buffer may shift
        else:
            self._write_rows(rgb, valid)
        if self.pyramid is not None:
            self._send_to_overviews(rgb, valid.copy() if self.pyramid.masked else None)
        self.rows_written += n
        self._each_stripe(lambda a, b: self._shift(n, a, b))
        self.top = end

    def _write_rows(self, rgb: np.ndarray, valid: np.ndarray) -> None:
        """Rows ``self.top:`` (and their mask or alpha) into the scratch file."""
        window = Window(0, self.top, self.grid.width, rgb.shape[1])
        self.ds.write(rgb, indexes=[1, 2, 3], window=window)
        if self.mask_mode == "mask":
            self.ds.write_mask(valid.astype(np.uint8) * 255, window=window)
        elif self.mask_mode == "alpha":
            self.ds.write(valid.astype(np.uint8) * 255, indexes=4, window=window)

    def _quantise(self, rgb: np.ndarray, n: int, c0: int, c1: int) -> None:
        """Rows ``:n``, columns ``c0:c1`` of the buffer -> uint8 RGB in ``rgb`` (0 outside the
        data)."""
        block = self.acc[:, :n, c0:c1]  # in place: these rows are cleared by _shift anyway
        block /= self.grid.norm_y[self.top : self.top + n, None]
        block /= self.grid.norm_x[None, c0:c1]  # now the blend in [-1, 1]
        block += 1.0
        block *= 127.5
        np.rint(block, out=block)
        np.clip(block, 0, 255, out=block)
        part = rgb[:, :, c0:c1]
        np.copyto(part, block, casting="unsafe")
        part *= self.valid[:n, c0:c1]  # 4-5x faster than part[:, ~valid] = 0 (no fancy indexing)

    def _shift(self, n: int, c0: int, c1: int) -> None:
        """Move the rows still in flight up by ``n`` (columns ``c0:c1``), ``n`` rows at a time (no
        overlapping copy, no temporary), and clear the rows freed at the bottom."""
        keep = self.grid.tile - n
        for i in range(0, keep, n):
            j = min(keep, i + n)
            self.acc[:, i:j, c0:c1] = self.acc[:, i + n : j + n, c0:c1]
            self.valid[i:j, c0:c1] = self.valid[i + n : j + n, c0:c1]
        self.acc[:, keep:, c0:c1] = 0.0
        self.valid[keep:, c0:c1] = False


def output_tags(
    src: RasterSource, sar: SarInput, run: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The dataset tags of an output: geocolor's version, the input's name and how it was
    read, and ``run``'s (what made it: see :func:`geocolor.infer.scene.provenance_tags`)."""
    return {
        **version_tag(),
        "GEOCOLOR_SOURCE": source_name(src),
        "GEOCOLOR_INPUT": sar.describe(),
        **(run or {}),
    }


def _in_gdal_env(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` run inside a ``rasterio.Env`` of its own thread: GDAL's error handler is per thread,
    and with rasterio < 1.4 a thread without an Env gets GDAL's default handler, which prints
    ("ERROR 1: _tiffWriteProc:No space left on device") on stderr instead of logging."""

    def run(*args: Any) -> None:
        with rasterio.Env():
            fn(*args)

    return run


def _writer_loop(
    writer: _Writer,
    total: int,
    progress: ProgressFn | None,
    inbox: queue.Queue,
    stop: threading.Event,
    errors: list[BaseException],
    timing: dict[str, float],
) -> None:
    done = 0
    try:
        lower_io_priority()
        while True:
            item = _get(inbox, stop)
            if item is _END:
                writer.drain()
                timing["writer_cpu_s"] = time.thread_time()
                if writer.pyramid is not None:
                    timing["overviews_cpu_s"] = writer.overview_cpu_s
                return
            writer.take(item)
            done += len(item.tiles) + item.skipped
            if progress is not None:
                progress(done, total)
    except _Stopped:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        errors.append(exc)
        stop.set()


def stream(
    src: RasterSource,
    sar: SarInput,
    grid: TileGrid,
    runner: Runner,
    batch_size: int,
    scratch: Path,
    georef: dict[str, Any],
    mask_mode: str | None,
    options: dict[str, str],
    overviews: OverviewPlan | None,
    progress: ProgressFn | None,
    blend_threads: int = 1,
    pyramid: StreamedOverviews | None = None,
    cog: CogWriter | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run reader, model and writer over the whole scene into ``scratch``, then build ``overviews``.

    ``blend_threads``: threads that blend and quantise the output (:func:`writer_threads`).
    ``pyramid``: overview levels the writer makes from each band of rows it writes (then
    ``overviews`` is None; the caller finishes it once the scratch file is closed).
    ``cog``: the rows go to this COG's level 0 instead of a scratch file (``scratch``,
    ``options`` and ``overviews`` are then unused; the caller assembles it).
    ``tags``: the scratch file's dataset tags (default :func:`output_tags`). A ``grid``
    with an ``origin`` colorizes that window of ``src``.
    """
    stop = threading.Event()
    to_model: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
    to_writer: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
    writer_errors: list[BaseException] = []
    timing: dict[str, float] = {"model_s": 0.0}
    tiles_run = 0
    ds = None
    if cog is None:
        ds = open_scratch(scratch, grid.width, grid.height, georef, mask_mode == "alpha", options)
        ds.update_tags(**(output_tags(src, sar) if tags is None else tags))
    writer = _Writer(ds, grid, mask_mode, blend_threads, pyramid, cog)
    reader_thread = threading.Thread(
        target=_in_gdal_env(_reader),
        args=(src, sar, grid, batch_size, runner.pin_memory, to_model, stop, timing),
        name="geocolor-reader",
        daemon=True,
    )
    writer_thread = threading.Thread(
        target=_in_gdal_env(_writer_loop),
        args=(writer, len(grid), progress, to_writer, stop, writer_errors, timing),
        name="geocolor-writer",
        daemon=True,
    )
    if progress is not None:
        try:
            progress(0, len(grid))
        except BaseException:  # a callback may stop the run (GUI cancel): close the scratch
            if ds is not None:
                ds.close()
            raise
    try:
        reader_thread.start()
        writer_thread.start()
        while True:
            item = _get(to_model, stop, alive=reader_thread.is_alive)
            if isinstance(item, _Failure):
                raise item.exc
            if item is _END:
                _put(to_writer, _END, stop)
                break
            if item.x is not None:
                t0 = time.perf_counter()
                item.y = runner(item.x)
                timing["model_s"] += time.perf_counter() - t0
                item.x = None
                tiles_run += len(item.tiles)
            _put(to_writer, item, stop)
        writer_thread.join()
        if writer_errors:
            raise writer_errors[0]
        if writer.rows_written != grid.height:
            raise RuntimeError(f"internal error: wrote {writer.rows_written} of {grid.height} rows")
        if overviews is not None:
            raise_if_disk_full(scratch)  # GDAL crashes building overviews of a file it could not write
            t0 = time.perf_counter()
            overviews.build(ds)
            timing["overviews_s"] = time.perf_counter() - t0
    except _Stopped:
        if writer_errors:
            raise writer_errors[0] from None
        raise
    finally:
        stop.set()
        reader_thread.join(timeout=10)
        writer_thread.join(timeout=10)
        writer.close()
        if ds is not None:
            ds.close()
        release_freed_memory()  # the scene's buffers and the model's working memory
    skipped = len(grid) - tiles_run
    return {
        "tiles_run": tiles_run,
        "tiles_skipped": skipped,
        "timing": {k: round(v, 3) for k, v in timing.items()},
    }
