"""Image metrics on tensors: L1, PSNR, SSIM, IoU, pixel accuracy.

Images are (B, C, H, W) floats in [0, 1] unless stated otherwise; each function
returns one value per image (shape (B,)) so callers can average per terrain or
overall. Use :func:`to_unit` to map model outputs from [-1, 1].
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, (B,)."""
    _check_pair(pred, target)
    return (pred - target).abs().flatten(1).mean(1)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, (B,)."""
    _check_pair(pred, target)
    return (pred - target).pow(2).flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, (B,); ``inf`` for identical images."""
    err = mse(pred.double(), target.double())
    return (10 * torch.log10(data_range**2 / err)).float()


def gaussian_blur(x: torch.Tensor, sigma: float, size: int, pad: str | None = None) -> torch.Tensor:
    """Separable Gaussian blur of each channel of (B, C, H, W) with a ``size`` x ``size`` window.

    ``pad`` None keeps the valid region only ((H - size + 1, W - size + 1) out); a
    :func:`torch.nn.functional.pad` mode such as ``"reflect"`` first pads by ``size // 2``
    (an odd ``size`` then gives the input's size back). Two 1-D passes give the same sums
    as the 2-D window and are ~10x faster (float64 grouped convolution is slow on CPU).

    The blur runs in ``x``'s dtype even inside an autocast region: SSIM subtracts squared
    local means from local means of squares, which bf16/fp16 convolutions would cancel into
    noise (under bf16 autocast one test batch's SSIM loss read 0.094 for 0.129, its gradient
    60 degrees off; three CUDA bf16 training runs with that loss diverged).
    """
    with torch.autocast(x.device.type, enabled=False):
        return gaussian_blur_under_autocast(x, sigma, size, pad)


def gaussian_blur_under_autocast(
    x: torch.Tensor, sigma: float, size: int, pad: str | None = None
) -> torch.Tensor:
    """:func:`gaussian_blur`'s operations in whatever autocast region is in force (what the
    SSIM loss did before its fix; ``benchmarks/bf16_ssim_divergence.py`` puts it back)."""
    coords = torch.arange(size, dtype=x.dtype, device=x.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    if pad is not None:
        x = F.pad(x, (size // 2,) * 4, mode=pad)
    n = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, size).expand(n, 1, 1, size).contiguous(), groups=n)
    return F.conv2d(x, g.view(1, 1, size, 1).expand(n, 1, size, 1).contiguous(), groups=n)


def ssim_map(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    dtype: torch.dtype = torch.float64,
    pad: str | None = None,
) -> torch.Tensor:
    """Local SSIM (Wang et al. 2004) of (B, C, H, W) images per channel, (B, C, H', W').

    Gaussian ``window_size`` window of ``sigma``, K1=0.01, K2=0.03. ``pad`` None keeps
    the valid region (H' = H - window_size + 1, as :func:`ssim` reports it); a
    :func:`torch.nn.functional.pad` mode such as ``"reflect"`` gives a map of the input's
    size (for local comparisons, e.g. per block).
    """
    _check_pair(pred, target)
    channels = pred.shape[1]
    if pad is None and min(pred.shape[-2:]) < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size}x{window_size}, got {tuple(pred.shape)}")
    x, y = pred.to(dtype), target.to(dtype)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # five blurs in one call
    blurred = gaussian_blur(stack, sigma, window_size, pad)
    mu_x, mu_y, exx, eyy, exy = blurred.split(channels, dim=1)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, (B,), averaged over channels.

    Gaussian 11x11 window, sigma 1.5, K1=0.01, K2=0.03, valid region only: the same
    definition as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False, data_range=1)``. Differentiable; ``dtype`` float32
    is for training losses (float64, the default, for reported figures).
    """
    s = ssim_map(pred, target, data_range, window_size, sigma, dtype)
    return s.flatten(1).mean(1).to(torch.float32)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int = -1) -> torch.Tensor:
    """(n_classes, n_classes) counts, rows = target class, columns = predicted class.

    ``pred`` and ``target`` are integer label maps of one shape; target pixels
    equal to ``ignore_index`` are left out.
    """
    keep = target != ignore_index
    t, p = target[keep].long(), pred[keep].long()
    idx = t * n_classes + p
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU of each class from a confusion matrix; NaN for a class absent from both."""
    conf = confusion.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def pixel_accuracy(confusion: torch.Tensor) -> float:
    """Fraction of counted pixels labelled correctly."""
    total = confusion.sum()
    return float(confusion.diag().sum() / total) if total > 0 else float("nan")


# ----------------------------------------------------------------------------- structure
#: ITU-R BT.601 luma weights (MATLAB's ``rgb2gray``, as in the GMSD reference code).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: GMSD's stability constant for luminance in [0, 255] (Xue et al. 2014).
GMSD_C = 170.0


