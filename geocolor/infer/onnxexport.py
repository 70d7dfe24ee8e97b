"""Export a generator to ONNX, with its model card in the ONNX metadata.

The exported graph takes ``x``: (batch, 1, T, T) float32 in [-1, 1] and gives
``y``: (batch, 3, T, T) float32 in [-1, 1]; the batch dimension is dynamic, the
tile side ``T`` is fixed (the card's ``input.tile_size``). It is the network as
:func:`geocolor.infer.backend.prepare_network` runs it (eval mode, BatchNorm
folded), so ONNX Runtime gives the torch backend's output within float32 rounding.

The model card (JSON) is stored under the metadata key :data:`CARD_KEY`, so an
ONNX file is as self-describing as a ``.model`` file (``geocolor info``-style
tools and QGIS plugins read it with ``onnx.load(path).metadata_props``).

What ``torch.onnx.export`` needs differs between torch versions. Checked on torch
2.14 by hiding each package: the TorchScript exporter (tried first here: ~10x faster
to export, 2.4 s vs 21 s for the packaged model) needs ``onnx``; the
``torch.export``-based one (the default since torch 2.9; the fallback here, for
torch versions without the former) needs ``onnx`` and ``onnxscript``. Writing the
metadata needs ``onnx``. All of them come with ``pip install geocolor[onnx]``
(onnxruntime, onnx, onnxscript); without them the error says so in one line.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geocolor.errors import GeocolorError, ModelFileError, UsageError
from geocolor.infer.backend import ONNX_INSTALL_HINT, prepare_network
from geocolor.io.atomic import atomic_path
from geocolor.io.modelfile import LoadedModel, ModelCard

log = logging.getLogger("geocolor.infer")

#: ONNX metadata key of the model card (JSON).
CARD_KEY = "geocolor_model_card"
OPSET = 17
#: The oldest opset the export is offered for (``--opset``).
LOWEST_OPSET = 13


def network_to_onnx(network: nn.Module, tile: int, opset: int = OPSET) -> bytes:
    """Serialise ``network`` (prepared for inference on CPU) as an ONNX model."""
    prepared = prepare_network(network, torch.device("cpu")).to(
        memory_format=torch.contiguous_format
    )
    example = torch.zeros(1, _in_channels(prepared), tile, tile)
    errors: list[str] = []
    for dynamo in (False, True):
        buf = io.BytesIO()
        try:
            with _quiet_export():
                kwargs: dict[str, Any] = {"dynamo": dynamo}
                if dynamo:
                    kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
                    kwargs["verbose"] = False
                else:
                    kwargs["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
                torch.onnx.export(
                    prepared,
                    (example,),
                    buf,
                    input_names=["x"],
                    output_names=["y"],
                    opset_version=opset,
                    **kwargs,
                )
            return buf.getvalue()
        except ImportError as exc:
            errors.append(f"{exc}")
        except Exception as exc:  # noqa: BLE001 - try the other exporter, then report both
            first = (str(exc).strip().splitlines() or [""])[0]
            errors.append(f"{type(exc).__name__}: {first}")
    if any("onnx" in e.lower() and "module" in e.lower() for e in errors):
        raise GeocolorError(f"exporting to ONNX needs onnx and onnxscript; {ONNX_INSTALL_HINT}")
    raise GeocolorError(f"cannot export this network to ONNX ({'; '.join(errors)})")


def _in_channels(network: nn.Module) -> int:
    for m in network.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            return int(m.in_channels)
    return 1


@contextlib.contextmanager
def _quiet_export() -> Any:
    """No exporter chatter on stdout/stderr (stdout is for machine output), no warnings."""
    with warnings.catch_warnings(), open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        warnings.simplefilter("ignore")
        yield


def export_onnx(
    loaded: LoadedModel, dst: str | Path, *, tile_size: int | None = None, opset: int = OPSET
) -> dict[str, Any]:
    """Write ``loaded``'s generator to ``dst`` as ONNX with its card in the metadata.

    Args:
        loaded: a model (any kind whose network maps one tensor to one tensor).
        dst: output ``.onnx`` path (written atomically).
        tile_size: the fixed tile side of the graph (default: the card's, else 256).
        opset: ONNX opset version, from :data:`LOWEST_OPSET` to the newest the installed onnx
            knows.

    Returns:
        ``{"output", "tile_size", "opset", "bytes"}`` (``opset``: the one written, which
        the exporter may raise; a warning says so).

    Raises:
        UsageError: an opset outside that range.
    """
    onnx = _require_onnx()
    dst = Path(dst)
    if loaded.card.kind != "sar":
        raise ModelFileError(
            f"{loaded.path or 'model'}: is a {loaded.card.kind} model; only SAR generators "
            "are exported to ONNX"
        )
    highest = onnx.defs.onnx_opset_version()
    if not LOWEST_OPSET <= opset <= highest:
        raise UsageError(f"--opset {opset}: the installed onnx {onnx.__version__} writes opsets "
                         f"{LOWEST_OPSET} to {highest}")
    tile = int(tile_size or loaded.card.input.get("tile_size") or 256)
    model = onnx.load_from_string(network_to_onnx(loaded.network, tile, opset))
    written = max((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")),
                  default=opset)
    if written != opset:
        log.warning("%s: written with opset %d; the exporter does not write opset %d for this "
                    "network", dst, written, opset)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(loaded.card.to_dict())
    model.producer_name = "geocolor"
    model.doc_string = (
        "geocolor SAR generator: x (batch, 1, T, T) float32 in [-1, 1] -> "
        "y (batch, 3, T, T) float32 in [-1, 1]; model card (JSON) in metadata "
        f"'{CARD_KEY}'"
    )
    data = model.SerializeToString()
    with atomic_path(dst, suffix=".onnx") as tmp:
        Path(tmp).write_bytes(data)
    return {"output": str(dst), "tile_size": tile, "opset": written, "bytes": len(data)}


def read_onnx_card(path: str | Path) -> ModelCard:
    """The model card stored in an exported ONNX file."""
    onnx = _require_onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad model file
        raise ModelFileError(f"{path}: not a readable ONNX file ({exc})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if CARD_KEY not in meta:
        raise ModelFileError(
            f"{path}: ONNX file has no geocolor model card (metadata {CARD_KEY!r})"
        )
    return ModelCard.from_dict(json.loads(meta[CARD_KEY]), source=str(path))


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise GeocolorError(f"ONNX export needs the onnx package; {ONNX_INSTALL_HINT}") from None
    return onnx
