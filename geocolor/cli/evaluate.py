"""``geocolor evaluate MODEL DATA``: metrics of a model next to baselines on the same images."""
from __future__ import annotations

import json
from pathlib import Path

import click

from geocolor.cli.options import json_option, progress_enabled


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@json_option
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="SAR chips per forward pass.")
@click.option("--sar-scaling", type=click.Choice(["kaggle-vv-db", "s1s2la-vh-amplitude"]), default=None,
              help="How the data's SAR PNGs are scaled [default: the layout's: Kaggle -> kaggle-vv-db, "
                   "sar/+opt/ -> s1s2la-vh-amplitude]. Must match the model card.")
@click.option("--terrain", "terrains", multiple=True, help="Kaggle terrain folder(s) to evaluate (default: all).")
@click.option("--limit-per-terrain", type=click.IntRange(min=1), default=None,
              help="Only the first N pairs (by name) of each terrain.")
@click.option("--split", type=click.Path(path_type=Path), default=None,
              help="A training run's split.json: evaluate only the images of its --subset "
                   "(e.g. RUN_DIR/split.json: the images the model did not train on).")
@click.option("--subset", type=click.Choice(["val", "train", "holdout"]), default=None,
              help="Which side of --split to evaluate (holdout: a geographic hold-out of train sar "
                   "--holdout-region) [default: val].")
@click.option("--tile-size", type=click.IntRange(min=16), default=None,
              help="SAR: chip size [default: the card's tile_size]; must suit the network.")
@click.option("--train-colour", default=None, metavar="R,G,B",
              help="SAR: mean training colour (RGB in [0, 1]) for that baseline when the card does "
                   "not record it and --split has no training side here.")
@click.option("--tta", is_flag=True, help="Evaluate the model under test-time augmentation (flips).")
@click.option("--tta-rotations", is_flag=True,
              help="With --tta, also 90-degree rotations of square inputs (implies --tta).")
def evaluate(model: Path, data: Path, as_json: bool, device: str, batch_size: int, sar_scaling: str | None,
             terrains: tuple[str, ...], limit_per_terrain: int | None, split: Path | None, subset: str | None,
             tile_size: int | None, train_colour: str | None, tta: bool, tta_rotations: bool) -> None:
    """Evaluate MODEL (a .model file of either kind, or sar / semantic: a packaged
    model) on DATA, next to baselines.

    \b
    SAR model:      DATA is a Kaggle-layout folder (v_2/<terrain>/s1, s2) or sar/ + opt/
                    folders; L1, PSNR, SSIM, GMSD, sharpness and colourfulness ratios per
                    terrain and overall; baselines: the mean training colour (when known),
                    the mean colour of the targets, and the SAR grey copied to RGB.
    Semantic model: DATA holds raw/ photos and optional masks/<stem>.png; MSE, PSNR,
                    SSIM, GMSD, sharpness and colourfulness ratios of the colorized photo
                    against the original (baseline: the grey image), and pixel accuracy /
                    IoU where masks exist.

    A table goes to stdout (--json: one JSON document). LPIPS and FID are reported
    only when their pretrained networks are installed; otherwise the output says why not.
    """
    from geocolor.evaluate import evaluate as run_evaluation
    from geocolor.evaluate import format_report, to_json_safe

    if subset is not None and split is None:
        raise click.UsageError("--subset picks a side of --split: give the run's split.json too "
                               "(without --split every image of DATA is evaluated)")
    subset = subset or "val"
    colour = None
    if train_colour is not None:
        try:
            colour = tuple(float(c) for c in train_colour.split(","))
        except ValueError:
            colour = ()
        if len(colour) != 3 or not all(0 <= c <= 1 for c in colour):
            raise click.BadParameter(f"expected three numbers in [0, 1] like 0.3,0.3,0.28, got {train_colour!r}",
                                     param_hint="--train-colour")

    bar = None
    if progress_enabled():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="img", desc="evaluate", leave=False)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        result = run_evaluation(
            model, data, device=device, progress=progress, batch_size=batch_size,
            sar_scaling=sar_scaling, terrains=terrains or None, limit_per_terrain=limit_per_terrain,
            split=split, subset=subset, tile_size=tile_size, train_colour=colour,
            tta="d4" if tta_rotations else "flips" if tta else None,
        )
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(to_json_safe(result), allow_nan=False))
    else:
        click.echo(format_report(result))
