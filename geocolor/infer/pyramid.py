"""Overviews made while the rows stream, instead of read back after the last one.

A COG needs overviews. Building them with GDAL after the last tile reads the whole scratch
file back, decompresses it and averages it on a tail that nothing overlaps: a quarter of the
pipeline's time when the model is fast (a GPU; benchmarks/README.md). Here a thread of its
own (:class:`geocolor.infer.stream._Writer` hands it each band of rows once written) halves
the rows (:func:`halve`, GDAL's AVERAGE: the mean of the valid pixels of each 2 x 2 block,
rounded half up, 0 where none is valid, and valid where any is) and writes the halves into
one small file per level; each level is made from the one above it, as GDAL does.
:meth:`StreamedOverviews.finish` then gives the COG driver a VRT of the scratch file that
names these files as its overviews, and the driver copies them.

Halving is exact only while the level above has even sides. From the first level whose
parent has an odd side, GDAL builds the rest from the last streamed level (a file 4x or more
smaller than the scene), so that every level is the one GDAL would have built from the whole
scene (tested).
"""
from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from geocolor.infer.cogwrite import CogWriter
from geocolor.infer.output import SCRATCH_OPTIONS, OverviewPlan, open_scratch

#: 1 / (number of valid pixels in a 2 x 2 block), for the blocks that are partly valid.
_INVERSE = np.array([0.0, 1.0, 0.5, 1.0 / 3.0, 0.25], dtype=np.float32)


