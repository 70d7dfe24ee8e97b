"""Take docs/gui.png: the geocolor window with a colorized sample scene.

Run under a virtual display from the repository root:

    xvfb-run -a -s "-screen 0 1100x560x24" \
        python docs/gui_screenshot.py samples/LA_S1A_IW_GRDH_VH_20201107_059.tif docs/gui.png
"""

from __future__ import annotations

import sys
import time
import tkinter as tk
from collections.abc import Callable

from PIL import Image, ImageGrab

from geocolor.gui.app import App


def wait(root: tk.Tk, until: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        root.update()
        time.sleep(0.02)


def main(scene: str, out: str, split: float = 0.5) -> None:
    root = tk.Tk(className="geocolor")
    app = App(root, device="cpu")
    root.geometry("1100x560+0+0")
    root.update()
    if not app.open_path(scene):
        raise SystemExit(f"cannot open {scene}")
    wait(root, lambda: not app.busy)
    app.colorize()
    wait(root, lambda: not app.busy)
    if app.result is None:
        raise SystemExit(f"colorize did not finish: {app.status.cget('text')}")
    app.compare.set_split(split)
    root.update()
    time.sleep(0.3)
    root.update()
    x, y = root.winfo_rootx(), root.winfo_rooty()
    shot = ImageGrab.grab(bbox=(x, y, x + root.winfo_width(), y + root.winfo_height()))
    # 256 colours: a third of the size of the full-colour PNG, with no visible difference here
    shot.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    root.destroy()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
