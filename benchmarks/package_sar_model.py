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

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items()}


def evaluation_entry(report: dict[str, Any]) -> dict[str, Any]:
    """The card's summary of one ``geocolor evaluate --json`` report."""
    overall = report["groups"]["overall"]
    return {
        "data": report["data"],
        "split": report.get("split"),
        "chips": report["chips"],
        "tile_size": report["tile_size"],
        "model": _rounded(overall["model"]),
        "baselines": {report["methods"][k]: _rounded(v) for k, v in overall.items() if k != "model"},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=REPORT.json")
    ap.add_argument("--trained-on", required=True)
    ap.add_argument("--limits", required=True)
    ap.add_argument("--reproduce", required=True)
    ap.add_argument("--model", type=Path, help="model file (default RUN/model.model)")
    ap.add_argument("--tile-size", type=int,
                    help="inference tile size for the card (the figures' chip size; default: unchanged)")
    ap.add_argument("--out", type=Path, default=ROOT / "geocolor" / "weights" / "sar_default.model")
    args = ap.parse_args()

    from geocolor.io.modelfile import load_model, save_model

    model = load_model(args.model or args.run_dir / "model.model", kind="sar")
    card = model.card
    evaluation = {}
    for item in args.eval:
        name, _, path = item.partition("=")
        evaluation[name] = evaluation_entry(json.loads(Path(path).read_text()))
    metrics = {**card.metrics, "evaluation": evaluation,
               "units": "RGB in [0, 1]; PSNR in dB; means over chips; GMSD lower is better; "
                        "sharpness and colourfulness as ratios to the real image"}
    training = {**card.training, "trained_on": args.trained_on, "limits": args.limits,
                "reproduce": args.reproduce}
    inputs = {**card.input, "tile_size": args.tile_size or card.input["tile_size"],
              "training_crop_size": card.input["tile_size"]}
    half = card.weights_dtype == "float16"
    save_model(args.out, model.network,
               dataclasses.replace(card, input=inputs, metrics=metrics, training=training), half=half)
    print(args.out)


if __name__ == "__main__":
    main()
