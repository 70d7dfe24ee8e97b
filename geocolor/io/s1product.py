"""Sentinel-1 products as they are downloaded: a ``.SAFE`` folder, or the ``.zip`` it comes in.

A GRD product keeps one GeoTIFF per polarisation in ``<name>.SAFE/measurement/``
(``s1a-iw-grd-vh-<start>-<stop>-<orbit>-<take>-<n>.tiff``: uint16 amplitude DN with GCPs),
beside its annotations, calibration tables and previews. geocolor colorizes one of those
GeoTIFFs: :func:`measurement_for` picks the one of the polarisation wanted, inside a zip
through GDAL's ``/vsizip/`` (nothing is extracted).

The digital numbers are not calibrated. A model trained on sigma0 in dB needs
``sigma0 = (DN^2 - N) / A^2``, where ``A`` is the product's sigmaNought table
(``annotation/calibration/calibration-<measurement name>.xml``: values at a grid of lines
and pixels) and ``N`` its thermal noise (``annotation/calibration/noise-<measurement
name>.xml``: a range profile at a grid of lines and pixels and, since IPF 2.9, an azimuth
profile per swath block): :func:`calibration_for` reads both as a :class:`SigmaNought`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from geocolor.errors import RasterError, UsageError

log = logging.getLogger(__name__)

#: A measurement GeoTIFF inside a zipped product: ``<name>.SAFE/measurement/<file>.tiff``.
_ZIP_MEMBER = re.compile(r"^[^/]+\.safe/measurement/[^/]+\.tiff?$", re.IGNORECASE)
#: A polarisation as a word (in a band description, a tag or a file name).
_POLARISATION = re.compile(r"(?<![a-z0-9])(vv|vh|hh|hv)(?![a-z0-9])")


def polarisation_named(text: str | None) -> str | None:
    """``"VV"`` etc. if ``text`` names exactly one polarisation as a word (``s1a-iw-grd-vh-...``,
    ``Sigma0_VH_db``), else None."""
    if not text:
        return None
    found = set(_POLARISATION.findall(text.lower().replace("_", " ")))
    return found.pop().upper() if len(found) == 1 else None


def is_product(path: Path | str) -> bool:
    """Whether ``path`` is a Sentinel-1 product: a ``*.SAFE`` folder with a ``measurement``
    folder, or a zip holding one. A URL or GDAL virtual path (``str``) is not: products are
    read from local disk (:mod:`geocolor.io.source`)."""
    if not isinstance(path, Path):
        return False
    name = path.name.lower()
    if name.endswith(".safe"):
        return (path / "measurement").is_dir()
    if name.endswith(".zip") and path.is_file():
        return bool(_zip_measurements(path))
    return False


def _zip_measurements(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return sorted(n for n in archive.namelist() if _ZIP_MEMBER.match(n))
    except (zipfile.BadZipFile, OSError):
        return []


def measurements(path: Path) -> dict[str, list[str]]:
    """The product's measurement GeoTIFFs by polarisation (``"VH"``: paths rasterio opens;
    ``/vsizip/{ZIP}/...`` inside a zip), each list sorted."""
    if path.is_dir():
        files = [str(p) for p in sorted((path / "measurement").glob("*.tif*"))]
    else:
        root = path.resolve()
        files = [f"/vsizip/{{{root}}}/{member}" for member in _zip_measurements(path)]
    found: dict[str, list[str]] = {}
    for file in files:
        polarisation = polarisation_named(Path(file).name)
        if polarisation:
            found.setdefault(polarisation, []).append(file)
    return found


def measurement_for(
    path: Path, polarisation: str, band: str | int | None
) -> tuple[str, int | None]:
    """The measurement GeoTIFF of a product to colorize, and the ``band`` to read from it.

    Args:
        polarisation: the model's (used when ``band`` is None).
        band: ``--band``: a polarisation name (``VV``) picks that measurement, which is then
            read as band 1 whatever the model's polarisation.

    Raises:
        RasterError: no measurement GeoTIFF, no measurement of the wanted polarisation, or
            several (the swaths of an SLC product).
        UsageError: ``band`` is a number (a product's bands are its polarisations).
    """
    found = measurements(path)
    if not found:
        raise RasterError(
            f"{path}: a Sentinel-1 product without measurement GeoTIFFs "
            "(<name>.SAFE/measurement/*.tiff); is the download complete?"
        )
    held = ", ".join(sorted(found))
    if band is not None and str(band).strip().isdigit():
        choices = " or ".join(f"--band {pol}" for pol in sorted(found))
        raise UsageError(
            f"{path}: a Sentinel-1 product's bands are its polarisations: pass {choices}"
        )
    want = (polarisation if band is None else str(band)).strip().upper()
    if want not in found:
        if band is not None:
            raise RasterError(f"{path}: has no {want} measurement (it holds {held})")
        raise RasterError(
            f"{path}: holds {held}, but the model was trained on {want} "
            f"(pass --band {sorted(found)[0]} to use it anyway)"
        )
    files = found[want]
    if len(files) > 1:
        raise RasterError(
            f"{path}: holds {len(files)} {want} measurement files (the swaths of an SLC "
            "product?); geocolor colorizes GRD products, or pass one of the files"
        )
    return files[0], None if band is None else 1


@dataclass(frozen=True, eq=False)
class _Vectors:
    """Values an annotation gives per vector (an image line) at a list of pixels, on any grid of
    rows x cols: linear along each vector, then linear between vectors, held constant beyond
    the first and last line or pixel. ``along`` (e.g. a logarithm) is applied to each vector's
    values once they are interpolated along the columns, so the interpolation between vectors
    is done on its result."""

    lines: np.ndarray  # (V,) increasing line of each vector
    pixels: tuple[np.ndarray, ...]  # per vector: increasing pixels
    values: tuple[np.ndarray, ...]  # per vector: the values at those pixels
    along: Callable[[np.ndarray], np.ndarray] | None = None
    _rows_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def on_grid(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(cols)) float32 at the measurement's pixel indices ``rows`` x ``cols``
        (increasing, any floats)."""
        key = hash((len(cols), float(cols[0]), float(cols[-1]))) if len(cols) else 0
        per_vector = self._rows_cache.get(key)
        if per_vector is None:
            a = np.stack([np.interp(cols, p, v) for p, v in zip(self.pixels, self.values)])
            if self.along is not None:
                a = self.along(a)
            self._rows_cache.clear()  # one column grid at a time (a band's, or a preview's)
            self._rows_cache[key] = per_vector = a.astype(np.float32)
        if len(self.lines) == 1 or not len(rows):
            return np.broadcast_to(per_vector[0], (len(rows), len(cols))).copy()
        rows = np.asarray(rows, dtype=np.float64)
        below = np.clip(np.searchsorted(self.lines, rows, side="right") - 1, 0, len(self.lines) - 2)
        start, stop = self.lines[below], self.lines[below + 1]
        t = np.clip((rows - start) / (stop - start), 0.0, 1.0).astype(np.float32)
        out = np.empty((len(rows), len(cols)), dtype=np.float32)
        # rows increase, so each pair of vectors covers one run of them: first + t * step,
        # written in two passes (a band of rows mostly lies between the same two vectors)
        edges = np.flatnonzero(np.diff(below)) + 1
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(rows)]):
            first = per_vector[below[a]]
            np.multiply.outer(t[a:b], per_vector[below[a] + 1] - first, out=out[a:b])
            out[a:b] += first
        return out


