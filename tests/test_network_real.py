"""Walking distances, nearest, cover sets and isochrones on real OpenStreetMap extracts,
checked against an independent Dijkstra (networkx).

The reference graph is the network's edge list with every snapped point inserted into its
edge (the edge split at the snap points) and joined to the point by its off-network leg,
so networkx sees an ordinary graph and knows nothing of snapping, virtual nodes, bounded
subgraphs or the same-edge shortcut.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from yizhan.geo.nearest import PointIndex
from yizhan.geo.network import Snapped, WalkNetwork
from yizhan.geo.projection import LocalProjection
from yizhan.network import build_network

DATA = Path(__file__).resolve().parent / "data" / "network"
TOL_M = 1e-6


def reference_graph(net: WalkNetwork, groups: dict[str, Snapped]) -> nx.Graph:
    """networkx graph of *net* with each snapped point of each group spliced into its edge.

    Nodes: ints (network nodes), ``(group, i, "on")`` (snap points), ``(group, i)`` (points).
    """
    g = nx.Graph()
    on_edge: dict[int, list[tuple[float, Any]]] = defaultdict(list)
    for name, s in groups.items():
        for i in range(len(s)):
            on_edge[int(s.edge[i])].append((float(s.fraction[i]), (name, i, "on")))
            g.add_edge((name, i), (name, i, "on"), weight=float(s.snap_m[i]))
    for e, (u, v, length) in enumerate(
        zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_m.tolist(), strict=True)
    ):
        chain = [(0.0, u), *sorted(on_edge.get(e, [])), (1.0, v)]
        for (f0, a), (f1, b) in pairwise(chain):
            g.add_edge(a, b, weight=(f1 - f0) * length)
    return g


def stations(net: WalkNetwork) -> Snapped:
    doc = json.loads((DATA / "helsinki-amenities.geojson").read_text(encoding="utf-8"))
    xy = np.array(
        [
            f["geometry"]["coordinates"]
            for f in doc["features"]
            if f["properties"].get("amenity") in ("toilets", "fountain")
        ]
    )
    return net.snap(xy[:, 0], xy[:, 1])


def random_points(net: WalkNetwork, n: int, seed: int) -> Snapped:
    rng = np.random.default_rng(seed)
    w, s, e, n_ = net.bounds()
    return net.snap(rng.uniform(w, e, n), rng.uniform(s, n_, n))


@pytest.fixture(scope="module")
def helsinki() -> WalkNetwork:
    return build_network(DATA / "helsinki.osm.pbf")[0].network


@pytest.fixture(scope="module")
def helsinki_case(helsinki: WalkNetwork) -> dict[str, Any]:
    src = stations(helsinki)
    tgt = random_points(helsinki, 150, 1)
    g = reference_graph(helsinki, {"s": src, "t": tgt})
    ref = np.full((len(src), len(tgt)), np.inf)
    for i in range(len(src)):
        dist = nx.single_source_dijkstra_path_length(g, ("s", i))
        ref[i] = [dist.get(("t", j), np.inf) for j in range(len(tgt))]
    return {"src": src, "tgt": tgt, "ref": ref}


def test_helsinki_has_its_toilets_and_fountains(helsinki_case: dict[str, Any]) -> None:
    assert len(helsinki_case["src"]) == 25
    assert np.isfinite(helsinki_case["ref"]).all()


def test_multi_source_matches_networkx(
    helsinki: WalkNetwork, helsinki_case: dict[str, Any]
) -> None:
    src, tgt, ref = helsinki_case["src"], helsinki_case["tgt"], helsinki_case["ref"]
    walk_m, nearest = helsinki.multi_source(src).at(tgt)
    np.testing.assert_allclose(walk_m, ref.min(axis=0), atol=TOL_M)
    ordered = np.sort(ref, axis=0)
    clear = ordered[1] - ordered[0] > 1e-6  # ids compared where there is no tie
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(nearest[clear], ref.argmin(axis=0)[clear])
    for limit in (150.0, 400.0):
        walk_m, nearest = helsinki.multi_source(src, limit_m=limit).at(tgt)
        inside = ref.min(axis=0) <= limit
        np.testing.assert_array_equal(np.isfinite(walk_m), inside)
        np.testing.assert_allclose(walk_m[inside], ref.min(axis=0)[inside], atol=TOL_M)
        assert (nearest[~inside] == -1).all()


def test_pairwise_walks_match_networkx(
    helsinki: WalkNetwork, helsinki_case: dict[str, Any]
) -> None:
    src, tgt, ref = helsinki_case["src"], helsinki_case["tgt"], helsinki_case["ref"]
    for i in (0, 7, 19):
        got = helsinki.walk_m(src.take([i]), tgt, 500.0)[0]
        near = ref[i] <= 500.0
        np.testing.assert_array_equal(np.isfinite(got), near)
        np.testing.assert_allclose(got[near], ref[i][near], atol=TOL_M)


def test_cover_pairs_match_networkx(helsinki: WalkNetwork, helsinki_case: dict[str, Any]) -> None:
    src, tgt, ref = helsinki_case["src"], helsinki_case["tgt"], helsinki_case["ref"]
    i, j, d = helsinki.cover_pairs(src, tgt, 350.0)
    expect = np.argwhere(ref <= 350.0)
    assert len(expect) > 50
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [tuple(p) for p in expect.tolist()]
    np.testing.assert_allclose(d, ref[i, j], atol=TOL_M)


def test_k_nearest_matches_networkx(helsinki: WalkNetwork, helsinki_case: dict[str, Any]) -> None:
    src = helsinki_case["src"]
    queries = random_points(helsinki, 20, 2)
    g = reference_graph(helsinki, {"s": src, "q": queries})
    index = PointIndex(src.point_lon, src.point_lat)
    for q in range(len(queries)):
        lon, lat = float(queries.point_lon[q]), float(queries.point_lat[q])

        def knn(m: int, lon: float = lon, lat: float = lat) -> tuple[np.ndarray, np.ndarray]:
            hits = index.knn(lon, lat, k=min(m, len(src)))
            return hits.index, hits.distance_m

        got = helsinki.nearest_k(lon, lat, 5, src, knn)
        dist = nx.single_source_dijkstra_path_length(g, ("q", q))
        ref = np.array([dist[("s", i)] for i in range(len(src))])
        order = np.lexsort((np.arange(len(src)), ref))[:5]
        np.testing.assert_allclose(got.walk_m, ref[order], atol=TOL_M)
        assert got.index.tolist() == order.tolist()


def sample_walks(
    net: WalkNetwork, origin: Snapped, proj: LocalProjection, step_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every *step_m* along every edge (projected), their edge, and networkx walks."""
    g = reference_graph(net, {"o": origin})
    dist = nx.single_source_dijkstra_path_length(g, ("o", 0))
    nx_, ny_ = proj.to_xy(net.lon, net.lat)
    ox, oy = proj.to_xy(origin.lon, origin.lat)
    coords = {n: (float(nx_[n]), float(ny_[n])) for n in range(net.n_nodes)}
    coords[("o", 0, "on")] = (float(ox[0]), float(oy[0]))
    xy_all, walk_all, edge_all = [], [], []
    for k, (a, b, data) in enumerate(g.edges(data=True)):
        if a == ("o", 0) or b == ("o", 0):
            continue  # the off-network leg is not a street
        length = float(data["weight"])
        x = np.append(np.arange(0.0, length, step_m), length)
        f = x / length if length > 0 else np.zeros_like(x)
        pa, pb = np.array(coords[a]), np.array(coords[b])
        xy_all.append(pa + f[:, None] * (pb - pa))
        walk_all.append(np.minimum(dist[a] + x, dist[b] + length - x))
        edge_all.append(np.full(x.size, k))
    return np.vstack(xy_all), np.concatenate(walk_all), np.concatenate(edge_all)


