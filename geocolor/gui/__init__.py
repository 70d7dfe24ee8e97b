"""``geocolor gui``: a tkinter desktop window for colorizing photos and SAR scenes.

The package keeps Tk out of everything that can be tested without a display:

- :mod:`geocolor.gui.choice`: which model an input gets (the rule of ``colorize``)
  and the model card's key facts for the status line;
- :mod:`geocolor.gui.previews`: preview-resolution reads of inputs and results and
  the images the views show (segmentation overlay, before/after composite);
- :mod:`geocolor.gui.jobs`: the background colorize run with progress and cancel,
  saving a result with the CLI's writers, and other calls run off the Tk thread;
- :mod:`geocolor.gui.views`, :mod:`geocolor.gui.dialogs` and :mod:`geocolor.gui.app`:
  the Tk widgets (the only modules that import tkinter).

Nothing below this package (engine, models, io) imports tkinter.
"""

from __future__ import annotations

#: What to install when this Python has no tkinter (Debian/Ubuntu package name).
TK_INSTALL_HINT = (
    "this Python has no tkinter; install it (Debian/Ubuntu: apt install python3-tk; "
    "Fedora: dnf install python3-tkinter; Homebrew: brew install python-tk; "
    "a Python built from source needs tk-dev before building) and run 'geocolor gui' again"
)
