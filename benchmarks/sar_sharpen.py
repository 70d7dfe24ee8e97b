"""Is a SAR model's softness a missing detail gain, or missing information? Add detail, re-score.

    python benchmarks/sar_sharpen.py MODEL DATA [--split SPLIT] [--setting A S ...]
    python benchmarks/sar_sharpen.py MODEL DATA [--split SPLIT] --lowpass 3 --sar-gain 0.4 ...
    python benchmarks/sar_sharpen.py MODEL DATA [--split SPLIT] --lowpass 3 --oracle-block 32

Three ways to give the output more fine detail, each scored on the same chips as
``geocolor evaluate --tile-size 256`` (PSNR, SSIM, GMSD, sharpness; JSON lines on stdout):

- ``--setting A S``: the model's own detail, unsharp-masked: ``y + A (y - blur_S(y))``.
- ``--sar-gain G``: the SAR's own structure, as pan-sharpening adds a panchromatic band's:
  the output low-passed (``--lowpass`` sigma px; 0 keeps it) plus ``G`` times the high-pass
  (``x - blur_{--sar-sigma}(x)``) of the Lee-filtered SAR, on all three channels.
- ``--oracle-block B``: an upper bound for that pan-sharpening, no model can reach it: per
  B x B block, the gain from ``ORACLE_GAINS`` with the highest SSIM against the *real*
  image is used. If even this cannot raise the sharpness ratio without lowering SSIM, the
  SAR's fine structure does not carry the optical image's.

If the model's detail (or the SAR's) were right but too weak, more of it would raise SSIM
with the sharpness ratio; if SSIM falls, the missing detail is information that neither
has, not a gain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geocolor import metrics  # noqa: E402
from geocolor.evaluate import _colour_metrics, _Mean, evaluate_sar  # noqa: E402
from geocolor.io.modelfile import LoadedModel, load_model  # noqa: E402
from geocolor.metrics import gaussian_blur  # noqa: E402
from geocolor.models.effunet import LeeFilter  # noqa: E402

#: Metrics of the oracle's output (``geocolor evaluate``'s names and definitions).
ORACLE_METRICS = ("psnr", "ssim", "gmsd", "sharpness")
#: Gains the oracle chooses from per block (0: the low-passed output alone).
ORACLE_GAINS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def unsharp_blur(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, C, H, W) at ``sigma`` px, radius 3 sigma, reflect-padded (same size)."""
    radius = max(1, int(3 * sigma + 0.5))
    return gaussian_blur(y, sigma, 2 * radius + 1, pad="reflect")


def sar_detail(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, H, W) SAR in [-1, 1] -> its Lee-filtered high-pass at ``sigma`` px (same units)."""
    smooth = LeeFilter()(x)
    return smooth - unsharp_blur(smooth, sigma)


class Detailed(torch.nn.Module):
    """``network`` with more detail: unsharp mask (``amount``, ``sigma``), or low-pass + SAR detail.

    Output in [-1, 1]. ``lowpass`` 0 and ``sar_gain`` 0 leave the low-pass or the SAR detail out.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        amount: float = 0.0,
        sigma: float = 1.0,
        lowpass: float = 0.0,
        sar_gain: float = 0.0,
        sar_sigma: float = 4.0,
    ) -> None:
        super().__init__()
        self.network, self.amount, self.sigma = network, amount, sigma
        self.lowpass, self.sar_gain, self.sar_sigma = lowpass, sar_gain, sar_sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x)
        if self.amount:
            y = y + self.amount * (y - unsharp_blur(y, self.sigma))
        if self.lowpass:
            y = unsharp_blur(y, self.lowpass)
        if self.sar_gain:
            y = y + self.sar_gain * sar_detail(x, self.sar_sigma)
        return y.clamp(-1, 1)


def oracle_gain_map(
    base: torch.Tensor,
    detail: torch.Tensor,
    target: torch.Tensor,
    block: int,
    gains: tuple[float, ...] = ORACLE_GAINS,
) -> torch.Tensor:
    """Per ``block`` x ``block`` block, the gain whose ``base + gain * detail`` has the best SSIM.

    ``base``, ``target``: (B, 3, H, W) in [0, 1]; ``detail``: (B, 1, H, W); H, W multiples of
    ``block``. Returns (B, 1, H, W) gains (constant per block). Uses the real image: a bound.
    """
    scores = torch.stack(
        [F.avg_pool2d(_block_ssim((base + g * detail).clamp(0, 1), target), block) for g in gains]
    )
    best = torch.tensor(gains, dtype=base.dtype)[scores.argmax(0)]
    return F.interpolate(best, scale_factor=block, mode="nearest")


