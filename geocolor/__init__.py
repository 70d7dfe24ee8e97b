"""geocolor: colorize Sentinel-1 SAR scenes and grey photos.

The public Python API (the README's "Python API" section shows it at work)::

    load_model(path_or_name, kind=None)           -> LoadedModel ("sar" / "semantic": packaged)
    colorize_scene(src, dst, model=None, ...)     -> ColorizeResult   (SAR scene -> RGB raster)
    colorize_image(src, dst, model=None, ...)     -> ColorizeResult   (photo -> colour photo)
    evaluate(model, data, ...)                    -> dict (metrics next to baselines)
    train_sar(SarSettings(...), run_dir)          -> TrainResult
    train_semantic(SemanticSettings(...), run_dir) -> TrainResult

The two colorize functions share their conventions: ``src, dst, model=None``
(None: the packaged model of their kind), ``device="auto"``, an existing ``dst``
refused unless ``overwrite=True``, ``progress(done, total)``, and one result type.
Errors a user can cause are :class:`geocolor.errors.GeocolorError` with a one-line
message.

Names are imported lazily so that ``import geocolor`` stays cheap (no torch
import) for tools that only need the version.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "load_model": "geocolor.io.modelfile",
    "LoadedModel": "geocolor.io.modelfile",
    "colorize_scene": "geocolor.infer.scene",
    "colorize_image": "geocolor.infer.image",
    "ColorizeResult": "geocolor.infer.result",
    "evaluate": "geocolor.evaluate",
    "train_sar": "geocolor.train.sar",
    "SarSettings": "geocolor.train.sar",
    "train_semantic": "geocolor.train.semantic",
    "SemanticSettings": "geocolor.train.semantic",
    "GeocolorError": "geocolor.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'geocolor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once resolved, a plain attribute (also over the geocolor.evaluate module)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
