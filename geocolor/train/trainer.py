"""The generic training driver: :class:`Trainer` runs any :class:`~geocolor.train.task.TrainTask`.

The driver owns everything that is not specific to a model: devices and AMP,
DDP under torchrun, seeding and exact resume, the epoch sampler
(:mod:`geocolor.train.sampling`), learning-rate schedules (constant, then linear
decay to 0), checkpoints, the metrics log, validation bookkeeping ("best"),
sample grids, the loss plot, W&B, Ctrl-C, and progress reporting through a
callback. A task supplies networks, optimisers, datasets, one training step,
validation, a sample grid and the export of the final inference model.

    result = Trainer(task, settings, run_dir, resume=False, callback=cb).run()

The order of everything that draws random numbers is part of the exact-resume
contract (a run stopped after k steps and resumed ends with the weights of an
uninterrupted one): keep it when changing this module; tests/train/test_loop.py
checks it.
"""
from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from geocolor.config import save_settings, settings_dict
from geocolor.errors import ModelFileError, TrainingError, UsageError
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
from geocolor.train.sampling import EpochSampler, SeededItems, item_seed
from geocolor.train.task import (
    CONFIG_FILE,
    Callback,
    StepContext,
    TrainResult,
    TrainSettings,
    TrainTask,
)
from geocolor.train.tracking import METRICS_FILE, MetricsLog, WandbTracker, epoch_series

log = logging.getLogger("geocolor.train")

LOSS_PLOT = "loss_plot.png"
SAMPLES_DIR = "samples"
#: Steps in a row whose losses are NaN or infinite before the run stops. One such step can
#: happen under fp16 AMP (the gradient scaler skips it); three in a row is divergence, and
#: every further step would only spend compute on NaN weights.
NONFINITE_LIMIT = 3


def linear_decay(total_steps: int, decay_start_step: int) -> Callable[[int], float]:
    """LR factor: 1 until ``decay_start_step``, then linearly down to 0 at ``total_steps``."""
    span = max(1, total_steps - decay_start_step)

    def factor(step: int) -> float:
        return max(0.0, 1.0 - max(0, step - decay_start_step) / span)

    return factor


