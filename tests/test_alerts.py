"""Heat alerts: the store (windows, districts, merging, persistence, expiry) and the
admin-only HTTP routes that make ``activation: heat_alert`` features open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.helpers import SetClock
from yizhan.api import create_app
from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.settings import Settings
from yizhan.stations.alerts import AlertStore
from yizhan.stations.registry import from_document

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def store() -> AlertStore:
    return AlertStore(clock=SetClock(at("2026-07-15T08:00")))


ADD_ERRORS = [
    # (districts, from, until, field, words)
    ([], "2026-07-15T09:00", "2026-07-15T18:00", "districts", "at least one district"),
    (["  "], "2026-07-15T09:00", "2026-07-15T18:00", "districts", "at least one district"),
    (["金水"], "2026-07-15T09:00", "2026-07-15T18:00", "districts", "got '金水'"),
    (["金水区"], "2026-07-15T18:00", "2026-07-15T09:00", "until", "Expected a time after from"),
    (["金水区"], "2026-07-14T09:00", "2026-07-15T07:00", "until", "window is in the past"),
    (["金水区"], "2026-07-15T09:00", "2026-07-30T09:00", "until", "at most 14 days"),
]


@pytest.mark.parametrize(("districts", "start", "until", "field", "words"), ADD_ERRORS)
def test_bad_alerts_name_the_field(
    store: AlertStore, districts: list[str], start: str, until: str, field: str, words: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.add(districts, at(start), at(until), "admin", known_districts={"金水区", "中原区"})
    assert info.value.field == field and words in info.value.message


def test_unknown_district_message_lists_the_known_ones(store: AlertStore) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.add(
            ["Jinshui"],
            at("2026-07-15T09:00"),
            at("2026-07-15T18:00"),
            "a",
            known_districts=["金水区"],
        )
    assert "Expected districts named in the registry (金水区) or '*'" in info.value.message


def test_cover_merges_overlapping_and_back_to_back_alerts(store: AlertStore) -> None:
    store.add(["金水区"], at("2026-07-15T09:00"), at("2026-07-15T18:00"), "a")
    store.add(["金水区", "中原区"], at("2026-07-15T18:00"), at("2026-07-16T12:00"), "a")
    store.add(["*"], at("2026-07-17T09:00"), at("2026-07-17T18:00"), "a")
    t = at("2026-07-15T10:00").timestamp()
    assert store.cover_until("金水区", t) == at("2026-07-16T12:00").timestamp()
    assert store.cover_until("中原区", t) is None
    assert store.next_cover("中原区", t) == (
        at("2026-07-15T18:00").timestamp(),
        at("2026-07-16T12:00").timestamp(),
    )
    assert (
        store.cover_until(None, at("2026-07-17T10:00").timestamp())
        == at("2026-07-17T18:00").timestamp()
    )
    assert store.cover_until("二七区", at("2026-07-16T13:00").timestamp()) is None
    assert (
        store.next_cover("二七区", at("2026-07-16T13:00").timestamp())[0]
        == at("2026-07-17T09:00").timestamp()
    )  # type: ignore[index]


def test_alerts_persist_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "r.geojson.alerts.json"
    clock = SetClock(at("2026-07-15T08:00"))
    s = AlertStore(path, clock=clock)
    a = s.add(["金水区"], at("2026-07-15T09:00"), at("2026-07-15T18:00"), "admin", "orange")
    b = s.add(["*"], at("2026-07-16T09:00"), at("2026-07-16T18:00"), "admin")
    assert [x["alert_id"] for x in json.loads(path.read_text())["alerts"]] == [
        a.alert_id,
        b.alert_id,
    ]
    assert [x.as_dict() for x in AlertStore(path, clock=clock).all()] == [a.as_dict(), b.as_dict()]
    clock.now = at("2026-07-15T19:00")
    reloaded = AlertStore(path, clock=clock)
    assert [x.alert_id for x in reloaded.all()] == [b.alert_id]
    assert [x["alert_id"] for x in json.loads(path.read_text())["alerts"]] == [b.alert_id]
    reloaded.remove(b.alert_id)
    with pytest.raises(NotFoundError):
        reloaded.remove(b.alert_id)
    assert json.loads(path.read_text())["alerts"] == []


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def doc_with_centre(small_doc: dict[str, Any]) -> dict[str, Any]:
    small_doc["features"][6]["properties"].update(
        {"activation": "heat_alert", "opening_hours": "24/7", "category": "cooling_center"}
    )  # zz-06, 金水区
    for f in small_doc["features"][:6]:
        f["properties"]["opening_hours"] = "Mo-Su 00:00-01:00"
    return small_doc


@pytest.fixture
def api(doc_with_centre: dict[str, Any], tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        operator_tokens={"tok-a": "op-a"}, admin_tokens=["tok-admin"], state_dir=tmp_path
    )
    with TestClient(create_app(settings, registry=from_document(doc_with_centre))) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "missing bearer token"),
        (auth("nope"), 401, "invalid bearer token"),
        (auth("tok-a"), 403, "needs an admin token"),
        (auth("tok-admin"), 201, None),
    ],
)
def test_post_alert_needs_an_admin_token(
    api: TestClient, headers: dict[str, str], status: int, words: str | None
) -> None:
    body = {"districts": ["金水区"], "from": iso(-1), "until": iso(5)}
    r = api.post("/alerts", json=body, headers=headers)
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"districts": ["Atlantis"]}, "districts", "got 'Atlantis'"),
        ({"districts": []}, "districts", "at least 1"),
        ({"from": "2020-01-01T00:00", "until": "2020-01-02T00:00"}, "until", "in the past"),
        ({"from": "later"}, "from", "datetime"),
    ],
)
def test_bad_alert_bodies_are_422(
    api: TestClient, change: dict[str, Any], field: str, words: str
) -> None:
    body = {"districts": ["金水区"], "from": iso(-1), "until": iso(5), **change}
    r = api.post("/alerts", json=body, headers=auth("tok-admin"))
    assert r.status_code == 422, r.text
    [err] = r.json()["detail"]
    assert err["loc"][0] == "body" and err["loc"][-1] == field and words in err["msg"]


def test_alert_opens_the_cooling_centre_in_nearest(api: TestClient) -> None:
    params = {"lon": 113.66, "lat": 34.75, "k": 1, "category": "cooling_center", "open_at": "now"}
    assert api.get("/nearest", params=params).json()["features"] == []
    r = api.post(
        "/alerts",
        json={"districts": ["金水区"], "from": iso(-1), "until": iso(5), "note": "橙色预警"},
        headers=auth("tok-admin"),
    )
    alert = r.json()
    [f] = api.get("/nearest", params=params).json()["features"]
    assert f["id"] == "zz-06" and f["properties"]["open_now"] is True
    # It closes when the alert ends.
    end = datetime.fromisoformat(alert["until"]).astimezone(SH).isoformat(timespec="minutes")
    assert f["properties"]["next_change"] == end
    listed = api.get("/alerts").json()["alerts"]
    assert [a["alert_id"] for a in listed] == [alert["alert_id"]] and listed[0]["active"] is True
    assert api.get("/stations/zz-06").json()["properties"]["open_now"] is True
    assert api.delete(f"/alerts/{alert['alert_id']}", headers=auth("tok-a")).status_code == 403
    assert api.delete(f"/alerts/{alert['alert_id']}", headers=auth("tok-admin")).status_code == 200
    assert api.get("/nearest", params=params).json()["features"] == []
    assert api.delete(f"/alerts/{alert['alert_id']}", headers=auth("tok-admin")).status_code == 404
