"""Training checkpoints: everything needed to resume exactly, written atomically.

A checkpoint is a ``torch.save`` archive of tensors and plain data only (no
pickled classes), readable with ``torch.load(weights_only=True)``::

    {"format": "geocolor-checkpoint", "format_version": 1,
     "task": "sar", "settings": "<resolved settings as JSON>",
     "counters": {"epoch": 3, "epoch_step": 120, "step": 1224, ...},
     "networks": {name: state_dict}, "optimizers": {name: state_dict},
     "schedulers": {name: state_dict}, "scaler": state_dict,
     "rng": {"python": ..., "numpy": ..., "torch": ..., "cuda": [...]},
     "extra": {...}}

Files in ``RUN_DIR/checkpoints/``: ``latest.ckpt`` (after every epoch, on
``--max-steps``, on Ctrl-C), ``epoch-NNNN.ckpt`` (every ``checkpoint_every``
epochs) and ``best.ckpt`` (best validation metric). Writes go to a temporary
file that is renamed into place, so a kill at any moment leaves the previous
checkpoint intact.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from geocolor.errors import ModelFileError
from geocolor.io.atomic import atomic_path

FORMAT = "geocolor-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.ckpt"
BEST = "best.ckpt"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def epoch_checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}.ckpt"


def _to_cpu(obj: Any) -> Any:
    """Tensors to CPU (recursively) so a checkpoint loads on any device."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (see module docstring) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **_to_cpu(payload)}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; anything else is a :class:`ModelFileError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a geocolor checkpoint (unknown format, or truncated)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(f"{path}: refused to load: holds objects other than weights") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt archives
        raise ModelFileError(f"{path}: corrupt checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a geocolor checkpoint")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer geocolor; upgrade geocolor")
    return data


def find_resume_checkpoint(run_dir: Path) -> Path:
    """``RUN_DIR/checkpoints/latest.ckpt`` (or a checkpoint file given directly)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    path = checkpoint_dir(run_dir) / LATEST
    if not path.is_file():
        raise ModelFileError(
            f"{run_dir}: nothing to resume: no {CHECKPOINT_DIR}/{LATEST} in this run directory"
        )
    return path
