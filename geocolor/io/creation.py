"""GDAL creation options (``--co KEY=VALUE``): checked against the output driver before any work.

GDAL itself does not refuse a bad creation option: an unknown key or value is a
warning and the file is written without it (``COMPRESS=FOO`` gives an
uncompressed file), and a bad number fails deep inside the writer with a message
that names a temporary file. :func:`check_creation_options` asks the driver
instead, once, on a tiny in-memory raster: GDAL validates the options against the
driver's creation option list (``DMD_CREATIONOPTIONLIST``) and then creates the
file, so both kinds of mistake surface as one :class:`~geocolor.errors.UsageError`.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path

from geocolor.errors import UsageError

#: Block sizes GDAL takes as positive whole numbers. It cannot be asked about bad values
#: of these: GDAL 3.10's COG driver aborts the whole process (``std::bad_alloc``) on
#: ``BLOCKSIZE=0``, ``-16`` or ``abc`` before it checks them, so they are checked here.
_BLOCK_SIZE_OPTIONS = ("BLOCKSIZE", "BLOCKXSIZE", "BLOCKYSIZE")

#: Output extension -> GDAL driver of the final file (GeoTIFF: COG unless ``cog=False``).
_DRIVERS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def output_driver(dst: Path, cog: bool = True) -> str:
    """The GDAL driver that writes ``dst``: ``COG``, ``GTiff``, ``PNG`` or ``JPEG``."""
    suffix = Path(dst).suffix.lower()
    if suffix in _DRIVERS:
        return _DRIVERS[suffix]
    return "COG" if cog else "GTiff"


class _Collect(logging.Handler):
    """Keeps GDAL's warnings (rasterio logs them on ``rasterio._env``) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _gdal_text(message: str, probe: str) -> str:
    text = message.strip().splitlines()[0] if message.strip() else message
    for prefix in ("CPLE_NotSupported in ", "CPLE_IllegalArg in ", "CPLE_AppDefined in "):
        text = text.removeprefix(prefix)
    return text.replace(f"{probe}: ", "").replace(f":{probe}", "").replace(probe, "the output")


@functools.lru_cache(maxsize=64)
def _probe(driver: str, options: tuple[tuple[str, str], ...], bands: int) -> str | None:
    """GDAL's first complaint about creating a small ``bands``-band uint8 raster, or None."""
    import numpy as np
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    ext = {"PNG": "png", "JPEG": "jpg"}.get(driver, "tif")
    probe = f"/vsimem/geocolor-co-probe-{uuid.uuid4().hex}.{ext}"
    collect = _Collect()
    gdal_log = logging.getLogger("rasterio._env")
    gdal_log.addHandler(collect)
    error = None
    try:
        with MemoryFile() as memfile:
            with memfile.open(driver="GTiff", width=64, height=64, count=bands, dtype="uint8",
                              crs="EPSG:4326", transform=rasterio.transform.from_origin(0, 1, 0.01, 0.01)) as ds:
                ds.write(np.zeros((bands, 64, 64), dtype=np.uint8))
            try:
                if driver == "GTiff":  # written block by block (rasterio.open), not copied
                    with rasterio.open(memfile.name) as src, rasterio.open(
                        probe, "w", **{**src.profile, "driver": "GTiff", **{k.lower(): v for k, v in options}}
                    ) as dst:
                        dst.write(src.read())
                else:
                    rasterio.shutil.copy(memfile.name, probe, driver=driver, **dict(options))
            except Exception as exc:  # noqa: BLE001 - rasterio's CPLE_* errors share no base class
                error = str(exc)
    finally:
        gdal_log.removeHandler(collect)
        with contextlib.suppress(Exception):  # nothing was created
            rasterio.shutil.delete(probe)
    complaints = [m for m in collect.messages if "option" in m.lower() or "not recognised" in m.lower()]
    if complaints:
        return _gdal_text(complaints[0], probe)
    return _gdal_text(error, probe) if error is not None else None


def check_creation_options(
    driver: str,
    options: Mapping[str, str],
    *,
    defaults: Mapping[str, str] | None = None,
    bands: int = 3,
) -> None:
    """Refuse creation options that ``driver`` does not accept, before any work is done.

    Args:
        driver: ``COG``, ``GTiff``, ``PNG`` or ``JPEG`` (see :func:`output_driver`).
        options: the user's options (``--co``), keys in any case.
        defaults: the options geocolor adds itself (the user's override them).
        bands: bands of the output (3, or 4 with an alpha band).

    Raises:
        UsageError: ``--co KEY=VALUE: the DRIVER driver refuses it (GDAL's reason)``.
    """
    user = {str(k).upper(): str(v) for k, v in options.items()}
    if not user:
        return
    _refuse_bad_block_sizes(user)
    merged = {**{str(k).upper(): str(v) for k, v in (defaults or {}).items()}, **user}
    complaint = _probe(driver, tuple(sorted(merged.items())), bands)
    if complaint is None:
        return
    named = [f"{k}={v}" for k, v in user.items() if k in complaint.upper()] or [
        f"{k}={v}" for k, v in user.items()]
    raise UsageError(f"--co {' '.join(named)}: the {driver} output driver refuses it ({complaint})")


def _refuse_bad_block_sizes(user: Mapping[str, str]) -> None:
    """A :class:`UsageError` for a block size that is not a positive whole number of pixels."""
    for key in _BLOCK_SIZE_OPTIONS:
        if key not in user:
            continue
        try:
            size = int(user[key])
        except ValueError:
            size = 0
        if size <= 0:
            raise UsageError(
                f"--co {key}={user[key]}: give a positive whole number of pixels, e.g. {key}=512"
            )
