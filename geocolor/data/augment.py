"""Training augmentation for SAR/optical pairs: what varies between scenes and regions.

- geometry, applied to both images alike: the 8 flips and 90-degree rotations (the
  dihedral group; a nadir-looking optical image has no preferred orientation, and
  the SAR look direction differs between passes), random resized crops (scale
  jitter: other resolutions and feature sizes) and rotations by any angle (street
  grids and field edges run every way, not only along the training city's axes);
- SAR radiometry, in its scaled domain (values in [0, 1] = amplitude over a scene
  statistic): a gain (another scene's p99 or calibration) and a gamma (another
  contrast, e.g. another dB range). The optical target is left as it is.

All randomness comes from :mod:`numpy.random`, which the training loop seeds per
item, so augmented epochs replay exactly on resume.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class PairAugment:
    """Random augmentation of uint8 crops.

    Attributes:
        dihedral: random flips and 90-degree rotations.
        gain: SAR gain drawn log-uniformly in [exp(-gain), exp(gain)] (0: off).
        gamma: SAR gamma drawn log-uniformly in [exp(-gamma), exp(gamma)] (0: off).
        scale: crop side drawn log-uniformly in [S / (1 + scale), S * (1 + scale)] and
            resized to S (0: off).
        rotate: angle in degrees drawn uniformly in [-rotate, rotate] (0: off; 45 with
            ``dihedral`` covers every orientation). The source crop is taken large enough
            that the rotated square has no empty corners; where the image is smaller than
            that, the rotated square is smaller than S and is resized up to S.
    """

    dihedral: bool = True
    gain: float = 0.0
    gamma: float = 0.0
    scale: float = 0.0
    rotate: float = 0.0

    @property
    def active(self) -> bool:
        return self.dihedral or self.gain > 0 or self.gamma > 0 or self.scale > 0 or self.rotate > 0

    def crop_side(self, size: int, limit: int) -> int:
        """Side of the source crop for an output of ``size`` px, at most ``limit``."""
        if self.scale <= 0:
            return size
        factor = np.exp(np.random.uniform(-np.log1p(self.scale), np.log1p(self.scale)))
        return int(min(limit, max(8, round(size * factor))))

    def angle(self) -> float:
        """A rotation angle in degrees, uniform in [-rotate, rotate]; 0 (and no draw) when off."""
        return float(np.random.uniform(-self.rotate, self.rotate)) if self.rotate > 0 else 0.0

    def __call__(self, sar: np.ndarray, opt: np.ndarray, size: int,
                 angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Augment one pair.

        Args:
            sar: (h, w) uint8 crop; opt: (h, w, 3) uint8 crop of the same area.
            size: output side S (crops of another side are resized to it).
            angle: rotation in degrees (counter-clockwise) about the crop's centre; the
                crop must be :func:`rotation_source_side` of the side wanted, which is
                cut from its centre after rotating.

        Returns:
            (sar (S, S) uint8, opt (S, S, 3) uint8).
        """
        if angle:
            sar, opt = rotate_pair(sar, opt, angle)
        if sar.shape[0] != size or sar.shape[1] != size:
            sar = np.asarray(Image.fromarray(sar).resize((size, size), Image.BILINEAR))
            opt = np.asarray(Image.fromarray(opt).resize((size, size), Image.BILINEAR))
        if self.dihedral:
            k = int(np.random.randint(4))
            flip = bool(np.random.randint(2))
            sar, opt = np.rot90(sar, k), np.rot90(opt, k, axes=(0, 1))
            if flip:
                sar, opt = sar[:, ::-1], opt[:, ::-1]
        if self.gain > 0 or self.gamma > 0:
            sar = jitter_sar(sar, self._log_uniform(self.gain), self._log_uniform(self.gamma))
        return np.ascontiguousarray(sar), np.ascontiguousarray(opt)

    @staticmethod
    def _log_uniform(spread: float) -> float:
        return float(np.exp(np.random.uniform(-spread, spread))) if spread > 0 else 1.0


def rotation_source_side(side: int, angle: float) -> int:
    """Side of the square that, rotated by ``angle`` degrees, still covers a ``side`` square."""
    a = math.radians(angle)
    return math.ceil(side * (abs(math.cos(a)) + abs(math.sin(a))) - 1e-9)


def rotated_side(source: int, angle: float) -> int:
    """The largest square side that a ``source`` square rotated by ``angle`` degrees covers."""
    a = math.radians(angle)
    return max(1, math.floor(source / (abs(math.cos(a)) + abs(math.sin(a))) + 1e-9))


def rotate_pair(sar: np.ndarray, opt: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate both crops (N, N) / (N, N, 3) uint8 by ``angle`` degrees about their centre and
    keep the largest centred square with no empty corner: (M, M) / (M, M, 3), M = rotated_side.

    Bilinear for both, as for the resized crops.
    """
    n = sar.shape[0]
    keep = rotated_side(n, angle)
    lo = (n - keep) // 2
    box = (lo, lo, lo + keep, lo + keep)
    sar = np.asarray(Image.fromarray(sar).rotate(angle, Image.BILINEAR).crop(box))
    opt = np.asarray(Image.fromarray(opt).rotate(angle, Image.BILINEAR).crop(box))
    return sar, opt


def jitter_sar(sar: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """uint8 scaled SAR -> uint8 with ``clip((x * gain) ** gamma)`` applied in [0, 1]."""
    x = sar.astype(np.float32) / 255.0
    x = np.clip(x * gain, 0.0, 1.0) ** gamma
    return np.round(x * 255.0).astype(np.uint8)
