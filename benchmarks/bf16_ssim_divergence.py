"""Reproduce, on a CPU, why CUDA bf16 training with the SSIM loss diverged (not a test).

    python benchmarks/bf16_ssim_divergence.py old|fixed|fp32 DATA RUN_DIR STEPS [train sar options]

Runs ``geocolor train sar DATA`` with the fifteenth session's g2 recipe (from the packaged
model, ``--lambda-adv 1 --lambda-grad 300 --lambda-ssim 150``, EfficientNet-Lite0 content
loss) while the trainer's runtime is switched to CPU bf16 autocast, the precision the CUDA runs
trained in (``fp32``: the trainer as it is on a CPU). ``old`` puts back the Gaussian blur of
the SSIM loss as it was before the fix, its convolutions obeying autocast. Compare the ``l1``
and ``ssim`` columns of ``RUN_DIR/metrics.jsonl``: in the session's runs (128-px crops, batch
8, 400 steps) ``old`` reached NaN at step 88 (training now stops itself 3 NaN steps later)
and ``fixed`` stayed finite throughout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import geocolor.metrics as metrics  # noqa: E402
import geocolor.train.trainer as trainer  # noqa: E402
from geocolor.train.runtime import Runtime  # noqa: E402


def cpu_bf16_runtime(device: str, amp: str) -> Runtime:
    """The trainer's runtime, but CPU bf16 autocast (the trainer itself runs a CPU in float32)."""
    return Runtime(torch.device("cpu"), amp_dtype=torch.bfloat16,
                   scaler=torch.amp.GradScaler("cpu", enabled=False))


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[1] not in ("old", "fixed", "fp32"):
        sys.exit(__doc__)
    mode, data, run, steps, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    if mode == "old":
        metrics.gaussian_blur = metrics.gaussian_blur_under_autocast
    if mode != "fp32":
        trainer.setup_runtime = cpu_bf16_runtime
    from geocolor.cli import main as cli

    sys.argv = ["geocolor", "train", "sar", data, "-o", run, "--max-steps", steps,
                "--init-from", str(ROOT / "geocolor" / "weights" / "sar_default.model"),
                "--lambda-adv", "1", "--lambda-cycle", "0", "--lambda-grad", "300",
                "--lambda-ssim", "150", "--lr-gen", "1e-4", "--content-net", "efficientnet-lite0",
                "--scale-jitter", "0.3", "--crops-per-image", "16", "--workers", "0",
                "--threads", "1", "--epochs", "100", "--lr-decay-start", "50", "--half", *extra]
    cli()


if __name__ == "__main__":
    main()