@dataclass(frozen=True, eq=False)
class _AzimuthBlock:
    """One block of a noise annotation's azimuth profile: a factor per line (linear between the
    listed lines) over the rectangle of lines and range samples it covers (a swath's part)."""

    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    lines: np.ndarray
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class ThermalNoise:
    """A measurement's thermal noise power, in squared digital numbers: the range profile
    (``noiseRangeVector``, or ``noiseVector`` before IPF 2.9) times, inside each azimuth block,
    the block's azimuth profile (IPF 2.9 and later)."""

    range: _Vectors
    blocks: tuple[_AzimuthBlock, ...] = ()
    #: What the annotation's values are multiplied by (not 1 before IPF 2.50:
    #: :func:`_noise_rescale`).
    scale: float = 1.0

    def power(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(cols)) float32 noise power at pixel indices ``rows`` x ``cols``
        (increasing)."""
        out = self.range.on_grid(rows, cols)
        if self.scale != 1.0:
            out *= np.float32(self.scale)
        rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
        for block in self.blocks:
            # a block holds its pixels' whole width: a preview's pixel centre at 44.5 is in the
            # block whose last sample is 44
            r = np.flatnonzero((rows >= block.first_line) & (rows < block.last_line + 1))
            c = np.flatnonzero((cols >= block.first_sample) & (cols < block.last_sample + 1))
            if r.size and c.size:
                factor = np.interp(rows[r], block.lines, block.values).astype(np.float32)
                out[r[0]:r[-1] + 1, c[0]:c[-1] + 1] *= factor[:, None]
        return out


def _decibels_of_amplitude(a: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(a)


@dataclass(frozen=True, eq=False)
class SigmaNought:
    """A measurement's calibration: ``sigma0 = (DN^2 - N) / A^2``.

    ``A`` (the sigmaNought table) is given per calibration vector (an image line) at a list of
    pixels; between them it is interpolated linearly along each vector, then between vectors in
    dB (``20 log10 A``: a logarithm per vector and column, not per pixel; for a table whose A
    changes by 4 % from one vector to the next this is within 0.01 dB of interpolating A
    itself, tested). ``N`` is the thermal noise (:class:`ThermalNoise`), None when the product
    has no noise annotation (then ``sigma0 = DN^2 / A^2``).
    """

    table: _Vectors  # A, with along = 20 log10
    noise: ThermalNoise | None = None

    def offset_db(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``20 log10 A`` at every (row, col) of the grid ``rows x cols`` (pixel indices of the
        measurement, any floats): (len(rows), len(cols)) float32, what to subtract from
        ``10 log10 (DN^2 - N)`` to get sigma0 in dB."""
        return self.table.on_grid(rows, cols)


