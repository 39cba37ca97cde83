"""Tests for yizhan.geo.siting: maximal covering location, exact and greedy."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import shapely
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.distance import EARTH_RADIUS_M, haversine_m
from yizhan.geo.hexgrid import hex_grid
from yizhan.geo.siting import (
    candidates_from_demand,
    coverage_matrix,
    site_buses,
    site_mclp,
)
from yizhan.geo.siting_model import prefer_ranked, tie_order
from yizhan.stations.registry import from_document

LON0, LAT0 = 113.65, 34.75
DEG_PER_M_EQUATOR = 180.0 / (math.pi * EARTH_RADIUS_M)

FloatArray = NDArray[np.float64]


def covered_by(
    dl: FloatArray, da: FloatArray, lon: FloatArray, lat: FloatArray, r: float
) -> NDArray[np.bool_]:
    if len(lon) == 0:
        return np.zeros(len(dl), dtype=bool)
    d = haversine_m(dl[:, None], da[:, None], np.asarray(lon)[None, :], np.asarray(lat)[None, :])
    out: NDArray[np.bool_] = np.logical_or.reduce(d <= r, axis=1)
    return out


def exhaustive(
    dl: FloatArray,
    da: FloatArray,
    w: FloatArray,
    el: FloatArray,
    ea: FloatArray,
    cl: FloatArray,
    ca: FloatArray,
    n: int,
    r: float,
) -> float:
    """Best newly covered weight over every set of min(n, #candidates) candidates."""
    base = covered_by(dl, da, el, ea, r)
    a = haversine_m(dl[:, None], da[:, None], cl[None, :], ca[None, :]) <= r
    best = 0.0
    for comb in itertools.combinations(range(len(cl)), min(n, len(cl))):
        cov = a[:, list(comb)].any(axis=1) & ~base
        best = max(best, float(w[cov].sum()))
    return best


def random_instance(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    nd, nc, ne = int(rng.integers(5, 45)), int(rng.integers(2, 11)), int(rng.integers(0, 4))
    s = 0.03
    return {
        "dl": LON0 + rng.uniform(-s, s, nd),
        "da": LAT0 + rng.uniform(-s, s, nd),
        "w": rng.choice([0.0, 1.0, 2.0, 3.5, 10.0], nd),
        "el": LON0 + rng.uniform(-s, s, ne),
        "ea": LAT0 + rng.uniform(-s, s, ne),
        "cl": LON0 + rng.uniform(-s, s, nc),
        "ca": LAT0 + rng.uniform(-s, s, nc),
        "n": int(rng.integers(1, 5)),
        "r": float(rng.choice([600.0, 1000.0, 1500.0])),
    }


@pytest.mark.parametrize("block", range(4))
def test_exact_equals_exhaustive_search_and_beats_greedy(block: int) -> None:
    for seed in range(block * 25, block * 25 + 25):
        p = random_instance(seed)
        d = Demand.from_arrays(p["dl"], p["da"], p["w"])
        res = site_mclp(d, p["el"], p["ea"], p["cl"], p["ca"], n_new=p["n"], radius_m=p["r"])
        best = exhaustive(
            p["dl"], p["da"], p["w"], p["el"], p["ea"], p["cl"], p["ca"], p["n"], p["r"]
        )
        assert res.status in ("optimal", "trivial"), seed
        assert res.objective == pytest.approx(best, abs=1e-9), seed
        # The chosen sites really cover that much.
        base = covered_by(p["dl"], p["da"], p["el"], p["ea"], p["r"])
        new = covered_by(p["dl"], p["da"], np.array(res.lon), np.array(res.lat), p["r"]) & ~base
        assert float(p["w"][new].sum()) == pytest.approx(res.objective, abs=1e-9)
        assert len(res.chosen) <= p["n"] and len(set(res.chosen)) == len(res.chosen)
        # Never worse than greedy; marginal gains add up to the improvement.
        assert res.greedy_objective <= res.objective + 1e-9
        assert sum(res.gains) == pytest.approx(res.covered_after - res.covered_before, abs=1e-9)
        assert all(g > 0 for g in res.gains)
        assert res.gains == sorted(res.gains, reverse=True)
        assert res.covered_before == pytest.approx(float(p["w"][base].sum()))
        if res.chosen:
            assert res.cumulative_covered[-1] == pytest.approx(res.covered_after)


def line_points(xs_m: list[float]) -> tuple[FloatArray, FloatArray]:
    """Points on the equator at given distances east of 0°, metres (exact on the sphere)."""
    return np.array(xs_m) * DEG_PER_M_EQUATOR, np.zeros(len(xs_m))


def test_greedy_trap_is_solved_exactly() -> None:
    """Greedy takes the middle site (5.5) first and ends at 8.5; the optimum is 10."""
    dl, da = line_points([0, 900, 1500, 2100, 3000])
    w = np.array([3.0, 2.0, 1.5, 2.0, 3.0])
    cl, ca = line_points(
        [450, 1500, 2550]
    )  # X covers {0, 900}; Z {900, 1500, 2100}; Y {2100, 3000}
    res = site_mclp(Demand.from_arrays(dl, da, w), [], [], cl, ca, n_new=2, radius_m=1000.0)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(10.0)
    assert sorted(res.chosen) == [0, 2]
    assert res.greedy_chosen[0] == 1
    assert res.greedy_objective == pytest.approx(8.5)
    assert res.greedy_gap_pct == pytest.approx(15.0)
    assert res.upper_bound == pytest.approx(10.0)
    assert res.gains == pytest.approx([5.0, 5.0])


def test_existing_stations_are_kept() -> None:
    dl, da = line_points([0, 900, 1500, 2100, 3000])
    w = np.array([3.0, 2.0, 1.5, 2.0, 3.0])
    cl, ca = line_points([450, 1500, 2550])
    el, ea = line_points([0])  # covers the first two points already
    res = site_mclp(Demand.from_arrays(dl, da, w), el, ea, cl, ca, n_new=1, radius_m=1000.0)
    assert res.covered_before == pytest.approx(5.0)
    assert res.chosen == [2]  # Y adds 5; Z adds only 3.5 now
    assert res.covered_after == pytest.approx(10.0)
    assert res.covered_after_pct == pytest.approx(100 * 10.0 / 11.5)


def test_more_sites_than_useful_candidates() -> None:
    dl, da = line_points([0, 5000])
    cl, ca = line_points([100, 200, 20000])  # two reach the first point; the third nothing
    res = site_mclp(
        Demand.from_arrays(dl, da, [1.0, 1.0]), [], [], cl, ca, n_new=3, radius_m=1000.0
    )
    assert res.status == "trivial"
    assert res.chosen == [0]  # 1 adds nothing after 0; 2 reaches nobody
    assert res.objective == 1.0


def test_candidates_from_uncovered_demand() -> None:
    rng = np.random.default_rng(3)
    dl, da = LON0 + rng.uniform(-0.05, 0.05, 400), LAT0 + rng.uniform(-0.05, 0.05, 400)
    d = Demand.from_arrays(dl, da, rng.integers(0, 20, 400))
    el, ea = np.array([LON0]), np.array([LAT0])
    _, _, src = candidates_from_demand(d, el, ea, 1000.0)
    assert len(src) == int(((d.weight > 0) & ~covered_by(dl, da, el, ea, 1000.0)).sum())
    thin_lon, _, thin_src = candidates_from_demand(d, el, ea, 1000.0, max_candidates=50)
    assert 0 < len(thin_lon) <= 50
    assert set(thin_src.tolist()) <= set(src.tolist())
    res = site_mclp(d, el, ea, n_new=5, radius_m=1000.0, max_candidates=60)
    assert res.status == "optimal"
    assert len(res.chosen) == 5
    assert res.model["candidates"] <= 60
    # Chosen sites sit on uncovered demand points.
    assert not covered_by(np.array(res.lon), np.array(res.lat), el, ea, 1000.0).any()


def test_to_geojson_and_dict() -> None:
    dl, da = line_points([0, 900, 1500, 2100, 3000])
    cl, ca = line_points([450, 1500, 2550])
    res = site_mclp(
        Demand.from_arrays(dl, da, [3, 2, 1.5, 2, 3]), [], [], cl, ca, n_new=2, radius_m=1000.0
    )
    fc = res.to_geojson()
    props = [f["properties"] for f in fc["features"]]
    assert [p["rank"] for p in props] == [1, 2]
    assert [p["gain"] for p in props] == pytest.approx([5.0, 5.0])
    assert [p["cumulative_covered"] for p in props] == pytest.approx([5.0, 10.0])
    assert props[-1]["cumulative_covered_pct"] == pytest.approx(100 * 10 / 11.5)
    assert fc["features"][0]["geometry"]["coordinates"] == [res.lon[0], res.lat[0]]
    json.dumps(res.to_dict(), allow_nan=False)
    json.dumps(fc, allow_nan=False)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_new": 0}, "n_new"),
        ({"n_new": 2.5}, "n_new"),
        ({"radius_m": 0.0}, "radius_m"),
        ({"radius_m": math.nan}, "radius_m"),
        ({"time_limit_s": -1.0}, "time_limit_s"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], field: str) -> None:
    d = Demand.from_arrays([LON0], [LAT0])
    args: dict[str, Any] = {"n_new": 1, "radius_m": 1000.0, **kwargs}
    with pytest.raises(InvalidInputError) as exc:
        site_mclp(d, [], [], [LON0], [LAT0], **args)
    assert exc.value.field == field


def test_coverage_matrix_is_sparse_and_exact() -> None:
    rng = np.random.default_rng(11)
    dl, da = LON0 + rng.uniform(-0.05, 0.05, 300), LAT0 + rng.uniform(-0.05, 0.05, 300)
    cl, ca = LON0 + rng.uniform(-0.05, 0.05, 40), LAT0 + rng.uniform(-0.05, 0.05, 40)
    a = coverage_matrix(dl, da, cl, ca, 1200.0)
    assert sp.issparse(a)
    brute = haversine_m(dl[:, None], da[:, None], cl[None, :], ca[None, :]) <= 1200.0
    assert np.array_equal(a.toarray().astype(bool), brute)


def test_site_buses_uses_open_stations_only() -> None:
    dl, da = line_points([0, 3000, 6000])
    reg = from_document(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": f"s{k}",
                    "geometry": {"type": "Point", "coordinates": [float(x), 0.0]},
                    "properties": {"name": f"S{k}", "kind": "station"},
                }
                for k, x in enumerate(dl[:2])
            ],
        }
    )
    stands_lon, stands_lat = line_points([3100, 6100])
    d = Demand.from_arrays(dl, da, [1.0, 10.0, 2.0])
    # Station s1 (at 3000 m, weight 10) is closed this afternoon: the bus goes there.
    res = site_buses(d, reg, stands_lon, stands_lat, k=1, station_mask=np.array([True, False]))
    assert res.chosen == [0]
    assert res.covered_before == 1.0 and res.objective == 10.0
    # With both open, the bus goes to the remaining gap.
    res2 = site_buses(d, reg, stands_lon, stands_lat, k=1)
    assert res2.chosen == [1]
    with pytest.raises(InvalidInputError) as exc:
        site_buses(d, reg, stands_lon, stands_lat, k=0)
    assert exc.value.field == "k"


