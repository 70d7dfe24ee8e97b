"""The default Cloud-Optimized GeoTIFF, written while the rows stream: no scratch file, no copy.

Through GDAL, a COG is a copy: the rows go into a scratch GeoTIFF (ZSTD) and GDAL's COG
driver then reads it all back, decompresses it and compresses it again into the COG's layout,
after the last tile. On a GPU that copy is the largest cost left once the model is done
(fifteenth session, ``benchmarks/README.md``: 5-7.5 s for a full IW GRD scene, for 2-4 s of
model). Here each tile of every level is DEFLATE-compressed in a thread pool as soon as its
rows are written (libdeflate releases the GIL), into one spool file per level. At the end
:meth:`CogWriter.assemble` writes the header, GDAL's structural metadata and the image file
directories, and appends the spools, smallest level first: the layout GDAL's COG driver
writes (``LAYOUT=IFDS_BEFORE_DATA``, block leaders and trailers, masks interleaved with the
imagery), with the same compressed tiles, directory fields, georeferencing and tags (tests;
only where the tile arrays sit in the head, and the integer type of their byte counts, may
differ).

It makes the default COG (DEFLATE with the horizontal predictor, AVERAGE overviews, an
internal mask or none, RGB), at any ``BLOCKSIZE`` and ``LEVEL``; other creation options, an
alpha band, PNG and JPEG keep the COG driver (:func:`direct_cog_settings`). The georeferencing
tags are taken from a sparse template GeoTIFF that GDAL writes for the scene
(:func:`georeference_tags`), so that CRS, transform, GCPs, RPCs and metadata are encoded by
GDAL itself.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import struct
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import rasterio

from geocolor.errors import OutputError
from geocolor.infer.output import DEFAULT_COG_OPTIONS, open_scratch

try:  # libdeflate, which GDAL itself uses: GDAL's bytes, at twice zlib's speed
    from deflate import zlib_compress as _libdeflate_compress
except ImportError:  # pragma: no cover - then the standard library's zlib: valid, ~8 % larger
    _libdeflate_compress = None

#: Creation options this writer makes exactly, with the values it accepts (upper case);
#: ``LEVEL`` (DEFLATE level, 1-9), ``BLOCKSIZE``, ``NUM_THREADS`` and ``BIGTIFF`` are
#: handled apart.
_ACCEPTED = {
    "COMPRESS": {"DEFLATE"},
    "PREDICTOR": {"YES", "STANDARD", "2"},
    "OVERVIEW_RESAMPLING": {"AVERAGE"},
}
_BIGTIFF_MODES = {"YES", "NO", "IF_NEEDED", "IF_SAFER"}

#: Tags copied from GDAL's template: ModelPixelScale, ModelTiepoint (also GCPs),
#: ModelTransformation, the GeoKey directory and its double and ASCII parameters,
#: GDAL_METADATA, GDAL_NODATA and RPC coefficients.
_GEOREFERENCE_TAGS = frozenset({33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113, 50844})

# TIFF field types, and the size in bytes of one value of each
_SHORT, _LONG, _LONG8 = 3, 4, 16
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
               16: 8, 17: 8, 18: 8}

#: The largest classic TIFF (32-bit offsets); a larger COG is written as BigTIFF.
CLASSIC_TIFF_LIMIT = 2**32 - 1

#: DEFLATE level of the mask tiles: GDAL's default, which it gives a COG's mask whatever the
#: imagery's ``LEVEL`` (checked tile by tile); a 1-bit tile is 32 KB, so it costs little.
MASK_LEVEL = 6

#: NewSubfileType values: reduced-resolution image, transparency mask.
_REDUCED, _MASK = 1, 4


@dataclass(frozen=True)
class DirectSettings:
    """How :class:`CogWriter` writes a COG: DEFLATE level, tile side and BigTIFF mode."""

    level: int
    block: int
    bigtiff: str


def direct_cog_settings(options: dict[str, str]) -> DirectSettings | None:
    """The settings to write the COG with, when ``options`` (upper-case names, the user's
    creation options) ask for nothing but what :class:`CogWriter` makes; else None, and the
    COG driver makes the file."""
    opts = {**DEFAULT_COG_OPTIONS, **options}
    for key, value in opts.items():
        value = value.strip().upper()
        if key in _ACCEPTED:
            if value not in _ACCEPTED[key]:
                return None
        elif key == "BIGTIFF":
            if value not in _BIGTIFF_MODES:
                return None
        elif key not in ("LEVEL", "BLOCKSIZE", "NUM_THREADS"):
            return None
    try:
        level, block = int(opts["LEVEL"]), int(opts["BLOCKSIZE"])
    except ValueError:
        return None
    if not 1 <= level <= 9 or block < 16 or block % 16:  # GDAL's own rule for BLOCKSIZE
        return None
    return DirectSettings(level, block, opts["BIGTIFF"].strip().upper())


@dataclass(frozen=True)
class TiffField:
    """One TIFF directory entry: tag, field type, value count and the values' raw
    little-endian bytes."""

    tag: int
    type: int
    count: int
    data: bytes
    source_offset: int = -1  # where the values were in the file read (-1: in the entry)

    def numbers(self) -> tuple[int, ...]:
        """The values of an unsigned integer field (BYTE, SHORT, LONG or LONG8)."""
        code = {1: "B", 3: "H", 4: "I", 16: "Q"}[self.type]
        return struct.unpack(f"<{self.count}{code}", self.data)


def read_directories(path: Path) -> list[dict[int, TiffField]]:
    """The entries of every image file directory of a little-endian (Big)TIFF file, in file
    order."""
    directories = []
    with open(path, "rb") as f:
        head = f.read(16)
        if head[:2] != b"II":
            raise ValueError(f"{path}: not a little-endian TIFF file")
        big = struct.unpack_from("<H", head, 2)[0] == 43
        offset_fmt = "<Q" if big else "<I"
        entry, inline = (20, 8) if big else (12, 4)
        offset = struct.unpack_from(offset_fmt, head, 8 if big else 4)[0]
        while offset:
            f.seek(offset)
            count = struct.unpack("<Q" if big else "<H", f.read(8 if big else 2))[0]
            raw = f.read(count * entry + (8 if big else 4))
            fields = {}
            for i in range(count):
                tag, kind = struct.unpack_from("<HH", raw, i * entry)
                n = struct.unpack_from(offset_fmt, raw, i * entry + 4)[0]
                size = n * _TYPE_SIZES[kind]
                value_at = i * entry + (12 if big else 8)
                source = -1
                if size <= inline:
                    data = raw[value_at : value_at + size]
                else:
                    source = struct.unpack_from(offset_fmt, raw, value_at)[0]
                    f.seek(source)
                    data = f.read(size)
                fields[tag] = TiffField(tag, kind, n, data, source)
            directories.append(fields)
            offset = struct.unpack_from(offset_fmt, raw, count * entry)[0]
    return directories


def georeference_tags(
    template: Path, width: int, height: int, georef: dict[str, Any], tags: dict[str, str]
) -> list[TiffField]:
    """The georeferencing and metadata tags GDAL writes for this scene: a sparse (empty)
    GeoTIFF of the scene's size is made at ``template``, read and deleted."""
    try:
        with rasterio.Env(GDAL_PAM_ENABLED=False):
            ds = open_scratch(template, width, height, georef, False,
                              {"TILED": "YES", "SPARSE_OK": "TRUE"})
            try:
                ds.update_tags(**tags)
            finally:
                ds.close()
        fields = read_directories(template)[0]
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(template)
    return [field for tag, field in sorted(fields.items()) if tag in _GEOREFERENCE_TAGS]


