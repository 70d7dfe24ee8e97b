"""geocolor: colorize Sentinel-1 SAR scenes and grey photos.

The small public Python API is imported lazily so that ``import geocolor`` stays
cheap (no torch import) for tools that only need the version.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "colorize_scene", "colorize_image"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from geocolor.io.modelfile import load_model

        return load_model
    if name == "colorize_scene":
        from geocolor.infer.scene import colorize_scene

        return colorize_scene
    if name == "colorize_image":
        from geocolor.infer.image import colorize_image

        return colorize_image
    raise AttributeError(f"module 'geocolor' has no attribute {name!r}")
