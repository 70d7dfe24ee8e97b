"""Does a SAR model draw a periodic mesh that the real Sentinel-2 image does not have?

    python benchmarks/mesh_spectrum.py --la DIR --fragment 018 --window 600,700,256 \
        --model geocolor/weights/sar_default.model [--model runs/r21/model.model ...] [--json]

Each fragment of s1s2-la (``--la``: the folder with pairs.csv) is written as a georeferenced
GeoTIFF, exactly as samples/make_la_samples.py does, and colorized by each ``--model`` with
:func:`geocolor.colorize_scene` (the engine and tiling of ``geocolor colorize``). In the window
``ROW,COL,SIDE`` the luminance of the SAR input, of the real Sentinel-2 RGB and of each
output is Hann-windowed and Fourier-transformed. The power spectrum is whitened (times |f|^2,
so that natural images' 1/f^2 fall-off is flat) and searched for its strongest peak between
periods of 2 and 20 px (f = 0.05-0.5 cycles/px). Reported per image:

- ``period_px``: the period of that peak;
- ``peak_over_median``: the peak's whitened power over the median whitened power in the band
  (a periodic mesh stands out; natural texture stays near a few);
- ``angle_deg``: the direction of the peak's frequency vector (0 or 90: a pattern along the
  pixel rows and columns);
- ``excess_vs_real``: for model outputs, the raw power at the output's peak frequency over the
  real image's raw power there. Above 1 the model draws more of that rhythm than Sentinel-2
  shows: invented or exaggerated mesh.

``--rotate DEG`` turns the SAR and the real image by DEG degrees about the fragment's centre
before anything else (use a central window: the corners are empty). A model that follows the
streets turns its pattern with them; one that draws a learned template keeps it on the pixel
axes (angle 0 or 90) whatever the input's orientation.

``--shift S`` (repeatable) also colorizes the SAR moved S px down and right (reflected at the
top and left) and compares the window's fine detail (luminance minus its 9-px local mean)
with the unmoved output's, after moving it back: ``detail_corr_shift_S`` near 1 means the
pattern moves with the scene; a mesh locked to the network's own grid or to the tiles would
not (it stays put, so the correlation drops where the shift is not a multiple of its
period). ``excess_mean_0_S`` is the excess of the two outputs' mean: shift averaging
cancels a locked mesh, not one that follows the scene.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "samples"))

BAND = (0.05, 0.5)  # cycles per pixel searched for a peak: periods of 2-20 px


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (H, W) float64 luminance in 0..255 (Rec. 601 weights)."""
    if image.ndim == 2:
        return image.astype(np.float64)
    return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def power_spectrum(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) grey -> (raw power, |f| in cycles/px), both (S, S), zero frequency centred.

    The mean is removed and a 2-D Hann window applied first, so that the window's edges do not
    add a cross of spurious power along the axes.
    """
    side = grey.shape[0]
    hann = np.outer(np.hanning(side), np.hanning(grey.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2((grey - grey.mean()) * hann))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(grey.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(grey.shape[1]))[None, :]
    return power, np.hypot(fy, fx)


def _peak(power: np.ndarray, freq: np.ndarray) -> tuple[dict[str, float], tuple[int, int]]:
    """The strongest whitened peak of a :func:`power_spectrum` within BAND, and its index."""
    white = power * freq ** 2
    band = (freq >= BAND[0]) & (freq <= BAND[1])
    iy, ix = np.unravel_index(int(np.argmax(np.where(band, white, -np.inf))), white.shape)
    rows, cols = power.shape
    fy, fx = (iy - rows // 2) / rows, (ix - cols // 2) / cols
    return {"period_px": float(1.0 / freq[iy, ix]),
            "angle_deg": float(np.degrees(np.arctan2(fy, fx)) % 180),
            "peak_over_median": float(white[iy, ix] / np.median(white[band]))}, (int(iy), int(ix))


def spectrum_peak(grey: np.ndarray) -> dict[str, float]:
    """The strongest whitened peak of ``grey`` within BAND: its period, direction and height."""
    return _peak(*power_spectrum(grey))[0]


def fine_detail(image: np.ndarray) -> np.ndarray:
    """(H, W[, 3]) -> (H, W) luminance minus its 9x9 local mean (edges replicated)."""
    from scipy.ndimage import uniform_filter

    grey = luminance(image)
    return grey - uniform_filter(grey, 9, mode="nearest")


def detail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of :func:`fine_detail` of two same-shape images."""
    return float(np.corrcoef(fine_detail(a).ravel(), fine_detail(b).ravel())[0, 1])


