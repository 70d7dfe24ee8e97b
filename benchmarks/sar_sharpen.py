"""Is a SAR model's softness a missing detail gain? Unsharp-mask its output and re-evaluate.

    python benchmarks/sar_sharpen.py MODEL DATA [--split SPLIT] [--amount A --sigma S ...]

Each setting wraps the model's network in ``y + A * (y - gaussian_blur(y, S))`` (output
clamped to [-1, 1]) and runs :func:`geocolor.evaluate.evaluate_sar` on the same chips as
``geocolor evaluate --tile-size 256``. If the model's detail were right but too weak,
sharpening would raise SSIM with the sharpness ratio; if SSIM falls, the missing
detail is information the model does not have, not a gain. JSON lines on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geocolor.evaluate import evaluate_sar  # noqa: E402
from geocolor.io.modelfile import LoadedModel, load_model  # noqa: E402
from geocolor.metrics import gaussian_blur  # noqa: E402


def unsharp_blur(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, C, H, W) at ``sigma`` px, radius 3 sigma, reflect padding (same size)."""
    radius = max(1, int(3 * sigma + 0.5))
    return gaussian_blur(y, sigma, 2 * radius + 1, pad="reflect")


class Sharpened(torch.nn.Module):
    """``network`` followed by an unsharp mask of ``amount`` at ``sigma`` px; output in [-1, 1]."""

    def __init__(self, network: torch.nn.Module, amount: float, sigma: float) -> None:
        super().__init__()
        self.network, self.amount, self.sigma = network, amount, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x)
        if self.amount == 0:
            return y
        return (y + self.amount * (y - unsharp_blur(y, self.sigma))).clamp(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", type=Path, help="a training run's split.json (its val subset is scored)")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--setting", nargs=2, type=float, action="append", metavar=("AMOUNT", "SIGMA"),
                        help="repeatable [default: 0 1, 0.6 1, 1.2 1, 0.8 2]")
    parser.add_argument("--train-colour", nargs=3, type=float, help="mean training colour (RGB in [0, 1])")
    args = parser.parse_args()
    loaded = load_model(args.model, kind="sar")
    for amount, sigma in args.setting or [(0, 1), (0.6, 1), (1.2, 1), (0.8, 2)]:
        model = LoadedModel(card=loaded.card, network=Sharpened(loaded.network, amount, sigma), path=loaded.path)
        result = evaluate_sar(model, args.data, split=args.split, tile_size=args.tile_size,
                              train_colour=tuple(args.train_colour) if args.train_colour else None)
        figures = result["groups"]["overall"]["model"]
        print(json.dumps({"amount": amount, "sigma": sigma, **{k: round(v, 4) for k, v in figures.items()}}),
              flush=True)


if __name__ == "__main__":
    main()