class _Interrupt:
    """SIGINT -> a flag checked between steps (a second Ctrl-C interrupts at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt: saving a resumable checkpoint after this step (Ctrl-C again to abort)")

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def collate_spread(dataset: Dataset, n: int) -> Any:
    """``n`` items spread evenly over ``dataset`` (plain indices: deterministic), collated."""
    size = len(dataset)  # type: ignore[arg-type]
    n = min(n, size)
    return default_collate([dataset[i * size // n] for i in range(n)]) if n else None


def ddp_wrap(nets: dict[str, nn.Module], runtime: Runtime) -> dict[str, nn.Module]:
    """The networks that train, wrapped in DDP under torchrun (SyncBatchNorm on CUDA); else a copy."""
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


class Trainer:
    """Trains one task into one run directory; :meth:`run` does it all.

    Args:
        task: the model-specific part (see :class:`~geocolor.train.task.TrainTask`).
        settings: a :class:`TrainSettings` (or subclass) instance; saved to
            ``RUN_DIR/config.toml`` on a fresh start.
        run_dir: run directory (created). On a fresh start it must not hold a
            checkpoint already (resume it instead).
        resume: continue from ``RUN_DIR/checkpoints/latest.ckpt``.
        callback: ``callback(event, info)`` for progress; events ``start``
            (total_steps, start_step, steps_per_epoch), ``batch`` (step, epoch,
            losses), ``epoch`` (epoch, train, val), ``end`` (result).
        command: the command line, recorded in the model card.
    """

    def __init__(self, task: TrainTask, settings: TrainSettings, run_dir: Path, *, resume: bool = False,
                 callback: Callback | None = None, command: str = "") -> None:
        self.task = task
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.callback: Callback = callback or (lambda event, info: None)
        self.command = command
        self.runtime: Runtime | None = None
        self.tracker: WandbTracker | None = None
        self.metrics_log: MetricsLog | None = None
        self.counters: dict[str, Any] = {"epoch": 0, "epoch_step": 0, "step": 0, "wall_time_s": 0.0}
        self.epoch_sums: dict[str, float] = {}
        self.best: dict[str, Any] = {"metric": task.best_metric, "value": None, "epoch": None}
        self.wandb_id: str | None = None
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        self.last_val: dict[str, float] = {}
        self._in_step = False
        self._nonfinite_steps = 0
        self._first_nonfinite: tuple[int, list[str]] = (0, [])
        self._wall0 = 0.0
        self._t_resume = 0.0

    @property
    def latest(self) -> Path:
        return ckpt.checkpoint_dir(self.run_dir) / ckpt.LATEST

    # ------------------------------------------------------------------ the run
    def run(self) -> TrainResult:
        """Train, export ``RUN_DIR/model.model`` (rank 0) and return the :class:`TrainResult`.

        Raises:
            KeyboardInterrupt: after Ctrl-C, once a resumable checkpoint is saved.
        """
        s = self.settings
        s.validate()
        self.runtime = setup_runtime(s.device, s.amp)
        old_threads = torch.get_num_threads()
        if s.threads:
            torch.set_num_threads(s.threads)
        try:
            self._prepare()
            stop_reason = self._train()
            return self._finish(stop_reason)
        finally:
            if self.metrics_log:
                self.metrics_log.close()
            if self.tracker:
                self.tracker.finish()
            if s.threads:
                torch.set_num_threads(old_threads)
            teardown_runtime(self.runtime)

    def _prepare(self) -> None:
        """Seed, build the task and its data, the schedules; restore a checkpoint; open the logs."""
        s, rt, task = self.settings, self.runtime, self.task
        assert rt is not None
        seed_everything(s.seed + rt.rank)
        set_deterministic(s.deterministic)
        if rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not self.resume and self.latest.exists():
                raise UsageError(
                    f"{self.run_dir} already holds a training run; resume it with --resume {self.run_dir} "
                    "or choose another output directory"
                )
        task.setup(rt)
        self.train_ds, self.val_ds = task.datasets()
        if len(self.train_ds) == 0:  # type: ignore[arg-type]
            raise UsageError("the training split is empty; lower --val-fraction or add data")
        self.n_train = len(self.train_ds)  # type: ignore[arg-type]
        self.drop_last = math.ceil(self.n_train / rt.world_size) >= s.batch_size
        keys = len(self._sampler(0, shuffle=False))
        self.steps_per_epoch = max(1, math.ceil(keys / s.batch_size))
        self.total_steps = self.steps_per_epoch * s.epochs
        decay_start = s.lr_decay_start if s.lr_decay_start is not None else s.epochs // 2
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(
                opt, linear_decay(self.total_steps, decay_start * self.steps_per_epoch))
            for name, opt in task.optimizers.items()
        }
        if self.resume:
            self._restore()
        self.ctx = StepContext(rt, ddp_wrap(task.nets, rt))
        if rt.is_main:
            self._open_logs()
        self.val_loader: DataLoader | None = None
        self.sample_batch: Any = None
        if rt.is_main and self.val_ds is not None and len(self.val_ds) > 0:  # type: ignore[arg-type]
            self.val_loader = DataLoader(self.val_ds, batch_size=s.batch_size, shuffle=False,
                                         num_workers=s.workers, worker_init_fn=seed_worker,
                                         generator=torch.Generator().manual_seed(s.seed),
                                         pin_memory=rt.device.type == "cuda")
            self.sample_batch = collate_spread(self.val_ds, task.n_samples)
        elif rt.is_main:
            self.sample_batch = collate_spread(self.train_ds, task.n_samples)
        self.seeded_train = SeededItems(self.train_ds)

    def _restore(self) -> None:
        """Networks, optimisers, schedules, scaler, counters and RNG states from the latest checkpoint."""
        rt, task, s = self.runtime, self.task, self.settings
        assert rt is not None
        path = ckpt.find_resume_checkpoint(self.run_dir)
        state = ckpt.load_checkpoint(path)
        if state.get("task") != task.name:
            raise ModelFileError(f"{path}: a {state.get('task')!r} checkpoint, not {task.name!r}")
        try:
            for k, net in task.nets.items():
                net.load_state_dict(state["networks"][k])
            for k, opt in task.optimizers.items():
                opt.load_state_dict(state["optimizers"][k])
            for k, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][k])
            rt.scaler.load_state_dict(state["scaler"])
            task.load_extra_state(state.get("extra", {}))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"checkpoint does not fit this task's networks ({str(exc).splitlines()[0]})") from None
        self.counters.update(state["counters"])
        self.epoch_sums = dict(state.get("epoch_sums", {}))
        self.best.update(state.get("best", {}))
        self.wandb_id = state.get("wandb_id")
        if rt.rank == 0:
            set_rng_state(state["rng"])
        else:  # only rank 0's RNG states are saved; other ranks re-seed reproducibly
            seed_everything(item_seed(s.seed, self.counters["step"], rt.rank, stream=3) % 2**62)
        log.info("resuming %s at epoch %d, step %d", self.run_dir, self.counters["epoch"] + 1,
                 self.counters["step"])

    def _open_logs(self) -> None:
        s = self.settings
        save_settings(s, self.run_dir / CONFIG_FILE)
        if self.resume:
            MetricsLog.truncate_after(self.run_dir / METRICS_FILE, self.counters["step"], self.counters["epoch"])
        self.metrics_log = MetricsLog(self.run_dir / METRICS_FILE)
        if s.wandb:
            self.tracker = WandbTracker(self.run_dir, s.wandb_project, s.wandb_run_name,
                                        {**settings_dict(s), "task": self.task.name,
                                         "data_summary": self.task.data_summary()}, resume_id=self.wandb_id)
            self.wandb_id = self.tracker.id

    def _sampler(self, epoch: int, *, shuffle: bool = True, start: int = 0) -> EpochSampler:
        rt = self.runtime
        assert rt is not None
        return EpochSampler(self.n_train, self.settings.seed, epoch, shuffle=shuffle, rank=rt.rank,
                            world_size=rt.world_size, batch_size=self.settings.batch_size,
                            drop_last=self.drop_last, start=start)

    def _wall(self) -> float:
        return self._wall0 + time.perf_counter() - self._t_resume

    # ------------------------------------------------------------------ checkpoints, validation
    def payload(self) -> dict[str, Any]:
        """Everything a checkpoint holds (exact resume)."""
        task = self.task
        return {
            "task": task.name,
            "settings": json.dumps(settings_dict(self.settings)),
            "counters": dict(self.counters),
            "epoch_sums": dict(self.epoch_sums),
            "best": dict(self.best),
            "wandb_id": self.wandb_id,
            "networks": {k: v.state_dict() for k, v in task.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scaler": self.runtime.scaler.state_dict(),  # type: ignore[union-attr]
            "rng": rng_state(),
            "extra": task.extra_state(),
        }

    def save(self, name: str) -> Path | None:
        """Write checkpoint ``name`` (rank 0 only; atomic)."""
        if not self.runtime.is_main:  # type: ignore[union-attr]
            return None
        return ckpt.save_checkpoint(ckpt.checkpoint_dir(self.run_dir) / name, self.payload())

    def validate(self) -> dict[str, float]:
        """The task's validation metrics ({} without a validation set), networks in eval mode."""
        if self.val_loader is None:
            return {}
        self.task.train_mode(False)
        with torch.no_grad():
            metrics = self.task.validate(self.val_loader, self.ctx)
        self.task.train_mode(True)
        return {k: float(v) for k, v in metrics.items()}

    # ------------------------------------------------------------------ training
    def _train(self) -> str:
        """The epoch loop; returns why it stopped ("" = all epochs, "max_steps", "interrupt")."""
        s, c = self.settings, self.counters
        self.callback("start", {
            "total_steps": min(self.total_steps, s.max_steps or self.total_steps),
            "start_step": c["step"], "steps_per_epoch": self.steps_per_epoch, "epochs": s.epochs,
            "train_items": self.n_train,
            "val_items": len(self.val_ds) if self.val_ds is not None else 0})  # type: ignore[arg-type]
        self._t_resume = time.perf_counter()
        self._wall0 = c["wall_time_s"]
        stop_reason = ""
        with _Interrupt() as interrupt:
            try:
                if s.max_steps and c["step"] >= s.max_steps:
                    stop_reason = "max_steps"  # resumed at or past the limit: export only
                for epoch in range(c["epoch"], s.epochs if not stop_reason else 0):
                    stop_reason = self._train_epoch(epoch, interrupt)
                    if c["epoch_step"] < self.steps_per_epoch and stop_reason:
                        break  # stopped inside the epoch: no epoch-end work
                    self._end_epoch(epoch + 1)
                    if stop_reason:
                        break
            except KeyboardInterrupt:
                c["wall_time_s"] = self._wall()
                if self._in_step:
                    log.warning("interrupted during a step; %s keeps the last checkpoint", self.latest)
                else:
                    self.save(ckpt.LATEST)
                    log.warning("interrupted at step %d; resume with --resume %s", c["step"], self.run_dir)
                raise
        return stop_reason

    def _train_epoch(self, epoch: int, interrupt: _Interrupt) -> str:
        """Steps of epoch ``epoch`` (0-based) from where it stands; returns a stop reason or ""."""
        s, c, rt = self.settings, self.counters, self.runtime
        assert rt is not None
        self.ctx.epoch = epoch + 1
        sampler = self._sampler(epoch, start=c["epoch_step"] * s.batch_size)
        loader = DataLoader(self.seeded_train, batch_size=s.batch_size, sampler=sampler,
                            num_workers=s.workers, worker_init_fn=seed_worker,
                            generator=torch.Generator().manual_seed(item_seed(s.seed, epoch, 0, stream=2) % 2**62),
                            drop_last=False, pin_memory=rt.device.type == "cuda")
        self.task.train_mode(True)
        for batch in loader:
            losses = self._step(batch, epoch)
            self.callback("batch", {"step": c["step"], "epoch": epoch + 1, "losses": losses})
            if rt.broadcast_flag(interrupt.requested):
                return "interrupt"
            if s.max_steps and c["step"] >= s.max_steps:
                return "max_steps"
        return ""

    def _step(self, batch: Any, epoch: int) -> dict[str, float]:
        """One optimisation step, the schedules, the counters and the batch log; the mean losses."""
        c, rt = self.counters, self.runtime
        assert rt is not None
        self._in_step = True
        self.ctx.global_step = c["step"] + 1
        losses = self.task.train_step(batch, self.ctx)
        rt.scaler.update()
        for sched in self.schedulers.values():
            sched.step()
        self._in_step = False
        c["step"] += 1
        c["epoch_step"] += 1
        losses = rt.all_reduce_mean({k: float(v) for k, v in losses.items()})
        for k, v in losses.items():
            self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + v
        self.epoch_sums["_n"] = self.epoch_sums.get("_n", 0.0) + 1
        if rt.is_main:
            record = {"type": "batch", "epoch": epoch + 1, "step": c["step"], "time": round(self._wall(), 3),
                      **losses}
            self.metrics_log.write(record)  # type: ignore[union-attr]
            if self.tracker and c["step"] % max(1, self.settings.log_every) == 0:
                self.tracker.log({f"train/{k}": v for k, v in losses.items()}
                                 | {f"lr/{k}": sc.get_last_lr()[0] for k, sc in self.schedulers.items()},
                                 step=c["step"])
        self._check_finite(losses)
        return losses

    def _check_finite(self, losses: dict[str, float]) -> None:
        """Stop once the (all-reduced, so every rank agrees) losses have been NaN or infinite
        for :data:`NONFINITE_LIMIT` steps in a row."""
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if not bad:
            self._nonfinite_steps = 0
            return
        if not self._nonfinite_steps:
            self._first_nonfinite = (self.counters["step"], bad)
        self._nonfinite_steps += 1
        if self._nonfinite_steps < NONFINITE_LIMIT:
            return
        step, first = self._first_nonfinite
        raise TrainingError(
            f"{self.run_dir}: training diverged at step {step}: {', '.join(first)} became NaN or "
            f"infinite and stayed so for {NONFINITE_LIMIT} steps. Start again with a lower "
            f"learning rate (or --amp off on a GPU); checkpoints from before, if any, are in "
            f"{self.latest.parent}"
        )

    def _end_epoch(self, epoch: int) -> None:
        """Counters, epoch averages, validation, logs, plot, samples, checkpoints (``epoch`` 1-based)."""
        c, rt = self.counters, self.runtime
        assert rt is not None
        c["epoch"] = epoch
        c["epoch_step"] = 0
        c["wall_time_s"] = self._wall()
        n = self.epoch_sums.pop("_n", 0.0) or 1.0
        train_avg = {k: v / n for k, v in self.epoch_sums.items()}
        self.epoch_sums = {}
        self.last_val = self.validate() if rt.is_main else {}
        if rt.is_main:
            self._record_epoch(epoch, train_avg, self.last_val)
        rt.barrier()
        self.callback("epoch", {"epoch": epoch, "train": train_avg, "val": self.last_val, "best": dict(self.best)})

    def _record_epoch(self, epoch: int, train_avg: dict[str, float], val: dict[str, float]) -> None:
        """Rank 0's end of epoch: best tracking, the epoch record, plot, samples, checkpoints, W&B."""
        task, s, c = self.task, self.settings, self.counters
        record = {"type": "epoch", "epoch": epoch, "step": c["step"], "time": round(c["wall_time_s"], 3),
                  "train": train_avg, "val": val,
                  "lr": {k: sc.get_last_lr()[0] for k, sc in self.schedulers.items()}}
        improved = False
        value = val.get(task.best_metric)
        if value is not None and math.isfinite(value):
            old = self.best.get("value")
            improved = old is None or (value > old if task.best_mode == "max" else value < old)
            if improved:
                self.best.update(value=value, epoch=epoch, step=c["step"], metrics=dict(val))
        record["best"] = dict(self.best)
        if self.metrics_log:
            self.metrics_log.write(record)
        plot_path = None
        if task.plot_series:
            series = epoch_series(MetricsLog.read(self.run_dir / METRICS_FILE), task.plot_series)
            plot_path = line_plot(series, self.run_dir / LOSS_PLOT, title=f"{task.name}: epoch-average losses")
        sample_path = None
        if s.sample_every and self.sample_batch is not None and epoch % s.sample_every == 0:
            task.train_mode(False)
            with torch.no_grad():
                grid = task.sample(self.sample_batch, self.ctx)
            task.train_mode(True)
            if grid is not None:
                sample_path = save_png(grid, self.run_dir / SAMPLES_DIR / f"epoch-{epoch:04d}.png")
        latest = self.save(ckpt.LATEST)
        if improved:
            self.save(ckpt.BEST)
        periodic = None
        if s.checkpoint_every and epoch % s.checkpoint_every == 0:
            periodic = self.save(ckpt.epoch_checkpoint_name(epoch))
        if self.tracker:
            data: dict[str, Any] = {f"epoch/{k}": v for k, v in train_avg.items()}
            data |= {f"val/{k}": v for k, v in val.items()}
            data["epoch"] = epoch
            self.tracker.log(data, step=c["step"])
            if sample_path:
                self.tracker.log_image("samples", sample_path, step=c["step"], caption=f"epoch {epoch}")
            if plot_path:
                self.tracker.log_image("loss_plot", plot_path, step=c["step"])
            if periodic or improved or epoch == s.epochs:
                aliases = [f"epoch-{epoch}"] + (["best"] if improved else [])
                self.tracker.log_artifact(latest, f"{task.name}-checkpoint", "checkpoint",  # type: ignore[arg-type]
                                          aliases=aliases, metadata={"epoch": epoch, "step": c["step"], "val": val})

    # ------------------------------------------------------------------ the end
    def _finish(self, stop_reason: str) -> TrainResult:
        """Checkpoint a stop inside an epoch, export the model (rank 0), build the result."""
        c, rt = self.counters, self.runtime
        assert rt is not None
        c["wall_time_s"] = self._wall()
        if stop_reason == "interrupt":
            self.save(ckpt.LATEST)
            log.warning("interrupted at step %d; resume with --resume %s", c["step"], self.run_dir)
            raise KeyboardInterrupt
        if stop_reason == "max_steps" and (c["epoch_step"] or not self.last_val):
            if c["epoch_step"]:
                self.save(ckpt.LATEST)  # mid-epoch: resumable from here
            self.last_val = self.validate() if rt.is_main else {}
        model_path = None
        if rt.is_main:
            model_path = self._export(stop_reason)
        rt.barrier()
        result = TrainResult(self.run_dir, model_path, c["epoch"], c["step"], c["wall_time_s"],
                             self.last_val, dict(self.best))
        self.callback("end", {"result": result})
        return result

    def _export(self, stop_reason: str) -> Path:
        s, c, rt, task = self.settings, self.counters, self.runtime, self.task
        assert rt is not None
        if s.final_weights == "best" and (ckpt.checkpoint_dir(self.run_dir) / ckpt.BEST).is_file():
            best_state = ckpt.load_checkpoint(ckpt.checkpoint_dir(self.run_dir) / ckpt.BEST)
            for k, net in task.nets.items():
                net.load_state_dict(best_state["networks"][k])
            self.last_val = dict(best_state.get("best", {}).get("metrics") or {}) or self.last_val
        summary = {
            "data": task.data_summary(),
            "epochs": c["epoch"],
            "steps": c["step"],
            "wall_time_s": round(c["wall_time_s"], 1),
            "stopped_by": stop_reason or "epochs",
            "weights": s.final_weights,
            "device": str(rt.device),
            "world_size": rt.world_size,
            "command": self.command,
            "settings": settings_dict(s),
            "metrics": self.last_val,
        }
        model_path = task.export(self.run_dir / "model.model", summary)
        if self.tracker:
            self.tracker.summary({f"val/{k}": v for k, v in self.last_val.items()})
            self.tracker.log_artifact(model_path, f"{task.name}-model", "model", aliases=["latest"],
                                      metadata={"metrics": self.last_val})
        return model_path


def run_training(task: TrainTask, settings: TrainSettings, run_dir: Path, *, resume: bool = False,
                 callback: Callback | None = None, command: str = "") -> TrainResult:
    """``Trainer(task, settings, run_dir, ...).run()`` (see :class:`Trainer`)."""
    return Trainer(task, settings, run_dir, resume=resume, callback=callback, command=command).run()
