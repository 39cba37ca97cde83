"""Check-ins: the rules against abuse (repeated tap, far position, rate limit), durability by
group commit, the daily salts (never beside the data), aggregation of finished days, and the
reports' salt fix."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from tests.helpers import SetClock
from yizhan.api import create_app
from yizhan.errors import InvalidInputError, RateLimitedError
from yizhan.settings import Settings
from yizhan.stations.checkins import CheckinStore
from yizhan.stations.registry import from_document
from yizhan.stations.reports import ReportStore
from yizhan.stations.salts import DailySalts, check_salt_file
from yizhan.stations.usage_files import SOURCE_CHECKINS, read_month

T0 = datetime(2026, 7, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
H = 3600


@pytest.fixture
def clock() -> SetClock:
    return SetClock(T0)


@pytest.fixture
def salts(clock: SetClock) -> DailySalts:
    return DailySalts(clock=clock)


def store_at(directory: Path | None, clock: SetClock, salts: DailySalts, **kw: Any) -> CheckinStore:
    return CheckinStore(directory, salts=salts, clock=clock, **kw)


# -- the rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [None, "dir"])
def test_a_repeated_tap_is_refused_for_four_hours(
    tmp_path: Path, clock: SetClock, salts: DailySalts, directory: str | None
) -> None:
    store = store_at(tmp_path / "u" if directory else None, clock, salts)
    first = store.add("s1", client="10.0.0.1", trade="courier")
    assert first.station_id == "s1" and first.trade == "courier" and first.at == T0
    clock.now = T0 + timedelta(minutes=30)
    with pytest.raises(RateLimitedError, match="one check-in per station every 4 hours") as info:
        store.add("s1", client="10.0.0.1")
    assert info.value.retry_after_s == 4 * H - 30 * 60
    store.add("s2", client="10.0.0.1")  # another station
    store.add("s1", client="10.0.0.2")  # another client
    clock.now = T0 + timedelta(hours=4)
    store.add("s1", client="10.0.0.1")  # four hours later
    store.close()


def test_the_rate_limit_counts_every_station(clock: SetClock, salts: DailySalts) -> None:
    store = store_at(None, clock, salts, rate_per_hour=3)
    for i in range(3):
        clock.now = T0 + timedelta(minutes=10 * i)
        store.add(f"s{i}", client="c")
    with pytest.raises(RateLimitedError, match="at most 3 an hour") as info:
        store.add("s9", client="c")
    assert info.value.retry_after_s == 40 * 60  # the first ages out at T0 + 1 h
    clock.now = T0 + timedelta(hours=1, seconds=1)
    store.add("s9", client="c")


def test_a_tap_just_after_midnight_is_still_a_repeat(clock: SetClock, salts: DailySalts) -> None:
    clock.now = datetime(2026, 7, 15, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    store = store_at(None, clock, salts)
    store.add("s1", client="c")
    clock.now = datetime(2026, 7, 15, 16, 45, tzinfo=UTC)  # 00:45 the next day: a new salt
    assert salts.hash("c", "checkins", clock.now) != salts.hash(
        "c", "checkins", clock.now - timedelta(hours=2)
    )
    with pytest.raises(RateLimitedError):
        store.add("s1", client="c")


def test_bad_input_names_the_field(clock: SetClock, salts: DailySalts) -> None:
    store = store_at(None, clock, salts)
    with pytest.raises(InvalidInputError, match="trade: Expected one of sanitation"):
        store.add("s1", client="c", trade="banker")
    with pytest.raises(InvalidInputError, match="client"):
        store.add("s1", client="")


# -- files, durability, group commit ----------------------------------------------------------------


def test_a_check_in_is_on_disk_when_acknowledged_and_keeps_no_address(
    tmp_path: Path, clock: SetClock, salts: DailySalts
) -> None:
    d = tmp_path / "u"
    store = store_at(d, clock, salts)
    c = store.add("s1", client="203.0.113.9", trade="builder", located=True)
    path = d / "checkins-2026-07-15.jsonl"
    line = json.loads(path.read_text())
    assert line == {
        "id": c.id, "s": "s1", "p": None, "t": "builder", "at": int(T0.timestamp()),
        "c": c.client, "l": True,
    }  # fmt: skip
    assert "203.0.113.9" not in path.read_text() and len(c.client) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()


def test_rules_hold_across_restarts_and_processes_with_a_salt_file(
    tmp_path: Path, clock: SetClock
) -> None:
    d, secret = tmp_path / "data" / "u", tmp_path / "secret" / "salts.json"
    a = store_at(d, clock, DailySalts(secret, clock=clock))
    a.add("s1", client="c")
    # Another process (or a restart): its own store and salts object, the same secret file.
    b = store_at(d, clock, DailySalts(secret, clock=clock))
    with pytest.raises(RateLimitedError):
        b.add("s1", client="c")
    # ... and a check-in the other process makes after this one started is seen too.
    b.add("s2", client="d")
    with pytest.raises(RateLimitedError):
        a.add("s2", client="d")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    a.close()
    b.close()


def test_group_commit_one_fsync_for_many_check_ins(
    tmp_path: Path, clock: SetClock, salts: DailySalts, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync
    gate = threading.Event()

    def slow_fsync(fd: int) -> None:
        calls.append(fd)
        gate.wait(5)  # the first fsync waits until everything else is queued
        real(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    store = store_at(tmp_path / "u", clock, salts)
    futures = [store.submit("s1", client="first")]
    futures += [store.submit(f"s{i % 7}", client=f"10.0.{i // 200}.{i % 200}") for i in range(500)]
    assert not futures[-1].done()  # nothing is acknowledged before its fsync
    gate.set()
    done = [f.result(timeout=30) for f in futures]
    ids = {
        json.loads(x)["id"]
        for x in (tmp_path / "u" / "checkins-2026-07-15.jsonl").read_text().splitlines()
    }
    assert {c.id for c in done} == ids and len(ids) == 501
    assert len(calls) <= 5  # one for the first, one (or a few) for the 500 queued meanwhile
    store.close()


def test_a_torn_line_is_skipped(tmp_path: Path, clock: SetClock, salts: DailySalts) -> None:
    d = tmp_path / "u"
    store = store_at(d, clock, salts)
    store.add("s1", client="a")
    store.close()
    with (d / "checkins-2026-07-15.jsonl").open("a") as fh:
        fh.write('{"id": "chk_torn", "s": "s1"')  # a crash mid-write
    again = store_at(d, clock, salts)
    again.add("s1", client="b")
    rows = again.day_rows(date(2026, 7, 15))
    assert int(rows.count.sum()) == 2
    again.close()


def test_finished_days_are_aggregated_and_their_hashes_deleted(
    tmp_path: Path, clock: SetClock, salts: DailySalts
) -> None:
    d = tmp_path / "u"
    store = store_at(d, clock, salts)
    store.add("s1", client="a", trade="taxi")  # 10:00
    clock.now = T0 + timedelta(hours=1)
    store.add("s1", client="b")  # 11:00
    store.add("bus-1", client="a", stop_id="s2")
    store.close()
    clock.now = T0 + timedelta(days=1)
    store = store_at(d, clock, salts)  # yesterday's file stays (the 4-hour rule needs it)
    assert (d / "checkins-2026-07-15.jsonl").exists()
    clock.now = T0 + timedelta(days=2)
    store = store_at(d, clock, salts)  # opening aggregates the days before yesterday
    assert not (d / "checkins-2026-07-15.jsonl").exists()
    month = read_month(d / "visits-2026-07.npz")
    assert month.days == {date(2026, 7, 15).toordinal()}
    got = sorted(
        (month.rows.units[u], int(h), int(t), int(s), int(n))
        for u, h, t, s, n in zip(
            month.rows.unit,
            month.rows.hour,
            month.rows.trade,
            month.rows.source,
            month.rows.count,
            strict=True,
        )
    )
    assert got == [
        ("bus-1\ts2", 11, -1, SOURCE_CHECKINS, 1),
        ("s1", 10, 2, SOURCE_CHECKINS, 1),  # taxi
        ("s1", 11, -1, SOURCE_CHECKINS, 1),
    ]
    assert store.compact() == []  # idempotent
    store.close()


# -- salts -----------------------------------------------------------------------------------------


def test_salts_rotate_daily_and_are_forgotten(tmp_path: Path, clock: SetClock) -> None:
    secret = tmp_path / "secret.json"
    s = DailySalts(secret, keep_days=2, clock=clock)
    h0 = s.hash("c", "checkins", T0)
    assert s.hash("c", "checkins", T0) == h0 != s.hash("c", "reports", T0)
    clock.now = T0 + timedelta(days=1)
    assert s.hashes("c", "checkins", clock.now, timedelta(days=1))[1] == h0
    clock.now = T0 + timedelta(days=3)
    assert s.hashes("c", "checkins", clock.now, timedelta(days=5))[1:] == [
        s.hash("c", "checkins", T0 + timedelta(days=1))
    ]  # the first day's salt is gone: its hashes can no longer be linked
    assert "2026-07-15" not in json.loads(secret.read_text())["salts"]


def test_a_salt_file_beside_the_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="salt_file: Expected a path outside"):
        check_salt_file(tmp_path / "data" / "salts.json", [tmp_path / "data"])
    with pytest.raises(InvalidInputError, match="salt_file"):
        check_salt_file(tmp_path / "data" / "x" / "salts.json", [tmp_path / "data"])
    assert check_salt_file(tmp_path / "secret" / "s.json", [tmp_path / "data"])
    reg = tmp_path / "data" / "reg.geojson"
    reg.parent.mkdir()
    reg.write_text(json.dumps(make_doc([make_feature("s1", 113.6, 34.7)])))
    app = create_app(Settings(registry=reg, salt_file=tmp_path / "data" / "s.json"))
    with pytest.raises(InvalidInputError, match="salt_file"), TestClient(app):
        pass


def test_reports_keep_no_salt_and_count_a_client_once_across_days(
    tmp_path: Path, clock: SetClock
) -> None:
    path = tmp_path / "reports.jsonl"
    salts = DailySalts(clock=clock)
    store = ReportStore(path, salts=salts, clock=clock, threshold=2)
    store.add("s1", "no_water", client="a", now=T0)
    store.add("s1", "no_water", client="a", now=T0 + timedelta(days=1))  # the same worker
    assert store.needs_check("s1", None, now=T0 + timedelta(days=1)) == []
    store.add("s1", "no_water", client="b", now=T0 + timedelta(days=1))
    assert store.needs_check("s1", None, now=T0 + timedelta(days=1)) == ["no_water"]
    text = path.read_text()
    assert "salt" not in text
    # A report about another station the next day is unlinkable to the first day's.
    r = store.add("s2", "closed", client="a", now=T0 + timedelta(days=1))
    assert r.client != store.add("s3", "closed", client="a", now=T0).client


def test_the_report_rate_limit_holds_across_midnight(clock: SetClock) -> None:
    salts = DailySalts(clock=clock)
    store = ReportStore(
        None, salts=salts, clock=clock, rate_per_station_per_day=2, rate_per_hour=100
    )
    late = datetime(2026, 7, 15, 15, 0, tzinfo=UTC)  # 23:00 local
    store.add("s1", "closed", client="a", now=late)
    store.add("s1", "closed", client="a", now=late + timedelta(minutes=10))
    with pytest.raises(RateLimitedError):
        store.add("s1", "closed", client="a", now=late + timedelta(hours=2))  # 01:00, a new salt


# -- the API ---------------------------------------------------------------------------------------

HERE = (113.6500, 34.7500)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    doc = make_doc(
        [
            make_feature("s1", *HERE, opening_hours="24/7"),
            make_feature("s2", 113.651, 34.75),
            make_feature("s3", 113.652, 34.75),
            make_feature("gone", 113.66, 34.75, status="removed"),
            make_bus(
                "bus-1",
                [make_stop("a", 113.70, 34.76, "Mo-Su 00:00-24:00")],
                capacity=20,
            ),
            make_bus("bus-off", [make_stop("b", 113.71, 34.76, "Jan 01 00:00-00:01")]),
        ]
    )
    reg = tmp_path / "data" / "reg.geojson"
    reg.parent.mkdir()
    reg.write_text(json.dumps(doc))
    settings = Settings(
        registry=reg, reload_interval_s=0, trust_forwarded_for=True, checkin_rate_per_hour=3
    )
    with TestClient(create_app(settings, registry=from_document(doc, path=reg))) as c:
        yield c


def post(
    c: TestClient, sid: str, body: dict[str, Any] | None = None, ip: str = "198.51.100.1"
) -> Any:
    return c.post(f"/stations/{sid}/checkins", json=body, headers={"X-Forwarded-For": ip})


def test_api_refuses_a_repeated_tap(api: TestClient) -> None:
    r = post(api, "s1", {"trade": "sanitation"})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"id", "station_id", "stop_id", "trade", "at", "located"}
    r = post(api, "s1")
    assert r.status_code == 429 and 14000 < int(r.headers["Retry-After"]) <= 14400
    assert post(api, "s1", ip="198.51.100.2").status_code == 201


def test_api_refuses_a_far_position(api: TestClient) -> None:
    r = post(api, "s1", {"location": [HERE[0] + 0.01, HERE[1]]})  # ~914 m east
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "location"]
    assert "within 300 m of the station, got one 914 m away" in r.json()["detail"][0]["msg"]
    r = post(api, "s1", {"location": [HERE[0] + 0.002, HERE[1]]})  # ~183 m
    assert r.status_code == 201 and r.json()["located"] is True


def test_api_rate_limit(api: TestClient) -> None:
    for sid in ("s1", "s2", "s3"):  # three stations: the limit (checkin_rate_per_hour=3)
        assert post(api, sid, ip="192.0.2.7").status_code == 201
    r = post(api, "bus-1", ip="192.0.2.7")  # a fourth station within the hour
    assert r.status_code == 429 and "at most 3 an hour" in r.text
    assert int(r.headers["Retry-After"]) > 3000
    assert post(api, "bus-1", ip="192.0.2.8").status_code == 201  # another client


def test_api_bus_check_in_counts_for_the_stop_where_it_stands(api: TestClient) -> None:
    r = post(api, "bus-1", {"location": [113.701, 34.76]})
    assert r.status_code == 201 and r.json()["stop_id"] == "a"
    r = post(api, "bus-1", {"location": [113.75, 34.76]}, ip="198.51.100.3")
    assert r.status_code == 422 and "where the bus stands now" in r.text
    assert post(api, "bus-off").status_code == 409
    assert post(api, "gone").status_code == 409
    assert post(api, "nope").status_code == 404
    assert post(api, "s1", {"trade": "banker"}).status_code == 422
    assert post(api, "s1", {"location": [200, 1]}).status_code == 422


def test_find_page_says_busy_now_only_with_enough_check_ins(api: TestClient) -> None:
    """The workers' page shows "busy now" from the last hour's check-ins where there are
    enough of them (busy_min_checkins, 3) and nothing where there are not."""
    lon, lat = api.get("/stations/s1").json()["geometry"]["coordinates"]
    params = {"lon": lon, "lat": lat, "lang": "en"}
    for i in range(2):
        assert post(api, "s1", ip=f"198.51.100.{10 + i}").status_code == 201
    assert "check-ins in the last hour" not in api.get("/find", params=params).text
    assert post(api, "s1", ip="198.51.100.12").status_code == 201
    page = api.get("/find", params=params).text
    assert "3 check-ins in the last hour" in page


def test_planner_map_shows_utilization_once_there_are_visits(api: TestClient) -> None:
    """The usage layers appear on the served planner map once there are check-ins (and the
    map stays as it was without any)."""
    before = api.get("/maps/coverage", params={"lang": "en"})
    assert before.status_code == 200 and "Utilization (stations)" not in before.text
    assert post(api, "s2", ip="198.51.100.20").status_code == 201
    after = api.get("/maps/coverage", params={"lang": "en", "radius_m": 999})  # not cached
    assert after.status_code == 200 and "Utilization (stations)" in after.text