def calibration_for(
    product: Path, measurement: str, version: tuple[int, int] | None = None
) -> SigmaNought | None:
    """The calibration of a product's measurement GeoTIFF (a path from :func:`measurements`):
    its sigmaNought table and, when the product has one, its thermal noise. None when the
    product has no calibration table (a partial download). ``version``: the IPF version that
    made the product (:func:`ipf_version`; None: a current one), for the noise's scale.

    Raises:
        RasterError: the calibration table is there but cannot be read. (A noise annotation
            that cannot be read is logged, and the noise is then not subtracted.)
    """
    root = _calibration_root(product, measurement)
    if root is None:
        return None
    try:
        lines, pixels, values = _vectors(root, "calibrationVector", "sigmaNought")
    except (TypeError, ValueError, AttributeError) as exc:
        where = _annotation("calibration", measurement)
        raise RasterError(f"{measurement}: unreadable calibration table {where} ({exc})") from None
    table = _Vectors(lines, pixels, values, along=_decibels_of_amplitude)
    return SigmaNought(table, thermal_noise(product, measurement, version, root))


def _calibration_root(product: Path, measurement: str) -> ElementTree.Element | None:
    """The parsed calibration annotation of a measurement, or None when the product has none.

    Raises:
        RasterError: it is there but is not XML.
    """
    where = _annotation("calibration", measurement)
    text = _read_beside(product, measurement, where)
    if text is None:
        return None
    try:
        return ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise RasterError(f"{measurement}: unreadable calibration table {where} ({exc})") from None


def _annotation(kind: str, measurement: str) -> str:
    """The path in the ``.SAFE`` folder of a measurement's ``kind`` (``calibration``, ``noise``)
    annotation: ``annotation/calibration/<kind>-<measurement name without suffix>.xml``."""
    name = Path(measurement).name
    stem = name[: name.rfind(".")] if "." in name else name
    return f"annotation/calibration/{kind}-{stem}.xml"


