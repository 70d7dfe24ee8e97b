"""Where an input raster is read from: a local path, or a URL or GDAL virtual path.

Scenes often live in object stores as Cloud-Optimized GeoTIFFs (Sentinel-1 RTC and GRD
collections on AWS, Azure or the Copernicus Data Space). GDAL reads them in place, block by
block, through its virtual file systems; the streaming engine then fetches only the blocks
it reads (with ``--bounds``, only the area's). Such an input stays the text the user gave:
a :class:`~pathlib.Path` would fold the ``//`` of ``https://`` and break it.

- ``http://``, ``https://``, ``ftp://`` -> ``/vsicurl/URL`` (a query string, such as a
  signed URL's token, is kept);
- ``s3://bucket/key`` -> ``/vsis3/bucket/key``, ``gs://`` -> ``/vsigs/``, ``az://`` ->
  ``/vsiaz/`` (credentials as GDAL reads them: ``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``,
  ``AZURE_STORAGE_*`` ...);
- a GDAL virtual path (``/vsicurl/...``, ``/vsis3/...``, ``/vsizip/...``) as it is;
- ``file:///data/a%20b.tif`` is the local path ``/data/a b.tif``; anything else is a local
  path.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import rasterio

#: URL schemes GDAL reads remotely, and the virtual file system that reads each.
REMOTE_SCHEMES = {
    "http": "/vsicurl/",
    "https": "/vsicurl/",
    "ftp": "/vsicurl/",
    "s3": "/vsis3/",
    "gs": "/vsigs/",
    "az": "/vsiaz/",
}

#: GDAL settings for remote reads, used where the environment does not set them:
#: no listing of the "folder" on open (a request per sidecar name, or a whole bucket
#: prefix), a few retries for a transient HTTP error in a long batch, adjacent block
#: ranges merged into one request, and a small cache of the bytes fetched (the rows that
#: neighbouring tile bands share are read twice).
REMOTE_GDAL_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 * 1024 * 1024),
}

RasterSource = Path | str


def _scheme(text: str) -> str | None:
    head, sep, _ = text.partition("://")
    return head.lower() if sep and head.lower() in REMOTE_SCHEMES else None


def raster_source(value: str | os.PathLike[str]) -> RasterSource:
    """A command-line or API input as the engine keeps it: a URL or a GDAL virtual path as
    its exact text (``str``), anything else as a :class:`~pathlib.Path`."""
    if isinstance(value, Path):
        return value
    text = os.fspath(value)
    if _scheme(text) or text.startswith("/vsi"):
        return text
    if text.lower().startswith("file://"):  # a local file's URL: file:///data/a%20b.tif
        return Path(unquote(urlsplit(text).path))
    return Path(text)


def is_virtual(src: RasterSource) -> bool:
    """Whether ``src`` is read through GDAL's virtual file systems, not as a local file."""
    return isinstance(src, str) or str(src).startswith("/vsi")


def gdal_path(src: RasterSource) -> str:
    """The path GDAL opens for ``src``: ``https://h/a.tif`` -> ``/vsicurl/https://h/a.tif``,
    ``s3://b/k.tif`` -> ``/vsis3/b/k.tif``; virtual and local paths unchanged."""
    text = os.fspath(src)
    scheme = _scheme(text)
    if scheme is None:
        return text
    prefix = REMOTE_SCHEMES[scheme]
    return prefix + (text if prefix == "/vsicurl/" else text.split("://", 1)[1])


def source_path(src: RasterSource) -> PurePosixPath:
    """The path part of ``src``, for its name, suffix and folder: a URL's path without its
    query (``https://h/d/a.tif?sig=x`` -> ``/d/a.tif``); a virtual path's inner path."""
    if isinstance(src, Path):
        return PurePosixPath(src.as_posix())
    text = src
    for prefix in ("/vsicurl/", "/vsicurl_streaming/"):
        if text.startswith(prefix) and _scheme(text[len(prefix):]):
            text = text[len(prefix):]
    if _scheme(text):
        return PurePosixPath(urlsplit(text).path or "/")
    return PurePosixPath(text)


def source_name(src: RasterSource) -> str:
    """The file name of ``src`` (``https://h/d/a.tif?sig=x`` -> ``a.tif``)."""
    return source_path(src).name


#: GDAL's virtual file systems that read over the network.
NETWORK_FILE_SYSTEMS = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss",
                        "/vsiswift", "/vsiwebhdfs")


def is_network(src: RasterSource) -> bool:
    """Whether GDAL reads ``src`` over the network (a URL, ``/vsicurl/...``,
    ``/vsizip//vsis3/...``), not from local disk (a local path, ``/vsizip/`` of a local zip)."""
    text = gdal_path(src)
    return text.startswith("/vsi") and any(fs in text for fs in NETWORK_FILE_SYSTEMS)


@contextlib.contextmanager
def remote_read_env(src: RasterSource) -> Iterator[None]:
    """:data:`REMOTE_GDAL_DEFAULTS` for a ``src`` read over the network, except those the
    environment sets; nothing for a local one."""
    if not is_network(src):
        yield
        return
    settings = {k: v for k, v in REMOTE_GDAL_DEFAULTS.items() if k not in os.environ}
    with rasterio.Env(**settings):
        yield