def moved(sar: np.ndarray, shift: int) -> np.ndarray:
    """(H, W) -> the same image moved ``shift`` px down and right (reflected in), same shape."""
    h, w = sar.shape
    return np.pad(sar, ((shift, 0), (shift, 0)), mode="reflect")[:h, :w]


def mesh_report(sar: np.ndarray, real: np.ndarray, outputs: dict[str, np.ndarray]) -> dict[str, dict]:
    """Peak figures for the SAR crop, the real crop and every model output crop (same shape)."""
    real_power, freq = power_spectrum(luminance(real))
    report = {"sar": spectrum_peak(luminance(sar)), "real": _peak(real_power, freq)[0]}
    for name, out in outputs.items():
        power, freq = power_spectrum(luminance(out))
        peak, (iy, ix) = _peak(power, freq)
        peak["excess_vs_real"] = float(power[iy, ix] / max(real_power[iy, ix], 1e-12))
        report[name] = peak
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--la", type=Path, required=True, help="s1s2-la folder (pairs.csv, sar/, opt/)")
    ap.add_argument("--fragment", action="append", required=True)
    ap.add_argument("--window", action="append", required=True,
                    help="ROW,COL,SIDE of the crop, one per --fragment")
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--rotate", type=float, default=0.0,
                    help="turn the SAR and the real image by this many degrees first (see above)")
    ap.add_argument("--shift", type=int, action="append", default=[],
                    help="also colorize the SAR moved this many px and compare fine detail (see above)")
    ap.add_argument("--json", action="store_true", help="one JSON line per fragment on stdout")
    args = ap.parse_args()
    if len(args.window) != len(args.fragment):
        ap.error("give one --window per --fragment")

    from make_la_samples import read_fragments, write_fragment
    from sar_sheet import colorized

    rows = read_fragments(args.la)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for fid, window in zip(args.fragment, args.window):
            r0, c0, side = (int(v) for v in window.split(","))
            crop = (slice(r0, r0 + side), slice(c0, c0 + side))
            sar = np.asarray(Image.open(args.la / rows[fid]["sar"]).convert("L").rotate(args.rotate, Image.BILINEAR))
            real = np.asarray(Image.open(args.la / rows[fid]["opt"]).convert("RGB").rotate(args.rotate, Image.BILINEAR))
            tif = work / f"la_{fid}.tif"
            write_fragment(args.la, rows[fid], tif, sar=sar)
            full = {m: np.asarray(colorized(tif, m, work)) for m in args.model}
            outputs = {m: out[crop] for m, out in full.items()}
            report = mesh_report(sar[crop], real[crop], outputs)
            for s in args.shift:
                write_fragment(args.la, rows[fid], tif, sar=moved(sar, s))
                for m in args.model:
                    back = np.asarray(colorized(tif, m, work))[r0 + s:r0 + s + side, c0 + s:c0 + s + side]
                    report[m][f"detail_corr_shift_{s}"] = detail_correlation(outputs[m], back)
                    mean = ((outputs[m].astype(np.float64) + back) / 2).round().astype(np.uint8)
                    report[m][f"excess_mean_0_{s}"] = mesh_report(sar[crop], real[crop], {m: mean})[m]["excess_vs_real"]
            if args.json:
                print(json.dumps({"fragment": fid, "window": window, **report}))
                continue
            print(f"fragment {fid}, window {window}, input turned {args.rotate:g} degrees")
            print(f"  {'image':40s} {'period px':>9s} {'angle':>6s} {'peak/median':>11s} {'excess vs real':>14s}")
            for name, p in report.items():
                excess = f"{p['excess_vs_real']:.1f}x" if "excess_vs_real" in p else "-"
                print(f"  {name[-40:]:40s} {p['period_px']:9.1f} {p['angle_deg']:6.0f} "
                      f"{p['peak_over_median']:10.1f}x {excess:>14s}")
                for s in args.shift:
                    if f"detail_corr_shift_{s}" in p:
                        print(f"    moved {s} px: fine-detail correlation {p[f'detail_corr_shift_{s}']:.3f}, "
                              f"excess of the mean of both outputs {p[f'excess_mean_0_{s}']:.1f}x")


if __name__ == "__main__":
    main()
