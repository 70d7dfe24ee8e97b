"""``geocolor average MODEL MODEL... -o OUT``: one model file from the mean of several's weights."""
from __future__ import annotations

from pathlib import Path

import click

from geocolor.errors import OutputError


@click.command(context_settings={"show_default": True})
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Model file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def average(models: tuple[Path, ...], output: Path, overwrite: bool) -> None:
    """Average the weights of MODELS into one model file (a model soup).

    For models of one architecture that share their start: the checkpoints of one
    run, or runs branched from one checkpoint ('train ... --branch CKPT --seed S').
    Networks trained from different initialisations do not average. The card is the
    first model's, with the members listed and no evaluation figures (run 'geocolor
    evaluate' on the result). Prints the output path on stdout.

    \b
    Example:
      geocolor average runs/a/model.model runs/b1/model.model runs/b2/model.model -o soup.model
    """
    from geocolor.train.average import average_models

    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give an output file name")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: exists; pass --overwrite to replace it")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{output.parent}: cannot create the output directory ({exc.strerror})") from None
    click.echo(average_models(models, output))
