"""The geocolor window: open, pick a model, colorize in the background, compare, save, reset.

Everything that can fail reports through :class:`~geocolor.gui.dialogs.Dialogs`
(tests pass a recording stand-in): the message is the one line ``geocolor colorize``
prints, never a traceback. The window never waits on the engine: a run lives in a
:class:`~geocolor.gui.jobs.ColorizeJob` thread that the event loop polls.
"""

from __future__ import annotations

import gc
import logging
import shutil
import tempfile
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import ttk
from typing import Any

from geocolor.errors import GeocolorError
from geocolor.gui import choice, jobs, previews
from geocolor.gui.dialogs import TITLE, Dialogs
from geocolor.gui.views import CompareView, ImageView, Viewport

log = logging.getLogger("geocolor.gui")


class App:
    """The main window's state and actions; ``root`` is a ``tk.Tk``.

    Args:
        dialogs: message boxes and file choosers (default: Tk's).
        device: where runs execute (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        job_factory: builds a :class:`~geocolor.gui.jobs.ColorizeJob` (tests slow it down).
        poll_ms: how often the event loop looks at a running job.
    """

    def __init__(
        self,
        root: tk.Tk,
        *,
        dialogs: Any = None,
        device: str = "auto",
        job_factory: Callable[..., jobs.ColorizeJob] = jobs.ColorizeJob,
        poll_ms: int = 50,
    ) -> None:
        from geocolor.infer.batch import ModelCache

        self.root = root
        self.dialogs = dialogs if dialogs is not None else Dialogs(root)
        self.device = device
        self.job_factory = job_factory
        self.poll_ms = poll_ms
        self.models = ModelCache()
        self.entries: list[choice.ModelEntry] = choice.packaged_entries()
        self.model_chosen = False  # the user picked a model: Open keeps it
        self._summaries: dict[Path, str] = {}
        self.input: Path | None = None
        self.preview: previews.InputPreview | None = None
        self.job: jobs.ColorizeJob | None = None
        self.result: jobs.RunResult | None = None
        self.task: jobs.BackgroundCall | None = None
        self.workdir: Path | None = None
        self._watching = False
        root.report_callback_exception = self._callback_failed
        self._build()
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._select(0)
        self._refresh()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        root = self.root
        root.title(TITLE)
        root.minsize(720, 420)
        width = min(1280, int(root.winfo_screenwidth() * 0.9))
        height = min(760, int(root.winfo_screenheight() * 0.85))
        root.geometry(f"{width}x{height}")
        bar = ttk.Frame(root, padding=(6, 6, 6, 2))
        bar.grid(row=0, column=0, sticky="ew")
        self.open_button = ttk.Button(bar, text="Open...", command=self.open_dialog)
        self.model_box = ttk.Combobox(bar, state="readonly", width=36)
        self.model_box.bind("<<ComboboxSelected>>", self._on_model_selected)
        self.colorize_button = ttk.Button(bar, text="Colorize", command=self.colorize)
        self.cancel_button = ttk.Button(bar, text="Cancel", command=self.cancel)
        self.save_button = ttk.Button(bar, text="Save...", command=self.save)
        self.reset_button = ttk.Button(bar, text="Reset", command=self.reset)
        self.fit_button = ttk.Button(bar, text="Fit", command=lambda: self.viewport.fit())
        widgets = [
            self.open_button,
            ttk.Label(bar, text="Model:"),
            self.model_box,
            self.colorize_button,
            self.cancel_button,
            self.save_button,
            self.reset_button,
            self.fit_button,
        ]
        for i, widget in enumerate(widgets):
            widget.grid(row=0, column=i, padx=(0, 6))
        self.model_status = ttk.Label(root, padding=(8, 0, 8, 4), foreground="#555555")
        self.model_status.grid(row=1, column=0, sticky="ew")

        self.notebook = ttk.Notebook(root)
        self.notebook.grid(row=2, column=0, sticky="nsew", padx=6)
        self.viewport = Viewport()
        side = ttk.Frame(self.notebook)
        self.input_view = ImageView(
            side,
            "input",
            self.viewport,
            placeholder="Open a photo, a grey image or a SAR scene (Ctrl+O)",
        )
        self.segmentation_view = ImageView(
            side, "segmentation", self.viewport, placeholder="Segmentation (photo models)"
        )
        self.colour_view = ImageView(
            side, "colorized", self.viewport, placeholder="Colorize (Ctrl+Enter)"
        )
        side.rowconfigure(0, weight=1)
        self._side = side
        self.compare = CompareView(self.notebook, self.viewport)
        self.notebook.add(side, text="Side by side")
        self.notebook.add(self.compare, text="Before / after")
        self._layout_views(show_segmentation=False)

        foot = ttk.Frame(root, padding=(6, 4))
        foot.grid(row=3, column=0, sticky="ew")
        self.progress = ttk.Progressbar(foot, length=220, mode="determinate", maximum=100)
        self.progress.grid(row=0, column=0, padx=(0, 8))
        self.status = ttk.Label(foot)
        self.status.grid(row=0, column=1, sticky="w")
        root.columnconfigure(0, weight=1)
        root.rowconfigure(2, weight=1)

        root.bind("<Control-o>", lambda e: self.open_dialog())
        root.bind("<Control-s>", lambda e: self.save())
        root.bind("<Control-Return>", lambda e: self.colorize())
        root.bind("<Escape>", lambda e: self.cancel())
        root.bind("<Control-0>", lambda e: self.viewport.fit())

    def _layout_views(self, show_segmentation: bool) -> None:
        views = (
            [self.input_view]
            + ([self.segmentation_view] if show_segmentation else [])
            + [self.colour_view]
        )
        for view in (self.input_view, self.segmentation_view, self.colour_view):
            view.grid_forget()
        for col in range(3):
            self._side.columnconfigure(col, weight=0, uniform="")
        for col, view in enumerate(views):
            view.grid(row=0, column=col, sticky="nsew", padx=2, pady=2)
            self._side.columnconfigure(col, weight=1, uniform="views")
        self.shows_segmentation = show_segmentation

    # ------------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        """A run was started and the window has not yet shown how it ended."""
        return self._watching

    def _refresh(self) -> None:
        """Enable the buttons that make sense now."""
        busy = self.busy

        def state(widget: Any, enabled: bool) -> None:
            widget.state(["!disabled"] if enabled else ["disabled"])

        state(self.open_button, not busy)
        state(self.model_box, not busy)
        self.model_box.state(["readonly"])
        state(self.colorize_button, not busy and self.input is not None)
        state(self.cancel_button, self.running)
        state(self.save_button, not busy and self.result is not None)
        state(self.reset_button, not busy)

    def set_status(self, text: str) -> None:
        self.status.configure(text=text)

    def fail(self, message: str) -> None:
        """Show one line in an error dialog (and the status line)."""
        if hasattr(self, "status"):
            self.set_status(f"Error: {message}")
        self.dialogs.error(message)

    def _callback_failed(self, exc: type, value: BaseException, tb: Any) -> None:
        """An unexpected error in a Tk callback: one line in a dialog (traceback: -v logs)."""
        log.debug("GUI callback failed", exc_info=(exc, value, tb))
        self.fail(jobs.one_line_error(value))

    # ------------------------------------------------------------------ models

    def selected_entry(self) -> choice.ModelEntry:
        return self.entries[self._selected]

    def _select(self, index: int) -> None:
        self._selected = index
        self.model_box.configure(values=[e.label for e in self.entries] + [choice.OTHER_LABEL])
        self.model_box.current(index)
        self.model_status.configure(text=self._summary(self.entries[index]))

    def _summary(self, entry: choice.ModelEntry) -> str:
        if entry.path not in self._summaries:
            from geocolor.io.modelfile import read_card

            try:
                self._summaries[entry.path] = (
                    f"{entry.path.name}: {choice.card_summary(read_card(entry.path))}"
                )
            except GeocolorError as exc:
                return f"unusable model: {exc}"
        return self._summaries[entry.path]

    def _on_model_selected(self, event: Any = None) -> None:
        index = self.model_box.current()
        if index < len(self.entries):
            self.select_model(index)
        else:
            self.choose_other_model()

    def select_model(self, index: int) -> None:
        """Pick ``entries[index]`` (the user's choice: kept when another file is opened)."""
        self.model_chosen = True
        self._select(index)
        self._reload_input_view()

    def choose_other_model(self, path: str | Path | None = None) -> bool:
        """ "Other...": ask for a model file (or take ``path``), check its card, select it."""
        if path is None:
            start = str(self.entries[-1].path.parent) if len(self.entries) > 2 else None
            path = self.dialogs.open_model(start)
        if not path:
            self._select(self._selected)  # back to the previous choice
            return False
        try:
            entry = choice.other_entry(Path(path))
        except GeocolorError as exc:
            self._select(self._selected)
            self.fail(str(exc))
            return False
        known = [i for i, e in enumerate(self.entries) if e.path == entry.path]
        if not known:
            self.entries.append(entry)
        self.select_model(known[0] if known else len(self.entries) - 1)
        return True

    def preselect_model(self, model: str | Path) -> bool:
        """``sar`` / ``semantic`` (the packaged models, as ``colorize --model``) or a model file."""
        if isinstance(model, str) and model in choice.PACKAGED_LABELS:
            self.select_model(self._default_index(model))
            return True
        return self.choose_other_model(model)

    def _default_index(self, kind: str) -> int:
        """Index of the packaged model of ``kind`` (the picker's first two entries)."""
        return [e.label for e in self.entries].index(choice.PACKAGED_LABELS[kind])

    # ------------------------------------------------------------------ background reads

    @property
    def busy(self) -> bool:
        """A run, a read or a save is under way (the buttons that would interfere are off)."""
        return self.running or self.task is not None

    def _start_task(self, status: str, fn: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run ``fn`` in a thread; on the event loop, ``then(value)`` or an error dialog."""
        self.task = jobs.BackgroundCall(fn)
        self.set_status(status)
        self.progress.configure(mode="indeterminate")
        self.progress.start(20)
        self._refresh()
        self.root.after(self.poll_ms, self._poll_task, then)

    def _poll_task(self, then: Callable[[Any], None]) -> None:
        task = self.task
        if task is None:
            return
        if not task.done:
            self.root.after(self.poll_ms, self._poll_task, then)
            return
        self.task = None
        self.progress.stop()
        self.progress.configure(mode="determinate", value=0)
        if task.error:
            self.fail(task.error)
        else:
            then(task.value)
        self._refresh()

    # ------------------------------------------------------------------ open

    def open_dialog(self) -> None:
        if self.busy:
            return
        start = str(self.input.parent) if self.input else None
        path = self.dialogs.open_input(start)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Show ``path`` (photo, grey image or scene) from a preview-resolution read.

        The read runs in the background; False when ``path`` cannot even be opened (an
        error dialog says why) or the window is busy.
        """
        if self.busy:
            return False
        path = Path(path)
        try:
            kind, reason = choice.default_kind(path)
        except GeocolorError as exc:
            self.fail(str(exc))
            return False
        plain = kind == "semantic"
        index = self._selected if self.model_chosen else self._default_index(kind)
        entry = self.entries[index]
        why = "" if self.model_chosen else f" (model: {reason})"
        self._start_task(
            f"Opening {path}...",
            lambda: previews.read_input_preview(path, plain, entry),
            lambda preview: self._opened(path, index, preview, why),
        )
        return True

    def _opened(
        self, path: Path, index: int, preview: previews.InputPreview, why: str = ""
    ) -> None:
        if path != self.input:
            self._clear_result()
            self.viewport.fit()
        self.input, self.preview = path, preview
        self._select(index)
        self.input_view.set_image(preview.image)
        if self.result is not None:
            self.compare.set_pair(preview.image, self.colour_view.image)
        self.root.title(f"{TITLE} - {path.name}")
        self.set_status(f"{path}: {preview.description}{why}")

    def _reload_input_view(self) -> None:
        """Read the input again as the newly selected model sees it."""
        if self.input is None or self.busy:
            return
        path, entry, index = self.input, self.selected_entry(), self._selected
        plain = bool(self.preview and self.preview.plain)
        self._start_task(
            f"Reading {path.name}...",
            lambda: previews.read_input_preview(path, plain, entry),
            lambda preview: self._opened(path, index, preview),
        )

    # ------------------------------------------------------------------ colorize

    def _workdir(self) -> Path:
        if self.workdir is None or not self.workdir.is_dir():
            self.workdir = Path(tempfile.mkdtemp(prefix="geocolor-gui-"))
        return self.workdir

    def colorize(self) -> None:
        """Start a run of the selected model on the open input (in the background)."""
        if self.busy:
            return
        if self.input is None:
            self.fail("nothing to colorize: open a photo or a scene first (Ctrl+O)")
            return
        self._clear_result()
        entry = self.selected_entry()
        self.job = self.job_factory(
            self.input, entry.path, self._workdir(), device=self.device, models=self.models
        ).start()
        self._watching = True
        self.progress.configure(mode="determinate", value=0)
        self.set_status(f"Colorizing {self.input.name} with {entry.path.name}...")
        self._refresh()
        self.root.after(self.poll_ms, self._poll)

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()
            self.set_status("Cancelling...")
            self._refresh()

    def _poll(self) -> None:
        if self.job is None:
            return
        snap = self.job.snapshot()
        if snap.state == jobs.RUNNING:
            if snap.total > 0:
                if str(self.progress.cget("mode")) != "determinate":
                    self.progress.stop()
                    self.progress.configure(mode="determinate")
                self.progress.configure(value=100.0 * snap.done / snap.total)
                if not snap.cancel_requested:
                    unit = "tiles" if self.selected_entry().kind == "sar" else "steps"
                    self.set_status(
                        f"Colorizing {self.input.name}: {snap.done} / {snap.total} {unit}"
                    )
            elif str(self.progress.cget("mode")) != "indeterminate":
                self.progress.configure(mode="indeterminate")
                self.progress.start(20)
            self.root.after(self.poll_ms, self._poll)
            return
        self._watching = False
        self.progress.stop()
        self.progress.configure(mode="determinate", value=100 if snap.state == jobs.DONE else 0)
        if snap.state == jobs.DONE and snap.result is not None:
            self._show_result(snap.result)
        elif snap.state == jobs.CANCELLED:
            self.set_status("Cancelled; nothing was written.")
        else:
            self.fail(snap.error or "colorize failed")
        self._refresh()

    def _show_result(self, result: jobs.RunResult) -> None:
        try:
            size = self.preview.image.size
            colour = previews.read_output_preview(result.output, size)
            segmentation = None
            if result.mask is not None:
                segmentation = previews.segmentation_overlay(
                    result.mask, self.preview.image, len(result.classes)
                )
        except GeocolorError as exc:
            self.fail(str(exc))
            return
        self.result = result
        self._layout_views(show_segmentation=segmentation is not None)
        self.segmentation_view.set_image(segmentation)
        self.colour_view.set_image(colour)
        self.compare.set_pair(self.preview.image, colour)
        text = f"{self.preview.description} · done in {result.seconds:.1f} s"
        if result.tiles:
            text += f" ({result.tiles} tile{'' if result.tiles == 1 else 's'})"
        if result.mask is not None:
            shares = previews.class_fractions(result.mask, result.classes)
            text += "; classes " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
        self.set_status(text + " · Save with Ctrl+S")

    def _clear_result(self) -> None:
        if self.result is not None:
            for path in (self.result.output, self.result.mask):
                if path is not None:
                    path.unlink(missing_ok=True)
        self.result = None
        self.segmentation_view.set_image(None)
        self.colour_view.set_image(None)
        self.compare.set_pair(None, None)
        self._layout_views(show_segmentation=False)
        self.progress.configure(value=0)

    # ------------------------------------------------------------------ save, reset, close

    def save(self, path: str | Path | None = None) -> None:
        """Ask where (unless ``path``), confirm an overwrite, and write in the background."""
        if self.busy:
            return
        if self.result is None:
            self.fail("nothing to save: colorize first")
            return
        result = self.result
        if path is None:
            path = self.dialogs.save_as(
                str(result.input.parent),
                jobs.suggested_name(result),
                [(n, e) for n, e in jobs.SAVE_TYPES[result.kind]],
            )
            if not path:
                return
        dst = Path(path)
        overwrite = False
        if dst.exists():
            if not self.dialogs.confirm(f"{dst} exists. Replace it?"):
                self.set_status("Not saved.")
                return
            overwrite = True
        self._start_task(
            f"Saving {dst}...",
            lambda: jobs.save_result(result, dst, overwrite=overwrite),
            lambda saved: self.set_status(f"Saved {saved}"),
        )

    def reset(self) -> None:
        """Clear the input, the result, the views and the model choice."""
        self._stop_job()
        self.job = None
        self._clear_result()
        self.input = None
        self.preview = None
        self.input_view.set_image(None)
        self.model_chosen = False
        self._select(0)
        self.viewport.fit()
        self._remove_workdir()
        self.root.title(TITLE)
        self.set_status("")
        self._refresh()

    def _stop_job(self) -> None:
        if self.job is not None and self.running:
            self.job.cancel()
            self.job.wait(10)
        self._watching = False

    def _remove_workdir(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def close(self) -> None:
        """Stop a run (its temporary files are removed) and close the window."""
        self._stop_job()
        if self.task is not None:
            self.task.wait(30)
        self._remove_workdir()
        for view in (self.input_view, self.segmentation_view, self.colour_view, self.compare.view):
            view.set_image(None)  # their Tk photo images go now, in this (the Tk) thread
        self.root.destroy()
        # Tk objects in reference cycles must be collected in this thread: a collection
        # triggered later in a worker thread would call into Tk from there (Tcl aborts).
        gc.collect()


def run(
    path: str | Path | None = None, model: str | Path | None = None, device: str = "auto"
) -> None:
    """Open the window (optionally with ``path`` and a model file) and run until it is closed.

    Raises:
        GeocolorError: no display to open a window on.
    """
    try:
        root = tk.Tk(className="geocolor")
    except tk.TclError as exc:
        raise GeocolorError(
            f"cannot open a window ({str(exc).strip()}); run 'geocolor gui' in a desktop session "
            "(or under xvfb-run)"
        ) from None
    app = App(root, device=device)
    if model is not None:
        root.after_idle(lambda: app.preselect_model(model))
    if path is not None:
        root.after_idle(lambda: app.open_path(path))
    root.mainloop()
