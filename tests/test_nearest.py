"""Nearest search is exact: it equals brute-force haversine, ties broken by id."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yizhan.geo.distance import EARTH_RADIUS_M, bearing_deg, haversine_m
from yizhan.geo.nearest import PointIndex

lons = st.floats(-180, 180, allow_nan=False)
lats = st.floats(-90, 90, allow_nan=False)
# Points concentrated where KD-trees over lon/lat go wrong: poles and the 180° meridian.
edge_lons = st.one_of(lons, st.floats(179.0, 180.0), st.floats(-180.0, -179.0))
edge_lats = st.one_of(lats, st.floats(89.0, 90.0), st.floats(-90.0, -89.0))
point = st.tuples(edge_lons, edge_lats)


def brute(
    lon: np.ndarray, lat: np.ndarray, qlon: float, qlat: float
) -> tuple[np.ndarray, np.ndarray]:
    d = haversine_m(qlon, qlat, lon, lat)
    order = np.lexsort((np.arange(len(lon)), d))
    return order, d[order]


def assert_same_neighbours(
    got_idx: np.ndarray, got_d: np.ndarray, exp_idx: np.ndarray, exp_d: np.ndarray
) -> None:
    """The first ``len(got_idx)`` of the brute-force order: same distances (to 1 µm), same
    stations except where floating point puts two distances within 1 µm of each other
    (then the index's exact tie rule, by rank, may pick the other one)."""
    kk = len(got_idx)
    tol = _tolerance_m(got_d)
    np.testing.assert_array_less(np.abs(got_d - exp_d[:kk]), tol)
    for j, (g, e) in enumerate(zip(got_idx, exp_idx[:kk], strict=True)):
        if g != e:
            assert g in set(exp_idx[np.abs(exp_d - got_d[j]) < tol[j]].tolist())


def _tolerance_m(distance_m: np.ndarray) -> np.ndarray:
    """1 µm; near the antipode (beyond 19,000 km) haversine itself is ill-conditioned
    (asin near π/2 turns an ulp into centimetres), so both methods agree only to 0.1 m."""
    return np.where(distance_m < 19_000_000, 1e-6, 0.1)


@settings(max_examples=150, deadline=None)
@given(
    pts=st.lists(point, min_size=1, max_size=60),
    q=point,
    k=st.integers(1, 12),
    dup=st.booleans(),
)
def test_knn_equals_brute_force(
    pts: list[tuple[float, float]], q: tuple[float, float], k: int, dup: bool
) -> None:
    if dup:  # exact duplicates make ties that must come back in id (rank) order
        pts = pts + pts[: len(pts) // 2]
    lon = np.array([p[0] for p in pts])
    lat = np.array([p[1] for p in pts])
    idx = PointIndex(lon, lat)
    exp_i, exp_d = brute(lon, lat, *q)
    got = idx.knn(q[0], q[1], k)
    kk = min(k, len(pts))
    assert len(got) == kk
    assert_same_neighbours(got.index, got.distance_m, exp_i, exp_d)
    many_i, many_d = idx.knn_many([q[0]], [q[1]], k)
    assert_same_neighbours(many_i[0, :kk], many_d[0, :kk], exp_i, exp_d)
    assert (many_i[0, kk:] == -1).all() and np.isinf(many_d[0, kk:]).all()


@settings(max_examples=100, deadline=None)
@given(
    pts=st.lists(point, min_size=1, max_size=60),
    q=point,
    radius_m=st.floats(1.0, 3_000_000.0),
)
def test_within_equals_brute_force(
    pts: list[tuple[float, float]], q: tuple[float, float], radius_m: float
) -> None:
    lon = np.array([p[0] for p in pts])
    lat = np.array([p[1] for p in pts])
    idx = PointIndex(lon, lat)
    exp_i, exp_d = brute(lon, lat, *q)
    # Points within 1 µm of the radius may fall either way in floating point: leave them out.
    assume_clear = np.abs(exp_d - radius_m) > 1e-6
    inside = exp_d <= radius_m
    got = idx.within(q[0], q[1], radius_m)
    got_set = set(got.index.tolist())
    assert {int(i) for i in exp_i[inside & assume_clear]} <= got_set
    assert got_set <= {int(i) for i in exp_i[inside | ~assume_clear]}
    assert np.all(np.diff(got.distance_m) >= 0)
    knn_bounded = idx.knn(q[0], q[1], len(pts), max_distance_m=radius_m)
    assert set(knn_bounded.index.tolist()) == got_set


def test_antimeridian_neighbours_are_found_across_180() -> None:
    idx = PointIndex([179.999, -179.999, 0.0], [0.0, 0.0, 0.0])
    got = idx.knn(180.0, 0.0, 2)
    assert sorted(got.index.tolist()) == [0, 1]
    assert got.distance_m[1] == pytest.approx(111.2, abs=0.1)


def test_pole_neighbours_all_longitudes_equally_far() -> None:
    lon = np.arange(-180, 180, 30.0)
    lat = np.full(lon.shape, 89.0)
    idx = PointIndex(lon, lat, rank=np.arange(len(lon))[::-1])
    got = idx.knn(0.0, 90.0, 3)
    # All 12 are at the same distance: ties go to the smallest rank (the last points).
    np.testing.assert_allclose(got.distance_m, 111_195.08, atol=0.1)
    assert got.index.tolist() == [11, 10, 9]


def test_ties_at_the_kth_place_go_to_the_smaller_rank() -> None:
    # Four stations at the same spot; the query wants 2: ranks decide which two.
    idx = PointIndex([10.0, 10.0, 10.0, 10.0, 11.0], [5.0] * 5, rank=[3, 1, 2, 0, 4])
    assert idx.knn(10.001, 5.0, 2).index.tolist() == [3, 1]
    i, _ = idx.knn_many([10.001, 10.001], [5.0, 5.0], 2)
    assert i.tolist() == [[3, 1], [3, 1]]


def test_k_larger_than_the_set_and_empty_sets() -> None:
    idx = PointIndex([1.0, 2.0], [0.0, 0.0])
    assert idx.knn(0.0, 0.0, 10).index.tolist() == [0, 1]
    empty = PointIndex([], [])
    assert len(empty.knn(0.0, 0.0, 3)) == 0
    assert len(empty.within(0.0, 0.0, 1000)) == 0
    i, d = empty.knn_many([0.0], [0.0], 2)
    assert i.tolist() == [[-1, -1]] and np.isinf(d).all()


def test_invalid_arguments_are_refused() -> None:
    idx = PointIndex([1.0], [0.0])
    with pytest.raises(ValueError, match="k >= 1"):
        idx.knn(0.0, 0.0, 0)
    with pytest.raises(ValueError, match="radius_m"):
        idx.within(0.0, 0.0, -1)
    with pytest.raises(ValueError, match="equal length"):
        PointIndex([1.0, 2.0], [0.0])


@pytest.mark.parametrize(
    ("lon1", "lat1", "lon2", "lat2", "distance_m", "bearing"),
    [
        (0, 0, 1, 0, 111_195.08, 90.0),
        (0, 0, 0, 1, 111_195.08, 0.0),
        (
            0,
            0,
            180,
            0,
            math.pi * EARTH_RADIUS_M,
            90.0,
        ),  # antipodal: every bearing; the formula gives east
        (113.65, 34.76, 113.65, 34.75, 1_111.95, 180.0),
        (179.5, 0, -179.5, 0, 111_195.08, 90.0),
    ],
)
def test_distance_and_bearing_table(
    lon1: float, lat1: float, lon2: float, lat2: float, distance_m: float, bearing: float
) -> None:
    assert float(haversine_m(lon1, lat1, lon2, lat2)) == pytest.approx(distance_m, abs=0.01)
    assert float(bearing_deg(lon1, lat1, lon2, lat2)) == pytest.approx(bearing, abs=1e-6)
