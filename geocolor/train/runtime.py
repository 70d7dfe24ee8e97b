"""Where and how training runs: device choice, seeding, determinism, AMP and DDP.

Everything here is task-agnostic; :mod:`geocolor.train.loop` uses it for every
training task.

Distributed training follows ``torchrun``: when the environment holds
``WORLD_SIZE > 1`` (with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), :func:`setup_runtime` joins the process group (NCCL on CUDA,
gloo on CPU), binds each process to ``cuda:LOCAL_RANK`` and reports
``is_main`` only on rank 0, which alone writes files.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geocolor.device import resolve_device
from geocolor.errors import UsageError

log = logging.getLogger("geocolor.train")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive python/numpy seeds from torch's per-worker seed.

    torch seeds each worker from the loader's ``generator``; python and numpy are
    seeded from that, so worker randomness is reproducible too.
    """
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def set_deterministic(enabled: bool) -> None:
    """Deterministic kernels (slower): same inputs and seed -> bit-identical results on one machine."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True


# ----------------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """All global RNG states as tensors and plain values (loadable with ``weights_only=True``)."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["gauss"])
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ----------------------------------------------------------------------------- runtime
@dataclass
class Runtime:
    """The process's place in a (possibly distributed) run.

    Attributes:
        device: where networks and batches live.
        rank, world_size, local_rank: torchrun coordinates (0, 1, 0 when alone).
        amp_dtype: ``torch.bfloat16`` / ``torch.float16`` under AMP, ``None`` without.
        scaler: gradient scaler (enabled for float16 AMP only).
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp_dtype: torch.dtype | None = None
    scaler: Any = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for forward passes (a no-op without AMP)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def all_reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average a dict of floats over ranks (identity when alone)."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        t /= self.world_size
        return dict(zip(keys, t.tolist()))

    def broadcast_flag(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (e.g. a Ctrl-C on one of them)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1 if flag else 0], device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return rank, world, local


def setup_runtime(device: str = "auto", amp: str = "auto") -> Runtime:
    """Join torchrun's process group if there is one, pick the device and the AMP mode.

    Args:
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` (under torchrun, ``cuda``
            and ``auto`` mean ``cuda:LOCAL_RANK``).
        amp: ``auto`` (on for CUDA: bf16 where supported, else fp16 with a
            GradScaler), ``bf16``, ``fp16`` or ``off``. CPU always runs float32.
    """
    rank, world, local = dist_env()
    dev = resolve_device(device, local_rank=local if world > 1 else None)
    if world > 1:
        import torch.distributed as dist

        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    amp = (amp or "auto").lower()
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise UsageError(f"--amp {amp!r}: expected auto, bf16, fp16 or off")
    amp_dtype: torch.dtype | None = None
    if dev.type == "cuda" and amp != "off":
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            amp_dtype = torch.float16
        else:
            amp_dtype = torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
    return Runtime(dev, rank, world, local, amp_dtype, scaler)


#: Seconds the main thread gives gloo's worker threads, with the GIL released, after the last
#: collective (see :func:`teardown_runtime`).
COLLECTIVES_DRAIN_S = 0.5


def teardown_runtime(runtime: Runtime) -> None:
    """Leave the process group (if this process joined one).

    A gloo worker thread frees each finished collective after the caller has stopped waiting
    for it, and freeing a tensor that Python once held needs the GIL. If that happens while
    the interpreter shuts down, the thread cannot take the GIL and the process aborts
    ("terminate called without an active exception", seen in 3 of 43 runs of a short
    two-process CPU run). ``destroy_process_group`` does not join those threads: DDP keeps
    the group alive. So the main thread sleeps briefly, GIL released, to let them finish.
    """
    if runtime.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
        time.sleep(COLLECTIVES_DRAIN_S)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None``/0: leave it)."""
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
