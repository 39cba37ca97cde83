"""The area within a distance of a set of line segments (isochrones of a walking network).

:func:`reach_polygon` returns the union of the discs of radius *w* around every point of
some segments, in planar metres: for an isochrone, the reachable pieces of a walking network
(see :meth:`yizhan.geo.network.WalkNetwork.isochrones`).

Buffering every segment and unioning the buffers (:func:`shapely.union_all`) is exact but
slow: about 80 ms for 3,000 segments, which all overlap their neighbours. Most of that
area is, however, the inside of street blocks, and inside a block the distance to the
network is the distance to the block's own boundary. So the segments are noded and
polygonized (:func:`shapely.polygonize_full`: the blocks, plus the segments that bound
no block -- dead ends, pieces cut off at the time limit, the outer boundary); each block
contributes itself minus its inward buffer (``buffer(face, -w)``); the union of the blocks
is buffered outwards once; only the segments that bound no block are buffered one by one
and unioned. The result is the same set (up to the polygons standing in for arcs) at a
quarter to a half of the cost.
Hand-written on top of shapely/GEOS because no library offers it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

#: Segments per quarter circle of the buffers' round ends.
QUAD_SEGS = 4
#: Round ends are drawn as polygons *around* the true circle (their edges touch it), so
#: the polygon never misses a point within the distance; it is at most 2 % wider.
_CIRCUMSCRIBE = 1.0 / math.cos(math.pi / (4 * QUAD_SEGS))


def edge_pieces(
    start_xy: NDArray[np.float64],
    end_xy: NDArray[np.float64],
    start_left_m: NDArray[np.float64],
    end_left_m: NDArray[np.float64],
    length_m: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The reachable pieces of edges, given the budget left at each end.

    Parameters
    ----------
    start_xy, end_xy : numpy.ndarray, shape (n, 2)
        Edge ends, planar metres.
    start_left_m : numpy.ndarray
        Metres of walk left on arriving at the start (>= 0: the start is reached).
    end_left_m : numpy.ndarray
        The same at the end (< 0 or -inf where the end is not reached).
    length_m : numpy.ndarray
        Edge lengths (walking metres; the piece lengths are these fractions of the segment).

    Returns
    -------
    numpy.ndarray, shape (m, 2, 2)
        The whole edge where the two reaches meet, else the piece from each reached end.
    """
    end_left = np.where(end_left_m > 0, end_left_m, 0.0)
    full = start_left_m + end_left >= length_m
    with np.errstate(divide="ignore", invalid="ignore"):
        f_start = np.where(full, 1.0, np.clip(start_left_m / length_m, 0.0, 1.0))
        f_end = np.where(full, 0.0, np.clip(end_left / length_m, 0.0, 1.0))
    d = end_xy - start_xy
    from_start = np.stack([start_xy, start_xy + f_start[:, None] * d], axis=1)
    back = f_end > 0
    from_end = np.stack([end_xy[back], end_xy[back] - f_end[back, None] * d[back]], axis=1)
    return np.concatenate([from_start, from_end])


def reach_polygon(segments: NDArray[np.float64], width_m: float) -> Any:
    """Every point within *width_m* of any of the segments (planar, metres).

    Parameters
    ----------
    segments : numpy.ndarray, shape (n, 2, 2)
        Segment ends ``[[x0, y0], [x1, y1]]``, metres; zero-length segments are points.
    width_m : float
        Distance, metres (> 0).

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        Contains every point within *width_m* of a segment; every point in it is within
        ``1.02 × width_m`` of one (round ends are polygons circumscribing their circles).
        Empty polygon when there are no segments.
    """
    segs = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)
    if segs.shape[0] == 0:
        return shapely.Polygon()
    w = float(width_m) * _CIRCUMSCRIBE
    zero = (segs[:, 0] == segs[:, 1]).all(axis=1)
    points = shapely.points(segs[zero, 0])
    segs = segs[~zero]
    loose: list[Any] = []
    area: Any = None
    if segs.shape[0]:
        lines = shapely.linestrings(
            segs.reshape(-1, 2), indices=np.repeat(np.arange(segs.shape[0]), 2)
        )
        noded = shapely.get_parts(shapely.union_all(lines))
        polys, cuts, dangles, invalid = shapely.polygonize_full(noded)
        for part in (cuts, dangles, invalid):
            loose.extend(shapely.get_parts(part))
        faces = shapely.get_parts(polys)
        if faces.size:
            blocks = shapely.coverage_union_all(faces)
            inner = shapely.get_parts(shapely.buffer(faces, -w, quad_segs=QUAD_SEGS))
            inner = inner[~shapely.is_empty(inner)]
            area = shapely.buffer(blocks, w, quad_segs=QUAD_SEGS)
            if inner.size:
                area = shapely.difference(area, shapely.multipolygons(inner))
    lines_only = [g for g in loose if shapely.get_type_id(g) == 1]  # LineString
    if lines_only:
        merged = shapely.line_merge(shapely.multilinestrings(lines_only))
        loose = [g for g in loose if shapely.get_type_id(g) != 1]
        loose.extend(shapely.get_parts(merged))
    pieces = shapely.buffer(np.array([*loose, *points], dtype=object), w, quad_segs=QUAD_SEGS)
    out = shapely.union_all(pieces)
    return out if area is None else shapely.union(area, out)
