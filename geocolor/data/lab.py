"""sRGB <-> CIE L*a*b* (D65), and the scaling the semantic model works in.

Conventions (the same constants as :func:`skimage.color.rgb2lab`, so results agree
with scikit-image to float32 precision; see ``tests/data/test_lab.py``):

* sRGB: gamma-encoded, channel-first ``(*, 3, H, W)``, float in ``[0, 1]``.
* Linearisation: ``c / 12.92`` below 0.04045, ``((c + 0.055) / 1.055) ** 2.4`` above.
* XYZ: sRGB primaries, reference white D65 2 degree observer
  ``(0.95047, 1.0, 1.08883)``.
* L* in ``[0, 100]``; a*, b* roughly ``[-86, 98]`` and ``[-108, 95]`` for sRGB
  colours (the nominal range is ``[-128, 127]``).

Model scaling (:func:`lab_to_model`, :func:`model_to_lab`):

* input ``L / 50 - 1``: L in [0, 100] -> [-1, 1];
* target ``ab / 128``: ab in [-128, 127] -> about [-1, 1] (the network's Tanh
  head can reach every sRGB colour).

Round-trip tolerance (checked in the tests): ``lab_to_rgb(rgb_to_lab(x))``
returns ``x`` within 1e-4 in float32, and ``rgb_to_lab`` matches
``skimage.color.rgb2lab`` within 2e-3 (L, a, b units) in float32.

Functions work on any leading batch shape, on any device, in float32/float64,
and are differentiable (powers are taken of clamped values so gradients stay
finite at 0). ``RgbToLab`` / ``LabToRgb`` wrap them as modules; the ``*_np``
helpers take and return channel-last numpy arrays (``(H, W, 3)``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: D65 reference white (2 degree observer), as in scikit-image.
WHITE_D65 = (0.95047, 1.0, 1.08883)

_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)

#: Scale of the model's L input and ab target (see module docstring).
L_SCALE = 50.0
AB_SCALE = 128.0

_EPSILON = 0.008856  # (6/29) ** 3
_KAPPA = 7.787  # (29/6) ** 2 / 3

#: How far outside [0, 1] an sRGB value may be and still count as inside the gamut: the
#: float32 round trip's error (real colours must not be changed by the gamut fitting).
GAMUT_TOLERANCE = 1e-4


def _check_channels(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(image).__name__}")
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name}: expected a tensor of shape (*, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {image.dtype}")


def _matrix(rows: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply_matrix(m: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    # (3, 3) x (*, 3, H, W) -> (*, 3, H, W)
    return torch.einsum("ij,...jhw->...ihw", m, image)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB gamma: ``(*, 3, H, W)`` in [0, 1] -> linear RGB in [0, 1]."""
    high = ((rgb.clamp(min=0.04045) + 0.055) / 1.055).pow(2.4)
    return torch.where(rgb > 0.04045, high, rgb / 12.92)


