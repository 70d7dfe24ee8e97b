"""Tk image views: fit to the window, zoom with the wheel, pan by dragging, linked zoom.

An :class:`ImageView` shows a PIL image (a preview-resolution read) on a canvas.
Views that share a :class:`Viewport` zoom and pan together, so the input, the
segmentation and the colorized result stay aligned. :class:`CompareView` shows a
before/after composite split where its slider says.

Zoom 1 is "fit": the whole image in the view. The wheel zooms about the pointer
(x1.25 per notch, from 1/4 to 64), a drag pans, a double click fits again.
"""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Any

from PIL import Image, ImageTk

from geocolor.gui.previews import compare_image

ZOOM_STEP = 1.25
ZOOM_MIN, ZOOM_MAX = 0.25, 64.0
BACKGROUND = "#2b2b2b"


class Viewport:
    """Zoom (1 = fit) and centre (fractions of the image's width and height) shared by views."""

    def __init__(self) -> None:
        self.zoom = 1.0
        self.cx = 0.5
        self.cy = 0.5
        self.views: list[ImageView] = []

    def fit(self) -> None:
        self.zoom, self.cx, self.cy = 1.0, 0.5, 0.5
        self.changed()

    def changed(self) -> None:
        for view in self.views:
            view.render()


class ImageView(tk.Canvas):
    """A canvas showing one image fitted/zoomed per its :class:`Viewport`."""

    def __init__(
        self, master: Any, title: str, viewport: Viewport, placeholder: str = "", **kw: Any
    ) -> None:
        kw.setdefault("background", BACKGROUND)
        kw.setdefault("highlightthickness", 0)
        kw.setdefault("width", 320)
        kw.setdefault("height", 320)
        super().__init__(master, **kw)
        self.title = title
        self.viewport = viewport
        viewport.views.append(self)
        self.image: Image.Image | None = None
        self.placeholder = placeholder
        self._photo: ImageTk.PhotoImage | None = None
        self._drag: tuple[int, int, float, float] | None = None
        self._pending = False
        #: (display px per image px, left, top) of the last render, for tests and events.
        self.geometry: tuple[float, float, float] | None = None
        self.bind("<Configure>", lambda e: self.schedule_render())
        self.bind("<MouseWheel>", self._on_wheel)  # Windows, macOS
        self.bind("<Button-4>", lambda e: self.zoom_at(e.x, e.y, ZOOM_STEP))  # X11
        self.bind("<Button-5>", lambda e: self.zoom_at(e.x, e.y, 1 / ZOOM_STEP))
        self.bind("<ButtonPress-1>", self._on_press)
        self.bind("<B1-Motion>", self._on_drag)
        self.bind("<Double-Button-1>", lambda e: self.viewport.fit())

    # ------------------------------------------------------------------ content

    def set_image(self, image: Image.Image | None, placeholder: str | None = None) -> None:
        self.image = image
        if placeholder is not None:
            self.placeholder = placeholder
        self.render()

    def schedule_render(self) -> None:
        if not self._pending:
            self._pending = True
            self.after_idle(self._render_pending)

    def _render_pending(self) -> None:
        self._pending = False
        self.render()

    def _size(self) -> tuple[int, int]:
        return max(1, self.winfo_width()), max(1, self.winfo_height())

    def render(self) -> None:
        """Draw the visible part of the image at the viewport's zoom (resampled with PIL)."""
        self.delete("all")
        cw, ch = self._size()
        if self.image is None:
            self._photo = None
            self.geometry = None
            self.create_text(
                cw // 2, ch // 2, text=self.placeholder, fill="#bbbbbb", width=max(50, cw - 20)
            )
            self._draw_title()
            return
        iw, ih = self.image.size
        vp = self.viewport
        scale = min(cw / iw, ch / ih) * vp.zoom
        vw, vh = cw / scale, ch / scale  # visible size in image pixels
        left = (iw - vw) / 2 if vw >= iw else min(max(vp.cx * iw - vw / 2, 0.0), iw - vw)
        top = (ih - vh) / 2 if vh >= ih else min(max(vp.cy * ih - vh / 2, 0.0), ih - vh)
        vp.cx, vp.cy = (left + vw / 2) / iw, (top + vh / 2) / ih
        self.geometry = (scale, left, top)
        x0, y0 = max(0.0, left), max(0.0, top)
        x1, y1 = min(float(iw), left + vw), min(float(ih), top + vh)
        dw, dh = round((x1 - x0) * scale), round((y1 - y0) * scale)
        if dw >= 1 and dh >= 1:
            resample = Image.Resampling.NEAREST if scale > 2 else Image.Resampling.BILINEAR
            region = self.image.resize(
                (dw, dh), resample, box=(x0, y0, x1, y1), reducing_gap=None if scale > 1 else 2.0
            )
            self._photo = ImageTk.PhotoImage(region, master=self)
            self.create_image(
                round((x0 - left) * scale),
                round((y0 - top) * scale),
                image=self._photo,
                anchor="nw",
            )
        self._draw_title()

    def _draw_title(self) -> None:
        text = (
            self.title
            if self.image is None or self.viewport.zoom == 1
            else f"{self.title}  ({self.viewport.zoom:.3g}x)"
        )
        item = self.create_text(8, 6, text=text, anchor="nw", fill="white")
        box = self.bbox(item)
        if box:
            rect = self.create_rectangle(
                box[0] - 4, box[1] - 2, box[2] + 4, box[3] + 2, fill="black", outline=""
            )
            self.tag_lower(rect, item)

    # ------------------------------------------------------------------ interaction

    def zoom_at(self, x: float, y: float, factor: float) -> None:
        """Zoom by ``factor`` keeping the image point under canvas pixel (x, y) in place."""
        if self.image is None or self.geometry is None:
            return
        scale, left, top = self.geometry
        iw, ih = self.image.size
        fx, fy = (left + x / scale) / iw, (top + y / scale) / ih
        vp = self.viewport
        zoom = min(max(vp.zoom * factor, ZOOM_MIN), ZOOM_MAX)
        cw, ch = self._size()
        new_scale = min(cw / iw, ch / ih) * zoom
        vp.zoom = zoom
        vp.cx = (fx * iw - x / new_scale + cw / new_scale / 2) / iw
        vp.cy = (fy * ih - y / new_scale + ch / new_scale / 2) / ih
        vp.changed()

    def _on_wheel(self, event: Any) -> None:
        if event.delta:
            self.zoom_at(event.x, event.y, ZOOM_STEP if event.delta > 0 else 1 / ZOOM_STEP)

    def _on_press(self, event: Any) -> None:
        self.focus_set()
        self._drag = (event.x, event.y, self.viewport.cx, self.viewport.cy)

    def _on_drag(self, event: Any) -> None:
        if self._drag is None or self.image is None or self.geometry is None:
            return
        x0, y0, cx, cy = self._drag
        scale = self.geometry[0]
        iw, ih = self.image.size
        self.viewport.cx = cx - (event.x - x0) / scale / iw
        self.viewport.cy = cy - (event.y - y0) / scale / ih
        self.viewport.changed()


