"""The network file: one uncompressed NumPy ``.npz`` archive (a zip of ``.npy`` arrays).

Members (``n`` nodes, ``e`` entries of the symmetric adjacency = 2 × undirected edges):

=================  ==========  ==============================================================
``format``         str         ``"yizhan-walk-network"``
``format_version`` int64       :data:`FORMAT_VERSION`
``lon``, ``lat``   float64 n   node coordinates, degrees (WGS-84)
``indptr``         int64 n+1   CSR row pointers
``indices``        int32 e     CSR neighbour nodes
``length_m``       float64 e   edge lengths, metres on the sphere of R = 6,371,008.8 m
``osm_node_id``    int64 n     OpenStreetMap node ids
``meta``           str         JSON: source name, bytes and SHA-256, tag rules version,
                               creation time, counts, dropped pieces (``docs/walking.md``)
=================  ==========  ==============================================================

The archive is written to a temporary file and renamed into place, so a reader never sees
half a file. Every member carries the zip CRC-32, which is checked as it is read; a file
that is not such an archive, of another format version, or whose arrays do not fit
together raises :class:`NetworkFileError` naming the file and the problem.

``load_network(path, mmap=True)`` maps the arrays from the file instead of reading them
(the members are stored uncompressed, so each ``.npy`` lies whole in the file): analysis
processes open the server's network this way, sharing the operating system's page cache
instead of a copy each (``docs/walking.md`` has the measured cost). The CRC-32 is not
checked then (that would read every byte): the server that hands the file over checked it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.network import WalkNetwork
from yizhan.npzmap import mapped_npz

FORMAT_NAME = "yizhan-walk-network"
#: Bump when the members or their meaning change.
FORMAT_VERSION = 1

_MEMBERS = (
    "format",
    "format_version",
    "lon",
    "lat",
    "indptr",
    "indices",
    "length_m",
    "osm_node_id",
    "meta",
)


class NetworkFileError(InvalidInputError):
    """A network file cannot be used: not one, another version, or damaged."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__("network file", f"{path}: {message}")


@dataclass(frozen=True)
class NetworkFile:
    """A walking network with the OSM ids of its nodes and its metadata."""

    network: WalkNetwork
    osm_node_id: NDArray[np.int64]
    meta: dict[str, Any]


def save_network(path: str | Path, data: NetworkFile) -> Path:
    """Write *data* to *path* atomically (any file name; ``.network`` is customary)."""
    p = Path(path)
    net = data.network
    if data.osm_node_id.shape != (net.n_nodes,):
        raise InvalidInputError("osm_node_id", f"must have {net.n_nodes} entries")
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "lon": net.lon,
        "lat": net.lat,
        "indptr": net.indptr.astype(np.int64),
        "indices": net.indices.astype(np.int32),
        "length_m": net.length_m.astype(np.float64),
        "osm_node_id": np.asarray(data.osm_node_id, dtype=np.int64),
        "meta": np.array(json.dumps(data.meta, ensure_ascii=False, sort_keys=True)),
    }
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


class _Mapped:
    """:func:`~yizhan.npzmap.mapped_npz` members with the reading interface of ``np.load``'s archive."""

    def __init__(self, p: Path) -> None:
        self._members = mapped_npz(p, compressed=False)
        self.files = list(self._members)

    def __getitem__(self, name: str) -> Any:
        return self._members[name]

    def __enter__(self) -> _Mapped:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _archive(p: Path, mmap: bool) -> Any:
    return _Mapped(p) if mmap else np.load(p, allow_pickle=False)


def load_network(path: str | Path, check: bool = True, mmap: bool = False) -> NetworkFile:
    """Read a network file written by :func:`save_network`.

    Parameters
    ----------
    path : str or pathlib.Path
    check : bool
        Validate the graph (ranges, symmetry) as well as the format; about 0.5 s per
        million nodes.
    mmap : bool
        Map the arrays read-only from the file instead of reading them (see the module
        notes; the CRC-32 is not checked then).

    Raises
    ------
    NetworkFileError
        Not a network file, another format version, damaged, or inconsistent arrays.
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkFileError(p, "no such file")
    if not zipfile.is_zipfile(p):
        raise NetworkFileError(
            p, f"is not a Yizhan walking network ({FORMAT_NAME}, an .npz archive)"
        )
    try:
        with _archive(p, mmap) as z:
            missing = [m for m in _MEMBERS if m not in z.files]
            if "format" in missing or (z.files and str(z["format"]) != FORMAT_NAME):
                raise NetworkFileError(p, f"is not a Yizhan walking network ({FORMAT_NAME})")
            if missing:
                raise NetworkFileError(p, f"is damaged: missing {', '.join(missing)}")
            version = int(z["format_version"])
            if version != FORMAT_VERSION:
                raise NetworkFileError(
                    p,
                    f"has format version {version}; this Yizhan reads version "
                    f"{FORMAT_VERSION}: rebuild it with `yizhan network build`",
                )
            arrays = {m: z[m] for m in _MEMBERS if m not in ("format", "format_version")}
    except NetworkFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise NetworkFileError(p, f"is not a readable network file ({exc})") from exc
    try:
        meta = json.loads(str(arrays["meta"]))
        if not isinstance(meta, dict):
            raise ValueError("meta is not a JSON object")
    except ValueError as exc:
        raise NetworkFileError(p, f"has unreadable metadata ({exc})") from exc
    osm_id = arrays["osm_node_id"]
    if osm_id.shape != arrays["lon"].shape:
        raise NetworkFileError(p, "is damaged: osm_node_id and lon differ in length")
    try:
        net = WalkNetwork(
            arrays["lon"],
            arrays["lat"],
            arrays["indptr"],
            arrays["indices"],
            arrays["length_m"],
            check=check,
        )
    except InvalidInputError as exc:
        raise NetworkFileError(p, f"is damaged: {exc.message}") from exc
    return NetworkFile(net, np.asarray(osm_id, dtype=np.int64), meta)
