"""Small, seeded fakes for the colorize tests: tiny model files and GeoTIFFs made in code.

Shared by tests/infer and tests/cli (which imports this module by path).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geocolor.io.modelfile import LoadedModel, ModelCard, save_model
from geocolor.models.unet import UNetGenerator

#: U-Net small enough for 64-px tiles: 4 levels -> sides must be multiples of 16.
TINY_ARGS = {"in_channels": 1, "out_channels": 3, "ngf": 4, "levels": 4, "norm": "instance", "dropout": 0.0}
DB_VV = {"scheme": "db_clip", "polarisation": "VV", "db_min": -25.0, "db_max": 0.0}
AMP_VH = {"scheme": "amplitude_percentile", "polarisation": "VH", "percentile": 99.0}
CRS_UTM = CRS.from_epsg(32633)
TRANSFORM = from_origin(400000.0, 5000000.0, 10.0, 10.0)


def save_tiny_sar_model(path: Path, scaling: dict[str, Any] = DB_VV, tile_size: int = 64, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    network = UNetGenerator(**TINY_ARGS)
    card = ModelCard(kind="sar", arch="unet", arch_args=dict(TINY_ARGS),
                     input={"sar_scaling": dict(scaling), "tile_size": tile_size})
    return save_model(path, network, card)


def save_tiny_semantic_model(path: Path) -> Path:
    from geocolor.models.registry import build_model

    torch.manual_seed(0)
    args = {"n_classes": 2, "base": 4}
    network = build_model("segcolor-unet", **args)
    card = ModelCard(kind="semantic", arch="segcolor-unet", arch_args=args, input={"image_size": 64},
                     classes=["background", "object"])
    return save_model(path, network, card)


def smooth_field(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish random texture in [0, 1] (sums of low-frequency sinusoids plus speckle)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    field = np.zeros((height, width), dtype=np.float32)
    for _ in range(6):
        fy, fx = rng.uniform(0.005, 0.05, 2)
        phase = rng.uniform(0, 2 * np.pi)
        field += np.sin(fy * yy + fx * xx + phase).astype(np.float32)
    field = (field - field.min()) / (field.max() - field.min() + 1e-6)
    speckle = rng.gamma(4.0, 0.25, (height, width)).astype(np.float32)
    return np.clip(field * speckle, 0, 1.5) / 1.5


def db_scene(height: int, width: int, seed: int = 0, bands: int = 2) -> np.ndarray:
    """(bands, H, W) float32 sigma0 in dB in about [-25, 0] (VH 6 dB darker)."""
    base = -25.0 + 24.5 * smooth_field(height, width, seed)
    return np.stack([base - 6.0 * i for i in range(bands)]).astype(np.float32)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: CRS | None = CRS_UTM,
    transform: Any = TRANSFORM,
    gcps: list[GroundControlPoint] | None = None,
    nodata: float | None = None,
    descriptions: tuple[str, ...] | None = None,
    driver: str = "GTiff",
    **profile: Any,
) -> Path:
    """Write (bands, H, W) ``data``; georeferenced by CRS+transform, by GCPs, or (crs=None) not at all."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    kwargs: dict[str, Any] = {
        "driver": driver,
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name if data.dtype != np.complex64 else "complex64",
        **profile,
    }
    if nodata is not None:
        kwargs["nodata"] = nodata
    if crs is not None and gcps is None:
        kwargs.update(crs=crs, transform=transform)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **kwargs) as ds:
            ds.write(data)
            if gcps is not None:
                ds.gcps = (gcps, CRS.from_epsg(4326))
            if descriptions:
                ds.descriptions = descriptions
    return path


def corner_gcps(height: int, width: int) -> list[GroundControlPoint]:
    return [
        GroundControlPoint(row=0, col=0, x=10.0, y=50.0, z=0.0, id="1"),
        GroundControlPoint(row=0, col=width, x=10.5, y=50.1, z=0.0, id="2"),
        GroundControlPoint(row=height, col=0, x=9.9, y=49.6, z=0.0, id="3"),
        GroundControlPoint(row=height, col=width, x=10.4, y=49.7, z=0.0, id="4"),
    ]


class ChannelCopy(torch.nn.Module):
    """A 'model' whose colours are its input: output = input on all three channels."""

    multiple = 16

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.tiles = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.tiles += x.shape[0]
        return x.repeat(1, 3, 1, 1)


def copy_model(network: torch.nn.Module | None = None) -> LoadedModel:
    """A loaded SAR 'model' (VV dB card, 64-px tiles) whose network is ``network`` or a
    :class:`ChannelCopy`: its colours are its input, so outputs can be checked exactly."""
    card = ModelCard(kind="sar", arch="unet", arch_args=dict(TINY_ARGS),
                     input={"sar_scaling": dict(DB_VV), "tile_size": 64})
    return LoadedModel(card=card, network=network or ChannelCopy())


class TileNormalised(ChannelCopy):
    """Like instance norm: each tile's output is its input minus the tile mean, so tiles differ in tone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.tiles += x.shape[0]
        return (x - x.mean(dim=(2, 3), keepdim=True)).clamp(-1, 1).repeat(1, 3, 1, 1)


def rpc_scene(path: Path, height: int, width: int) -> Path:
    """A dB scene georeferenced by RPCs only: rows north to south over 44.9-45.1 N, columns
    west to east over 13.35-13.65 E."""
    from rasterio.rpc import RPC

    def poly(**terms: float) -> list[float]:  # RPC00B terms: 1, L(on), P (lat), H, ...
        coeffs = [0.0] * 20
        for name, value in terms.items():
            coeffs[("one", "lon", "lat").index(name)] = value
        return coeffs

    rpcs = RPC(height_off=0.0, height_scale=1.0, lat_off=45.0, lat_scale=0.1, long_off=13.5,
               long_scale=0.15, line_off=height / 2, line_scale=height / 2,
               samp_off=width / 2, samp_scale=width / 2, line_num_coeff=poly(lat=-1.0),
               line_den_coeff=poly(one=1.0), samp_num_coeff=poly(lon=1.0),
               samp_den_coeff=poly(one=1.0))
    src = write_raster(path, db_scene(height, width, bands=1), crs=None, descriptions=("VV",))
    with rasterio.open(src, "r+") as ds:
        ds.rpcs = rpcs
    return src
