"""``geocolor export MODEL -o model.onnx``: a SAR generator as ONNX, its card in the metadata."""

from __future__ import annotations

from pathlib import Path

import click

from geocolor.errors import OutputError


@click.command(context_settings={"show_default": True})
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="ONNX file to write (.onnx).",
)
@click.option(
    "--tile-size",
    type=click.IntRange(min=1),
    default=None,
    show_default=False,
    help="Fixed tile side of the graph [default: the model card's].",
)
@click.option("--opset", type=click.IntRange(min=13), default=17,  # onnxexport's, unimported
              help="ONNX opset version (up to the newest the installed onnx writes).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def export(model: Path, output: Path, tile_size: int | None, opset: int, overwrite: bool) -> None:
    """Export a SAR model file (or sar: the packaged one) to ONNX (for ONNX Runtime).

    The graph maps x (batch, 1, T, T) float32 in [-1, 1] to y (batch, 3, T, T) in
    [-1, 1], batch dynamic, T the card's tile size; BatchNorm is folded. The model
    card (JSON) is stored in the ONNX metadata under 'geocolor_model_card'. Needs
    pip install geocolor[onnx]. Prints the output path on stdout.

    \b
    Example:
      geocolor export sar.model -o sar.onnx
    """
    from geocolor.infer.onnxexport import export_onnx
    from geocolor.infer.output import check_output
    from geocolor.infer.sarmodel import tile_settings
    from geocolor.io.modelfile import load_model

    if output.suffix.lower() != ".onnx":
        raise OutputError(f"{output}: the output of 'geocolor export' must end in .onnx")
    loaded = load_model(model, kind="sar")
    tile, _ = tile_settings(loaded, tile_size, 0)
    check_output(model, output, overwrite, can_skip=False)
    result = export_onnx(loaded, output, tile_size=tile, opset=opset)
    click.echo(result["output"])