def luma(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB (any range, any float dtype) -> (B, 1, H, W) BT.601 luma in the same range."""
    w = images.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (images * w).sum(1, keepdim=True)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB or (B, 1, H, W) grey in [0, 1] -> (B, 1, H, W) luma in [0, 255] (float64)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 1 or 3, H, W) images, got {tuple(images.shape)}")
    x = images.double() * 255.0
    return x if x.shape[1] == 1 else luma(x)


def prewitt_gradients(y: torch.Tensor, padding: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 2, H', W') x and y responses of the 3x3 Prewitt pair (each kernel / 3).

    ``H' = H + 2 padding - 2`` (zero padding), as ``F.conv2d`` with the kernels
    ``[[1, 0, -1]] * 3 / 3`` and their transpose would give. Written as differences
    of neighbours first, then sums, so that a flat region gives exactly 0 on every
    CPU (a convolution with the 1/3 kernels leaves ~1e-17 where fused multiply-adds
    round differently, e.g. with AVX-512).
    """
    if padding:
        y = F.pad(y, (padding, padding, padding, padding))
    across = y[..., :, :-2] - y[..., :, 2:]  # (B, 1, H, W - 2)
    down = y[..., :-2, :] - y[..., 2:, :]  # (B, 1, H - 2, W)
    gx = (across[..., :-2, :] + across[..., 1:-1, :] + across[..., 2:, :]) / 3
    gy = (down[..., :, :-2] + down[..., :, 1:-1] + down[..., :, 2:]) / 3
    return torch.cat([gx, gy], dim=1)


def prewitt_magnitude(y: torch.Tensor, padding: int) -> torch.Tensor:
    """Gradient magnitude of (B, 1, H, W) with the 3x3 Prewitt pair (each kernel / 3)."""
    return prewitt_gradients(y, padding).pow(2).sum(1, keepdim=True).sqrt()


def gmsd(pred: torch.Tensor, target: torch.Tensor, c: float = GMSD_C) -> torch.Tensor:
    """Gradient magnitude similarity deviation (Xue et al. 2014) per image, (B,); lower is better.

    As in the authors' reference code: both images (RGB or grey in [0, 1]) become
    luma in [0, 255] (BT.601 weights), are averaged over 2x2 blocks (downsampled by
    2), and get Prewitt gradient magnitudes ``m`` (3x3 kernels / 3, zero padding,
    same size). The similarity map is ``(2 m_p m_t + c) / (m_p^2 + m_t^2 + c)``
    with ``c = 170``, in (0, 1]; GMSD is its standard deviation (n - 1). 0 for
    identical images; it grows both when edges are lost (blur) and when edges the
    target lacks are invented. Images need at least 4x4 pixels.
    """
    _check_pair(pred, target)
    if min(pred.shape[-2:]) < 4:
        raise ValueError(f"GMSD needs images of at least 4x4, got {tuple(pred.shape)}")
    yp = F.avg_pool2d(luminance(pred), 2)
    yt = F.avg_pool2d(luminance(target), 2)
    mp, mt = prewitt_magnitude(yp, 1), prewitt_magnitude(yt, 1)
    quality = (2 * mp * mt + c) / (mp**2 + mt**2 + c)
    return quality.flatten(1).std(1).float()


def mean_gradient(images: torch.Tensor) -> torch.Tensor:
    """Mean Prewitt gradient magnitude of the luma (in [0, 255] units) per image, (B,).

    Full resolution, valid region only (no padding, so a flat image scores exactly
    0). Input: (B, 3 or 1, H, W) in [0, 1], at least 3x3.
    """
    if min(images.shape[-2:]) < 3:
        raise ValueError(f"gradients need images of at least 3x3, got {tuple(images.shape)}")
    return prewitt_magnitude(luminance(images), 0).flatten(1).mean(1).float()


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness per image, (B,); 0 for any grey image.

    On RGB in [0, 255]: ``rg = R - G``, ``yb = (R + G) / 2 - B``,
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``
    (population standard deviations). Input: (B, 3, H, W) in [0, 1]. About 0-15
    for muted images, above ~60 for very colourful ones.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB images, got {tuple(images.shape)}")
    x = images.double() * 255.0
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg, yb = r - g, (r + g) / 2 - b
    spread = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    centre = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return (spread + 0.3 * centre).float()


def sharpness_ratio(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`mean_gradient` of ``pred`` / that of ``target`` per image, (B,).

    1 = as much edge energy as the real image; < 1 blurrier; > 1 invented texture.
    ``inf`` (or NaN for 0/0) when the target is flat: over many images prefer the
    ratio of the means (what ``geocolor evaluate`` reports).
    """
    _check_pair(pred, target)
    return mean_gradient(pred) / mean_gradient(target)


def colourfulness_ratio(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`colourfulness` of ``pred`` / that of ``target`` per image, (B,); 0 for grey output."""
    _check_pair(pred, target)
    return colourfulness(pred) / colourfulness(target)
