"""The generic training driver: a :class:`TrainTask` plugs into :func:`run_training`.

The driver owns everything that is not specific to a model: devices and AMP,
DDP under torchrun, seeding and exact resume, the epoch sampler, learning-rate
schedules (constant, then linear decay to 0), checkpoints, the metrics log,
validation bookkeeping ("best"), sample grids, the loss plot, W&B, Ctrl-C, and
progress reporting through a callback. A task supplies networks, optimisers,
datasets, one training step, validation, a sample grid and the export of the
final inference model. See ``.notes/train-api.md`` for a walk-through.

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

    result = run_training(MyTask(settings), settings, run_dir)
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from geocolor.config import resolve_settings, save_settings, settings_dict
from geocolor.errors import ConfigError, ModelFileError, UsageError
from geocolor.train import checkpoint as ckpt
from geocolor.train.plot import line_plot, save_png
from geocolor.train.runtime import (
    Runtime,
    rng_state,
    seed_everything,
    seed_worker,
    set_deterministic,
    set_rng_state,
    setup_runtime,
    teardown_runtime,
)
from geocolor.train.tracking import METRICS_FILE, MetricsLog, WandbTracker, epoch_series

log = logging.getLogger("geocolor.train")

CONFIG_FILE = "config.toml"
LOSS_PLOT = "loss_plot.png"
SAMPLES_DIR = "samples"

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


# ----------------------------------------------------------------------------- task API
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

    def autocast(self):  # noqa: ANN201
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


# ----------------------------------------------------------------------------- data order
def item_seed(seed: int, epoch: int, position: int, stream: int = 0) -> int:
    """A 63-bit seed for one item of one epoch (independent of workers and ranks).

    ``stream`` separates uses: 0 items, 1 the epoch permutation, 2 loader
    generators, 3 re-seeding of other ranks on resume.
    """
    entropy = [seed % 2**63, epoch % 2**63, stream, position % 2**63]
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint64)[0] >> np.uint64(1))


class EpochSampler(Sampler):
    """Shuffled (or ordered) keys ``(index, item_seed)`` for one epoch of one rank.

    The permutation depends only on (seed, epoch); under DDP it is padded to a
    multiple of ``world_size`` and sharded like ``DistributedSampler``. With
    ``drop_last`` each shard is cut to whole batches. ``start`` skips the first
    keys (resuming in the middle of an epoch).
    """

    def __init__(self, n: int, seed: int, epoch: int, *, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1, batch_size: int = 1, drop_last: bool = False, start: int = 0):
        if n == 0:
            self.keys: list[tuple[int, int]] = []
            return
        if shuffle:
            g = torch.Generator().manual_seed(item_seed(seed, epoch, 0, stream=1) % 2**62)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        total = math.ceil(n / world_size) * world_size
        order = (order * math.ceil(total / n))[:total]
        positions = list(range(rank, total, world_size))
        if drop_last and len(positions) >= batch_size:
            positions = positions[: len(positions) // batch_size * batch_size]
        self.keys = [(order[p], item_seed(seed, epoch, p)) for p in positions][start:]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class SeededItems(Dataset):
    """Wraps a dataset so ``dataset[(index, seed)]`` runs with python/numpy/torch seeded.

    The global RNG states of the calling process are restored afterwards, so
    loading in the training process (``workers=0``) does not disturb training.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def linear_decay(total_steps: int, decay_start_step: int) -> Callable[[int], float]:
    """LR factor: 1 until ``decay_start_step``, then linearly down to 0 at ``total_steps``."""
    span = max(1, total_steps - decay_start_step)

    def factor(step: int) -> float:
        return max(0.0, 1.0 - max(0, step - decay_start_step) / span)

    return factor


# ----------------------------------------------------------------------------- settings
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


