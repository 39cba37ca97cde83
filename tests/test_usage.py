"""Utilization: a small case computed by hand; recorded counts (audited, replacing the
check-ins of their day); busy now; the API; the synthetic generator."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from tests.helpers import SetClock
from yizhan.api import create_app
from yizhan.errors import InvalidInputError
from yizhan.query.search import build_search
from yizhan.query.usage import compute_usage, district_rows, open_time, unit_summary, units_of
from yizhan.query.usage_service import busy_now, parse_period, usage_stores
from yizhan.query.usage_synth import SynthParams, synthesize, write_synthetic
from yizhan.settings import Settings
from yizhan.stations.registry import from_document
from yizhan.stations.usage_files import (
    SOURCE_CHECKINS,
    SOURCE_COUNT,
    SOURCE_SYNTHETIC,
    VisitRows,
    add_days,
    load_months,
    read_month,
)

MON = date(2026, 7, 6)  # a Monday
LAST = date(2026, 7, 19)  # a Sunday: two ISO weeks


def d(offset: int) -> int:
    return (MON + timedelta(days=offset)).toordinal()


@pytest.fixture
def doc() -> dict[str, Any]:
    return make_doc(
        [
            make_feature(
                "a", 113.60, 34.75, opening_hours="Mo-Fr 08:00-18:00", capacity=10, district="东区"
            ),
            make_feature("b", 113.61, 34.75, district="东区"),  # hours unknown
            make_feature("c", 113.62, 34.75, opening_hours="24/7", district="西区"),
            make_bus(
                "bus-1",
                [
                    make_stop("s1", 113.63, 34.75, "Mo-Su 10:00-12:00"),
                    make_stop("s2", 113.64, 34.75, "Mo-Su 13:00-16:00"),
                ],
                capacity=30,
            ),
        ]
    )


@pytest.fixture
def search(doc: dict[str, Any]) -> Any:
    return build_search(Settings(), from_document(doc))


def rows() -> VisitRows:
    return VisitRows.from_records(
        [
            (d(0), "a", 9, 1, SOURCE_CHECKINS, 2),  # Monday: 3 check-ins
            (d(0), "a", 10, -1, SOURCE_CHECKINS, 1),
            (d(1), "a", 9, -1, SOURCE_CHECKINS, 4),  # Tuesday: 4 check-ins ...
            (d(1), "a", -1, -1, SOURCE_COUNT, 50),  # ... but the manager counted 50
            (d(9), "a", 14, 5, SOURCE_CHECKINS, 7),  # Wednesday of week 2
            (d(2), "bus-1\ts2", 14, -1, SOURCE_SYNTHETIC, 21),
            (d(3), "b", -1, -1, SOURCE_CHECKINS, 5),
            (d(20), "a", 9, -1, SOURCE_CHECKINS, 99),  # outside the period
            (d(2), "removed-station", 9, -1, SOURCE_CHECKINS, 99),  # not in the registry
        ]
    )


def test_utilization_equals_a_hand_computation(search: Any) -> None:
    units = units_of(search)
    assert units.keys == ["a", "b", "c", "bus-1\ts1", "bus-1\ts2", "bus-1"]
    usage = compute_usage(rows(), units, MON, LAST, open_time(units.hour_keys, MON, LAST))
    a, b, c, s1, s2 = 0, 1, 2, 3, 4
    # a: open 10 weekdays x 10 h = 100 h; visits 3 + 50 (the count replaces Tuesday's 4) + 7
    assert usage.open_hours[a] == 100.0
    assert usage.visits[a] == 60
    assert usage.per_open_hour[a] == pytest.approx(0.6)
    assert usage.utilization[a] == pytest.approx(60 / (10 * 100))
    assert usage.days_with_data[a] == 3
    assert usage.weekly[a].tolist() == [53, 7] and usage.weekly_open_hours[a].tolist() == [50, 50]
    assert usage.monthly[a].tolist() == [60]
    assert usage.hourly[a, 9] == 2 and usage.hourly[a, 10] == 1 and usage.hourly[a, 14] == 7
    assert usage.trades[a].tolist() == [0, 2, 0, 0, 0, 7]  # courier 2, other 7
    # b: hours unknown -> no open hours, nothing per open hour
    assert (
        usage.visits[b] == 5
        and math.isnan(usage.open_hours[b])
        and math.isnan(usage.per_open_hour[b])
    )
    # c: 24/7, no visits, no capacity
    assert (
        usage.open_hours[c] == 14 * 24 and usage.visits[c] == 0 and math.isnan(usage.utilization[c])
    )
    # the bus: stop s2 stands 13:00-16:00 every day (42 h), capacity 30
    assert usage.open_hours[s1] == 28 and usage.open_hours[s2] == 42
    assert usage.utilization[s2] == pytest.approx(21 / (30 * 42))
    summary = unit_summary(usage, a)
    assert summary["visits_per_open_hour"] == 0.6 and summary["utilization"] == 0.06
    assert [w["week"] for w in summary["weekly"]] == ["2026-07-06", "2026-07-13"]
    east = district_rows(usage, "东区")[0]
    # visits per open hour over the units with known hours; utilization over those with a capacity
    assert east["visits"] == 65 and east["open_hours"] == 100
    assert east["visits_per_open_hour"] == 0.6 and east["utilization"] == 0.06


def test_trend_slope_and_change(search: Any) -> None:
    units = units_of(search)
    first, last = date(2026, 6, 1), date(2026, 7, 26)  # eight weeks from a Monday
    recs = [
        ((first + timedelta(days=7 * w)).toordinal(), "c", 12, -1, SOURCE_CHECKINS, 168 * (w + 1))
        for w in range(8)
    ]
    usage = compute_usage(
        VisitRows.from_records(recs), units, first, last, open_time(units.hour_keys, first, last)
    )
    slope, change = usage.trend()
    assert slope[2] == pytest.approx(1.0)  # +168 visits a week over 168 open hours
    # last four weeks 5..8 (26) against 1..4 (10): +160 %
    assert change[2] == pytest.approx(160.0)


def test_a_period_is_checked() -> None:
    today = date(2026, 7, 15)
    assert parse_period(None, None, today) == (date(2026, 6, 18), today)
    with pytest.raises(InvalidInputError, match="from: Expected a day not after to"):
        parse_period("2026-07-20", "2026-07-01", today)
    with pytest.raises(InvalidInputError, match="to: Expected a period of at most 731 days"):
        parse_period("2020-01-01", "2026-07-01", today)


def test_busy_now_needs_enough_check_ins(tmp_path: Path, doc: dict[str, Any]) -> None:
    now = datetime(2026, 7, 15, 6, 30, tzinfo=UTC)  # 14:30 local, a Wednesday
    clock = SetClock(now)
    reg_path = tmp_path / "reg.geojson"
    reg = from_document(doc, path=reg_path)
    settings = Settings(registry=reg_path)
    search = build_search(settings, reg)
    stores = usage_stores(settings, reg_path, clock=clock)
    # history: one check-in per open hour at "a" over the four weeks before
    hist = [
        ((date(2026, 6, 17) + timedelta(days=i)).toordinal(), "a", h, -1, SOURCE_CHECKINS, 1)
        for i in range(28)
        if (date(2026, 6, 17) + timedelta(days=i)).weekday() < 5
        for h in range(8, 18)
    ]
    assert stores.directory is not None
    add_days(stores.directory, VisitRows.from_records(hist), {r[0] for r in hist})
    for k in range(2):
        stores.checkins.add("a", client=f"c{k}", now=now - timedelta(minutes=10 * k))
    assert busy_now(search, stores, "a") is None  # two are too few to say anything
    stores.checkins.add("a", client="c9", now=now - timedelta(minutes=50))
    stores.checkins.add("a", client="c8", now=now - timedelta(minutes=70))  # over an hour ago
    busy = busy_now(search, stores, "a")
    assert busy is not None and busy["checkins_last_hour"] == 3
    assert busy["typical_checkins_per_open_hour"] == 1.0 and busy["level"] == "busier_than_usual"
    assert busy["per_capacity"] == 0.3
    stores.close()


# -- the API and recorded counts ---------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path, doc: dict[str, Any]) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    reg = tmp_path / "reg.geojson"
    reg.write_text(json.dumps(doc))
    app = create_app(
        Settings(registry=reg, reload_interval_s=0, admin_token="adm-0123456789abcdef")
    )
    with TestClient(app) as c:
        tokens = app.state.tokens
        toks = {
            "admin": "adm-0123456789abcdef",
            "manager_a": tokens.create("manager", name="站长 A", stations=["a"])[0],
            "manager_b": tokens.create("manager", name="站长 B", stations=["b"])[0],
            "operator": tokens.create("operator", name="op", operator="op-a")[0],
        }
        state = app.state.settings.state_dir  # tests keep state apart (conftest)
        yield c, toks, state if state is not None else tmp_path


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def test_recorded_counts_are_audited_and_replace_check_ins(api: Any) -> None:
    c, toks, tmp = api
    day = (date.today() - timedelta(days=2)).isoformat()
    url = f"/stations/a/visits/{day}"
    assert c.put(url, json={"count": 5}).status_code == 401
    assert c.put(url, json={"count": 5}, headers=auth(toks["manager_b"])).status_code == 403
    r = c.put(url, json={"count": 40, "note": "door counter"}, headers=auth(toks["manager_a"]))
    assert r.status_code == 201, r.text
    hours = [0] * 24
    hours[9], hours[10] = 20, 22
    r = c.put(url, json={"count": 42, "hours": hours}, headers=auth(toks["manager_a"]))
    assert r.status_code == 200 and r.json()["count"] == 42
    lines = [json.loads(x) for x in (tmp / "reg.geojson.visits.jsonl").read_text().splitlines()]
    assert [x["action"] for x in lines] == ["visits", "visits"]
    assert lines[0]["actor"]["name"] == "站长 A" and lines[0]["reason"] == "door counter"
    assert lines[1]["changes"][0] == {"path": f"visits.{day}", "before": 40, "after": 42}
    assert lines[1]["before"]["count"] == 40 and lines[1]["after"]["hours"] == hours
    # the operator of the bus records a stop's count; a stop is required for a bus
    r = c.put(
        f"/stations/bus-1/visits/{day}",
        json={"count": 9, "stop_id": "s2"},
        headers=auth(toks["operator"]),
    )
    assert r.status_code == 201
    r = c.put(f"/stations/bus-1/visits/{day}", json={"count": 9}, headers=auth(toks["operator"]))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "stop_id"]
    bad = {"count": 5, "hours": [1] * 24}
    r = c.put(url, json=bad, headers=auth(toks["admin"]))
    assert r.status_code == 422 and "hours" in r.text
    future = (date.today() + timedelta(days=2)).isoformat()
    assert (
        c.put(
            f"/stations/a/visits/{future}", json={"count": 1}, headers=auth(toks["admin"])
        ).status_code
        == 422
    )
    # the usage of the day is the count (check-ins that day would not add to it)
    u = c.get(f"/stations/a/usage?from={day}&to={day}").json()
    assert u["visits"] == 42 and u["usage"]["sources"]["count"] == 42
    assert u["usage"]["by_hour"][9] == 20
    listed = c.get(f"/stations/a/visits?from={day}&to={day}").json()["counts"]
    assert listed[0]["count"] == 42 and listed[0]["by"] == {
        "role": "manager",
        "name": None,
        "token_id": None,
    }
    bus = c.get(f"/stations/bus-1/usage?from={day}&to={day}").json()
    assert [s["stop_id"] for s in bus["stops"]] == ["s1", "s2", None]
    assert bus["stops"][1]["visits"] == 9 and bus["kind"] == "cooling_bus"


def test_usage_endpoints(api: Any) -> None:
    c, _, tmp = api
    directory = tmp / "reg.geojson.usage"
    add_days(directory, rows(), set(range(d(0), d(13) + 1)))
    r = c.get("/stations/a/usage?from=2026-07-06&to=2026-07-19")
    assert r.status_code == 200
    body = r.json()
    assert body["visits"] == 60 and body["open_hours"] == 100 and body["busy_now"] is None
    assert body["usage"]["utilization"] == 0.06 and body["synthetic_share"] == 0.0
    r = c.get("/analysis/usage?from=2026-07-06&to=2026-07-19&district=东区")
    assert r.status_code == 200
    assert r.json()["districts"][0]["visits"] == 65 and r.json()["units"][0]["id"] == "a"
    assert c.get("/analysis/usage?district=北区").status_code == 422
    assert c.get("/stations/nope/usage").status_code == 404
    assert c.get("/stations/a/usage?from=2026-07-20&to=2026-07-01").status_code == 422
    assert c.get("/stations/a/usage?from=july").status_code == 422


# -- the synthetic generator ---------------------------------------------------------------------------


def test_the_generator_is_reproducible_and_marks_its_data(tmp_path: Path, search: Any) -> None:
    units = units_of(search)
    cats: list[str | None] = ["union_station"] * len(units)
    p1 = SynthParams(seed=1, days=21)
    a = synthesize(units, cats, MON, p1)
    b = synthesize(units, cats, MON, p1)
    other = synthesize(units, cats, MON, SynthParams(seed=2, days=21))
    assert len(a) > 100 and bool((a.source == SOURCE_SYNTHETIC).all())
    for col in ("day", "unit", "hour", "trade", "count"):
        assert np.array_equal(getattr(a, col), getattr(b, col))
    assert not np.array_equal(a.count.sum(), other.count.sum()) or len(a) != len(other)
    # a day with real data is kept; the rest is written, marked with the parameters
    real = VisitRows.from_records([(d(3), "a", 9, -1, SOURCE_CHECKINS, 4)])
    add_days(tmp_path, real, [d(3)])
    out = write_synthetic(tmp_path, units, cats, MON + timedelta(days=20), p1)
    assert out["days_written"] == 20 and out["days_with_real_data_kept"] == ["2026-07-09"]
    held = load_months(tmp_path, MON, MON + timedelta(days=20))
    assert int(held.rows.count[held.rows.day == d(3)].sum()) == 4
    assert held.meta["synthetic"][str(d(0))]["seed"] == 1
    assert str(d(3)) not in held.meta["synthetic"]
    # written again (another seed): the synthetic days are replaced, not added to
    write_synthetic(tmp_path, units, cats, MON + timedelta(days=20), SynthParams(seed=2, days=21))
    again = read_month(tmp_path / "visits-2026-07.npz")
    syn = again.rows.source == SOURCE_SYNTHETIC
    assert int(again.rows.count[syn].sum()) == int(other.count[other.day != d(3)].sum())
