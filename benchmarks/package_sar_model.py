"""Package a trained SAR run as the default model, with validation figures and baselines in its card.

    .venv/bin/python benchmarks/sar_baselines.py RUN --img-size 256 --out RUN-baselines-256.json
    .venv/bin/python benchmarks/sar_baselines.py RUN --img-size 128 --out RUN-baselines-128.json
    .venv/bin/python benchmarks/package_sar_model.py RUN RUN-baselines-256.json RUN-baselines-128.json \\
        --reproduce "geocolor train sar ..." [--out geocolor/weights/sar_default.model]

The weights are ``RUN/model.model``'s, unchanged; the card gains ``metrics.validation`` (model and
baselines on the 256- and 128-px validation chips) and ``training.reproduce``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("baselines_256", type=Path)
    ap.add_argument("baselines_128", type=Path)
    ap.add_argument("--reproduce", required=True)
    ap.add_argument("--command", help="replace training.command (e.g. the resume command actually run)")
    ap.add_argument("--out", type=Path, default=ROOT / "geocolor" / "weights" / "sar_default.model")
    args = ap.parse_args()

    from geocolor.io.modelfile import load_model, save_model

    b256 = json.loads(args.baselines_256.read_text())
    b128 = json.loads(args.baselines_128.read_text())
    model = load_model(args.run_dir / "model.model", kind="sar")
    card = model.card
    metrics = dict(card.metrics)
    metrics["validation"] = {
        "split": "by fragment/group (overlapping fragments kept together); see training.data",
        "val_fragments": b256["split"]["val_names"],
        "chips_256": {"count": b256["chips"], **b256["results"]["model"]},
        "chips_128": {"count": b128["chips"], **b128["results"]["model"]},
        "baselines_chips_256": {k: v for k, v in b256["results"].items() if k != "model"},
        "baselines_chips_128": {k: v for k, v in b128["results"].items() if k != "model"},
        "units": b256["units"],
    }
    training = dict(card.training)
    training["reproduce"] = args.reproduce
    if args.command:
        training["command"] = args.command
    training["data"] = {**training.get("data", {}),
                        "terrains": [t for t in training.get("data", {}).get("terrains", []) if t]}
    save_model(args.out, model.network, dataclasses.replace(card, metrics=metrics, training=training))
    print(args.out)


if __name__ == "__main__":
    main()