@pytest.mark.parametrize(
    ("extract", "seed"), [("helsinki.osm.pbf", 3), ("aguascalientes.osm.pbf", 4)]
)
def test_isochrones_hold_what_is_reachable_and_nothing_beyond(extract: str, seed: int) -> None:
    net = build_network(DATA / extract)[0].network
    origin = random_points(net, 1, seed)
    lon, lat = float(origin.point_lon[0]), float(origin.point_lat[0])
    proj = LocalProjection(lon, lat)
    step = 2.0
    xy, walk, _ = sample_walks(net, origin, proj, step)
    for buffer_m in (10.0, 25.0):
        minutes = [3.0, 6.0]
        polys = net.isochrones(lon, lat, minutes, buffer_m=buffer_m)
        for mins, poly in zip(minutes, polys, strict=True):
            budget = mins * 75.0  # 4.5 km/h
            shape = proj.geometry_to_xy(poly)
            assert shape.is_valid and not shape.is_empty
            shapely.prepare(shape)
            inside = shapely.intersects_xy(shape, xy[:, 0], xy[:, 1])
            # every network point reachable within the budget is inside
            assert inside[walk <= budget - 0.01].all()
            # every network point inside is reachable within the budget plus one sample
            # step if its last stretch is walked straight (the rule for snapped points)
            reach = walk <= budget
            pairs = cKDTree(xy[inside]).sparse_distance_matrix(
                cKDTree(xy[reach]), buffer_m + step, output_type="ndarray"
            )
            best = np.full(int(inside.sum()), np.inf)
            np.minimum.at(best, pairs["i"], walk[reach][pairs["j"]] + pairs["v"])
            assert (best <= budget + step).all()
            # most of the network beyond the budget is outside (some lies beside reachable
            # streets, within the buffer)
            far = walk > budget + buffer_m + step
            assert far.any() and (~inside[far]).mean() > 0.9


