"""The GUI's colorize run in a background thread, its cancel, and saving its result (no Tk here).

A run goes through exactly the code ``geocolor colorize`` runs for one input
(:func:`geocolor.infer.batch.colorize_job`): the same model-kind checks, the same
pipelines, the same one-line error messages. It writes its full-resolution
result into a private working directory; **Save** then copies it to where the
user wants it (a byte copy of the engine's Cloud-Optimized GeoTIFF, or the
engine's own PNG/JPEG writers), atomically.

Cancel: both pipelines report progress through a ``progress(done, total)``
callback (tiles for scenes, steps for photos); once the user cancels, the
callback raises :class:`Cancelled`, which the engine propagates like any failure:
the scene pipeline's threads stop, the atomic writers remove their temporary
files, and the run's own files in the working directory are removed, so nothing
of a cancelled run stays on disk.

The Tk window polls :meth:`ColorizeJob.snapshot` from its event loop; no Tk
call is ever made from the worker thread.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocolor.errors import GeocolorError, OutputError

log = logging.getLogger("geocolor.gui")

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


class Cancelled(Exception):
    """Raised by the progress callback of a run the user cancelled; the engine unwinds on it."""


@dataclass(frozen=True)
class RunResult:
    """A finished run: the engine's full-resolution output files in the working directory."""

    input: Path
    output: Path  # RGB GeoTIFF (COG) for SAR models, PNG for semantic ones
    mask: Path | None  # segmentation palette PNG (semantic models)
    kind: str  # "sar" | "semantic"
    model: Path
    classes: list[str]
    seconds: float
    tiles: int


@dataclass(frozen=True)
class Snapshot:
    """What the window shows of a run: state, progress and, at the end, result or error."""

    state: str
    done: int
    total: int  # 0 until the engine reports (the photo pipeline never does)
    result: RunResult | None = None
    error: str | None = None
    cancel_requested: bool = False


def model_classes(card: Any) -> list[str]:
    """Class names of a semantic model (``classN`` where the card names none)."""
    n = max(len(card.classes), int(card.arch_args.get("n_classes", 0) or 0))
    return [card.classes[i] if i < len(card.classes) else f"class{i}" for i in range(n)]


class ColorizeJob:
    """One colorize run of ``src`` with the model file ``model`` into ``workdir``.

    Args:
        src: the input (photo, grey image or SAR raster).
        model: the model file (the picker's choice).
        workdir: an existing private directory for the results.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        models: a :class:`geocolor.infer.batch.ModelCache` shared across runs.
    """

    def __init__(
        self, src: Path, model: Path, workdir: Path, *, device: str = "auto", models: Any = None
    ) -> None:
        from geocolor.infer.batch import ModelCache

        self.src = Path(src)
        self.model = Path(model)
        self.workdir = Path(workdir)
        self.device = device
        self.models = models if models is not None else ModelCache()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._state = RUNNING
        self._done = 0
        self._total = 0
        self._result: RunResult | None = None
        self._planned: list[Path | None] = []  # the files this run writes in workdir
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="geocolor-gui-colorize", daemon=True)

    # ---------------------------------------------------------------- control (any thread)

    def start(self) -> ColorizeJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the run to stop; it ends in the ``cancelled`` state at its next progress report."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (for tests and shutdown); True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                self._state,
                self._done,
                self._total,
                self._result,
                self._error,
                self._cancel.is_set(),
            )

    # ---------------------------------------------------------------- the worker thread

    def progress(self, done: int, total: int) -> None:
        """The engine's progress callback (called from its threads); raises once cancelled."""
        with self._lock:
            self._done, self._total = done, total
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")

    def _finish(
        self, state: str, result: RunResult | None = None, error: str | None = None
    ) -> None:
        with self._lock:
            self._state, self._result, self._error = state, result, error

    def _run(self) -> None:
        try:
            result, error = self._colorize()
        except Exception as exc:  # shown as one line in a dialog; -v logs the traceback
            log.debug("colorize failed", exc_info=True)
            result, error = None, one_line_error(exc)
        if self._cancel.is_set() or error is not None:
            _remove(*self._planned)  # a photo's output may be written before its mask failed
        if self._cancel.is_set():
            self._finish(CANCELLED)
        elif error is not None:
            self._finish(FAILED, error=error)
        else:
            self._finish(DONE, result=result)

    def _colorize(self) -> tuple[RunResult | None, str | None]:
        from geocolor.infer.batch import ColorizeOptions, Job, colorize_job
        from geocolor.infer.image import segmentation_trained

        model = self.models.get(self.model)  # ModelFileError: shown as the CLI shows it
        kind = model.card.kind
        stem = self.src.stem or "result"
        output = self.workdir / f"{stem}.colour.{'tif' if kind == 'sar' else 'png'}"
        mask = self.workdir / f"{stem}.mask.png" if segmentation_trained(model.card) else None
        self._planned = [output, mask]
        _remove(output, mask)
        job = Job(self.src, output, mask_out=mask)
        options = ColorizeOptions(model=self.model, device=self.device, overwrite=True)
        started = time.perf_counter()
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")
        outcome = colorize_job(job, options, self.models, progress=self.progress)
        if outcome["status"] != "ok":
            return None, outcome.get("error") or f"{self.src}: colorize failed"
        result = RunResult(
            input=self.src,
            output=output,
            mask=mask,
            kind=kind,
            model=self.model,
            classes=model_classes(model.card) if kind == "semantic" else [],
            seconds=round(time.perf_counter() - started, 3),
            tiles=int(outcome.get("tiles") or 0),
        )
        return result, None


