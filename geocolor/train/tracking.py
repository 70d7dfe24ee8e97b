"""Run records: the JSONL metrics log, and Weights & Biases.

``RUN_DIR/metrics.jsonl`` holds one JSON object per line::

    {"type": "batch", "epoch": 1, "step": 17, "time": 3.2, "loss_G": 1.9, ...}
    {"type": "epoch", "epoch": 1, "step": 276, "time": 311.0,
     "train": {"loss_G": 2.1, ...}, "val": {"psnr": 17.9, ...}, "lr": {...}}

``epoch`` is 1-based, ``step`` counts optimisation steps since the start of the
run, ``time`` is training wall time in seconds. On resume, lines past the
checkpoint's step are dropped first, so the log reads as one uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import math
import netrc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geocolor.io.atomic import atomic_write_text

log = logging.getLogger("geocolor.train")

METRICS_FILE = "metrics.jsonl"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


class MetricsLog:
    """Append-only JSONL log of batch and epoch records (flushed on every write)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(_clean(record)) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """All records of a metrics log (a torn last line is ignored)."""
        records = []
        path = Path(path)
        if not path.is_file():
            return records
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    @staticmethod
    def truncate_after(path: Path, step: int, epoch: int) -> None:
        """Drop records written after a checkpoint (batch lines past ``step``, epochs past ``epoch``)."""
        path = Path(path)
        if not path.is_file():
            return
        kept = [
            r for r in MetricsLog.read(path)
            if (r.get("type") == "batch" and r.get("step", 0) <= step)
            or (r.get("type") == "epoch" and r.get("epoch", 0) <= epoch)
            or r.get("type") not in ("batch", "epoch")
        ]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def epoch_series(records: Iterable[dict[str, Any]], keys: Iterable[str]) -> dict[str, list[tuple[float, float]]]:
    """``{key: [(epoch, epoch-average value), ...]}`` from the epoch records of a metrics log."""
    keys = list(keys)
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in keys}
    for r in records:
        if r.get("type") != "epoch":
            continue
        for k in keys:
            v = r.get("train", {}).get(k)
            if isinstance(v, (int, float)):
                out[k].append((float(r["epoch"]), float(v)))
    return out


# ----------------------------------------------------------------------------- W&B
def wandb_logged_in() -> bool:
    """Whether W&B has credentials without asking (env var or ~/.netrc); never prompts."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc(os.environ.get("NETRC"))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return rc.authenticators(host) is not None


class WandbTracker:
    """Weights & Biases run on rank 0: config, losses, metrics, images, artifacts.

    The mode comes from ``WANDB_MODE`` if set; otherwise online with credentials,
    else offline (logged to ``RUN_DIR/wandb/`` for a later ``wandb sync``), which
    is announced on the log. It never prompts for a login.
    """

    def __init__(self, run_dir: Path, project: str, name: str | None, config: dict[str, Any],
                 resume_id: str | None = None) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb
        except ImportError:
            from geocolor.errors import GeocolorError

            raise GeocolorError(
                "--wandb needs the Weights & Biases package, which is not installed: "
                "pip install 'geocolor[wandb]' (or pip install wandb), or train without --wandb"
            ) from None

        self._wandb = wandb
        mode = os.environ.get("WANDB_MODE", "").lower()
        if mode not in ("online", "offline", "disabled", "dryrun", "run"):
            mode = "online" if wandb_logged_in() else "offline"
            if mode == "offline":
                log.info("W&B: no login found (WANDB_API_KEY or ~/.netrc); logging offline to "
                         "%s/wandb (upload later with `wandb sync`)", run_dir)
        elif mode in ("online", "run") and not wandb_logged_in():
            mode = "offline"  # never let wandb ask for an API key
            log.info("W&B: WANDB_MODE=online but no login found (WANDB_API_KEY or ~/.netrc); logging "
                     "offline to %s/wandb (upload later with `wandb sync`)", run_dir)
        elif mode in ("offline", "dryrun"):
            log.info("W&B: logging offline to %s/wandb (WANDB_MODE=%s)", run_dir, mode)
        self.mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
        kwargs: dict[str, Any] = {}
        if resume_id:
            kwargs.update(id=resume_id, resume="allow")
        self.run = wandb.init(
            project=project, name=name, dir=str(run_dir), config=config, mode=self.mode,
            settings=wandb.Settings(console="off", silent=True), **kwargs,
        )
        self.id = self.run.id

    def log(self, data: dict[str, Any], step: int) -> None:
        self.run.log(data, step=step)

    def log_image(self, key: str, path: Path, step: int, caption: str = "") -> None:
        self.run.log({key: self._wandb.Image(str(path), caption=caption)}, step=step)

    def log_artifact(self, path: Path, name: str, kind: str, aliases: list[str] | None = None,
                     metadata: dict[str, Any] | None = None) -> None:
        art = self._wandb.Artifact(name=name, type=kind, metadata=metadata or {})
        art.add_file(str(path))
        self.run.log_artifact(art, aliases=aliases or [])

    def summary(self, data: dict[str, Any]) -> None:
        for k, v in data.items():
            self.run.summary[k] = v

    def finish(self) -> None:
        self.run.finish()
