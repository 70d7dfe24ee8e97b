"""Running a network on batches of tiles: device placement, AMP on CUDA, numpy out."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 (else fp16) autocast on CUDA when ``amp``; nothing on CPU."""
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def run_model(
    network: torch.nn.Module, x: Any, device: torch.device, amp: bool = True
) -> np.ndarray:
    """One batch (B, 1, T, T) in [-1, 1] -> (B, 3, T, T) float32 numpy in [-1, 1]."""
    tensor = torch.as_tensor(x)
    if device.type == "cuda":
        tensor = tensor.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device, amp):
        y = network(tensor)
    return y.float().cpu().numpy()