# ----------------------------------------------------------------------------- driver
class _Interrupt:
    """SIGINT -> a flag checked between steps (a second Ctrl-C interrupts at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> "_Interrupt":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt: saving a resumable checkpoint after this step (Ctrl-C again to abort)")

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _collate_items(dataset: Dataset, n: int) -> Any:
    """``n`` items spread evenly over ``dataset`` (plain indices: deterministic), collated."""
    size = len(dataset)  # type: ignore[arg-type]
    n = min(n, size)
    return default_collate([dataset[i * size // n] for i in range(n)]) if n else None


def _ddp_wrap(nets: dict[str, nn.Module], runtime: Runtime) -> dict[str, nn.Module]:
    if not runtime.distributed:
        return dict(nets)
    from torch.nn.parallel import DistributedDataParallel as DDP

    wrapped = {}
    for name, net in nets.items():
        if not any(p.requires_grad for p in net.parameters()):
            wrapped[name] = net
            continue
        if runtime.device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
            nets[name] = net
        wrapped[name] = DDP(
            net,
            device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None,
            broadcast_buffers=False,  # GAN nets run several forwards per backward
        )
    return wrapped


def run_training(
    task: TrainTask,
    settings: TrainSettings,
    run_dir: Path,
    *,
    resume: bool = False,
    callback: Callback | None = None,
    command: str = "",
) -> TrainResult:
    """Train ``task`` with ``settings``, writing everything to ``run_dir``.

    Args:
        task: the model-specific part (see :class:`TrainTask`).
        settings: a :class:`TrainSettings` (or subclass) instance; saved to
            ``RUN_DIR/config.toml`` on a fresh start.
        run_dir: run directory (created). On a fresh start it must not hold a
            checkpoint already (resume it instead).
        resume: continue from ``RUN_DIR/checkpoints/latest.ckpt``.
        callback: ``callback(event, info)`` for progress; events ``start``
            (total_steps, start_step, steps_per_epoch), ``batch`` (step, epoch,
            losses), ``epoch`` (epoch, train, val), ``end`` (result).
        command: the command line, recorded in the model card.

    Returns:
        :class:`TrainResult`; ``model_path`` is the exported model (rank 0).

    Raises:
        KeyboardInterrupt: after Ctrl-C, once a resumable checkpoint is saved.
    """
    settings.validate()
    run_dir = Path(run_dir)
    cb = callback or (lambda event, info: None)
    runtime = setup_runtime(settings.device, settings.amp)
    old_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    tracker: WandbTracker | None = None
    metrics_log: MetricsLog | None = None
    try:
        seed_everything(settings.seed + runtime.rank)
        set_deterministic(settings.deterministic)
        latest = ckpt.checkpoint_dir(run_dir) / ckpt.LATEST
        if runtime.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if not resume and latest.exists():
                raise UsageError(
                    f"{run_dir} already holds a training run; resume it with --resume {run_dir} "
                    "or choose another output directory"
                )
        task.setup(runtime)
        train_ds, val_ds = task.datasets()
        if len(train_ds) == 0:  # type: ignore[arg-type]
            raise UsageError("the training split is empty; lower --val-fraction or add data")
        n_train = len(train_ds)  # type: ignore[arg-type]
        drop_last = math.ceil(n_train / runtime.world_size) >= settings.batch_size
        steps_per_epoch = len(EpochSampler(n_train, settings.seed, 0, rank=runtime.rank,
                                           world_size=runtime.world_size, batch_size=settings.batch_size,
                                           drop_last=drop_last, shuffle=False))
        steps_per_epoch = max(1, math.ceil(steps_per_epoch / settings.batch_size))
        total_steps = steps_per_epoch * settings.epochs
        decay_start = settings.lr_decay_start if settings.lr_decay_start is not None else settings.epochs // 2
        schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(total_steps, decay_start * steps_per_epoch))
            for name, opt in task.optimizers.items()
        }
        counters: dict[str, Any] = {"epoch": 0, "epoch_step": 0, "step": 0, "wall_time_s": 0.0}
        epoch_sums: dict[str, float] = {}
        best: dict[str, Any] = {"metric": task.best_metric, "value": None, "epoch": None}
        wandb_id = None
        if resume:
            path = ckpt.find_resume_checkpoint(run_dir)
            state = ckpt.load_checkpoint(path)
            if state.get("task") != task.name:
                raise ModelFileError(f"{path}: a {state.get('task')!r} checkpoint, not {task.name!r}")
            _load_state(task, schedulers, runtime, state)
            counters.update(state["counters"])
            epoch_sums = dict(state.get("epoch_sums", {}))
            best.update(state.get("best", {}))
            wandb_id = state.get("wandb_id")
            if runtime.rank == 0:
                set_rng_state(state["rng"])
            else:  # only rank 0's RNG states are saved; other ranks re-seed reproducibly
                seed_everything(item_seed(settings.seed, counters["step"], runtime.rank, stream=3) % 2**62)
            log.info("resuming %s at epoch %d, step %d", run_dir, counters["epoch"] + 1, counters["step"])
        ctx = StepContext(runtime, _ddp_wrap(task.nets, runtime))

        if runtime.is_main:
            save_settings(settings, run_dir / CONFIG_FILE)
            if resume:
                MetricsLog.truncate_after(run_dir / METRICS_FILE, counters["step"], counters["epoch"])
            metrics_log = MetricsLog(run_dir / METRICS_FILE)
            if settings.wandb:
                tracker = WandbTracker(run_dir, settings.wandb_project, settings.wandb_run_name,
                                       {**settings_dict(settings), "task": task.name,
                                        "data_summary": task.data_summary()}, resume_id=wandb_id)
                wandb_id = tracker.id

        val_loader = None
        sample_batch = None
        if runtime.is_main and val_ds is not None and len(val_ds) > 0:  # type: ignore[arg-type]
            val_loader = DataLoader(val_ds, batch_size=settings.batch_size, shuffle=False,
                                    num_workers=settings.workers, worker_init_fn=seed_worker,
                                    generator=torch.Generator().manual_seed(settings.seed),
                                    pin_memory=runtime.device.type == "cuda")
            sample_batch = _collate_items(val_ds, task.n_samples)
        elif runtime.is_main:
            sample_batch = _collate_items(train_ds, task.n_samples)
        seeded_train = SeededItems(train_ds)

        def payload() -> dict[str, Any]:
            data = {
                "task": task.name,
                "settings": json.dumps(settings_dict(settings)),
                "counters": dict(counters),
                "epoch_sums": dict(epoch_sums),
                "best": dict(best),
                "wandb_id": wandb_id,
                "networks": {k: v.state_dict() for k, v in task.nets.items()},
                "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
                "schedulers": {k: v.state_dict() for k, v in schedulers.items()},
                "scaler": runtime.scaler.state_dict(),
                "rng": rng_state(),
                "extra": task.extra_state(),
            }
            return data

        def save(name: str) -> Path | None:
            if not runtime.is_main:
                return None
            return ckpt.save_checkpoint(ckpt.checkpoint_dir(run_dir) / name, payload())

        def run_validation() -> dict[str, float]:
            if val_loader is None:
                return {}
            task.train_mode(False)
            with torch.no_grad():
                metrics = task.validate(val_loader, ctx)
            task.train_mode(True)
            return {k: float(v) for k, v in metrics.items()}

        cb("start", {"total_steps": min(total_steps, settings.max_steps or total_steps),
                     "start_step": counters["step"], "steps_per_epoch": steps_per_epoch,
                     "epochs": settings.epochs, "train_items": n_train,
                     "val_items": len(val_ds) if val_ds is not None else 0})  # type: ignore[arg-type]
        t_resume = time.perf_counter()
        wall0 = counters["wall_time_s"]

        def wall() -> float:
            return wall0 + time.perf_counter() - t_resume

        stop_reason = ""
        in_step = False
        last_val: dict[str, float] = {}
        with _Interrupt() as interrupt:
            try:
                if settings.max_steps and counters["step"] >= settings.max_steps:
                    stop_reason = "max_steps"  # resumed at or past the limit: export only
                for epoch in range(counters["epoch"], settings.epochs if not stop_reason else 0):
                    ctx.epoch = epoch + 1
                    start = counters["epoch_step"] * settings.batch_size
                    sampler = EpochSampler(n_train, settings.seed, epoch, rank=runtime.rank,
                                           world_size=runtime.world_size, batch_size=settings.batch_size,
                                           drop_last=drop_last, start=start)
                    loader = DataLoader(seeded_train, batch_size=settings.batch_size, sampler=sampler,
                                        num_workers=settings.workers, worker_init_fn=seed_worker,
                                        generator=torch.Generator().manual_seed(item_seed(settings.seed, epoch, 0, stream=2) % 2**62),
                                        drop_last=False, pin_memory=runtime.device.type == "cuda")
                    task.train_mode(True)
                    for batch in loader:
                        in_step = True
                        ctx.global_step = counters["step"] + 1
                        losses = task.train_step(batch, ctx)
                        runtime.scaler.update()
                        for s in schedulers.values():
                            s.step()
                        in_step = False
                        counters["step"] += 1
                        counters["epoch_step"] += 1
                        losses = runtime.all_reduce_mean({k: float(v) for k, v in losses.items()})
                        for k, v in losses.items():
                            epoch_sums[k] = epoch_sums.get(k, 0.0) + v
                        epoch_sums["_n"] = epoch_sums.get("_n", 0.0) + 1
                        if runtime.is_main:
                            record = {"type": "batch", "epoch": epoch + 1, "step": counters["step"],
                                      "time": round(wall(), 3), **losses}
                            metrics_log.write(record)  # type: ignore[union-attr]
                            if tracker and counters["step"] % max(1, settings.log_every) == 0:
                                tracker.log({f"train/{k}": v for k, v in losses.items()}
                                            | {f"lr/{k}": s.get_last_lr()[0] for k, s in schedulers.items()},
                                            step=counters["step"])
                        cb("batch", {"step": counters["step"], "epoch": epoch + 1, "losses": losses})
                        if runtime.broadcast_flag(interrupt.requested):
                            stop_reason = "interrupt"
                            break
                        if settings.max_steps and counters["step"] >= settings.max_steps:
                            stop_reason = "max_steps"
                            break
                    if counters["epoch_step"] < steps_per_epoch and stop_reason:
                        break  # stopped inside the epoch: no epoch-end work
                    # ---- end of epoch
                    counters["epoch"] = epoch + 1
                    counters["epoch_step"] = 0
                    counters["wall_time_s"] = wall()
                    n = epoch_sums.pop("_n", 0.0) or 1.0
                    train_avg = {k: v / n for k, v in epoch_sums.items()}
                    epoch_sums = {}
                    last_val = run_validation() if runtime.is_main else {}
                    if runtime.is_main:
                        _end_of_epoch(task, settings, run_dir, epoch + 1, counters, train_avg, last_val,
                                      best, schedulers, ctx, sample_batch, metrics_log, tracker, save)
                    runtime.barrier()
                    cb("epoch", {"epoch": epoch + 1, "train": train_avg, "val": last_val, "best": dict(best)})
                    if stop_reason:
                        break
            except KeyboardInterrupt:
                counters["wall_time_s"] = wall()
                if in_step:
                    log.warning("interrupted during a step; %s keeps the last checkpoint", latest)
                else:
                    save(ckpt.LATEST)
                    log.warning("interrupted at step %d; resume with --resume %s", counters["step"], run_dir)
                raise
        counters["wall_time_s"] = wall()
        if stop_reason == "interrupt":
            save(ckpt.LATEST)
            log.warning("interrupted at step %d; resume with --resume %s", counters["step"], run_dir)
            raise KeyboardInterrupt
        if stop_reason == "max_steps" and (counters["epoch_step"] or not last_val):
            if counters["epoch_step"]:
                save(ckpt.LATEST)  # mid-epoch: resumable from here
            last_val = run_validation() if runtime.is_main else {}
        model_path = None
        if runtime.is_main:
            if settings.final_weights == "best" and (ckpt.checkpoint_dir(run_dir) / ckpt.BEST).is_file():
                best_state = ckpt.load_checkpoint(ckpt.checkpoint_dir(run_dir) / ckpt.BEST)
                for k, net in task.nets.items():
                    net.load_state_dict(best_state["networks"][k])
                last_val = dict(best_state.get("best", {}).get("metrics") or {}) or last_val
            summary = {
                "data": task.data_summary(),
                "epochs": counters["epoch"],
                "steps": counters["step"],
                "wall_time_s": round(counters["wall_time_s"], 1),
                "stopped_by": stop_reason or "epochs",
                "weights": settings.final_weights,
                "device": str(runtime.device),
                "world_size": runtime.world_size,
                "command": command,
                "settings": settings_dict(settings),
                "metrics": last_val,
            }
            model_path = task.export(run_dir / "model.model", summary)
            if tracker:
                tracker.summary({f"val/{k}": v for k, v in last_val.items()})
                tracker.log_artifact(model_path, f"{task.name}-model", "model", aliases=["latest"],
                                     metadata={"metrics": last_val})
        runtime.barrier()
        result = TrainResult(run_dir, model_path, counters["epoch"], counters["step"],
                             counters["wall_time_s"], last_val, dict(best))
        cb("end", {"result": result})
        return result
    finally:
        if metrics_log:
            metrics_log.close()
        if tracker:
            tracker.finish()
        if settings.threads:
            torch.set_num_threads(old_threads)
        teardown_runtime(runtime)


def _load_state(task: TrainTask, schedulers: dict[str, Any], runtime: Runtime, state: dict[str, Any]) -> None:
    try:
        for k, net in task.nets.items():
            net.load_state_dict(state["networks"][k])
        for k, opt in task.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, s in schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        runtime.scaler.load_state_dict(state["scaler"])
        task.load_extra_state(state.get("extra", {}))
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"checkpoint does not fit this task's networks ({str(exc).splitlines()[0]})") from None


def _end_of_epoch(task: TrainTask, settings: TrainSettings, run_dir: Path, epoch: int,
                  counters: dict[str, Any], train_avg: dict[str, float], val: dict[str, float],
                  best: dict[str, Any], schedulers: dict[str, Any], ctx: StepContext,
                  sample_batch: Any, metrics_log: MetricsLog | None, tracker: WandbTracker | None,
                  save: Callable[[str], Path | None]) -> None:
    record = {"type": "epoch", "epoch": epoch, "step": counters["step"], "time": round(counters["wall_time_s"], 3),
              "train": train_avg, "val": val, "lr": {k: s.get_last_lr()[0] for k, s in schedulers.items()}}
    improved = False
    value = val.get(task.best_metric)
    if value is not None and math.isfinite(value):
        old = best.get("value")
        improved = old is None or (value > old if task.best_mode == "max" else value < old)
        if improved:
            best.update(value=value, epoch=epoch, step=counters["step"], metrics=dict(val))
    record["best"] = dict(best)
    if metrics_log:
        metrics_log.write(record)
    plot_path = None
    if task.plot_series:
        series = epoch_series(MetricsLog.read(run_dir / METRICS_FILE), task.plot_series)
        plot_path = line_plot(series, run_dir / LOSS_PLOT, title=f"{task.name}: epoch-average losses")
    sample_path = None
    if settings.sample_every and sample_batch is not None and epoch % settings.sample_every == 0:
        task.train_mode(False)
        with torch.no_grad():
            grid = task.sample(sample_batch, ctx)
        task.train_mode(True)
        if grid is not None:
            sample_path = save_png(grid, run_dir / SAMPLES_DIR / f"epoch-{epoch:04d}.png")
    latest = save(ckpt.LATEST)
    if improved:
        save(ckpt.BEST)
    periodic = None
    if settings.checkpoint_every and epoch % settings.checkpoint_every == 0:
        periodic = save(ckpt.epoch_checkpoint_name(epoch))
    if tracker:
        data: dict[str, Any] = {f"epoch/{k}": v for k, v in train_avg.items()}
        data |= {f"val/{k}": v for k, v in val.items()}
        data["epoch"] = epoch
        tracker.log(data, step=counters["step"])
        if sample_path:
            tracker.log_image("samples", sample_path, step=counters["step"], caption=f"epoch {epoch}")
        if plot_path:
            tracker.log_image("loss_plot", plot_path, step=counters["step"])
        if periodic or improved or epoch == settings.epochs:
            aliases = [f"epoch-{epoch}"] + (["best"] if improved else [])
            tracker.log_artifact(latest, f"{task.name}-checkpoint", "checkpoint", aliases=aliases,  # type: ignore[arg-type]
                                 metadata={"epoch": epoch, "step": counters["step"], "val": val})
