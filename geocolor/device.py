"""Choosing the torch device from ``--device`` (shared by training, inference and evaluation)."""
from __future__ import annotations

import torch

from geocolor.errors import UsageError


def resolve_device(spec: str | torch.device | None = "auto", local_rank: int | None = None) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (or a ready :class:`torch.device`) -> a :class:`torch.device`.

    ``auto`` picks CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else CPU.
    Asking for CUDA where there is none is a :class:`UsageError`.
    """
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
        if spec == "cuda":
            return torch.device("cuda", local_rank or 0)
        try:
            index = int(spec.split(":", 1)[1])
        except (IndexError, ValueError):
            raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
