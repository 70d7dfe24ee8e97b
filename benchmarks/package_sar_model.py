"""Package a trained SAR run as the default model, its card carrying held-out figures and baselines.

    geocolor evaluate RUN/model.model DATA --split RUN/split.json --json > in_region.json
    geocolor evaluate RUN/model.model HOLDOUT_DIR --json > holdout.json
    geocolor evaluate RUN/model.model XREGION_DIR --json > cross_region.json
    python benchmarks/package_sar_model.py RUN --eval in_region=in_region.json \\
        --eval la_holdout=holdout.json --eval cross_region=cross_region.json \\
        --trained-on "..." --limits "..." --reproduce "geocolor train sar ..." \\
        [--out geocolor/weights/sar_default.model]

The weights are ``RUN/model.model``'s, unchanged. The card gains
``metrics.evaluation`` (per named set: the data, the chip count and size, the
model's overall figures and each baseline's, from ``geocolor evaluate --json``),
``training.trained_on``, ``training.limits`` (one honest sentence) and
``training.reproduce``; ``geocolor info`` shows them. ``--tile-size`` sets the
inference tile size (a fully convolutional generator trained on small crops
colorizes larger tiles with more context and fewer seams).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from card_packaging import package_arguments, repackage, rounded  # noqa: E402


def evaluation_entry(report: dict[str, Any]) -> dict[str, Any]:
    """The card's summary of one ``geocolor evaluate --json`` report."""
    overall = report["groups"]["overall"]
    return {
        "data": report["data"],
        "split": report.get("split"),
        "chips": report["chips"],
        "tile_size": report["tile_size"],
        "model": rounded(overall["model"]),
        "baselines": {report["methods"][k]: rounded(v) for k, v in overall.items() if k != "model"},
    }


def main() -> None:
    ap = package_arguments(__doc__.split("\n")[0], ROOT / "geocolor" / "weights" / "sar_default.model")
    ap.add_argument("--tile-size", type=int,
                    help="inference tile size for the card (the figures' chip size; default: unchanged)")
    args = ap.parse_args()

    from geocolor.io.modelfile import load_model

    trained_crop = load_model(args.model or args.run_dir / "model.model", kind="sar").card.input["tile_size"]
    print(repackage(args, "sar", evaluation_entry,
                    "RGB in [0, 1]; PSNR in dB; means over chips; GMSD lower is better; "
                    "sharpness and colourfulness as ratios to the real image",
                    {"tile_size": args.tile_size or trained_crop, "training_crop_size": trained_crop}))


if __name__ == "__main__":
    main()
