"""``geocolor evaluate``: how good a model is, next to baselines on the same images.

:func:`evaluate` reads the model card and runs the matching evaluation:

``sar`` models (:func:`evaluate_sar`)
    on a Kaggle-layout folder or ``sar/`` + ``opt/`` folders
    (:func:`geocolor.data.paired.find_pairs`): every image is cut into the
    non-overlapping centred grid of ``tile_size`` chips (the card's, shrunk when
    every image is smaller, or ``--tile-size``), the model colorizes each chip, and the metrics against the
    optical chip are averaged per terrain and overall. Baselines on the same
    chips: the mean training colour (one constant colour; from the card, the
    ``--split`` train side or ``--train-colour``), the mean colour of all
    evaluated targets (an oracle constant: it knows the answer's average, so it
    is a strong floor), and the SAR chip copied to R, G and B. The
    data must be scaled as the model's training SAR was (the card's
    ``sar_scaling``); a mismatch is refused.
``semantic`` models (:func:`evaluate_semantic`)
    on ``raw/`` + optional ``masks/``: each photo is colorized from its L
    exactly as ``geocolor colorize`` does (full resolution) and compared with the
    original: MSE, PSNR, SSIM and the structure metrics; baseline: the grey
    image itself (the input's L
    with no colour). Where masks exist: pixel accuracy, mean IoU and per-class
    IoU of the segmentation (confusion matrix over all masked pixels).

All colour metrics are on RGB in [0, 1] (L1 and MSE in those units), PSNR in dB
with a peak of 1, capped at 100 dB per image before averaging (a perfect
prediction scores 100, as in the training logs), SSIM with the 11x11 Gaussian
window of :func:`geocolor.metrics.ssim`. Each value is the mean over images
(SAR: chips).

Structure metrics (:mod:`geocolor.metrics`; PSNR rewards blur, these do not):

``gmsd``
    gradient magnitude similarity deviation (Xue et al. 2014) on luma in
    [0, 255] after 2x2 averaging, Prewitt, c = 170; mean over images; lower is
    better, 0 for a perfect prediction; raised by lost and by invented edges.
``sharpness``
    mean Prewitt gradient magnitude of the outputs / that of the real images
    (ratio of the means over all images): 1 like the real images, < 1 blurry,
    > 1 invented texture; 0 for a constant image.
``colourfulness``
    Hasler-Suesstrunk colourfulness of the outputs / that of the real images
    (ratio of the means): 0 for grey output, 1 as colourful as the real images.

Perceptual metrics (LPIPS, FID) are computed only when their packages and
pretrained networks are present; otherwise the result says they were skipped and
why. They are never computed with random weights.
"""
from __future__ import annotations

import importlib.util
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geocolor import metrics
from geocolor.device import resolve_device
from geocolor.errors import DataError, ModelFileError, UsageError
from geocolor.io.modelfile import LoadedModel, load_model
from geocolor.models.pretrained import hub_checkpoint
from geocolor.models.tta import with_tta

log = logging.getLogger("geocolor.evaluate")

#: Per-image PSNR is capped here before averaging (identical images: infinite PSNR).
PSNR_CAP = 100.0
Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------- helpers
class _Mean:
    """Running means of named metrics.

    Keys starting with ``_`` are per-image raw quantities for the ratio metrics:
    ``_grad`` / ``_grad_ref`` (mean gradient magnitude of output / target) and
    ``_cf`` / ``_cf_ref`` (colourfulness). :meth:`result` turns them into
    ``sharpness`` and ``colourfulness`` as ratios of the means over all images
    (robust to single flat chips, where a per-image ratio is unbounded).
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.n = 0

    def add(self, values: dict[str, torch.Tensor]) -> None:
        batch = None
        for key, v in values.items():
            v = v.detach().double().cpu()
            self.sums[key] += float(v.sum())
            batch = v.numel()
        self.n += batch or 0

    def result(self) -> dict[str, float]:
        if not self.n:
            return {}
        out = {k: v / self.n for k, v in self.sums.items() if not k.startswith("_")}
        for name, raw in (("sharpness", "_grad"), ("colourfulness", "_cf")):
            if raw in self.sums:
                ref = self.sums[raw + "_ref"]
                out[name] = self.sums[raw] / ref if ref > 0 else float("nan")
        return out


def _colour_metrics(pred: torch.Tensor, target: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Per-image metrics of (B, 3, H, W) images in [0, 1] (raw ``_`` keys: see :class:`_Mean`)."""
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name == "l1":
            out[name] = metrics.l1(pred, target)
        elif name == "mse":
            out[name] = metrics.mse(pred, target)
        elif name == "psnr":
            out[name] = metrics.psnr(pred, target).clamp(max=PSNR_CAP)
        elif name == "ssim":
            if min(pred.shape[-2:]) >= 11:
                out[name] = metrics.ssim(pred, target)
        elif name == "gmsd":
            if min(pred.shape[-2:]) >= 4:
                out[name] = metrics.gmsd(pred, target)
        elif name == "sharpness":
            if min(pred.shape[-2:]) >= 3:
                out["_grad"] = metrics.mean_gradient(pred)
                out["_grad_ref"] = metrics.mean_gradient(target)
        elif name == "colourfulness":
            out["_cf"] = metrics.colourfulness(pred)
            out["_cf_ref"] = metrics.colourfulness(target)
        else:  # pragma: no cover - programming error
            raise ValueError(name)
    return out


