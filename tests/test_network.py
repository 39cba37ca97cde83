"""Walking network core (yizhan.geo.network) on the hand-made river fixture and small graphs.

The river fixture (tests/data/network/river.osm, described in SOURCE.md there) is laid out in
metres east/north of (113.65, 34.75); every expected walk below is worked out by hand from
that layout.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import shapely

from yizhan.errors import InvalidInputError
from yizhan.geo.distance import EARTH_RADIUS_M, haversine_m
from yizhan.geo.nearest import PointIndex
from yizhan.geo.network import WalkNetwork, walk_minutes
from yizhan.geo.projection import LocalProjection
from yizhan.network import build_network

DATA = Path(__file__).resolve().parent / "data" / "network"
LON0, LAT0 = 113.65, 34.75
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0
TOL_M = 0.05  # metres: the layout is in flat metres, the network on the sphere


def at(x: float, y: float) -> tuple[float, float]:
    """Degrees of a point *x* m east and *y* m north of the fixture's origin."""
    return LON0 + x / (M_PER_DEG * math.cos(math.radians(LAT0))), LAT0 + y / M_PER_DEG


def pts(*xy: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    ll = np.array([at(x, y) for x, y in xy])
    return ll[:, 0], ll[:, 1]


@pytest.fixture(scope="module")
def river() -> WalkNetwork:
    data, _ = build_network(DATA / "river.osm")
    return data.network


def walk(net: WalkNetwork, a: tuple[float, float], b: tuple[float, float]) -> float:
    lon, lat = pts(a, b)
    s = net.snap(lon, lat)
    return float(net.walk_m(s.take([0]), s.take([1]), 1e6)[0, 0])


# -- hand-checked walks on the river fixture ----------------------------------------------
def test_river_is_crossed_only_on_the_stepped_bridge(river: WalkNetwork) -> None:
    # 30 m apart across the river; the motorway (x=0), the private footway (x=100) and the
    # gated one (x=250) would all be shorter than the bridge at x=500.
    assert walk(river, (0, 30), (0, 0)) == pytest.approx(1030.0, abs=TOL_M)
    lon, lat = pts((0, 30), (0, 0))
    assert float(haversine_m(lon[0], lat[0], lon[1], lat[1])) == pytest.approx(30.0, abs=TOL_M)


def test_one_way_street_is_walked_both_ways(river: WalkNetwork) -> None:
    # North St is oneway eastwards: from the south bank, the walk comes back west on it.
    lon, lat = pts((0, 0), (0, 30))
    s = river.snap(lon, lat)
    field = river.multi_source(s.take([0]))
    walk_m, src = field.at(s.take([1]))
    assert walk_m[0] == pytest.approx(1030.0, abs=TOL_M)
    assert src.tolist() == [0]


def test_foot_no_bridge_and_footless_cycleway_are_not_crossings(river: WalkNetwork) -> None:
    # x=750 (foot=no) would be 530 m, x=1000 (cycleway without foot) 30 m.
    assert walk(river, (1000, 30), (1000, 0)) == pytest.approx(1030.0, abs=TOL_M)


def test_square_is_crossed_straight_between_its_entrances(river: WalkNetwork) -> None:
    assert walk(river, (350, -200), (250, 0)) == pytest.approx(
        80 + math.hypot(100, 100) + 20, abs=TOL_M
    )


def test_cycleway_with_foot_permission_is_walkable(river: WalkNetwork) -> None:
    assert walk(river, (1000, -200), (1000, 0)) == pytest.approx(200.0, abs=TOL_M)


def test_excluded_ways_leave_no_nodes(river: WalkNetwork) -> None:
    # 6 + 6 street nodes, 2 bridge nodes, 7 square/dead-end nodes, 1 cycleway end; the
    # gate, the motorway pier and the river are not in the graph.
    assert river.n_nodes == 22
    gate, pier = at(250, 15), at(-20, 15)
    d_gate = haversine_m(river.lon, river.lat, *gate).min()
    d_pier = haversine_m(river.lon, river.lat, *pier).min()
    assert d_gate > 14 and d_pier > 14


def test_snap_projects_onto_the_middle_of_an_edge(river: WalkNetwork) -> None:
    lon, lat = pts((625, -10), (300, 10))
    s = river.snap(lon, lat)
    exp_lon, exp_lat = pts((625, 0), (300, 0))
    np.testing.assert_allclose(s.snap_m, [10.0, 10.0], atol=TOL_M)
    assert haversine_m(s.lon, s.lat, exp_lon, exp_lat).max() < TOL_M
    # (625, 0) is halfway between the nodes at x=500 and x=750
    assert s.fraction[0] == pytest.approx(0.5, abs=1e-4)
    assert sorted([s.to_u_m[0], s.to_v_m[0]]) == pytest.approx([125.0, 125.0], abs=TOL_M)
    assert sorted([s.to_u_m[1], s.to_v_m[1]]) == pytest.approx([50.0, 200.0], abs=TOL_M)


def test_walk_counts_the_snap_and_the_partial_edges(river: WalkNetwork) -> None:
    # 10 m off, 200 m to the bridge, 30 m over, 200 m back, 10 m off
    assert walk(river, (300, 10), (300, 40)) == pytest.approx(450.0, abs=TOL_M)


def test_two_points_on_one_edge_walk_directly(river: WalkNetwork) -> None:
    lon, lat = pts((300, -3), (450, -4))
    s = river.snap(lon, lat)
    assert s.edge[0] == s.edge[1]
    direct = 3 + 150 + 4  # via either end it would be 257 m
    assert float(river.walk_m(s.take([0]), s.take([1]), 1e6)[0, 0]) == pytest.approx(
        direct, abs=TOL_M
    )
    walk_m, _ = river.multi_source(s.take([0])).at(s.take([1]))
    assert walk_m[0] == pytest.approx(direct, abs=TOL_M)
    i, j, d = river.cover_pairs(s.take([0]), s.take([1]), 200.0)
    assert (i.tolist(), j.tolist()) == ([0], [0])
    assert d[0] == pytest.approx(direct, abs=TOL_M)


STATIONS = [(0, 35), (400, -5), (900, -5), (1000, -150)]


def _gc_knn(lon: float, lat: float, slon: np.ndarray, slat: np.ndarray):  # type: ignore[no-untyped-def]
    index = PointIndex(slon, slat)

    def knn(m: int) -> tuple[np.ndarray, np.ndarray]:
        hits = index.knn(lon, lat, k=min(m, len(slon)))
        return hits.index, hits.distance_m

    return knn


def test_nearest_by_walking_is_not_nearest_by_air(river: WalkNetwork) -> None:
    slon, slat = pts(*STATIONS)
    stations = river.snap(slon, slat)
    qlon, qlat = at(0, -5)
    res = river.nearest_k(qlon, qlat, 3, stations, _gc_knn(qlon, qlat, slon, slat))
    # by air the station across the river (40 m) is nearest; on foot it is 1040 m
    assert res.index.tolist() == [1, 2, 0]
    np.testing.assert_allclose(res.walk_m, [410.0, 910.0, 1040.0], atol=TOL_M)
    res = river.nearest_k(qlon, qlat, 1, stations, _gc_knn(qlon, qlat, slon, slat))
    assert res.index.tolist() == [1]
    capped = river.nearest_k(
        qlon, qlat, 3, stations, _gc_knn(qlon, qlat, slon, slat), max_walk_m=950.0
    )
    assert capped.index.tolist() == [1, 2]
    everything = river.nearest_k(qlon, qlat, 10, stations, _gc_knn(qlon, qlat, slon, slat))
    assert everything.index.tolist() == [1, 2, 0, 3]
    assert everything.walk_m[-1] == pytest.approx(5 + 1000 + 150, abs=TOL_M)


def test_multi_source_nearest_and_limit(river: WalkNetwork) -> None:
    slon, slat = pts(*STATIONS)
    stations = river.snap(slon, slat)
    tlon, tlat = pts((0, -5), (0, 45), (600, 40), (1000, -190))
    targets = river.snap(tlon, tlat)
    walk_m, src = river.multi_source(stations).at(targets)
    assert src.tolist() == [1, 0, 1, 3]
    # (600, 40) from (400, -5): 5 + 100 to the bridge + 30 + 100 + 10 (from (0, 35): 615)
    np.testing.assert_allclose(walk_m, [410.0, 5 + 15, 245.0, 40.0], atol=TOL_M)
    walk_m, src = river.multi_source(stations, limit_m=300.0).at(targets)
    assert src.tolist() == [-1, 0, 1, 3]
    assert np.isinf(walk_m[0])


def test_cover_pairs_match_pairwise_walks(river: WalkNetwork) -> None:
    slon, slat = pts(*STATIONS)
    stations = river.snap(slon, slat)
    rng = np.random.default_rng(7)
    xy = np.column_stack([rng.uniform(-50, 1050, 60), rng.uniform(-220, 60, 60)])
    tlon, tlat = pts(*map(tuple, xy))
    targets = river.snap(tlon, tlat)
    i, j, d = river.cover_pairs(stations, targets, 500.0)
    full = np.vstack([river.walk_m(stations.take([k]), targets, 1e6)[0] for k in range(4)])
    expect = np.argwhere(full <= 500.0)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(map(tuple, expect.tolist()))
    np.testing.assert_allclose(d, full[i, j], atol=1e-6)
    mat = river.cover_matrix(stations, targets, 500.0)
    assert mat.shape == (60, 4) and mat.dtype == np.int8
    np.testing.assert_array_equal(mat.toarray(), (full <= 500.0).T.astype(np.int8))


def test_isochrone_does_not_jump_the_river(river: WalkNetwork) -> None:
    qlon, qlat = at(0, -5)
    (poly,) = river.isochrones(qlon, qlat, [5.0], buffer_m=5.0)  # 375 m
    proj = LocalProjection(LON0, LAT0)
    xy = proj.geometry_to_xy(poly)

    def inside(x: float, y: float) -> bool:
        px, py = proj.to_xy(*at(x, y))
        return bool(shapely.distance(xy, shapely.Point(float(px), float(py))) < 0.01)

    assert inside(0, -5) and inside(200, 0) and inside(368, 0)  # 373 m on foot
    assert not inside(373, 0)  # 378 m
    assert not inside(0, 30) and not inside(0, 20)  # across the river
    assert inside(250, -20)  # into the square: 275 m
    assert not inside(350, -120)  # 275 + 141 m


def test_isochrones_grow_with_minutes_and_are_not_hulls(river: WalkNetwork) -> None:
    qlon, qlat = at(500, -5)
    polys = river.isochrones(qlon, qlat, [2, 5, 10])
    areas = [p.area for p in polys]
    assert areas == sorted(areas) and areas[0] > 0
    assert all(p.is_valid for p in polys)
    hull = shapely.convex_hull(polys[2])
    assert polys[2].area < 0.5 * hull.area


# -- synthetic graphs -----------------------------------------------------------------------
def grid(n: int, spacing_m: float, seed: int, drop: float) -> WalkNetwork:
    rng = np.random.default_rng(seed)
    idx = np.arange(n * n).reshape(n, n)
    x = (idx % n) * spacing_m + rng.uniform(-0.2, 0.2, (n, n)) * spacing_m
    y = (idx // n) * spacing_m + rng.uniform(-0.2, 0.2, (n, n)) * spacing_m
    lon, lat = pts(*zip(x.ravel(), y.ravel(), strict=True))
    u = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    keep = rng.random(u.size) > drop
    return WalkNetwork.from_edges(lon, lat, u[keep], v[keep])


def test_snap_is_exact_against_every_segment() -> None:
    net = grid(25, 80.0, 3, 0.3)
    rng = np.random.default_rng(4)
    lon = rng.uniform(net.lon.min() - 0.003, net.lon.max() + 0.003, 400)
    lat = rng.uniform(net.lat.min() - 0.003, net.lat.max() + 0.003, 400)
    s = net.snap(lon, lat)
    proj = net.projection
    ax, ay = proj.to_xy(net.lon[net.edge_u], net.lat[net.edge_u])
    bx, by = proj.to_xy(net.lon[net.edge_v], net.lat[net.edge_v])
    lines = shapely.linestrings(
        np.stack([np.column_stack([ax, ay]), np.column_stack([bx, by])], axis=1)
    )
    qx, qy = proj.to_xy(lon, lat)
    brute = shapely.distance(shapely.points(qx, qy)[:, None], lines[None, :]).min(axis=1)
    sx, sy = proj.to_xy(s.lon, s.lat)
    assert np.abs(np.hypot(sx - qx, sy - qy) - brute).max() < 1e-6
    # points up to ~300 m off the network took the exactness fallback too
    assert brute.max() > 150


def test_from_edges_keeps_the_shortest_duplicate_and_drops_loops() -> None:
    lon, lat = pts((0, 0), (100, 0), (200, 0))
    net = WalkNetwork.from_edges(lon, lat, [0, 1, 1, 2], [1, 0, 2, 2], [100.0, 90.0, 100.0, 5.0])
    assert net.n_edges == 2
    assert sorted(net.edge_m.tolist()) == [90.0, 100.0]


@pytest.mark.parametrize(
    ("indptr", "indices", "length", "message"),
    [
        ([0, 1, 1], [1], [5.0], "not symmetric"),
        ([0, 1, 2], [1, 0], [5.0, 6.0], "not symmetric"),
        ([0, 1, 2], [0, 1], [5.0, 5.0], "self-loops"),
        ([0, 1, 2], [1, 0], [-1.0, -1.0], "finite"),
        ([0, 1, 2], [1, 7], [5.0, 5.0], "node numbers"),
        ([0, 2, 2], [1, 1], [5.0, 5.0], "joined twice"),
    ],
)
def test_bad_arrays_are_refused(
    indptr: list[int], indices: list[int], length: list[float], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        WalkNetwork([0.0, 0.001], [0.0, 0.0], indptr, indices, length)


def test_bad_inputs_name_the_parameter(river: WalkNetwork) -> None:
    with pytest.raises(InvalidInputError, match="lon/lat"):
        river.snap([np.nan], [34.7])
    with pytest.raises(InvalidInputError, match="lon/lat"):
        river.snap([200.0], [34.7])
    with pytest.raises(InvalidInputError, match="minutes"):
        river.isochrones(LON0, LAT0, [0])
    with pytest.raises(InvalidInputError, match="speed_kmh"):
        river.isochrones(LON0, LAT0, [5], speed_kmh=0)
    with pytest.raises(InvalidInputError, match="limit_m"):
        river.multi_source(river.snap([LON0], [LAT0]), limit_m=-1)
    with pytest.raises(InvalidInputError, match=r"^k:"):
        river.nearest_k(LON0, LAT0, 0, river.snap([LON0], [LAT0]), lambda m: ([0], [0.0]))


def test_walk_minutes() -> None:
    assert walk_minutes([1125.0]).tolist() == pytest.approx([15.0])
    assert walk_minutes(600.0, speed_kmh=3.6).tolist() == pytest.approx(10.0)


def test_zero_length_edges_are_kept_and_walked() -> None:
    # nodes 2 and 3 are at the same place (e.g. two OSM nodes on top of each other)
    lon, lat = pts((0, 0), (100, 0), (200, 0), (200, 0), (300, 0))
    net = WalkNetwork.from_edges(lon, lat, [0, 1, 2, 3], [1, 2, 3, 4])
    assert net.n_edges == 4 and 0.0 in net.edge_m.tolist()
    field = net.multi_source(net.snap(lon[:1], lat[:1]))
    assert field.node_m[4] == pytest.approx(300.0, abs=TOL_M)


def test_snap_on_a_network_smaller_than_the_sample_rounds() -> None:
    lon, lat = pts((0, 0), (60, 0))  # one edge, two snapping samples
    net = WalkNetwork.from_edges(lon, lat, [0], [1])
    qlon, qlat = pts((30, 40), (-30, 0), (100, -5))
    s = net.snap(qlon, qlat)
    np.testing.assert_allclose(s.snap_m, [40.0, 30.0, math.hypot(40, 5)], atol=TOL_M)
    np.testing.assert_allclose(s.fraction, [0.5, 0.0, 1.0], atol=1e-6)


def test_concurrent_searches_agree_with_sequential_ones() -> None:
    net = grid(30, 60.0, 5, 0.2)
    rng = np.random.default_rng(6)
    w, s, e, n = net.bounds()
    pts_lon, pts_lat = rng.uniform(w, e, 64), rng.uniform(s, n, 64)
    points = net.snap(pts_lon, pts_lat)

    def walks(i: int) -> np.ndarray:
        return net.walk_m(points.take([i]), points, 900.0)[0]

    sequential = [walks(i) for i in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(walks, range(64)))
    for a, b in zip(sequential, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
