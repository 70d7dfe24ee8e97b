"""The task API of the training driver: settings, the task interface, what a step sees, the result.

A model-specific trainer (``train/sar.py``, ``train/semantic.py``) subclasses
:class:`TrainSettings` for its options and :class:`TrainTask` for its networks,
data and step; :class:`geocolor.train.trainer.Trainer` runs any task.

Minimal task::

    class MyTask(TrainTask):
        name = "mine"
        best_metric, best_mode = "psnr", "max"
        plot_series = ("loss",)

        def setup(self, runtime):
            self.nets = {"net": Net().to(runtime.device)}
            self.optimizers = {"net": torch.optim.Adam(self.nets["net"].parameters())}

        def datasets(self):
            return train_dataset, val_dataset          # map-style; val may be None

        def train_step(self, batch, ctx):
            x, y = (t.to(ctx.device) for t in batch)
            with ctx.autocast():
                loss = F.l1_loss(ctx.nets["net"](x), y)
            self.optimizers["net"].zero_grad(set_to_none=True)
            ctx.backward(loss)
            ctx.step(self.optimizers["net"])
            return {"loss": loss.item()}

        def validate(self, loader, ctx):  -> {"psnr": ...}
        def sample(self, batch, ctx):     -> (H, W, 3) uint8 grid
        def export(self, path, summary):  -> writes the model file, returns its path

    result = Trainer(MyTask(settings), settings, run_dir).run()
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from geocolor.config import resolve_settings
from geocolor.errors import ConfigError, ModelFileError, UsageError
from geocolor.train.runtime import Runtime

CONFIG_FILE = "config.toml"

#: Settings that may change when resuming; changing any other one would break exactness.
RESUME_OVERRIDABLE = frozenset({
    "epochs", "max_steps", "device", "workers", "amp", "threads", "wandb", "wandb_project",
    "wandb_run_name", "checkpoint_every", "sample_every", "log_every", "final_weights", "lr_decay_start",
})


@dataclass(frozen=True)
class TrainSettings:
    """Settings every training task has; a task's settings dataclass inherits from this.

    Attributes:
        data: training data directory.
        epochs: passes over the training set.
        batch_size: images per optimisation step (per process under DDP).
        max_steps: stop after this many optimisation steps in all (smoke runs); the
            run can be resumed with a larger value (0: no limit). Resuming with a
            value already reached exports the model from the checkpoint at once.
        lr_decay_start: epoch after which learning rates decay linearly to 0 at
            ``epochs`` (default: half of ``epochs``); 0 decays from the start.
        val_fraction: share of scenes/groups held out for validation.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        amp: ``auto`` (CUDA: bf16 where supported, else fp16) | ``bf16`` | ``fp16`` | ``off``.
        workers: DataLoader worker processes (0: load in the training process).
        threads: torch CPU threads (0: torch's default).
        seed: seeds python, numpy, torch and the data order/augmentation.
        deterministic: deterministic kernels; resumed == uninterrupted, bit for bit.
        checkpoint_every: also keep ``epoch-NNNN.ckpt`` every N epochs (0: never).
        sample_every: write a sample grid every N epochs (0: never).
        log_every: send batch losses to W&B every N steps (the JSONL log has all).
        final_weights: export the ``last`` weights or the ``best`` validated ones.
        wandb, wandb_project, wandb_run_name: Weights & Biases tracking.
    """

    data: str = ""
    epochs: int = 20
    batch_size: int = 4
    max_steps: int | None = None
    lr_decay_start: int | None = None
    val_fraction: float = 0.1
    device: str = "auto"
    amp: str = "auto"
    workers: int = 2
    threads: int = 0
    seed: int = 0
    deterministic: bool = False
    checkpoint_every: int = 5
    sample_every: int = 1
    log_every: int = 10
    final_weights: str = "last"
    wandb: bool = False
    wandb_project: str = "geocolor"
    wandb_run_name: str | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_steps is not None and self.max_steps < 0:
            raise ConfigError(f"max_steps must be >= 0 (0: no limit), got {self.max_steps}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.final_weights not in ("last", "best"):
            raise ConfigError(f"final_weights must be 'last' or 'best', got {self.final_weights!r}")
        if self.lr_decay_start is not None and not 0 <= self.lr_decay_start <= self.epochs:
            raise ConfigError(f"lr_decay_start must be in [0, epochs], got {self.lr_decay_start}")



@dataclass
class StepContext:
    """What a task's step sees: the runtime, the (DDP-wrapped) networks, the counters."""

    runtime: Runtime
    nets: dict[str, nn.Module]
    epoch: int = 0
    global_step: int = 0

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    def autocast(self):
        """Mixed precision for forward passes (no-op without AMP)."""
        return self.runtime.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` through the AMP gradient scaler."""
        self.runtime.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` through the scaler (skipped on inf/NaN fp16 gradients)."""
        self.runtime.scaler.step(optimizer)

    def clip_grad_norm(self, optimizer: torch.optim.Optimizer, max_norm: float) -> float:
        """Unscale ``optimizer``'s gradients (AMP) and clip their total norm; call before :meth:`step`.

        Returns the total norm before clipping.
        """
        self.runtime.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


class TrainTask:
    """Base class of training tasks (SAR GAN, semantic colorization, ...).

    Subclasses set the class attributes and implement the methods marked
    "required". ``self.nets`` and ``self.optimizers`` are filled by :meth:`setup`;
    the driver checkpoints them (plus one LR scheduler per optimiser it creates),
    wraps ``nets`` in DDP for :meth:`train_step` (``ctx.nets``), and calls
    :meth:`validate`, :meth:`sample` and :meth:`export` on rank 0 with the raw
    networks in ``self.nets``.
    """

    #: Name stored in checkpoints; resuming with another task is refused.
    name: str = "task"
    #: Validation metric that selects ``best.ckpt``, and whether higher is better.
    best_metric: str = "psnr"
    best_mode: str = "max"
    #: Train-loss keys drawn (as epoch averages) in ``loss_plot.png``.
    plot_series: Sequence[str] = ()
    #: How many validation items go into each sample grid.
    n_samples: int = 4

    def __init__(self) -> None:
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # required --------------------------------------------------------------------
    def setup(self, runtime: Runtime) -> None:
        """Build networks on ``runtime.device`` and their optimisers (after seeding)."""
        raise NotImplementedError

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train, validation) map-style datasets; validation may be ``None``.

        Items may use python's ``random``, numpy's global generator or torch's for
        augmentation: the driver seeds all three per item from (seed, epoch,
        position), so crops/flips are reproducible and resumable with any number
        of workers.
        """
        raise NotImplementedError

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, float]:
        """One optimisation step on ``batch`` with ``ctx.nets``; return the losses as floats.

        Use ``ctx.autocast()``, ``ctx.backward(loss)`` and ``ctx.step(optimizer)``
        so AMP works; the driver calls ``scaler.update()`` and the LR schedulers.
        """
        raise NotImplementedError

    def validate(self, loader: DataLoader, ctx: StepContext) -> dict[str, float]:
        """Metrics over the validation loader (networks already in eval mode)."""
        raise NotImplementedError

    def export(self, path: Path, summary: dict[str, Any]) -> Path:
        """Write the final inference model to ``path``; ``summary`` goes into its card."""
        raise NotImplementedError

    # optional --------------------------------------------------------------------
    def sample(self, batch: Any, ctx: StepContext) -> np.ndarray | None:
        """(H, W, 3) uint8 image grid for a fixed validation batch, or ``None``."""
        return None

    def data_summary(self) -> dict[str, Any]:
        """Description of the training data for the model card and the log."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """Additional tensors/plain data to checkpoint."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def train_mode(self, training: bool = True) -> None:
        for net in self.nets.values():
            net.train(training)


Callback = Callable[[str, dict[str, Any]], None]


@dataclass
class TrainResult:
    """What :func:`run_training` returns."""

    run_dir: Path
    model_path: Path | None
    epochs: int
    steps: int
    wall_time_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


# ----------------------------------------------------------------------------- settings of a run
def load_run_settings(cls: type, run_dir: Path, overrides: Mapping[str, Any] | None = None) -> Any:
    """Settings of an existing run (``RUN_DIR/config.toml``) with resume-safe overrides applied.

    Raises:
        UsageError: an override of a setting that would change the training itself.
        ModelFileError: the run directory has no config.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{run_dir}: not a geocolor run directory (no {CONFIG_FILE})")
    stored = resolve_settings(cls, path)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    changed = sorted(k for k, v in given.items()
                     if k not in RESUME_OVERRIDABLE and getattr(stored, k, v) != v)
    if changed:
        raise UsageError(
            f"--resume {run_dir}: cannot change {', '.join(changed)} of a run being resumed "
            f"(they are fixed in {path}); start a new run instead"
        )
    return dataclasses.replace(stored, **{k: v for k, v in given.items() if k in RESUME_OVERRIDABLE})


