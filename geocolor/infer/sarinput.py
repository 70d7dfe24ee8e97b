"""Turn any SAR raster into the unit scale a model was trained on.

A SAR model's card records how its training SAR was scaled
(:class:`~geocolor.data.sarscale.SarScaling`). A scene arrives in one of these
units (``--input-scale``):

``db``         sigma0 in decibels (float, mostly negative)
``linear``     sigma0 intensity (float, >= 0)
``amplitude``  square root of intensity
``dn``         GRD digital numbers (integers; an uncalibrated amplitude)
``scaled``     already scaled like the training data: 8-bit ``round(255 u)`` (or float in [0, 1])

and :class:`SarInput` converts it: ``db_clip`` needs dB (``10 log10`` of
intensity, ``20 log10`` of amplitude or DN); ``amplitude_percentile`` needs
amplitude (``sqrt`` of intensity, ``10^(dB/20)``) divided by the scene's
percentile, which is computed once per scene, never per tile, from full-resolution
pixels: a fixed, evenly spread set of 256-px cells (:func:`sample_windows`). A
decimated read would be served from the file's overviews when it has them, and
AVERAGE overviews smooth the bright tail away, so the colours would depend on how
the file was written.

Invalid pixels (nodata): the band's GDAL mask (declared nodata value, internal
mask or alpha band), non-finite values, and, when the file declares no nodata at
all, exact zeros (the zero border of GRD products). 8-bit ``scaled`` images have
no zero rule: 0 is a legitimate dark pixel there. In a Sentinel-1 product made before IPF
2.90, also its border noise (:class:`~geocolor.io.s1product.BorderNoise`, marked by
:class:`BorderMask` where the reader has the pixels' places). The scene statistic is taken
with it: the noise is dark, far below the bright percentile the statistic is.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import re
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.windows import Window

from geocolor.data.paired import scaling_named_by
from geocolor.data.sarscale import SarScaling, differing_fields, preset
from geocolor.errors import RasterError, UsageError
from geocolor.io.raster import RASTER_ERRORS, georeference_kind, open_raster, read_failure
from geocolor.io.s1product import BorderNoise, SigmaNought, polarisation_named
from geocolor.io.source import RasterSource, source_path

log = logging.getLogger("geocolor.infer")

INPUT_SCALES = ("auto", "db", "linear", "amplitude", "dn", "scaled")
POLARISATIONS = ("VV", "VH", "HH", "HV")
#: Longest side of the decimated read used to tell grey RGB images from colour ones.
SAMPLE_SIDE = 1024
#: Side of one full-resolution sample cell, and how many cells at most the scene statistic
#: and unit detection read (64 cells of 256 px: 4.2 M pixels, 17 MB as float32).
SAMPLE_CELL = 256
SAMPLE_CELLS = 64

def _band_polarisation(ds: rasterio.DatasetReader, index: int) -> str | None:
    """Polarisation named by band ``index``'s description or tags."""
    pol = polarisation_named(ds.descriptions[index - 1])
    if pol:
        return pol
    tags = ds.tags(index)
    for key in ("POLARISATION", "POLARIZATION", "polarisation", "polarization"):
        if key in tags:
            return polarisation_named(tags[key])
    return None


def data_bands(ds: rasterio.DatasetReader) -> list[int]:
    """Band indexes that hold data (alpha bands left out: GDAL uses them as the mask)."""
    return [i for i in ds.indexes if ds.colorinterp[i - 1] != ColorInterp.alpha]


def is_plain_image(ds: rasterio.DatasetReader, path: RasterSource) -> bool:
    """An ordinary 8-bit picture: PNG/JPEG, or an 8-bit TIFF without any georeference."""
    suffix = source_path(path).suffix.lower()
    if ds.driver in ("PNG", "JPEG") or suffix in (".png", ".jpg", ".jpeg"):
        return True
    return georeference_kind(ds) == "none" and ds.dtypes[0] == "uint8"


_SAR_NAME_RE = re.compile(r"(?:^|[^a-z0-9])(s1|sar)(?:[^a-z0-9]|$)")


