"""Branch a run: a new run directory that continues another run's checkpoint with a new seed.

A branch starts from everything the checkpoint holds (weights, optimiser state, learning
rate schedule, step counters) and the run's settings, and changes only the seed, hence
the order of the data and its augmentation from there on. Branches of one checkpoint
stay close enough to average their weights (``geocolor average``: a model soup).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geocolor.config import settings_dict
from geocolor.errors import ModelFileError, UsageError
from geocolor.train import checkpoint as ckpt
from geocolor.train.task import CONFIG_FILE, load_run_settings

#: Files of the source run a branch starts with (the validation split, the metrics so far).
_COPIED = ("split.json", "metrics.jsonl")


def source_run_dir(checkpoint: Path) -> Path:
    """The run directory holding ``checkpoint`` (``RUN/checkpoints/NAME.ckpt``)."""
    checkpoint = Path(checkpoint)
    run_dir = checkpoint.parent.parent
    if checkpoint.parent.name != ckpt.CHECKPOINT_DIR or not (run_dir / CONFIG_FILE).is_file():
        raise ModelFileError(
            f"{checkpoint}: not a checkpoint inside a run directory (RUN/{ckpt.CHECKPOINT_DIR}/"
            f"NAME.ckpt next to RUN/{CONFIG_FILE})"
        )
    return run_dir


def branch_run(cls: type, checkpoint: Path | str, run_dir: Path | str,
               overrides: Mapping[str, Any]) -> Any:
    """Make ``run_dir`` a branch of ``checkpoint``'s run; return its settings (resume it next).

    Args:
        cls: the settings class of the task (the source run's ``config.toml`` is read into it).
        checkpoint: ``RUN/checkpoints/*.ckpt`` of the source run.
        run_dir: the new run directory (must not hold a run yet).
        overrides: options given: ``seed`` (required, different from the source run's)
            and any resume-safe settings (``epochs``, ``threads``, ...).

    Raises:
        UsageError: no new seed, ``run_dir`` already holds a run, a setting that would
            change the training itself, or several processes (torchrun).
        ModelFileError: ``checkpoint`` is not a checkpoint of a run directory.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every torchrun process would write the new run directory at once.
        raise UsageError(
            "--branch prepares the run directory in one process: run it without torchrun "
            "(with --max-steps at the checkpoint's step it stops at once), then continue "
            "under torchrun with --resume RUN_DIR"
        )
    checkpoint, run_dir = Path(checkpoint), Path(run_dir)
    source = source_run_dir(checkpoint)
    given = {k: v for k, v in overrides.items() if v is not None}
    seed = given.pop("seed", None)
    settings = load_run_settings(cls, source, given)
    if seed is None or seed == settings.seed:
        raise UsageError(
            f"--branch {checkpoint}: give a --seed other than the run's ({settings.seed}); "
            "the seed is what makes a branch differ"
        )
    latest = ckpt.checkpoint_dir(run_dir) / ckpt.LATEST
    if latest.exists():
        raise UsageError(f"{run_dir} already holds a training run; choose another output directory")
    settings = dataclasses.replace(settings, seed=seed)
    state = ckpt.load_checkpoint(checkpoint)
    state.pop("format", None)
    state.pop("format_version", None)
    state["wandb_id"] = None  # a branch is a run of its own in W&B
    state["settings"] = json.dumps(settings_dict(settings))
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in _COPIED:
        if (source / name).is_file():
            shutil.copyfile(source / name, run_dir / name)
    ckpt.save_checkpoint(latest, state)
    return settings
