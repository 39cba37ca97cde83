"""Opening hours evaluated at a time: midnight, holidays, seasons, unknown, time zones,
the run cache, ``open_at`` parsing and heat-alert activation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_doc, make_feature
from yizhan.errors import InvalidInputError
from yizhan.stations import hours as hours_mod
from yizhan.stations.alerts import AlertStore
from yizhan.stations.hours import (
    CLOSED,
    OPEN,
    UNKNOWN,
    HoursCache,
    hours_key,
    parse_time,
    run_at,
)
from yizhan.stations.registry import from_document
from yizhan.stations.search import DEFAULT_FILTER, StationSearch

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A local time in Asia/Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# (expression, local time, expected state, expected next change or None)
CASES = [
    # across midnight
    ("Mo-Su 22:00-06:00", "2026-07-15T02:00", OPEN, "2026-07-15T06:00"),
    ("Mo-Su 22:00-06:00", "2026-07-15T21:00", CLOSED, "2026-07-15T22:00"),
    ("Mo-Su 22:00-06:00", "2026-07-15T23:59", OPEN, "2026-07-16T06:00"),
    ("Mo-Fr 18:00-24:00", "2026-07-17T23:00", OPEN, "2026-07-18T00:00"),
    # boundaries: the opening minute is open, the closing minute is not
    ("08:00-20:00", "2026-07-15T08:00", OPEN, "2026-07-15T20:00"),
    ("08:00-20:00", "2026-07-15T20:00", CLOSED, "2026-07-16T08:00"),
    # public holidays of China (1 October, National Day, is a Thursday in 2026)
    ("Mo-Fr 09:00-17:00; PH off", "2026-10-01T10:00", CLOSED, "2026-10-02T09:00"),
    ("Mo-Fr 09:00-17:00; PH off", "2026-09-30T10:00", OPEN, "2026-09-30T17:00"),
    ("PH 10:00-14:00", "2026-10-01T11:00", OPEN, "2026-10-01T14:00"),
    # seasons and date ranges
    ("Jul-Sep Mo-Su 10:00-16:00", "2026-07-15T13:00", OPEN, "2026-07-15T16:00"),
    ("Jul-Sep Mo-Su 10:00-16:00", "2026-10-15T13:00", CLOSED, "2027-07-01T10:00"),
    ("Jun-Sep 07:00-22:00; Oct-May 08:00-18:00", "2026-12-01T20:00", CLOSED, "2026-12-02T08:00"),
    ("2026 Jun 24-Jul 31 Mo-Fr 09:00-14:00", "2026-07-15T13:00", OPEN, "2026-07-15T14:00"),
    ("2026 Jun 24-Jul 31 Mo-Fr 09:00-14:00", "2027-07-15T13:00", CLOSED, None),
    # weekends, 24/7 and never
    ("Mo-Fr 09:00-17:00", "2026-07-18T10:00", CLOSED, "2026-07-20T09:00"),
    ("24/7", "2026-07-15T13:00", OPEN, None),
    ("off", "2026-07-15T13:00", CLOSED, None),
    # unknown stays unknown; a change of comment only is not a change of state
    ("Mo-Fr 09:00-17:00; Sa unknown", "2026-07-18T10:00", UNKNOWN, "2026-07-19T00:00"),
    ('Mo-Fr 08:00-12:00 "a", Mo-Fr 12:00-18:00 "b"', "2026-07-15T09:00", OPEN, "2026-07-15T18:00"),
]


@pytest.mark.parametrize(("expr", "when", "state", "change"), CASES)
def test_state_and_next_change(expr: str, when: str, state: int, change: str | None) -> None:
    st, end = run_at(hours_key(expr, "Asia/Shanghai", "CN", 113.6, 34.7), at(when))
    assert st == state
    if change is None:
        assert math.isinf(end)
    else:
        assert datetime.fromtimestamp(end, SH) == at(change)


def test_holidays_need_a_country() -> None:
    key = hours_key("Mo-Fr 09:00-17:00; PH off", "Asia/Shanghai", None, 113.6, 34.7)
    assert run_at(key, at("2026-10-01T10:00"))[0] == OPEN


def test_auto_country_uses_the_features_location() -> None:
    # 1 October is a holiday in China, not in Korea.
    expr = "Mo-Fr 09:00-17:00; PH off"
    zhengzhou = hours_key(expr, "Asia/Shanghai", "auto", 113.6, 34.7)
    seoul = hours_key(expr, "Asia/Seoul", "auto", 127.0, 37.5)
    assert zhengzhou[3] is not None and seoul[3] is not None
    assert run_at(zhengzhou, at("2026-10-01T10:00"))[0] == CLOSED
    assert run_at(seoul, datetime(2026, 10, 1, 10, tzinfo=ZoneInfo("Asia/Seoul")))[0] == OPEN


def test_key_is_shared_unless_place_matters() -> None:
    a = hours_key("08:00-20:00", "Asia/Shanghai", "CN", 113.6, 34.7)
    b = hours_key("08:00-20:00", "Asia/Shanghai", "CN", 100.1, 25.0)
    assert a == b and a[3] is None
    s1 = hours_key("sunrise-sunset", "Asia/Shanghai", "CN", 113.64, 34.71)
    s2 = hours_key("sunrise-sunset", "Asia/Shanghai", "CN", 87.6, 43.8)
    assert s1[3] == (34.7, 113.6) and s1 != s2


def test_cache_evaluates_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[datetime] = []
    real = hours_mod.run_at

    def counting(key: Any, when: datetime) -> tuple[int, float]:
        calls.append(when)
        return real(key, when)

    monkeypatch.setattr(hours_mod, "run_at", counting)
    cache = HoursCache()
    kid = cache.key_id(hours_key("08:00-20:00", "Asia/Shanghai", "CN", 113.6, 34.7))
    assert cache.key_id(hours_key("08:00-20:00", "Asia/Shanghai", "CN", 120.0, 30.0)) == kid
    t0 = at("2026-07-15T09:00").timestamp()
    for minutes in range(0, 11 * 60, 7):  # 09:00 .. 19:53: one run
        assert cache.state(kid, t0 + 60 * minutes)[0] == OPEN
    assert len(calls) == 1
    assert cache.state(kid, at("2026-07-15T20:30").timestamp())[0] == CLOSED
    assert len(calls) == 2


PARSE = [
    ("2026-07-15T13:00", "2026-07-15T13:00:00+08:00"),
    ("2026-07-15 13:00", "2026-07-15T13:00:00+08:00"),
    ("2026-07-15T05:00Z", "2026-07-15T05:00:00+00:00"),
    ("2026-07-15T13:00+09:00", "2026-07-15T13:00:00+09:00"),
    ("2026-07-15", "2026-07-15T00:00:00+08:00"),
    (" now ", "2026-07-15T12:00:00+08:00"),
    ("NOW", "2026-07-15T12:00:00+08:00"),
]


@pytest.mark.parametrize(("text", "expected"), PARSE)
def test_parse_time(text: str, expected: str) -> None:
    now = datetime(2026, 7, 15, 4, 0, tzinfo=UTC)
    got = parse_time(text, "Asia/Shanghai", now=now)
    assert got.isoformat() == expected


@pytest.mark.parametrize("text", ["tomorrow", "13:00", "2026-13-01T10:00", "", "2026-07-15T25:00"])
def test_parse_time_rejects_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_time(text, "Asia/Shanghai")
    assert info.value.field == "open_at"
    assert "Expected 'now' or an ISO 8601 time" in info.value.message
    assert repr(text) in info.value.message


def hours_search(*feats: dict[str, Any], **kw: Any) -> StationSearch:
    return StationSearch(from_document(make_doc(list(feats))), **kw)


def test_feature_without_hours_is_unknown_never_open() -> None:
    s = hours_search(make_feature("a", 113.6, 34.7), make_feature("b", 113.7, 34.7))
    ts = at("2026-07-15T13:00").timestamp()
    assert s.status(0, ts) == (None, None)
    assert s.nearest_open(113.6, 34.7, 5, DEFAULT_FILTER, ts) == []


def test_feature_timezone_overrides_the_registry_zone() -> None:
    # 09:30 in Zhengzhou is 07:30 in Urumqi (UTC+6): the Urumqi station is not open yet.
    s = hours_search(
        make_feature("zz", 113.6, 34.7, opening_hours="09:00-17:00"),
        make_feature("urumqi", 87.6, 43.8, opening_hours="09:00-17:00", timezone="Asia/Urumqi"),
    )
    ts = at("2026-07-15T09:30").timestamp()
    assert s.status(0, ts) == (True, "2026-07-15T17:00+08:00")
    assert s.status(1, ts) == (False, "2026-07-15T09:00+06:00")


def test_registry_timezone_setting() -> None:
    s = hours_search(make_feature("a", 0.0, 0.0, opening_hours="09:00-17:00"), timezone="UTC")
    assert s.status(0, at("2026-07-15T13:00").timestamp()) == (
        False,
        "2026-07-15T09:00+00:00",
    )  # 05:00 UTC


def test_unknown_timezone_is_a_validation_error() -> None:
    from yizhan.stations.validate import validate_document

    report = validate_document(make_doc([make_feature("a", 1, 1, timezone="Asia/Beijing")]))
    [err] = report.errors
    assert err.field == "properties.timezone"
    assert "Expected an IANA time zone such as Asia/Shanghai, got 'Asia/Beijing'" in err.message


@pytest.mark.parametrize(
    ("open_for_min", "expected"),
    [(0, ["closing", "later"]), (10, ["closing", "later"]), (11, ["later"]), (120, ["later"])],
)
def test_open_for_min(open_for_min: int, expected: list[str]) -> None:
    # At 16:50 "closing" (until 17:00) is 10 minutes from closing.
    s = hours_search(
        make_feature("closing", 113.600, 34.7, opening_hours="08:00-17:00"),
        make_feature("later", 113.610, 34.7, opening_hours="08:00-22:00"),
    )
    hits = s.nearest_open(
        113.6, 34.7, 5, DEFAULT_FILTER, at("2026-07-15T16:50").timestamp(), 60.0 * open_for_min
    )
    assert [s.registry.ids[h.index] for h in hits] == expected


# -- heat-alert activation -------------------------------------------------------------------


@pytest.fixture
def alert_search() -> tuple[StationSearch, AlertStore, list[datetime]]:
    now = [at("2026-07-15T08:00")]
    alerts = AlertStore(clock=lambda: now[0])
    s = hours_search(
        make_feature("centre", 113.6, 34.7, opening_hours="09:00-21:00", district="金水区",
                     activation="heat_alert"),
        make_feature("other", 113.7, 34.7, opening_hours="09:00-21:00", district="中原区",
                     activation="heat_alert"),
        make_feature("plain", 113.8, 34.7, opening_hours="09:00-21:00", district="金水区"),
        alerts=alerts,
    )  # fmt: skip
    return s, alerts, now


def test_heat_alert_feature_is_closed_without_an_alert(
    alert_search: tuple[StationSearch, AlertStore, list[datetime]],
) -> None:
    s, _, _ = alert_search
    ts = at("2026-07-15T13:00").timestamp()
    assert s.status(0, ts) == (False, None)
    assert [
        s.registry.ids[h.index] for h in s.nearest_open(113.6, 34.7, 5, DEFAULT_FILTER, ts)
    ] == ["plain"]


def test_heat_alert_opens_only_its_districts_within_hours_and_window(
    alert_search: tuple[StationSearch, AlertStore, list[datetime]],
) -> None:
    s, alerts, _ = alert_search
    alerts.add(["金水区"], at("2026-07-15T12:00"), at("2026-07-16T12:00"), "admin")
    # Before the alert: closed, and it opens when the alert starts (its hours are open then).
    assert s.status(0, at("2026-07-15T10:00").timestamp()) == (False, "2026-07-15T12:00+08:00")
    # In the alert and its hours: open until its hours close.
    assert s.status(0, at("2026-07-15T13:00").timestamp()) == (True, "2026-07-15T21:00+08:00")
    # In the alert, outside its hours: closed until 09:00, then open until the alert ends.
    assert s.status(0, at("2026-07-15T22:00").timestamp()) == (False, "2026-07-16T09:00+08:00")
    assert s.status(0, at("2026-07-16T10:00").timestamp()) == (True, "2026-07-16T12:00+08:00")
    # After the alert: closed again; another district's centre was never opened.
    assert s.status(0, at("2026-07-16T13:00").timestamp())[0] is False
    assert s.status(1, at("2026-07-15T13:00").timestamp())[0] is False
    ids = [
        s.registry.ids[h.index]
        for h in s.nearest_open(113.6, 34.7, 5, DEFAULT_FILTER, at("2026-07-15T13:00").timestamp())
    ]
    assert ids == ["centre", "plain"]


def test_alert_for_every_district(
    alert_search: tuple[StationSearch, AlertStore, list[datetime]],
) -> None:
    s, alerts, _ = alert_search
    alerts.add(["*"], at("2026-07-15T12:00"), at("2026-07-15T18:00"), "admin")
    ts = at("2026-07-15T13:00").timestamp()
    assert s.status(1, ts) == (True, "2026-07-15T18:00+08:00")


def test_heat_alert_feature_found_by_the_evaluate_all_path(
    alert_search: tuple[StationSearch, AlertStore, list[datetime]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yizhan.stations.search as search_mod

    monkeypatch.setattr(search_mod, "FALLBACK_CANDIDATES", 1)
    s, alerts, _ = alert_search
    alerts.add(["金水区"], at("2026-07-15T12:00"), at("2026-07-16T12:00"), "admin")
    ts = at("2026-07-15T13:00").timestamp()
    s._open_rate = 0.001  # force a wide first round, then the evaluate-all path
    ids = [s.registry.ids[h.index] for h in s.nearest_open(113.6, 34.7, 5, DEFAULT_FILTER, ts)]
    assert ids == ["centre", "plain"]


def test_stations_cache_stays_correct_when_time_goes_back() -> None:
    s = hours_search(make_feature("a", 113.6, 34.7, opening_hours="08:00-20:00"))
    late = at("2026-07-15T21:00").timestamp()
    early = at("2026-07-15T09:00").timestamp()
    assert s.status(0, late)[0] is False
    assert s.status(0, early)[0] is True
    assert s.status(0, early + timedelta(hours=12).total_seconds())[0] is False
