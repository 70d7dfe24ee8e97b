"""What made an output, for its metadata: the model file (name and SHA-256 of its bytes).

GeoTIFF and PNG outputs carry these as GEOCOLOR_* tags (PNG: text chunks) beside the input,
the tiling and the engine; ``geocolor info`` shows them.
"""

from __future__ import annotations

import hashlib

from geocolor import __version__
from geocolor.io.modelfile import LoadedModel


def model_tags(model: LoadedModel) -> dict[str, str]:
    """``GEOCOLOR_MODEL`` (the file's name; ``(in memory)`` for a model without a file) and
    ``GEOCOLOR_MODEL_SHA256`` (of the file's bytes, when there is one)."""
    tags = {"GEOCOLOR_MODEL": model.path.name if model.path else "(in memory)"}
    if model.path is not None and model.path.is_file():
        with open(model.path, "rb") as f:
            tags["GEOCOLOR_MODEL_SHA256"] = hashlib.file_digest(f, "sha256").hexdigest()
    return tags


def version_tag() -> dict[str, str]:
    """``GEOCOLOR_VERSION``: the geocolor that wrote the output."""
    return {"GEOCOLOR_VERSION": __version__}