def _select(items: list, path_of: Callable[[Any], Path], split_file: Path | str, subset: str,
            kind: str | None = None) -> list:
    """The ``items`` on side ``subset`` of the split record ``split_file`` (any version);
    ``kind``: the model's (``sar`` | ``semantic``), warned about when the record is another
    run kind's."""
    from geocolor.data.split import read_split

    record = read_split(split_file)
    if kind and record.kind and record.kind != kind:
        log.warning("%s: the split of a %s run, used to evaluate a %s model", split_file,
                    record.kind, kind)
    return record.select(subset, items, path_of, split_file)


# ----------------------------------------------------------------------------- perceptual
_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
_FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


class Perceptual:
    """LPIPS and FID when available; otherwise the reason each is skipped.

    LPIPS needs the ``lpips`` package (it ships its linear layers) and
    torchvision's ImageNet AlexNet weights in the torch cache. FID needs the
    ``pytorch-fid`` package and its Inception weights in the torch cache. Neither
    is downloaded here.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.status: dict[str, dict[str, Any]] = {}
        self._lpips: Any = None
        self._inception: Any = None
        self._features: dict[str, list[np.ndarray]] = defaultdict(list)
        self._lpips_means: dict[str, _Mean] = defaultdict(_Mean)
        self._setup_lpips()
        self._setup_fid()

    def _setup_lpips(self) -> None:
        if importlib.util.find_spec("lpips") is None:
            self.status["lpips"] = {"status": "skipped",
                                    "reason": "the lpips package is not installed (pip install lpips)"}
            return
        weights = hub_checkpoint(_ALEXNET_FILE)
        if not weights.is_file():
            self.status["lpips"] = {
                "status": "skipped",
                "reason": f"ImageNet AlexNet weights for LPIPS not found at {weights}",
            }
            return
        try:
            import lpips

            self._lpips = lpips.LPIPS(net="alex", verbose=False).to(self.device).eval()
        except Exception as exc:  # noqa: BLE001 - a third-party package failing to build
            self.status["lpips"] = {"status": "skipped",
                                    "reason": f"LPIPS could not be built: {type(exc).__name__}: {exc}"}
            return
        self.status["lpips"] = {"status": "computed", "net": "alex"}

    def _setup_fid(self) -> None:
        if importlib.util.find_spec("pytorch_fid") is None:
            self.status["fid"] = {"status": "skipped",
                                  "reason": "the pytorch-fid package is not installed (pip install pytorch-fid)"}
            return
        weights = hub_checkpoint(_FID_INCEPTION_FILE)
        if not weights.is_file():
            self.status["fid"] = {"status": "skipped", "reason": f"FID Inception weights not found at {weights}"}
            return
        try:
            from pytorch_fid.inception import InceptionV3

            self._inception = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(self.device).eval()
        except Exception as exc:  # noqa: BLE001
            self.status["fid"] = {"status": "skipped",
                                  "reason": f"FID Inception could not be built: {type(exc).__name__}: {exc}"}
            return
        self.status["fid"] = {"status": "computed"}

    @torch.inference_mode()
    def add(self, method: str, pred: torch.Tensor, target: torch.Tensor, first_method: bool) -> None:
        """Accumulate (B, 3, H, W) [0, 1] predictions of ``method`` (and, once, the targets)."""
        if self._lpips is not None:
            d = self._lpips(pred.to(self.device) * 2 - 1, target.to(self.device) * 2 - 1).flatten()
            self._lpips_means[method].add({"lpips": d})
        if self._inception is not None:
            self._features[method].append(self._inception(pred.to(self.device))[0].flatten(1).cpu().numpy())
            if first_method:
                self._features["__target__"].append(self._inception(target.to(self.device))[0].flatten(1).cpu().numpy())

    def results(self) -> dict[str, dict[str, Any]]:
        out = {k: dict(v) for k, v in self.status.items()}
        if self._lpips is not None:
            out["lpips"]["values"] = {m: mean.result().get("lpips") for m, mean in self._lpips_means.items()}
        if self._inception is not None and self._features.get("__target__"):
            from pytorch_fid.fid_score import calculate_frechet_distance

            real = np.concatenate(self._features["__target__"])
            values = {}
            for m, feats in self._features.items():
                if m == "__target__":
                    continue
                fake = np.concatenate(feats)
                values[m] = float(calculate_frechet_distance(
                    real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
                ))
            out["fid"]["values"] = values
            if len(real) < 2048:
                out["fid"]["note"] = f"only {len(real)} images: FID is unstable below ~2048"
        return out


# ----------------------------------------------------------------------------- SAR
SAR_METRICS = ("l1", "psnr", "ssim", "gmsd", "sharpness", "colourfulness")
SAR_METHODS = ("model", "mean_train_colour", "mean_colour", "sar_grey")
SAR_METHOD_LABELS = {
    "model": "model",
    "mean_train_colour": "baseline: mean training colour",
    "mean_colour": "baseline: mean colour of targets",
    "sar_grey": "baseline: SAR grey as RGB",
}


def _check_sar_scaling(model: LoadedModel, data_scaling: str) -> dict[str, Any]:
    from geocolor.data.sarscale import differing_fields, preset

    scaling = preset(data_scaling)
    data = scaling.to_dict()
    card = dict(model.card.input.get("sar_scaling") or {})
    if not card:
        log.warning("%s: model card records no SAR scaling; assuming the data's (%s)", model.path, data_scaling)
        return {"name": data_scaling, **data}
    differs = differing_fields(card, scaling)
    if differs:
        name = card.get("name") or card.get("scheme")
        raise DataError(
            f"the model was trained on SAR scaled as {name!r} "
            f"({card.get('description') or card.get('scheme')}), but this data is {data_scaling!r} "
            f"({data['description']}); its {', '.join(differs)} differ. Evaluate on data scaled like the "
            f"model's training data (or pass --sar-scaling if the data folder is scaled differently "
            f"from its layout's default)"
        )
    return card


def _mean_train_colour(model: LoadedModel, pairs: list, split: Path | str | None,
                       given: tuple[float, float, float] | None) -> tuple[torch.Tensor | None, str]:
    """The mean RGB in [0, 1] of the model's training targets, and where it came from.

    In order: ``given``; the card's ``training.data.mean_train_colour``; the
    pixel-weighted mean of the optical images on the ``train`` side of ``split``
    that are in ``pairs``. ``(None, reason)`` when none is available.
    """
    if given is not None:
        return torch.tensor([float(c) for c in given], dtype=torch.float32), "given"
    recorded = (model.card.training.get("data") or {}).get("mean_train_colour")
    if isinstance(recorded, (list, tuple)) and len(recorded) == 3:
        return torch.tensor([float(c) for c in recorded], dtype=torch.float32), "model card"
    if split is None:
        return None, "unknown: not in the model card; give --split (its train side) or --train-colour"
    from geocolor.data.paired import mean_colour

    try:
        chosen = _select(pairs, lambda p: p.sar_path, split, "train")
    except DataError as exc:
        return None, f"unknown: {exc}"
    return (torch.tensor(mean_colour(chosen), dtype=torch.float32),
            f"train side of {split} ({len(chosen)} images)")


def default_chip_size(model: LoadedModel, pairs: Sequence[Any]) -> int:
    """The card's ``tile_size``, or less when every image is smaller than it.

    Images smaller than a chip are resized up to it, so a 512-px card would score 120-px
    chips on 4x-enlarged copies. The chip is then the smallest multiple of the network's
    size multiple that holds the shortest image side (120 px -> 128).
    """
    from geocolor.data.paired import pair_size
    from geocolor.infer.sarmodel import size_multiple
    from geocolor.infer.tiling import smallest_tile

    tile = int(model.card.input.get("tile_size", 256))
    if not pairs:
        return tile
    shortest = min(min(pair_size(p)) for p in pairs)
    return min(tile, smallest_tile(shortest, size_multiple(model)))


@torch.inference_mode()
def evaluate_sar(
    model: LoadedModel,
    data: Path | str,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    sar_scaling: str | None = None,
    terrains: tuple[str, ...] | None = None,
    limit_per_terrain: int | None = None,
    split: Path | str | None = None,
    subset: str = "val",
    tile_size: int | None = None,
    train_colour: tuple[float, float, float] | None = None,
    tta: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate a SAR model on paired data (see the module docstring).

    With ``split`` (a training run's ``split.json``) only that run's ``subset``
    pairs are evaluated (the images the model did not train on, for ``val``).
    ``tile_size`` overrides the card's chip size (by default the card's, shrunk for data
    whose images are all smaller: :func:`default_chip_size`; e.g. 256 to compare models
    trained on different crops; it must suit the network). ``train_colour``
    (RGB in [0, 1]) is the mean training colour for that baseline when neither
    the card nor the split's training side gives it. ``tta`` ("flips" | "d4")
    evaluates the model under test-time augmentation (:mod:`geocolor.models.tta`).
    """
    from geocolor.data.paired import PairedDataset, find_pairs

    if model.card.kind != "sar":
        raise ModelFileError(f"{model.path}: is a {model.card.kind} model, not a SAR model")
    dev = resolve_device(device)
    pairset = find_pairs(data, terrains=terrains or None, limit_per_terrain=limit_per_terrain)
    scaling_name = sar_scaling or pairset.default_sar_scaling
    scaling = _check_sar_scaling(model, scaling_name)
    pairs = pairset.pairs
    train_rgb, train_source = _mean_train_colour(model, pairset.pairs, split, train_colour)
    if split is not None:
        pairs = _select(pairs, lambda p: p.sar_path, split, subset, "sar")
    tile = int(tile_size or default_chip_size(model, pairs))
    ds = PairedDataset(pairs, img_size=tile, train=False)
    n = len(ds)
    if n == 0:
        raise DataError(f"{data}: no chips to evaluate")
    net = with_tta(model.network.to(dev).eval(), tta)
    terrain_of = [ds.item_info(i)[0].terrain or "all" for i in range(n)]
    image_of = [ds.item_info(i)[0].name for i in range(n)]
    mean_colour = _mean_target_colour(ds)

    means = _GroupedMeans()
    perceptual = Perceptual(dev)
    for start in range(0, n, batch_size):
        idx = list(range(start, min(n, start + batch_size)))
        items = [ds[i] for i in idx]
        sar = torch.stack([a for a, _ in items])
        target = metrics.to_unit(torch.stack([b for _, b in items]))
        preds = {
            "model": metrics.to_unit(net(sar.to(dev)).float()).cpu(),
            **_sar_baselines(sar, target, mean_colour, train_rgb),
        }
        for method, p in preds.items():
            values = _colour_metrics(p, target, SAR_METRICS)
            means.add(method, values, [terrain_of[i] for i in idx], [image_of[i] for i in idx])
            perceptual.add(method, p, target, first_method=method == "model")
        if progress:
            progress(idx[-1] + 1, n)

    groups = sorted({t for t, _ in means.by_group if t != "overall"})
    ordered = (["overall"] + groups) if len(groups) > 1 or groups != ["all"] else ["overall"]
    methods = [m for m in SAR_METHODS if m != "mean_train_colour" or train_rgb is not None]
    results = {g: {m: means.by_group[(g, m)].result() for m in methods} for g in ordered}
    counts = {g: means.by_group[(g, "model")].n for g in ordered}
    return {
        "kind": "sar",
        "model": str(model.path) if model.path else None,
        "data": str(data),
        "layout": pairset.layout,
        "images": len(pairs),
        "chips": n,
        "split": {"file": str(split), "subset": subset} if split is not None else None,
        "tile_size": tile,
        "tta": tta,
        "sar_scaling": scaling.get("name", scaling_name),
        "mean_colour": [round(float(c), 6) for c in mean_colour],
        "mean_train_colour": None if train_rgb is None else [round(float(c), 6) for c in train_rgb],
        "mean_train_colour_source": train_source,
        "metrics": list(SAR_METRICS),
        "methods": {m: SAR_METHOD_LABELS[m] for m in methods},
        "units": "RGB in [0, 1]; PSNR in dB (peak 1, capped at 100 per chip); means over chips",
        "groups": results,
        "counts": counts,
        "per_image": means.per_image(sorted(set(image_of)), methods),
        "perceptual": perceptual.results(),
    }