def one_line_error(exc: BaseException) -> str:
    """The message a user sees: a GeocolorError's own line, else ``Type: first line``."""
    if isinstance(exc, GeocolorError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _remove(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            Path(path).unlink(missing_ok=True)


def leftovers(directory: Path) -> list[Path]:
    """Temporary files of the atomic writers (``.NAME.*.partial*``) left in ``directory``."""
    return sorted(p for p in Path(directory).iterdir() if ".partial" in p.name)


# --------------------------------------------------------------------------- saving

#: Save-dialog file types per model kind (first = default extension).
SAVE_TYPES = {
    "sar": [("Cloud-Optimized GeoTIFF", ".tif"), ("PNG image", ".png"), ("JPEG image", ".jpg")],
    "semantic": [("PNG image", ".png"), ("JPEG image", ".jpg"), ("TIFF image", ".tif")],
}


def suggested_name(result: RunResult) -> str:
    """``<input stem>_colour.<default extension>``."""
    return f"{result.input.stem}_colour{SAVE_TYPES[result.kind][0][1]}"


def save_result(result: RunResult, dst: Path, overwrite: bool = False) -> Path:
    """Write ``result`` at full resolution to ``dst``, as ``geocolor colorize -o dst`` would.

    - SAR result to ``.tif``: the engine's georeferenced Cloud-Optimized GeoTIFF, copied
      byte for byte; to ``.png``/``.jpg``: converted by the engine's output writer.
    - photo result: the engine's PNG copied, or re-encoded by the engine's image writer
      for other extensions (JPEG quality 95).

    The file appears only when complete (temporary name, then rename).

    Raises:
        OutputError: ``dst`` exists and ``overwrite`` is false, is the input, is a
            directory, or has an extension the result cannot be written as.
    """
    from geocolor.infer.output import check_output
    from geocolor.io.atomic import atomic_path

    dst = Path(dst)
    allowed = [ext for _, ext in SAVE_TYPES[result.kind]] + [".tiff", ".jpeg"]
    ext = dst.suffix.lower()
    if ext not in allowed:
        raise OutputError(
            f"{dst}: cannot save a {'scene' if result.kind == 'sar' else 'photo'} as "
            f"{ext or '(no extension)'!r}; use {', '.join(e for _, e in SAVE_TYPES[result.kind])}"
        )
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: exists; confirm to replace it")
    check_output(result.input, dst, overwrite=True)
    same_format = ext in ((".tif", ".tiff") if result.kind == "sar" else (".png",))
    if same_format:
        with atomic_path(dst, suffix=ext) as tmp:
            shutil.copyfile(result.output, tmp)
    elif result.kind == "sar":
        from geocolor.infer.output import finalise, output_format

        with atomic_path(dst, suffix=ext) as tmp:
            finalise(result.output, tmp, output_format(dst), True, {})
    else:
        from PIL import Image

        from geocolor.infer.preview import save_image

        with Image.open(result.output) as img:
            img.load()
            save_image(img, dst)
    return dst


class BackgroundCall:
    """Run ``fn()`` in a thread; ``done``, ``value`` and ``error`` (one line) when it ends."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except Exception as exc:  # shown as one line in a dialog; -v logs the traceback
            log.debug("background call failed", exc_info=True)
            self.error = one_line_error(exc)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done