def test_solver_timeout_falls_back_to_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import yizhan.geo.siting as siting

    def no_solution(*args: Any, **kwargs: Any) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            status=1, x=None, message="Time limit reached", mip_dual_bound=-1e9
        )

    monkeypatch.setattr(siting, "milp", no_solution)
    dl, da = line_points([0, 900, 1500, 2100, 3000])
    cl, ca = line_points([450, 1500, 2550])
    d = Demand.from_arrays(dl, da, [3.0, 2.0, 1.5, 2.0, 3.0])
    res = site_mclp(d, [], [], cl, ca, n_new=2, radius_m=1000.0, time_limit_s=0.1)
    assert res.status == "time_limit"
    assert res.objective == pytest.approx(8.5)  # the greedy answer
    assert res.chosen == res.greedy_chosen
    assert res.model["message"] == "Time limit reached"


# -- ties: the same answer every time, by a documented rule --------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_equal_gains_go_to_the_candidate_listed_first(reverse: bool) -> None:
    """Two candidates adding the same demand: the one listed first, by both answers."""
    dl, da = line_points([0, 5000])
    cl, ca = line_points([5100, 100] if reverse else [100, 5100])
    d = Demand.from_arrays(dl, da, [2.0, 2.0])
    for _ in range(3):
        res = site_mclp(d, [], [], cl, ca, n_new=1, radius_m=1000.0)
        assert res.status == "optimal"
        assert res.chosen == [0] and res.greedy_chosen == [0]
        assert res.lon == [float(cl[0])]


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_equal_gains_from_demand_prefer_the_site_on_more_demand(order: list[int]) -> None:
    """Candidates taken from demand: a (3 people) alone; b (2) and c (1) together. Every
    candidate adds 3; the one standing on more demand wins, whatever the demand order."""
    xs, ws = [0.0, 5000.0, 5300.0], [3.0, 2.0, 1.0]
    dl, da = line_points([xs[k] for k in order])
    d = Demand.from_arrays(dl, da, [ws[k] for k in order])
    one = site_mclp(d, [], [], n_new=1, radius_m=1000.0)
    assert one.gains == [3.0] and one.lon == pytest.approx([0.0])
    assert one.greedy_chosen == one.chosen
    two = site_mclp(d, [], [], n_new=2, radius_m=1000.0)
    # a then b (equal gains: listed in tie rank), never c.
    assert two.lon == pytest.approx([0.0, 5000.0 * DEG_PER_M_EQUATOR])
    assert two.gains == [3.0, 3.0]


