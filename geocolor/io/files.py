"""Checks shared by every reader of user-given files."""
from __future__ import annotations

from pathlib import Path

from geocolor.errors import GeocolorError


def require_file(path: Path, error: type[GeocolorError], what: str, missing: str = "file") -> None:
    """Raise ``error`` unless ``path`` exists and is not a directory.

    Messages: ``"<path>: <missing> not found"`` (a link to nothing says so) and ``"<path>: is
    a directory, not <what>"``.
    """
    if not path.exists():
        if path.is_symlink():  # exists() follows the link
            raise error(f"{path}: a symbolic link to nothing (or in a loop); point it at the "
                        f"{missing}, or give the {missing} itself")
        raise error(f"{path}: {missing} not found")
    if path.is_dir():
        raise error(f"{path}: is a directory, not {what}")
