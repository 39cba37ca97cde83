"""The /nearest answer spliced from cached bytes (``query.nearest.nearest_json``) is, byte
for byte, the answer built from copied dicts and dumped whole, whatever the station, the
flags, the coordinate system, the buses and the edits; ``round_to`` is ``round``."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from yizhan.geo.crs import point_to_wgs84
from yizhan.query.features import (
    Flags,
    bus_hit_feature,
    geometry_in,
    round_to,
)
from yizhan.query.nearest import nearest_collection, nearest_json, station_filter
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import Registry, StationFilter, from_document
from yizhan.stations.reports import ReportStore
from yizhan.stations.search import BusHit, Hit, StationSearch

NOW = datetime(2026, 7, 15, 5, 0, tzinfo=UTC)  # 13:00 in Asia/Shanghai, a Wednesday
TODAY = date(2026, 7, 15)


def reference(
    search: StationSearch,
    settings_: Settings,
    lon: float,
    lat: float,
    k: int,
    flt: StationFilter,
    open_at: str | None,
    crs: str,
    out_crs: str,
    flags: Flags | None,
) -> bytes:
    """The answer as the query layer built it before the bytes path: a dict per Feature
    (properties copied, ``round``, then the extra members), one ``orjson.dumps``."""
    k_used = min(k, settings_.max_k)
    at = parse_time(open_at or "now", settings_.timezone)
    ts = at.timestamp()
    qlon, qlat = point_to_wgs84(lon, lat, crs)
    hits = search.nearest_at(qlon, qlat, k_used, flt, ts, only_open=open_at is not None)
    features: list[dict[str, Any]] = []
    for h in hits:
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            features.append(bus_hit_feature(search, h, out_crs, flags(bus) if flags else None))
            continue
        assert isinstance(h, Hit)
        f = search.registry.features[h.index]
        is_open, change = search.status(h.index, ts)
        extra: dict[str, Any] = {"open_now": is_open, "next_change": change}
        if flags is not None:
            extra.update(flags(f))
        props = dict(f["properties"])
        props["distance_m"] = round(h.distance_m, 2)
        props["bearing_deg"] = round(h.bearing_deg, 1)
        props.update(extra)
        features.append(
            {
                "type": "Feature",
                "id": f["id"],
                "geometry": geometry_in(f["geometry"], out_crs),
                "properties": props,
            }
        )
    return orjson.dumps(
        {
            "type": "FeatureCollection",
            "features": features,
            "numberReturned": len(features),
            "query": {
                "lon": lon,
                "lat": lat,
                "crs": crs,
                "lon_wgs84": round(qlon, 7),
                "lat_wgs84": round(qlat, 7),
                "k": k_used,
                "radius_m": None,
                "amenity": sorted(flt.amenities),
                "kind": sorted(flt.kinds) if flt.kinds else None,
                "category": sorted(flt.categories) if flt.categories else None,
                "status": sorted(flt.statuses) if flt.statuses else None,
                "stale": None if flt.freshness is None else flt.freshness == "stale",
                "open_at": at.isoformat(timespec="seconds") if open_at else None,
                "open_for_min": None,
                "time": at.isoformat(timespec="seconds"),
                "out_crs": out_crs,
            },
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def _masked(body: bytes) -> bytes:
    """The answer without its ``time`` (``now`` moves between two calls)."""
    return re.sub(rb'"time":"[^"]*"', b'"time":"-"', body)


@pytest.fixture
def registry() -> Registry:
    """Stations with and without hours, never and long ago verified, one storing a property
    the search computes (``open_now``), one with a unicode name, and two cooling buses."""
    feats = []
    for i in range(24):
        props: dict[str, Any] = {
            "amenities": ["toilet", "drinking_water"] if i % 3 else ["seating"],
            "last_verified_at": (TODAY - timedelta(days=40 * i)).isoformat(),
        }
        if i % 4 == 0:
            props["opening_hours"] = "Mo-Fr 09:00-18:00"
        elif i % 4 == 1:
            props["opening_hours"] = "24/7"
        if i == 5:
            props.pop("last_verified_at")
        if i == 7:
            props["open_now"] = "stored by someone"  # keeps its place: serialized in full
        if i == 9:
            props["name"] = 'Station "九" \\ 쉼터 \u2028'
        feats.append(
            make_feature(f"s-{i:02d}", 113.60 + 0.004 * i, 34.75 + 0.001 * (i % 5), **props)
        )
    feats.append(
        make_bus(
            "bus-1",
            [make_stop("b1", 113.615, 34.751, "Mo-Su 00:00-24:00")],
            amenities=["toilet"],
        )
    )
    feats.append(make_bus("bus-2", [make_stop("b2", 113.64, 34.752, "Mo-Su 10:00-12:00")]))
    return from_document(make_doc(feats), timezone="Asia/Shanghai", holiday_country="CN")


@pytest.fixture
def reports() -> ReportStore:
    """Two workers reported s-02 closed (it needs checking); one reported s-03."""
    store = ReportStore(None, clock=lambda: NOW)
    for client in ("10.0.0.1", "10.0.0.2"):
        store.add("s-02", "closed", client=client, now=NOW - timedelta(hours=1))
    store.add("s-03", "no_water", client="10.0.0.1", now=NOW - timedelta(hours=1))
    return store


@pytest.mark.parametrize("out_crs", ["wgs84", "gcj02"])
@pytest.mark.parametrize("open_at", [None, "2026-07-15T13:00", "2026-07-18T03:00"])
@pytest.mark.parametrize("with_flags", [True, False])
def test_bytes_answer_is_the_dict_answer(
    registry: Registry,
    reports: ReportStore,
    out_crs: str,
    open_at: str | None,
    with_flags: bool,
) -> None:
    settings_ = Settings(timezone="Asia/Shanghai")
    search = StationSearch(registry, timezone="Asia/Shanghai", holiday_country="CN")
    flags = Flags(TODAY, 180, reports) if with_flags else None
    for k in (1, 3, 8, 30):
        for flt in (
            StationFilter(),
            station_filter(("toilet",), None, None, ("operational",), None, None),
            StationFilter.make(stale=True, stale_before=TODAY - timedelta(days=180)),
        ):
            for lon, lat, crs in ((113.61, 34.751, "wgs84"), (113.66, 34.748, "gcj02")):
                got = nearest_json(
                    search, settings_, lon, lat, k, flt, None, open_at, None, crs, out_crs,
                    flags=flags,
                )  # fmt: skip
                want = reference(search, settings_, lon, lat, k, flt, open_at, crs, out_crs, flags)
                assert _masked(got) == _masked(want)
    # the cache is filled now: the same answers from it
    got = nearest_json(search, settings_, 113.61, 34.751, 30, StationFilter(), flags=flags)
    want = reference(
        search, settings_, 113.61, 34.751, 30, StationFilter(), None, "wgs84", "wgs84", flags
    )
    assert _masked(got) == _masked(want)


def test_flags_as_a_plain_callable_and_as_dict(registry: Registry, reports: ReportStore) -> None:
    """Any callable may give the flags (the pages pass one); the dict is the bytes parsed."""
    settings_ = Settings(timezone="Asia/Shanghai")
    search = StationSearch(registry, timezone="Asia/Shanghai", holiday_country="CN")
    flags = Flags(TODAY, 180, reports)

    def as_function(feature: dict[str, Any]) -> dict[str, Any]:
        return flags(feature)

    args = (search, settings_, 113.61, 34.751, 30, StationFilter())
    a = nearest_json(*args, flags=flags)
    assert _masked(nearest_json(*args, flags=as_function)) == _masked(a)
    as_dict = nearest_collection(*args, flags=flags)
    as_dict["query"]["time"] = "-"
    assert as_dict == orjson.loads(_masked(a))
    needs = {f["id"]: f["properties"]["needs_check_reasons"] for f in orjson.loads(a)["features"]}
    assert needs["s-02"] == ["closed"] and needs["s-03"] == [] and needs["s-01"] == []


def test_an_edit_replaces_the_cached_bytes_of_that_station(registry: Registry) -> None:
    settings_ = Settings(timezone="Asia/Shanghai")
    search = StationSearch(registry, timezone="Asia/Shanghai", holiday_country="CN")
    before = nearest_json(
        search, settings_, 113.60, 34.75, 3, StationFilter(), None, "2026-07-15T13:00"
    )
    i = registry.index_of["s-00"]
    edited = registry.features[i] | {
        "properties": {**registry.features[i]["properties"], "name": "Renamed", "phone": "110"}
    }
    new_reg = registry.with_station(i, edited)
    assert registry.json_cache[i] is not None and new_reg.json_cache[i] is None
    kept = registry.index_of["s-01"]
    assert new_reg.json_cache[kept] is registry.json_cache[kept]  # unchanged: shared
    new_search = StationSearch(new_reg, timezone="Asia/Shanghai", holiday_country="CN")
    after = nearest_json(
        new_search, settings_, 113.60, 34.75, 3, StationFilter(), None, "2026-07-15T13:00"
    )
    assert b"Renamed" in after and b"Renamed" not in before
    assert after == reference(
        new_search, settings_, 113.60, 34.75, 3, StationFilter(), "2026-07-15T13:00", "wgs84",
        "wgs84", None,
    )  # fmt: skip
    # the old snapshot still answers as it did
    assert before == nearest_json(
        search, settings_, 113.60, 34.75, 3, StationFilter(), None, "2026-07-15T13:00"
    )


@settings(max_examples=3000, deadline=None)
@given(
    value=st.one_of(
        st.floats(0, 2.1e7),
        st.floats(0, 360),
        st.integers(0, 2_100_000_000).map(lambda n: n / 100 + 0.005),  # ties and near-ties
        st.integers(0, 3_600).map(lambda n: n / 10 + 0.05),
        st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_round_to_is_round(value: float) -> None:
    for ndigits in (1, 2, 7):
        got, want = round_to(value, ndigits, 10.0**ndigits), round(value, ndigits)
        assert repr(got) == repr(want) or (math.isnan(got) and math.isnan(want))
