"""Build a walking network from an OpenStreetMap file.

Steps: read the walkable ways (:mod:`yizhan.network.osm`); edge lengths are great-circle
metres between consecutive nodes on the sphere of
:data:`yizhan.geo.distance.EARTH_RADIUS_M`; repeated node pairs keep the shortest;
the graph is compacted to its largest connected component (the pieces left out --
typically gated compounds, footpaths cut off at the extract's edge, mapping gaps -- are
counted and the largest are listed in the file's metadata, so a planner can see what a
station in them would miss); nodes are numbered along a Z-order (Morton) curve so that
nodes near each other on the ground are near each other in memory, which keeps local
searches cache-friendly.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from yizhan.errors import InvalidInputError
from yizhan.geo.network import WalkNetwork
from yizhan.geo.walk import morton_order
from yizhan.network.osm import Progress, check_osm_path, read_walkways
from yizhan.network.store import FORMAT_VERSION, NetworkFile
from yizhan.network.tags import TAG_RULES_VERSION

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: How many of the largest dropped pieces are listed in the metadata.
DROPPED_LISTED = 20


@dataclass
class BuildReport:
    """What a build read, kept and dropped, and how long it took."""

    source: str
    counts: dict[str, int]
    nodes: int
    edges: int
    length_m: float
    dropped_components: int
    dropped_nodes: int
    dropped_length_m: float
    dropped: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "counts": dict(self.counts),
            "nodes": self.nodes,
            "edges": self.edges,
            "length_m": round(self.length_m, 1),
            "dropped_components": self.dropped_components,
            "dropped_nodes": self.dropped_nodes,
            "dropped_length_m": round(self.dropped_length_m, 1),
            "dropped_largest": self.dropped,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def compact(
    lon: FloatArray, lat: FloatArray, u: IntArray, v: IntArray
) -> tuple[WalkNetwork, IntArray, dict[str, Any]]:
    """The largest connected component, renumbered in Morton order.

    Returns
    -------
    network : WalkNetwork
    kept : numpy.ndarray of int
        For each node of *network*, its position in the input arrays.
    dropped : dict
        ``components``, ``nodes``, ``length_m`` of the pieces left out, and ``largest``:
        up to :data:`DROPPED_LISTED` of them (nodes, length, a representative lon/lat).
    """
    full = WalkNetwork.from_edges(lon, lat, u, v)
    n = full.n_nodes
    if full.n_edges == 0:
        raise InvalidInputError("input", "contains no walkable ways")
    n_comp, label = connected_components(full.graph, directed=False)
    sizes = np.bincount(label, minlength=n_comp)
    main = int(np.argmax(sizes))
    lengths = np.bincount(label[full.edge_u], weights=full.edge_m, minlength=n_comp)
    others = np.flatnonzero(np.arange(n_comp) != main)
    # Pieces of a single node come from ways cut down to nothing (e.g. a one-node way).
    others = others[lengths[others] > 0]
    listed = others[np.lexsort((others, -lengths[others]))][:DROPPED_LISTED]
    first_node = np.full(n_comp, -1, dtype=np.int64)
    first_node[label[::-1]] = np.arange(n)[::-1]
    dropped = {
        "components": int(others.size),
        "nodes": int(sizes[others].sum()),
        "length_m": float(lengths[others].sum()),
        "largest": [
            {
                "nodes": int(sizes[c]),
                "length_m": round(float(lengths[c]), 1),
                "lon": round(float(lon[first_node[c]]), 7),
                "lat": round(float(lat[first_node[c]]), 7),
            }
            for c in listed
        ],
    }
    keep = np.flatnonzero(label == main)
    keep = keep[morton_order(lon[keep], lat[keep])]
    new_of_old = np.full(n, -1, dtype=np.int64)
    new_of_old[keep] = np.arange(keep.size)
    eu, ev, em = new_of_old[full.edge_u], new_of_old[full.edge_v], full.edge_m
    del full, label, new_of_old  # before the second graph is built: peak memory
    inside = eu >= 0
    net = WalkNetwork.from_edges(lon[keep], lat[keep], eu[inside], ev[inside], em[inside])
    return net, keep, dropped


def build_network(
    path: str | Path, progress: Progress | None = None
) -> tuple[NetworkFile, BuildReport]:
    """Build the walking network of an OSM file (see the module docstring).

    Parameters
    ----------
    path : str or pathlib.Path
        ``.osm.pbf``, ``.osm`` or ``.osm.bz2``.
    progress : callable, optional
        ``progress(stage, done, total)`` for the stages ``hashing``, ``reading``,
        ``building``.

    Returns
    -------
    NetworkFile, BuildReport
    """
    p = check_osm_path(path)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if progress is not None:
        progress("hashing", 0, 1)
    digest = sha256_file(p)
    seconds["hash"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    ways = read_walkways(p, progress)
    seconds["read"] = time.perf_counter() - t1
    if ways.u.size == 0:
        raise InvalidInputError("input", f"{p}: contains no walkable ways")
    if progress is not None:
        progress("building", 0, 1)
    t2 = time.perf_counter()
    net, kept, dropped = compact(ways.lon, ways.lat, ways.u, ways.v)
    seconds["build"] = time.perf_counter() - t2
    if progress is not None:
        progress("building", 1, 1)
    report = BuildReport(
        source=p.name,
        counts=ways.counts,
        nodes=net.n_nodes,
        edges=net.n_edges,
        length_m=net.total_length_m,
        dropped_components=int(dropped["components"]),
        dropped_nodes=int(dropped["nodes"]),
        dropped_length_m=float(dropped["length_m"]),
        dropped=list(dropped["largest"]),
        seconds=seconds,
    )
    meta = {
        "format_version": FORMAT_VERSION,
        "tag_rules_version": TAG_RULES_VERSION,
        "source_name": p.name,
        "source_sha256": digest,
        "source_bytes": p.stat().st_size,
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "bounds": list(net.bounds()),
        **{k: v for k, v in report.as_dict().items() if k not in ("source", "seconds")},
    }
    return NetworkFile(net, ways.node_id[kept], meta), report