def halve(rgb: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """GDAL's AVERAGE overview of an even-sized block of rows.

    Args:
        rgb: (C, 2h, 2w) uint8, 0 outside the data.
        valid: (2h, 2w) bool, or None when every pixel is valid.

    Returns:
        (C, h, w) uint8: per 2 x 2 block, the mean of its valid pixels rounded half up (0
        where none is valid); and the (h, w) validity (any pixel valid), or None.
    """
    c, h2, w2 = rgb.shape
    rows = rgb[:, 0::2].astype(np.uint16)
    rows += rgb[:, 1::2]
    pairs = rows.reshape(c, h2 // 2, w2 // 2, 2)
    total = pairs[..., 0] + pairs[..., 1]  # (C, h, w) sums of 4 pixels, <= 1020
    if valid is None:
        total += 2
        total >>= 2
        return total.astype(np.uint8), None
    flags = valid.view(np.uint8)
    count = (flags[0::2] + flags[1::2]).reshape(h2 // 2, w2 // 2, 2)
    count = count[..., 0] + count[..., 1]  # valid pixels per block, 0-4
    out = total + 2
    out >>= 2  # right for 4 valid pixels, and for none (sum 0)
    partial = np.nonzero((count != 4) & (count != 0))
    if partial[0].size:
        # invalid pixels hold 0, so the sum is the valid pixels' sum; s/n + 1/2 is never within
        # float32 rounding of an integer for n <= 4 and s <= 1020 unless it is one exactly
        mean = total[:, partial[0], partial[1]] * _INVERSE[count[partial]] + np.float32(0.5)
        out[:, partial[0], partial[1]] = np.floor(mean)
    return out.astype(np.uint8), count > 0


def streamable_levels(width: int, height: int, factors: tuple[int, ...]) -> int:
    """How many of ``factors`` (2, 4, 8, ...) :func:`halve` can make: each level's parent must
    have even sides (its sides are then exactly the scene's over the factor)."""
    n, w, h = 0, width, height
    for i, f in enumerate(factors):
        if f != 2 ** (i + 1) or w % 2 or h % 2:
            break
        n, w, h = n + 1, w // 2, h // 2
    return n


class _Level:
    """One overview level's file (if it has one), written a band of rows at a time, and its
    odd leftover row."""

    def __init__(self, path: Path | None, width: int, height: int) -> None:
        self.path = path
        self.height = height
        self.ds = (
            None if path is None
            else open_scratch(path, width, height, {"kind": "none"}, False, SCRATCH_OPTIONS)
        )
        self.row = 0
        self.carry: tuple[np.ndarray, np.ndarray | None] | None = None

    def take(
        self, rgb: np.ndarray, valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The rows of ``rgb`` (and ``valid``) that pair up, after the row kept from the last
        call; an odd last row is kept for the next. None when no pair is complete."""
        if self.carry is not None:
            rgb = np.concatenate([self.carry[0], rgb], axis=1)
            valid = None if valid is None else np.concatenate([self.carry[1], valid], axis=0)
            self.carry = None
        if rgb.shape[1] % 2:
            self.carry = (rgb[:, -1:].copy(), None if valid is None else valid[-1:].copy())
            rgb = rgb[:, :-1]
            valid = None if valid is None else valid[:-1]
        if rgb.shape[1] == 0:
            return None
        return rgb, valid

    def write(self, rgb: np.ndarray, valid: np.ndarray | None) -> None:
        """Append rows of this level (and their mask, unless ``valid`` is None) to its file."""
        if self.ds is not None:
            window = Window(0, self.row, rgb.shape[2], rgb.shape[1])
            self.ds.write(rgb, indexes=[1, 2, 3], window=window)
            if valid is not None:
                self.ds.write_mask(valid.astype(np.uint8) * 255, window=window)
        self.row += rgb.shape[1]

    def close(self) -> None:
        if self.ds is not None and not self.ds.closed:
            self.ds.close()


class StreamedOverviews:
    """The overview levels of a scratch file or a direct COG, made from its rows as the
    writer writes them."""

    def __init__(self, scratch: Path, width: int, height: int, plan: OverviewPlan,
                 masked: bool, streamed: int, cog: CogWriter | None = None) -> None:
        """Use :meth:`for_plan`, which says whether streaming applies and how many of
        ``plan``'s levels (``streamed``) are halved here.

        ``cog``: the levels go to this COG (its levels 1, 2, ...; level 0 must exist) instead
        of files of their own; only the last streamed level still gets a file, when GDAL
        has levels to build from it.
        """
        self.scratch = scratch
        self.masked = masked
        self.cog = cog
        self.rest = tuple(f // 2**streamed for f in plan.factors[streamed:])
        self.vrt = scratch.with_name(f"{scratch.name}.vrt")
        self.levels: list[_Level] = []
        self.gdal_levels: list[_Level] = []  # the levels GDAL builds, copied out
        try:
            for i in range(1, streamed + 1):
                path = scratch.with_name(f"{scratch.name}.ovr{2**i}.tif")
                if cog is not None:
                    cog.add_level(width >> i, height >> i)
                    if i < streamed or not self.rest:
                        path = None
                self.levels.append(_Level(path, width >> i, height >> i))
        except BaseException:
            self.remove()
            raise

    @classmethod
    def for_plan(cls, scratch: Path, width: int, height: int, plan: OverviewPlan | None,
                 masked: bool, cog: CogWriter | None = None) -> StreamedOverviews | None:
        """Streamed overviews for ``plan`` (AVERAGE, factors 2, 4, ...), or None where the
        first level cannot be halved (an odd side) or the plan asks for something else."""
        if plan is None or plan.resampling != Resampling.average:
            return None
        streamed = streamable_levels(width, height, plan.factors)
        return cls(scratch, width, height, plan, masked, streamed, cog) if streamed else None

    def push(self, rgb: np.ndarray, valid: np.ndarray | None) -> None:
        """Rows just written (to the scratch file, or to the COG's full resolution): (3, n, W)
        uint8 and (n, W) bool validity (None when there is no mask, ``masked`` False), top to
        bottom."""
        for index, level in enumerate(self.levels, 1):
            pairs = level.take(rgb, valid)
            if pairs is None:
                return
            rgb, valid = halve(*pairs)
            level.write(rgb, valid)
            if self.cog is not None:
                self.cog.push(index, rgb, valid)

    def _close_levels(self) -> None:
        for index, level in enumerate(self.levels, 1):
            if level.carry is not None or level.row != level.height:
                raise RuntimeError(f"internal error: overview level {index} is incomplete")
            level.close()

    def finish_cog(self) -> None:
        """Complete the COG's overview levels: GDAL builds those past the streamed ones from
        the last streamed level's file, and they are pushed to the COG."""
        self._close_levels()
        for rgb, valid in self._rest_levels():
            self.cog.push(self.cog.add_level(rgb.shape[2], rgb.shape[1]), rgb, valid)

    def finish(self) -> Path:
        """Close the level files, let GDAL build the levels past the streamed ones, and write
        the VRT for the COG driver (the scratch file must be closed). Returns the VRT's path."""
        self._close_levels()
        paths = [level.path for level in self.levels] + self._gdal_levels()
        rasterio.shutil.copy(self.scratch, self.vrt, driver="VRT")
        tree = ET.parse(self.vrt)
        bands = tree.getroot().findall("VRTRasterBand")
        for band in bands:
            _add_overviews(band, paths, band.get("band", "1"))
        mask = tree.getroot().find("MaskBand/VRTRasterBand")
        if self.masked and mask is not None:
            _add_overviews(mask, paths, "mask,1")
        tree.write(self.vrt)
        return self.vrt

    def _rest_levels(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The levels past the streamed ones, largest first, as (C, h, w) uint8 and (h, w)
        validity (None unmasked): GDAL's overviews of the last streamed level's file."""
        if not self.rest:
            return
        last = self.levels[-1].path
        with rasterio.open(last, "r+") as ds:
            OverviewPlan(self.rest, Resampling.average).build(ds)
        for i in range(len(self.rest)):
            with rasterio.open(last, overview_level=i) as src:
                yield src.read(), (src.read_masks(1) > 0 if self.masked else None)

    def _gdal_levels(self) -> list[Path]:
        """Files of the levels past the streamed ones (:meth:`_rest_levels`), one per level."""
        last = self.levels[-1].path
        for f, (rgb, valid) in zip(self.rest, self._rest_levels(), strict=True):
            path = last.with_name(f"{self.scratch.name}.ovr{f * 2 ** len(self.levels)}.tif")
            level = _Level(path, rgb.shape[2], rgb.shape[1])
            self.gdal_levels.append(level)
            level.write(rgb, valid)
            level.close()
        return [level.path for level in self.gdal_levels]

    def remove(self) -> None:
        """Close and delete the level files and the VRT (they are temporaries)."""
        for level in self.levels + self.gdal_levels:
            level.close()
            if level.path is None:
                continue
            for name in (level.path, Path(f"{level.path}.msk")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.vrt)


def _add_overviews(band: ET.Element, paths: list[Path], source_band: str) -> None:
    """Name ``paths`` (largest first) as the overviews of a VRT band, read from ``source_band``."""
    for path in paths:
        overview = ET.SubElement(band, "Overview")
        name = ET.SubElement(overview, "SourceFilename", relativeToVRT="1")
        name.text = path.name
        ET.SubElement(overview, "SourceBand").text = source_band
