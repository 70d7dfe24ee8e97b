"""Choosing the torch device from ``--device`` (shared by training, inference and evaluation)."""
from __future__ import annotations

import os

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


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (Intel AMX or AVX512-BF16).

    Elsewhere torch emulates bf16 on the CPU, slower than float32, so
    ``colorize --cpu-bf16`` falls back to float32 there.
    """
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch >= 2.1 (private)
    found = [getattr(torch.cpu, name) for name in checks if hasattr(torch.cpu, name)]
    if found:
        return any(check() for check in found)
    try:  # older torch: ask the kernel (Linux)
        with open(cpuinfo, encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags
