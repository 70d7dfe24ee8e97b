"""``geocolor average MODELS -o OUT``: one model file, the members' weights or outputs averaged."""
from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"show_default": True})
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Model file to write.")
@click.option("--of", "what", type=click.Choice(["weights", "outputs"]), default="weights",
              help="weights: one network, the mean of the members' weights (a model soup); "
                   "outputs: all members in one file, their colours averaged (an ensemble).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def average(models: tuple[Path, ...], output: Path, what: str, overwrite: bool) -> None:
    """Average MODELS (of one architecture and input) into one model file.

    --of weights (a model soup) is for models that share their start: the
    checkpoints of one run, or runs branched from one checkpoint ('train ... --branch
    CKPT --seed S'); networks trained from different seeds do not average. --of
    outputs (an ensemble) takes any members and runs each of them when colorizing.
    The card is the first model's, with the members listed and no evaluation figures
    (run 'geocolor evaluate' on the result). Prints the output path on stdout.

    \b
    Examples:
      geocolor average runs/a/model.model runs/a2/model.model -o soup.model
      geocolor average runs/s0/model.model runs/s1/model.model --of outputs -o ens.model
    """
    from geocolor.cli.train import given_command
    from geocolor.infer.output import check_output
    from geocolor.train.average import average_models, ensemble_models

    for member in models:  # none of them may be the output
        check_output(member, output, overwrite, can_skip=False)
    combine = average_models if what == "weights" else ensemble_models
    click.echo(combine(models, output, given_command()))
