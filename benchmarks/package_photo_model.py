"""Package a trained photo (semantic) run as the default model, its card carrying hold-out figures.

    geocolor evaluate RUN/model.model /work/photos/holdout --json > holdout.json
    geocolor evaluate RUN/model.model /work/photos/train --split RUN/split.json --json > val.json
    python benchmarks/package_photo_model.py RUN --eval holdout=holdout.json --eval validation=val.json \\
        --trained-on "..." --limits "..." --reproduce "geocolor train semantic ..." \\
        [--out geocolor/weights/semantic_default.model]

The weights are ``RUN/model.model``'s, unchanged (same storage dtype). The card gains
``metrics.evaluation`` (per named set: the data, the photo count, the model's overall
figures, the grey-input baseline's and the per-photo PSNR of both), ``training.trained_on``,
``training.limits`` (one honest sentence) and ``training.reproduce``; ``geocolor info``
shows them.
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
    """The card's summary of one semantic ``geocolor evaluate --json`` report."""
    overall = report["groups"]["overall"]
    per_image = {}
    for row in report.get("per_image", []):
        name = Path(str(row.get("image", row.get("name", "?")))).stem
        per_image[name] = {m: round(v["psnr"], 2) for m, v in row.items()
                           if isinstance(v, dict) and isinstance(v.get("psnr"), float)}
    return {
        "data": report["data"],
        "split": report.get("split"),
        "photos": report["images"],
        "image_size": report["image_size"],
        "model": rounded(overall["model"]),
        "baselines": {report["methods"][k]: rounded(v) for k, v in overall.items() if k != "model"},
        "per_photo_psnr": per_image,
    }


def main() -> None:
    ap = package_arguments(__doc__.split("\n")[0], ROOT / "geocolor" / "weights" / "semantic_default.model")
    args = ap.parse_args()
    print(repackage(args, "semantic", evaluation_entry,
                    "RGB in [0, 1] at full resolution; PSNR in dB; means over photos; GMSD lower "
                    "is better; sharpness and colourfulness as ratios to the real photo"))


if __name__ == "__main__":
    main()
