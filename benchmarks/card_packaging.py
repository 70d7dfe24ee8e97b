"""Shared by benchmarks/package_*_model.py: a model file re-carded with held-out figures.

Each script parses its own options and summarises ``geocolor evaluate --json`` reports
its own way; this module does the rest the same way for both kinds.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rounded(values: dict[str, Any]) -> dict[str, Any]:
    """Floats rounded to 4 decimals (card figures), other values as they are."""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items()}


def package_arguments(description: str, default_out: Path) -> argparse.ArgumentParser:
    """The options both packaging scripts take (RUN, --eval, --trained-on, --limits, ...)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=REPORT.json")
    ap.add_argument("--trained-on", required=True)
    ap.add_argument("--limits", required=True)
    ap.add_argument("--reproduce", required=True)
    ap.add_argument("--model", type=Path, help="model file (default RUN/model.model)")
    ap.add_argument("--out", type=Path, default=default_out)
    ap.add_argument("--data-name", help="name the card gives the training data instead of the run's "
                                        "local path (e.g. s1s2-la)")
    return ap


def repackage(args: argparse.Namespace, kind: str, summarise: Callable[[dict[str, Any]], dict[str, Any]],
              units: str, input_overrides: dict[str, Any] | None = None) -> Path:
    """Write ``args.out``: the run's weights unchanged (same storage dtype), the card extended.

    The card gains ``metrics.evaluation`` (``summarise`` of each ``--eval NAME=REPORT``),
    ``metrics.units``, ``training.trained_on``, ``training.limits``, ``training.reproduce``
    and, when given, ``input_overrides`` merged into ``input`` and ``--data-name`` as the
    training data's ``root``.
    """
    from geocolor.io.modelfile import load_model, save_model

    model = load_model(args.model or args.run_dir / "model.model", kind=kind)
    card = model.card
    evaluation = {}
    for item in args.eval:
        name, _, path = item.partition("=")
        evaluation[name] = summarise(json.loads(Path(path).read_text()))
    metrics = {**card.metrics, "evaluation": evaluation, "units": units}
    training = {**card.training, "trained_on": args.trained_on, "limits": args.limits,
                "reproduce": args.reproduce}
    if getattr(args, "data_name", None) and isinstance(training.get("data"), dict):
        training["data"] = {**training["data"], "root": args.data_name}
    inputs = {**card.input, **(input_overrides or {})}
    new_card = dataclasses.replace(card, input=inputs, metrics=metrics, training=training)
    return save_model(args.out, model.network, new_card, half=card.weights_dtype == "float16")
