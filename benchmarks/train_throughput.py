"""Training throughput of ``geocolor train sar`` (JSON on stdout; not a test).

    nice -n 5 .venv/bin/python benchmarks/train_throughput.py [--data DIR] [--out F]
        [--ngf 16 --ndf 16 --img-size 128 --batch-size 8 --workers 0 --threads 1 --device auto]

Figures:

full_step
    images/s of the complete training step (G_AB, G_BA, D_Y, D_X: generator
    step, then discriminator step) on one batch already in memory.
real_data_vs_memory
    median step time when every batch comes from the real DataLoader exactly as
    ``run_training`` builds it (``PairedDataset`` random crops of the s1s2-la
    fragments, per-item seeding, the epoch sampler, ``--workers`` processes),
    against the median step time on the in-memory batch. Blocks of the two are
    interleaved so that CPU contention from other processes hits both alike;
    ``ratio`` = real / memory (target <= 1.10).
data_only
    batches/s of the DataLoader alone (no training), to show the headroom.

Without --data (or when it is missing) a folder of generated 1024x1024 pairs is
used, so the script runs anywhere. On CUDA the step runs under AMP (bf16 where
supported), as in training.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = Path("/work/shared/data/s1s2-la")


def generated_data(root: Path, n: int = 8, size: int = 1024) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "sar").mkdir(parents=True)
    (root / "opt").mkdir(parents=True)
    for i in range(n):
        grey = rng.integers(0, 256, (size, size), dtype=np.uint8)
        Image.fromarray(grey).save(root / "sar" / f"{i:03d}.png")
        Image.fromarray(np.stack([grey, 255 - grey, grey // 2], axis=2)).save(root / "opt" / f"{i:03d}.png")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--ndf", type=int, default=16)
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--block", type=int, default=5, help="steps per interleaved block")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved real/memory block pairs")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from geocolor.train.loop import EpochSampler, SeededItems, StepContext, _ddp_wrap
    from geocolor.train.runtime import seed_everything, seed_worker, setup_runtime
    from geocolor.train.sar import SarSettings, prepare_sar_task

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = None
    data = args.data
    if not (data / "sar").is_dir():
        tmp = tempfile.TemporaryDirectory()
        data = generated_data(Path(tmp.name) / "gen")
    settings = SarSettings(data=str(data), img_size=args.img_size, ngf=args.ngf, ndf=args.ndf,
                           batch_size=args.batch_size, lambda_content=0.0, workers=args.workers,
                           device=args.device, val_fraction=0.15)
    seed_everything(0)
    runtime = setup_runtime(settings.device, settings.amp)
    task = prepare_sar_task(settings)
    task.setup(runtime)
    t0 = time.perf_counter()
    train_ds, _ = task.datasets()
    load_s = time.perf_counter() - t0
    ctx = StepContext(runtime, _ddp_wrap(task.nets, runtime))
    task.train_mode(True)

    def loader(epoch: int) -> Any:
        sampler = EpochSampler(len(train_ds), 0, epoch, batch_size=args.batch_size, drop_last=True)
        return DataLoader(SeededItems(train_ds), batch_size=args.batch_size, sampler=sampler,
                          num_workers=args.workers, worker_init_fn=seed_worker,
                          generator=torch.Generator().manual_seed(epoch),
                          pin_memory=runtime.device.type == "cuda")

    def sync() -> None:
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()

    it = iter(loader(0))
    fixed = next(it)
    for _ in range(2):  # warm-up
        task.train_step(fixed, ctx)
        runtime.scaler.update()
    real: list[float] = []
    memory: list[float] = []
    epoch = 0
    for _ in range(args.rounds):
        for _ in range(args.block):
            sync()
            t = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                epoch += 1
                it = iter(loader(epoch))
                batch = next(it)
            task.train_step(batch, ctx)
            runtime.scaler.update()
            sync()
            real.append(time.perf_counter() - t)
        for _ in range(args.block):
            sync()
            t = time.perf_counter()
            task.train_step(fixed, ctx)
            runtime.scaler.update()
            sync()
            memory.append(time.perf_counter() - t)
    # data pipeline alone
    n_batches = 0
    t = time.perf_counter()
    for _batch in loader(99):
        n_batches += 1
        if n_batches >= 30:
            break
    data_s = time.perf_counter() - t
    med_real, med_mem = statistics.median(real), statistics.median(memory)
    result = {
        "device": str(runtime.device),
        "amp": str(runtime.amp_dtype).replace("torch.", "") if runtime.amp_dtype else "off",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "platform": platform.platform(),
        "data": str(data) + (" (generated)" if tmp else ""),
        "train_items": len(train_ds),
        "dataset_preload_s": round(load_s, 2),
        "settings": {"ngf": args.ngf, "ndf": args.ndf, "img_size": args.img_size,
                     "batch_size": args.batch_size, "workers": args.workers},
        "full_step": {"median_step_s": round(med_mem, 4),
                      "images_per_s": round(args.batch_size / med_mem, 2)},
        "real_data_vs_memory": {"median_step_real_s": round(med_real, 4), "median_step_memory_s": round(med_mem, 4),
                                "ratio": round(med_real / med_mem, 3), "steps_each": len(real),
                                "within_10_percent": med_real <= 1.10 * med_mem},
        "data_only": {"batches_per_s": round(n_batches / data_s, 2),
                      "images_per_s": round(n_batches * args.batch_size / data_s, 1)},
    }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
