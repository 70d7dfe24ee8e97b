"""Running a generator on batches of tiles: the torch and ONNX Runtime backends.

A *runner* maps one batch ``(B, 1, T, T)`` float32 in [-1, 1] (numpy, or a pinned
tensor on CUDA) to ``(B, 3, T, T)`` float32 numpy in [-1, 1]. Two kinds:

- :class:`TorchRunner`: the network, prepared for inference once
  (:func:`prepare_network`): an eval-mode copy with BatchNorm folded into the
  convolution before it and, on CPU and CUDA, ``channels_last`` memory format;
  under ``torch.inference_mode()``, with bf16/fp16 autocast on CUDA (``amp``) and,
  on request, bf16 autocast on CPUs that compute it natively (``cpu_bf16``: AMX or
  AVX512-BF16; about 2x float32's speed there, outputs ~1 DN from float32's on
  average, up to ~30 DN at a few pixels).
- :class:`OnnxRunner`: the same network exported to ONNX
  (:mod:`geocolor.infer.onnx`) run by ONNX Runtime's CPU execution provider.

Both give the same output as the plain network within float32 rounding (folding
changes the order of operations; measured max |difference| ~1e-6 on [-1, 1], far
below half a DN of the uint8 output, 1/255). The optimisations are generic: they
walk the module tree and apply to any ``nn.Module`` generator from the registry.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import weakref
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from geocolor.device import cpu_has_native_bf16
from geocolor.errors import GeocolorError, UsageError
from geocolor.infer.heap import keep_freed_memory

log = logging.getLogger("geocolor.infer")

BACKENDS = ("torch", "onnxruntime")
ONNX_INSTALL_HINT = "pip install geocolor[onnx]"


class Runner(Protocol):
    """One batch (B, 1, T, T) in [-1, 1] -> (B, 3, T, T) float32 numpy in [-1, 1]."""

    #: whether the reader should hand over page-locked (pinned) torch tensors
    pin_memory: bool
    #: what computes the model, e.g. ``torch cpu float32`` (an output's GEOCOLOR_ENGINE tag)
    engine: str

    def __call__(self, x: Any) -> np.ndarray: ...


def autocast(device: torch.device, amp: bool, cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """bf16 (else fp16) autocast on CUDA when ``amp``; bf16 on the CPU when ``cpu_bf16``."""
    if device.type == "cuda" and amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and cpu_bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_cpu_bf16(requested: bool, device: torch.device, backend: str = "torch") -> bool:
    """Whether to run the CPU in bf16: asked for, torch backend, CPU device, native bf16.

    Asked for on a CPU without native bf16 (where torch would emulate it, slower than
    float32), it logs a warning and returns False: a batch script that passes
    ``--cpu-bf16`` runs on any machine.
    """
    if not requested or device.type != "cpu":
        return False
    if backend != "torch":
        raise UsageError("--cpu-bf16 applies to the torch backend; drop it or use --backend torch")
    if not cpu_has_native_bf16():
        _warn_no_native_bf16()
        return False
    return True


@functools.cache
def _warn_no_native_bf16() -> None:
    """The fallback's warning, once per process (not once per scene of a batch)."""
    log.warning("--cpu-bf16: this CPU has no native bf16 (Intel AMX or AVX512-BF16); running in float32")


def run_model(
    network: torch.nn.Module, x: Any, device: torch.device, amp: bool = True, cpu_bf16: bool = False
) -> np.ndarray:
    """One batch (B, 1, T, T) in [-1, 1] -> (B, 3, T, T) float32 numpy in [-1, 1]."""
    tensor = torch.as_tensor(x)
    if tensor.device != device:
        tensor = tensor.to(device, non_blocking=True)
    if _is_channels_last(network):
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device, amp, cpu_bf16):
        y = network(tensor)
    return y.float().cpu().numpy()


def _is_channels_last(network: nn.Module) -> bool:
    for p in network.parameters():
        if p.ndim == 4:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def fold_batchnorm(network: nn.Module) -> int:
    """Fold eval-mode BatchNorm2d layers into the convolution before them, in place.

    Two places say that a BatchNorm directly follows a convolution in the forward pass:

    - an ``nn.Sequential`` in which a ``Conv2d`` or ``ConvTranspose2d`` comes right before
      a ``BatchNorm2d``;
    - a module's own ``batchnorm_pairs()``: the ``(conv, batchnorm)`` attribute names its
      ``forward`` applies one right after the other (e.g. the EfficientNet blocks of
      :mod:`geocolor.models.efficientnet`, whose layers are attributes).

    A foldable pair (running statistics, the same channel count) becomes one convolution
    with adjusted weights and bias, and the BatchNorm ``nn.Identity``. Other layouts are
    left alone (their forward order is unknown), so any registry network stays correct.
    ``network`` must be in eval mode. Returns the number of folded layers.
    """
    folded = 0
    for module, a, b in _conv_bn_pairs(network):
        conv, bn = module._modules[a], module._modules[b]
        if not _foldable(conv, bn):
            continue
        transpose = isinstance(conv, nn.ConvTranspose2d)
        module._modules[a] = fuse_conv_bn_eval(conv, bn, transpose=transpose)
        module._modules[b] = nn.Identity()
        folded += 1
    return folded


