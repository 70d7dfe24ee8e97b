"""What made an output, for its metadata: the model file (name and SHA-256 of its bytes).

GeoTIFF and PNG outputs carry these as GEOCOLOR_* tags (PNG: text chunks) beside the input,
the tiling and the engine; ``geocolor info`` shows them.
"""

from __future__ import annotations

import functools
import hashlib

from geocolor import __version__
from geocolor.io.modelfile import LoadedModel


def model_tags(model: LoadedModel) -> dict[str, str]:
    """``GEOCOLOR_MODEL`` (the file's name; ``(in memory)`` for a model without a file) and
    ``GEOCOLOR_MODEL_SHA256`` (of the file's bytes, when there is one)."""
    tags = {"GEOCOLOR_MODEL": model.path.name if model.path else "(in memory)"}
    if model.path is not None and model.path.is_file():
        stat = model.path.stat()
        tags["GEOCOLOR_MODEL_SHA256"] = _sha256(str(model.path.resolve()), stat.st_size,
                                                stat.st_mtime_ns)
    return tags


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The SHA-256 of a file's bytes, read once per file version (``size`` and ``mtime_ns``
    name it): a batch of photos would otherwise read a 31 MB model again for each one."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def version_tag() -> dict[str, str]:
    """``GEOCOLOR_VERSION``: the geocolor that wrote the output."""
    return {"GEOCOLOR_VERSION": __version__}