def sar_name_hint(path: RasterSource) -> str | None:
    """The SAR marker in ``path``'s name or its folder's (``_s1_``, ``s1/``, ``sar``), if any."""
    parts = [part.lower() for part in source_path(path).parts[-2:]]
    for part in reversed(parts):
        match = _SAR_NAME_RE.search(part)
        if match:
            return part if len(part) <= 40 else match.group(0)
    return None


def is_grey_image(ds: rasterio.DatasetReader) -> bool:
    """One 8-bit data band, or 3-4 bands whose colour channels are equal."""
    bands = data_bands(ds)
    if ds.dtypes[0] != "uint8":
        return False
    if len(bands) == 1:
        return True
    return len(bands) in (3, 4) and _channels_equal(ds, bands)


def select_band(
    ds: rasterio.DatasetReader, path: RasterSource, polarisation: str, band: str | int | None,
    plain: bool,
) -> tuple[int, str]:
    """The 1-based band to colorize and a label for logs.

    Args:
        polarisation: the model card's polarisation (used when ``band`` is None).
        band: ``--band``: a 1-based index or a description/polarisation name.
        plain: the file is a plain 8-bit image (grey stored as RGB is accepted).
    """
    bands = data_bands(ds)
    if band is not None:
        text = str(band).strip()
        if text.isdigit():
            index = int(text)
            if not 1 <= index <= ds.count:
                raise UsageError(f"{path}: --band {index} out of range (the file has {ds.count} band(s))")
            return index, f"band {index}"
        for i in ds.indexes:
            desc = ds.descriptions[i - 1] or ""
            if desc.lower() == text.lower() or _band_polarisation(ds, i) == text.upper():
                return i, f"band {i} '{desc or text.upper()}'"
        described = ", ".join(f"{i}: {ds.descriptions[i - 1] or '-'}" for i in ds.indexes)
        raise RasterError(f"{path}: no band described as {text!r} (bands {described}); pass --band N")
    want = polarisation.upper()
    if plain and len(bands) in (3, 4) and ds.dtypes[0] == "uint8":
        if len(bands) == 3 and not _channels_equal(ds, bands):
            raise RasterError(
                f"{path}: is a colour image; a SAR model colorizes grey SAR images "
                "(use a semantic model for photos, or --band N to use one channel)"
            )
        return bands[0], "band 1 (grey stored as RGB)"
    if len(bands) == 1:
        index = bands[0]
        named = None if ds.count > 1 else polarisation_named(source_path(path).stem)
        pol = _band_polarisation(ds, index) or named
        if pol and pol != want:
            raise RasterError(
                f"{path}: holds {pol} polarisation, but the model was trained on {want} "
                f"(pass --band {index} to use it anyway)"
            )
        desc = ds.descriptions[index - 1]
        return index, f"band {index}" + (f" '{desc}'" if desc else "")
    # several bands (VV, VH; or VV, VH, angle as Earth Engine exports them): the one band
    # described as the model's polarisation
    matches = [i for i in bands if _band_polarisation(ds, i) == want]
    if len(matches) == 1:
        i = matches[0]
        return i, f"band {i} '{ds.descriptions[i - 1] or want}'"
    described = ", ".join(f"{i}: {ds.descriptions[i - 1] or '-'}" for i in bands)
    if matches:
        raise RasterError(
            f"{path}: {len(matches)} of its bands are described as {want} (bands {described}); "
            "pass --band N"
        )
    if len(bands) == 2:
        raise RasterError(
            f"{path}: none of its 2 bands is described as {want}, the polarisation the model "
            f"was trained on (bands {described}); pass --band N or --band NAME"
        )
    raise RasterError(
        f"{path}: has {len(bands)} bands, none described as {want}, the polarisation the model "
        f"was trained on (bands {described}); a SAR model takes a 1-band raster or bands told "
        "apart by their descriptions (VV, VH), or pass --band N"
    )


def _channels_equal(ds: rasterio.DatasetReader, bands: list[int]) -> bool:
    """Whether an RGB image is grey (all channels equal) on a decimated read."""
    shape = _sample_shape(ds)
    data = ds.read(bands[:3], out_shape=(3, *shape))
    return bool(np.array_equal(data[0], data[1]) and np.array_equal(data[0], data[2]))