def _conv_bn_pairs(network: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """(module, conv name, batchnorm name) for each declared or sequential neighbour pair."""
    pairs = []
    for module in network.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            pairs += [(module, a, b) for a, b in zip(names, names[1:], strict=False)]
        declared = getattr(module, "batchnorm_pairs", None)
        if callable(declared):
            pairs += [(module, a, b) for a, b in declared()]
    return pairs


def _count_foldable(network: nn.Module) -> int:
    return sum(_foldable(m._modules[a], m._modules[b]) for m, a, b in _conv_bn_pairs(network))


def _foldable(conv: Any, bn: Any) -> bool:
    if not isinstance(bn, nn.BatchNorm2d) or bn.training or bn.running_mean is None:
        return False
    if isinstance(conv, nn.ConvTranspose2d):
        return conv.groups == 1 and conv.out_channels == bn.num_features and not conv.training
    if isinstance(conv, nn.Conv2d):
        return conv.out_channels == bn.num_features and not conv.training
    return False


def prepare_network(network: nn.Module, device: torch.device) -> nn.Module:
    """``network`` ready for inference on ``device``: eval, BatchNorm folded, channels_last.

    When there is BatchNorm to fold, that happens on a copy, so the caller's weights
    are never changed; otherwise the network itself is put in eval mode on
    ``device`` (as before). ``channels_last`` pays on CPU (oneDNN convolutions
    without layout reorders) and on CUDA (tensor cores).
    """
    network.eval()
    n = _count_foldable(network)
    prepared = copy.deepcopy(network) if n else network
    if n:
        fold_batchnorm(prepared)
    prepared.to(device)
    if device.type in ("cpu", "cuda"):
        prepared.to(memory_format=torch.channels_last)
    log.debug("inference network: %d BatchNorm layers folded, channels_last", n)
    return prepared


class TorchRunner:
    """The torch backend: a prepared copy of the network (see :func:`prepare_network`)."""

    def __init__(
        self, network: nn.Module, device: torch.device, amp: bool = True, optimize: bool = True,
        cpu_bf16: bool = False,
    ) -> None:
        self.device = device
        self.amp = amp
        self.cpu_bf16 = cpu_bf16
        self.network = prepare_network(network, device) if optimize else network.to(device).eval()
        self.pin_memory = device.type == "cuda"
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every call has the same tile shape

    @property
    def engine(self) -> str:
        """``torch <device type> <precision>``: float32, or the autocast's bfloat16 /
        float16 (CUDA with ``amp``, the CPU with ``cpu_bf16``)."""
        if self.device.type == "cuda" and self.amp:
            half = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
            return f"torch cuda amp {half}"
        if self.device.type == "cpu" and self.cpu_bf16:
            return "torch cpu bfloat16"
        return f"torch {self.device.type} float32"

    def __call__(self, x: Any) -> np.ndarray:
        return run_model(self.network, x, self.device, self.amp, self.cpu_bf16)


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a one-line error that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise GeocolorError(
            f"--backend onnxruntime needs the onnxruntime package, which is not installed; "
            f"{ONNX_INSTALL_HINT}"
        ) from None
    return onnxruntime


class OnnxRunner:
    """The ONNX Runtime backend (CPU execution provider) on a serialised ONNX model.

    Args:
        model: the ONNX model as bytes (or a path), input ``x`` (B, 1, T, T) and
            output ``y`` (B, 3, T, T), batch dimension dynamic.
        threads: intra-op threads (default: torch's, i.e. the cores this process may use).
    """

    pin_memory = False
    engine = "onnxruntime cpu float32"

    def __init__(self, model: bytes | str, threads: int | None = None) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


#: Runners already made for a network (a batch of scenes prepares or exports it once).
_RUNNERS: weakref.WeakKeyDictionary[nn.Module, dict[tuple, Runner]] = weakref.WeakKeyDictionary()


def make_runner(
    network: nn.Module, backend: str, device: torch.device, amp: bool = True, tile: int = 256,
    cpu_bf16: bool = False,
) -> Runner:
    """A runner for ``backend`` (``torch`` or ``onnxruntime``; the latter on CPU only).

    ``cpu_bf16``: bf16 on the CPU where it is native (:func:`use_cpu_bf16`). Runners
    are cached per network object, backend, device, amp, bf16 and tile size.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnxruntime" and device.type != "cpu":
        raise UsageError(f"--backend onnxruntime runs on the CPU; got --device {device}")
    keep_freed_memory()  # reuse each batch's working memory instead of re-faulting it
    cpu_bf16 = use_cpu_bf16(cpu_bf16, device, backend)
    key = (backend, str(device), bool(amp), cpu_bf16, int(tile) if backend == "onnxruntime" else 0)
    cache = _RUNNERS.setdefault(network, {})
    if key not in cache:
        if backend == "torch":
            cache[key] = TorchRunner(network, device, amp, cpu_bf16=cpu_bf16)
        else:
            require_onnxruntime()
            from geocolor.infer.onnxexport import network_to_onnx

            cache[key] = OnnxRunner(network_to_onnx(network, tile))
    return cache[key]
