"""What :func:`~geocolor.colorize_scene` and :func:`~geocolor.colorize_image` return."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: ``progress(done, total)``: called by both colorize functions, first with ``done == 0``
#: and last with ``done == total`` (tiles for scenes, steps for images).
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ColorizeResult(Mapping[str, Any]):
    """One colorized input: the same type for SAR scenes and photos.

    Attributes:
        input, output: the paths read and written.
        kind: ``"sar"`` or ``"semantic"``: the model kind that colorized it.
        model: the model file used (None for a model built in memory).
        width, height: the output's size in pixels (equal to the input's).
        seconds: wall time of the call.
        tiles: tiles sent to the model (scenes; 0 for photos).
        tiles_skipped: all-nodata tiles never sent to the model (scenes).
        preview, mask: side files written, or None.
        details: kind-specific facts: for scenes ``band``, ``input_scale``,
            ``reference`` (the amplitude percentile), ``georeference``, ``timing``;
            for photos ``input_mode``, ``network_size``, ``classes`` (fraction of
            pixels per class).

    It is also a read-only mapping of all of the above with ``details`` flattened
    in (``result["tiles"]``, ``result["georeference"]``), and :meth:`to_dict` gives
    the JSON-ready dict.
    """

    input: str
    output: str
    kind: str
    model: str | None
    width: int
    height: int
    seconds: float
    tiles: int = 0
    tiles_skipped: int = 0
    preview: str | None = None
    mask: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """All fields, ``details`` flattened in (JSON-ready)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "details"}
        return {**data, **self.details}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
