"""Proposed stations (issue 15, item 5): the store (``yizhan.stations.proposals``), who may
decide (``yizhan.query.proposals``) and the API (``/proposals``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from tests.helpers import SetClock
from yizhan.api import create_app
from yizhan.errors import ConflictError, InvalidInputError, NotFoundError, RateLimitedError
from yizhan.query.proposals import proposals_geojson, station_feature
from yizhan.settings import Settings
from yizhan.stations.proposals import ProposalStore
from yizhan.stations.tokens import PUBLIC, Principal

ADMIN = "admin-token-for-the-proposal-tests"
T0 = datetime(2026, 7, 15, 8, 0, tzinfo=UTC)
ADMIN_P = Principal("Admin", "admin")


def registry_doc() -> dict[str, Any]:
    """Two districts, a station in each (a1 in 中原区, b1 in 金水区)."""
    return make_doc(
        [
            make_feature("a1", 113.60, 34.75, district="中原区", opening_hours="24/7"),
            make_feature("b1", 113.70, 34.78, district="金水区", opening_hours="24/7"),
        ]
    )


# -- the store -----------------------------------------------------------------------------


def test_store_keeps_proposals_and_decisions_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "reg.geojson.proposals.jsonl"
    clock = SetClock(T0)
    store = ProposalStore(path, clock=clock)
    p = store.add(
        "  建设路休息室  ",
        [113.6, 34.75],
        client="10.0.0.1",
        amenities=["drinking_water", "seating"],
        hours="每天 7:00-19:00",
        location_source="gps",
        district="中原区",
    )
    assert p.name == "建设路休息室" and p.status == "pending" and p.id.startswith("prop_")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["type"] == "yizhan-proposals" and len(lines[0]["salt"]) == 32
    assert lines[1]["event"] == "proposal" and "10.0.0.1" not in path.read_text()
    # Another process (a second store on the file) sees it, and decides it once.
    other = ProposalStore(path, clock=clock)
    assert [q.id for q in other.list()] == [p.id]
    done = other.decide(p.id, "rejected", ADMIN_P, reason="已有驿站")
    assert done.status == "rejected" and done.decision is not None
    assert done.decision.by == {"role": "admin", "name": "Admin", "token_id": None}
    with pytest.raises(ConflictError, match="already rejected"):
        store.decide(p.id, "accepted", ADMIN_P)  # reads the other's decision first
    assert store.get(p.id).status == "rejected"
    assert [q.id for q in store.list("rejected")] == [p.id] and store.list("pending") == []
    # The client's hash is stable (rate limits survive a restart), never the address.
    assert ProposalStore(path).client_hash("10.0.0.1") == store.client_hash("10.0.0.1")


def test_store_skips_a_torn_last_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.jsonl"
    store = ProposalStore(path)
    store.add("A", [113.6, 34.75], client="c")
    with path.open("ab") as f:
        f.write(b'{"event": "proposal", "id": "prop_torn')
    again = ProposalStore(path)
    assert [p.name for p in again.list()] == ["A"]
    assert "incomplete last line" in caplog.text
    again.add("B", [113.6, 34.75], client="c")  # written on a line of its own
    assert [p.name for p in ProposalStore(path).list()] == ["B", "A"]


def test_store_rate_limits_per_client(tmp_path: Path) -> None:
    clock = SetClock(T0)
    store = ProposalStore(tmp_path / "p.jsonl", rate_per_hour=2, clock=clock)
    store.add("A", [113.6, 34.75], client="c1")
    clock.now = T0 + timedelta(minutes=10)
    store.add("B", [113.6, 34.75], client="c1")
    store.add("C", [113.6, 34.75], client="c2")  # another client
    with pytest.raises(RateLimitedError) as exc:
        store.add("D", [113.6, 34.75], client="c1")
    assert exc.value.retry_after_s == 50 * 60  # when the first one is an hour old
    clock.now = T0 + timedelta(hours=1, seconds=1)
    store.add("D", [113.6, 34.75], client="c1")
    # A cap on proposals waiting for a decision (the disk is not filled by anyone).
    capped = ProposalStore(None, max_pending=1)
    capped.add("A", [113.6, 34.75], client="c1")
    with pytest.raises(RateLimitedError, match="waiting for a decision"):
        capped.add("B", [113.6, 34.75], client="c2")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"location": [113.6]}, "location"),
        ({"location": [200, 34]}, "location"),
        ({"location": None}, "location"),
        ({"amenities": ["spa"]}, "amenities"),
        ({"amenities": ["toilet", "toilet"]}, "amenities"),
        ({"hours": "x" * 501}, "hours"),
        ({"comment": "x" * 1001}, "comment"),
        ({"location_source": "ip"}, "location_source"),
    ],
)
def test_store_refuses_bad_input_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"name": "A", "location": [113.6, 34.75], **kwargs}
    with pytest.raises(InvalidInputError) as exc:
        ProposalStore(None).add(args.pop("name"), args.pop("location"), client="c", **args)
    assert exc.value.field == field


def test_decide_needs_a_reason_to_reject_and_a_known_id() -> None:
    store = ProposalStore(None)
    p = store.add("A", [113.6, 34.75], client="c")
    with pytest.raises(InvalidInputError) as exc:
        store.decide(p.id, "rejected", ADMIN_P)
    assert exc.value.field == "reason"
    with pytest.raises(InvalidInputError):
        store.decide(p.id, "maybe", ADMIN_P)
    with pytest.raises(NotFoundError):
        store.decide("prop_nope", "rejected", ADMIN_P, reason="x")

    def refuse(_: Any) -> str:
        raise InvalidInputError("properties.opening_hours", "bad")

    with pytest.raises(InvalidInputError):
        store.decide(p.id, "accepted", ADMIN_P, create=refuse)
    assert store.get(p.id).status == "pending"  # a refused station decides nothing


def test_station_feature_of_a_proposal() -> None:
    store = ProposalStore(None, clock=SetClock(T0))
    p = store.add(
        "休息室",
        [113.6, 34.75],
        client="c",
        amenities=["toilet"],
        hours="周一至周五 9:00-17:00",
        district="中原区",
    )
    f = station_feature(p, ADMIN_P)
    assert f["id"] == "yz-p-" + p.id.removeprefix("prop_")
    props = f["properties"]
    assert props["opening_hours_text"] == "周一至周五 9:00-17:00"
    assert props["opening_hours"] == "Mo-Fr 09:00-17:00"  # converted where it can be
    assert (
        props["source"]
        == f"proposal {p.id} (suggested by a worker on 2026-07-15, accepted by Admin)"
    )
    assert props["district"] == "中原区" and props["amenities"] == ["toilet"]
    f = station_feature(
        p, ADMIN_P, {"category": "union_station", "district": None}, [113.61, 34.76]
    )
    assert f["properties"]["category"] == "union_station" and "district" not in f["properties"]
    assert f["geometry"]["coordinates"] == [113.61, 34.76]
    odd = store.add("B", [113.6, 34.75], client="c2", hours="看心情")
    assert "opening_hours" not in station_feature(odd, ADMIN_P)["properties"]


# -- the API -------------------------------------------------------------------------------


@dataclass
class Env:
    client: TestClient
    path: Path
    tokens: dict[str, str]

    def auth(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}

    def propose(self, **body: Any) -> Any:
        return self.client.post(
            "/proposals", json={"name": "新驿站", "location": [113.601, 34.751], **body}
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(registry_doc()))
    settings = Settings(
        registry=path,
        state_dir=tmp_path / "state",
        admin_token=ADMIN,
        reload_interval_s=0,
        report_rate_per_hour=5,
    )
    with TestClient(create_app(settings)) as client:
        ts = client.app.state.tokens  # type: ignore[attr-defined]
        tokens = {"admin": ADMIN}
        tokens["manager_a"], _ = ts.create("manager", name="Li (a1)", stations=["a1"])
        tokens["manager_b"], _ = ts.create("manager", name="Wang (b1)", stations=["b1"])
        tokens["operator"], _ = ts.create("operator", name="Union ops", operator="union")
        yield Env(client, path, tokens)


def test_anyone_may_propose_and_the_area_is_the_nearest_stations(env: Env) -> None:
    r = env.propose(
        amenities=["drinking_water"],
        hours="每天 7:00-19:00",
        location_source="map",
        comment="a\r\nb",
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "pending" and p["decision"] is None
    assert p["district"] == "中原区"  # a1 is 160 m away
    assert p["nearest"]["id"] == "a1" and 100 < p["nearest"]["distance_m"] < 200
    assert p["comment"] == "a\nb" and "client" not in p
    assert (env.path.parent / "state" / "reg.geojson.proposals.jsonl").exists()
    far = env.propose(location=[121.47, 31.23]).json()
    assert far["district"] is None and far["nearest"] is None  # beyond area_radius_m


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"location": [113.6, 95]}, "location"),
        ({"location": [113.6]}, "location"),
        ({"amenities": ["spa"]}, "amenities"),
        ({"location_source": "ip"}, "location_source"),
        ({"hours": "x" * 501}, "hours"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_proposals_are_422_naming_the_field(env: Env, body: dict[str, Any], field: str) -> None:
    r = env.propose(**body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == field or field in str(r.json()["detail"][0]["loc"])


def test_proposals_are_rate_limited_like_reports(env: Env) -> None:
    for _ in range(5):  # YIZHAN_REPORT_RATE_PER_HOUR
        assert env.propose().status_code == 201
    r = env.propose()
    assert r.status_code == 429 and 3500 <= int(r.headers["retry-after"]) <= 3600


def test_who_may_list_proposals(env: Env) -> None:
    a = env.propose().json()  # 中原区
    b = env.propose(location=[113.701, 34.781]).json()  # 金水区
    assert env.client.get("/proposals").status_code == 401
    assert env.client.get("/proposals", headers=env.auth("operator")).status_code == 403
    all_ = env.client.get("/proposals", headers=env.auth("admin")).json()
    assert [p["id"] for p in all_["proposals"]] == [b["id"], a["id"]]
    mine = env.client.get("/proposals", headers=env.auth("manager_a")).json()
    assert [p["id"] for p in mine["proposals"]] == [a["id"]]
    r = env.client.get("/proposals", params={"status": "accepted"}, headers=env.auth("admin"))
    assert r.json()["numberMatched"] == 0
    assert env.client.get("/proposals?status=maybe", headers=env.auth("admin")).status_code == 422


def test_the_areas_manager_accepts_and_it_becomes_a_station(env: Env) -> None:
    p = env.propose(amenities=["toilet"], hours="周一至周五 9:00-17:00").json()
    url = f"/proposals/{p['id']}/accept"
    assert env.client.post(url).status_code == 401
    assert env.client.post(url, headers=env.auth("manager_b")).status_code == 403  # other area
    assert env.client.post(url, headers=env.auth("operator")).status_code == 403
    # A manager may not set who operates it.
    r = env.client.post(url, json={"properties": {"operator": "x"}}, headers=env.auth("manager_a"))
    assert r.status_code == 403
    r = env.client.post(
        url, json={"properties": {"phone": "0371-1234567"}}, headers=env.auth("manager_a")
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "accepted" and done["decision"]["by"]["name"] == "Li (a1)"
    sid = done["decision"]["station_id"]
    assert r.headers["location"] == f"/stations/{sid}"
    station = env.client.get(f"/stations/{sid}").json()
    props = station["properties"]
    assert props["source"].startswith(f"proposal {p['id']} (suggested by a worker on ")
    assert props["opening_hours"] == "Mo-Fr 09:00-17:00" and props["phone"] == "0371-1234567"
    assert props["amenities"] == ["toilet"] and props["district"] == "中原区"
    assert station["geometry"]["coordinates"] == [113.601, 34.751]
    # On disk and in the audit log, under the manager's name.
    doc = json.loads(env.path.read_text())
    assert sid in {f["id"] for f in doc["features"]}
    history = env.client.get(f"/stations/{sid}/history").json()
    entries = history["entries"] if isinstance(history, dict) else history
    assert "Li (a1)" in json.dumps(entries, ensure_ascii=False)
    # Workers find it.
    near = env.client.get("/nearest", params={"lon": 113.601, "lat": 34.751, "k": 1}).json()
    assert near["features"][0]["id"] == sid
    # Decided once.
    r = env.client.post(url, headers=env.auth("admin"))
    assert r.status_code == 409
    r = env.client.post(
        f"/proposals/{p['id']}/reject", json={"reason": "x"}, headers=env.auth("admin")
    )
    assert r.status_code == 409


def test_an_invalid_station_is_refused_and_the_proposal_stays_pending(env: Env) -> None:
    p = env.propose().json()
    url = f"/proposals/{p['id']}/accept"
    r = env.client.post(
        url, json={"properties": {"opening_hours": "whenever"}}, headers=env.auth("admin")
    )
    assert r.status_code == 422 and "opening_hours" in json.dumps(r.json())
    r = env.client.post(url, json={"properties": {"category": "spa"}}, headers=env.auth("admin"))
    assert r.status_code == 422 and "category" in json.dumps(r.json())
    r = env.client.post(url, json={"location": [113.6, 95]}, headers=env.auth("admin"))
    assert r.status_code == 422
    listed = env.client.get("/proposals", headers=env.auth("admin")).json()["proposals"]
    assert listed[0]["status"] == "pending"
    r = env.client.post(url, json={"properties": {"operator": "union"}}, headers=env.auth("admin"))
    assert r.status_code == 200
    sid = r.json()["decision"]["station_id"]
    assert env.client.get(f"/stations/{sid}").json()["properties"]["operator"] == "union"


def test_reject_with_a_reason(env: Env) -> None:
    p = env.propose(location=[113.701, 34.781]).json()
    url = f"/proposals/{p['id']}/reject"
    assert env.client.post(url, json={}, headers=env.auth("manager_b")).status_code == 422
    assert (
        env.client.post(url, json={"reason": "x"}, headers=env.auth("manager_a")).status_code == 403
    )
    r = env.client.post(url, json={"reason": "就是 b1"}, headers=env.auth("manager_b"))
    assert r.status_code == 200
    assert r.json()["decision"]["reason"] == "就是 b1" and r.json()["status"] == "rejected"
    assert (
        env.client.post(
            "/proposals/prop_nope/reject", json={"reason": "x"}, headers=env.auth("admin")
        ).status_code
        == 404
    )
    # No new station.
    assert len(json.loads(env.path.read_text())["features"]) == 2


def test_proposals_as_geojson_for_the_planner_map(env: Env) -> None:
    a = env.propose(amenities=["toilet"]).json()
    b = env.propose(location=[113.701, 34.781]).json()
    env.client.post(
        f"/proposals/{b['id']}/reject", json={"reason": "dup"}, headers=env.auth("admin")
    )
    store = env.client.app.state.backend.proposals  # type: ignore[attr-defined]
    fc = proposals_geojson(store)  # pending by default
    assert fc["type"] == "FeatureCollection" and [f["id"] for f in fc["features"]] == [a["id"]]
    (f,) = fc["features"]
    assert f["geometry"] == {"type": "Point", "coordinates": [113.601, 34.751]}
    assert f["properties"]["amenities"] == ["toilet"] and f["properties"]["status"] == "pending"
    assert "client" not in f["properties"] and "location" not in f["properties"]
    assert len(proposals_geojson(store, None)["features"]) == 2
    assert proposals_geojson(store, None, {"金水区"})["features"][0]["id"] == b["id"]
    orjson.dumps(fc)  # JSON as it is


def test_proposals_file_is_not_readable_by_others(env: Env) -> None:
    env.propose()
    path = env.path.parent / "state" / "reg.geojson.proposals.jsonl"
    assert os.stat(path).st_mode & 0o077 == 0
    assert PUBLIC.role == "public"


def test_pending_proposals_are_a_layer_of_the_planner_map(env: Env) -> None:
    r = env.propose(name="桥下驿站建议")
    assert r.status_code == 201
    html = env.client.get("/maps/coverage", params={"lang": "en"}).text
    assert "Stations suggested by workers (pending) (1)" in html
    assert "桥下驿站建议" in html and "yz.proposals" in html
    r = env.client.post(
        f"/proposals/{r.json()['id']}/reject",
        json={"reason": "duplicate"},
        headers=env.auth("admin"),
    )
    assert r.status_code == 200, r.text
    html = env.client.get("/maps/coverage", params={"lang": "en"}).text
    assert "(pending) (1)" not in html  # decided: no longer pending
    assert "桥下驿站建议" not in html
