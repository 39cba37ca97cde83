"""Problem reports: validation, rate limits, ``needs_check``, statuses, and the append-only
file (persistence, torn lines, two processes appending at once)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_together
from tests.helpers import SetClock
from yizhan.errors import InvalidInputError, RateLimitedError
from yizhan.stations.reports import REPORT_CODES, Report, ReportStore

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 7, 15, 8, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def clock() -> SetClock:
    return SetClock(T0)


@pytest.fixture
def store(clock: SetClock) -> ReportStore:
    return ReportStore(None, clock=clock)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "r.geojson.reports.jsonl"


# -- validation --------------------------------------------------------------------------

ADD_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    # (arguments, field, words)
    ({"code": "broken"}, "code", "Expected one of closed, no_water, toilet_unusable"),
    ({"code": "Closed"}, "code", "got 'Closed'"),
    ({"code": None}, "code", "got None"),
    ({"comment": 5}, "comment", "Expected text or null, got 5"),
    ({"comment": "x" * 1001}, "comment", "at most 1000 characters, got 1001"),
    ({"comment": "a\x00b"}, "comment", "got U+0000 at position 1"),
    ({"comment": "bell\x07"}, "comment", "got U+0007 at position 4"),
    ({"comment": "cr\rlf"}, "comment", "got U+000D at position 2"),
    ({"comment": "del\x7f!"}, "comment", "got U+007F"),
    ({"comment": "c1\x85c1"}, "comment", "got U+0085 at position 2"),
    ({"comment": "lone \udc80"}, "comment", "got U+DC80"),
    ({"location": [113.6]}, "location", "Expected a position [lon, lat], got [113.6]"),
    ({"location": [34.7, 113.6]}, "location", "lat out of range"),
    ({"location": ["113", 34]}, "location", "Expected a number for lon"),
    ({"location": [float("nan"), 34]}, "location", "lon must be finite"),
    ({"location": "113.6,34.7"}, "location", "Expected a position"),
    ({"client": ""}, "client", "Expected a client address"),
    ({"station_id": ""}, "station_id", "Expected a station id"),
]


@pytest.mark.parametrize(("kwargs", "field", "words"), ADD_ERRORS)
def test_bad_reports_name_the_field(
    store: ReportStore, kwargs: dict[str, Any], field: str, words: str
) -> None:
    args: dict[str, Any] = {"station_id": "s1", "code": "closed", "client": "1.2.3.4"} | kwargs
    with pytest.raises(InvalidInputError) as info:
        store.add(args.pop("station_id"), args.pop("code"), **args)
    assert info.value.field == field and words in info.value.message
    assert store.all() == []


COMMENTS = [
    # (given, stored)
    (None, None),
    ("", None),
    ("  \n\t ", None),
    ("  没有水了  \n", "没有水了"),
    ("<script>alert(1)</script> & 'quotes'", "<script>alert(1)</script> & 'quotes'"),
    ("line 1\n\tline 2", "line 1\n\tline 2"),
    ("x" * 1000, "x" * 1000),
    ("  " + "x" * 1000 + "  ", "x" * 1000),
    ("emoji 🚰 ok \u200b", "emoji 🚰 ok \u200b"),
]


@pytest.mark.parametrize(("given", "stored"), COMMENTS)
def test_comments_are_stored_as_given(path: Path, given: str | None, stored: str | None) -> None:
    r = ReportStore(path).add("s1", "no_water", comment=given, client="c")
    assert r.comment == stored
    [again] = ReportStore(path).all()
    assert again.comment == stored


@pytest.mark.parametrize("code", REPORT_CODES)
def test_every_code_is_accepted(store: ReportStore, code: str) -> None:
    assert store.add("s1", code, client="c").code == code


def test_report_json_and_privacy(path: Path, clock: SetClock) -> None:
    store = ReportStore(path, clock=clock)
    r = store.add("s1", "closed", location=[113.6, 34.7, 90.0], client="203.0.113.7")
    assert r.id.startswith("rep_") and r.location == (113.6, 34.7) and r.created_at == T0
    assert r.as_dict() == {
        "id": r.id,
        "station_id": "s1",
        "code": "closed",
        "comment": None,
        "location": [113.6, 34.7],
        "created_at": "2026-07-15T08:00:00+00:00",
    }
    assert r.as_dict(include_client=True)["client"] == r.client
    assert len(r.client) == 64 and r.client == store.client_hash("203.0.113.7")
    text = path.read_text()
    assert "203.0.113.7" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    header, line = (json.loads(ln) for ln in text.splitlines())
    # The salt is never stored beside the hashes (it rotates daily: tests/test_salts.py).
    assert header == {"type": "yizhan-reports", "version": 1}
    assert line == r.as_dict(include_client=True)
    # The next day's salt differs: the same address is unlinkable across days.
    assert store.client_hash("203.0.113.7", T0 + timedelta(days=1)) != r.client


def test_now_is_kept_in_utc_whole_seconds(store: ReportStore) -> None:
    local = datetime(2026, 7, 15, 16, 0, 0, 123456).astimezone()
    r = store.add("s1", "closed", client="c", now=local)
    assert r.created_at == local.astimezone(UTC).replace(microsecond=0)
    assert r.created_at.tzinfo == UTC
    with pytest.raises(InvalidInputError, match="now: Expected a time with a UTC offset"):
        store.add("s1", "closed", client="c", now=datetime(2026, 7, 15, 8))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("window_days", 0),
        ("threshold", 0),
        ("rate_per_hour", -1),
        ("rate_per_station_per_day", 1.5),
        ("threshold", True),
    ],
)
def test_bad_parameters_are_refused(param: str, value: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        ReportStore(None, **{param: value})
    assert info.value.field == param and "Expected a whole number >= 1" in info.value.message


# -- rate limits --------------------------------------------------------------------------


def test_hourly_limit_per_client(store: ReportStore) -> None:
    for i in range(10):  # at 08:00, 08:06, …, 08:54 about ten stations
        store.add(f"s{i}", "closed", client="a", now=h(i / 10))
    with pytest.raises(RateLimitedError) as info:
        store.add("s99", "closed", client="a", now=h(0.95))
    # The 08:00 report leaves the hour at 09:00, 3 minutes from now.
    assert info.value.retry_after_s == 180
    assert "at most 10 in an hour" in str(info.value)
    store.add("s99", "closed", client="b", now=h(0.95))  # another client is not limited
    with pytest.raises(RateLimitedError) as info:
        store.add("s99", "closed", client="a", now=h(1.0) - timedelta(seconds=1))
    assert info.value.retry_after_s == 1
    store.add("s99", "closed", client="a", now=h(1.0))  # 08:00 is no longer within the hour
    assert len(store.all()) == 12


RETRY = [
    # (limit, times of earlier reports in hours, now in hours, expected retry in seconds)
    (3, [0.0, 10.0, 20.0], 23.0, 3600),
    (3, [0.0, 0.5, 0.75], 24.0 - 1 / 3600, 1),
    (3, [0.0, 0.5, 0.75], 0.9, 23 * 3600 + 360),
    (2, [0.0, 23.5], 23.75, 900),
]


@pytest.mark.parametrize(("limit", "earlier", "now", "retry"), RETRY)
def test_daily_limit_per_client_and_station(
    limit: int, earlier: list[float], now: float, retry: int
) -> None:
    store = ReportStore(None, rate_per_station_per_day=limit, rate_per_hour=100)
    for t in earlier:
        store.add("s1", "closed", client="a", now=h(t))
    with pytest.raises(RateLimitedError) as info:
        store.add("s1", "closed", client="a", now=h(now))
    assert info.value.retry_after_s == retry
    assert "about station 's1' in 24 hours" in str(info.value)
    store.add("s2", "closed", client="a", now=h(now))  # another station
    store.add("s1", "closed", client="b", now=h(now))  # another client
    store.add("s1", "closed", client="a", now=h(now) + timedelta(seconds=retry))


def test_rate_limits_survive_a_restart(path: Path) -> None:
    store = ReportStore(path, rate_per_station_per_day=2)
    store.add("s1", "closed", client="a", now=h(0))
    store.add("s1", "closed", client="a", now=h(1))
    with pytest.raises(RateLimitedError):
        ReportStore(path, rate_per_station_per_day=2).add("s1", "closed", client="a", now=h(2))


# -- needs_check and statuses -------------------------------------------------------------

NEEDS_CHECK = [
    # (reports as (hours, client, code), verified_at, now in hours, expected)
    ([(0, "a", "closed"), (1, "b", "closed")], None, 2, ["closed"]),
    ([(0, "a", "closed"), (1, "a", "closed")], None, 2, []),  # one client counts once
    ([(0, "a", "closed"), (1, "b", "no_water")], None, 2, []),
    ([(0, "a", "all_good"), (1, "b", "all_good")], None, 2, []),  # never a problem
    (
        [(0, "a", "closed"), (1, "b", "closed"), (2, "a", "moved"), (3, "c", "moved")],
        None,
        4,
        ["closed", "moved"],
    ),
    ([(0, "a", "closed"), (1, "b", "closed")], None, 14 * 24 - 0.5, ["closed"]),
    ([(0, "a", "closed"), (1, "b", "closed")], None, 14 * 24 + 0.5, []),  # one out of window
    ([(0, "a", "closed"), (1, "b", "closed")], None, 0.5, []),  # one in the future
    ([(0, "a", "closed"), (1, "b", "closed")], h(0.5), 2, []),  # verification clears
    ([(0, "a", "closed"), (1, "b", "closed")], h(0), 2, []),  # made at verification: cleared
    ([(0, "a", "closed"), (1, "b", "closed")], h(-1), 2, ["closed"]),
    ([(1, "a", "closed"), (2, "b", "closed")], date(2026, 7, 15), 3, ["closed"]),
    ([(1, "a", "closed"), (2, "b", "closed")], date(2026, 7, 16), 30, []),
    (
        [(0, "a", "closed"), (1, "b", "closed"), (3, "c", "closed")],
        h(2),
        4,
        [],  # only one since verification
    ),
]


@pytest.mark.parametrize(("reports", "verified", "now", "expected"), NEEDS_CHECK)
def test_needs_check(
    store: ReportStore,
    reports: list[tuple[float, str, str]],
    verified: datetime | date | None,
    now: float,
    expected: list[str],
) -> None:
    for t, client, code in reports:
        store.add("s1", code, client=client, now=h(t))
    store.add("s2", "closed", client="z", now=h(0))
    assert store.needs_check("s1", verified, now=h(now)) == expected
    assert store.needs_check("s2", verified, now=h(now)) == []
    assert store.needs_check("unknown", None, now=h(now)) == []


@pytest.mark.parametrize(("threshold", "expected"), [(1, ["closed"]), (3, []), (2, [])])
def test_needs_check_threshold(threshold: int, expected: list[str]) -> None:
    store = ReportStore(None, threshold=threshold, window_days=1)
    store.add("s1", "closed", client="a", now=h(0))
    if threshold != 1:
        store.add("s1", "closed", client="b", now=h(-25))  # outside a one-day window
        store.add("s1", "closed", client="a", now=h(1))
    assert store.needs_check("s1", None, now=h(2)) == expected


def test_needs_check_uses_the_clock_and_rejects_naive_times(clock: SetClock) -> None:
    store = ReportStore(None, clock=clock)
    store.add("s1", "closed", client="a")
    store.add("s1", "closed", client="b")
    assert store.needs_check("s1", None) == ["closed"]
    assert store.station_ids() == ["s1"]
    clock.now = T0 + timedelta(days=15)
    assert store.needs_check("s1", None) == []
    with pytest.raises(InvalidInputError, match="verified_at: Expected a time with a UTC offset"):
        store.needs_check("s1", datetime(2026, 7, 15, 8))


def test_station_ids_are_those_with_problem_reports(store: ReportStore) -> None:
    store.add("s2", "no_water", client="a")
    store.add("s1", "all_good", client="a")
    store.add("s3", "all_good", client="a")
    store.add("s3", "moved", client="b")
    assert store.station_ids() == ["s2", "s3"]


def test_newest_first_and_statuses(store: ReportStore) -> None:
    a = store.add("s1", "closed", client="a", now=h(0))
    b = store.add("s2", "no_water", client="a", now=h(2))
    c = store.add("s1", "moved", client="b", now=h(4))
    d = store.add("s1", "wrong_info", client="c", now=h(4))  # same second: later first
    assert store.for_station("s1") == [d, c, a]
    assert store.all() == [d, c, b, a]
    verified = {"s1": h(3), "s2": None}
    assert store.list(None, verified.get) == [
        (d, "open"),
        (c, "open"),
        (b, "open"),
        (a, "resolved"),
    ]
    assert store.list("resolved", verified.get) == [(a, "resolved")]
    assert [r for r, _ in store.list("open", verified.get)] == [d, c, b]
    assert ReportStore.status_of(a, date(2026, 7, 15)) == "open"  # start of day, before 08:00
    assert ReportStore.status_of(a, date(2026, 7, 16)) == "resolved"
    assert ReportStore.status_of(a, h(0)) == "open"  # made at verification: not after it
    with pytest.raises(InvalidInputError) as info:
        store.list("closed", verified.get)
    assert info.value.field == "status" and "Expected one of open, resolved" in str(info.value)


# -- the file -----------------------------------------------------------------------------


def test_reports_persist(path: Path) -> None:
    store = ReportStore(path)
    made = [
        store.add("s1", "closed", comment="铁门锁着", location=[113.6, 34.7], client="a"),
        store.add("s2", "all_good", client="b"),
    ]
    again = ReportStore(path)
    assert sorted(r.as_dict(include_client=True)["id"] for r in again.all()) == sorted(
        r.id for r in made
    )
    assert {r.id: r for r in again.all()} == {r.id: r for r in made}
    assert again.client_hash("a") == store.client_hash("a")
    assert len(path.read_text().splitlines()) == 3  # header + 2


def test_torn_last_line_is_skipped_and_the_file_stays_appendable(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = ReportStore(path).add("s1", "closed", client="a")
    with path.open("a") as fh:  # a crash in the middle of a write
        fh.write('{"id": "rep_torn", "station_id": "s1", "co')
    with caplog.at_level(logging.WARNING, logger="yizhan"):
        store = ReportStore(path)
    assert [r.id for r in store.all()] == [first.id]
    assert any("incomplete last line" in r.getMessage() for r in caplog.records)
    second = store.add("s2", "no_water", client="b")
    lines = path.read_text().splitlines()
    assert lines[-2] == '{"id": "rep_torn", "station_id": "s1", "co'
    assert json.loads(lines[-1])["id"] == second.id
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="yizhan"):
        reloaded = ReportStore(path)
    assert {r.id for r in reloaded.all()} == {first.id, second.id}
    assert any("unreadable line" in r.getMessage() for r in caplog.records)
    third = reloaded.add("s3", "moved", client="c")
    assert {r.id for r in ReportStore(path).all()} == {first.id, second.id, third.id}


def test_a_torn_line_written_after_loading_is_not_glued_to_the_next(path: Path) -> None:
    store = ReportStore(path)
    with path.open("a") as fh:  # another process crashed mid-write while this one runs
        fh.write('{"id": "rep_torn"')
    r = store.add("s1", "closed", client="a")
    assert [x.id for x in ReportStore(path).all()] == [r.id]


def test_a_file_with_only_a_torn_header_gets_a_header(path: Path) -> None:
    path.write_text('{"type": "yizhan-rep')
    store = ReportStore(path)
    r = store.add("s1", "closed", client="a")
    assert [x.id for x in ReportStore(path).all()] == [r.id]
    assert ReportStore(path).client_hash("a") == r.client


def test_another_process_s_reports_are_seen(path: Path) -> None:
    server = ReportStore(path, refresh_interval_s=0)
    other = ReportStore(path)
    r = other.add("s1", "closed", client="a")
    assert server.for_station("s1") == [r]
    s = server.add("s1", "closed", client="b")
    assert server.needs_check("s1", None) == ["closed"]
    assert other.add("s2", "moved", client="c") in ReportStore(path).all()
    assert {x.id for x in server.all()} == {r.id, s.id} | {x.id for x in other.all()}


def test_reading_methods_look_at_the_file_at_most_once_per_interval(path: Path) -> None:
    server = ReportStore(path, refresh_interval_s=3600)
    assert server.all() == []  # looked now: the next look is in an hour
    ReportStore(path).add("s1", "closed", client="a")
    assert server.all() == []
    server.refresh(force=True)
    assert len(server.all()) == 1


def test_threads_adding_at_once(path: Path) -> None:
    store = ReportStore(path, rate_per_hour=1000)

    def work(k: int) -> None:
        for i in range(25):
            store.add(f"s{i}", "closed", client=f"c{k}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.all()) == 100 and len(ReportStore(path).all()) == 100


def test_an_append_waits_for_another_writer_s_lock(path: Path) -> None:
    store = ReportStore(path)
    other = Report("rep_other", "s2", "moved", None, None, "x" * 64, T0)
    line = json.dumps(other.as_dict(include_client=True)).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process, in the middle of its write
    os.write(fd, line[:20])
    added: list[Report] = []
    t = threading.Thread(target=lambda: added.append(store.add("s1", "closed", client="a")))
    t.start()
    t.join(0.2)
    assert t.is_alive() and added == []  # waiting for the lock
    os.write(fd, line[20:])
    os.close(fd)  # releases the lock
    t.join(5)
    assert [r.id for r in ReportStore(path).all()] == [added[0].id, "rep_other"]


APPENDER = """
import sys, time
from pathlib import Path
from yizhan.stations.reports import ReportStore
path, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
store = ReportStore(path)
for i in range(50):
    store.add(f"s{i % 7}", "closed", comment=name * 200, client=f"{name}-{i}")
"""


def test_two_processes_appending_at_once(path: Path, tmp_path: Path) -> None:
    run_together(APPENDER, str(path), str(tmp_path / "go"))
    lines = path.read_text().splitlines()
    headers = [ln for ln in lines if '"yizhan-reports"' in ln]
    reports = [Report.from_dict(json.loads(ln)) for ln in lines if ln not in headers]
    assert len(headers) == 1 and len(reports) == 100
    assert len({r.id for r in reports}) == 100
    assert {r.comment for r in reports} == {"p" * 200, "q" * 200}
    assert len(ReportStore(path).all()) == 100