def _compress(data: memoryview, level: int) -> bytes:
    """A zlib stream of ``data`` at zlib's ``level`` (1-9). With libdeflate, levels 6-9 are its
    7-10, as GDAL maps them (the same bytes as GDAL's for every level, checked tile by tile)."""
    if _libdeflate_compress is None:
        return zlib.compress(data, level)
    return _libdeflate_compress(data, level if level <= 5 else level + 1)


def _encode_image_tile(rgb: np.ndarray, rows: int, x0: int, x1: int, level: int) -> bytes:
    """One pixel-interleaved RGB tile, DEFLATE with the horizontal predictor.

    Args:
        rgb: (3, block, W) uint8 block row; columns ``x0:x1`` of its first ``rows`` rows are
            the tile's (the rest of the block x block tile is zero, as GDAL pads it).
    """
    block = rgb.shape[1]
    tile = np.zeros((block, block, 3), dtype=np.uint8)
    tile[:rows, : x1 - x0] = rgb[:, :rows, x0:x1].transpose(1, 2, 0)
    coded = np.empty_like(tile)
    coded[:, 0] = tile[:, 0]
    np.subtract(tile[:, 1:], tile[:, :-1], out=coded[:, 1:])  # wraps modulo 256, as TIFF's
    return _compress(coded.data, level)