def test_prefer_ranked_swaps_for_an_equally_good_better_ranked_set() -> None:
    # Columns: 0 and 1 both cover row 0; 2 covers row 1; 3 covers rows 1 and 2.
    a = sp.csc_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=np.int8))
    w = np.array([1.0, 1.0, 1.0])
    assert prefer_ranked(a, w, [1, 3]) == [0, 3]  # 1 -> 0 keeps the weight; 3 -> 2 loses
    assert prefer_ranked(a, w, [1, 2]) == [0, 2]
    assert prefer_ranked(a, w, []) == []
    assert tie_order([0.0, 2.0, 2.0, 1.0]).tolist() == [1, 2, 3, 0]


def test_uniform_grid_ties_do_not_depend_on_input_order() -> None:
    """Equal hexagons (land area as demand): every whole cell adds the same, so the sites
    come from the tie rule alone: whole cells, nearest the existing station first, and the
    same places whatever order the demand is listed in."""
    square = shapely.box(LON0, LAT0, LON0 + 0.1, LAT0 + 0.08)
    grid = hex_grid(Districts.from_geometries(["square"], [square]), 500.0)
    el, ea = [LON0 + 0.0313], [LAT0 + 0.0271]
    flipped = Demand.from_arrays(grid.lon[::-1], grid.lat[::-1], grid.weight[::-1])
    res = site_mclp(grid, el, ea, n_new=4, radius_m=1000.0)
    back = site_mclp(flipped, el, ea, n_new=4, radius_m=1000.0)
    assert res.status == back.status == "optimal"
    assert sorted(zip(res.lon, res.lat, strict=True)) == sorted(
        zip(back.lon, back.lat, strict=True)
    )
    assert res.gains == pytest.approx([res.gains[0]] * 4, rel=1e-9)  # all ties
    full = float(grid.weight.max())
    on = [
        int(np.argmin(np.hypot(grid.lon - x, grid.lat - y)))
        for x, y in zip(res.lon, res.lat, strict=True)
    ]
    assert all(grid.weight[k] == pytest.approx(full) for k in on)
    # Listed in tie rank: equal gains, so nearest the station first.
    near = haversine_m(np.array(res.lon), np.array(res.lat), el[0], ea[0])
    assert list(near) == sorted(near)
