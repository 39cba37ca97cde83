"""Station scores: each component reproduced by hand from the data, the minimum-data rule,
ties, the managers' ranking from the audit log, and the weights file."""

from __future__ import annotations

import io
import json
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_doc, make_feature
from tests.helpers import SetClock
from yizhan.errors import InvalidInputError
from yizhan.query.ranking import (
    Period,
    competition_ranks,
    find_station,
    parse_award_period,
    rank_managers,
    rank_stations,
    score_stations,
)
from yizhan.query.search import build_search
from yizhan.query.usage_service import usage_stores
from yizhan.settings import Settings
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.registry import load_registry
from yizhan.stations.reports import ReportStore
from yizhan.stations.scoring import COMPONENTS, DEFAULT_RULES, load_rules, parse_rules
from yizhan.stations.tokens import Principal, TokenRecord
from yizhan.stations.usage_files import SOURCE_CHECKINS, VisitRows, add_days

JULY = Period("2026-07", date(2026, 7, 1), date(2026, 7, 31))
MANAGER = Principal("站长 V", "manager", frozenset({"v"}), token_id="tok_0000000000000001")


def utc(month: int, day: int, hour: int = 8) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    doc = make_doc(
        [
            make_feature(
                "v", 113.60, 34.75, district="东区", capacity=10, opening_hours="Mo-Su 06:00-20:00",
                amenities=["drinking_water", "toilet", "seating", "hot_meals", "wheelchair_accessible"],
            ),
            make_feature(
                "w", 113.61, 34.75, district="东区", amenities=["drinking_water", "toilet"],
                guessed=["amenities"], last_verified_at="2026-04-17",
            ),
            make_feature("x", 113.62, 34.75, district="西区", status="planned"),
        ]
    )  # fmt: skip
    reg_path = tmp_path / "reg.geojson"
    reg_path.write_text(json.dumps(doc))
    clock = SetClock(utc(7, 10))
    settings = Settings(registry=reg_path, state_dir=tmp_path / "state")
    reg = load_registry(reg_path)
    store = RegistryStore(
        reg,
        lambda r: build_search(settings, r),
        audit_path=tmp_path / "state" / "audit.jsonl",
        clock=clock,
    )
    reports = ReportStore(None, clock=clock)
    reports.add("v", "no_water", client="a", now=utc(7, 10))
    clock.now = utc(7, 13)
    store.verify("v", MANAGER)  # resolves the first report after 3 days
    reports.add("v", "closed", client="b", now=utc(7, 20))  # still open at the end
    reports.add("v", "all_good", client="c", now=utc(7, 21))  # not a problem
    stores = usage_stores(settings, reg_path, clock=clock)
    assert stores.directory is not None
    from_photo = stores.photos
    from_photo.clock = SetClock(utc(7, 2))
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buf, "JPEG")
    from_photo.add("v", buf.getvalue(), MANAGER, taken_on=date(2026, 6, 1))
    recs = [
        (date(2026, 7, 1 + 3 * i).toordinal(), "v", 12, -1, SOURCE_CHECKINS, 62) for i in range(10)
    ]
    recs += [(date(2026, 7, 2 + i).toordinal(), "w", 12, -1, SOURCE_CHECKINS, 5) for i in range(3)]
    add_days(stores.directory, VisitRows.from_records(recs), {r[0] for r in recs})
    return {"store": store, "reports": reports, "stores": stores, "settings": settings}


def test_a_score_s_components_are_reproducible_from_the_data(world: dict[str, Any]) -> None:
    store, reports, stores = world["store"], world["reports"], world["stores"]
    table = score_stations(store.search, stores, reports, store.audit, JULY)
    assert table.ids == ["v", "w"]  # the planned station is not scored
    v = table.row(find_station(table, "v"))
    got = {c["component"]: c["value"] for c in v["components"]}
    speed = (30 - 3) / (30 - 2)  # resolved in 3 days: 1 within 2 days, 0 at 30
    hand = {
        "verification": 1.0,  # verified on 13 July: 18 days before the end, within 30
        "photo": 1.0,  # taken 1 June, within 365 days
        "reports": ((1 - 0.25 * 1) + speed) / 2,  # one open, one resolved
        "hours": 0.85,  # open all of 06:00-20:00 and none of the rest
        "hardships": 1.0,  # food (hot_meals), water, toilet, rest (seating)
        "accessibility": 1.0,
        "utilization": min(1.0, 620 / (10 * 31 * 14) / 0.3),  # 620 visits, 434 open hours
    }
    assert got == {c: round(x, 4) for c, x in hand.items()}
    weights = load_rules().weights
    expected = 100 * sum(weights[c] * v for c, v in hand.items()) / sum(weights.values())
    assert v["score"] == round(expected, 1) and v["ranked"] is True
    assert sum(c["points"] for c in v["components"]) == pytest.approx(expected, abs=0.05)
    detail = {c["component"]: c["detail"] for c in v["components"]}
    assert detail["reports"] == {"problem_reports": 2, "open": 1, "resolution_days": [3.0]}
    assert detail["verification"] == {"verified_on": "2026-07-13"}
    assert detail["utilization"]["utilization"] == round(620 / 4340, 4)