def _encode_mask_tile(valid: np.ndarray, rows: int, x0: int, x1: int, level: int) -> bytes:
    """One 1-bit mask tile (1 = valid, rows packed most significant bit first), DEFLATE;
    ``valid``: (block, W) bool block row."""
    block = valid.shape[0]
    tile = np.zeros((block, block), dtype=bool)
    tile[:rows, : x1 - x0] = valid[:rows, x0:x1]
    return _compress(np.packbits(tile, axis=1).data, level)


def _encode_tile(
    rgb: np.ndarray, valid: np.ndarray | None, rows: int, x0: int, x1: int, level: int
) -> tuple[bytes, bytes | None, float]:
    """A tile's compressed imagery, its compressed mask when ``valid`` is given (else None),
    and the CPU seconds that took."""
    start = time.thread_time()
    image = _encode_image_tile(rgb, rows, x0, x1, level)
    mask = None if valid is None else _encode_mask_tile(valid, rows, x0, x1, MASK_LEVEL)
    return image, mask, time.thread_time() - start


class _LevelTiles:
    """One level of the COG: rows in, its compressed tiles out to a spool file, in the COG's
    order (row-major; each image tile followed by its mask tile, both with a 4-byte size
    before and their last 4 bytes repeated after)."""

    def __init__(self, spool: Path, width: int, height: int, masked: bool, block: int,
                 pool: ThreadPoolExecutor, level: int) -> None:
        """``pool`` compresses the tiles at DEFLATE ``level``."""
        self.spool_path = spool
        self.pool, self.deflate_level = pool, level
        self.width, self.height, self.block = width, height, block
        self.across = -(-width // block)
        self.tile_count = self.across * -(-height // block)
        self.rgb = np.empty((3, block, width), dtype=np.uint8)
        self.valid = np.empty((block, width), dtype=bool) if masked else None
        self.filled = 0  # rows of the current block row received
        self.rows = 0  # rows of the level received
        self.size = 0  # bytes in the spool
        self.cpu_s = 0.0  # CPU seconds its tiles took to compress
        self.image: list[tuple[int, int]] = []  # (offset in the spool, byte count) per tile
        self.mask: list[tuple[int, int]] = []
        self.pending: collections.deque[list[Future]] = collections.deque()
        self.file: BinaryIO = open(spool, "wb")  # noqa: SIM115 - closed by finish / close

    def push(self, rgb: np.ndarray, valid: np.ndarray | None) -> None:
        """Take rows (3, n, width) uint8 (and (n, width) bool validity when masked), top to
        bottom; each block row, once complete, is compressed in the pool."""
        n, i = rgb.shape[1], 0
        if self.rows + n > self.height:
            raise RuntimeError("internal error: more rows than the COG level holds")
        while i < n:
            k = min(self.block - self.filled, n - i)
            self.rgb[:, self.filled : self.filled + k] = rgb[:, i : i + k]
            if self.valid is not None:
                self.valid[self.filled : self.filled + k] = valid[i : i + k]
            self.filled += k
            self.rows += k
            i += k
            if self.filled == self.block or self.rows == self.height:
                self._submit()

    def _submit(self) -> None:
        """Compress the full block row in ``pool``, keeping one more in flight at most."""
        rgb, valid, rows = self.rgb, self.valid, self.filled
        edges = [min(self.width, c * self.block) for c in range(self.across + 1)]
        self.pending.append([
            self.pool.submit(_encode_tile, rgb, valid, rows, a, b, self.deflate_level)
            for a, b in zip(edges[:-1], edges[1:])
        ])
        # the jobs read these buffers: the next block row goes into new ones
        self.rgb = np.empty_like(rgb)
        self.valid = None if valid is None else np.empty_like(valid)
        self.filled = 0
        while len(self.pending) > 1:
            self._write_oldest()

    def _write_oldest(self) -> None:
        for job in self.pending.popleft():
            image, mask, cpu_s = job.result()
            self.cpu_s += cpu_s
            self.image.append(self._append(image))
            if mask is not None:
                self.mask.append(self._append(mask))

    def _append(self, data: bytes) -> tuple[int, int]:
        self.file.write(struct.pack("<I", len(data)))
        self.file.write(data)
        self.file.write(data[-4:])
        at = self.size + 4
        self.size += len(data) + 8
        return at, len(data)

    def finish(self) -> None:
        """Write the last compressed tiles and close the spool."""
        if self.rows != self.height:
            raise RuntimeError(
                f"internal error: COG level of {self.height} rows got {self.rows}"
            )
        while self.pending:
            self._write_oldest()
        self.file.close()
        if len(self.image) != self.tile_count:
            raise RuntimeError("internal error: a COG level is missing tiles")

    def close(self) -> None:
        for jobs in self.pending:
            for job in jobs:
                job.cancel()
        self.pending.clear()
        self.file.close()


class CogWriter:
    """A COG built from streamed rows: level 0 is the full resolution, then each overview.

    Rows of any level may be pushed from any one thread at a time per level (the pipeline's
    writer thread pushes level 0, the overview thread the others). Usage: :meth:`add_level`
    for every level, largest first; :meth:`push` every row of each; :meth:`assemble`; and
    :meth:`remove` in any case.
    """

    def __init__(self, stem: Path, masked: bool, settings: DirectSettings, threads: int,
                 initializer: Callable[[], None] | None = None) -> None:
        """``stem``: a temporary path; the spools are named after it. ``threads``: compression
        threads, each started with ``initializer`` (the pipeline lowers their priority as it
        does its other I/O threads')."""
        self.stem = stem
        self.masked = masked
        self.settings = settings
        self.levels: list[_LevelTiles] = []
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="geocolor-deflate",
                                       initializer=initializer)

    @property
    def cpu_s(self) -> float:
        """CPU seconds spent compressing the tiles written to the spools so far."""
        return sum(lvl.cpu_s for lvl in self.levels)

    def add_level(self, width: int, height: int) -> int:
        """Add the next level (each smaller than the one before); returns its index."""
        path = self.stem.with_name(f"{self.stem.name}.cog{len(self.levels)}")
        self.levels.append(_LevelTiles(path, width, height, self.masked, self.settings.block,
                                       self.pool, self.settings.level))
        return len(self.levels) - 1

    def push(self, index: int, rgb: np.ndarray, valid: np.ndarray | None) -> None:
        """Rows of level ``index``: (3, n, width) uint8, and their (n, width) bool validity
        (needed when the COG is masked, else ignored)."""
        self.levels[index].push(rgb, valid if self.masked else None)

    def assemble(self, target: Path, fields: list[TiffField]) -> None:
        """Write the COG at ``target``: header, structural metadata, the directories (full
        resolution with ``fields``, its mask, the overviews, their masks), then the tiles,
        smallest level first. BigTIFF where the file needs it, or where BIGTIFF=YES."""
        for lvl in self.levels:
            lvl.finish()
        self.pool.shutdown(wait=True)
        spooled = sum(lvl.size for lvl in self.levels)
        big = self.settings.bigtiff == "YES"
        if not big:
            head = _Layout(self.levels, self.masked, fields, big=False)
            big = head.size + spooled > CLASSIC_TIFF_LIMIT
            if big and self.settings.bigtiff == "NO":
                raise OutputError(f"{target}: the COG needs BigTIFF (over 4 GB); "
                                  "drop --co BIGTIFF=NO")
        head = _Layout(self.levels, self.masked, fields, big=big)
        with open(target, "wb") as out:
            out.write(head.encode())
            for lvl in reversed(self.levels):
                _append_file(out, lvl.spool_path)

    def remove(self) -> None:
        """Stop the compression threads and delete the spools (idempotent)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        for lvl in self.levels:
            lvl.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lvl.spool_path)


def _append_file(out: BinaryIO, path: Path) -> None:
    """Append the file at ``path`` to ``out`` (in the kernel where it can)."""
    out.flush()
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        copied = 0
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not supported here
            while copied < size:
                n = os.copy_file_range(src.fileno(), out.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        out.seek(0, os.SEEK_END)
        if copied < size:
            src.seek(copied)
            shutil.copyfileobj(src, out, 16 * 2**20)


class _Layout:
    """The COG's head, laid out as GDAL lays it out: TIFF header, GDAL's structural metadata,
    each image file directory followed by its out-of-line values, then the tile offset and
    byte count arrays of all of them; the spools follow, smallest level first."""

    def __init__(self, levels: list[_LevelTiles], masked: bool, fields: list[TiffField],
                 big: bool) -> None:
        self.big = big
        self.entry, self.inline = (20, 8) if big else (12, 4)
        ghost = ("LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
                 "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ")
        if masked:
            ghost += "MASK_INTERLEAVED_WITH_IMAGERY=YES\n"
        self.ghost = f"GDAL_STRUCTURAL_METADATA_SIZE={len(ghost):06d} bytes\n{ghost}".encode()
        # directory order: full resolution, its mask, the overviews, then their masks
        order = [(0, False)] + ([(0, True)] if masked else [])
        order += [(i, False) for i in range(1, len(levels))]
        order += [(i, True) for i in range(1, len(levels))] if masked else []
        self.order = order
        self.levels = levels
        self.fields = fields
        self.first = _even((16 if big else 8) + len(self.ghost))
        # positions: the directories with their values, then the tile arrays
        self.at: list[int] = []
        at = self.first
        for index, mask in order:
            self.at.append(at)
            at += self._directory_size(self._entries(index, mask, {}))
        self.arrays: list[dict[int, int]] = []
        for index, mask in order:
            where = {}
            for tag, kind, values in self._entries(index, mask, {}):
                if tag in (324, 325) and _value_bytes(kind, values) > self.inline:
                    where[tag] = at
                    at += _even(_value_bytes(kind, values))
            self.arrays.append(where)
        self.size = at
        self.base: dict[int, int] = {}  # where each level's spool starts in the file
        for i in reversed(range(len(levels))):
            self.base[i] = at
            at += levels[i].size

    def _entries(self, index: int, mask: bool, base: dict[int, int]
                 ) -> list[tuple[int, int, list[int] | bytes]]:
        """(tag, type, values) of a directory, in tag order; tile offsets are relative to the
        file's start given the spools' ``base`` (empty: to the spool's)."""
        lvl = self.levels[index]
        tiles = lvl.mask if mask else lvl.image
        offset_type = _LONG8 if self.big else _LONG
        dims = _SHORT if max(lvl.width, lvl.height) < 65536 else _LONG
        kind = (_REDUCED if index else 0) | (_MASK if mask else 0)
        samples = 1 if mask else 3
        entries: list[tuple[int, int, Any]] = [
            (256, dims, [lvl.width]),
            (257, dims, [lvl.height]),
            (258, _SHORT, [1] if mask else [8, 8, 8]),
            (259, _SHORT, [8]),  # Adobe DEFLATE
            (262, _SHORT, [4 if mask else 2]),  # transparency mask / RGB
            (277, _SHORT, [samples]),
            (284, _SHORT, [1]),  # pixel-interleaved
            (317, _SHORT, [1 if mask else 2]),  # horizontal predictor for the imagery
            (322, _SHORT, [lvl.block]),
            (323, _SHORT, [lvl.block]),
            (324, offset_type, [base.get(index, 0) + at for at, _ in tiles]),
            (325, _LONG, [n for _, n in tiles]),
            (339, _SHORT, [1] * samples),
        ]
        if kind:
            entries.insert(0, (254, _LONG, [kind]))
        if index == 0 and not mask:
            entries += [(f.tag, f.type, f.data) for f in self.fields]
            entries.sort(key=lambda e: e[0])
        return entries

    def _directory_size(self, entries: list[tuple[int, int, Any]]) -> int:
        """Bytes of a directory's table and its out-of-line values, tile arrays excepted."""
        size = self._table_size(entries)
        for tag, kind, values in entries:
            n = _value_bytes(kind, values)
            if n > self.inline and tag not in (324, 325):
                size += _even(n)
        return size

    def _table_size(self, entries: list[Any]) -> int:
        return (8 if self.big else 2) + self.entry * len(entries) + (8 if self.big else 4)

    def encode(self) -> bytes:
        """The head's bytes (``self.size`` of them)."""
        out = bytearray()
        if self.big:
            out += b"II" + struct.pack("<HHHQ", 43, 8, 0, self.first)
        else:
            out += b"II" + struct.pack("<HI", 42, self.first)
        out += self.ghost
        out += b"\0" * (self.first - len(out))
        arrays = bytearray()
        for k, (index, mask) in enumerate(self.order):
            following = self.at[k + 1] if k + 1 < len(self.order) else 0
            entries = self._entries(index, mask, self.base)
            out += self._directory(self.at[k], entries, self.arrays[k], following, arrays)
        out += arrays
        if len(out) != self.size:
            raise RuntimeError("internal error: COG head size")
        return bytes(out)

    def _directory(self, at: int, entries: list[tuple[int, int, Any]], arrays_at: dict[int, int],
                   following: int, arrays: bytearray) -> bytes:
        """A directory's table and out-of-line values (at ``at``); its tile arrays are added to
        ``arrays`` (at ``arrays_at``). Values are placed as libtiff places them: the standard
        tags' first, then the copied ones in the order GDAL wrote them in the template."""
        offset_fmt = "<Q" if self.big else "<I"
        table = bytearray(struct.pack("<Q" if self.big else "<H", len(entries)))
        extra = bytearray()
        where: dict[int, int] = {}
        copied = {f.tag: f.source_offset for f in self.fields}
        later = sorted((e for e in entries if e[0] in copied), key=lambda e: copied[e[0]])
        placed = [e for e in entries if e[0] not in copied] + later
        values_at = at + self._table_size(entries)
        for tag, kind, values in placed:
            data = _data(kind, values)
            if len(data) <= self.inline or tag in (324, 325):
                continue
            where[tag] = values_at + len(extra)
            extra += data + b"\0" * (len(data) % 2)
        for tag, kind, values in entries:
            data = _data(kind, values)
            table += struct.pack("<HH", tag, kind)
            table += struct.pack(offset_fmt, len(data) // _TYPE_SIZES[kind])
            if len(data) <= self.inline:
                table += data + b"\0" * (self.inline - len(data))
            elif tag in (324, 325):
                table += struct.pack(offset_fmt, arrays_at[tag])
                arrays += data + b"\0" * (len(data) % 2)
            else:
                table += struct.pack(offset_fmt, where[tag])
        table += struct.pack(offset_fmt, following)
        return bytes(table + extra)


def _data(kind: int, values: list[int] | bytes) -> bytes:
    return values if isinstance(values, bytes) else _pack(kind, values)


def _pack(kind: int, values: list[int]) -> bytes:
    code = {_SHORT: "H", _LONG: "I", _LONG8: "Q"}[kind]
    return struct.pack(f"<{len(values)}{code}", *values)


def _value_bytes(kind: int, values: list[int] | bytes) -> int:
    return len(values) if isinstance(values, bytes) else len(values) * _TYPE_SIZES[kind]


def _even(n: int) -> int:
    return n + (n % 2)