@pytest.mark.parametrize(
    "extract", ["kotka.osm.pbf", "aguascalientes.osm.pbf", "west-oakland.osm.bz2"]
)
def test_other_extracts_match_networkx(extract: str) -> None:
    net = build_network(DATA / extract)[0].network
    src = random_points(net, 8, 10)
    tgt = random_points(net, 80, 11)
    g = reference_graph(net, {"s": src, "t": tgt})
    ref = np.array(
        [
            [d.get(("t", j), np.inf) for j in range(len(tgt))]
            for d in (nx.single_source_dijkstra_path_length(g, ("s", i)) for i in range(len(src)))
        ]
    )
    walk_m, nearest = net.multi_source(src).at(tgt)
    np.testing.assert_allclose(walk_m, ref.min(axis=0), atol=TOL_M)
    ordered = np.sort(ref, axis=0)
    clear = ordered[1] - ordered[0] > 1e-6
    np.testing.assert_array_equal(nearest[clear], ref.argmin(axis=0)[clear])
    limit = float(np.median(ref))
    i, j, d = net.cover_pairs(src, tgt, limit)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [
        tuple(p) for p in np.argwhere(ref <= limit).tolist()
    ]
    np.testing.assert_allclose(d, ref[i, j], atol=TOL_M)
    index = PointIndex(tgt.point_lon, tgt.point_lat)
    for q in range(3):
        lon, lat = float(src.point_lon[q]), float(src.point_lat[q])

        def knn(m: int, lon: float = lon, lat: float = lat) -> tuple[np.ndarray, np.ndarray]:
            hits = index.knn(lon, lat, k=min(m, len(tgt)))
            return hits.index, hits.distance_m

        got = net.nearest_k(lon, lat, 5, tgt, knn)
        order = np.lexsort((np.arange(len(tgt)), ref[q]))[:5]
        assert got.index.tolist() == order.tolist()
        np.testing.assert_allclose(got.walk_m, ref[q][order], atol=TOL_M)
