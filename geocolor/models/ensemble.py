"""Several networks of one architecture in one module, their outputs averaged (an ensemble).

Networks trained from different seeds err differently; the mean of their colours is
closer to the truth than a typical member's, at the cost of running each member.
Unlike averaged weights (``geocolor average``), this works for any members.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class OutputMean(nn.Module):
    """``members`` networks ``member_arch(**member_args)`` run on one input, outputs averaged.

    A member's output may be a tensor or a tuple of tensors (e.g. the semantic model's
    ``(segmentation logits (B, C, H, W), ab (B, 2, H, W))``): each is averaged across
    members, so the ensemble has the members' interface and value ranges.
    """

    def __init__(self, member_arch: str, member_args: dict[str, Any], members: int) -> None:
        from geocolor.models.registry import build_model

        super().__init__()
        if member_arch == "ensemble":
            raise ValueError("an ensemble's members cannot be ensembles")
        if members < 2:
            raise ValueError(f"an ensemble needs two or more members, got {members}")
        self.members = nn.ModuleList(
            build_model(member_arch, **member_args) for _ in range(members))
        #: Input sides must be multiples of this (the strictest member's).
        self.multiple = max(int(getattr(m, "multiple", 1)) for m in self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs = [member(x) for member in self.members]
        if isinstance(outputs[0], torch.Tensor):
            return torch.stack(outputs).mean(dim=0)
        return tuple(torch.stack(parts).mean(dim=0) for parts in zip(*outputs, strict=True))
