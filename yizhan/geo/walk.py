"""Snapped points, walking-distance results and checks shared by :mod:`yizhan.geo.network`.

Arrays in, arrays out; see :mod:`yizhan.geo.network` for what the distances mean.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from yizhan.errors import InvalidInputError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Int32Array = NDArray[np.int32]

#: Longest distance between two snapping samples on a segment, metres.
SNAP_SAMPLE_M = 40.0
#: Samples looked at per point, in rounds, before the last resort of a ball query.
_SNAP_K = (8, 32)
#: Points snapped at a time (bounds the memory of a large batch).
_SNAP_CHUNK = 65_536

#: Default walking speed, km/h (the issue's and the workers' page's 4.5 km/h).
WALK_SPEED_KMH = 4.5


def walk_minutes(walk_m: ArrayLike, speed_kmh: float = WALK_SPEED_KMH) -> FloatArray:
    """Minutes to walk *walk_m* metres at *speed_kmh* (default 4.5 km/h)."""
    speed = check_speed(speed_kmh)
    return np.asarray(np.asarray(walk_m, dtype=np.float64) / (speed * 1000.0 / 60.0))


def check_speed(speed_kmh: float, name: str = "speed_kmh") -> float:
    """A walking speed in km/h, or :class:`InvalidInputError` naming *name*."""
    s = float(speed_kmh)
    if not math.isfinite(s) or not 0.5 <= s <= 30.0:
        raise InvalidInputError(name, f"must be a walking speed between 0.5 and 30 km/h, got {s}")
    return s


@dataclass(frozen=True)
class Snapped:
    """Points snapped onto a network's edges (all arrays have one entry per point).

    Attributes
    ----------
    edge : numpy.ndarray of int
        Index of the edge (into :attr:`WalkNetwork.edge_u` etc.).
    fraction : numpy.ndarray of float
        Position along the edge from ``edge_u`` (0) to ``edge_v`` (1).
    snap_m : numpy.ndarray of float
        Great-circle metres from the point to its snap point (walked off the network).
    lon, lat : numpy.ndarray of float
        The snap points, degrees.
    point_lon, point_lat : numpy.ndarray of float
        The points themselves, degrees.
    u, v : numpy.ndarray of int
        The edge's end nodes.
    to_u_m, to_v_m : numpy.ndarray of float
        Metres along the edge from the snap point to ``u`` and to ``v``.
    """

    edge: IntArray
    fraction: FloatArray
    snap_m: FloatArray
    lon: FloatArray
    lat: FloatArray
    point_lon: FloatArray
    point_lat: FloatArray
    u: IntArray
    v: IntArray
    to_u_m: FloatArray
    to_v_m: FloatArray

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    def take(self, index: ArrayLike) -> Snapped:
        """The subset of points at *index* (positions or a boolean mask), in that order."""
        i = np.asarray(index)
        return Snapped(**{name: getattr(self, name)[i] for name in self.__dataclass_fields__})

    def too_far(self, max_snap_m: float) -> IntArray:
        """Positions of the points farther than *max_snap_m* from every walkable edge."""
        return np.flatnonzero(self.snap_m > max_snap_m).astype(np.int64)


class SnapTable:
    """Points already snapped, found again by their exact coordinates.

    A process that is handed the snaps of the points it will ask about (an analysis
    process: the server snapped them with its index) answers
    :meth:`WalkNetwork.snap <yizhan.geo.network.WalkNetwork.snap>` from here, without
    building the snapping index. A point is found when its longitude and latitude are the
    same float64 values (bit for bit) as a stored point's; the snap of a point does not
    depend on the other points of its batch, so the answer is the one a fresh snap gives.
    The very points of the table, in their order (a study's whole demand), are recognised
    by one comparison; others are looked up in the points sorted by their bytes.

    Parameters
    ----------
    snapped : Snapped
        The points and their snaps (any order; duplicates allowed).
    """

    def __init__(self, snapped: Snapped) -> None:
        self.snapped = snapped
        keys = point_keys(snapped.point_lon, snapped.point_lat)
        self.order = np.argsort(keys, kind="stable").astype(np.int64)
        self._keys: NDArray[np.void] | None = keys[self.order]

    def __len__(self) -> int:
        return len(self.snapped)

    def __getstate__(self) -> dict[str, Any]:
        return {"snapped": self.snapped, "order": self.order}  # keys: rebuilt when needed

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.snapped, self.order, self._keys = state["snapped"], state["order"], None

    @property
    def keys(self) -> NDArray[np.void]:
        """The points' keys (:func:`point_keys`) in :attr:`order`."""
        if self._keys is None:
            self._keys = point_keys(self.snapped.point_lon, self.snapped.point_lat)[self.order]
        return self._keys

    def holds_exactly(self, lon: FloatArray, lat: FloatArray) -> bool:
        """Whether (lon, lat) are the table's own points, in its order (bit for bit)."""
        p_lon, p_lat = self.snapped.point_lon, self.snapped.point_lat
        return bool(
            lon.shape == p_lon.shape
            and lon.tobytes() == p_lon.tobytes()
            and lat.tobytes() == p_lat.tobytes()
        )

    def find(self, lon: FloatArray, lat: FloatArray) -> IntArray:
        """Position in :attr:`snapped` of each point, -1 where it is not stored."""
        keys = self.keys
        if keys.size == 0:
            return np.full(np.size(lon), -1, dtype=np.int64)
        q = point_keys(lon, lat)
        pos = np.minimum(np.searchsorted(keys, q), keys.size - 1).astype(np.int64)
        return np.where(keys[pos] == q, self.order[pos], -1)


def snap_from_tables(
    tables: Sequence[SnapTable],
    px: FloatArray,
    py: FloatArray,
    snap: Callable[[FloatArray, FloatArray], Snapped],
) -> Snapped:
    """The snaps of the points (px, py) from *tables* where they hold them, from *snap*
    (the snapping index) for the rest, in the order of the points."""
    for table in tables:
        if table.holds_exactly(px, py):
            return table.snapped
    pieces: list[tuple[IntArray, Snapped]] = []
    todo = np.arange(px.size, dtype=np.int64)
    for table in tables:
        pos = table.find(px[todo], py[todo])
        hit = pos >= 0
        if hit.any():
            pieces.append((todo[hit], table.snapped.take(pos[hit])))
            todo = todo[~hit]
        if todo.size == 0:
            break
    if todo.size:
        pieces.append((todo, snap(px[todo], py[todo])))
    if len(pieces) == 1 and pieces[0][0].size == px.size:
        return pieces[0][1]  # every point from one table, in order
    out = {}
    for name in Snapped.__dataclass_fields__:
        first = getattr(pieces[0][1], name)
        arr = np.empty(px.size, dtype=first.dtype)
        for where, got in pieces:
            arr[where] = getattr(got, name)
        out[name] = arr
    return Snapped(**out)


def point_keys(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.void]:
    """One 16-byte key per point: its float64 longitude and latitude, bit for bit."""
    xy = np.empty((np.size(lon), 2), dtype=np.float64)
    xy[:, 0] = np.ravel(lon)
    xy[:, 1] = np.ravel(lat)
    return xy.view(np.dtype((np.void, 16))).ravel()


@dataclass(frozen=True)
class SourceField:
    """Every node's nearest source by walking, from :meth:`WalkNetwork.multi_source`.

    Attributes
    ----------
    node_m : numpy.ndarray of float
        Walking metres from the nearest source to each node (``inf`` beyond ``limit_m``).
    node_source : numpy.ndarray of int
        Position of that source in ``sources`` (-1 where none is within ``limit_m``).
    sources : Snapped
        The sources.
    limit_m : float
        Search limit, metres (``inf`` for none).
    """

    node_m: FloatArray
    node_source: IntArray
    sources: Snapped
    limit_m: float

    def at(self, targets: Snapped) -> tuple[FloatArray, IntArray]:
        """Walking metres from the nearest source to each target point, and that source.

        Returns ``(walk_m, source)``; ``inf`` and -1 where no source is within ``limit_m``.
        """
        walk_u = self.node_m[targets.u] + targets.to_u_m
        walk_v = self.node_m[targets.v] + targets.to_v_m
        via_v = walk_v < walk_u
        walk = np.where(via_v, walk_v, walk_u)
        src = np.where(via_v, self.node_source[targets.v], self.node_source[targets.u])
        s_idx, t_idx, direct = same_edge_pairs(self.sources, targets)
        if s_idx.size:
            order = np.lexsort((s_idx, direct, t_idx))
            first = np.ones(order.size, dtype=bool)
            first[1:] = t_idx[order][1:] != t_idx[order][:-1]
            best_t, best_s, best_d = t_idx[order][first], s_idx[order][first], direct[order][first]
            better = best_d < walk[best_t]
            walk[best_t[better]] = best_d[better]
            src[best_t[better]] = best_s[better]
        walk = walk + targets.snap_m
        out = ~(walk <= self.limit_m)
        walk[out] = np.inf
        src[out] = -1
        return walk, src.astype(np.int64)


@dataclass(frozen=True)
class WalkNeighbours:
    """Result of :meth:`WalkNetwork.nearest_k`: candidate ids and walking metres, nearest first."""

    index: IntArray
    walk_m: FloatArray
    origin: Snapped

    def __len__(self) -> int:
        return int(self.index.shape[0])


def same_edge_pairs(a: Snapped, b: Snapped) -> tuple[IntArray, IntArray, FloatArray]:
    """Pairs (i in *a*, j in *b*) on the same edge, with their along-edge walk plus ``a``'s snap."""
    if len(a) == 0 or len(b) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    order = np.argsort(a.edge, kind="stable")
    edges = a.edge[order]
    lo = np.searchsorted(edges, b.edge, side="left")
    hi = np.searchsorted(edges, b.edge, side="right")
    counts = hi - lo
    if not counts.any():
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    j = np.repeat(np.arange(len(b), dtype=np.int64), counts)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    i = order[starts + np.arange(j.size)].astype(np.int64)
    length = a.to_u_m[i] + a.to_v_m[i]
    d = a.snap_m[i] + np.abs(a.fraction[i] - b.fraction[j]) * length
    return i, j, d


class Scratch:
    """A pool of node-indexed int32 arrays (all -1 when idle), one per concurrent search."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._free: list[Int32Array] = []
        self._lock = threading.Lock()

    @contextmanager
    def take(self) -> Iterator[Int32Array]:
        with self._lock:
            arr = self._free.pop() if self._free else None
        if arr is None:
            arr = np.full(self._n, -1, dtype=np.int32)
        try:
            yield arr
        finally:
            with self._lock:
                self._free.append(arr)


@dataclass
class LocalSearch:
    """A bounded search on a local subgraph: ``dist[s, i]`` from seed *s* to ``nodes[i]``."""

    nodes: IntArray
    dist: FloatArray
    local: Int32Array  # global node -> local index, -1 outside (valid inside the search only)
    radius_m: float

    def node_dist(self, node: IntArray) -> FloatArray:
        """Distances (seeds × len(node)) to global *node* ids; ``inf`` outside the subgraph."""
        li = self.local[node]
        ok = li >= 0
        out = np.full((self.dist.shape[0], li.shape[0]), np.inf)
        out[:, ok] = self.dist[:, li[ok]]
        return out

    def walk_to(self, seeds: Snapped, targets: Snapped) -> FloatArray:
        """Walking metres (seeds × targets); ``inf`` where longer than the search radius."""
        du = self.node_dist(targets.u) + targets.to_u_m
        dv = self.node_dist(targets.v) + targets.to_v_m
        walk = np.minimum(du, dv)
        i, j, d = same_edge_pairs(seeds, targets)
        if i.size:
            np.minimum.at(walk, (i, j), d)
        walk += targets.snap_m
        walk[~(walk <= self.radius_m)] = np.inf
        return walk


def segment_fraction(q: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """Fraction along each segment a→b of the point nearest to q (0 for zero-length)."""
    ab = b - a
    den = np.einsum("ij,ij->i", ab, ab)
    num = np.einsum("ij,ij->i", q - a, ab)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(den > 0, num / den, 0.0)
    return np.asarray(np.clip(t, 0.0, 1.0))


def check_limit(limit_m: float, name: str = "limit_m") -> float:
    x = float(limit_m)
    if math.isnan(x) or x < 0:
        raise InvalidInputError(name, f"must be a distance >= 0 metres, got {x}")
    return x


def check_nodes(lon: FloatArray, lat: FloatArray) -> None:
    if lon.ndim != 1 or lat.shape != lon.shape:
        raise InvalidInputError("network", "lon and lat must be 1-D arrays of equal length")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise InvalidInputError("network", "node coordinates must be finite")
    if lon.size and (np.abs(lon).max() > 180 or np.abs(lat).max() > 90):
        raise InvalidInputError("network", "node coordinates must be lon/lat degrees")


def check_arrays(
    lon: FloatArray,
    lat: FloatArray,
    indptr: NDArray[Any],
    indices: NDArray[Any],
    length: NDArray[Any],
) -> None:
    check_nodes(lon, lat)
    n = lon.shape[0]
    if indptr.ndim != 1 or indptr.shape[0] != n + 1:
        raise InvalidInputError("network", f"indptr must have {n + 1} entries, has {indptr.shape}")
    if not (np.issubdtype(indptr.dtype, np.integer) and np.issubdtype(indices.dtype, np.integer)):
        raise InvalidInputError("network", "indptr and indices must be integers")
    if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != indices.shape[0]:
        raise InvalidInputError("network", "indptr must rise from 0 to the number of entries")
    if length.shape != indices.shape:
        raise InvalidInputError("network", "length_m must have one entry per adjacency entry")
    if indices.shape[0] >= 2**31:
        raise InvalidInputError("network", "too many edges for 32-bit indices")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise InvalidInputError("network", f"indices must be node numbers in [0, {n})")
    if not (np.isfinite(length).all() and (length >= 0).all()):
        raise InvalidInputError("network", "edge lengths must be finite and >= 0 metres")


def check_symmetric(indptr: NDArray[Any], indices: NDArray[Any], length: NDArray[Any]) -> None:
    """Every entry (i, j, w) has its twin (j, i, w); no self-loops, no repeated pairs."""
    rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    cols = np.asarray(indices, dtype=np.int64)
    if (rows == cols).any():
        raise InvalidInputError("network", "self-loops are not allowed")
    fwd = np.lexsort((cols, rows))
    bwd = np.lexsort((rows, cols))
    r, c = rows[fwd], cols[fwd]
    if ((r[1:] == r[:-1]) & (c[1:] == c[:-1])).any():
        raise InvalidInputError("network", "a pair of nodes is joined twice")
    if not (
        np.array_equal(r, cols[bwd])
        and np.array_equal(c, rows[bwd])
        and np.array_equal(length[fwd], length[bwd])
    ):
        raise InvalidInputError("network", "the adjacency is not symmetric (walks go both ways)")


class CellIndex:
    """Points bucketed in square cells of a plane, for "every point near here" queries.

    :meth:`disc` returns every point of every cell that a disc touches: a superset of the
    points in the disc, found as one contiguous slice of a sorted order per row of cells
    (no tree to walk), which is what a bounded search needs -- extra nodes cost a little
    time, never correctness.

    Parameters
    ----------
    x, y : numpy.ndarray
        Planar coordinates, metres.
    cell_m : float
        Side of a cell, metres.
    """

    def __init__(self, x: FloatArray, y: FloatArray, cell_m: float) -> None:
        self.cell_m = float(cell_m)
        self.x0, self.y0 = float(x.min()), float(y.min())
        cx = ((x - self.x0) // self.cell_m).astype(np.int64)
        cy = ((y - self.y0) // self.cell_m).astype(np.int64)
        self.ncx, self.ncy = int(cx.max()) + 1, int(cy.max()) + 1
        key = cy * self.ncx + cx
        self.order = np.argsort(key, kind="stable").astype(np.int64)
        self.keys, starts = np.unique(key[self.order], return_index=True)
        self.ptr = np.append(starts, key.size).astype(np.int64)

    def disc(self, x: FloatArray, y: FloatArray, radius_m: float) -> IntArray:
        """Positions of the points in the cells touched by discs of *radius_m* around (x, y)."""
        c = self.cell_m
        r = float(radius_m)
        cy0 = np.clip(((y - r - self.y0) // c).astype(np.int64), 0, self.ncy - 1)
        cy1 = np.clip(((y + r - self.y0) // c).astype(np.int64), 0, self.ncy - 1)
        n_rows = cy1 - cy0 + 1
        which = np.repeat(np.arange(x.size), n_rows)
        row = np.repeat(cy0, n_rows) + (
            np.arange(which.size) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
        )
        band_lo = self.y0 + row * c
        dy = np.maximum(np.maximum(band_lo - y[which], y[which] - (band_lo + c)), 0.0)
        half = np.sqrt(np.maximum(r * r - dy * dy, 0.0))
        cx0 = np.clip(((x[which] - half - self.x0) // c).astype(np.int64), 0, self.ncx - 1)
        cx1 = np.clip(((x[which] + half - self.x0) // c).astype(np.int64), 0, self.ncx - 1)
        lo = self.ptr[np.searchsorted(self.keys, row * self.ncx + cx0, side="left")]
        hi = self.ptr[np.searchsorted(self.keys, row * self.ncx + cx1, side="right")]
        counts = np.maximum(hi - lo, 0)
        pos = np.arange(int(counts.sum())) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
        out = self.order[pos]
        return np.sort(out) if x.size == 1 else np.unique(out)


def morton_order(x: FloatArray, y: FloatArray) -> IntArray:
    """Order of points along a Z-order (Morton) curve over their bounding box.

    Points near each other on the ground end up near each other in the order (16 bits per
    axis); works on lon/lat or planar coordinates alike.
    """
    if x.size == 0:
        return np.empty(0, np.int64)

    def scaled(x: FloatArray) -> NDArray[np.uint64]:
        lo, hi = float(x.min()), float(x.max())
        span = hi - lo if hi > lo else 1.0
        return np.minimum((x - lo) / span * 65535.0, 65535.0).astype(np.uint64)

    def spread(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
        x = (x | (x << np.uint64(8))) & np.uint64(0x00FF00FF)
        x = (x | (x << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        x = (x | (x << np.uint64(2))) & np.uint64(0x33333333)
        return (x | (x << np.uint64(1))) & np.uint64(0x55555555)

    code = spread(scaled(x)) | (spread(scaled(y)) << np.uint64(1))
    return np.argsort(code, kind="stable").astype(np.int64)


class SegmentIndex:
    """Exact nearest segment of planar points, from a KD-tree of samples along the segments.

    Samples at most :data:`SNAP_SAMPLE_M` apart (the middles of equal pieces of each
    segment) go into a :class:`scipy.spatial.cKDTree`. The nearest *k* samples of a point
    give candidate segments, whose exact point-to-segment distances decide. A segment
    not among the candidates has all its samples at least as far as the *k*-th sample,
    so it lies at least that minus half the spacing away; a point whose best distance is
    not below that bound is looked at again with more samples, and in the end with a ball
    query of every sample within its best distance plus half the spacing. Large batches
    are queried in Z-order, which makes them about three times faster.

    Parameters
    ----------
    a, b : numpy.ndarray, shape (n, 2)
        Segment ends, planar metres.
    """

    def __init__(self, a: FloatArray, b: FloatArray) -> None:
        self.a = a
        self.b = b
        seg = np.hypot(*(b - a).T)
        per = np.maximum(1, np.ceil(seg / SNAP_SAMPLE_M)).astype(np.int64)
        edge = np.repeat(np.arange(per.size, dtype=np.int64), per)
        step = np.arange(edge.size) - np.repeat(np.cumsum(per) - per, per)
        f = (step + 0.5) / per[edge]
        self.tree = cKDTree(a[edge] + f[:, None] * (b - a)[edge])
        self.sample_segment = edge

    def distance(self, q: FloatArray, seg: IntArray) -> FloatArray:
        """Distance from each point to its segment (same length arrays)."""
        a, b = self.a[seg], self.b[seg]
        t = segment_fraction(q, a, b)
        return np.asarray(np.hypot(*(a + t[:, None] * (b - a) - q).T))

    def nearest(self, q: FloatArray) -> tuple[IntArray, FloatArray]:
        """The nearest segment of each point and its distance (ties: any one of them)."""
        n = len(q)
        if n > 1024:
            order = morton_order(q[:, 0], q[:, 1])
            seg, dist = np.empty(n, dtype=np.int64), np.empty(n)
            for lo in range(0, n, _SNAP_CHUNK):
                part = order[lo : lo + _SNAP_CHUNK]
                seg[part], dist[part] = self._nearest(q[part])
            return seg, dist
        return self._nearest(q)

    def _nearest(self, q: FloatArray) -> tuple[IntArray, FloatArray]:
        n, size = len(q), int(self.sample_segment.size)
        seg = np.empty(n, dtype=np.int64)
        dist = np.empty(n)
        half = SNAP_SAMPLE_M / 2.0
        todo = np.arange(n)
        for k_max in _SNAP_K:
            k = min(k_max, size)
            sd, si = self.tree.query(q[todo], k=k, workers=-1 if todo.size > 4096 else 1)
            sd, si = sd.reshape(todo.size, k), si.reshape(todo.size, k)
            cand = self.sample_segment[si]
            d = self.distance(np.repeat(q[todo], k, axis=0), cand.ravel()).reshape(-1, k)
            best = np.argmin(d, axis=1)
            rows = np.arange(todo.size)
            seg[todo], dist[todo] = cand[rows, best], d[rows, best]
            if k == size:
                return seg, dist  # every sample was looked at
            todo = todo[d[rows, best] > sd[:, -1] - half]
            if todo.size == 0:
                return seg, dist
        hits = self.tree.query_ball_point(q[todo], dist[todo] + half)
        sizes = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        flat = self.sample_segment[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])]
        owner = np.repeat(np.arange(todo.size), sizes)
        d = self.distance(q[todo][owner], flat)
        order = np.lexsort((d, owner))
        first = order[np.searchsorted(owner[order], np.arange(todo.size))]
        seg[todo], dist[todo] = flat[first], d[first]
        return seg, dist