#: Products made before IPF 2.50 give their noise vectors on another scale: times
#: ``K * DN0`` before IPF 2.34, ``K * DN0^2`` from 2.34, with ``K`` per acquisition mode and
#: ``DN0`` the first value of the first ``dn`` calibration vector (ESA's note on thermal
#: denoising of IPF products; SNAP applies the same factors). Stripmap has no ``K``.
NOISE_RESCALED_BEFORE = (2, 50)
_NOISE_DN0_SQUARED_SINCE = (2, 34)
_NOISE_K = {"iw": 75088.7, "ew": 56065.87}


def _noise_rescale(
    measurement: str, version: tuple[int, int] | None, calibration: ElementTree.Element | None
) -> float | None:
    """The factor on a measurement's noise vectors (1 from IPF 2.50 on, or when the version is
    not known), or None when a product older than that does not give what the factor needs
    (its mode's ``K``, a ``dn`` calibration vector)."""
    if version is None or version >= NOISE_RESCALED_BEFORE:
        return 1.0
    parts = Path(measurement).name.lower().split("-")  # s1a-iw-grd-vh-...: the mode second
    k = _NOISE_K.get(parts[1] if len(parts) > 1 else "")
    first = None if calibration is None else calibration.find(".//calibrationVector/dn")
    try:
        dn0 = float(first.text.split()[0])
    except (AttributeError, IndexError, ValueError):
        dn0 = None
    if k is None or dn0 is None or not dn0 > 0:
        return None
    return k * dn0 * dn0 if version >= _NOISE_DN0_SQUARED_SINCE else k * dn0


def thermal_noise(
    product: Path, measurement: str, version: tuple[int, int] | None = None,
    calibration: ElementTree.Element | None = None,
) -> ThermalNoise | None:
    """The thermal noise of a measurement in squared digital numbers, or None (no noise
    annotation, one that cannot be read, or one on an older scale that the product does not
    give the factor of: logged). ``version``: :func:`ipf_version`'s; ``calibration``: the parsed
    calibration annotation when the caller has it (read here when a factor needs it)."""
    noise = _noise_for(product, measurement)
    if noise is None:
        return None
    if version is not None and version < NOISE_RESCALED_BEFORE and calibration is None:
        with contextlib.suppress(RasterError):
            calibration = _calibration_root(product, measurement)
    scale = _noise_rescale(measurement, version, calibration)
    if scale is None:
        log.warning("%s: made by IPF %d.%02d, whose noise vectors need a factor that this "
                    "product does not give (a dn calibration vector, an IW or EW mode); its "
                    "thermal noise is not used", measurement, *version)
        return None
    return noise if scale == 1.0 else dataclasses.replace(noise, scale=scale)


def _noise_for(product: Path, measurement: str) -> ThermalNoise | None:
    """The thermal noise of a measurement as its annotation gives it, or None (no noise
    annotation, or one that cannot be read: logged)."""
    where = _annotation("noise", measurement)
    text = _read_beside(product, measurement, where)
    if text is None:
        log.info("%s: no noise annotation (%s); its thermal noise is not known", measurement, where)
        return None
    try:
        root = ElementTree.fromstring(text)
        if root.find(".//noiseRangeVector") is not None:  # IPF 2.9 and later
            range_ = _vectors(root, "noiseRangeVector", "noiseRangeLut", positive=False)
        else:
            range_ = _vectors(root, "noiseVector", "noiseLut", positive=False)
        blocks = tuple(_azimuth_block(v) for v in root.iter("noiseAzimuthVector"))
    except (ElementTree.ParseError, TypeError, ValueError, AttributeError) as exc:
        log.warning("%s: unreadable noise annotation %s (%s); thermal noise is not subtracted",
                    measurement, where, exc)
        return None
    return ThermalNoise(_Vectors(*range_), blocks)


