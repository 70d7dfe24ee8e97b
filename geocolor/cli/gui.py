"""``geocolor gui [PATH]``: the desktop window (tkinter) for photos and SAR scenes."""

from __future__ import annotations

from pathlib import Path

import click

from geocolor.errors import GeocolorError


@click.command(context_settings={"show_default": True})
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "-m",
    "--model",
    default=None,
    show_default=False,
    help="Model file, or 'sar' / 'semantic' for a packaged model, to start with "
    "[default: the packaged model that fits the input, as for colorize].",
)
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
def gui(path: Path | None, model: str | None, device: str) -> None:
    """Open the geocolor window: colorize a photo, a grey image or a SAR scene.

    Open a file (or give PATH), pick a model (the packaged SAR model, the packaged
    photo model, or another model file; the default follows the input), Colorize,
    compare input, segmentation and result side by side or with the before/after
    slider, and Save the full-resolution result (a georeferenced Cloud-Optimized
    GeoTIFF for scenes, PNG/JPEG for photos) with the writers of 'geocolor colorize'.

    \b
    Keys: Ctrl+O open, Ctrl+Enter colorize, Esc cancel, Ctrl+S save, Ctrl+0 fit;
    mouse wheel zooms, drag pans, double click fits.

    Needs tkinter (Debian/Ubuntu: the python3-tk package) and a display.
    """
    from geocolor.device import resolve_device
    from geocolor.gui import TK_INSTALL_HINT

    try:
        import tkinter  # noqa: F401

        from PIL import ImageTk  # noqa: F401
    except ImportError:
        raise GeocolorError(TK_INSTALL_HINT) from None
    resolve_device(device)  # a bad --device is bad usage, before any window opens
    from geocolor.gui.app import run

    run(path, model=model, device=device)
