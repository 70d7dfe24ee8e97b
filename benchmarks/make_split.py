"""Write a split record (``split.json``) for a SAR data folder without training.

    .venv/bin/python benchmarks/make_split.py DATA -o split.json [--val-fraction 0.15] [--seed 0]
        [--holdout-region LON_MIN,LAT_MIN,LON_MAX,LAT_MAX]

The same splitter as ``geocolor train sar`` (:func:`geocolor.data.paired.split_pairs`):
with the same data, fraction, seed and hold-out box it writes the split that
training would, so models trained elsewhere (or before the record existed, like
the packaged 0.1 model: ``--val-fraction 0.15 --seed 0``) can be scored with
``geocolor evaluate MODEL DATA --split split.json --subset val|holdout|train``.
Prints a JSON summary (items per side, held-out fragment names) on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout-region", default=None)
    args = ap.parse_args()

    from geocolor.data.paired import find_pairs, split_pairs
    from geocolor.errors import GeocolorError

    try:
        record = split_pairs(find_pairs(args.data), args.val_fraction, args.seed, args.holdout_region)
    except GeocolorError as exc:
        sys.exit(f"make_split: error: {exc}")
    record.write(args.output)
    print(json.dumps({
        "output": str(args.output),
        "method": record.method,
        "sides": {side: {"items": len(record.ids(side)), "names": [Path(i).stem for i in record.ids(side)]}
                  for side in record.sides if side != "train"} | {"train": {"items": len(record.ids("train"))}},
    }))


if __name__ == "__main__":
    main()
