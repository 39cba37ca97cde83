"""The storage contract: every backend (files, PostgreSQL) keeps every kind of state the same way.

Each test runs once per backend on a real store (files in a temporary directory, or a fresh
database on the session's throwaway PostgreSQL cluster): stations with versions, If-Match
and audit history; tokens; reports with their rate limits; placements; heat alerts;
rate-limit counters; and a second backend opened on the same storage (another process)
following the first; check-ins (their rules across processes, durability, concurrent
submits, aggregation of finished days), visit rows and visit counts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from tests.helpers import SetClock, visit_records
from tests.storage_env import StorageEnv, eventually, make_env
from yizhan.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RateLimitedError,
    StorageUnavailableError,
)
from yizhan.routes.clients import SharedLimit
from yizhan.stations.checkins import CheckinStore
from yizhan.stations.editing import feature_etag
from yizhan.stations.registry import StationFilter, load_registry
from yizhan.stations.salts import DailySalts
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import Principal
from yizhan.stations.usage_files import SOURCE_CHECKINS, SOURCE_COUNT, SOURCE_SYNTHETIC, VisitRows
from yizhan.storage import Backend

ADMIN = Principal("admin", "admin")
OP = Principal("union ops", "operator", operator="union")
MANAGER = Principal("Li", "manager", stations=frozenset({"a2"}))


def registry_doc() -> dict[str, Any]:
    feats = [
        make_feature("a1", 113.60, 34.75, operator="union", amenities=["drinking_water"]),
        make_feature("a2", 113.61, 34.75, operator="union", district="中原区"),
        make_feature("b1", 113.62, 34.75, operator="bank", opening_hours="Mo-Su 08:00-20:00"),
        make_bus("bus1", [make_stop("s1", 113.63, 34.75, "Mo-Su 10:00-16:00")], operator="bus-co"),
        make_feature("c1", 113.64, 34.76, amenities=["toilet"], x_unknown={"kept": [1, 2]}),
    ]
    doc = make_doc(feats, name="contract", license="CC0")
    doc["features"][0]["foreign_member"] = "kept"
    return doc


@pytest.fixture(params=["files", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageEnv]:
    e = make_env(
        request.param, tmp_path, registry_doc(), lambda: request.getfixturevalue("pg_cluster")
    )
    try:
        yield e
    finally:
        e.close()


@pytest.fixture
def backend(env: StorageEnv) -> Backend:
    return env.open(start=True)


# -- stations ------------------------------------------------------------------------------


def test_opens_the_registry_with_the_files_versions(env: StorageEnv, backend: Backend) -> None:
    reg = load_registry(env.path)
    s = backend.stations
    assert s.registry.ids == reg.ids
    assert [b["id"] for b in s.registry.buses] == ["bus1"]
    for f in reg.features + reg.buses:
        found = s.find(f["id"])
        assert found.feature == f and found.etag == feature_etag(f)
    assert s.find("bus1").bus and not s.find("a1").bus
    assert s.registry.meta == {"name": "contract", "license": "CC0"}
    with pytest.raises(NotFoundError):
        s.find("nope")


def test_update_checks_if_match_and_versions(backend: Backend) -> None:
    s = backend.stations
    old = s.find("a1")
    with pytest.raises(PreconditionRequiredError):
        s.update("a1", {"properties": {"phone": "1"}}, None, ADMIN)
    new = s.update("a1", {"properties": {"phone": "1"}}, old.etag, ADMIN)
    assert new.etag != old.etag and new.etag == feature_etag(new.feature)
    assert new.feature["properties"]["phone"] == "1"
    assert new.feature["foreign_member"] == "kept"
    assert s.find("a1") == new  # read your own write
    with pytest.raises(PreconditionFailedError) as info:
        s.update("a1", {"properties": {"phone": "2"}}, old.etag, ADMIN)
    assert info.value.current_etag == new.etag
    assert s.update("a1", {"properties": {"phone": "1"}}, new.etag, ADMIN) == new  # no change
    with pytest.raises(NotFoundError):
        s.update("zz", {"properties": {}}, '"x"', ADMIN)
    with pytest.raises(PermissionDeniedError):
        s.update("b1", {"properties": {"phone": "3"}}, s.find("b1").etag, OP)
    with pytest.raises(InvalidInputError) as bad:
        s.update("a1", {"properties": {"opening_hours": "Mo-Xx"}}, new.etag, ADMIN)
    assert bad.value.field == "properties.opening_hours"
    assert s.find("a1") == new


def test_create_remove_verify(backend: Backend) -> None:
    s = backend.stations
    f = make_feature("n1", 113.65, 34.77, operator="union")
    made = s.create(f, OP)
    assert made.feature["properties"]["created_at"] and s.find("n1") == made
    assert "n1" in s.registry.index_of
    with pytest.raises(ConflictError):
        s.create(make_feature("n1", 113.65, 34.77, operator="union"), OP)
    with pytest.raises(ConflictError):
        s.create(make_feature("bus1", 113.65, 34.77, operator="union"), OP)
    gen = s.create({"type": "Feature", **{k: v for k, v in f.items() if k != "id"}}, ADMIN)
    assert gen.feature["id"].startswith("yz-")
    bus = s.create(
        make_bus("bus2", [make_stop("t", 113.7, 34.8, "Mo-Fr 09:00-17:00")], operator="x"), ADMIN
    )
    assert bus.bus and [b["id"] for b in s.registry.buses] == ["bus1", "bus2"]
    gone = s.remove("n1", "closed for good", made.etag, OP)
    assert gone.feature["properties"]["status"] == "removed"
    with pytest.raises(ConflictError):
        s.remove("n1", "again", gone.etag, OP)
    checked = s.verify("a2", MANAGER, note="all fine")
    assert checked.feature["properties"]["last_verified_by"] == "Li"
    with pytest.raises(PreconditionFailedError):
        s.verify("a2", MANAGER, if_match=made.etag)
    with pytest.raises(PermissionDeniedError):
        s.verify("a1", MANAGER)


def test_history_is_paged_and_complete(backend: Backend) -> None:
    s = backend.stations
    tags = [s.find("a2").etag]
    for i in range(5):
        tags.append(s.update("a2", {"properties": {"phone": str(i)}}, tags[-1], ADMIN).etag)
    s.update("a1", {"properties": {"phone": "x"}}, s.find("a1").etag, ADMIN)
    page = s.history("a2")
    assert page.total == 5 and page.next_cursor is None
    assert [e["etag_before"] for e in page.entries] == tags[:-1]
    assert [e["etag_after"] for e in page.entries] == tags[1:]
    e = page.entries[0]
    assert e["action"] == "update" and e["actor"]["role"] == "admin" and e["id"] == "a2"
    assert {"path": "properties.phone", "before": None, "after": "0"} in e["changes"]
    assert (
        e["before"]["properties"].get("phone") is None and e["after"]["properties"]["phone"] == "0"
    )
    first = s.history("a2", limit=2)
    assert [x["etag_after"] for x in first.entries] == tags[1:3] and first.next_cursor == 2
    nxt = s.history("a2", limit=2, cursor=2)
    assert [x["etag_after"] for x in nxt.entries] == tags[3:5] and nxt.next_cursor == 4
    newest = s.history("a2", limit=1, newest_first=True)
    assert newest.entries[0]["etag_after"] == tags[-1] and newest.total == 5
    assert s.history("nope").total == 0 and s.history("nope").entries == []
    with pytest.raises(ValueError, match="cursor"):
        s.history("a2", cursor=-1)


def test_patched_snapshot_answers_as_a_rebuilt_one(backend: Backend) -> None:
    s = backend.stations
    s.update("a1", {"properties": {"status": "temporarily_closed"}}, s.find("a1").etag, ADMIN)
    s.update(
        "b1",
        {"geometry": {"type": "Point", "coordinates": [113.70, 34.80]}},
        s.find("b1").etag,
        ADMIN,
    )
    s.update("c1", {"properties": {"amenities": ["drinking_water"]}}, s.find("c1").etag, ADMIN)
    s.verify("a2", ADMIN)
    s.create(make_feature("d1", 113.605, 34.751, amenities=["drinking_water"]), ADMIN)
    fresh = StationSearch(s.registry)
    filters = [
        StationFilter(),
        StationFilter.make(amenities=["drinking_water"]),
        StationFilter.make(statuses=None),
    ]
    for flt in filters:
        for lon, lat in [(113.6, 34.75), (113.69, 34.79), (113.62, 34.76)]:
            got = [(h.index, round(h.distance_m, 6)) for h in s.search.nearest(lon, lat, 4, flt)]
            want = [(h.index, round(h.distance_m, 6)) for h in fresh.nearest(lon, lat, 4, flt)]
            assert got == want
    ts = datetime(2026, 7, 15, 12, tzinfo=UTC).timestamp()
    assert [s.search.status(i, ts) for i in range(len(s.registry))] == [
        fresh.status(i, ts) for i in range(len(s.registry))
    ]
    assert s.registry.text_match("d1").tolist() == fresh.registry.text_match("d1").tolist()


def test_another_process_follows_every_change(env: StorageEnv, backend: Backend) -> None:
    other = env.open()
    s = backend.stations
    v0 = other.stations.version
    after = s.update("a1", {"properties": {"phone": "9"}}, s.find("a1").etag, ADMIN)
    s.create(make_feature("n2", 113.66, 34.78), ADMIN)
    assert other.stations.catch_up()
    assert other.stations.version > v0
    assert other.stations.find("a1") == after
    assert other.stations.find("n2").feature == s.find("n2").feature
    assert other.stations.registry.ids == s.registry.ids
    # Its writes check the stored version, not its own copy.
    with pytest.raises(PreconditionFailedError):
        other.stations.update("a1", {"properties": {"phone": "0"}}, '"stale"', ADMIN)
    assert other.stations.history("a1").total == 1
    assert not other.stations.catch_up()  # nothing new


def test_two_editors_of_one_version_one_wins(env: StorageEnv, backend: Backend) -> None:
    other = env.open()
    tag = backend.stations.find("a1").etag
    results: list[str] = []
    barrier = threading.Barrier(2)

    def edit(b: Backend, phone: str) -> None:
        barrier.wait()
        try:
            b.stations.update("a1", {"properties": {"phone": phone}}, tag, ADMIN)
            results.append("ok")
        except PreconditionFailedError:
            results.append("412")

    threads = [
        threading.Thread(target=edit, args=(b, p)) for b, p in ((backend, "x"), (other, "y"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["412", "ok"]
    assert backend.stations.history("a1").total == 1


# -- tokens, reports, placements, alerts, rate limits ------------------------------------


def test_tokens_are_shared(env: StorageEnv, backend: Backend) -> None:
    other = env.open(start=True)
    token, rec = backend.tokens.create("manager", name="Li", stations=["a2"])
    assert backend.tokens.authenticate(token) == rec.principal()
    assert eventually(lambda: other.tokens.authenticate(token)) == rec.principal()
    other.tokens.revoke(rec.token_id)
    assert eventually(lambda: backend.tokens.authenticate(token) is None)
    assert [r.revoked for r in backend.tokens.records()] == [True]
    with pytest.raises(NotFoundError):
        backend.tokens.revoke("tok_nope")
    assert backend.tokens.authenticate("yz_unknown") is None


def test_reports_and_their_limits_are_shared(env: StorageEnv, backend: Backend) -> None:
    other = env.open(start=True, report_rate_per_station_per_day=2)
    mine = env.open(start=True, report_rate_per_station_per_day=2)
    r1 = mine.reports.add("a1", "no_water", client="1.2.3.4", comment="坏了")
    other.reports.add("a1", "no_water", client="1.2.3.4")
    with pytest.raises(RateLimitedError):  # two processes, one limit
        mine.reports.add("a1", "closed", client="1.2.3.4")
    other.reports.add("a1", "no_water", client="5.6.7.8")
    assert eventually(
        lambda: mine.reports.refresh(force=True) or mine.reports.needs_check("a1", None)
    ) == ["no_water"]
    got = eventually(
        lambda: len(other.reports.for_station("a1")) == 3 and other.reports.for_station("a1")
    )
    assert r1 in got
    assert mine.reports.client_hash("x") == other.reports.client_hash("x")
    with pytest.raises(InvalidInputError):
        mine.reports.add("a1", "nonsense", client="c")


def test_placements_are_shared_and_never_overlap(env: StorageEnv, backend: Backend) -> None:
    other = env.open(start=True)
    now = datetime.now(UTC).replace(microsecond=0)
    start, until = now + timedelta(hours=1), now + timedelta(hours=3)
    p = backend.placements.add("bus1", 113.7, 34.8, start, until, "bus-co", "note")
    assert eventually(lambda: other.placements.for_bus("bus1")) == [p]
    with pytest.raises(ConflictError):
        other.placements.add("bus1", 113.7, 34.8, start + timedelta(hours=1), until, "bus-co")
    q = other.placements.add("bus1", 113.71, 34.8, until, until + timedelta(hours=1), "bus-co")
    assert eventually(lambda: len(backend.placements.all()) == 2)
    assert backend.placements.active("bus1", (start + timedelta(minutes=1)).timestamp()) == p
    assert backend.placements.next_start("bus1", start.timestamp()) == q.start.timestamp()
    v = backend.placements.version
    other.placements.remove("bus1", p.placement_id)
    assert eventually(lambda: backend.placements.version != v)
    assert [x.placement_id for x in backend.placements.all()] == [q.placement_id]
    with pytest.raises(NotFoundError):
        backend.placements.remove("bus1", p.placement_id)


def test_alerts_are_shared(env: StorageEnv, backend: Backend) -> None:
    other = env.open(start=True)
    now = datetime.now(UTC).replace(microsecond=0)
    a = backend.alerts.add(["中原区"], now - timedelta(hours=1), now + timedelta(hours=2), "admin")
    assert eventually(lambda: other.alerts.all()) == [a]
    assert other.alerts.cover_until("中原区", now.timestamp()) == a.until.timestamp()
    assert other.alerts.cover_until("金水区", now.timestamp()) is None
    other.alerts.remove(a.alert_id)
    assert eventually(lambda: not backend.alerts)
    with pytest.raises(NotFoundError):
        backend.alerts.remove(a.alert_id)


def test_rate_limits_are_shared(env: StorageEnv, backend: Backend) -> None:
    other = env.open()
    backend.rate_limits.hit("client-1", 3, 60, "token attempts")
    other.rate_limits.hit("client-1", 3, 60, "token attempts")
    backend.rate_limits.hit("client-1", 3, 60, "token attempts")
    with pytest.raises(RateLimitedError, match="token attempts") as info:
        other.rate_limits.hit("client-1", 3, 60, "token attempts")
    assert 55 <= info.value.retry_after_s <= 61
    other.rate_limits.hit("client-2", 3, 60)  # another key
    backend.rate_limits.hit("client-1", 10, 1)  # another window: its own counter


def test_rate_limits_tell_the_wait_without_counting(env: StorageEnv, backend: Backend) -> None:
    other = env.open()
    assert backend.rate_limits.wait_s("auth:c", 2, 60) == 0
    backend.rate_limits.hit("auth:c", 2, 60)
    assert other.rate_limits.wait_s("auth:c", 2, 60) == 0  # one of two
    other.rate_limits.hit("auth:c", 2, 60)
    for limits in (backend.rate_limits, other.rate_limits):
        for _ in range(3):  # asking does not count
            assert 55 <= limits.wait_s("auth:c", 2, 60) <= 60
    assert backend.rate_limits.wait_s("auth:c", 3, 60) == 0  # a higher limit is not reached
    assert backend.rate_limits.wait_s("auth:other", 2, 60) == 0


def test_shared_limits_fall_back_to_the_process_while_storage_is_down(
    env: StorageEnv, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    class Down:
        def hit(self, key: str, limit: int, window_s: float, what: str = "") -> None:
            raise StorageUnavailableError("the database is restarting")

        def wait_s(self, key: str, limit: int, window_s: float) -> float:
            raise StorageUnavailableError("the database is restarting")

    limit = SharedLimit(Down(), "auth", 2, 60, "invalid bearer tokens")
    with caplog.at_level(logging.WARNING, logger="yizhan"):
        assert limit.wait_s("c") == 0
        assert limit.wait_s("c") == 0
    assert ["unavailable" in r.getMessage() for r in caplog.records] == [True]  # once
    limit.hit("c")
    limit.hit("c")
    assert limit.wait_s("c") > 0
    with pytest.raises(RateLimitedError, match="invalid bearer tokens"):
        limit.hit("c")
    shared = SharedLimit(backend.rate_limits, "auth", 2, 60, "invalid bearer tokens")
    shared.hit("c")
    assert shared.wait_s("c") == 0 and shared.fallback.retry_after_s("c") == 0


# -- usage: check-ins, visit rows, visit counts, salts --------------------------------------

T0 = datetime(2026, 7, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Wednesday


def usage_env(env: StorageEnv, **overrides: Any) -> tuple[Backend, Backend]:
    """Two backends ("processes") on one storage, with a check-in limit of 3 an hour."""
    settings = {"checkin_rate_per_hour": 3, **overrides}
    return env.open(start=True, **settings), env.open(start=True, **settings)


def test_check_in_rules_hold_across_processes(env: StorageEnv) -> None:
    one, two = usage_env(env)
    now = datetime.now(UTC)
    assert one.salts.hash("c", "checkins", now) == two.salts.hash("c", "checkins", now)
    first = one.checkins.add("a1", client="198.51.100.1", trade="courier")
    with pytest.raises(RateLimitedError, match="Already checked in at 'a1'") as info:
        two.checkins.add("a1", client="198.51.100.1")  # the other process saw it
    assert 14_000 < info.value.retry_after_s <= 14_400
    two.checkins.add("a1", client="198.51.100.2")  # another client
    # At most 3 an hour from one client, wherever it checks in.
    one.checkins.add("a2", client="198.51.100.9")
    two.checkins.add("b1", client="198.51.100.9")
    one.checkins.add("c1", client="198.51.100.9")
    with pytest.raises(RateLimitedError, match="at most 3 an hour"):
        two.checkins.add("bus1", client="198.51.100.9", stop_id="s1")
    since = now - timedelta(hours=1)
    assert one.checkins.recent_count("a1", since) == two.checkins.recent_count("a1", since) == 2
    assert first.as_dict()["trade"] == "courier" and first.client != "198.51.100.1"


def test_an_acknowledged_check_in_survives_a_restart(env: StorageEnv) -> None:
    one, _ = usage_env(env)
    got = one.checkins.submit("a2", client="203.0.113.5", located=True).result(timeout=10)
    one.close()  # the process ends
    again = env.open(checkin_rate_per_hour=3)
    with pytest.raises(RateLimitedError):
        again.checkins.add("a2", client="203.0.113.5")
    today = datetime.now(UTC).astimezone(again.checkins.zone).date()
    assert today in again.checkins.open_days()
    rows = again.checkins.day_rows(today)
    assert [rows.units[u] for u in rows.unit.tolist()] == ["a2"]
    assert rows.count.tolist() == [1] and got.located


def test_concurrent_check_ins_of_two_processes(env: StorageEnv) -> None:
    one, two = usage_env(env, checkin_rate_per_hour=100)
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        store = (one, two)[i % 2].checkins
        barrier.wait()
        futures = [store.submit("c1", client=f"10.{i}.0.{k}") for k in range(25)]
        futures.append(store.submit("c1", client="the-same-worker"))
        for f in futures:
            try:
                c = f.result(timeout=30)
                with lock:
                    accepted.append(c.id)
            except RateLimitedError as exc:
                with lock:
                    refused.append(str(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == len(set(accepted)) == 8 * 25 + 1  # the repeated tap: once
    assert len(refused) == 7 and all("Already checked in" in r for r in refused)
    today = datetime.now(UTC).astimezone(one.checkins.zone).date()
    assert int(two.checkins.day_rows(today).count.sum()) == 201
    since = datetime.now(UTC) - timedelta(hours=1)
    # the other's last batch: seen at this one's next write, or its next look (REFRESH_S)
    eventually(lambda: one.checkins.recent_count("c1", since) == 201)


def test_finished_days_are_aggregated_once(env: StorageEnv, backend: Backend) -> None:
    clock = SetClock(T0)
    salts = DailySalts(clock=clock)

    def store() -> CheckinStore:  # the backend's log, at the test's time
        assert backend.checkins.log is not None
        return CheckinStore(None, log=backend.checkins.log, salts=salts, clock=clock)

    s = store()
    s.add("a1", client="a", trade="taxi")  # 10:00
    clock.now = T0 + timedelta(hours=1)
    s.add("a1", client="b")  # 11:00
    s.add("bus1", client="a", stop_id="s1")
    expected = [
        (date(2026, 7, 15).toordinal(), "a1", 10, 2, SOURCE_CHECKINS, 1),  # taxi
        (date(2026, 7, 15).toordinal(), "a1", 11, -1, SOURCE_CHECKINS, 1),
        (date(2026, 7, 15).toordinal(), "bus1\ts1", 11, -1, SOURCE_CHECKINS, 1),
    ]
    assert visit_records(s.day_rows(date(2026, 7, 15))) == expected
    clock.now = T0 + timedelta(days=1)
    assert s.compact() == []  # yesterday stays (the 4-hour rule needs it)
    clock.now = T0 + timedelta(days=2, hours=1)
    stores = [store() for _ in range(3)]  # opening compacts; then three at once
    results: list[list[date]] = []
    threads = [threading.Thread(target=lambda x=x: results.append(x.compact())) for x in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert date(2026, 7, 15) not in s.open_days()
    assert backend.visits is not None
    parts, held = backend.visits.load_parts(date(2026, 7, 1), date(2026, 7, 31))
    assert sorted(r for p in parts for r in visit_records(p)) == expected  # added once
    assert held.days == {date(2026, 7, 15).toordinal()}
    other = env.open()
    assert other.visits is not None
    other_parts, _ = other.visits.load_parts(date(2026, 7, 15), date(2026, 7, 15), ["a1"])
    assert [r for p in other_parts for r in visit_records(p) if r[1] == "a1"] == expected[:2]


def test_visit_rows_of_generated_days_are_shared(env: StorageEnv, backend: Backend) -> None:
    other = env.open()
    assert backend.visits is not None and other.visits is not None
    d1, d2 = date(2026, 7, 1).toordinal(), date(2026, 7, 2).toordinal()
    rows = VisitRows.from_records(
        [(d1, "a1", 9, -1, SOURCE_SYNTHETIC, 4), (d2, "bus1\ts1", -1, 3, SOURCE_SYNTHETIC, 7)]
    )
    meta = {"synthetic": {str(d1): {"seed": 1}, str(d2): {"seed": 1}}}
    assert backend.visits.add_days(rows, [d1, d2], replace=True, meta=meta) == [d1, d2]
    assert other.visits.add_days(rows, [d1]) == []  # a day held is not added twice
    parts, held = other.visits.load_parts(date(2026, 7, 1), date(2026, 7, 2))
    assert sorted(r for p in parts for r in visit_records(p)) == sorted(visit_records(rows))
    assert held.days == {d1, d2} and held.meta == meta
    before, _ = backend.visits.load_parts(date(2026, 7, 1), date(2026, 7, 2))
    assert sorted(r for p in before for r in visit_records(p)) == sorted(visit_records(rows))
    again = VisitRows.from_records([(d2, "a1", 8, -1, SOURCE_SYNTHETIC, 1)])
    assert other.visits.add_days(again, [d2], replace=True, meta={"synthetic": {}}) == [d2]
    parts, held = backend.visits.load_parts(date(2026, 7, 2), date(2026, 7, 2))
    assert [r for p in parts for r in visit_records(p)] == visit_records(again)
    assert not held.meta.get("synthetic")  # the files may keep an empty member
    parts, held = backend.visits.load_parts(date(2026, 7, 1), date(2026, 7, 2))  # read before
    assert sorted(r for p in parts for r in visit_records(p)) == sorted(
        visit_records(rows.take([0]))
    ) + (visit_records(again))
    assert set(held.meta.get("synthetic", {})) == {str(d1)}


def test_visit_counts_are_shared_and_audited(env: StorageEnv, backend: Backend) -> None:
    other = env.open()
    today = datetime.now(UTC).date()
    day = today - timedelta(days=3)
    first, created = backend.visit_counts.put("a2", day, 80, who=MANAGER, today=today)
    assert created and first.count == 80
    hours = [0] * 24
    hours[9], hours[15] = 50, 45
    _second, created = other.visit_counts.put(
        "a2", day, 95, hours=hours, who=MANAGER, today=today, note="recounted"
    )
    assert not created  # the other process's count is the one replaced
    assert [c.count for c in backend.visit_counts.for_station("a2", day, day)] == [95]
    with pytest.raises(InvalidInputError, match="hours"):
        backend.visit_counts.put("a2", day, 5, hours=[1] * 24, who=MANAGER, today=today)
    reopened = env.open()
    got = reopened.visit_counts.for_station("a2", day - timedelta(days=1), today)
    assert [(c.day, c.count, c.hours) for c in got] == [(day, 95, tuple(hours))]
    assert sorted(visit_records(reopened.visit_counts.rows(day, day))) == [
        (day.toordinal(), "a2", 9, -1, SOURCE_COUNT, 50),
        (day.toordinal(), "a2", 15, -1, SOURCE_COUNT, 45),
    ]
    entries, _ = reopened.visit_counts.log.read_since(0)
    assert [(e["changes"][0]["before"], e["changes"][0]["after"]) for e in entries] == [
        (None, 80),
        (80, 95),
    ]
    assert entries[1]["reason"] == "recounted" and entries[1]["actor"]["name"] == "Li"
