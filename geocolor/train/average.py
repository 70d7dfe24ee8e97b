"""Several model files of one architecture -> one: their weights or their outputs averaged.

* Weights (:func:`average_models`, a "model soup"): works for networks that sit in one
  basin of the loss: the checkpoints of one run, or runs branched from one checkpoint
  (``train ... --branch``) that differ only in the order and augmentation of their data
  (Wortsman et al. 2022, "Model soups"). Runs at the cost of one network. Networks
  trained from different initialisations do not average: their units are not aligned.
* Outputs (:func:`ensemble_models`, an ensemble): any members; the file holds them all
  and colorizing runs each (:class:`geocolor.models.ensemble.OutputMean`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from geocolor.errors import ModelFileError, UsageError
from geocolor.io.modelfile import LoadedModel, ModelCard, load_model, resolve_model_path, save_model

#: Card fields that must agree for weights to be averaged.
_SAME = ("kind", "arch", "arch_args", "input")


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of floating-point tensors key by key; other tensors (counters) from the first.

    Args:
        states: state dicts with the same keys and shapes.

    Returns:
        A state dict of float32 means (integer buffers such as BatchNorm's
        ``num_batches_tracked`` taken from the first state).
    """
    first = states[0]
    out = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(dim=0)
        else:
            out[key] = tensor.clone()
    return out


def _check_compatible(models: Sequence[LoadedModel], fields: Sequence[str] = _SAME) -> None:
    reference = models[0]
    for other in models[1:]:
        for name in fields:
            if name == "kind" and other.card.kind != reference.card.kind:
                raise ModelFileError(
                    f"{other.path}: is a {other.card.kind} model, {reference.path} a "
                    f"{reference.card.kind} one; only models of one kind can be averaged")
            if getattr(other.card, name) != getattr(reference.card, name):
                raise ModelFileError(
                    f"{other.path}: its {name} differs from {reference.path}'s; only models of one "
                    f"architecture and input can be averaged"
                )


def _member_record(model: LoadedModel) -> dict[str, Any]:
    training = model.card.training
    return {
        "file": str(model.path),
        "seed": training.get("settings", {}).get("seed"),
        "steps": training.get("steps"),
        "command": training.get("command"),
    }


def averaged_card(models: Sequence[LoadedModel], what: str, command: str = "") -> ModelCard:
    """The first member's card, its evaluation figures dropped, the members listed.

    ``training.averaged`` says what was averaged (``"weights"`` or ``"outputs"``), and
    ``training.averaged_by`` the command that did it (when given);
    ``training.averaged_from`` lists each member's file, seed, steps and command;
    ``metrics`` is emptied (the members' figures do not describe the average).
    """
    first = models[0].card
    training = dict(first.training)
    training["averaged"] = what
    if command:
        training["averaged_by"] = command
    training["averaged_from"] = [_member_record(m) for m in models]
    return dataclasses.replace(first, training=training, metrics={}, created="")


def _load_members(paths: Sequence[Path | str]) -> list[LoadedModel]:
    if len(paths) < 2:
        raise UsageError("give two or more model files to average")
    seen: dict[Path, Path | str] = {}
    for given in paths:
        resolved = resolve_model_path(given).resolve()
        if resolved in seen:
            raise UsageError(f"{given}: the same model as {seen[resolved]}; average distinct "
                             "models (the same one twice averages to itself)")
        seen[resolved] = given
    models = [load_model(p) for p in paths]
    _check_compatible(models, ("kind",))  # first: an ensemble of the other kind is no matter
    for m in models:
        if m.card.arch == "ensemble":
            raise ModelFileError(f"{m.path}: is an ensemble already; give its members instead")
    _check_compatible(models)
    return models


def _stored_half(models: Sequence[LoadedModel]) -> bool:
    return all(m.card.weights_dtype == "float16" for m in models)


def ensemble_models(paths: Sequence[Path | str], output: Path | str, command: str = "") -> Path:
    """Write the model files ``paths`` into one ensemble model file ``output`` (atomically).

    The ensemble's card has the members' kind, input and classes, ``arch`` ``"ensemble"``
    with ``arch_args`` ``{"member_arch", "member_args", "members"}``, and lists the members under
    ``training.averaged_from`` (see :func:`averaged_card`; ``command``: the command line).
    Weights are stored as float16 when every member stored them so.

    Raises:
        UsageError: fewer than two models.
        ModelFileError: a member that does not load, is an ensemble, or differs in kind,
            architecture or input settings.
    """
    from geocolor.models.ensemble import OutputMean

    models = _load_members(paths)
    first = models[0].card
    ensemble = OutputMean(first.arch, first.arch_args, len(models))
    for member, model in zip(ensemble.members, models, strict=True):
        member.load_state_dict(model.network.state_dict())
    card = averaged_card(models, "outputs", command)
    card = dataclasses.replace(card, arch="ensemble", arch_args={
        "member_arch": first.arch, "member_args": first.arch_args, "members": len(models)})
    return save_model(output, ensemble, card, half=_stored_half(models))


def average_models(paths: Sequence[Path | str], output: Path | str, command: str = "") -> Path:
    """Average the weights of the model files ``paths`` into ``output`` (written atomically).

    Weights are stored as float16 when every member stored them so. ``command``: the
    command line, for the card. Raises the errors :func:`ensemble_models` does.
    """
    models = _load_members(paths)
    network = models[0].network
    network.load_state_dict(average_state_dicts([m.network.state_dict() for m in models]))
    card = averaged_card(models, "weights", command)
    return save_model(output, network, card, half=_stored_half(models))
