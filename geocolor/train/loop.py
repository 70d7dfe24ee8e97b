"""Compatibility names for the training driver, which now lives in three modules.

- :mod:`geocolor.train.task`: the task API (:class:`TrainSettings`,
  :class:`TrainTask`, :class:`StepContext`, :class:`TrainResult`,
  :func:`load_run_settings`);
- :mod:`geocolor.train.sampling`: per-item seeds and the epoch sampler;
- :mod:`geocolor.train.trainer`: the :class:`Trainer` and :func:`run_training`.

Import from those in new code; this module keeps the old import paths working.
"""
from __future__ import annotations

from geocolor.train.sampling import EpochSampler, SeededItems, item_seed
from geocolor.train.task import (
    CONFIG_FILE,
    RESUME_OVERRIDABLE,
    Callback,
    StepContext,
    TrainResult,
    TrainSettings,
    TrainTask,
    load_run_settings,
)
from geocolor.train.trainer import (
    LOSS_PLOT,
    SAMPLES_DIR,
    Trainer,
    collate_spread,
    ddp_wrap,
    linear_decay,
    run_training,
)

_ddp_wrap = ddp_wrap  # the old private name (benchmarks/train_throughput.py used it)

__all__ = [
    "CONFIG_FILE", "LOSS_PLOT", "RESUME_OVERRIDABLE", "SAMPLES_DIR", "Callback", "EpochSampler", "SeededItems",
    "StepContext", "TrainResult", "TrainSettings", "TrainTask", "Trainer", "collate_spread", "ddp_wrap",
    "item_seed", "linear_decay", "load_run_settings", "run_training",
]
