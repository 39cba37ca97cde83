"""Exact nearest-station search.

A KD-tree over 3-D unit vectors is exact for
great-circle distance: the chord between two points on the unit sphere is a monotonic
function of the angle between them, so the k smallest chords are the k nearest points on
the sphere, with no special case at the poles or across the 180° meridian.

Filters are answered by a tree over the matching stations only (built on first use and
cached), so a filtered query never misses a matching station that lies beyond the first
k unfiltered ones. Ties are broken by a rank (the registry gives the rank of each id),
so equal distances always come back in id order.

k-nearest queries use pykdtree (an exact KD-tree whose per-query overhead is about a
third of scipy's, and whose batch queries run on all cores with OpenMP). A long-running
process that answers one point at a time should limit OpenMP to one thread, as the API
does (``threadpoolctl.threadpool_limits(1, "openmp")``): otherwise each single-point query
waits for idle worker threads to wake, milliseconds on a busy machine;
within-radius queries use :class:`scipy.spatial.cKDTree`, built on first use, because
pykdtree has no ball query.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pykdtree.kdtree import KDTree
from scipy.spatial import cKDTree

from yizhan.geo.distance import EARTH_RADIUS_M, chord_to_m, m_to_chord, unit_vectors

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

# Chords closer than this (≈ 0.06 µm on the ground, a few ulps of a chord) are ties, resolved by rank.
_TIE_EPS = 1e-14


@dataclass(frozen=True)
class Neighbours:
    """Result of a search: positions into the indexed points and distances, nearest first."""

    index: IntArray
    distance_m: FloatArray

    def __len__(self) -> int:
        return int(self.index.shape[0])


def _xyz1(lon: float, lat: float) -> list[float]:
    lam = math.radians(lon)
    phi = math.radians(lat)
    c = math.cos(phi)
    return [c * math.cos(lam), c * math.sin(lam), math.sin(phi)]


class PointIndex:
    """Exact k-nearest and within-radius search over points given in degrees.

    Parameters
    ----------
    lon, lat : array_like
        Coordinates of the points, degrees (WGS-84).
    rank : array_like of int, optional
        Tie-break order: of two points at the same distance the one with the smaller
        rank comes first. Defaults to the position of each point.

    Examples
    --------
    >>> idx = PointIndex([113.65, 113.66, 113.70], [34.76, 34.76, 34.80])
    >>> hits = idx.knn(113.651, 34.76, k=2)
    >>> hits.index.tolist()
    [0, 1]
    """

    def __init__(self, lon: ArrayLike, lat: ArrayLike, rank: ArrayLike | None = None) -> None:
        self.lon = np.ascontiguousarray(lon, dtype=np.float64)
        self.lat = np.ascontiguousarray(lat, dtype=np.float64)
        if self.lon.shape != self.lat.shape or self.lon.ndim != 1:
            raise ValueError(
                f"Expected 1-D lon and lat of equal length, got {self.lon.shape} and {self.lat.shape}"
            )
        self.n = int(self.lon.shape[0])
        self.rank: IntArray = (
            np.arange(self.n, dtype=np.int64) if rank is None else np.asarray(rank, dtype=np.int64)
        )
        self.xyz = np.ascontiguousarray(unit_vectors(self.lon, self.lat).reshape(self.n, 3))
        self._kd = KDTree(self.xyz) if self.n else None
        self._ball: cKDTree | None = None

    @property
    def ball_tree(self) -> cKDTree:
        """A scipy tree over the same unit vectors, for radius queries (built on first use)."""
        if self._ball is None:
            self._ball = cKDTree(self.xyz if self.n else np.zeros((1, 3)))
        return self._ball

    def _query(self, q: FloatArray, k: int, bound: float) -> tuple[FloatArray, IntArray]:
        """Raw KD-tree query: chords and positions, shape (m, k); missing ones are (inf, n)."""
        assert self._kd is not None
        if math.isinf(bound):
            dd, ii = self._kd.query(q, k=k)
        else:
            dd, ii = self._kd.query(q, k=k, distance_upper_bound=bound)
        dd = np.asarray(dd, dtype=np.float64).reshape(q.shape[0], k)
        ii = np.asarray(ii, dtype=np.int64).reshape(q.shape[0], k)
        return dd, ii

    # -- single point -------------------------------------------------------------------
    def knn(
        self, lon: float, lat: float, k: int, max_distance_m: float | None = None
    ) -> Neighbours:
        """The *k* nearest points to ``(lon, lat)``, nearest first, ties by rank.

        Parameters
        ----------
        lon, lat : float
            Query point, degrees.
        k : int
            How many neighbours (at most the number of points).
        max_distance_m : float, optional
            Only points at most this far, metres.

        Returns
        -------
        Neighbours
        """
        pos, dist = self.knn_lists(lon, lat, k, max_distance_m)
        return Neighbours(np.array(pos, dtype=np.int64), np.array(dist, dtype=np.float64))

    def knn_lists(
        self, lon: float, lat: float, k: int, max_distance_m: float | None = None
    ) -> tuple[list[int], list[float]]:
        """:meth:`knn` as plain lists ``(positions, distances_m)``: the fast path for one query."""
        if k < 1:
            raise ValueError(f"Expected k >= 1, got {k}")
        n = self.n
        k = min(k, n)
        if k == 0 or self._kd is None:
            return [], []
        lam = math.radians(lon)
        phi = math.radians(lat)
        c = math.cos(phi)
        q = np.array(((c * math.cos(lam), c * math.sin(lam), math.sin(phi)),))
        bounded = max_distance_m is not None
        want = min(k + 1, n)
        while True:
            if bounded:
                assert max_distance_m is not None
                dd, ii = self._kd.query(
                    q, k=want, distance_upper_bound=m_to_chord(max_distance_m) + 1e-9
                )
            else:
                dd, ii = self._kd.query(q, k=want)
            chords: list[float] = dd.ravel().tolist()
            pos: list[int] = ii.ravel().tolist()
            found = sum(1 for i in pos if i < n) if bounded else want
            # Safe when every point was returned, the bound cut the list, or the last
            # point returned is strictly farther than the k-th.
            if want >= n or found < want or chords[want - 1] - chords[k - 1] > _TIE_EPS:
                break
            want = min(want * 2, n)
        if found < want:
            chords, pos = chords[:found], pos[:found]
        if any(b - a <= _TIE_EPS for a, b in pairwise(chords)):
            order = _tie_order(np.array(chords), self.rank[pos]).tolist()
            chords = [chords[o] for o in order]
            pos = [pos[o] for o in order]
        two_r = 2.0 * EARTH_RADIUS_M
        asin = math.asin
        dist = [two_r * asin(min(ch * 0.5, 1.0)) for ch in chords[:k]]
        pos = pos[:k]
        if max_distance_m is not None:
            keep = [j for j, d in enumerate(dist) if d <= max_distance_m]
            pos = [pos[j] for j in keep]
            dist = [dist[j] for j in keep]
        return pos, dist

    def within(self, lon: float, lat: float, radius_m: float, k: int | None = None) -> Neighbours:
        """Every point within *radius_m* metres of ``(lon, lat)``, nearest first (at most *k*).

        Parameters
        ----------
        lon, lat : float
            Query point, degrees.
        radius_m : float
            Search radius in metres (great-circle).
        k : int, optional
            Keep only the *k* nearest.

        Returns
        -------
        Neighbours
        """
        if radius_m < 0 or not math.isfinite(radius_m):
            raise ValueError(f"Expected a finite radius_m >= 0, got {radius_m}")
        if self.n == 0:
            return Neighbours(np.empty(0, np.int64), np.empty(0))
        q = np.asarray(_xyz1(lon, lat))
        ii = np.asarray(
            self.ball_tree.query_ball_point(q, r=m_to_chord(radius_m) + 1e-9), dtype=np.int64
        )
        dist = chord_to_m(np.linalg.norm(self.xyz[ii] - q, axis=1))
        keep = dist <= radius_m
        ii, dist = ii[keep], dist[keep]
        order = np.lexsort((self.rank[ii], dist))
        if k is not None:
            order = order[:k]
        return Neighbours(ii[order], dist[order])

    # -- many points --------------------------------------------------------------------
    def knn_many(
        self, lon: ArrayLike, lat: ArrayLike, k: int, max_distance_m: float | None = None
    ) -> tuple[IntArray, FloatArray]:
        """k nearest points for many query points at once.

        Returns
        -------
        index : numpy.ndarray of int, shape (m, k)
            Positions of the neighbours, ``-1`` where there are fewer than *k*.
        distance_m : numpy.ndarray of float, shape (m, k)
            Metres, ``inf`` where there is no neighbour.
        """
        if k < 1:
            raise ValueError(f"Expected k >= 1, got {k}")
        qlon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        qlat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        m = qlon.shape[0]
        out_i = np.full((m, k), -1, dtype=np.int64)
        out_d = np.full((m, k), np.inf)
        kk = min(k, self.n)
        if kk == 0 or m == 0:
            return out_i, out_d
        want = min(kk + 1, self.n)
        bound = math.inf if max_distance_m is None else m_to_chord(max_distance_m) + 1e-9
        dd, ii = self._query(np.ascontiguousarray(unit_vectors(qlon, qlat)), want, bound)
        valid = ii < self.n
        # Rows whose k-th and (k+1)-th neighbours tie are redone one by one (rare).
        redo = np.zeros(m, dtype=bool)
        if want > kk:
            redo = valid[:, kk] & (dd[:, kk] - dd[:, kk - 1] <= _TIE_EPS)
        dd, ii, valid = dd[:, :kk], ii[:, :kk], valid[:, :kk]
        # Rows with ties inside their first k are put in rank order (rare too).
        if kk > 1:
            with np.errstate(invalid="ignore"):
                tied = np.flatnonzero(((dd[:, 1:] - dd[:, :-1]) <= _TIE_EPS).any(axis=1))
            for r in tied:
                nv = int(valid[r].sum())
                order = _tie_order(dd[r, :nv], self.rank[ii[r, :nv]])
                dd[r, :nv] = dd[r, :nv][order]
                ii[r, :nv] = ii[r, :nv][order]
        dist = np.where(valid, chord_to_m(np.where(valid, dd, 0.0)), np.inf)
        ii = np.where(valid, ii, -1)
        if max_distance_m is not None:
            far = dist > max_distance_m
            ii[far] = -1
            dist[far] = np.inf
        out_i[:, :kk] = ii
        out_d[:, :kk] = dist
        for r in np.flatnonzero(redo):
            hit = self.knn(float(qlon[r]), float(qlat[r]), kk, max_distance_m)
            out_i[r] = -1
            out_d[r] = np.inf
            out_i[r, : len(hit)] = hit.index
            out_d[r, : len(hit)] = hit.distance_m
        return out_i, out_d

    def nearest_distance_m(self, lon: ArrayLike, lat: ArrayLike) -> FloatArray:
        """Distance in metres from each query point to its nearest point (``inf`` if none)."""
        qlon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        qlat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if self.n == 0:
            return np.full(qlon.shape, np.inf)
        dd, _ = self._query(np.ascontiguousarray(unit_vectors(qlon, qlat)), 1, math.inf)
        return chord_to_m(dd[:, 0])


def _tie_order(chord: FloatArray, rank: IntArray) -> IntArray:
    """Order by chord, then rank, treating chords within ``_TIE_EPS`` as equal."""
    # Snap each chord to the first chord of its run of near-equal values.
    group = np.concatenate([[0], np.cumsum(np.diff(chord) > _TIE_EPS)])
    return np.lexsort((rank, group)).astype(np.int64)


class SubsetIndexCache:
    """Point indexes over subsets of one point set, built on first use and kept (LRU).

    Parameters
    ----------
    lon, lat : array_like
        All points, degrees.
    rank : array_like of int
        Tie-break rank of each point.
    max_entries : int
        How many subset indexes to keep.
    """

    def __init__(
        self, lon: ArrayLike, lat: ArrayLike, rank: ArrayLike, max_entries: int = 64
    ) -> None:
        self.lon = np.asarray(lon, dtype=np.float64)
        self.lat = np.asarray(lat, dtype=np.float64)
        self.rank = np.asarray(rank, dtype=np.int64)
        self.max_entries = max_entries
        self._cache: OrderedDict[Hashable, tuple[PointIndex, IntArray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, mask: Callable[[], NDArray[np.bool_]]
    ) -> tuple[PointIndex, IntArray]:
        """The index for subset *key* and the positions of its points in the full set.

        ``mask`` is called only when the subset is not cached yet.
        """
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            sel = np.flatnonzero(mask()).astype(np.int64)
            entry = (PointIndex(self.lon[sel], self.lat[sel], self.rank[sel]), sel)
            self._cache[key] = entry
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
            return entry


__all__ = ["EARTH_RADIUS_M", "Neighbours", "PointIndex", "SubsetIndexCache"]
