"""Seam ratio against tile overlap on real scenes: how the default overlap was chosen.

    python benchmarks/overlap_seams.py [--model M] [--scenes 6] [--out F]

For each real Sentinel-1 fragment (s1s2-la ``sar/*.png``, 1024x1024 VH amplitude,
8 bit: every k-th of the sorted files, ``--scenes`` of them), each tile size and
each overlap, the scene is colorized with the packaged SAR model (or ``--model``)
and :func:`geocolor.infer.tiling.seam_ratio` is measured on the output (mean
|difference| of neighbouring pixels across tile edges / the same a little inside
the tiles: 1.0 means no visible seam; the tests use the same measure). The tile
count of each setting is reported too: overlap costs tiles.

The default overlap (:data:`geocolor.infer.sarmodel.DEFAULT_OVERLAP`, capped at a
quarter tile) is the smallest measured overlap whose seam ratio stays <= 1.0 on every
scene, for both tile sizes.

The seam ratio sees steps at tile edges, not a smooth tile-sized pattern (a network
whose output drifts near its input's borders paints each tile's centre a little
darker than its rim). ``--vs-whole`` also colorizes each scene as one single tile and
reports the mean |tiled - whole| in 8-bit DN per setting: the tiling's own footprint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENES = Path("/work/shared/data/s1s2-la/sar")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="[default: packaged SAR model]")
    parser.add_argument("--scene-dir", type=Path, default=SCENES)
    parser.add_argument("--scenes", type=int, default=6, help="how many fragments (spread evenly)")
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--fractions", type=int, nargs="+", default=[0, 16, 8, 4],
                        help="overlaps as tile // N (0: no overlap)")
    parser.add_argument("--overlaps", type=int, nargs="+", default=None,
                        help="overlaps in pixels instead of --fractions")
    parser.add_argument("--vs-whole", action="store_true",
                        help="also report mean |tiled - one whole-scene tile| (DN) per setting")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import rasterio

    from geocolor.infer.scene import colorize_scene
    from geocolor.infer.tiling import TileGrid, seam_ratio
    from geocolor.io.modelfile import load_model, packaged_model_path

    model_path = args.model or packaged_model_path("sar")
    loaded = load_model(model_path, kind="sar")
    files = sorted(args.scene_dir.glob("*.png"))
    if not files:
        sys.exit(f"no scenes in {args.scene_dir}")
    step = max(1, len(files) // args.scenes)
    scenes = files[::step][: args.scenes]
    report: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "model": str(model_path),
        "scenes": [s.name for s in scenes],
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "settings": [],
    }
    with tempfile.TemporaryDirectory(prefix="geocolor-seams-") as tmp:
        out = Path(tmp) / "o.tif"
        wholes = [_whole_scene(scene, loaded, Path(tmp) / f"whole{i}.tif") for i, scene in
                  enumerate(scenes)] if args.vs_whole else []
        for tile in args.tiles:
            overlaps = args.overlaps or [tile // n if n else 0 for n in args.fractions]
            for overlap in overlaps:
                ratios, tiles, drifts = [], 0, []
                t0 = time.perf_counter()
                for i, scene in enumerate(scenes):
                    result = colorize_scene(scene, out, loaded, tile_size=tile, overlap=overlap,
                                            device="cpu", overwrite=True)
                    tiles += result["tiles"]
                    with rasterio.open(out) as ds:
                        rgb = ds.read()
                        ratios.append(seam_ratio(rgb, TileGrid(ds.height, ds.width, tile, overlap)))
                    if wholes:
                        drifts.append(float(np.abs(rgb.astype(np.float32) - wholes[i]).mean()))
                setting = {"tile": tile, "overlap": overlap, "tiles": tiles,
                           "seam_ratio_mean": round(float(np.mean(ratios)), 4),
                           "seam_ratio_max": round(float(np.max(ratios)), 4),
                           "per_scene": [round(r, 4) for r in ratios],
                           "seconds": round(time.perf_counter() - t0, 1)}
                if drifts:
                    setting["vs_whole_dn_mean"] = round(float(np.mean(drifts)), 3)
                    setting["vs_whole_dn_per_scene"] = [round(d, 3) for d in drifts]
                report["settings"].append(setting)
                print(json.dumps(setting), file=sys.stderr, flush=True)
    report["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    report["cpus"] = os.cpu_count()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def _whole_scene(scene: Path, loaded: Any, out: Path) -> np.ndarray:
    """(3, H, W) float32 colorization of ``scene`` as one tile (side: the larger, to a multiple of 32)."""
    import rasterio

    from geocolor.infer.scene import colorize_scene

    with rasterio.open(scene) as ds:
        side = -(-max(ds.height, ds.width) // 32) * 32
    colorize_scene(scene, out, loaded, tile_size=side, overlap=0, device="cpu", overwrite=True)
    with rasterio.open(out) as ds:
        return ds.read().astype(np.float32)


if __name__ == "__main__":
    main()
