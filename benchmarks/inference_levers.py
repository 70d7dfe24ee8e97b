"""Model-only tiles/s of the inference-graph levers (JSON on stdout; not a test).

    python benchmarks/inference_levers.py [--model M | --ngf 32] [--rounds 3] [--out F]

Variants, on random (B, 1, T, T) batches in memory, timed alternately in
``--rounds`` rounds of ``--seconds`` each (so load from other processes hits all
alike; medians reported):

- ``eager``: the network as loaded (eval, ``torch.inference_mode``);
- ``fold``: BatchNorm folded into the convolutions
  (:func:`geocolor.infer.backend.fold_batchnorm`);
- ``fold_cl``: folded and ``channels_last`` (what ``--backend torch`` runs);
- ``onnxruntime``: the folded network exported to ONNX on ONNX Runtime
  (``--backend onnxruntime``).

Each variant's max |difference| from ``eager`` on the same batch is reported (values in [-1, 1]).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="[default: packaged SAR model]")
    parser.add_argument("--ngf", type=int, default=None,
                        help="an untrained U-Net of this width instead (8 levels, 256-px tiles)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    from geocolor.infer.backend import OnnxRunner, fold_batchnorm
    from geocolor.infer.onnxexport import network_to_onnx
    from geocolor.io.modelfile import load_model, packaged_model_path
    from geocolor.models.unet import UNetGenerator

    if args.ngf:
        torch.manual_seed(0)
        net = UNetGenerator(1, 3, args.ngf, 8, "batch", 0.5).eval()
        tile, name = 256, f"untrained U-Net ngf {args.ngf}, 8 levels, 256-px tiles"
    else:
        path = args.model or packaged_model_path("sar")
        loaded = load_model(path, kind="sar")
        net, name = loaded.network.eval(), str(path)
        tile = int(loaded.card.input.get("tile_size", 256))
    x = torch.rand(args.batch_size, 1, tile, tile) * 2 - 1
    folded = copy.deepcopy(net)
    n_folded = fold_batchnorm(folded)
    folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
    session = OnnxRunner(network_to_onnx(net, tile))

    def torch_variant(module: torch.nn.Module, cl: bool) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            with torch.inference_mode():
                xx = x.contiguous(memory_format=torch.channels_last) if cl else x
                return module(xx).numpy()
        return run

    variants: dict[str, Callable[[], np.ndarray]] = {
        "eager": torch_variant(net, False),
        "fold": torch_variant(folded, False),
        "fold_cl": torch_variant(folded_cl, True),
        "onnxruntime": lambda: session(x.numpy()),
    }
    reference = variants["eager"]()
    report: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]), "model": name, "tile": tile,
        "batch_size": args.batch_size, "batchnorm_folded": n_folded, "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "max_abs_diff_vs_eager": {k: float(np.abs(v() - reference).max())
                                  for k, v in variants.items()},
        "rounds": [],
    }
    for _ in range(args.rounds):
        row: dict[str, Any] = {"loadavg": open("/proc/loadavg").read().split()[:3]}
        for key, run in variants.items():
            run()
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                run()
                n += args.batch_size
            row[key] = round(n / (time.perf_counter() - start), 2)
        report["rounds"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    report["median_tiles_per_s"] = {k: float(np.median([r[k] for r in report["rounds"]]))
                                    for k in variants}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