def linear_to_srgb(rgb: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB gamma: linear RGB -> gamma-encoded sRGB (not clipped)."""
    high = 1.055 * rgb.clamp(min=0.0031308).pow(1 / 2.4) - 0.055
    return torch.where(rgb > 0.0031308, high, rgb * 12.92)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """sRGB -> CIE L*a*b* (D65).

    Args:
        image: sRGB, shape ``(*, 3, H, W)``, float in [0, 1].

    Returns:
        L*a*b*, shape ``(*, 3, H, W)``: L in [0, 100], a and b about [-128, 127].
    """
    _check_channels(image, "rgb_to_lab")
    xyz = _apply_matrix(_matrix(_RGB_TO_XYZ, image), srgb_to_linear(image))
    white = torch.tensor(WHITE_D65, dtype=image.dtype, device=image.device).view(3, 1, 1)
    xyz = xyz / white
    f = torch.where(xyz > _EPSILON, xyz.clamp(min=_EPSILON).pow(1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f.unbind(-3)
    lightness = 116 * fy - 16
    a = 500 * (fx - fy)
    b = 200 * (fy - fz)
    return torch.stack([lightness, a, b], dim=-3)


def lab_to_rgb(image: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE L*a*b* (D65) -> sRGB.

    Args:
        image: L*a*b*, shape ``(*, 3, H, W)``: L in [0, 100], a, b about [-128, 127].
        clip: clamp the result to [0, 1] (L*a*b* colours outside the sRGB gamut
            give values outside it otherwise).

    Returns:
        sRGB, shape ``(*, 3, H, W)``, float (in [0, 1] when ``clip``).
    """
    _check_channels(image, "lab_to_rgb")
    rgb, _ = _lab_to_srgb_unclipped(image)
    return rgb.clamp(0, 1) if clip else rgb


def _lab_to_srgb_unclipped(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L*a*b* ``(*, 3, H, W)`` -> (sRGB not clipped, ``(*, H, W)`` bool: Z* is not negative)."""
    lightness, a, b = image.unbind(-3)
    fy = (lightness + 16) / 116
    fx = fy + a / 500
    fz = fy - b / 200
    z_real = fz >= 0
    fz = fz.clamp(min=0)  # as scikit-image: negative Z is not a colour
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f > 0.2068966, f.clamp(min=0.2068966).pow(3), (f - 16 / 116) / _KAPPA)
    white = torch.tensor(WHITE_D65, dtype=image.dtype, device=image.device).view(3, 1, 1)
    xyz = xyz * white
    inverse = torch.linalg.inv(_matrix(_RGB_TO_XYZ, image).double()).to(image.dtype)
    return linear_to_srgb(_apply_matrix(inverse, xyz)), z_real


def in_srgb_gamut(image: torch.Tensor, tolerance: float = GAMUT_TOLERANCE) -> torch.Tensor:
    """Which L*a*b* colours ``(*, 3, H, W)`` sRGB can show: ``(*, H, W)`` bool.

    A colour is inside when its sRGB values are in [0, 1] (within ``tolerance``) and
    its Z is not negative.
    """
    _check_channels(image, "in_srgb_gamut")
    return _inside(*_lab_to_srgb_unclipped(image), tolerance)


def _inside(rgb: torch.Tensor, z_real: torch.Tensor, tolerance: float) -> torch.Tensor:
    """``(*, H, W)`` bool from :func:`_lab_to_srgb_unclipped`'s results (:func:`in_srgb_gamut`)."""
    return ((rgb >= -tolerance) & (rgb <= 1 + tolerance)).all(dim=-3) & z_real


def _fit_colours(colours: torch.Tensor, steps: int, tolerance: float) -> torch.Tensor:
    """L*a*b* colours ``(n, 3)`` outside the gamut -> the same with a*, b* scaled to its edge."""
    as_image = colours.T.unsqueeze(-1)  # (3, n, 1)
    low = torch.zeros(colours.shape[0], dtype=colours.dtype, device=colours.device)
    high = torch.ones_like(low)
    for _ in range(steps):
        middle = (low + high) / 2
        scale = torch.cat([torch.ones_like(middle)[None], middle.expand(2, -1)]).unsqueeze(-1)
        inside = _inside(*_lab_to_srgb_unclipped(as_image * scale), tolerance)[:, 0]
        low = torch.where(inside, middle, low)
        high = torch.where(inside, high, middle)
    return colours * torch.stack([torch.ones_like(low), low, low], dim=-1)


def fit_chroma_to_gamut(image: torch.Tensor, steps: int = 12,
                        tolerance: float = GAMUT_TOLERANCE) -> torch.Tensor:
    """Bring L*a*b* colours into the sRGB gamut by lowering their chroma, keeping L* and hue.

    A colorizer knows L* exactly (it is the input) and only guesses a*, b*. Clipping
    an out-of-gamut guess channel by channel in sRGB changes its lightness and hue;
    here a* and b* are scaled down together instead, by the largest factor in [0, 1]
    that puts the colour inside (found by bisection to within ``2 ** -steps``; the
    neutral grey of each L* in [0, 100] is always inside). Colours already inside are
    returned unchanged. Not differentiable: for inference and evaluation.

    Args:
        image: L*a*b* ``(*, 3, H, W)``, L* in [0, 100].

    Returns:
        L*a*b* of the same shape, every colour inside (up to ``tolerance``).
    """
    _check_channels(image, "fit_chroma_to_gamut")
    outside = ~in_srgb_gamut(image, tolerance)
    if not bool(outside.any()):
        return image
    fitted = image.movedim(-3, -1).clone()
    fitted[outside] = _fit_colours(fitted[outside], steps, tolerance)
    return fitted.movedim(-1, -3)


def lab_to_rgb_fitted(image: torch.Tensor, steps: int = 12,
                      tolerance: float = GAMUT_TOLERANCE) -> torch.Tensor:
    """``lab_to_rgb(fit_chroma_to_gamut(image))`` converting each colour once.

    Only the colours outside the gamut are fitted and converted a second time.
    Returns sRGB ``(*, 3, H, W)`` in [0, 1].
    """
    _check_channels(image, "lab_to_rgb_fitted")
    rgb, z_real = _lab_to_srgb_unclipped(image)
    outside = ~_inside(rgb, z_real, tolerance)
    if bool(outside.any()):
        fitted = _fit_colours(image.movedim(-3, -1)[outside], steps, tolerance)
        rgb = rgb.movedim(-3, -1).clone()
        rgb[outside] = _lab_to_srgb_unclipped(fitted.T.unsqueeze(-1))[0][:, :, 0].T
        rgb = rgb.movedim(-1, -3)
    return rgb.clamp(0, 1)


def lab_to_model(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split L*a*b* ``(*, 3, H, W)`` into the model's input and target.

    Returns:
        ``(l, ab)``: ``l = L / 50 - 1`` of shape ``(*, 1, H, W)`` in [-1, 1] and
        ``ab = ab / 128`` of shape ``(*, 2, H, W)`` in about [-1, 1].
    """
    _check_channels(lab, "lab_to_model")
    return lab[..., :1, :, :] / L_SCALE - 1, lab[..., 1:, :, :] / AB_SCALE


def model_to_lab(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`lab_to_model`: ``(*, 1, H, W)`` and ``(*, 2, H, W)`` -> L*a*b*."""
    if l.shape[-3] != 1 or ab.shape[-3] != 2 or l.shape[-2:] != ab.shape[-2:]:
        raise ValueError(
            f"model_to_lab: expected l (*, 1, H, W) and ab (*, 2, H, W) of one size, "
            f"got {tuple(l.shape)} and {tuple(ab.shape)}"
        )
    return torch.cat([(l + 1) * L_SCALE, ab * AB_SCALE], dim=-3)


def rgb_to_model(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB ``(*, 3, H, W)`` in [0, 1] -> model ``(l, ab)`` (see :func:`lab_to_model`)."""
    return lab_to_model(rgb_to_lab(rgb))


def model_to_rgb(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Model ``(l, ab)`` -> sRGB ``(*, 3, H, W)`` in [0, 1].

    Colours outside the sRGB gamut lose chroma until they fit (:func:`fit_chroma_to_gamut`:
    L*, the known input, is kept); real colours pass through unchanged.
    """
    return lab_to_rgb_fitted(model_to_lab(l, ab))


def grey_to_model_l(grey: torch.Tensor) -> torch.Tensor:
    """Grey sRGB values ``(*, 1, H, W)`` in [0, 1] -> model ``l`` (their L* scaled to [-1, 1]).

    A grey pixel ``g`` is the sRGB colour ``(g, g, g)``, whose L* depends on ``g`` only.
    """
    if grey.shape[-3] != 1:
        raise ValueError(f"grey_to_model_l: expected (*, 1, H, W), got {tuple(grey.shape)}")
    lab = rgb_to_lab(grey.expand(*grey.shape[:-3], 3, *grey.shape[-2:]))
    return lab[..., :1, :, :] / L_SCALE - 1


def l_to_grey(l: torch.Tensor) -> torch.Tensor:
    """Model ``l`` ``(*, 1, H, W)`` in [-1, 1] -> the neutral grey sRGB value of that L*, in [0, 1].

    The colour with this L* and a* = b* = 0 is ``(g, g, g)`` with ``g`` returned here
    (computed on one channel: a third of :func:`model_to_rgb`'s work).
    """
    if l.shape[-3] != 1:
        raise ValueError(f"l_to_grey: expected (*, 1, H, W), got {tuple(l.shape)}")
    fy = ((l + 1) * L_SCALE + 16) / 116
    y = torch.where(fy > 0.2068966, fy.clamp(min=0.2068966).pow(3), (fy - 16 / 116) / _KAPPA)
    return linear_to_srgb(y).clamp(0, 1)


class RgbToLab(nn.Module):
    """Module form of :func:`rgb_to_lab`: ``(*, 3, H, W)`` sRGB [0, 1] -> L*a*b*."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab(image)


class LabToRgb(nn.Module):
    """Module form of :func:`lab_to_rgb`: L*a*b* ``(*, 3, H, W)`` -> sRGB [0, 1]."""

    def __init__(self, clip: bool = True):
        super().__init__()
        self.clip = clip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb(image, clip=self.clip)


def rgb_to_lab_np(rgb: np.ndarray) -> np.ndarray:
    """Numpy helper: ``(H, W, 3)`` sRGB (uint8 0..255, uint16 0..65535 or float 0..1) -> float32 L*a*b*."""
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"rgb_to_lab_np: expected an (H, W, 3) array, got {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)
    return rgb_to_lab(t).permute(1, 2, 0).numpy()


def lab_to_rgb_np(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """Numpy helper: ``(H, W, 3)`` L*a*b* -> float32 sRGB ``(H, W, 3)`` (clipped to [0, 1])."""
    arr = np.asarray(lab)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"lab_to_rgb_np: expected an (H, W, 3) array, got {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)
    return lab_to_rgb(t, clip=clip).permute(1, 2, 0).numpy()
