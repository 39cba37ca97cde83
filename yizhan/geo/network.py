"""Walking networks: snapping, exact walking distances, nearest, coverage sets and isochrones.

A :class:`WalkNetwork` is an undirected graph of straight segments between nodes given in
longitude/latitude: walkers use one-way streets both ways, so every edge is stored in both
directions of one CSR matrix (:mod:`scipy.sparse`), weighted by its length in metres on
the sphere of :data:`yizhan.geo.distance.EARTH_RADIUS_M`.

Walking distance between two arbitrary points
    A point is *snapped* to the nearest point **on** an edge (projected onto the segment,
    not to the nearest node). The walk counts the straight off-network stretch to that
    point (``snap_m``), the way along the edge to one of its ends (``fraction × length``),
    the network between edges, and the same at the far end. Two points on one edge also
    get their direct along-edge distance. Great-circle distance is therefore a lower bound
    of every walking distance, which the searches below rely on.

Snapping is exact (:class:`~yizhan.geo.walk.SegmentIndex`): samples along the edges, in
the network's :class:`~yizhan.geo.projection.LocalProjection`, go into a KD-tree; the
nearest samples give candidate edges whose exact point-to-segment distances decide, with a
bound that proves no other edge is nearer (or more samples are looked at). Numpy arrays are
used instead of a shapely STRtree of edge LineStrings because they take a fraction of the
memory on a million edges and answer batches in vectorised steps.

Shortest paths are :func:`scipy.sparse.csgraph.dijkstra` throughout:

* from many sources at once (:meth:`WalkNetwork.multi_source`): virtual nodes at the
  sources' snap points joined to their edge's two ends, then one search with
  ``min_only=True`` (cost grows with the graph, not with sources × targets);
* from one point or a few nearby points (nearest, isochrones, cover sets): the same search
  on the subgraph of the nodes within great-circle distance *r* of the points (found in a
  grid of cells, :class:`~yizhan.geo.walk.CellIndex`). Every path no longer than *r*
  stays inside that disc, so distances up to *r* are exact, and the search touches a few
  thousand nodes; a search over the whole graph would allocate and fill arrays for every
  node on each call, a cost that grows with the graph (a city, a province, a country).

Isochrone polygons (the area reachable on foot) are built by :mod:`yizhan.geo.isochrone`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from yizhan.errors import InvalidInputError
from yizhan.geo.distance import EARTH_RADIUS_M, haversine_m, m_to_chord, unit_vectors
from yizhan.geo.isochrone import edge_pieces, reach_polygon
from yizhan.geo.projection import LocalProjection
from yizhan.geo.walk import (
    SNAP_SAMPLE_M,
    WALK_SPEED_KMH,
    CellIndex,
    LocalSearch,
    Scratch,
    SegmentIndex,
    Snapped,
    SnapTable,
    SourceField,
    WalkNeighbours,
    check_arrays,
    check_limit,
    check_nodes,
    check_speed,
    check_symmetric,
    segment_fraction,
    snap_from_tables,
    walk_minutes,
)

__all__ = [
    "SNAP_SAMPLE_M",
    "WALK_SPEED_KMH",
    "SnapTable",
    "Snapped",
    "SourceField",
    "WalkNeighbours",
    "WalkNetwork",
    "walk_minutes",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Int32Array = NDArray[np.int32]

#: Relative and absolute slack of a great-circle ball of targets (chord rounding).
_BALL_REL = 1e-6
_BALL_ABS_M = 1.0


class WalkNetwork:
    """An undirected walking graph: nodes in degrees, edges with lengths in metres.

    Parameters
    ----------
    lon, lat : array_like
        Node coordinates, degrees.
    indptr, indices, length_m : array_like
        The symmetric CSR adjacency: node ``i``'s neighbours are
        ``indices[indptr[i]:indptr[i+1]]`` at ``length_m`` metres. Each undirected edge
        appears once in each direction; no self-loops, no repeated pairs.
    check : bool
        Also check that the adjacency is symmetric without repeated pairs or self-loops
        (shapes and ranges are always checked); a clear error names the problem.

    Examples
    --------
    >>> net = WalkNetwork.from_edges([0.0, 0.001, 0.002], [0.0, 0.0, 0.0], [0, 1], [1, 2])
    >>> round(float(net.multi_source(net.snap([0.0], [0.0])).node_m[2]))
    222
    """

    def __init__(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        indptr: ArrayLike,
        indices: ArrayLike,
        length_m: ArrayLike,
        check: bool = True,
    ) -> None:
        self.lon = np.ascontiguousarray(lon, dtype=np.float64)
        self.lat = np.ascontiguousarray(lat, dtype=np.float64)
        n = int(self.lon.shape[0])
        ip = np.asarray(indptr)
        ix = np.asarray(indices)
        ln = np.asarray(length_m)
        check_arrays(self.lon, self.lat, ip, ix, ln)
        self.graph = sp.csr_matrix(
            (
                np.ascontiguousarray(ln, dtype=np.float64),
                np.ascontiguousarray(ix, dtype=np.int32),
                np.ascontiguousarray(ip, dtype=np.int32),
            ),
            shape=(n, n),
        )
        if check:
            check_symmetric(ip, ix, ln)
        self._scratch = Scratch(n)
        self._lock = threading.Lock()
        self._known: tuple[SnapTable, ...] = ()

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_edges(
        cls,
        lon: ArrayLike,
        lat: ArrayLike,
        u: ArrayLike,
        v: ArrayLike,
        length_m: ArrayLike | None = None,
    ) -> WalkNetwork:
        """A network from an edge list (either direction; duplicates keep the shortest).

        Parameters
        ----------
        lon, lat : array_like
            Node coordinates, degrees.
        u, v : array_like of int
            Edge end nodes; self-loops are dropped.
        length_m : array_like, optional
            Edge lengths; default the great-circle distance between the ends.
        """
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        check_nodes(x, y)
        a = np.asarray(u, dtype=np.int64)
        b = np.asarray(v, dtype=np.int64)
        if a.shape != b.shape:
            raise InvalidInputError("v", f"has {b.size} entries but u has {a.size}")
        n = x.shape[0]
        if n >= 2**31:
            raise InvalidInputError("lon", "too many nodes for 32-bit indices")
        if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
            raise InvalidInputError("u", f"edge ends must be node numbers in [0, {n})")
        ln = (
            haversine_m(x[a], y[a], x[b], y[b])
            if length_m is None
            else np.asarray(length_m, dtype=np.float64)
        )
        if ln.shape != a.shape or not (np.isfinite(ln).all() and (ln >= 0).all()):
            raise InvalidInputError("length_m", "must be one finite length >= 0 per edge")
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keep = lo != hi
        lo, hi, ln = lo[keep], hi[keep], ln[keep]
        order = np.lexsort((ln, hi, lo))
        lo, hi, ln = lo[order], hi[order], ln[order]
        first = np.ones(lo.size, dtype=bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        lo, hi, ln = lo[first], hi[first], ln[first]
        lo32, hi32 = lo.astype(np.int32), hi.astype(np.int32)
        del a, b, lo, hi, keep, order, first
        g = sp.csr_matrix(
            (
                np.concatenate([ln, ln]),
                (np.concatenate([lo32, hi32]), np.concatenate([hi32, lo32])),
            ),
            shape=(n, n),
        )
        g.sort_indices()  # (explicit zero lengths stay: they are edges)
        return cls(x, y, g.indptr, g.indices, g.data, check=False)

    # -- basic views ---------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return int(self.graph.shape[0])

    @property
    def n_edges(self) -> int:
        """Undirected edges."""
        return int(self.graph.nnz // 2)

    @property
    def indptr(self) -> Int32Array:
        return np.asarray(self.graph.indptr)

    @property
    def indices(self) -> Int32Array:
        return np.asarray(self.graph.indices)

    @property
    def length_m(self) -> FloatArray:
        return np.asarray(self.graph.data)

    @cached_property
    def _edges(self) -> tuple[IntArray, IntArray, FloatArray]:
        rows = np.repeat(np.arange(self.n_nodes, dtype=np.int64), np.diff(self.indptr))
        cols = self.indices.astype(np.int64)
        up = rows < cols
        return rows[up], cols[up], self.length_m[up]

    @property
    def edge_u(self) -> IntArray:
        """First end of each undirected edge (the smaller node number)."""
        return self._edges[0]

    @property
    def edge_v(self) -> IntArray:
        """Second end of each undirected edge."""
        return self._edges[1]

    @property
    def edge_m(self) -> FloatArray:
        """Length of each undirected edge, metres."""
        return self._edges[2]

    @property
    def total_length_m(self) -> float:
        return float(self.edge_m.sum())

    def bounds(self) -> tuple[float, float, float, float]:
        """``(min_lon, min_lat, max_lon, max_lat)`` of the nodes."""
        return (
            float(self.lon.min()),
            float(self.lat.min()),
            float(self.lon.max()),
            float(self.lat.max()),
        )

    @cached_property
    def projection(self) -> LocalProjection:
        """The local metric projection snapping works in (centred on the nodes' bounds)."""
        return LocalProjection.for_points(self.lon, self.lat)

    @cached_property
    def _xy(self) -> FloatArray:
        x, y = self.projection.to_xy(self.lon, self.lat)
        return np.column_stack([x, y])

    @cached_property
    def _cells(self) -> tuple[CellIndex, float]:
        """Cells of about 12 nodes, and the projection's largest scale error on the nodes."""
        x, y = self._xy[:, 0], self._xy[:, 1]
        area = max(float(np.ptp(x)) * float(np.ptp(y)), 1.0)
        cell = min(max(math.sqrt(12.0 * area / max(self.n_nodes, 1)), 20.0), 2000.0)
        # Distances in an azimuthal equidistant projection are at most 1 + ρ²/(6R²) times
        # the great-circle ones (ρ: distance from its centre), and never shorter.
        rho = float(np.hypot(x, y).max()) / EARTH_RADIUS_M
        return CellIndex(x, y, cell), 1e-6 + 1.1 * rho * rho / 6.0

    @cached_property
    def _segments(self) -> SegmentIndex:
        return SegmentIndex(self._xy[self.edge_u], self._xy[self.edge_v])

    def prepare(self) -> None:
        """Build the lazy indexes now (snapping and search trees), e.g. before serving."""
        with self._lock:
            _ = self._edges, self._xy, self._cells, self._segments

    def use_snaps(self, tables: Sequence[SnapTable]) -> None:
        """Answer :meth:`snap` for the points of *tables* from them (points snapped
        elsewhere with the same network, e.g. by the server for an analysis process), so
        that the snapping index is built only if another point is asked about."""
        self._known = tuple(tables)

    @property
    def index_built(self) -> bool:
        """Whether the snapping index (:class:`~yizhan.geo.walk.SegmentIndex`) was built."""
        return "_segments" in self.__dict__

    # -- snapping ------------------------------------------------------------------------
    def snap(self, lon: ArrayLike, lat: ArrayLike, field: str = "lon/lat") -> Snapped:
        """Snap points to the nearest point on any edge (exact; see the module docstring).

        Parameters
        ----------
        lon, lat : array_like
            Points, degrees.
        field : str
            Name of the input in error messages.

        Returns
        -------
        Snapped
        """
        px = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        py = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if px.shape != py.shape or px.ndim != 1:
            raise InvalidInputError(field, "longitudes and latitudes must be 1-D of equal length")
        bad = ~(np.isfinite(px) & np.isfinite(py) & (np.abs(px) <= 180) & (np.abs(py) <= 90))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(field, f"point {i} ({px[i]}, {py[i]}) is not a valid lon/lat")
        if self.n_edges == 0:
            raise InvalidInputError("network", "has no edges to snap to")
        if self._known and px.size:
            return snap_from_tables(self._known, px, py, self._snap_index)
        return self._snap_index(px, py)

    def _snap_index(self, px: FloatArray, py: FloatArray) -> Snapped:
        """:meth:`snap` with the snapping index (built on first use)."""
        with self._lock:
            segments = self._segments
        qx, qy = self.projection.to_xy(px, py)
        q = np.column_stack([qx, qy])
        edge, _ = segments.nearest(q)
        a, b = self._xy[self.edge_u[edge]], self._xy[self.edge_v[edge]]
        t = segment_fraction(q, a, b)
        sx, sy = a[:, 0] + t * (b - a)[:, 0], a[:, 1] + t * (b - a)[:, 1]
        slon, slat = self.projection.to_lonlat(sx, sy)
        length = self.edge_m[edge]
        return Snapped(
            edge=edge,
            fraction=t,
            snap_m=haversine_m(px, py, slon, slat),
            lon=slon,
            lat=slat,
            point_lon=px,
            point_lat=py,
            u=self.edge_u[edge],
            v=self.edge_v[edge],
            to_u_m=t * length,
            to_v_m=(1.0 - t) * length,
        )

    # -- searches ------------------------------------------------------------------------
    def _ball(self, lon: FloatArray, lat: FloatArray, radius_m: float) -> IntArray:
        """Every node within great-circle *radius_m* of any of the points (and some more)."""
        with self._lock:
            cells, scale = self._cells
        x, y = self.projection.to_xy(lon, lat)
        return cells.disc(np.atleast_1d(x), np.atleast_1d(y), radius_m * (1.0 + scale) + 1.0)

    @contextmanager
    def _search(self, seeds: Snapped, radius_m: float) -> Iterator[LocalSearch]:
        """Exact distances up to *radius_m* from each seed, on the subgraph that can hold them."""
        if math.isinf(radius_m):
            nodes = np.arange(self.n_nodes, dtype=np.int64)
        else:
            nodes = self._ball(seeds.point_lon, seeds.point_lat, radius_m)
        g, m = len(seeds), int(nodes.size)
        with self._scratch.take() as local:
            local[nodes] = np.arange(m, dtype=np.int32)
            try:
                sub = self._subgraph(nodes, local, seeds)
                dist = dijkstra(
                    sub,
                    directed=True,
                    indices=np.arange(m, m + g),
                    limit=radius_m,
                )
                dist = np.asarray(dist, dtype=np.float64).reshape(g, m + g + 1)[:, :m]
                yield LocalSearch(nodes, dist, local, radius_m)
            finally:
                local[nodes] = -1

    def _row_entries(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """Positions of the adjacency entries of *rows* (row by row), and their counts."""
        starts = self.indptr[rows].astype(np.int64)
        counts = self.indptr[rows + 1] - starts
        offsets = np.cumsum(counts) - counts
        pos = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts - offsets, counts)
        return pos, counts.astype(np.int64)

    def _subgraph(self, nodes: IntArray, local: Int32Array, seeds: Snapped) -> sp.csr_matrix:
        """CSR of the graph on *nodes* (local numbering), then one row per seed (a virtual
        node joined to its edge's ends), then a sink where every edge leaving *nodes* ends."""
        m, g = int(nodes.size), len(seeds)
        sink = m + g
        pos, counts = self._row_entries(nodes)
        nb = local[self.indices[pos]]
        nb[nb < 0] = sink
        s_nb = np.column_stack([local[seeds.u], local[seeds.v]]).ravel()
        s_nb[s_nb < 0] = sink
        s_w = np.column_stack([seeds.snap_m + seeds.to_u_m, seeds.snap_m + seeds.to_v_m]).ravel()
        ptr = np.empty(m + g + 2, dtype=np.int32)
        ptr[0] = 0
        np.cumsum(counts, out=ptr[1 : m + 1])
        ptr[m + 1 : m + g + 1] = ptr[m] + 2 * np.arange(1, g + 1)
        ptr[-1] = ptr[-2]
        return sp.csr_matrix(
            (np.concatenate([self.length_m[pos], s_w]), np.concatenate([nb, s_nb]), ptr),
            shape=(sink + 1, sink + 1),
        )

    def walk_m(self, origin: Snapped, targets: Snapped, limit_m: float) -> FloatArray:
        """Walking metres from each origin to each target (origins × targets), exact up to
        *limit_m* and ``inf`` beyond it."""
        limit = check_limit(limit_m)
        with self._search(origin, limit) as s:
            return s.walk_to(origin, targets)

    def multi_source(self, sources: Snapped, limit_m: float = math.inf) -> SourceField:
        """For every node, the nearest source by walking and its distance (one search).

        Parameters
        ----------
        sources : Snapped
            The sources (stations), snapped.
        limit_m : float
            Stop at this walking distance (nodes farther get ``inf`` and source -1).

        Returns
        -------
        SourceField
            Call :meth:`SourceField.at` for arbitrary snapped targets (demand points).
        """
        limit = check_limit(limit_m)
        n, m = self.n_nodes, len(sources)
        if m == 0:
            return SourceField(np.full(n, np.inf), np.full(n, -1, np.int64), sources, limit)
        graph = sp.csr_matrix(
            (
                np.concatenate(
                    [
                        self.length_m,
                        np.column_stack(
                            [sources.snap_m + sources.to_u_m, sources.snap_m + sources.to_v_m]
                        ).ravel(),
                    ]
                ),
                np.concatenate(
                    [self.indices, np.column_stack([sources.u, sources.v]).ravel().astype(np.int32)]
                ),
                np.concatenate(
                    [self.indptr, self.indptr[-1] + 2 * np.arange(1, m + 1, dtype=np.int32)]
                ).astype(np.int32),
            ),
            shape=(n + m, n + m),
        )
        dist, _, src = dijkstra(
            graph,
            directed=True,
            indices=np.arange(n, n + m),
            limit=limit,
            min_only=True,
            return_predecessors=True,
        )
        node_source = np.where(src[:n] >= n, src[:n] - n, -1).astype(np.int64)
        return SourceField(np.asarray(dist[:n], dtype=np.float64), node_source, sources, limit)

    def nearest_k(
        self,
        lon: float,
        lat: float,
        k: int,
        candidates: Snapped,
        gc_knn: Callable[[int], tuple[ArrayLike, ArrayLike]],
        max_walk_m: float = math.inf,
    ) -> WalkNeighbours:
        """The *k* candidates nearest by walking from a point, exactly.

        Great-circle distance is a lower bound of walking distance. ``gc_knn(m)`` returns
        the *m* candidates nearest by great-circle distance (positions into *candidates*
        and metres, nearest first; fewer when there are fewer). For a radius ``r``,
        candidates are fetched until the next one is farther than ``r`` by great circle;
        one search bounded at ``r`` gives the exact walk to each of them up to ``r``. If at
        least *k* walk at most ``r``, they are the answer: every other candidate is
        farther than ``r`` by great circle, so on foot too. Otherwise ``r`` grows by half
        and the search is repeated. The first ``r`` is 1.3 times the great-circle distance
        of the *k*-th candidate plus 100 m (streets are rarely longer than that), so one
        search usually settles it. A bounded search from the point was chosen over
        candidate-by-candidate point-to-point searches: one search answers every
        candidate inside its radius, and it touches only the few thousand nodes within
        ``r`` (see the module docstring).

        Parameters
        ----------
        lon, lat : float
            The point, degrees.
        k : int
            How many.
        candidates : Snapped
            All candidates (e.g. every station), snapped once.
        gc_knn : callable
            Great-circle k-nearest over the allowed candidates (filters applied).
        max_walk_m : float
            Leave out candidates farther than this on foot.

        Returns
        -------
        WalkNeighbours
            Ties in walking distance are ordered by candidate position; fewer than *k*
            when fewer are within *max_walk_m*.
        """
        if int(k) < 1:
            raise InvalidInputError("k", f"must be at least 1, got {k}")
        k = int(k)
        max_walk = check_limit(max_walk_m, "max_walk_m")
        origin = self.snap([lon], [lat])

        def fetch(m: int) -> tuple[IntArray, FloatArray, bool]:
            got_ids, got_gc = gc_knn(m)
            ids = np.asarray(got_ids, dtype=np.int64).reshape(-1)
            gc = np.asarray(got_gc, dtype=np.float64).reshape(-1)
            keep = gc <= max_walk
            if keep.all():
                return ids, gc, ids.size < m
            return ids[keep], gc[keep], True

        m = 4 * k  # usually enough to pass the first radius: one great-circle query
        ids, gc, exhausted = fetch(m)
        if ids.size == 0:
            return WalkNeighbours(np.empty(0, np.int64), np.empty(0), origin)
        radius = min(1.3 * float(gc[min(k, ids.size) - 1]) + 100.0, max_walk)
        while True:
            while not exhausted and gc[-1] <= radius:
                m *= 2
                ids, gc, exhausted = fetch(m)
            near = ids[gc <= radius]
            with self._search(origin, radius) as s:
                walk = s.walk_to(origin, candidates.take(near))[0]
                whole = s.nodes.size == self.n_nodes
            found = int(np.count_nonzero(np.isfinite(walk)))
            if found >= k or radius >= max_walk or math.isinf(radius):
                take = np.lexsort((near, walk))[: min(k, found)]
                return WalkNeighbours(near[take], walk[take], origin)
            radius = math.inf if whole else min(1.5 * radius + 100.0, max_walk)

    def cover_pairs(
        self, sources: Snapped, targets: Snapped, limit_m: float
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Every (source, target) pair within *limit_m* on foot: the cover sets for siting.

        Sources are grouped on a grid of cells *limit_m* wide; each group runs one bounded
        search on the subgraph around it, and its targets are those within great-circle
        *limit_m* of one of its sources.

        Returns
        -------
        source, target : numpy.ndarray of int
            Positions in *sources* and *targets*, sorted by source then target.
        walk_m : numpy.ndarray of float
        """
        limit = check_limit(limit_m)
        if math.isinf(limit):
            raise InvalidInputError("limit_m", "must be finite for cover sets")
        empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
        if len(sources) == 0 or len(targets) == 0:
            return empty
        t_tree = cKDTree(unit_vectors(targets.point_lon, targets.point_lat))
        sx, sy = self.projection.to_xy(sources.point_lon, sources.point_lat)
        cell = np.floor(np.column_stack([sx, sy]) / max(limit, 1.0)).astype(np.int64)
        _, group = np.unique(cell, axis=0, return_inverse=True)
        order = np.argsort(group.ravel(), kind="stable")
        bounds = np.flatnonzero(np.diff(group.ravel()[order])) + 1
        out_i, out_j, out_d = [], [], []
        chord = m_to_chord(limit * (1.0 + _BALL_REL) + _BALL_ABS_M)
        for members in np.split(order, bounds):
            seeds = sources.take(members)
            hits = t_tree.query_ball_point(
                unit_vectors(seeds.point_lon, seeds.point_lat), chord, return_sorted=False
            )
            cand = np.unique(np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]))
            if cand.size == 0:
                continue
            with self._search(seeds, limit) as s:
                walk = s.walk_to(seeds, targets.take(cand))
            si, tj = np.nonzero(walk <= limit)
            out_i.append(members[si])
            out_j.append(cand[tj])
            out_d.append(walk[si, tj])
        if not out_i:
            return empty
        i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
        o = np.lexsort((j, i))
        return i[o].astype(np.int64), j[o].astype(np.int64), d[o]

    def cover_matrix(self, sites: Snapped, demand: Snapped, limit_m: float) -> sp.csr_matrix:
        """Sparse 0/1 matrix ``A[i, j] = 1`` when site *j* is within *limit_m* on foot of
        demand point *i*: the walking counterpart of
        :func:`yizhan.geo.siting.coverage_matrix` (same shape and dtype)."""
        j, i, _ = self.cover_pairs(sites, demand, limit_m)
        mat = sp.csr_matrix(
            (np.ones(i.size, dtype=np.int8), (i, j)), shape=(len(demand), len(sites))
        )
        mat.sort_indices()
        return mat

    # -- isochrones ----------------------------------------------------------------------
    def isochrones(
        self,
        lon: float,
        lat: float,
        minutes: Sequence[float],
        speed_kmh: float = WALK_SPEED_KMH,
        buffer_m: float = 25.0,
    ) -> list[Any]:
        """Areas reachable on foot from a point within each of *minutes* (lon/lat polygons).

        The polygon for a budget of ``B`` metres is every point within *buffer_m* (straight
        line) of a network point reachable within ``B - buffer_m``: reachable edge pieces,
        partial edges included, buffered and unioned in a projection centred on the point
        (see :func:`yizhan.geo.isochrone.reach_polygon`). It therefore contains every
        network point reachable within ``B`` (walk back along its path at most
        *buffer_m*), and every point inside it is reachable within ``B`` if one walks its
        last stretch straight off the network -- the same rule as snapping. Not a convex
        hull: a river, a railway or a gated compound stays outside.

        Parameters
        ----------
        lon, lat : float
            Start point, degrees (snapped like any point).
        minutes : sequence of float
            Walking times, minutes (each > 0).
        speed_kmh : float
            Walking speed (default 4.5 km/h).
        buffer_m : float
            Half-width of the drawn streets, metres (at most the budget).

        Returns
        -------
        list of shapely geometries
            (Multi)polygons in lon/lat, one per entry of *minutes*; empty where nothing is
            reachable.
        """
        speed = check_speed(speed_kmh)
        mins = [float(x) for x in minutes]
        if not mins or not all(math.isfinite(x) and 0 < x <= 24 * 60 for x in mins):
            raise InvalidInputError("minutes", f"must be between 0 and 1440, got {mins}")
        w = float(buffer_m)
        if not math.isfinite(w) or w <= 0:
            raise InvalidInputError("buffer_m", f"must be a positive number of metres, got {w}")
        origin = self.snap([lon], [lat])
        budgets = [x * speed * 1000.0 / 60.0 for x in mins]
        proj = LocalProjection(float(lon), float(lat))
        with self._search(origin, max(budgets)) as s:
            pieces = [self._reach_segments(s, origin, proj, b - min(w, b)) for b in budgets]
        return [
            proj.geometry_to_lonlat(reach_polygon(lines, min(w, b)))
            for lines, b in zip(pieces, budgets, strict=True)
        ]

    def _reach_segments(
        self, s: LocalSearch, origin: Snapped, proj: LocalProjection, budget_m: float
    ) -> FloatArray:
        """Segments ``(n, 2, 2)`` in *proj* metres of every network point within *budget_m*."""
        rows = s.nodes[s.dist[0] <= budget_m]
        pos, counts = self._row_entries(rows)
        a, c = np.repeat(rows, counts), self.indices[pos].astype(np.int64)
        left_a = budget_m - s.node_dist(a)[0]
        left_c = budget_m - s.node_dist(c)[0]
        once = (left_c < 0) | (a < c)  # an edge reached from both ends: from the smaller
        a, c, left_a, left_c = a[once], c[once], left_a[once], left_c[once]
        used = np.unique(np.concatenate([a, c, origin.u, origin.v]))
        xy = np.column_stack(proj.to_xy(self.lon[used], self.lat[used]))
        at = {name: xy[np.searchsorted(used, ids)] for name, ids in (("a", a), ("c", c))}
        pieces = [edge_pieces(at["a"], at["c"], left_a, left_c, self.length_m[pos][once])]
        # The start point: its walk off the network, and along its own edge directly.
        snap_xy = np.column_stack(proj.to_xy(origin.lon, origin.lat))[0]
        left = budget_m - float(origin.snap_m[0])
        if left >= 0:
            pu = xy[np.searchsorted(used, origin.u[0])]
            pv = xy[np.searchsorted(used, origin.v[0])]
            length = float(origin.to_u_m[0] + origin.to_v_m[0])
            t, reach = float(origin.fraction[0]), left / max(length, 1e-9)
            lo, hi = max(0.0, t - reach), min(1.0, t + reach)
            pieces.append(
                np.array([[(0.0, 0.0), snap_xy], [pu + lo * (pv - pu), pu + hi * (pv - pu)]])
            )
        else:
            pieces.append(np.array([[(0.0, 0.0), snap_xy * budget_m / float(origin.snap_m[0])]]))
        return np.concatenate(pieces)