def _block_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) SSIM map of (B, 3, H, W) images (:func:`metrics.ssim`'s, reflect-padded)."""
    return metrics.ssim_map(x, y, pad="reflect").mean(1, keepdim=True).to(x.dtype)


def oracle_scores(
    model: LoadedModel,
    data: Path,
    split: Path | None,
    tile_size: int,
    lowpass: float,
    sar_sigma: float,
    block: int,
) -> dict[str, float]:
    """PSNR, SSIM, GMSD (chip means) and sharpness (ratio of means) of the oracle's output.

    Averaged as ``geocolor evaluate`` averages (its per-chip metrics and running means).
    """
    from geocolor.data.paired import PairedDataset, find_pairs
    from geocolor.data.split import read_split

    pairs = find_pairs(data).pairs
    if split is not None:
        pairs = read_split(split).select("val", pairs, lambda p: p.sar_path, split)
    ds = PairedDataset(pairs, img_size=tile_size, train=False)
    net = Detailed(model.network.eval(), lowpass=lowpass)
    means = _Mean()
    with torch.inference_mode():
        for i in range(len(ds)):
            x, target = (t[None] for t in ds[i])
            target = metrics.to_unit(target)
            base = metrics.to_unit(net(x))
            detail = sar_detail(x, sar_sigma) / 2  # [-1, 1] units -> [0, 1] units
            out = (base + oracle_gain_map(base, detail, target, block) * detail).clamp(0, 1)
            means.add(_colour_metrics(out, target, ORACLE_METRICS))
    return means.result()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument(
        "--split", type=Path, help="a training run's split.json (its val subset is scored)"
    )
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument(
        "--setting",
        nargs=2,
        type=float,
        action="append",
        metavar=("AMOUNT", "SIGMA"),
        help="unsharp mask, repeatable [default without --sar-gain/--oracle-block: "
        "0 1, 0.6 1, 1.2 1, 0.8 2]",
    )
    parser.add_argument(
        "--lowpass", type=float, default=0.0, help="sigma px of the low-pass under SAR detail"
    )
    parser.add_argument("--sar-gain", type=float, action="append", default=[], help="repeatable")
    parser.add_argument(
        "--sar-sigma", type=float, default=4.0, help="sigma px of the SAR high-pass [4]"
    )
    parser.add_argument("--oracle-block", type=int, help="also score the oracle's block-wise gains")
    parser.add_argument(
        "--train-colour", nargs=3, type=float, help="mean training colour (RGB in [0, 1])"
    )
    args = parser.parse_args()
    loaded = load_model(args.model, kind="sar")
    unsharp = args.setting or (
        [] if args.sar_gain or args.oracle_block else [(0, 1), (0.6, 1), (1.2, 1), (0.8, 2)]
    )
    settings = [{"amount": a, "sigma": s} for a, s in unsharp]
    settings += [
        {"lowpass": args.lowpass, "sar_gain": g, "sar_sigma": args.sar_sigma} for g in args.sar_gain
    ]
    for setting in settings:
        model = LoadedModel(
            card=loaded.card, network=Detailed(loaded.network, **setting), path=loaded.path
        )
        result = evaluate_sar(
            model,
            args.data,
            split=args.split,
            tile_size=args.tile_size,
            train_colour=tuple(args.train_colour) if args.train_colour else None,
        )
        figures = result["groups"]["overall"]["model"]
        print(json.dumps({**setting, **{k: round(v, 4) for k, v in figures.items()}}), flush=True)
    if args.oracle_block:
        figures = oracle_scores(
            loaded,
            args.data,
            args.split,
            args.tile_size,
            args.lowpass,
            args.sar_sigma,
            args.oracle_block,
        )
        print(
            json.dumps(
                {
                    "oracle_block": args.oracle_block,
                    "lowpass": args.lowpass,
                    "sar_sigma": args.sar_sigma,
                    **{k: round(v, 4) for k, v in figures.items()},
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
