"""The window's message boxes and file choosers, behind one small class that tests replace."""

from __future__ import annotations

import tkinter as tk
from tkinter import filedialog, messagebox

TITLE = "geocolor"
INPUT_TYPES = [
    ("Photos and scenes", ".tif .tiff .png .jpg .jpeg .jp2 .vrt .img .bmp .webp"),
    ("All files", "*"),
]
MODEL_TYPES = [("geocolor models", ".model"), ("All files", "*")]


class Dialogs:
    """Message boxes and file choosers of the window (replaceable in tests)."""

    def __init__(self, root: tk.Misc) -> None:
        self.root = root

    def error(self, message: str) -> None:
        messagebox.showerror(TITLE, message, parent=self.root)

    def confirm(self, message: str) -> bool:
        return bool(messagebox.askyesno(TITLE, message, parent=self.root, icon="warning"))

    def open_input(self, initialdir: str | None) -> str | None:
        return (
            filedialog.askopenfilename(
                parent=self.root,
                title="Open a photo or scene",
                filetypes=INPUT_TYPES,
                initialdir=initialdir,
            )
            or None
        )

    def open_model(self, initialdir: str | None) -> str | None:
        return (
            filedialog.askopenfilename(
                parent=self.root,
                title="Choose a model file",
                filetypes=MODEL_TYPES,
                initialdir=initialdir,
            )
            or None
        )

    def save_as(
        self, initialdir: str | None, initialfile: str, filetypes: list[tuple[str, str]]
    ) -> str | None:
        # Overwriting is confirmed by the window itself (the same question on every platform).
        return (
            filedialog.asksaveasfilename(
                parent=self.root,
                title="Save the colorized result",
                initialdir=initialdir,
                initialfile=initialfile,
                filetypes=filetypes,
                defaultextension=filetypes[0][1],
                confirmoverwrite=False,
            )
            or None
        )