def _sample_shape(ds: rasterio.DatasetReader) -> tuple[int, int]:
    scale = max(ds.width, ds.height) / SAMPLE_SIDE
    if scale <= 1:
        return ds.height, ds.width
    return max(1, round(ds.height / scale)), max(1, round(ds.width / scale))


def sample_windows(height: int, width: int, cell: int = SAMPLE_CELL, cells: int = SAMPLE_CELLS) -> list[Window]:
    """Full-resolution windows for scene statistics: the whole scene when it is small, else
    a lattice of at most ``cells`` windows of ``cell`` x ``cell`` pixels spread evenly over it.

    Depends only on the scene's size (not on its blocks or overviews), so the same
    pixels always give the same statistic. The windows start at whole multiples of ``cell``:
    each lies inside one block of a file tiled in blocks of 256, 512 or 1024 pixels (a COG's)
    or in one band of strips, so reading them decodes (or, for a URL, fetches) at most
    ``cells`` blocks. Centred windows would straddle four blocks each: on an 8192^2 COG
    with 512-px blocks, every block of the scene.
    """
    if height * width <= cell * cell * cells:
        return [Window(0, 0, width, height)]
    rows = max(1, height // cell)
    cols = max(1, width // cell)
    n_rows = max(1, min(rows, round(math.sqrt(cells * height / width))))
    n_cols = max(1, min(cols, cells // n_rows))
    n_rows = max(1, min(rows, cells // n_cols))
    h, w = min(cell, height), min(cell, width)

    def starts(n: int, side: int, size: int) -> list[int]:
        last = (side - size) // cell * cell
        return [min(last, max(0, int((i + 0.5) * side / n - size / 2) // cell * cell))
                for i in range(n)]

    return [Window(x, y, w, h) for y in starts(n_rows, height, h) for x in starts(n_cols, width, w)]


def read_sample(
    ds: rasterio.DatasetReader, index: int, read_mask: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Band ``index`` at full resolution on :func:`sample_windows`, flattened: (values, mask or None)."""
    values, masks = [], []
    for window in sample_windows(ds.height, ds.width):
        values.append(ds.read(index, window=window).ravel())
        if read_mask:
            masks.append(ds.read_masks(index, window=window).ravel())
    return np.concatenate(values), (np.concatenate(masks) if read_mask else None)


def _metadata_hint(ds: rasterio.DatasetReader, index: int) -> str | None:
    """A unit named in the band's description, units or tags (``db`` / ``linear`` / ``amplitude``)."""
    texts = [ds.descriptions[index - 1] or "", ds.units[index - 1] or ""]
    texts += [f"{k} {v}" for k, v in ds.tags(index).items()]
    texts += [f"{k} {v}" for k, v in ds.tags().items() if k.upper() not in ("AREA_OR_POINT",)]
    text = " ".join(texts).lower()
    if re.search(r"(?<![a-z])db(?![a-z])|decibel", text):
        return "db"
    if "amplitude" in text:
        return "amplitude"
    if re.search(r"linear|intensity|power", text):
        return "linear"
    return None


@dataclass(frozen=True)
class SarInput:
    """How one scene's band is read, masked and converted to the model's unit scale."""

    path: RasterSource
    band: int
    band_label: str
    scale: str
    scale_reason: str
    scaling: SarScaling
    reference: float | None
    zero_is_nodata: bool
    read_mask: bool
    #: A Sentinel-1 product's sigmaNought table, for a dB model given its digital numbers:
    #: the conversion then depends on each pixel's place (``rows``, ``cols`` below).
    calibration: SigmaNought | None = None
    #: A Sentinel-1 product's border noise to mask (made before IPF 2.90), or None.
    border: BorderNoise | None = None

    @property
    def may_have_nodata(self) -> bool:
        """Whether any pixel can be invalid (the output then gets a mask)."""
        return (self.read_mask or self.zero_is_nodata or self.scale != "scaled"
                or self.border is not None)

    def valid(self, data: np.ndarray, gdal_mask: np.ndarray | None) -> np.ndarray:
        """Boolean validity of ``data`` (see module docstring)."""
        tests = [] if gdal_mask is None else [gdal_mask > 0]
        if data.dtype.kind == "f":
            tests.append(np.isfinite(data))
        if self.zero_is_nodata:
            tests.append(data != 0)
        if not tests:
            return np.ones(data.shape, dtype=bool)
        valid = tests[0]
        for test in tests[1:]:
            valid &= test
        return valid

    def to_unit(
        self, data: np.ndarray, rows: np.ndarray | None = None, cols: np.ndarray | None = None
    ) -> np.ndarray:
        """Values in the scene's unit -> the model's unit scale [0, 1] (float32, ``data``'s shape).

        8- and 16-bit integers (GRD digital numbers, 8-bit PNGs) are looked up in a table of
        all their values made by :meth:`convert` itself (:func:`_look_up`): the same numbers,
        5-6x faster than the per-pixel arithmetic (a logarithm or a division) on a full-width
        row band.

        ``rows``, ``cols``: the scene's pixel coordinates of ``data``'s (H, W) rows and columns,
        needed with a :attr:`calibration` (sigma0 = DN^2 / A^2, A from the table).
        """
        if self.calibration is not None:
            return self._calibrated_unit(data, rows, cols)
        patterns = _bit_patterns(data)
        if patterns is None:
            return self.convert(data)
        return _look_up(_unit_table(self, data.dtype.str), patterns)

    def to_model(
        self, data: np.ndarray, valid: np.ndarray, rows: np.ndarray | None = None,
        cols: np.ndarray | None = None,
    ) -> np.ndarray:
        """Values in the scene's unit -> the model's input scale [-1, 1] (float32, ``data``'s
        shape), -1 where not ``valid`` (:meth:`valid`): ``2 * to_unit(data) - 1``, bit for bit
        (``rows``, ``cols`` as there).

        8- and 16-bit integers are looked up in a table of the final values (the invalid value
        at 0 when 0 is nodata), a few rows at a time so that numpy's index copy stays in the
        cache: one pass over the band instead of four.
        """
        patterns = None if self.calibration is not None else _bit_patterns(data)
        if patterns is not None:
            out = _look_up(_model_table(self, data.dtype.str), patterns)
            # GDAL's mask and the border noise can flag any value: the table alone cannot
            if self.read_mask or self.border is not None:
                np.copyto(out, np.float32(-1.0), where=~valid)
            return out
        band = self.to_unit(data, rows, cols) if self.calibration is not None else self.convert(data)
        band[~valid] = 0.0
        band *= np.float32(2.0)  # in place
        band -= np.float32(1.0)
        return band

    def _calibrated_unit(
        self, data: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None
    ) -> np.ndarray:
        """:meth:`to_unit` of digital numbers with the :attr:`calibration`: sigma0 in dB is
        ``10 log10 (DN^2 - N) - 20 log10 A`` (N the thermal noise, A the sigmaNought table, both
        at each pixel's place; without a noise annotation ``20 log10 DN - 20 log10 A``), then the
        model's dB scaling. Pixels at or below the noise get the bottom of the model's range."""
        if rows is None or cols is None or data.shape[-2:] != (len(rows), len(cols)):
            raise ValueError("internal error: calibrated input needs the pixels' rows and columns")
        calibration = self.calibration
        assert calibration is not None
        if calibration.noise is not None:
            db = data.astype(np.float32)  # a new array, made the noise-free power in place
            np.square(db, out=db)
            db -= calibration.noise.power(rows, cols)
            with np.errstate(divide="ignore", invalid="ignore"):
                db = _decibels(db, "linear")
        elif (patterns := _bit_patterns(data)) is not None:  # 20 log10 DN from a table
            db = _look_up(_db_table(self.scale, data.dtype.str), patterns)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = self._db(data.astype(np.float32, copy=False))
        db -= calibration.offset_db(rows, cols)
        np.nan_to_num(db, copy=False, nan=self.scaling.db_min)
        return self.scaling.unit_from_db(db, overwrite=True)

    def convert(self, data: np.ndarray) -> np.ndarray:
        """:meth:`to_unit` by arithmetic, for any dtype."""
        x = data.astype(np.float32, copy=False)
        if self.scale == "scaled":
            unit = x / np.float32(255.0) if data.dtype.kind in "ui" else x
            return np.clip(unit, 0.0, 1.0)
        # each step after the first works in place on one new float32 array (``data`` is kept)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.scaling.scheme == "db_clip":
                if self.scale == "db":
                    db = np.nan_to_num(x, nan=self.scaling.db_min, copy=x is data)
                else:
                    db = np.nan_to_num(self._db(x), nan=self.scaling.db_min, copy=False)
                return self.scaling.unit_from_db(db, overwrite=True)
            amplitude = np.nan_to_num(self._amplitude(x), nan=0.0, copy=False)
            return self.scaling.unit_from_amplitude(amplitude, self.reference, overwrite=True)

    def _db(self, x: np.ndarray) -> np.ndarray:
        """dB of intensity (``linear``) or of amplitude (``amplitude``, ``dn``), as a new array."""
        return _decibels(x, self.scale)

    def _amplitude(self, x: np.ndarray) -> np.ndarray:
        """Amplitude of ``x`` in the scene's unit, as a new array."""
        if self.scale == "db":
            amplitude = x / np.float32(20.0)
            return np.power(np.float32(10.0), amplitude, out=amplitude)
        amplitude = np.maximum(x, np.float32(0.0))
        return np.sqrt(amplitude, out=amplitude) if self.scale == "linear" else amplitude

    def describe(self) -> str:
        text = f"{self.band_label}, input scale {self.scale} ({self.scale_reason})"
        if self.calibration is not None:
            text += ", calibrated to sigma0 with the product's sigmaNought table"
            if self.calibration.noise is not None:
                text += ", thermal noise subtracted"
        if self.reference is not None:
            text += f", amplitude p{self.scaling.percentile:g} = {self.reference:.6g}"
        if self.border is not None:
            text += ", border noise masked"
        return text


class BorderMask:
    """Marks a product's border noise (:attr:`SarInput.border`) invalid in the bands a reader
    reads: the tested (co-polarised) measurement's pixels are the band's own when it is the
    colorized one, else read from it, only where a band reaches into the border.

    ``ds``: the open measurement being colorized. Use as a context manager (it may open the
    tested one).
    """

    def __init__(self, sar: SarInput, ds: rasterio.DatasetReader) -> None:
        self.border = sar.border
        self.shape = ds.height, ds.width
        self.band = sar.band
        self.tested: rasterio.DatasetReader | None = None
        self._open = contextlib.ExitStack()
        if self.border is not None and self.border.measurement != str(sar.path):
            self.tested = self._open.enter_context(open_raster(self.border.measurement))
            height, width = self.tested.height, self.tested.width
            if (height, width) != self.shape:
                self.close()
                raise RasterError(
                    f"{self.border.measurement}: {width} x {height} px, unlike {sar.path} "
                    f"({ds.width} x {ds.height}); the product looks damaged: download it again")
            self.band = 1

    def __enter__(self) -> BorderMask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.tested = None
        self._open.close()

    def apply(self, valid: np.ndarray, data: np.ndarray, row0: int, col0: int) -> None:
        """Clear ``valid`` (in place) where the band ``data`` (the measurement's rows
        ``row0:``, columns ``col0:``; ``valid``'s shape) is border noise."""
        if self.border is None:
            return
        h, w = valid.shape
        for r0, r1, c0, c1 in self.border.strips(row0, row0 + h, col0, col0 + w, *self.shape):
            if self.tested is None:
                dn = data[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
            else:
                try:
                    dn = self.tested.read(self.band, window=Window(c0, r0, c1 - c0, r1 - r0))
                except RASTER_ERRORS as exc:
                    raise read_failure(self.border.measurement, exc) from None
            valid[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] &= ~self.border.is_noise(dn, r0, c0)


def _decibels(x: np.ndarray, scale: str) -> np.ndarray:
    """float32 ``x`` in dB as a new array: ``10 log10`` of intensity (``linear``), ``20 log10``
    of amplitude (``amplitude``, ``dn``); -inf at 0 and below."""
    db = np.maximum(x, np.float32(0.0))
    np.log10(db, out=db)
    db *= 10.0 if scale == "linear" else 20.0
    return db


def _every_value(dtype: str) -> np.ndarray:
    """Every value of a native 8- or 16-bit integer ``dtype``, in the order of its bit
    patterns read as unsigned (256 or 65,536 values): what the lookup tables are made of."""
    size = np.dtype(dtype).itemsize
    return np.arange(2 ** (8 * size), dtype=np.dtype(f"u{size}")).view(dtype)


@functools.lru_cache(maxsize=4)
def _db_table(scale: str, dtype: str) -> np.ndarray:
    """:func:`_decibels` of every value of a native 8- or 16-bit integer ``dtype``, indexed by
    bit pattern (float32)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        table = _decibels(_every_value(dtype).astype(np.float32), scale)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=8)
def _unit_table(sar: SarInput, dtype: str) -> np.ndarray:
    """:meth:`SarInput.convert` of every value of the native 8- or 16-bit integer ``dtype``,
    indexed by its bit pattern read as unsigned (float32, 256 or 65,536 entries)."""
    table = sar.convert(_every_value(dtype))
    table.flags.writeable = False
    return table


#: Values per ``np.take`` call in :func:`_look_up` (whole rows of them): numpy copies the
#: indices to int64 first, and 32K of them stay in the cache where a whole band does not
#: (per 256-row band: 2048 columns 0.78 -> 0.48 ms, 25,000 columns 17.0 -> 6.5 ms).
_LOOKUP_VALUES = 32768


def _bit_patterns(data: np.ndarray) -> np.ndarray | None:
    """``data`` viewed as unsigned bit patterns, the index into a table of all its values,
    when it is a native 8- or 16-bit integer array; else None (convert by arithmetic)."""
    if data.dtype.kind in "ui" and data.dtype.itemsize <= 2 and data.dtype.isnative:
        return data.view(np.dtype(f"u{data.dtype.itemsize}"))
    return None


def _look_up(table: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """``table[patterns]`` (``patterns``' shape, ``table``'s dtype), :data:`_LOOKUP_VALUES`
    values per ``np.take`` call.

    ``table`` holds a value for every bit pattern, so no index can be out of range: numpy's
    ``mode="wrap"`` never wraps here, and skips the bounds check of the default mode, which
    took a third of the time (a real GRD band of 256 x 25,000: 8.1 -> 5.2 ms).
    """
    if len(table) != 1 << (8 * patterns.dtype.itemsize):
        raise ValueError("internal error: the table must hold every bit pattern")
    if patterns.ndim < 2 or patterns.size == 0:
        return np.take(table, patterns, mode="wrap")
    out = np.empty(patterns.shape, dtype=table.dtype)
    rows = patterns.reshape(-1, patterns.shape[-1])
    flat = out.reshape(rows.shape)
    step = max(1, _LOOKUP_VALUES // rows.shape[1])
    for i in range(0, rows.shape[0], step):
        np.take(table, rows[i : i + step], out=flat[i : i + step], mode="wrap")
    return out


@functools.lru_cache(maxsize=8)
def _model_table(sar: SarInput, dtype: str) -> np.ndarray:
    """:meth:`SarInput.to_model` of every value of the native 8- or 16-bit integer ``dtype``
    (indexed by its bit pattern read as unsigned): ``2 * unit - 1`` in float32, and -1 (the
    model's value for unit 0, where invalid pixels go) at 0 when 0 is nodata."""
    table = _unit_table(sar, dtype) * np.float32(2.0)
    table -= np.float32(1.0)
    if sar.zero_is_nodata:
        table[0] = -1.0
    table.flags.writeable = False
    return table


def _detect_scale(ds: rasterio.DatasetReader, index: int, sample: np.ndarray) -> tuple[str, str]:
    dtype = np.dtype(ds.dtypes[index - 1])
    if dtype == np.uint8:
        return "scaled", "8-bit data is taken as already scaled like the model's training data"
    if dtype.kind in "ui":
        return "dn", f"{dtype.name} integers are GRD digital numbers (amplitude)"
    hint = _metadata_hint(ds, index)
    if hint:
        return hint, "named in the band's metadata"
    if sample.size and float(np.mean(sample < 0)) > 0.05:
        return "db", f"{dtype.name} with negative values"
    if sample.size and float(np.median(sample)) > 2.0:
        return "dn", f"{dtype.name} with large values (median {float(np.median(sample)):.3g})"
    return "linear", f"{dtype.name} without negative values; pass --input-scale amplitude if it is amplitude"


#: Share of a scene's pixels above a dB model's range beyond which the scene's unit is wrong:
#: calibrated sigma0 is rarely above 0 dB, while GRD digital numbers read as dB are 30-60.
SATURATED_SHARE = 0.95


def _check_db_range(sar: SarInput, values: np.ndarray, explicit: bool) -> None:
    """Refuse a scene (or, with an explicit ``--input-scale``, warn) when nearly all of its
    sampled pixels (``values``, valid ones) lie above a ``db_clip`` model's range: it would
    see a white scene."""
    with np.errstate(all="ignore"):
        share = float(np.mean(sar.convert(values) >= 1.0)) if values.size else 0.0
    if share <= SATURATED_SHARE:
        return
    why = " (GRD digital numbers are not calibrated)" if sar.scale == "dn" else ""
    message = (
        f"{sar.path}: {share:.0%} of its pixels lie above the model's range "
        f"({sar.scaling.db_min:g} to {sar.scaling.db_max:g} dB) once read as {sar.scale}{why}; "
        "give it calibrated sigma0 (e.g. SNAP: Calibration, then LinearToFromdB), use a model "
        "trained on GRD amplitude (the packaged one), or pass the right --input-scale"
    )
    if not explicit:
        raise RasterError(message)
    log.warning("%s", message)


#: Highest median of a scene that ``--input-scale db`` accepts: sigma0 in dB lies mostly
#: between -30 and +5 (bright towns reach +10 here and there, not a scene's middle).
DB_MEDIAN_MAX = 10.0
#: Share of a float scene's pixels that may lie outside [0, 1] for ``--input-scale scaled``.
SCALED_OUTSIDE_MAX = 0.01


def _check_given_scale(sar: SarInput, values: np.ndarray) -> None:
    """Refuse an explicit ``--input-scale`` that the sampled pixels (``values``, valid ones)
    cannot be in: dB whose median is above :data:`DB_MEDIAN_MAX`, or float ``scaled`` values
    outside [0, 1]. (``dn``, ``linear`` and ``amplitude`` fail later, on the statistic.)"""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if not finite.size:
        return
    if sar.scale == "db" and (median := float(np.median(finite))) > DB_MEDIAN_MAX:
        raise RasterError(
            f"{sar.path}: --input-scale db, but the median of its values is {median:.4g}; sigma0 "
            f"in dB lies mostly below 0 (wrong --input-scale? leave it out to detect the unit)")
    if sar.scale == "scaled" and values.dtype.kind == "f":
        outside = float(np.mean((finite < 0) | (finite > 1)))
        if outside > SCALED_OUTSIDE_MAX:
            raise RasterError(
                f"{sar.path}: --input-scale scaled, but {outside:.0%} of its values lie outside "
                f"0 to 1 ({float(finite.min()):.4g} to {float(finite.max()):.4g}) (wrong "
                "--input-scale? leave it out to detect the unit)")


#: (chip scaling, model scaling) pairs already warned about: a folder of chips gets one warning.
_WARNED_SCALINGS: set[tuple[str, SarScaling]] = set()


def _warn_if_named_otherwise_scaled(path: RasterSource, scaling: SarScaling) -> None:
    """Warn, once per process and model scaling, when an 8-bit chip taken as scaled like the
    model's training data is named like data scaled otherwise
    (:func:`~geocolor.data.paired.scaling_named_by`): a Kaggle Sentinel12 chip (VV dB) given
    to a model trained on VH amplitude comes out in wrong colours without any other sign."""
    name = scaling_named_by(source_path(path))
    if name is None or (name, scaling) in _WARNED_SCALINGS:
        return
    chip = preset(name)
    differs = differing_fields(scaling.to_dict(), chip)
    if not differs:
        return
    _WARNED_SCALINGS.add((name, scaling))
    log.warning(
        "%s: named like a Kaggle Sentinel12 chip, so scaled as %r (%s), but the model was trained "
        "on %s; their %s differ and the colours will be wrong. Use a model trained on such chips "
        "(geocolor train sar DATA), or pass --input-scale scaled if this chip is scaled like the "
        "model's training data (said once for all such chips)",
        path, name, chip.description,
        scaling.description or f"{scaling.scheme} {scaling.polarisation}", _and_list(differs),
    )


def _and_list(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def resolve_sar_input(
    ds: rasterio.DatasetReader,
    path: RasterSource,
    scaling: SarScaling,
    band: str | int | None = None,
    input_scale: str = "auto",
    calibration: SigmaNought | None = None,
    border: BorderNoise | None = None,
) -> SarInput:
    """Decide the band, the input unit, the nodata rules and the scene statistic.

    ``calibration``: a Sentinel-1 product's sigmaNought table of this measurement; used when
    the model wants dB and the scene holds digital numbers (sigma0 = DN^2 / A^2).
    ``border``: a product's border noise, masked where the pixels are read
    (:class:`BorderMask`).

    Raises:
        RasterError: complex (SLC) data, unusable bands or polarisation, an
            all-nodata scene, or a scene whose amplitude percentile is zero.
        UsageError: an unknown ``input_scale`` or an out-of-range ``--band``.
    """
    if input_scale not in INPUT_SCALES:
        raise UsageError(f"unknown input scale {input_scale!r}; choose one of {', '.join(INPUT_SCALES)}")
    if any(np.dtype(d).kind == "c" or d.startswith("complex") for d in ds.dtypes):
        raise RasterError(
            f"{path}: holds complex (SLC) data; geocolor colorizes detected GRD or calibrated "
            "sigma0 rasters (calibrate, detect and multilook the SLC first, e.g. with SNAP)"
        )
    plain = is_plain_image(ds, path)
    try:
        index, label = select_band(ds, path, scaling.polarisation, band, plain)
    except RASTER_ERRORS as exc:
        raise read_failure(path, exc) from None

    flags = ds.mask_flag_enums[index - 1]
    read_mask = MaskFlags.all_valid not in flags
    declared = ds.nodatavals[index - 1] is not None or read_mask
    try:
        data, mask = read_sample(ds, index, read_mask)
    except RASTER_ERRORS as exc:
        raise read_failure(path, exc) from None

    if input_scale == "auto":
        probe = data if mask is None else data[mask > 0]
        probe = probe[np.isfinite(probe)] if probe.dtype.kind == "f" else probe
        probe = probe[probe != 0] if not declared else probe
        scale, reason = _detect_scale(ds, index, probe)
    else:
        scale, reason = input_scale, "--input-scale"
    if scale == "scaled" and input_scale == "auto":
        _warn_if_named_otherwise_scaled(path, scaling)
    zero_is_nodata = not declared and scale != "scaled"
    calibrated = calibration if scaling.scheme == "db_clip" and scale == "dn" else None
    info = SarInput(path, index, label, scale, reason, scaling, None, zero_is_nodata, read_mask,
                    calibrated, border)
    valid = info.valid(data, mask)
    if not valid.any():
        raise RasterError(f"{path}: has no valid pixels (all nodata)")
    if input_scale != "auto":
        _check_given_scale(info, data[valid])
    if scaling.scheme == "db_clip" and scale != "scaled" and calibrated is None:
        _check_db_range(info, data[valid], explicit=input_scale != "auto")
    if scaling.scheme == "amplitude_percentile" and scale != "scaled":
        with np.errstate(over="ignore", invalid="ignore"):  # huge dB: inf, dropped below
            amplitude = info._amplitude(data[valid].astype(np.float32))
        amplitude = amplitude[np.isfinite(amplitude)]
        reference = float(np.percentile(amplitude, scaling.percentile)) if amplitude.size else 0.0
        if not reference > 0:
            raise RasterError(
                f"{path}: the scene's amplitude {scaling.percentile:g}th percentile is {reference:g}; "
                "cannot scale it (wrong --input-scale?)"
            )
        info = dataclasses.replace(info, reference=reference)
    return info
