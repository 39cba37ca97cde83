"""Read the walkable ways of an OpenStreetMap file (``.osm.pbf``, ``.osm``, ``.osm.bz2``).

Reading is done by pyosmium (the Python bindings of libosmium, which decode PBF blocks on
several threads and keep node locations in a compact in-memory index); only nodes and
ways are read, and a C++ key filter passes on only objects tagged ``highway`` or
``barrier``, so Python sees a small share of a large file.

Each walkable way (:func:`yizhan.network.tags.is_walkable_way`) contributes an edge
between each two consecutive nodes; a way is cut where a node is missing from the file
(ways leaving the extract) and at blocking barriers
(:func:`~yizhan.network.tags.is_blocking_node`). A walkable *area* (a square: a closed
way with ``area=yes``) keeps its outline and also gets a straight edge between each two
of its entrances (outline nodes shared with other walkable ways) whose straight line lies
inside the area, so a walk across a square is not sent around its edge. Multipolygon
relations are not read.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium
import shapely
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.network.tags import is_blocking_node, is_walkable_area, is_walkable_way

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: ``(stage, done, total)``; *total* is ``None`` when it is not known in advance.
Progress = Callable[[str, int, int | None], None]

#: File name endings pyosmium reads (it picks the format from the name).
SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz")

#: Entrances beyond this many on one area are not joined pairwise (the outline still is).
MAX_AREA_ENTRANCES = 64

_REPORT_EVERY = 100_000


@dataclass
class OsmWalkways:
    """The walkable ways of a file, as node arrays and an edge list.

    Attributes
    ----------
    node_id : numpy.ndarray of int
        OSM node ids of the nodes used by an edge (sorted).
    lon, lat : numpy.ndarray of float
        Their coordinates, degrees.
    u, v : numpy.ndarray of int
        Edges, as positions into ``node_id``.
    counts : dict
        What was read and left out (see ``docs/walking.md``).
    """

    node_id: IntArray
    lon: FloatArray
    lat: FloatArray
    u: IntArray
    v: IntArray
    counts: dict[str, int] = field(default_factory=dict)


def check_osm_path(path: str | Path) -> Path:
    """The path of a readable OSM file, or :class:`InvalidInputError` saying what is wrong."""
    p = Path(path)
    if not p.name.lower().endswith(SUFFIXES):
        raise InvalidInputError(
            "input", f"{p}: expected an OpenStreetMap file ending in {', '.join(SUFFIXES)}"
        )
    if not p.is_file():
        raise InvalidInputError("input", f"{p}: no such file")
    return p


def read_walkways(path: str | Path, progress: Progress | None = None) -> OsmWalkways:
    """Read the walkable ways and blocking barriers of an OSM file.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.osm.pbf``, ``.osm`` or ``.osm.bz2`` (also ``.osm.gz``).
    progress : callable, optional
        Called as ``progress("reading", objects_read, None)`` now and then.

    Returns
    -------
    OsmWalkways
    """
    p = check_osm_path(path)
    # typed arrays, not lists: 8 bytes an entry instead of about 32
    refs = array("q")
    lons = array("d")
    lats = array("d")
    starts = array("q")
    areas: list[tuple[int, int]] = []  # (start, stop) in the flat arrays
    blocked: set[int] = set()
    counts = dict.fromkeys(
        ("ways_tagged", "ways_walkable", "areas", "missing_nodes", "blocking_nodes"), 0
    )
    seen = 0
    try:
        processor = (
            osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("highway", "barrier"))
        )
        for obj in processor:
            seen += 1
            if progress is not None and seen % _REPORT_EVERY == 0:
                progress("reading", seen, None)
            if isinstance(obj, osmium.osm.Node):
                if is_blocking_node({t.k: t.v for t in obj.tags}):
                    blocked.add(obj.id)
                continue
            if not isinstance(obj, osmium.osm.Way) or "highway" not in obj.tags:
                continue
            counts["ways_tagged"] += 1
            tags = {t.k: t.v for t in obj.tags}
            if not is_walkable_way(tags):
                continue
            counts["ways_walkable"] += 1
            first = len(refs)
            starts.append(first)
            for node in obj.nodes:
                refs.append(node.ref)
                loc = node.location
                if loc.valid():
                    lons.append(loc.lon)
                    lats.append(loc.lat)
                else:
                    lons.append(math.nan)
                    lats.append(math.nan)
            if len(refs) - first >= 4 and refs[first] == refs[-1] and is_walkable_area(tags):
                areas.append((first, len(refs)))
    except RuntimeError as exc:  # libosmium's errors (bad file, bad data) arrive as these
        raise InvalidInputError("input", f"{p}: cannot read OpenStreetMap data ({exc})") from exc
    if progress is not None:
        progress("reading", seen, seen)
    return _assemble(refs, lons, lats, starts, areas, blocked, counts)


def _assemble(
    refs_l: array[int],
    lons_l: array[float],
    lats_l: array[float],
    starts_l: array[int],
    areas: list[tuple[int, int]],
    blocked: set[int],
    counts: dict[str, int],
) -> OsmWalkways:
    refs = np.frombuffer(refs_l, dtype=np.int64) if len(refs_l) else np.empty(0, np.int64)
    lon = np.frombuffer(lons_l, dtype=np.float64) if len(lons_l) else np.empty(0)
    lat = np.frombuffer(lats_l, dtype=np.float64) if len(lats_l) else np.empty(0)
    valid = np.isfinite(lon)
    counts["missing_nodes"] = int(np.unique(refs[~valid]).size)
    block = np.isin(refs, np.fromiter(blocked, dtype=np.int64, count=len(blocked)))
    counts["blocking_nodes"] = int(np.unique(refs[block]).size)
    usable = valid & ~block
    new_way = np.zeros(refs.size, dtype=bool)
    new_way[np.frombuffer(starts_l, dtype=np.int64) if len(starts_l) else []] = True
    pair = ~new_way[1:] & usable[1:] & usable[:-1]
    eu, ev = refs[:-1][pair], refs[1:][pair]
    cu, cv = _area_links(refs, lon, lat, usable, areas)
    counts["areas"] = len(areas)
    counts["area_links"] = int(cu.size)
    eu, ev = np.concatenate([eu, cu]), np.concatenate([ev, cv])
    node_id = np.unique(np.concatenate([eu, ev]))
    # Coordinates of each used node from one of its (valid) occurrences.
    order = np.argsort(refs, kind="stable")
    pos = order[np.searchsorted(refs[order], node_id)]
    ok = valid[pos]
    if not ok.all():  # the first occurrence lacked a location; look for a valid one
        vrefs = refs[valid]
        vorder = np.argsort(vrefs, kind="stable")
        vpos = np.flatnonzero(valid)[vorder[np.searchsorted(vrefs[vorder], node_id[~ok])]]
        pos[~ok] = vpos
    return OsmWalkways(
        node_id=node_id,
        lon=lon[pos],
        lat=lat[pos],
        u=np.searchsorted(node_id, eu).astype(np.int64),
        v=np.searchsorted(node_id, ev).astype(np.int64),
        counts=counts,
    )


def _area_links(
    refs: IntArray,
    lon: FloatArray,
    lat: FloatArray,
    usable: NDArray[np.bool_],
    areas: list[tuple[int, int]],
) -> tuple[IntArray, IntArray]:
    """Straight edges across walkable areas between their entrances."""
    if not areas:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    uniq, total = np.unique(refs, return_counts=True)
    out_u: list[IntArray] = []
    out_v: list[IntArray] = []
    for start, stop in areas:
        ring = refs[start:stop]
        if not usable[start:stop].all():
            continue  # partly outside the extract or gated: keep only its outline
        ids, in_ring = np.unique(ring[:-1], return_counts=True)
        elsewhere = total[np.searchsorted(uniq, ids)] - in_ring - (ids == ring[0])
        entrances = ids[elsewhere > 0][:MAX_AREA_ENTRANCES]
        if entrances.size < 2:
            continue
        scale = math.cos(math.radians(float(np.mean(lat[start:stop]))))
        poly = shapely.Polygon(np.column_stack([lon[start:stop] * scale, lat[start:stop]]))
        if not poly.is_valid:
            continue
        where = np.searchsorted(ring[:-1], entrances, sorter=np.argsort(ring[:-1]))
        first = np.argsort(ring[:-1])[where] + start
        i, j = np.triu_indices(entrances.size, k=1)
        a, b = first[i], first[j]
        lines = shapely.linestrings(
            np.stack(
                [
                    np.column_stack([lon[a] * scale, lat[a]]),
                    np.column_stack([lon[b] * scale, lat[b]]),
                ],
                axis=1,
            )
        )
        inside = shapely.covers(poly, lines)
        out_u.append(refs[a[inside]])
        out_v.append(refs[b[inside]])
    if not out_u:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_u), np.concatenate(out_v)
