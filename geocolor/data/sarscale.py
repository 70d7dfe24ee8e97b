"""How SAR values were scaled for a model's training data.

A SAR model only works on input scaled exactly as its training SAR was. The
scaling is recorded in the model card (``card.input["sar_scaling"]``) and the
inference engine converts any scene to it. Two schemes cover the data sets in use:

``db_clip``
    sigma0 in dB clipped to ``[db_min, db_max]`` and mapped linearly to [0, 1]
    (the Kaggle "Sentinel12 Image Pairs" set: VV, [-25, 0] dB, stored as 8 bit).
``amplitude_percentile``
    amplitude (sqrt of linear intensity, or GRD digital numbers) divided by the
    scene's ``percentile``-th percentile and clipped to [0, 1] (the s1s2-la set:
    VH GRD amplitude / 99th percentile, 8 bit). The percentile is a per-scene
    statistic: compute it once per scene, never per tile.

The unit value ``u`` in [0, 1] becomes the model input ``2u - 1``; an 8-bit
training PNG stores ``round(255 u)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from geocolor.errors import ConfigError

SCHEMES = ("db_clip", "amplitude_percentile")


@dataclass(frozen=True)
class SarScaling:
    """One SAR scaling scheme (see module docstring); stored in model cards as a dict."""

    scheme: Literal["db_clip", "amplitude_percentile"]
    polarisation: str = "VV"
    db_min: float = -25.0
    db_max: float = 0.0
    percentile: float = 99.0
    description: str = ""

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(f"unknown SAR scaling scheme {self.scheme!r}; known: {', '.join(SCHEMES)}")
        if self.scheme == "db_clip" and not self.db_min < self.db_max:
            raise ConfigError(f"SAR scaling needs db_min < db_max, got {self.db_min}, {self.db_max}")
        if self.scheme == "amplitude_percentile" and not 0 < self.percentile <= 100:
            raise ConfigError(f"SAR scaling percentile must be in (0, 100], got {self.percentile}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SarScaling:
        known = {"scheme", "polarisation", "db_min", "db_max", "percentile", "description"}
        return cls(**{k: v for k, v in data.items() if k in known})

    def unit_from_db(self, db: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
        """sigma0 dB -> [0, 1] for ``db_clip`` (float32).

        ``overwrite``: a float32 ``db`` may be turned into the result in place (no new array).
        """
        unit = np.array(db, dtype=np.float32, copy=None if overwrite else True)
        unit -= self.db_min
        unit /= self.db_max - self.db_min
        return np.clip(unit, 0.0, 1.0, out=unit)

    def unit_from_amplitude(
        self, amplitude: np.ndarray, reference: float, *, overwrite: bool = False
    ) -> np.ndarray:
        """amplitude / scene percentile ``reference`` -> [0, 1] for ``amplitude_percentile``
        (float32; ``overwrite`` as in :meth:`unit_from_db`)."""
        if not reference > 0:
            raise ValueError(f"percentile reference must be positive, got {reference}")
        unit = np.array(amplitude, dtype=np.float32, copy=None if overwrite else True)
        unit /= np.float32(reference)
        return np.clip(unit, 0.0, 1.0, out=unit)


#: Named presets for the data sets users train on.
PRESETS: dict[str, SarScaling] = {
    "kaggle-vv-db": SarScaling(
        "db_clip", "VV", -25.0, 0.0,
        description="Sentinel-1 VV sigma0 in dB, clipped to [-25, 0] dB, 8-bit",
    ),
    "s1s2la-vh-amplitude": SarScaling(
        "amplitude_percentile", "VH", percentile=99.0,
        description="Sentinel-1 VH GRD amplitude divided by the scene's 99th percentile, clipped, 8-bit",
    ),
}


def differing_fields(card: dict[str, Any], data: SarScaling) -> list[str]:
    """The fields in which a model card's recorded scaling (``card``, the stored dict) differs
    from ``data``'s: scheme, polarisation, the dB range (of a ``db_clip`` card) and percentile.
    A field the card does not record is not compared."""
    keys: tuple[str, ...] = ("scheme", "polarisation")
    if card.get("scheme") == "db_clip":
        keys += ("db_min", "db_max")
    keys += ("percentile",)
    values = data.to_dict()
    return [k for k in keys if k in card and card[k] != values.get(k)]


def preset(name: str) -> SarScaling:
    """The preset called ``name`` (see :data:`PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown SAR scaling {name!r}; choose one of {', '.join(PRESETS)}") from None
