"""Tests for yizhan.geo.coverage: coverage shares, per-district tables, gap polygons."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from numpy.typing import NDArray
from shapely.geometry import box

from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import (
    coverage,
    gap_polygons,
    gaps_geojson,
    select_stations,
    station_circles,
    weighted_quantile,
)
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.distance import haversine_m
from yizhan.geo.hexgrid import hex_grid
from yizhan.geo.projection import LocalProjection, destination
from yizhan.query.demand_files import load_districts
from yizhan.stations.registry import Registry, StationFilter, from_document

ZHENGZHOU = (
    Path(__file__).resolve().parent.parent / "yizhan" / "data" / "zhengzhou-districts.geojson"
)
LON0, LAT0 = 113.65, 34.75


def random_case(
    seed: int, n_demand: int, n_stations: int, spread_deg: float
) -> tuple[NDArray[np.float64], ...]:
    rng = np.random.default_rng(seed)
    dl = LON0 + rng.uniform(-spread_deg, spread_deg, n_demand)
    da = LAT0 + rng.uniform(-spread_deg, spread_deg, n_demand)
    w = rng.choice([0.0, 1.0, 2.5, 10.0, 300.0], n_demand)
    sl = LON0 + rng.uniform(-spread_deg, spread_deg, n_stations)
    sa = LAT0 + rng.uniform(-spread_deg, spread_deg, n_stations)
    return dl, da, w, sl, sa


def brute_quantile(d: NDArray[np.float64], w: NDArray[np.float64], q: float) -> float:
    """Smallest distance whose cumulative weight reaches q of the total (pair by pair)."""
    total = w.sum()
    for v in sorted(set(d.tolist())):
        if w[d <= v].sum() >= q * total * (1 - 1e-12):
            return float(v)
    raise AssertionError


CASES = [
    # seed, demand, stations, spread (deg), radius (m)
    (1, 50, 5, 0.02, 1000.0),
    (2, 200, 20, 0.05, 1000.0),
    (3, 300, 3, 0.05, 2500.0),
    (4, 120, 60, 0.10, 500.0),
    (5, 80, 1, 0.01, 750.0),
    (6, 400, 40, 0.08, 1500.0),
]


@pytest.mark.parametrize(("seed", "n_demand", "n_stations", "spread", "radius"), CASES)
def test_coverage_equals_brute_force(
    seed: int, n_demand: int, n_stations: int, spread: float, radius: float
) -> None:
    dl, da, w, sl, sa = random_case(seed, n_demand, n_stations, spread)
    # Districts: three vertical strips, one of them without stations if possible.
    edges = [LON0 - 1, LON0 - spread / 3, LON0 + spread / 3, LON0 + 1]
    strips = [box(edges[k], LAT0 - 1, edges[k + 1], LAT0 + 1) for k in range(3)]
    districts = Districts.from_geometries(["W", "C", "E"], strips)
    demand = Demand.from_arrays(dl, da, w, weight_name="workers").with_districts(districts)
    res = coverage((sl, sa), demand, radius_m=radius)

    all_d = haversine_m(dl[:, None], da[:, None], sl[None, :], sa[None, :])
    nearest = all_d.min(axis=1)
    covered = nearest <= radius
    assert np.allclose(res.nearest_distance_m, nearest, atol=1e-6)
    assert np.array_equal(res.covered, covered)
    assert res.total_weight == pytest.approx(w.sum())
    assert res.covered_weight == pytest.approx(w[covered].sum())
    assert res.uncovered_weight == pytest.approx(w[~covered].sum())
    assert res.covered_weight_pct == pytest.approx(100 * w[covered].sum() / w.sum())
    assert res.distance_p50_m == pytest.approx(brute_quantile(nearest, w, 0.5), abs=1e-6)
    assert res.distance_p90_m == pytest.approx(brute_quantile(nearest, w, 0.9), abs=1e-6)
    assert res.distance_max_m == pytest.approx(nearest[w > 0].max(), abs=1e-6)
    for band in res.distance_bands:
        assert band["weight"] == pytest.approx(w[nearest <= band["within_m"]].sum())

    code = np.select([dl < edges[1], dl < edges[2]], [0, 1], 2)
    st_code = np.select([sl < edges[1], sl < edges[2]], [0, 1], 2)
    assert [r["district"] for r in res.per_district] == ["W", "C", "E"]
    for k, row in enumerate(res.per_district):
        dem = w[code == k].sum()
        cov = w[(code == k) & covered].sum()
        n_st = int((st_code == k).sum())
        assert row["demand"] == pytest.approx(dem)
        assert row["covered"] == pytest.approx(cov)
        assert row["share_pct"] == pytest.approx(100 * cov / dem if dem else 0.0)
        assert row["stations"] == n_st
        if n_st:
            assert row["demand_per_station"] == pytest.approx(dem / n_st)
        else:
            assert row["demand_per_station"] is None


@pytest.mark.parametrize("seed", range(5))
def test_station_mask_equals_brute_force_on_subset(seed: int) -> None:
    dl, da, w, sl, sa = random_case(100 + seed, 150, 25, 0.05)
    mask = np.random.default_rng(seed).random(25) < 0.5
    res = coverage((sl, sa), Demand.from_arrays(dl, da, w), 1000.0, station_mask=mask)
    nearest = haversine_m(dl[:, None], da[:, None], sl[mask][None, :], sa[mask][None, :]).min(
        axis=1
    )
    assert res.n_stations == int(mask.sum())
    assert res.covered_weight == pytest.approx(w[nearest <= 1000.0].sum())


def test_boundary_distance_counts_as_covered() -> None:
    lon, lat = destination(LON0, LAT0, 90.0, 999.999)
    far_lon, far_lat = destination(LON0, LAT0, 90.0, 1000.01)
    d = Demand.from_arrays([float(lon), float(far_lon)], [float(lat), float(far_lat)])
    res = coverage(([LON0], [LAT0]), d, 1000.0)
    assert res.covered.tolist() == [True, False]


def test_no_stations_and_json() -> None:
    d = Demand.from_arrays([LON0, LON0 + 0.01], [LAT0, LAT0], [2.0, 3.0], district=["a", None])
    res = coverage((np.empty(0), np.empty(0)), d)
    assert res.covered_weight == 0.0
    assert math.isinf(res.distance_p50_m)
    out = res.to_dict(include_points=True)
    text = json.dumps(out, allow_nan=False)  # plain, strict JSON
    back = json.loads(text)
    assert back["distance_p50_m"] is None
    assert back["nearest_distance_m"] == [None, None]
    assert [r["district"] for r in back["per_district"]] == ["a", None]
    assert back["per_district"][0]["stations"] is None


def test_to_dict_has_plain_types() -> None:
    dl, da, w, sl, sa = random_case(9, 100, 10, 0.03)
    res = coverage((sl, sa), Demand.from_arrays(dl, da, w, district=["x"] * 100))

    def walk(v: Any) -> None:
        assert type(v) in (dict, list, str, int, float, bool, type(None)), type(v)
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(res.to_dict(include_points=True))
    assert set(res.to_dict()) >= {
        "total_weight",
        "covered_weight",
        "covered_weight_pct",
        "per_district",
        "distance_p50_m",
        "distance_p90_m",
        "distance_max_m",
    }


@pytest.mark.parametrize("radius", [0.0, -5.0, math.nan, math.inf])
def test_bad_radius(radius: float) -> None:
    d = Demand.from_arrays([LON0], [LAT0])
    with pytest.raises(InvalidInputError) as exc:
        coverage(([LON0], [LAT0]), d, radius_m=radius)
    assert exc.value.field == "radius_m"


def test_bad_mask() -> None:
    d = Demand.from_arrays([LON0], [LAT0])
    with pytest.raises(InvalidInputError) as exc:
        coverage(([LON0, LON0], [LAT0, LAT0]), d, station_mask=np.array([True]))
    assert exc.value.field == "station_mask"


def _registry() -> Registry:
    def feat(fid: str, lon: float, lat: float, **props: Any) -> dict[str, Any]:
        return {
            "type": "Feature",
            "id": fid,
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": fid, "kind": "station", **props},
        }

    return from_document(
        {
            "type": "FeatureCollection",
            "features": [
                feat("a", LON0, LAT0, district="二七区", capacity=8),
                feat("b", LON0 + 0.05, LAT0, district="金水区", status="temporarily_closed"),
                feat("c", LON0 + 0.10, LAT0, amenities=["drinking_water"]),
            ],
        }
    )


def test_registry_and_station_filter() -> None:
    reg = _registry()
    d = Demand.from_arrays(
        [LON0, LON0 + 0.05, LON0 + 0.10],
        [LAT0, LAT0, LAT0],
        [1, 1, 1],
        district=["二七区", "金水区", "x"],
    )
    all_st = coverage(reg, d, 500.0)
    assert all_st.covered_weight == 3.0
    op = coverage(reg, d, 500.0, station_mask=StationFilter.make())
    assert op.covered.tolist() == [True, False, True]
    water = coverage(reg, d, 500.0, station_mask=StationFilter.make(amenities=["drinking_water"]))
    assert water.covered.tolist() == [False, False, True]
    # Without polygons, stations per district come from the registry's district property.
    assert [r["stations"] for r in op.per_district] == [1, 0, 0]
    st = select_stations(reg, StationFilter.make())
    assert st.ids == ["a", "c"]
    assert np.isnan(st.capacity[1]) and st.capacity[0] == 8.0
    with pytest.raises(InvalidInputError):
        select_stations((reg.lon, reg.lat), StationFilter.make())


def test_zhengzhou_districts_hex_demand() -> None:
    districts = load_districts(ZHENGZHOU)
    inner = Districts.from_geometries(
        districts.names[:4], districts.geometries[:4], districts.properties[:4]
    )
    demand = hex_grid(inner, 1000.0, total_weight=1_000_000.0, weight_name="workers")
    assert isinstance(demand, Demand)
    rng = np.random.default_rng(0)
    bounds = shapely.bounds(inner.union())
    sl = rng.uniform(bounds[0], bounds[2], 40)
    sa = rng.uniform(bounds[1], bounds[3], 40)
    res = coverage((sl, sa), demand, 1000.0)
    assert [r["district"] for r in res.per_district] == list(inner.names)
    assert sum(r["demand"] for r in res.per_district) == pytest.approx(1_000_000.0)
    assert sum(r["stations"] for r in res.per_district) == int((inner.assign(sl, sa) >= 0).sum())


# -- weighted quantile ----------------------------------------------------------------------
def test_weighted_quantile() -> None:
    v = np.array([5.0, 1.0, 3.0])
    w = np.array([1.0, 1.0, 2.0])
    assert weighted_quantile(v, w, [0.25, 0.5, 0.75, 1.0]) == [1.0, 3.0, 3.0, 5.0]
    assert all(math.isnan(x) for x in weighted_quantile(v, np.zeros(3), [0.5]))


# -- circles and gaps --------------------------------------------------------------------------
@pytest.mark.parametrize("radius", [300.0, 1000.0, 5000.0])
@pytest.mark.parametrize("lat", [0.0, 34.75, 53.0])
def test_circle_area_is_pi_r_squared(radius: float, lat: float) -> None:
    circles, _ = station_circles([113.65], [lat], radius)
    assert circles[0].area == pytest.approx(math.pi * radius**2, rel=0.005)


def test_circle_far_from_projection_centre() -> None:
    proj = LocalProjection(113.65, 34.75)
    circles, _ = station_circles([114.5], [35.3], 1000.0, projection=proj)  # ~100 km away
    assert circles[0].area == pytest.approx(math.pi * 1e6, rel=0.005)


def test_gap_polygons_inside_and_outside() -> None:
    area = box(113.60, 34.70, 113.70, 34.80)
    sl = np.array([113.62, 113.65, 113.68])
    sa = np.array([34.72, 34.75, 34.78])
    r = 1000.0
    gaps = gap_polygons(area, sl, sa, r)
    assert gaps.geom_type in ("Polygon", "MultiPolygon")
    for lon, lat in zip(sl, sa, strict=True):
        # inside a circle: not a gap (at several distances and bearings)
        for dist in (0.0, 300.0, 900.0, 990.0):
            plon, plat = destination(lon, lat, np.arange(0, 360, 45), dist)
            assert not shapely.contains_xy(gaps, plon, plat).any()
        # 1.2 radii from a station, and farther than that from the others: a gap
        plon, plat = destination(lon, lat, np.arange(0, 360, 45), 1.2 * r)
        far = haversine_m(plon[:, None], plat[:, None], sl[None, :], sa[None, :]).min(axis=1) > r
        ok = far & shapely.contains_xy(area, plon, plat)
        assert ok.sum() >= 4
        assert shapely.contains_xy(gaps, plon[ok], plat[ok]).all()


def test_gap_area_is_area_minus_circles() -> None:
    area = box(113.60, 34.70, 113.70, 34.80)
    proj = LocalProjection.for_geometry(area)
    gaps = gap_polygons(area, [113.65, 113.80], [34.75, 34.75], 1000.0)  # 2nd is outside
    expected = proj.geometry_to_xy(area).area - math.pi * 1e6
    assert proj.geometry_to_xy(gaps).area == pytest.approx(expected, rel=1e-4)
    # No station near: the whole area is a gap.
    whole = gap_polygons(area, [120.0], [30.0], 1000.0)
    assert proj.geometry_to_xy(whole).area == pytest.approx(
        proj.geometry_to_xy(area).area, rel=1e-9
    )


def test_gaps_geojson_ranks_by_demand() -> None:
    area = box(113.60, 34.70, 113.70, 34.80)
    # A wall of stations along 113.65 splits the area into two gaps.
    lat = np.linspace(34.69, 34.81, 60)
    gaps = gap_polygons(area, np.full(60, 113.65), lat, 1000.0)
    d = Demand.from_arrays(
        [113.61, 113.69, 113.695, 113.65], [34.75, 34.75, 34.76, 34.75], [1, 5, 5, 100]
    )
    fc = gaps_geojson(gaps, d)
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == 2
    first, second = (f["properties"] for f in fc["features"])
    assert first["rank"] == 1 and first["demand"] == 10.0 and first["demand_points"] == 2
    assert second["demand"] == 1.0
    assert first["area_m2"] > 0
    json.dumps(fc, allow_nan=False)
    assert gaps_geojson(gaps)["features"][0]["properties"].keys() == {"rank", "area_m2"}


def test_gap_polygons_rejects_bad_area() -> None:
    with pytest.raises(InvalidInputError) as exc:
        gap_polygons(shapely.Point(113.6, 34.7), [113.6], [34.7], 1000.0)
    assert exc.value.field == "study_area"


def test_gaps_geojson_by_district() -> None:
    area = box(113.60, 34.70, 113.70, 34.80)
    districts = Districts.from_geometries(
        ["W", "E"], [box(113.60, 34.70, 113.65, 34.80), box(113.65, 34.70, 113.70, 34.80)]
    )
    gaps = gap_polygons(area, [113.625], [34.75], 1000.0)
    d = Demand.from_arrays([113.61, 113.69, 113.625], [34.71, 34.79, 34.75], [1.0, 2.0, 50.0])
    fc = gaps_geojson(gaps, d, districts=districts)
    props = [f["properties"] for f in fc["features"]]
    assert [(p["district"], p["demand"]) for p in props] == [("E", 2.0), ("W", 1.0)]
    proj = LocalProjection.for_geometry(area)
    total = sum(p["area_m2"] for p in props)
    assert total == pytest.approx(proj.geometry_to_xy(gaps).area, rel=1e-6)
