"""Cooling buses: the model and its validation, where a bus stands through a day,
placements that override the schedule and expire, persistence, and the HTTP API with
operator tokens."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from tests.helpers import SetClock
from yizhan.api import create_app
from yizhan.errors import ConflictError, InvalidInputError, NotFoundError
from yizhan.settings import Settings
from yizhan.stations.buses import BusFleet, stop_overlaps
from yizhan.stations.placements import PlacementStore
from yizhan.stations.registry import StationFilter, from_document, load_registry, save_registry
from yizhan.stations.search import BusHit, StationSearch
from yizhan.stations.validate import validate_document

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# -- model and validation -----------------------------------------------------------------------


def test_registry_with_stations_and_buses(bus_doc: dict[str, Any], tmp_path: Path) -> None:
    reg = from_document(bus_doc)
    assert len(reg) == 10 and [b["id"] for b in reg.buses] == ["bus-1", "bus-2"]
    # Station columns hold stations only: no bus stop is in any index.
    assert reg.lon.shape == (10,) and "bus-1" not in reg.index_of
    path = tmp_path / "r.geojson"
    save_registry(reg, path)
    again = load_registry(path)
    assert again.buses == reg.buses and again.features == reg.features


def bad_bus(change: Any) -> dict[str, Any]:
    bus = make_bus(
        "bus-x",
        [make_stop("s1", 113.62, 34.75, "Mo-Su 10:00-12:00"), make_stop("s2", 113.67, 34.75, "Mo-Su 13:00-16:00")],
    )  # fmt: skip
    change(bus)
    return bus


def _set(path: str, value: Any) -> Any:
    def change(bus: dict[str, Any]) -> None:
        obj = bus
        *head, last = path.split(".")
        for p in head:
            obj = obj[int(p)] if p.isdigit() else obj[p]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del obj[key]
        else:
            obj[key] = value

    return change


DELETE = object()

BAD_BUSES = [
    # (change, field prefix, words in the message)
    (
        _set("geometry", {"type": "Point", "coordinates": [113.6, 34.7]}),
        "geometry",
        "must be the MultiPoint of its stops, got 'Point'",
    ),
    (
        _set("geometry.coordinates", [[113.62, 34.75]]),
        "geometry.coordinates",
        "Expected the MultiPoint of the bus's 2 stop locations in order, got 1 positions",
    ),
    (
        _set("geometry.coordinates", [[113.67, 34.75], [113.62, 34.75]]),
        "geometry.coordinates.0",
        "Expected stop 's1''s location [113.62, 34.75]",
    ),
    (_set("properties.operator", DELETE), "properties.operator", "Field required"),
    (_set("properties.stops", []), "properties.stops", "at least 1 item"),
    (
        _set("properties.stops.1.stop_id", "s1"),
        "properties.stops",
        "stop_id 's1' is used by stops 0 and 1",
    ),
    (
        _set("properties.stops.0.location", [34.75, 113.62]),
        "properties.stops.0.location",
        "lat out of range",
    ),
    (
        _set("properties.stops.0.opening_hours", "sometimes"),
        "properties.stops.0.opening_hours",
        "unparseable opening_hours",
    ),
    (
        _set("properties.stops.0.valid_from", "2026-09-01"),
        "properties.stops.0",
        None,  # alone it is fine; with valid_to before it, see below
    ),
    (
        _set(
            "properties.stops.0",
            {
                **make_stop("s1", 113.62, 34.75, "10:00-12:00"),
                "valid_from": "2026-09-01",
                "valid_to": "2026-07-01",
            },
        ),
        "properties.stops.0",
        "valid_to 2026-07-01 is before valid_from 2026-09-01",
    ),
    (
        _set("properties.opening_hours", "24/7"),
        "properties",
        "a cooling bus has no opening_hours of its own",
    ),
    (_set("properties.timezone", "Beijing"), "properties.timezone", "IANA time zone"),
    (
        _set("properties.stops.1.opening_hours", "Mo-Su 11:30-14:00"),
        "properties.stops",
        "stops 's1' (Stop s1) and 's2' (Stop s2) overlap: the bus cannot stand at both "
        "from 2026-01-01T11:30+08:00 to 2026-01-01T12:00+08:00",
    ),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_BUSES)
def test_bad_bus_reported_with_field_and_reason(
    small_doc: dict[str, Any], change: Any, field: str, words: str | None
) -> None:
    doc = copy.deepcopy(small_doc)
    doc["features"].insert(3, bad_bus(change))
    report = validate_document(doc)
    if words is None:
        assert report.ok
        return
    assert not report.ok, report.summary()
    assert {(p.index, p.id) for p in report.errors} == {(3, "bus-x")}
    problem = report.errors[0]
    assert problem.field is not None and problem.field.startswith(field), problem.field
    assert words in problem.message, problem.message


def test_station_errors_keep_their_index_next_to_buses(bus_doc: dict[str, Any]) -> None:
    bus_doc["features"].insert(0, bus_doc["features"].pop())  # a bus first
    bus_doc["features"][5]["properties"]["amenities"] = ["spa"]
    [problem] = validate_document(bus_doc).errors
    assert problem.index == 5 and problem.field == "properties.amenities.0"


OVERLAP_CASES = [
    # (hours a, hours b, stop extras a, stop extras b, overlapping?)
    ("Mo-Fr 10:00-12:00", "Sa,Su 10:00-12:00", {}, {}, False),
    ("Jul-Aug 10:00-16:00", "Sep 10:00-16:00", {}, {}, False),
    ("10:00-16:00", "15:00-18:00", {}, {}, True),
    ("10:00-16:00", "10:00-16:00", {"valid_to": "2026-07-31"}, {"valid_from": "2026-08-01"}, False),
    ("10:00-16:00", "10:00-16:00", {"valid_to": "2026-08-01"}, {"valid_from": "2026-08-01"}, True),
    ("Mo-Su 22:00-02:00", "Mo-Su 01:00-05:00", {}, {}, True),
    ("2030 Jul 01-Jul 10 10:00-12:00", "2030 Jul 05 11:00-13:00", {}, {}, True),
    ("Mo-Fr 09:00-17:00; PH off", "PH 10:00-14:00", {}, {}, False),
    ("Mo-Fr 09:00-17:00", "PH 10:00-14:00", {}, {}, True),
]


@pytest.mark.parametrize(("a", "b", "xa", "xb", "overlap"), OVERLAP_CASES)
def test_stop_overlaps(
    a: str, b: str, xa: dict[str, Any], xb: dict[str, Any], overlap: bool
) -> None:
    stops = [make_stop("a", 113.6, 34.7, a, **xa), make_stop("b", 113.7, 34.7, b, **xb)]
    found = stop_overlaps(stops, "Asia/Shanghai", "CN", today=date(2026, 3, 1))
    assert bool(found) is overlap
    if found:
        assert found[0].a[0] == "a" and found[0].b[0] == "b" and found[0].start < found[0].end


# -- where a bus stands ------------------------------------------------------------------------

# bus-1: s1 10:00-12:00, s2 13:00-16:00 every day; bus-2: t1 Mo-Fr 09:00-17:00.
DAY = [
    ("2026-07-15T09:59", None, None),
    ("2026-07-15T10:00", "s1", "2026-07-15T12:00+08:00"),
    ("2026-07-15T11:59", "s1", "2026-07-15T12:00+08:00"),
    ("2026-07-15T12:00", None, None),
    ("2026-07-15T12:30", None, None),
    ("2026-07-15T13:00", "s2", "2026-07-15T16:00+08:00"),
    ("2026-07-15T15:59", "s2", "2026-07-15T16:00+08:00"),
    ("2026-07-15T16:00", None, None),
    ("2026-07-15T23:00", None, None),
]


@pytest.fixture
def fleet(bus_doc: dict[str, Any]) -> BusFleet:
    return BusFleet(
        from_document(bus_doc).buses, PlacementStore(clock=SetClock(at("2026-07-15T08:00")))
    )


@pytest.mark.parametrize(("when", "stop", "leaves"), DAY)
def test_bus_at_each_stop_through_a_day(
    fleet: BusFleet, when: str, stop: str | None, leaves: str | None
) -> None:
    pos, _ = fleet.position(0, at(when).timestamp())
    if stop is None:
        assert pos is None
    else:
        assert pos is not None and pos.stop_id == stop
        assert pos.properties()["leaves_at"] == leaves


def test_weekday_bus_not_in_service_at_weekends(fleet: BusFleet) -> None:
    assert fleet.position(1, at("2026-07-18T10:00").timestamp())[0] is None  # Saturday
    pos, _ = fleet.position(1, at("2026-07-17T10:00").timestamp())
    assert pos is not None and pos.stop_id == "t1"


def test_stop_valid_from_and_to() -> None:
    bus = make_bus(
        "b",
        [make_stop("x", 113.6, 34.7, "10:00-16:00", valid_from="2026-07-01", valid_to="2026-07-31")],
    )  # fmt: skip
    f = BusFleet([bus])
    assert f.position(0, at("2026-06-30T12:00").timestamp())[0] is None
    assert f.position(0, at("2026-07-01T12:00").timestamp())[0] is not None
    assert f.position(0, at("2026-07-31T12:00").timestamp())[0] is not None
    assert f.position(0, at("2026-08-01T12:00").timestamp())[0] is None


def test_timeline_of_a_day(fleet: BusFleet) -> None:
    segs = [s.as_dict() for s in fleet.timeline(0, date(2026, 7, 15))]
    assert [(s["from"][11:16], s["until"][11:16], s["stop_id"]) for s in segs] == [
        ("10:00", "12:00", "s1"),
        ("13:00", "16:00", "s2"),
    ]
    assert segs[0]["source"] == "schedule" and segs[0]["location"] == [113.621, 34.751]


# -- placements ------------------------------------------------------------------------------


def test_placement_overrides_the_schedule_and_expires(fleet: BusFleet) -> None:
    clock = fleet.placements.clock
    assert isinstance(clock, SetClock)
    p = fleet.place(
        "bus-1", [113.70, 34.80], at("2026-07-15T11:00"), at("2026-07-15T14:00"), "op-a", "gate 2"
    )
    # Before the window: at s1, but it leaves for the placement at 11:00.
    pos, _ = fleet.position(0, at("2026-07-15T10:30").timestamp())
    assert pos is not None and pos.stop_id == "s1"
    assert pos.properties()["leaves_at"] == "2026-07-15T11:00+08:00"
    # In the window: at the placement (also through the noon gap and into s2's hours).
    for when in ("2026-07-15T11:00", "2026-07-15T12:30", "2026-07-15T13:30"):
        pos, _ = fleet.position(0, at(when).timestamp())
        assert pos is not None and pos.placement_id == p.placement_id
        assert (pos.lon, pos.lat) == (113.70, 34.80)
        assert pos.properties()["leaves_at"] == "2026-07-15T14:00+08:00"
        assert pos.properties()["note"] == "gate 2"
    # After it: back on schedule.
    pos, _ = fleet.position(0, at("2026-07-15T14:00").timestamp())
    assert pos is not None and pos.stop_id == "s2"
    # The timeline shows the cut.
    segs = [
        (s.start.strftime("%H:%M"), s.end.strftime("%H:%M"), s.stop_id or s.placement_id)
        for s in fleet.timeline(0, date(2026, 7, 15))
    ]
    assert segs == [
        ("10:00", "11:00", "s1"),
        ("11:00", "14:00", p.placement_id),
        ("14:00", "16:00", "s2"),
    ]
    # Expired placements disappear by themselves.
    clock.now = at("2026-07-15T15:00")
    assert fleet.placements.for_bus("bus-1") == []


def test_positions_cache_follows_placements(fleet: BusFleet) -> None:
    ts = at("2026-07-15T10:30").timestamp()
    assert [p.stop_id for p in fleet.positions(ts)] == ["s1", "t1"]
    fleet.place("bus-1", [113.70, 34.80], at("2026-07-15T10:00"), at("2026-07-15T11:00"), "op-a")
    assert [p.placement_id is not None for p in fleet.positions(ts)] == [True, False]


PLACEMENT_ERRORS = [
    # (location, from, until, error, field, words)
    ([113.7, 34.8], "2026-07-15T12:00", "2026-07-15T12:00", InvalidInputError, "until", "Expected a time after from"),
    ([113.7, 34.8], "2026-07-15T12:00", "2026-07-15T11:00", InvalidInputError, "until", "Expected a time after from"),
    ([113.7, 34.8], "2026-07-14T10:00", "2026-07-15T07:00", InvalidInputError, "until", "window is in the past"),
    ([113.7, 34.8], "2026-07-15T10:00", "2026-07-22T10:01", InvalidInputError, "until", "at most 7 days"),
    ([34.8, 113.7], "2026-07-15T10:00", "2026-07-15T11:00", InvalidInputError, "location", "lat out of range"),
    ([113.7], "2026-07-15T10:00", "2026-07-15T11:00", InvalidInputError, "location", "Expected a position [lon, lat]"),
    ([116.4, 39.9], "2026-07-15T10:00", "2026-07-15T11:00", InvalidInputError, "location", "within 200 km"),
]  # fmt: skip


@pytest.mark.parametrize(("loc", "start", "until", "error", "field", "words"), PLACEMENT_ERRORS)
def test_bad_placements_are_refused_naming_the_field(
    fleet: BusFleet, loc: Any, start: str, until: str, error: type, field: str, words: str
) -> None:
    with pytest.raises(error) as info:
        fleet.place("bus-1", loc, at(start), at(until), "op-a")
    assert info.value.field == field and words in info.value.message


def test_overlapping_placement_conflicts_and_unknown_bus(fleet: BusFleet) -> None:
    first = fleet.place(
        "bus-1", [113.7, 34.8], at("2026-07-15T10:00"), at("2026-07-15T12:00"), "op-a"
    )
    with pytest.raises(ConflictError, match=first.placement_id):
        fleet.place("bus-1", [113.7, 34.8], at("2026-07-15T11:59"), at("2026-07-15T13:00"), "op-a")
    fleet.place("bus-1", [113.7, 34.8], at("2026-07-15T12:00"), at("2026-07-15T13:00"), "op-a")
    with pytest.raises(NotFoundError, match="no cooling bus with id 'bus-9'"):
        fleet.place("bus-9", [113.7, 34.8], at("2026-07-15T10:00"), at("2026-07-15T12:00"), "op-a")
    fleet.placements.remove("bus-1", first.placement_id)
    with pytest.raises(NotFoundError):
        fleet.placements.remove("bus-1", first.placement_id)


def test_placements_persist_atomically_and_prune_on_load(tmp_path: Path) -> None:
    path = tmp_path / "r.geojson.placements.json"
    clock = SetClock(at("2026-07-15T08:00"))
    store = PlacementStore(path, clock=clock)
    a = store.add("bus-1", 113.7, 34.8, at("2026-07-15T10:00"), at("2026-07-15T12:00"), "op-a")
    b = store.add("bus-1", 113.7, 34.8, at("2026-07-16T10:00"), at("2026-07-16T12:00"), "op-a", "n")
    doc = json.loads(path.read_text())
    assert doc["type"] == "yizhan-placements" and len(doc["placements"]) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    again = PlacementStore(path, clock=clock)
    assert [p.as_dict() for p in again.all()] == [a.as_dict(), b.as_dict()]
    # After the first has ended, a restart drops it from the file.
    clock.now = at("2026-07-15T13:00")
    third = PlacementStore(path, clock=clock)
    assert [p.placement_id for p in third.all()] == [b.placement_id]
    assert [p["placement_id"] for p in json.loads(path.read_text())["placements"]] == [
        b.placement_id
    ]
    # A read-only store (the CLI) never writes.
    clock.now = at("2026-07-17T00:00")
    before = path.read_text()
    assert PlacementStore(path, clock=clock, read_only=True).all() == []
    assert path.read_text() == before


def test_corrupt_placements_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"placements": [{"bus_id": "x"}]}')
    with pytest.raises(InvalidInputError, match="placements\\[0\\]"):
        PlacementStore(path)


# -- search with buses ---------------------------------------------------------------------------


def test_buses_merge_with_stations_by_distance(bus_doc: dict[str, Any]) -> None:
    search = StationSearch(from_document(bus_doc))
    ts = at("2026-07-15T13:30").timestamp()  # bus-1 at s2 (113.671), bus-2 at t1 (113.70)
    hits = search.nearest_at(113.671, 34.751, 4, StationFilter(), ts, only_open=False)
    ids = [
        h.position.bus_id if isinstance(h, BusHit) else search.registry.ids[h.index] for h in hits
    ]
    assert ids == ["bus-1", "zz-07", "zz-08", "zz-06"]
    # A filter on amenities applies to buses too; kind=station leaves them out.
    flt = StationFilter.make(amenities=["air_conditioning"])
    [only] = search.nearest_at(113.671, 34.751, 4, flt, ts, only_open=False)
    assert isinstance(only, BusHit) and only.position.bus_id == "bus-1"
    flt = StationFilter.make(kinds=["station"])
    assert not any(isinstance(h, BusHit) for h in search.nearest_at(113.671, 34.751, 4, flt, ts))
    # open_for: bus-1 leaves at 16:00, bus-2 at 17:00.
    flt = StationFilter.make(kinds=["cooling_bus"])
    hits = search.nearest_at(113.671, 34.751, 4, flt, ts, open_for_s=3 * 3600)
    assert [h.position.bus_id for h in hits if isinstance(h, BusHit)] == ["bus-2"]


# -- HTTP API -----------------------------------------------------------------------------------

TOKENS = {"tok-a": "op-a", "tok-b": "op-b"}


@pytest.fixture
def api(bus_doc: dict[str, Any], tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(operator_tokens=TOKENS, admin_tokens=["tok-admin"], state_dir=tmp_path)
    with TestClient(create_app(settings, registry=from_document(bus_doc))) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def future(hours: float) -> str:
    """An ISO time *hours* from now (with offset)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def test_get_buses_and_one_bus(api: TestClient) -> None:
    fc = api.get("/buses").json()
    assert [f["id"] for f in fc["features"]] == ["bus-1", "bus-2"]
    f = fc["features"][0]
    assert f["geometry"]["type"] == "MultiPoint" and len(f["properties"]["stops"]) == 2
    assert "current" in f["properties"] and f["properties"]["placements"] == []
    one = api.get("/buses/bus-2").json()
    assert one["id"] == "bus-2" and one["properties"]["operator"] == "op-b"
    r = api.get("/buses/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    gcj = api.get("/buses/bus-2", params={"out_crs": "gcj02"}).json()
    assert gcj["geometry"]["coordinates"][0] != one["geometry"]["coordinates"][0]


def test_timeline_endpoint(api: TestClient) -> None:
    r = api.get("/buses/bus-1/timeline", params={"date": "2026-07-15"})
    assert r.status_code == 200
    body = r.json()
    assert body["date"] == "2026-07-15" and body["timezone"] == "Asia/Shanghai"
    assert [s["stop_id"] for s in body["segments"]] == ["s1", "s2"]
    r = api.get("/buses/bus-1/timeline", params={"date": "2026-02-30"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "date"]
    assert api.get("/buses/bus-1/timeline").status_code == 200  # today


AUTH_CASES = [
    # (headers, bus, status, words)
    ({}, "bus-1", 401, "missing bearer token"),
    (auth("wrong"), "bus-1", 401, "invalid bearer token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "bus-1", 401, "missing bearer token"),
    (auth("tok-b"), "bus-1", 403, "operator 'op-b' may not move bus 'bus-1': it is operated by 'op-a'"),
    (auth("tok-a"), "bus-9", 404, "no cooling bus with id 'bus-9'"),
    (auth("tok-a"), "bus-1", 201, None),
    (auth("tok-admin"), "bus-2", 201, None),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "bus", "status", "words"), AUTH_CASES)
def test_placement_tokens(
    api: TestClient, headers: dict[str, str], bus: str, status: int, words: str | None
) -> None:
    body = {"location": [113.70, 34.80], "from": future(1), "until": future(3)}
    r = api.post(f"/buses/{bus}/placements", json=body, headers=headers)
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["WWW-Authenticate"] == "Bearer"
    if words:
        assert words in r.json()["detail"]


BAD_BODIES = [
    ({"location": [113.7, 134.8]}, "location", "lat out of range"),
    ({"location": "113.7,34.8"}, "location", "list"),
    ({"until": "2020-01-01T00:00"}, "until", None),
    ({"from": "soon"}, "from", "datetime"),
    ({"note": "x" * 501}, "note", "500"),
    ({"colour": "red"}, "colour", "Extra inputs"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_BODIES)
def test_bad_placement_bodies_get_422_naming_the_member(
    api: TestClient, change: dict[str, Any], field: str, words: str | None
) -> None:
    body = {"location": [113.70, 34.80], "from": future(1), "until": future(3), **change}
    r = api.post("/buses/bus-1/placements", json=body, headers=auth("tok-a"))
    assert r.status_code == 422, r.text
    [err] = r.json()["detail"]
    assert err["loc"][0] == "body" and err["loc"][-1] == field, err
    if words:
        assert words in err["msg"]


@pytest.mark.parametrize(
    ("start", "until", "words"),
    [
        (3, 1, "Expected a time after from"),
        (-5, -1, "window is in the past"),
        (1, 1 + 24 * 8, "at most 7 days"),
    ],
)
def test_bad_placement_windows(api: TestClient, start: float, until: float, words: str) -> None:
    body = {"location": [113.70, 34.80], "from": future(start), "until": future(until)}
    r = api.post("/buses/bus-1/placements", json=body, headers=auth("tok-a"))
    assert r.status_code == 422
    [err] = r.json()["detail"]
    assert err["loc"] == ["body", "until"] and words in err["msg"]


def test_placement_moves_the_bus_in_nearest_then_back_on_schedule(
    api: TestClient, tmp_path: Path
) -> None:
    # Place bus-2 (normally at t1 on weekdays) far east for a window starting now.
    start, until = datetime.now(SH), datetime.now(SH) + timedelta(hours=2)
    body = {
        "location": [113.90, 34.76],
        "from": start.replace(tzinfo=None).isoformat(timespec="minutes"),  # naive: registry zone
        "until": until.isoformat(timespec="minutes"),
        "note": "moved to the logistics park",
    }
    r = api.post("/buses/bus-2/placements", json=body, headers=auth("tok-b"))
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["operator"] == "op-b" and placed["location"] == [113.90, 34.76]
    assert placed["from"].endswith("+08:00")
    # Persisted next to the (in-memory) registry, in state_dir.
    stored = json.loads((tmp_path / "registry.placements.json").read_text())
    assert [p["placement_id"] for p in stored["placements"]] == [placed["placement_id"]]
    # In the window /nearest finds it there, with placement_id and when it leaves.
    mid = (start + timedelta(minutes=30)).replace(tzinfo=None).isoformat(timespec="minutes")
    params = {"lon": 113.90, "lat": 34.76, "k": 1, "kind": "cooling_bus", "open_at": mid}
    [f] = api.get("/nearest", params=params).json()["features"]
    assert f["id"] == "bus-2" and f["geometry"]["coordinates"] == [113.90, 34.76]
    assert f["properties"]["placement_id"] == placed["placement_id"]
    assert f["properties"]["distance_m"] == 0 and f["properties"]["open_now"] is True
    assert f["properties"]["leaves_at"] == datetime.fromisoformat(placed["until"]).astimezone(
        SH
    ).isoformat(timespec="minutes")
    # After the window it is back on its schedule (or not in service), never at the placement.
    after = (until + timedelta(minutes=1)).replace(tzinfo=None).isoformat(timespec="minutes")
    params["open_at"] = after
    for f in api.get("/nearest", params=params).json()["features"]:
        assert f["properties"].get("placement_id") is None
    # GET /buses/bus-2 shows the placement; the operator can cancel it.
    assert (
        api.get("/buses/bus-2").json()["properties"]["placements"][0]["placement_id"]
        == placed["placement_id"]
    )
    url = f"/buses/bus-2/placements/{placed['placement_id']}"
    assert api.delete(url, headers=auth("tok-a")).status_code == 403
    assert api.delete(url, headers=auth("tok-b")).status_code == 200
    assert api.delete(url, headers=auth("tok-b")).status_code == 404
    assert api.get("/buses/bus-2/placements").json() == {"placements": []}


def test_overlapping_placement_is_409(api: TestClient) -> None:
    body = {"location": [113.70, 34.80], "from": future(1), "until": future(3)}
    assert api.post("/buses/bus-1/placements", json=body, headers=auth("tok-a")).status_code == 201
    body = {"location": [113.71, 34.80], "from": future(2), "until": future(4)}
    r = api.post("/buses/bus-1/placements", json=body, headers=auth("tok-a"))
    assert r.status_code == 409 and "already placed" in r.json()["detail"]


def test_placements_survive_a_restart(
    bus_doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YIZHAN_STATE_DIR")  # the default: next to the registry
    reg_path = tmp_path / "reg.geojson"
    reg_path.write_text(json.dumps(bus_doc, ensure_ascii=False), encoding="utf-8")
    settings = Settings(registry=reg_path, operator_tokens=TOKENS)
    body = {"location": [113.70, 34.80], "from": future(1), "until": future(3)}
    with TestClient(create_app(settings)) as c:
        pid = c.post("/buses/bus-1/placements", json=body, headers=auth("tok-a")).json()[
            "placement_id"
        ]
    assert (tmp_path / "reg.geojson.placements.json").exists()
    with TestClient(create_app(settings)) as c:
        assert [
            p["placement_id"] for p in c.get("/buses/bus-1/placements").json()["placements"]
        ] == [pid]


def test_station_route_points_to_buses(api: TestClient) -> None:
    r = api.get("/stations/bus-1")
    assert r.status_code == 404 and "/buses/bus-1" in r.json()["detail"]


def test_openapi_lists_the_bus_routes(api: TestClient) -> None:
    paths = set(api.get("/openapi.json").json()["paths"])
    assert {
        "/buses",
        "/buses/{bus_id}",
        "/buses/{bus_id}/timeline",
        "/buses/{bus_id}/placements",
        "/buses/{bus_id}/placements/{placement_id}",
        "/alerts",
    } <= paths


# -- the bundled registry and the sample buses ---------------------------------------------------


def bundled_with_sample_buses() -> dict[str, Any]:
    doc = json.loads((ROOT / "yizhan" / "data" / "zhengzhou.geojson").read_text(encoding="utf-8"))
    buses = json.loads(
        (ROOT / "yizhan" / "data" / "sample-buses.geojson").read_text(encoding="utf-8")
    )
    have = {f["id"] for f in doc["features"]}
    doc["features"] += [b for b in buses["features"] if b["id"] not in have]
    return doc


def test_sample_buses_are_valid_and_marked_as_samples() -> None:
    doc = json.loads(
        (ROOT / "yizhan" / "data" / "sample-buses.geojson").read_text(encoding="utf-8")
    )
    assert validate_document(doc).ok
    assert len(doc["features"]) == 3
    for f in doc["features"]:
        assert f["properties"]["kind"] == "cooling_bus"
        assert "illustrative sample, not a real service" in f["properties"]["source"]


def test_done_when_nearest_open_at_over_the_bundled_registry() -> None:
    """``/nearest?open_at=2026-07-15T13:00`` returns only stations and buses open then."""
    reg = from_document(bundled_with_sample_buses())
    with TestClient(create_app(Settings(), registry=reg)) as c:
        r = c.get(
            "/nearest", params={"lon": 113.65, "lat": 34.75, "k": 30, "open_at": "2026-07-15T13:00"}
        )
        feats = r.json()["features"]
        assert len(feats) == 30
        for f in feats:
            p = f["properties"]
            assert p["open_now"] is True
            assert p["next_change"] is None or p["next_change"] > "2026-07-15T13:00"
            if p["kind"] == "station":
                assert p.get("opening_hours")
        r = c.get(
            "/nearest",
            params={
                "lon": 113.65,
                "lat": 34.75,
                "k": 5,
                "kind": "cooling_bus",
                "open_at": "2026-07-15T13:00",
            },
        )
        buses = r.json()["features"]
        assert [f["id"] for f in buses] == ["bus-sample-3", "bus-sample-1", "bus-sample-2"]
        assert buses[0]["properties"]["stop_id"] == "s2"
        assert buses[0]["properties"]["leaves_at"] == "2026-07-15T13:30+08:00"
        # At night only 24/7 stations are open.
        r = c.get(
            "/nearest", params={"lon": 113.65, "lat": 34.75, "k": 5, "open_at": "2026-07-15T03:00"}
        )
        assert all(f["properties"]["opening_hours"] == "24/7" for f in r.json()["features"])


def test_bundled_registry_loads_without_buses_too() -> None:
    reg = load_registry(ROOT / "yizhan" / "data" / "zhengzhou.geojson")
    assert len(reg) > 0 and all(f["properties"]["kind"] == "station" for f in reg.features)


def test_station_features_unchanged_by_bus_support(small_doc: dict[str, Any]) -> None:
    doc = make_doc([make_feature("a", 113.6, 34.7)])
    assert from_document(doc).buses == [] and validate_document(small_doc).ok