def _mean_target_colour(ds: Any) -> torch.Tensor:
    """The mean colour (3,) in [0, 1] of all the chips' targets: the constant-image baseline."""
    colour_sum = torch.zeros(3, dtype=torch.float64)
    pixels = 0
    for i in range(len(ds)):
        opt = metrics.to_unit(ds[i][1])
        colour_sum += opt.double().sum(dim=(1, 2))
        pixels += opt.shape[1] * opt.shape[2]
    return (colour_sum / pixels).float()


def _sar_baselines(
    sar: torch.Tensor, target: torch.Tensor, mean_colour: torch.Tensor,
    train_rgb: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """The baselines' outputs for a batch, (B, 3, H, W) in [0, 1] like ``target``: the mean
    colour of the evaluated targets, the SAR chip (``sar``, in [-1, 1]) as grey, and the mean
    training colour where it is known."""
    out = {
        "mean_colour": mean_colour.view(1, 3, 1, 1).expand_as(target).contiguous(),
        "sar_grey": metrics.to_unit(sar).expand(-1, 3, -1, -1).contiguous(),
    }
    if train_rgb is not None:
        out["mean_train_colour"] = train_rgb.view(1, 3, 1, 1).expand_as(target).contiguous()
    return out


class _GroupedMeans:
    """Each method's metric means overall and per group (``by_group[(group, method)]``,
    group "overall" or a terrain), and per image (``by_image[(name, method)]``)."""

    def __init__(self) -> None:
        self.by_group: dict[tuple[str, str], _Mean] = defaultdict(_Mean)
        self.by_image: dict[tuple[str, str], _Mean] = defaultdict(_Mean)

    def add(
        self, method: str, values: dict[str, torch.Tensor], groups: list[str], images: list[str]
    ) -> None:
        """Add a batch's per-chip ``values``; ``groups`` and ``images`` name each chip's."""
        _add_by_key(self.by_group, method, values, groups)
        self.by_group[("overall", method)].add(values)
        _add_by_key(self.by_image, method, values, images)

    def per_image(self, names: list[str], methods: list[str]) -> list[dict[str, Any]]:
        """One row per image: its chip count and each method's means (6 decimals)."""
        return [
            {"name": name, "chips": self.by_image[(name, "model")].n,
             **{m: {k: round(v, 6) for k, v in self.by_image[(name, m)].result().items()}
                for m in methods}}
            for name in names
        ]


def _add_by_key(
    means: dict[tuple[str, str], _Mean], method: str, values: dict[str, torch.Tensor],
    keys: list[str],
) -> None:
    """Add each chip's ``values`` to the mean of its key in ``keys`` (one key per chip)."""
    for key in sorted(set(keys)):
        sel = torch.tensor([k == key for k in keys])
        means[(key, method)].add({name: v[sel] for name, v in values.items()})


# ----------------------------------------------------------------------------- semantic
SEM_METRICS = ("mse", "psnr", "ssim", "gmsd", "sharpness", "colourfulness")
SEM_METHODS = ("model", "grey")
SEM_METHOD_LABELS = {"model": "model", "grey": "baseline: grey image (input L, no colour)"}


@torch.inference_mode()
def evaluate_semantic(
    model: LoadedModel,
    data: Path | str,
    *,
    device: str | torch.device = "cpu",
    split: Path | str | None = None,
    subset: str = "val",
    tta: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate a semantic model on ``raw/`` + ``masks/`` (see the module docstring).

    With ``split`` (a training run's ``split.json``) only that run's ``subset``
    photos are evaluated; ``tta`` as in :func:`evaluate_sar`.
    """
    from geocolor.data.semantic import find_photos, read_mask, read_rgb
    from geocolor.errors import RasterError
    from geocolor.infer.image import colorize_loaded, require_semantic

    require_semantic(model)
    dev = resolve_device(device)
    records = find_photos(data)
    if split is not None:
        records = _select(records, lambda r: r.image, split, subset, "semantic")
    n_classes = int(model.card.arch_args.get("n_classes", max(2, len(model.card.classes))))
    names = list(model.card.classes) or [f"class{i}" for i in range(n_classes)]
    names += [f"class{i}" for i in range(len(names), n_classes)]
    means: dict[str, _Mean] = defaultdict(_Mean)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    perceptual = Perceptual(dev)
    per_image = []
    with_masks = 0
    for k, record in enumerate(records):
        try:
            image = read_rgb(record.image)
        except RasterError as exc:
            raise DataError(str(exc)) from None
        result = colorize_loaded(model, image, dev, tta=tta)
        target = torch.from_numpy(image.rgb).permute(2, 0, 1)[None]
        pred = torch.from_numpy(result.rgb).permute(2, 0, 1)[None]
        grey = torch.from_numpy(result.grey)[None, None].expand(-1, 3, -1, -1).contiguous()
        row: dict[str, Any] = {"name": record.image.name, "width": image.width, "height": image.height}
        for method, p in (("model", pred), ("grey", grey)):
            values = _colour_metrics(p, target, SEM_METRICS)
            means[method].add(values)
            one = _Mean()
            one.add(values)
            row[method] = {key: round(v, 6) for key, v in one.result().items()}
            perceptual.add(method, p, target, first_method=method == "model")
        if record.mask is not None:
            with_masks += 1
            truth = torch.from_numpy(read_mask(record.mask, n_classes, (image.height, image.width)))
            conf = metrics.confusion_matrix(torch.from_numpy(result.labels), truth, n_classes)
            confusion += conf
            row["pixel_accuracy"] = round(metrics.pixel_accuracy(conf), 6)
        per_image.append(row)
        if progress:
            progress(k + 1, len(records))

    if with_masks:
        ious = metrics.iou_per_class(confusion)
        valid = ious[~torch.isnan(ious)]
        segmentation: dict[str, Any] = {
            "status": "computed",
            "images_with_masks": with_masks,
            "pixel_accuracy": metrics.pixel_accuracy(confusion),
            "mean_iou": float(valid.mean()) if valid.numel() else None,
            "per_class_iou": {
                names[i]: (None if math.isnan(float(v)) else float(v)) for i, v in enumerate(ious)
            },
        }
    else:
        segmentation = {
            "status": "skipped",
            "reason": f"no masks: none of the {len(records)} photos has {Path(data) / 'masks'}/<stem>.png",
        }
    return {
        "kind": "semantic",
        "model": str(model.path) if model.path else None,
        "data": str(data),
        "images": len(records),
        "images_with_masks": with_masks,
        "split": {"file": str(split), "subset": subset} if split is not None else None,
        "image_size": int(model.card.input.get("image_size", 256)),
        "tta": tta,
        "metrics": list(SEM_METRICS),
        "methods": dict(SEM_METHOD_LABELS),
        "units": "RGB in [0, 1] at full resolution; PSNR in dB (peak 1, capped at 100 per image); means over images",
        "groups": {"overall": {m: means[m].result() for m in SEM_METHODS}},
        "counts": {"overall": len(records)},
        "segmentation": segmentation,
        "per_image": per_image,
        "perceptual": perceptual.results(),
    }


# ----------------------------------------------------------------------------- entry
def evaluate(
    model: Path | str | LoadedModel,
    data: Path | str,
    *,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a model file (either kind) on ``data``; the card decides how.

    ``options`` go to :func:`evaluate_sar` (``batch_size``, ``sar_scaling``,
    ``terrains``, ``limit_per_terrain``, ``split``, ``subset``, ``tile_size``,
    ``train_colour``); a semantic model
    takes ``split`` and ``subset`` (``batch_size`` is ignored).
    """
    dev = resolve_device(device)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=dev)
    if loaded.card.kind == "sar":
        return evaluate_sar(loaded, data, device=dev, progress=progress, **options)
    shared = ("batch_size", "split", "subset", "tta")
    given = {k for k, v in options.items() if v not in (None, (), False) and k not in shared}
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
        raise UsageError(f"{flags}: only for SAR models; {loaded.path} is a semantic model")
    return evaluate_semantic(loaded, data, device=dev, progress=progress, split=options.get("split"),
                             subset=options.get("subset") or "val", tta=options.get("tta"))


#: Column headings of the table (the JSON keys are the metric names).
_HEADINGS = {"sharpness": "SHARP", "colourfulness": "COLOUR"}


def _fmt(value: Any, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric == "psnr":
        return f"{value:.2f}"
    if metric in ("sharpness", "colourfulness"):
        return f"{value:.3f}"
    if metric in ("l1", "ssim", "gmsd"):
        return f"{value:.4f}"
    if metric == "mse":
        return f"{value:.5f}"
    return f"{value:.4g}"


def format_report(result: dict[str, Any]) -> str:
    """The human-readable table printed by ``geocolor evaluate``."""
    lines = []
    if result["kind"] == "sar":
        lines.append(
            f"SAR model {result['model']} on {result['data']} ({result['layout']} layout): "
            f"{result['images']} image(s), {result['chips']} chip(s) of {result['tile_size']} px, "
            f"SAR scaling {result['sar_scaling']}"
        )
    else:
        lines.append(
            f"semantic model {result['model']} on {result['data']}: {result['images']} photo(s), "
            f"{result['images_with_masks']} with masks"
        )
    if result.get("split"):
        lines.append(f"only the {result['split']['subset']} images of {result['split']['file']}")
    if result.get("tta"):
        lines.append(f"model under test-time augmentation ({result['tta']})")
    lines.append(f"({result['units']})")
    lines.append("(GMSD: gradient magnitude similarity deviation, lower is better; SHARP: mean gradient "
                 "magnitude / the real image's; COLOUR: colourfulness / the real image's; 1 = like the real image)")
    if result.get("mean_train_colour_source", "").startswith("unknown"):
        lines.append(f"(mean training colour baseline left out: {result['mean_train_colour_source']})")
    names = result["metrics"]
    label_w = max(len(v) for v in result["methods"].values())
    group_w = max(len("group"), *(len(g) for g in result["groups"]))
    header = f"{'group':<{group_w}}  {'n':>5}  {'method':<{label_w}}" + "".join(
        f"  {_HEADINGS.get(m, m.upper()):>8}" for m in names)
    lines += ["", header, "-" * len(header)]
    for group, rows in result["groups"].items():
        for method, label in result["methods"].items():
            vals = rows.get(method, {})
            lines.append(
                f"{group:<{group_w}}  {result['counts'].get(group, 0):>5}  {label:<{label_w}}"
                + "".join(f"  {_fmt(vals.get(m), m):>8}" for m in names)
            )
    seg = result.get("segmentation")
    if seg is not None:
        lines.append("")
        if seg["status"] == "computed":
            lines.append(
                f"segmentation ({seg['images_with_masks']} photo(s) with masks): pixel accuracy "
                f"{_fmt(seg['pixel_accuracy'], 'ssim')}, mean IoU {_fmt(seg['mean_iou'], 'ssim')}"
            )
            lines.append("  per-class IoU: " + ", ".join(
                f"{k} {_fmt(v, 'ssim')}" for k, v in seg["per_class_iou"].items()))
        else:
            lines.append(f"segmentation: skipped ({seg['reason']})")
    lines.append("")
    for name, info in result.get("perceptual", {}).items():
        if info["status"] == "computed":
            vals = ", ".join(
                f"{result['methods'].get(m, m)} {_fmt(v, name)}" for m, v in info.get("values", {}).items())
            note = f" ({info['note']})" if info.get("note") else ""
            lines.append(f"{name.upper()}: {vals}{note}")
        else:
            lines.append(f"{name.upper()}: skipped ({info['reason']})")
    return "\n".join(lines)


def to_json_safe(value: Any) -> Any:
    """Replace non-finite floats by ``None`` so the JSON document is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    return value


class _CallableModule(type(importlib)):
    """``geocolor.evaluate(model, data)`` calls :func:`evaluate` even after ``import
    geocolor.evaluate`` made the package attribute this module (the public API exports
    the function under the module's own name)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return evaluate(*args, **kwargs)


import sys as _sys  # noqa: E402 - only for the line below

_sys.modules[__name__].__class__ = _CallableModule
