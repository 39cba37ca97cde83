"""Filtered search over a registry never misses a matching station farther out."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.conftest import make_doc, make_feature
from yizhan.errors import InvalidInputError
from yizhan.geo.distance import haversine_m
from yizhan.stations.registry import Registry, StationFilter, from_document
from yizhan.stations.search import StationSearch
from yizhan.stations.vocab import Amenity


def random_registry(n: int, seed: int) -> Registry:
    rng = np.random.default_rng(seed)
    amen = [a.value for a in Amenity][:6]
    feats = []
    for i in range(n):
        props: dict[str, Any] = {
            "amenities": sorted(
                set(rng.choice(amen, size=rng.integers(0, 4), replace=False).tolist())
            ),
            "status": str(
                rng.choice(["operational"] * 4 + ["temporarily_closed", "planned", "removed"])
            ),
        }
        if rng.random() < 0.7:
            props["category"] = str(rng.choice(["union_station", "bank_outlet", "cooling_center"]))
        # Several stations share coordinates so that ties occur.
        lon = float(np.round(rng.uniform(113.5, 113.8), 3))
        lat = float(np.round(rng.uniform(34.6, 34.9), 3))
        feats.append(make_feature(f"s{rng.integers(0, 10**6):06d}-{i}", lon, lat, **props))
    return from_document(make_doc(feats))


def brute_filtered(
    reg: Registry, flt: StationFilter, lon: float, lat: float
) -> tuple[list[int], np.ndarray]:
    mask = reg.mask(flt)
    d = haversine_m(lon, lat, reg.lon, reg.lat)
    cand = np.flatnonzero(mask)
    order = sorted(cand.tolist(), key=lambda i: (round(float(d[i]), 6), reg.ids[i]))
    return order, d


FILTERS = [
    {},
    {"amenities": ["drinking_water"]},
    {"amenities": ["drinking_water", "toilet", "seating"]},
    {"categories": ["bank_outlet"]},
    {"statuses": ["planned", "removed"]},
    {"statuses": None},
    {"amenities": ["heating"], "categories": ["cooling_center"]},
]


@pytest.mark.parametrize("flt_args", FILTERS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_filtered_nearest_equals_brute_force(flt_args: dict[str, Any], seed: int) -> None:
    reg = random_registry(400, seed)
    search = StationSearch(reg)
    flt = StationFilter.make(**flt_args)
    rng = np.random.default_rng(seed + 100)
    for _ in range(20):
        lon, lat = float(rng.uniform(113.4, 113.9)), float(rng.uniform(34.5, 35.0))
        k = int(rng.integers(1, 15))
        expected, d = brute_filtered(reg, flt, lon, lat)
        hits = search.nearest(lon, lat, k, flt)
        assert [h.index for h in hits] == expected[:k]
        for h in hits:
            assert h.distance_m == pytest.approx(float(d[h.index]), abs=1e-6)
            assert 0 <= h.bearing_deg < 360


def test_rare_amenity_found_beyond_the_unfiltered_neighbours() -> None:
    # 500 stations near the query without toilets, one with a toilet 50 km away.
    feats = [
        make_feature(f"n{i:03d}", 113.65 + (i % 25) * 0.001, 34.76 + (i // 25) * 0.001)
        for i in range(500)
    ]
    feats.append(make_feature("far", 114.2, 34.76, amenities=["toilet"]))
    search = StationSearch(from_document(make_doc(feats)))
    [hit] = search.nearest(113.65, 34.76, 3, StationFilter.make(amenities=["toilet"]))
    assert search.registry.ids[hit.index] == "far"
    assert hit.distance_m == pytest.approx(50_267, rel=1e-3)
    assert (
        search.nearest(
            113.65, 34.76, 3, StationFilter.make(amenities=["toilet"]), max_distance_m=10_000
        )
        == []
    )


def test_within_radius_and_default_status(small_doc: dict[str, Any]) -> None:
    search = StationSearch(from_document(small_doc))
    hits = search.within(113.63, 34.75, 1_000)
    ids = [search.registry.ids[h.index] for h in hits]
    # zz-03 is temporarily closed: excluded by default.
    assert ids == ["zz-02", "zz-04"]
    all_hits = search.within(113.63, 34.75, 1_000, StationFilter.make(statuses=None))
    assert [search.registry.ids[h.index] for h in all_hits] == ["zz-03", "zz-02", "zz-04"]


def test_nearest_many_maps_back_to_registry_positions(small_doc: dict[str, Any]) -> None:
    search = StationSearch(from_document(small_doc))
    flt = StationFilter.make(amenities=["toilet"])
    pos, dist = search.nearest_many([113.60, 113.69], [34.75, 34.75], 2, flt)
    ids = [[search.registry.ids[p] for p in row] for row in pos.tolist()]
    assert ids == [["zz-01", "zz-05"], ["zz-09", "zz-07"]]
    assert dist[0, 0] == pytest.approx(float(haversine_m(113.60, 34.75, 113.61, 34.75)), abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amenities": ["coffee"]}, "amenity"),
        ({"kinds": ["tent"]}, "kind"),
        ({"categories": ["shop"]}, "category"),
        ({"statuses": ["open"]}, "status"),
    ],
)
def test_filter_rejects_unknown_values_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        StationFilter.make(**kwargs)
    assert info.value.field == field
    assert "Expected one of" in info.value.message


# -- time-aware search ----------------------------------------------------------------------

HOURS_MIX = [
    "24/7",
    "08:00-20:00",
    "Mo-Fr 09:00-17:00; PH off",
    "Mo-Su 22:00-06:00",
    "Jul-Sep Mo-Su 10:00-16:00",
    "Jun-Sep 07:00-22:00; Oct-May 08:00-18:00",
    "Mo-Fr 08:30-12:00,13:30-17:30",
    None,
]


def hours_registry(n: int, seed: int) -> Registry:
    rng = np.random.default_rng(seed)
    feats = []
    for i in range(n):
        props: dict[str, Any] = {
            "amenities": ["toilet"] if rng.random() < 0.4 else [],
            "status": "operational" if rng.random() < 0.9 else "planned",
        }
        h = HOURS_MIX[int(rng.integers(0, len(HOURS_MIX)))]
        if h is not None:
            props["opening_hours"] = h
        lon = float(np.round(rng.uniform(113.5, 113.8), 3))
        lat = float(np.round(rng.uniform(34.6, 34.9), 3))
        feats.append(make_feature(f"h{i:04d}", lon, lat, **props))
    return from_document(make_doc(feats))


def brute_open(
    reg: Registry, flt: StationFilter, lon: float, lat: float, when: datetime, open_for_s: float
) -> list[int]:
    import opening_hours

    d = haversine_m(lon, lat, reg.lon, reg.lat)
    out = []
    for i in np.flatnonzero(reg.mask(flt)).tolist():
        expr = reg.features[i]["properties"].get("opening_hours")
        if not expr:
            continue
        oh = opening_hours.OpeningHours(expr, timezone=SH, country="CN")
        if not oh.is_open(when):
            continue
        nxt = oh.next_change(when)
        if nxt is not None and nxt.timestamp() < when.timestamp() + open_for_s:
            continue
        out.append(i)
    return sorted(out, key=lambda i: (round(float(d[i]), 6), reg.ids[i]))


SH = ZoneInfo("Asia/Shanghai")
TIMES = ["2026-07-15T13:00", "2026-07-15T03:00", "2026-10-01T10:00", "2026-12-05T19:30"]


@pytest.mark.parametrize("when", TIMES)
@pytest.mark.parametrize("seed", [4, 5])
def test_open_nearest_equals_brute_force(when: str, seed: int) -> None:
    reg = hours_registry(300, seed)
    search = StationSearch(reg)
    t = datetime.fromisoformat(when).replace(tzinfo=SH)
    rng = np.random.default_rng(seed)
    for q in range(12):
        flt = StationFilter.make(amenities=["toilet"] if q % 3 == 0 else None)
        open_for = [0.0, 900.0, 3 * 3600.0][q % 3]
        lon, lat = float(rng.uniform(113.4, 113.9)), float(rng.uniform(34.5, 35.0))
        k = int(rng.integers(1, 12))
        radius = None if q % 4 else 15_000.0
        expected = brute_open(reg, flt, lon, lat, t, open_for)
        if radius is not None:
            d = haversine_m(lon, lat, reg.lon, reg.lat)
            expected = [i for i in expected if d[i] <= radius]
        hits = search.nearest_open(lon, lat, k, flt, t.timestamp(), open_for, radius)
        assert [h.index for h in hits] == expected[:k], (when, q)


def test_rare_open_station_found_far_out_by_the_evaluate_all_path() -> None:
    # 3,000 closed stations near the query; the only open one is 50 km away.
    feats = [
        make_feature(f"n{i:04d}", 113.65 + (i % 60) * 0.001, 34.76 + (i // 60) * 0.001,
                     opening_hours="Mo-Fr 09:00-17:00")
        for i in range(3000)
    ]  # fmt: skip
    feats.append(make_feature("far", 114.2, 34.76, opening_hours="24/7"))
    search = StationSearch(from_document(make_doc(feats)))
    night = datetime(2026, 7, 15, 3, 0, tzinfo=SH).timestamp()
    [hit] = search.nearest_open(113.65, 34.76, 3, StationFilter(), night)
    assert search.registry.ids[hit.index] == "far"
    assert hit.distance_m == pytest.approx(50_267, rel=1e-3)
    # Again, after the open share was learnt to be tiny.
    assert [h.index for h in search.nearest_open(113.65, 34.76, 3, StationFilter(), night)] == [
        hit.index
    ]
