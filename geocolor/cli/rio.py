"""``rio geocolor INPUT OUTPUT``: geocolor as a plugin of rasterio's ``rio`` command.

Registered through the ``rasterio.rio_plugins`` entry point (as rio-cogeo does), so
where users already work with ``rio`` the colorizer is one more subcommand::

    rio geocolor scene.tif scene_rgb.tif
    rio geocolor chip_s1_.png chip_rgb.png --model sar --co ZLEVEL=9 --overwrite

It runs exactly ``geocolor colorize INPUT -o OUTPUT`` with the same options (rio's
``--co/--profile`` and ``--overwrite`` spellings, rio's ``-v``/``-q`` on the ``rio``
group), the same model choice, messages and exit codes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocolor.cli.colorize import BACKENDS, INPUT_SCALES, colorize


def _creation_options(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple:
    pairs = []
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE (e.g. COMPRESS=ZSTD)")
        pairs.append((key.strip().upper(), val.strip()))
    return tuple(pairs)


@click.command("geocolor", short_help="Colorize a Sentinel-1 scene or a grey photo (geocolor).")
@click.argument("input", type=click.Path())  # a str: a URL's "//" must survive
@click.argument("output", type=click.Path(path_type=Path))
@click.option("-m", "--model", default=None,
              help="Model file, or 'sar' / 'semantic' for a packaged model [default: by input, "
              "as geocolor colorize].")
@click.option("--band", default=None, help="Band index (1-based) or description (VV, VH).")
@click.option("--input-scale", type=click.Choice(INPUT_SCALES), default="auto", show_default=True,
              help="Unit of the SAR values.")
@click.option("--tile-size", type=click.IntRange(min=1), default=None,
              help="Tile side in pixels [default: the model card's tile_size].")
@click.option("--overlap", type=click.IntRange(min=0), default=None,
              help="Overlap between tiles in pixels [default: min(32, tile/4)].")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Tiles per model call.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA.")
@click.option("--cpu-bf16", is_flag=True,
              help="bfloat16 on CPUs that compute it natively (Intel AMX or AVX512-BF16), as geocolor colorize.")
@click.option("--backend", type=click.Choice(BACKENDS), default="torch", show_default=True,
              help="Inference backend (onnxruntime: CPU, pip install 'geocolor[onnx]').")
@click.option("--tta", is_flag=True, help="Test-time augmentation: average the model over flips.")
@click.option("--tta-rotations", is_flag=True,
              help="With --tta, also the 90-degree rotations of square tiles (implies --tta).")
@click.option("--cog/--no-cog", default=True, show_default=True,
              help="Cloud-Optimized GeoTIFF, or a plain tiled GeoTIFF with overviews.")
@click.option("--co", "--profile", "creation_options", metavar="NAME=VALUE", multiple=True,
              callback=_creation_options, help="Driver specific creation options (repeatable).")
@click.option("--alpha", is_flag=True, help="Nodata as an alpha band instead of an internal mask.")
@click.option("--dst-crs", default=None, metavar="CRS",
              help="Reproject the output onto this CRS (EPSG:32611, WKT, PROJ, or 'utm'), with "
                   "an alpha band outside the scene; a GRD is warped by its GCPs (not "
                   "terrain-corrected).")
@click.option("--bounds", default=None, metavar="W,S,E,N",
              help="Colorize only the part of the scene that covers this area (degrees).")
@click.option("--dst-res", type=float, default=None, metavar="RES",
              help="With --dst-crs: the pixel size in the CRS's units, on a grid aligned to it.")
@click.option("--preview", type=click.Path(path_type=Path), default=None,
              help="Also write a side-by-side PNG (input | colorized).")
@click.option("--mask-out", type=click.Path(path_type=Path), default=None,
              help="Segmentation PNG (semantic models only).")
@click.option("--overwrite", is_flag=True, help="Always overwrite an existing output file.")
@click.option("--skip-existing", is_flag=True, help="Do nothing when OUTPUT exists.")
@click.pass_context
def geocolor(ctx: click.Context, input: str, output: Path, **options: Any) -> None:
    """Colorize INPUT (a SAR raster, also by URL, or a grey photo) into OUTPUT with geocolor.

    The same as 'geocolor colorize INPUT -o OUTPUT': the packaged SAR model for
    GeoTIFF scenes (RGB COG on the input's grid), the semantic model for photos.
    """
    from geocolor.cli import CommandFailed, Terminated, configure_logging
    from geocolor.errors import GeocolorError, UsageError

    ctx.ensure_object(dict)
    verbosity = int(ctx.find_root().obj.get("verbosity", 0)) if ctx.find_root().obj else 0
    configure_logging(verbosity)
    try:
        ctx.invoke(colorize, inputs=(input,), output=output, **options)
    except UsageError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from None
    except GeocolorError as exc:
        raise CommandFailed(str(exc)) from None
    except Terminated as exc:
        click.echo("geocolor: terminated", err=True)
        ctx.exit(exc.code if isinstance(exc.code, int) else 143)