def test_too_little_data_is_marked_not_ranked(world: dict[str, Any]) -> None:
    store, reports, stores = world["store"], world["reports"], world["stores"]
    table = score_stations(store.search, stores, reports, store.audit, JULY)
    w = table.row(find_station(table, "w"))
    comps = {c["component"]: c for c in w["components"]}
    # verified 17 April: 105 days before 31 July -> (180 - 105) / (180 - 30)
    assert comps["verification"]["value"] == 0.5
    assert comps["photo"]["value"] == 0.0 and comps["accessibility"]["value"] == 0.0
    assert comps["hardships"]["value"] == 0.25  # water and toilet, guessed: half each, / 4
    assert comps["hours"]["value"] is None and comps["utilization"]["value"] is None
    assert w["known_weight_share"] == 0.7
    assert w["ranked"] is False
    assert w["not_ranked_because"] == ["visit data on 3 days of the period, 7 needed"]
    rows = rank_stations(table, "东区")
    assert [(r["id"], r["rank"]) for r in rows] == [("v", 1), ("w", None)]


def test_managers_are_ranked_on_their_stations_and_their_work(world: dict[str, Any]) -> None:
    store, reports, stores = world["store"], world["reports"], world["stores"]
    table = score_stations(store.search, stores, reports, store.audit, JULY)
    me = TokenRecord(MANAGER.token_id or "", "manager", MANAGER.name, ("v",))
    idle = TokenRecord("tok_0000000000000002", "manager", "站长 W", ("w",))
    rows = rank_managers(table, [me, idle], store.audit, reports, store.search)
    assert [(r["token_id"], r["rank"]) for r in rows] == [(me.token_id, 1), (idle.token_id, None)]
    top = rows[0]
    assert top["verifications"] == 1 and top["problem_reports"] == 2
    verify = 1 / (31 / 30.44)  # one verification of one station in a 31-day month
    resolve = ((30 - 3) / 28 + 0.0) / 2  # one resolved by this manager in 3 days, one open
    station = table.score[0] / 100
    assert top["score"] == round(100 * (0.6 * station + 0.2 * verify + 0.2 * resolve), 1)
    assert rows[1]["not_ranked_because"] == ["0 ranked stations, 1 needed"]


def test_ties_share_a_rank() -> None:
    assert competition_ranks([90.04, 90.0, 85.0, 85.0, 80.0]) == [1, 1, 3, 3, 5]
    assert competition_ranks([]) == []


def test_periods() -> None:
    today = date(2026, 8, 3)
    assert parse_award_period("2026-07", today) == JULY
    assert parse_award_period("2026", today).last == date(2026, 12, 31)
    assert parse_award_period(None, today).label == "2026-08"
    for bad in ("2026-13", "July", "2027-01"):
        with pytest.raises(InvalidInputError, match="period"):
            parse_award_period(bad, today)


def test_the_weights_file_is_checked(tmp_path: Path) -> None:
    doc = tomllib.loads(DEFAULT_RULES.read_text())
    rules = parse_rules(doc, "x.toml")
    assert set(rules.weights) == set(COMPONENTS) and sum(rules.weights.values()) == 100
    for section, key, value, message in [
        ("weights", "photo", -1, "weights.photo: Expected 0 to 1000"),
        ("hours", "day_end", "05:00", "hours.day_end: Expected a time after hours.day_start"),
        ("hours", "day_start", "6am", "hours.day_start: Expected a time HH:MM"),
        ("minimum", "usage_days", 1.5, "minimum.usage_days: Expected a whole number"),
    ]:
        bad = json.loads(json.dumps(doc))
        bad[section][key] = value
        with pytest.raises(InvalidInputError, match=message):
            parse_rules(bad, "x.toml")
    bad = json.loads(json.dumps(doc))
    del bad["weights"]["photo"]
    with pytest.raises(InvalidInputError, match=r"weights\.photo: missing"):
        parse_rules(bad, "x.toml")
    path = tmp_path / "w.toml"
    path.write_text(DEFAULT_RULES.read_text().replace("photo = 10 ", "photo = 0 "))
    assert load_rules(path).weights["photo"] == 0
    path.write_text("[weights\n")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_rules(path)


def test_the_weights_change_the_score(world: dict[str, Any], tmp_path: Path) -> None:
    store, reports = world["store"], world["reports"]
    path = tmp_path / "only-hours.toml"
    text = DEFAULT_RULES.read_text()
    for c in COMPONENTS:
        text = text.replace(f"\n{c} = ", f"\n{c} = 0 #", 1)
    path.write_text(text.replace("\nhours = 0 #", "\nhours = 1 #", 1))
    settings = Settings(
        registry=world["settings"].registry,
        state_dir=world["settings"].state_dir,
        score_weights=path,
    )
    stores = usage_stores(settings, settings.registry)
    table = score_stations(store.search, stores, reports, store.audit, JULY)
    assert table.score[0] == pytest.approx(85.0)  # only hours counts: 0.85
    assert np.isnan(table.score[1])  # w's hours are unknown: nothing known
