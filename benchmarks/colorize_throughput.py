"""Benchmarks of ``geocolor colorize`` (JSON on stdout; not a test).

    nice -n 10 .venv/bin/python benchmarks/colorize_throughput.py [--quick] [--model M] [--out F]

Three figures, each with what produced it:

throughput
    model-only tiles/s (random (B, 1, T, T) tensors in memory, the same model,
    batch size, device, --backend and the pipeline's own runner from
    :func:`geocolor.infer.backend.make_runner`: BatchNorm folded, channels_last,
    or the ONNX Runtime session) against the
    end-to-end tiles/s of :func:`colorize_scene` on a generated uint16 GRD-like
    scene with GCPs (read, scale, tile, model, blend, write, COG copy), and the
    ratio end-to-end / model-only, in --rounds alternating rounds (median
    reported). Also reported: the share of the end-to-end wall time the model
    was running (the rest is reading, writing and the COG copy not hidden behind
    it), which other load on shared cores disturbs less.
peak_rss
    peak resident memory (``ru_maxrss``) of a fresh process that colorizes a
    generated scene, for two scenes whose areas differ 16x, and their ratio.
ceiling
    the same end-to-end run with the network replaced by a null runner (output = the input
    tile repeated to three bands): what reading, blending, writing and the COG copy cost
    alone, i.e. the pipeline's own speed limit, which a GPU model runs into.
writer
    the writer stage alone (:class:`geocolor.infer.stream._Writer`: blend, quantise, write the
    scratch file) on batches of ready tile outputs for a 4096 x 8192 scene, with 1 and
    --blend-threads (default 2) threads: how its column stripes scale where cores are free.
seams
    :func:`geocolor.infer.tiling.seam_ratio` (mean |difference| of neighbouring
    pixels across tile edges / inside tiles) of a real scene (the first
    s1s2-la SAR fragment, or --seam-scene), blended (default overlap) and, for
    reference, with overlap 0.

--ngf N benchmarks an untrained U-Net of width N (8 levels, 256-px tiles) instead.
Without --model the packaged default SAR model is used when installed, else an
untrained U-Net of the default architecture (ngf 64, 8 levels, 256-px tiles); the
memory runs use a small U-Net (ngf 8) by default so that the 16x scene takes
minutes, not an hour, on a 2-core CPU (--rss-model to change).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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

SEAM_SCENES = Path("/work/shared/data/s1s2-la/sar")


def _vm(key: str) -> float:
    """``VmHWM`` / ``VmRSS`` of this process in MB (per address space: reset by exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def make_model(path: Path, ngf: int, tile: int = 256) -> Path:
    import torch

    from geocolor.io.modelfile import ModelCard, save_model
    from geocolor.models.unet import UNetGenerator

    torch.manual_seed(0)
    args = {"in_channels": 1, "out_channels": 3, "ngf": ngf, "levels": 8, "norm": "batch", "dropout": 0.5}
    card = ModelCard(
        kind="sar", arch="unet", arch_args=args,
        # GRD amplitude / the scene's 99th percentile, as the packaged model: the generated GRD
        # scenes are digital numbers, which a dB model would see as a white scene (refused
        # since the twenty-first session; until then these benchmarks colorized white input)
        input={"sar_scaling": {"scheme": "amplitude_percentile", "polarisation": "VV",
                               "percentile": 99.0},
               "tile_size": tile},
        training={"note": "untrained, for benchmarks"},
    )
    return save_model(path, UNetGenerator(**args), card)


def generate_grd(path: Path, height: int, width: int, seed: int = 0, polarisation: str = "VV") -> Path:
    """A uint16 GRD-like scene with GCPs and a zero border, written block by block (never whole).

    Its one band is described as ``polarisation``, so that a model trained on that
    polarisation takes it without ``--band``.
    """
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS
    from rasterio.windows import Window

    gcps = [GroundControlPoint(row=r, col=c, x=10.0 + 0.5 * c / width, y=50.0 - 0.4 * r / height, z=0.0)
            for r in (0, height) for c in (0, width)]
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint16",
               "tiled": True, "blockxsize": 256, "blockysize": 256}
    rows = 256
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        ds = rasterio.open(path, "w", **profile)
    with ds:
        ds.gcps = (gcps, CRS.from_epsg(4326))
        ds.descriptions = (polarisation,)
        xx = np.arange(width, dtype=np.float32)
        for y0 in range(0, height, rows):
            h = min(rows, height - y0)
            rng = np.random.default_rng([seed, y0])
            yy = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
            field = 0.5 + 0.25 * np.sin(yy / 97.0) * np.cos(xx / 131.0) + 0.2 * np.sin((xx + yy) / 53.0)
            amplitude = 40 + 260 * field * rng.gamma(4.0, 0.25, (h, width)).astype(np.float32)
            dn = np.clip(amplitude, 1, 65535).astype(np.uint16)
            dn[:, : min(40, width // 20)] = 0  # the zero border of GRD products
            ds.write(dn, 1, window=Window(0, y0, width, h))
    return path


def model_only(model_path: Path, tiles: int, batch: int | None, device: str,
               backend: str = "torch", cpu_bf16: bool = False) -> dict[str, Any]:
    """The pipeline's own runner (same prepared network / ONNX session) on tiles in memory."""
    import torch

    from geocolor.device import resolve_device
    from geocolor.infer.backend import make_runner
    from geocolor.infer.sarmodel import default_batch_size
    from geocolor.io.modelfile import load_model

    dev = resolve_device(device)
    loaded = load_model(model_path, kind="sar", device=dev)
    t = int(loaded.card.input.get("tile_size", 256))
    runner = make_runner(loaded.network, backend, dev, tile=t, cpu_bf16=cpu_bf16)
    batch = batch or default_batch_size(t, dev.type)
    x = (torch.rand(batch, 1, t, t) * 2 - 1).numpy()
    t0 = time.perf_counter()
    runner(x)  # warm-up: timed, since the pipeline's first call pays it and this figure does not
    first_call_s = time.perf_counter() - t0
    n = 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    while n < tiles or time.perf_counter() - start < 2.0:  # >= 2 s, so small models time fairly
        runner(x)
        n += batch
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"tiles": n, "batch_size": batch, "seconds": round(seconds, 3), "tiles_per_s": round(n / seconds, 3),
            "first_call_s": round(first_call_s, 3), "steady_call_s": round(seconds * batch / n, 3),
            # kernel time and page faults: what glibc's heap settings change (geocolor/infer/heap.py)
            "sys_s": round(after.ru_stime - before.ru_stime, 2),
            "minor_faults": after.ru_minflt - before.ru_minflt}


def end_to_end(model_path: Path, scene: Path, out: Path, batch: int | None, device: str,
               backend: str = "torch", overlap: int | None = None, cpu_bf16: bool = False,
               blend_threads: int | None = None) -> dict[str, Any]:
    from geocolor.infer.backend import make_runner
    from geocolor.infer.scene import colorize_scene
    from geocolor.io.modelfile import load_model

    loaded = load_model(model_path, kind="sar")
    if backend == "onnxruntime":  # export outside the timing, as model_only does
        from geocolor.device import resolve_device

        make_runner(loaded.network, backend, resolve_device(device),
                    tile=int(loaded.card.input.get("tile_size", 256)))
    start = time.perf_counter()
    result = colorize_scene(scene, out, loaded, batch_size=batch, device=device, overwrite=True,
                            backend=backend, overlap=overlap, cpu_bf16=cpu_bf16,
                            blend_threads=blend_threads)
    seconds = time.perf_counter() - start
    return {"tiles": result["tiles"], "tiles_skipped": result["tiles_skipped"], "seconds": round(seconds, 3),
            "tiles_per_s": round(result["tiles"] / seconds, 3), "width": result["width"],
            "height": result["height"], "timing": result["timing"]}


class NullRunner:
    """A runner without a network: (B, 1, T, T) in [-1, 1] -> the same tile as (B, 3, T, T)."""

    pin_memory = False
    engine = "none (the benchmark's null runner)"

    def __call__(self, x: Any) -> np.ndarray:
        return np.repeat(np.asarray(x, dtype=np.float32), 3, axis=1)


def ceiling(model: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """End-to-end seconds and stage times of the throughput scene with a :class:`NullRunner`."""
    import geocolor.infer.scene as scene_module

    scene = throughput_scene(model, work, args)
    real = scene_module.make_runner
    scene_module.make_runner = lambda *a, **k: NullRunner()
    try:
        runs = [end_to_end(model, scene, work / "ceiling_rgb.tif", args.batch_size, "cpu",
                           overlap=args.overlap, blend_threads=args.blend_threads)
                for _ in range(args.rounds)]
    finally:
        scene_module.make_runner = real
    figures = {"scene": str(scene), "runs": runs,
               "seconds_median": round(float(np.median([r["seconds"] for r in runs])), 3)}
    print(json.dumps(figures), file=sys.stderr)
    return figures


def writer_alone(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Wall and CPU seconds of the writer stage alone, 1 thread against ``--blend-threads``.

    ``--writer-sink cog`` (the default route): the rows go to a direct COG
    (:class:`geocolor.infer.cogwrite.CogWriter`) with as many compression threads as blend
    threads, and the time includes finishing the compression and assembling the file;
    ``scratch``: into the ZSTD scratch GeoTIFF the COG driver's route writes.
    """
    import rasterio

    from geocolor.infer.cogwrite import CogWriter, direct_cog_settings
    from geocolor.infer.output import SCRATCH_OPTIONS, open_scratch
    from geocolor.infer.stream import _Batch, _Writer
    from geocolor.infer.tiling import TileGrid

    sink = getattr(args, "writer_sink", "cog")
    height, width = (1024, 2048) if args.quick else (4096, 8192)
    grid = TileGrid(height, width, 256, args.overlap if args.overlap is not None else 32)
    y = np.random.default_rng(0).uniform(-1, 1, (8, 3, 256, 256)).astype(np.float32)
    batches, pending = [], _Batch()
    for r, top in enumerate(grid.ys):  # the batches the reader and the model would hand over
        rows = np.subtract(*grid.scene_span(top, height)[::-1])
        for c, left in enumerate(grid.xs):
            cols = np.subtract(*grid.scene_span(left, width)[::-1])
            pending.tiles.append((r, c))
            pending.masks.append(np.ones((rows, cols), dtype=bool))
            if len(pending.tiles) == len(y):
                pending.y = y
                batches.append(pending)
                pending = _Batch()
        pending.completes.append((len(pending.tiles), r))
    pending.y = y
    batches.append(pending)
    runs = []
    for threads in [1, args.blend_threads or 2] * args.rounds:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            ds = cog = None
            if sink == "cog":
                cog = CogWriter(work / "writer.cog", True, direct_cog_settings({}), threads)
                cog.add_level(width, height)
            else:
                ds = open_scratch(work / "writer.tif", width, height, {"kind": "none"}, False,
                                  SCRATCH_OPTIONS)
            writer = _Writer(ds, grid, "mask", threads, None, cog)
            start, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                writer.take(batch)
            if cog is not None:
                cog.assemble(work / "writer.tif", [])
            runs.append({"threads": threads, "seconds": round(time.perf_counter() - start, 3),
                         "cpu_s": round(time.process_time() - cpu, 3)})
            writer.close()
            if cog is not None:
                cog.remove()
            else:
                ds.close()
    figures = {"scene": [height, width], "tiles": len(grid), "sink": sink, "runs": runs}
    print(json.dumps(figures), file=sys.stderr)
    return figures


def throughput_scene(model: Path, work: Path, args: argparse.Namespace) -> Path:
    """``--scene`` if it exists, else a GRD-like scene of ``--scene-shape`` (or a
    ``--scene-size`` square) generated there (or in ``work``), in the model's polarisation."""
    from geocolor.io.modelfile import read_card

    scene = args.scene or work / "scene.tif"
    if not scene.exists():
        height, width = args.scene_shape or (args.scene_size, args.scene_size)
        polarisation = read_card(model).input.get("sar_scaling", {}).get("polarisation", "VV")
        generate_grd(scene, height, width, polarisation=polarisation)
    return scene


def rss_child(model_path: str, scene: str, out: str, batch: int | None) -> None:
    """Run in a fresh process: colorize, then print peak RSS as JSON.

    Linux keeps ``ru_maxrss`` across fork+exec, so a child started by a big parent
    reports at least the parent's peak; ``VmHWM`` belongs to the new address space
    and is the child's own peak. Both are reported; the ratio uses ``VmHWM``.
    """
    from geocolor.infer.scene import colorize_scene

    result = colorize_scene(scene, out, model_path, batch_size=batch, device="cpu", overwrite=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": _vm("VmHWM"), "ru_maxrss_mb": round(peak_kb / 1024, 1),
                      "tiles": result["tiles"], "seconds": result["seconds"],
                      "width": result["width"], "height": result["height"]}))


def peak_rss(model_path: Path, scene: Path, out: Path, batch: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--rss-child", str(model_path), str(scene), str(out), str(batch or 0)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def seams(model_path: Path, scene: Path, out_dir: Path, batch: int | None, device: str) -> dict[str, Any]:
    import rasterio

    from geocolor.infer.sarmodel import DEFAULT_OVERLAP
    from geocolor.infer.scene import colorize_scene
    from geocolor.infer.tiling import TileGrid, seam_ratio
    from geocolor.io.modelfile import load_model

    loaded = load_model(model_path, kind="sar")
    tile = int(loaded.card.input.get("tile_size", 256))
    figures: dict[str, Any] = {"scene": str(scene)}
    for name, overlap in (("blended", None), ("no_overlap", 0)):
        out = out_dir / f"seams_{name}.tif"
        result = colorize_scene(scene, out, loaded, overlap=overlap, batch_size=batch, device=device,
                                overwrite=True)
        ov = min(DEFAULT_OVERLAP, tile // 4) if overlap is None else overlap
        with rasterio.open(out) as ds:
            ratio = seam_ratio(ds.read(), TileGrid(ds.height, ds.width, tile, ov))
        figures[name] = {"overlap": ov, "seam_ratio": round(ratio, 4), "tiles": result["tiles"]}
    return figures


def throughput(model: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    scene = throughput_scene(model, work, args)
    tiles = 48 if not args.quick else 16
    rounds = []
    for _ in range(args.rounds):  # alternate, so that load from other processes hits both alike
        load = open("/proc/loadavg").read().split()[:3]
        alone = model_only(model, tiles, args.batch_size, args.device, args.backend, args.cpu_bf16)
        e2e = end_to_end(model, scene, work / "scene_rgb.tif", args.batch_size, args.device,
                         args.backend, args.overlap, args.cpu_bf16, args.blend_threads)
        rounds.append({
            "model_only": alone,
            "end_to_end": e2e,
            "ratio": round(e2e["tiles_per_s"] / alone["tiles_per_s"], 3),
            "loadavg_before": load,
            # less disturbed by other processes: how much of the end-to-end wall time the
            # model was running, and its speed inside the pipeline
            "model_share_of_wall_time": round(e2e["timing"]["model_s"] / e2e["seconds"], 3),
            "model_tiles_per_s_in_pipeline": round(e2e["tiles"] / e2e["timing"]["model_s"], 3),
        })
    figures = {
        "scene": str(scene),  # its width and height are in each round's end_to_end
        "rounds": rounds,
        "ratio_median": round(float(np.median([r["ratio"] for r in rounds])), 3),
        "target": ">= 0.95",
    }
    print(json.dumps(figures), file=sys.stderr)
    return figures


def memory(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    rss_model = args.rss_model or make_model(work / "small.model", ngf=8)
    runs = []
    for side in args.rss_sizes:
        rss_scene = generate_grd(work / f"rss_{side}.tif", side, side, seed=1)
        runs.append(peak_rss(rss_model, rss_scene, work / f"rss_{side}_rgb.tif", args.batch_size))
        rss_scene.unlink()
        (work / f"rss_{side}_rgb.tif").unlink()
    figures = {
        "model": str(args.rss_model) if args.rss_model else "untrained U-Net ngf 8, 8 levels, 256-px tiles",
        "runs": runs,
        "area_ratio": round((args.rss_sizes[1] / args.rss_sizes[0]) ** 2, 2),
        "ratio": round(runs[1]["peak_rss_mb"] / runs[0]["peak_rss_mb"], 3),
        "target": "<= 1.25",
    }
    print(json.dumps(figures), file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="SAR model file [default: packaged, else untrained U-Net]")
    parser.add_argument("--rss-model", type=Path, help="model for the memory runs [default: untrained U-Net ngf 8]")
    parser.add_argument("--scene-size", type=int, default=2048, help="side of the throughput scene")
    parser.add_argument("--scene-shape", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="rows and columns of the throughput scene (e.g. 16700 25000, a full IW GRD)"
                        " [default: --scene-size square]")
    parser.add_argument("--scene", type=Path, default=None,
                        help="throughput scene file: reused if it exists, else generated there")
    parser.add_argument("--rss-sizes", type=int, nargs=2, default=(1536, 6144), help="sides of the memory scenes")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="tiles per model call [default: geocolor's, sarmodel.default_batch_size]")
    parser.add_argument("--rounds", type=int, default=3, help="alternating model-only / end-to-end rounds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--overlap", type=int, default=None, help="tile overlap [default: geocolor's]")
    parser.add_argument("--blend-threads", type=int, default=None,
                        help="threads blending the output [default: geocolor's: 1 on the CPU, "
                             "half the cores on a GPU]; the ceiling part runs on the CPU, so "
                             "set it there to see what a GPU run's writer does")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="both sides in bf16 on a CPU with native bf16 (colorize --cpu-bf16)")
    parser.add_argument("--ngf", type=int, default=None,
                        help="benchmark an untrained U-Net of this width (8 levels, 256-px tiles)")
    parser.add_argument("--io-nice", type=int, default=None,
                        help="nice increment of the reader/writer threads [default: geocolor's]")
    parser.add_argument("--seam-scene", type=Path, default=None,
                        help=f"real scene for the seam ratio [default: the first PNG in {SEAM_SCENES}]")
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the script")
    parser.add_argument("--writer-sink", choices=("cog", "scratch"), default="cog",
                        help="the writer part's rows go to a direct COG (the default route) or "
                             "to the COG driver's scratch GeoTIFF")
    parser.add_argument("--parts", nargs="+",
                        choices=("throughput", "ceiling", "writer", "rss", "seams"),
                        default=("throughput", "rss", "seams"), help="which figures to measure")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from rasterio.errors import NotGeoreferencedWarning

    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    if args.rss_child:
        model, scene, out, batch = args.rss_child
        rss_child(model, scene, out, int(batch) or None)
        return

    import torch

    from geocolor.io.modelfile import packaged_model_path

    if args.quick:
        args.scene_size, args.rss_sizes, args.rounds = 512, (256, 1024), 1
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
                    "platform": platform.platform(), "torch": torch.__version__,
                    "cuda": torch.cuda.is_available()},
        "device": args.device,
        "batch_size": args.batch_size,
    }
    with tempfile.TemporaryDirectory(prefix="geocolor-bench-") as tmp:
        work = Path(tmp)
        model = args.model
        if args.ngf:
            model = make_model(work / f"ngf{args.ngf}.model", ngf=args.ngf)
        if args.io_nice is not None:
            import geocolor.infer.stream as stream_module

            stream_module.IO_THREAD_NICE = args.io_nice
        if model is None:
            packaged = packaged_model_path("sar")
            model = packaged if packaged.is_file() else make_model(work / "untrained.model", ngf=64)
        report["model"] = str(model) if model == args.model or model == packaged_model_path("sar") else \
            f"untrained U-Net ngf {args.ngf or 64}, 8 levels, 256-px tiles"

        if "throughput" in args.parts:
            report["throughput"] = throughput(model, work, args)
        if "ceiling" in args.parts:
            report["ceiling"] = ceiling(model, work, args)
        if "writer" in args.parts:
            report["writer"] = writer_alone(args, work)
        if "rss" in args.parts:
            report["peak_rss"] = memory(work, args)
        if "seams" in args.parts:
            seam_scene = args.seam_scene or next(iter(sorted(SEAM_SCENES.glob("*.png"))), None)
            if seam_scene is not None and seam_scene.is_file():
                report["seams"] = seams(model, seam_scene, work, args.batch_size, args.device)
            else:
                report["seams"] = {"skipped": f"no real scene found (looked for {args.seam_scene or SEAM_SCENES})"}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
