"""A SAR model next to two baselines on a training run's validation split (JSON on stdout).

    .venv/bin/python benchmarks/sar_baselines.py RUN_DIR [--model FILE] [--img-size 256] [--out F]

Reads ``RUN_DIR/split.json`` (written by ``geocolor train sar``), cuts every
validation image into the centred, non-overlapping grid of ``--img-size`` chips
(256: the 16 chips per s1s2-la fragment) and reports L1, PSNR and SSIM (RGB in
[0, 1]; PSNR capped at 100 dB per chip; means over chips; the definitions of
:mod:`geocolor.metrics`, as in training validation) for:

``model``
    the model file (default ``RUN_DIR/model.model``), run on each chip.
``mean_train_colour``
    every pixel set to the mean RGB of all *training* optical images
    (pixel-weighted over the whole images): what a model that ignores its input
    could learn at best as one constant.
``sar_grey``
    the SAR chip copied to R, G and B.
``mean_val_colour`` (reference only)
    the mean RGB of the validation targets themselves, an oracle constant.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def mean_colour(paths: list[Path]) -> torch.Tensor:  # noqa: F821
    """Pixel-weighted mean RGB in [0, 1] over whole optical images."""
    import numpy as np
    import torch

    from geocolor.data.paired import read_opt

    total = np.zeros(3, np.float64)
    pixels = 0
    for p in paths:
        a = read_opt(p)
        total += a.reshape(-1, 3).sum(0, dtype=np.float64)
        pixels += a.shape[0] * a.shape[1]
    return torch.tensor(total / pixels / 255.0, dtype=torch.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--img-size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    from geocolor import metrics
    from geocolor.config import read_toml
    from geocolor.data.paired import PairedDataset, find_pairs
    from geocolor.io.modelfile import load_model
    from geocolor.train.sar import load_split

    torch.set_num_threads(args.threads)
    config = read_toml(args.run_dir / "config.toml")
    pairs = find_pairs(config["data"]).pairs
    train, val = load_split(args.run_dir / "split.json", pairs)
    model_path = args.model or args.run_dir / "model.model"
    model = load_model(model_path, kind="sar")
    t0 = time.perf_counter()
    train_colour = mean_colour([p.opt_path for p in train])
    val_colour = mean_colour([p.opt_path for p in val])
    ds = PairedDataset(val, img_size=args.img_size, train=False)
    sums: dict[str, dict[str, float]] = {}
    n = 0
    with torch.inference_mode():
        for start in range(0, len(ds), args.batch_size):
            items = [ds[i] for i in range(start, min(len(ds), start + args.batch_size))]
            sar = torch.stack([a for a, _ in items])
            target = metrics.to_unit(torch.stack([b for _, b in items]))
            preds = {
                "model": metrics.to_unit(model.network(sar).float()),
                "mean_train_colour": train_colour.view(1, 3, 1, 1).expand_as(target).contiguous(),
                "sar_grey": metrics.to_unit(sar).expand(-1, 3, -1, -1).contiguous(),
                "mean_val_colour": val_colour.view(1, 3, 1, 1).expand_as(target).contiguous(),
            }
            for name, pred in preds.items():
                s = sums.setdefault(name, {"l1": 0.0, "psnr": 0.0, "ssim": 0.0})
                s["l1"] += float(metrics.l1(pred, target).sum())
                s["psnr"] += float(metrics.psnr(pred, target).clamp(max=100).sum())
                s["ssim"] += float(metrics.ssim(pred, target).sum())
            n += len(items)
    result = {
        "run_dir": str(args.run_dir),
        "model": str(model_path),
        "data": config["data"],
        "split": {"train_images": len(train), "val_images": len(val),
                  "val_groups": len({p.group for p in val}), "val_names": [p.name for p in val]},
        "chips": n,
        "chip_size": args.img_size,
        "mean_train_colour_rgb": [round(float(c), 4) for c in train_colour],
        "mean_val_colour_rgb": [round(float(c), 4) for c in val_colour],
        "units": "RGB in [0, 1]; PSNR dB (peak 1, capped at 100 per chip); means over chips",
        "results": {k: {m: round(v / n, 4) for m, v in s.items()} for k, s in sums.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