class CompareView(ttk.Frame):
    """Before/after on one view: ``before`` left of the slider's position, ``after`` right."""

    def __init__(self, master: Any, viewport: Viewport, **kw: Any) -> None:
        super().__init__(master, **kw)
        self.before: Image.Image | None = None
        self.after: Image.Image | None = None
        self.view = ImageView(
            self,
            "before | after",
            viewport,
            placeholder="Colorize to compare the input with the result",
        )
        self.view.grid(row=0, column=0, sticky="nsew")
        # No tk.DoubleVar: a Tk variable collected by a worker thread's GC would call Tk
        # from that thread.
        self.slider = ttk.Scale(self, from_=0.0, to=1.0, command=lambda value: self.update_split())
        self.slider.set(0.5)
        self.slider.grid(row=1, column=0, sticky="ew", padx=8, pady=4)
        self.rowconfigure(0, weight=1)
        self.columnconfigure(0, weight=1)

    def set_pair(self, before: Image.Image | None, after: Image.Image | None) -> None:
        self.before, self.after = before, after
        self.update_split()

    @property
    def split(self) -> float:
        """Where the slider is: 0 = all "after", 1 = all "before"."""
        return float(self.slider.get())

    def set_split(self, fraction: float) -> None:
        self.slider.set(fraction)
        self.update_split()

    def update_split(self) -> None:
        if self.before is None or self.after is None:
            self.view.set_image(None)
        else:
            self.view.set_image(compare_image(self.before, self.after, self.split))