def _vectors(
    root: ElementTree.Element, tag: str, value_tag: str, positive: bool = True
) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The (lines, pixels, values) of an annotation's ``tag`` vectors.

    Raises:
        ValueError: none, lines not increasing, pixel and value counts that differ, or (when
            ``positive``) a value that is not positive.
    """
    lines, pixels, values = [], [], []
    for vector in root.iter(tag):
        line = int(vector.findtext("line"))
        pixel = np.array(vector.findtext("pixel").split(), dtype=np.float64)
        value = np.array(vector.findtext(value_tag).split(), dtype=np.float64)
        if pixel.size == 0 or pixel.size != value.size:
            raise ValueError(f"line {line}: {pixel.size} pixels, {value.size} values")
        if not np.isfinite(value).all() or (positive and not (value > 0).all()):
            raise ValueError(f"line {line}: a {value_tag} value that is not a positive number")
        lines.append(line)
        pixels.append(pixel)
        values.append(value)
    if not lines or any(b <= a for a, b in zip(lines, lines[1:])):
        raise ValueError(f"no {tag}, or lines not increasing")
    return np.array(lines, dtype=np.float64), tuple(pixels), tuple(values)


def _azimuth_block(vector: ElementTree.Element) -> _AzimuthBlock:
    lines = np.array(vector.findtext("line").split(), dtype=np.float64)
    values = np.array(vector.findtext("noiseAzimuthLut").split(), dtype=np.float64)
    if lines.size == 0 or lines.size != values.size or not np.isfinite(values).all():
        raise ValueError(f"an azimuth block with {lines.size} lines and {values.size} values")
    return _AzimuthBlock(int(vector.findtext("firstAzimuthLine")),
                         int(vector.findtext("lastAzimuthLine")),
                         int(vector.findtext("firstRangeSample")),
                         int(vector.findtext("lastRangeSample")), lines, values)


def annotations_of(product: Path, measurement: str) -> list[str]:
    """Which calibration annotations the product holds for a measurement (from
    :func:`measurements`): ``"sigmaNought table"``, ``"thermal noise"`` (neither read)."""
    kinds = (("sigmaNought table", "calibration"), ("thermal noise", "noise"))
    if product.is_dir():
        return [label for label, kind in kinds
                if (product / _annotation(kind, measurement)).is_file()]
    with zipfile.ZipFile(product) as archive:
        names = set(archive.namelist())
    return [label for label, kind in kinds
            if _zip_member(measurement, _annotation(kind, measurement)) in names]


def _zip_member(measurement: str, relative: str) -> str:
    """The zip member of ``relative`` in the ``.SAFE`` folder of a zipped ``measurement``
    (``/vsizip/{ZIP}/<name>.SAFE/measurement/<file>``)."""
    return f"{measurement.split('/')[-3]}/{relative}"


def _read_beside(product: Path, measurement: str, relative: str) -> bytes | None:
    """The bytes of ``relative`` in the ``.SAFE`` folder of ``product`` (the folder, or the zip
    that ``measurement`` is in), or None when it has no such file."""
    if product.is_dir():
        path = product / relative
        return path.read_bytes() if path.is_file() else None
    try:
        with zipfile.ZipFile(product) as archive:
            return archive.read(_zip_member(measurement, relative))
    except KeyError:
        return None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise RasterError(
            f"{product}: cannot read {relative} from the zip ({exc}); the download looks "
            "damaged: download the product again"
        ) from None


#: The first IPF version that writes the GRD border's "no-value" pixels as 0 (March 2018).
#: Older products carry low, non-zero noise there instead: up to a few hundred pixels along
#: the near and far range edges and at the start and end of a data take.
BORDER_MASKED_SINCE = (2, 90)

_SOFTWARE_TAG = re.compile(rb"<[^<>]*software\b[^<>]*>", re.IGNORECASE)
_VERSION_ATTR = re.compile(rb'version="(\d+)\.(\d+)')


def ipf_version(product: Path, measurement: str) -> tuple[int, int] | None:
    """The version of the Sentinel-1 Instrument Processing Facility that made ``product``
    (its ``manifest.safe``: ``<safe:software name="Sentinel-1 IPF" version="002.72"/>`` ->
    ``(2, 72)``), or None when the manifest does not say."""
    manifest = _read_beside(product, measurement, "manifest.safe")
    for tag in _SOFTWARE_TAG.findall(manifest or b""):
        if b"Sentinel-1 IPF" in tag and (match := _VERSION_ATTR.search(tag)):
            return int(match.group(1)), int(match.group(2))
    return None


#: SNAP's Remove-GRD-Border-Noise rule, with its defaults: pixels within BORDER_REACH of the
#: image's edges are tested, and one is border noise when its co-polarised DN is below
#: BORDER_LOW_DN or its noise-free amplitude ``sqrt(max(DN^2 - N, 0))`` below BORDER_FLOOR.
BORDER_REACH = 500
BORDER_LOW_DN = 30
BORDER_FLOOR = 0.5

Strip = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1 of a measurement


@dataclass(frozen=True, eq=False)
class BorderNoise:
    """Where a product made before IPF 2.90 (:data:`BORDER_MASKED_SINCE`) has border noise,
    by SNAP's rule (:data:`BORDER_REACH`): tested on the co-polarised measurement (VV or HH,
    which all measurements of a GRD product share the grid of), whichever band is colorized.

    Real dark surfaces (calm water) within the reach of an edge go with the noise, as in SNAP.
    """

    measurement: str  #: the GeoTIFF whose digital numbers are tested
    noise: ThermalNoise | None  #: its thermal noise (None: the DN test alone)
    reach: int = BORDER_REACH

    def strips(self, r0: int, r1: int, c0: int, c1: int, height: int, width: int) -> list[Strip]:
        """The parts of rows ``r0:r1`` x columns ``c0:c1`` of a ``height`` x ``width``
        measurement that lie within :attr:`reach` of its edges, as (r0, r1, c0, c1): the top and
        bottom bands across the window's width, and the left and right ends of the rows
        between them. Empty for a window in the interior."""
        def within(x: int, lo: int, hi: int) -> int:
            return min(max(x, lo), hi)

        top = within(self.reach, r0, r1)
        bottom = max(top, within(height - self.reach, r0, r1))
        left = within(self.reach, c0, c1)
        right = max(left, within(width - self.reach, c0, c1))
        found = [(r0, top, c0, c1), (bottom, r1, c0, c1),
                 (top, bottom, c0, left), (top, bottom, right, c1)]
        return [s for s in found if s[0] < s[1] and s[2] < s[3]]

    def is_noise(self, dn: np.ndarray, row0: int, col0: int) -> np.ndarray:
        """(h, w) bool, True where ``dn`` (the tested measurement's digital numbers at rows
        ``row0:row0 + h``, columns ``col0:col0 + w``, inside a :meth:`strips` part) is border
        noise."""
        noise = dn < BORDER_LOW_DN
        if self.noise is not None:
            rows = np.arange(row0, row0 + dn.shape[0], dtype=np.float64)
            cols = np.arange(col0, col0 + dn.shape[1], dtype=np.float64)
            power = np.square(dn, dtype=np.float32) - self.noise.power(rows, cols)
            noise |= power < BORDER_FLOOR * BORDER_FLOOR
        return noise


def border_noise_for(
    product: Path, measurement: str, version: tuple[int, int] | None
) -> BorderNoise | None:
    """The border noise of a product's ``measurement`` made by IPF ``version``
    (:func:`ipf_version`), or None when it has none to mask (IPF 2.90 and later write zeros
    there; an unknown version is taken for a current one)."""
    if version is None or version >= BORDER_MASKED_SINCE:
        return None
    found = measurements(product)
    tested = next((found[pol][0] for pol in ("VV", "HH") if len(found.get(pol, ())) == 1),
                  measurement)
    if tested is measurement:
        log.info("%s: no co-polarised (VV or HH) measurement beside it; its own values are "
                 "tested for border noise", measurement)
    return BorderNoise(tested, thermal_noise(product, tested, version), reach=BORDER_REACH)


def border_noise_note(version: tuple[int, int] | None) -> str | None:
    """What to know about the border of a product made by IPF ``version``
    (:func:`ipf_version`) when it predates :data:`BORDER_MASKED_SINCE` (one sentence for a
    log line), else None."""
    if version is None or version >= BORDER_MASKED_SINCE:
        return None
    return (f"made by IPF {version[0]}.{version[1]:02d}, before 2.90: its border holds low "
            "noise instead of zeros, masked as SNAP's Remove-GRD-Border-Noise does (within "
            f"{BORDER_REACH} px of the edges, co-polarised DN below {BORDER_LOW_DN} or noise-free "
            f"amplitude below {BORDER_FLOOR}); dark water that close to an edge is masked too")
