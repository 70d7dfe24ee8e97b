"""geocolor vs MONAI's sliding_window_inference, as whole processes (JSON on stdout; not a test).

    pip install -e '.[bench,onnx]'   # MONAI is a benchmark extra, never a runtime dependency
    python benchmarks/monai_compare.py [--size 8192] [--rounds 2] [--out F]

Both sides colorize the same generated float32 dB scene (``--size`` squared, VV,
CRS + transform) with the same untrained U-Net (``--ngf`` 32, 8 levels, 256-px tiles,
batch norm), the same tile size, overlap (``--overlap`` 32 px = MONAI's 0.125),
batch size, scaling (dB clipped to [-25, 0] -> [-1, 1]) and output (RGB uint8
Cloud-Optimized GeoTIFF, DEFLATE, geocolor's COG options):

- geocolor: ``python -m geocolor -q colorize SCENE -o OUT -m MODEL --overlap 32
  --batch-size 8 --device cpu`` (``--backend`` torch and/or onnxruntime);
- peer: a process that reads the whole scene, scales it, runs
  ``monai.inferers.sliding_window_inference`` (``mode="gaussian"``, blended like
  geocolor, the same network in eval mode under ``torch.inference_mode``),
  quantises and writes the COG; what a MONAI user writes.

Each process is started fresh; wall time and its own peak RSS (``os.wait4``'s
``ru_maxrss``) are recorded, with ``/proc/loadavg`` before each run. The sides run
alternately (geocolor, MONAI, geocolor, ...) so that load from other processes on a
shared machine hits both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_MIN, DB_MAX = -25.0, 0.0


def make_model(path: Path, ngf: int, tile: int = 256) -> Path:
    """An untrained pix2pix U-Net (8 levels, batch norm) with a card for dB VV input."""
    import torch

    from geocolor.io.modelfile import ModelCard, save_model
    from geocolor.models.unet import UNetGenerator

    torch.manual_seed(0)
    args = {"in_channels": 1, "out_channels": 3, "ngf": ngf, "levels": 8, "norm": "batch",
            "dropout": 0.5}
    scaling = {"scheme": "db_clip", "polarisation": "VV", "db_min": DB_MIN, "db_max": DB_MAX}
    card = ModelCard(kind="sar", arch="unet", arch_args=args,
                     input={"sar_scaling": scaling, "tile_size": tile},
                     training={"note": "untrained, for benchmarks"})
    return save_model(path, UNetGenerator(**args), card)


def generate_db_scene(path: Path, side: int, seed: int = 0) -> Path:
    """A float32 sigma0 dB scene (VV) with a CRS and transform, written in row blocks."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32",
               "tiled": True, "blockxsize": 256, "blockysize": 256,
               "crs": CRS.from_epsg(32611), "transform": from_origin(400000, 3800000, 10, 10)}
    xx = np.arange(side, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as ds:
        ds.descriptions = ("VV",)
        for y0 in range(0, side, 256):
            h = min(256, side - y0)
            rng = np.random.default_rng([seed, y0])
            yy = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
            field = (0.5 + 0.25 * np.sin(yy / 97.0) * np.cos(xx / 131.0)
                     + 0.2 * np.sin((xx + yy) / 53.0))
            linear = field * rng.gamma(4.0, 0.25, (h, side)).astype(np.float32) * 0.2
            ds.write(10 * np.log10(np.maximum(linear, 1e-6)).astype(np.float32), 1,
                     window=Window(0, y0, side, h))
    return path


def peer(model: str, scene: str, out: str, overlap_px: int, batch: int) -> None:
    """The MONAI side, run in its own process."""
    import rasterio
    import torch
    from monai.inferers import sliding_window_inference

    from geocolor.infer.output import DEFAULT_COG_OPTIONS
    from geocolor.io.modelfile import load_model

    loaded = load_model(model, kind="sar")
    net = loaded.network.eval()
    tile = int(loaded.card.input["tile_size"])
    with rasterio.open(scene) as ds:
        data = ds.read(1)
        profile = {"crs": ds.crs, "transform": ds.transform, "width": ds.width, "height": ds.height}
    x = np.clip((data - DB_MIN) / (DB_MAX - DB_MIN), 0.0, 1.0) * 2 - 1
    del data
    with torch.inference_mode():
        y = sliding_window_inference(
            torch.from_numpy(x.astype(np.float32))[None, None], roi_size=(tile, tile),
            sw_batch_size=batch, predictor=net, overlap=overlap_px / tile, mode="gaussian",
        )
    del x
    rgb = ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    del y
    opts = {k.lower(): v for k, v in DEFAULT_COG_OPTIONS.items()}
    with rasterio.open(out, "w", driver="COG", count=3, dtype="uint8", **profile, **opts) as dst:
        dst.write(rgb)


def timed(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``; its wall time, own peak RSS and the load average before it."""
    load = open("/proc/loadavg").read().split()[:3]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "loadavg_before": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192, help="scene side in pixels")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--overlap", type=int, default=32, help="overlap in pixels (both sides)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["torch"],
                        choices=("torch", "onnxruntime"), help="geocolor backends to run")
    parser.add_argument("--monai-first", action="store_true",
                        help="start with MONAI (to pair with a run that started with geocolor)")
    parser.add_argument("--workdir", type=Path, default=None, help="[default: a temporary one]")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--peer", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.peer:
        peer(*args.peer, overlap_px=args.overlap, batch=args.batch_size)
        return

    import monai
    import torch

    report: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "monai": monai.__version__,
                    "torch_threads": torch.get_num_threads()},
        "scene": f"{args.size}x{args.size} float32 dB (VV), generated",
        "model": f"untrained U-Net ngf {args.ngf}, 8 levels, batch norm, 256-px tiles",
        "overlap_px": args.overlap, "batch_size": args.batch_size, "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="geocolor-monai-", dir=args.workdir) as tmp:
        work = Path(tmp)
        model = make_model(work / "model.model", args.ngf)
        scene = generate_db_scene(work / "scene.tif", args.size)
        python = sys.executable
        sides = {f"geocolor_{b}": [python, "-m", "geocolor", "-q", "colorize", str(scene), "-o",
                                   str(work / f"geocolor_{b}.tif"), "-m", str(model),
                                   "--overlap", str(args.overlap), "--batch-size",
                                   str(args.batch_size), "--device", "cpu", "--backend", b,
                                   "--overwrite"]
                 for b in args.backends}
        sides["monai"] = [python, __file__, "--overlap", str(args.overlap), "--batch-size",
                          str(args.batch_size), "--peer", str(model), str(scene),
                          str(work / "monai.tif")]
        order = list(sides)[::-1] if args.monai_first else list(sides)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                run = {"side": name, "round": r, **timed(sides[name])}
                report["runs"].append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
        import rasterio

        with rasterio.open(work / f"geocolor_{args.backends[0]}.tif") as a, \
                rasterio.open(work / "monai.tif") as b:
            diff = np.abs(a.read().astype(int) - b.read().astype(int))
        report["geocolor_vs_monai_output"] = {"mean_abs_dn": round(float(diff.mean()), 3),
                                              "max_abs_dn": int(diff.max())}
    summary: dict[str, Any] = {}
    for name in sides:
        runs = [r for r in report["runs"] if r["side"] == name]
        summary[name] = {"wall_s_median": float(np.median([r["wall_s"] for r in runs])),
                         "peak_rss_mb_median": float(np.median([r["peak_rss_mb"] for r in runs]))}
    for name in sides:
        if name != "monai":
            summary[name]["speed_vs_monai"] = round(
                summary["monai"]["wall_s_median"] / summary[name]["wall_s_median"], 3)
            summary[name]["rss_vs_monai"] = round(
                summary[name]["peak_rss_mb_median"] / summary["monai"]["peak_rss_mb_median"], 3)
    report["summary"] = summary
    report["targets"] = {"speed_vs_monai": ">= 1.2", "rss_vs_monai": "<= 0.35"}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
