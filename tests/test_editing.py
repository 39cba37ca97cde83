"""Editing the registry over HTTP: versions (ETag / If-Match), merge patches, roles,
durability, verification, staleness, problem reports, history and limits."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from yizhan.api import create_app
from yizhan.settings import Settings
from yizhan.stations.editing import diff, feature_etag, merge_patch, parse_if_match
from yizhan.stations.registry import check_file, load_registry

ADMIN = "admin-secret-token-for-tests"
XSS = "<img src=x onerror=alert(1)>"


def registry_doc() -> dict[str, Any]:
    feats = [
        make_feature("a1", 113.60, 34.75, operator="union", amenities=["drinking_water"]),
        make_feature("a2", 113.61, 34.75, operator="union", last_verified_at="2020-01-01"),
        make_feature("b1", 113.62, 34.75, operator="bank", guessed=["operator"]),
        make_bus("bus1", [make_stop("s1", 113.63, 34.75, "Mo-Su 10:00-16:00")], operator="bus-co"),
    ]
    return make_doc(feats, name="edit test")


@dataclass
class Env:
    client: TestClient
    path: Path
    tokens: dict[str, str]
    settings: Settings

    def auth(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def etag(self, fid: str) -> str:
        r = self.client.get(f"/stations/{fid}")
        assert r.status_code == 200, r.text
        return r.headers["etag"]

    def on_disk(self, fid: str) -> dict[str, Any]:
        doc = json.loads(self.path.read_text())
        return next(f for f in doc["features"] if f["id"] == fid)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(registry_doc()))
    settings = Settings(
        registry=path,
        state_dir=tmp_path / "state",
        admin_token=ADMIN,
        trust_forwarded_for=True,
        reload_interval_s=0,
        max_body_bytes=4096,
    )
    with TestClient(create_app(settings)) as client:
        ts = client.app.state.tokens  # type: ignore[attr-defined]
        tokens = {"admin": ADMIN}
        tokens["manager"], _ = ts.create("manager", name="Li (a1)", stations=["a1"])
        tokens["manager_b"], _ = ts.create("manager", name="Wang (b1)", stations=["b1"])
        tokens["operator"], _ = ts.create("operator", name="Union ops", operator="union")
        tokens["bus_operator"], _ = ts.create("operator", name="Bus ops", operator="bus-co")
        yield Env(client, path, tokens, settings)


# -- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # RFC 7396 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, expected: Any) -> None:
    before = json.dumps(target)
    assert merge_patch(target, patch) == expected
    assert json.dumps(target) == before  # the target is not changed


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        (None, None),
        ("", None),
        ("*", ["*"]),
        ('"abc"', ['"abc"']),
        ('"a", "b"', ['"a"', '"b"']),
        ('W/"a"', ['W/"a"']),
    ],
)
def test_parse_if_match(header: str | None, tags: list[str] | None) -> None:
    assert parse_if_match(header) == tags


def test_etag_is_canonical_and_changes_with_content() -> None:
    f = make_feature("x", 113.0, 34.0, amenities=["toilet"])
    g = json.loads(json.dumps(f, sort_keys=True))  # same content, other key order
    assert feature_etag(f) == feature_etag(g)
    g["properties"]["name"] = "other"
    assert feature_etag(f) != feature_etag(g)
    assert feature_etag(f).startswith('"') and feature_etag(f).endswith('"')


def test_diff_lists_changed_leaves() -> None:
    before = {"properties": {"name": "A", "phone": "1"}, "geometry": {"coordinates": [1, 2]}}
    after = {"properties": {"name": "B"}, "geometry": {"coordinates": [1, 3]}}
    assert diff(before, after) == [
        {"path": "geometry.coordinates", "before": [1, 2], "after": [1, 3]},
        {"path": "properties.name", "before": "A", "after": "B"},
        {"path": "properties.phone", "before": "1", "after": None},
    ]


# -- versions ------------------------------------------------------------------------------


def test_get_has_an_etag_and_flags(env: Env) -> None:
    r = env.client.get("/stations/a1")
    assert r.headers["etag"] == feature_etag(env.on_disk("a1"))
    props = r.json()["properties"]
    assert props["stale"] is True  # never verified
    assert props["needs_check"] is False
    assert props["needs_check_reasons"] == []


def test_patch_needs_if_match_and_refuses_a_stale_one(env: Env) -> None:
    body = {"properties": {"phone": "0371-1"}}
    r = env.client.patch("/stations/a1", json=body, headers=env.auth("manager"))
    assert r.status_code == 428
    assert "If-Match" in r.json()["detail"]
    tag = env.etag("a1")
    r = env.client.patch(
        "/stations/a1", json=body, headers={**env.auth("manager"), "If-Match": tag}
    )
    assert r.status_code == 200, r.text
    new_tag = r.headers["etag"]
    assert new_tag != tag
    assert r.json()["properties"]["phone"] == "0371-1"
    # the old version is refused, and the answer tells the current one
    r = env.client.patch(
        "/stations/a1",
        json={"properties": {"phone": "0371-2"}},
        headers={**env.auth("manager"), "If-Match": tag},
    )
    assert r.status_code == 412
    assert r.headers["etag"] == new_tag
    assert env.on_disk("a1")["properties"]["phone"] == "0371-1"


def test_two_editors_one_wins_one_gets_412(env: Env) -> None:
    tag = env.etag("a1")
    first = env.client.patch(
        "/stations/a1",
        json={"properties": {"name": "First"}},
        headers={**env.auth("manager"), "If-Match": tag},
    )
    second = env.client.patch(
        "/stations/a1",
        json={"properties": {"name": "Second"}},
        headers={**env.auth("admin"), "If-Match": tag},
    )
    assert (first.status_code, second.status_code) == (200, 412)
    assert env.on_disk("a1")["properties"]["name"] == "First"


def test_a_patch_is_on_disk_valid_and_audited(env: Env) -> None:
    tag = env.etag("b1")
    r = env.client.patch(
        "/stations/b1",
        json={"properties": {"operator": None, "address": "金水路 1 号"}},
        headers={**env.auth("admin"), "If-Match": tag},
    )
    assert r.status_code == 200, r.text
    stored = env.on_disk("b1")["properties"]
    assert "operator" not in stored  # null removes
    assert stored["address"] == "金水路 1 号"
    assert "guessed" not in stored  # an edited field is no longer a guess
    assert stored["updated_at"]
    report, _ = check_file(env.path)
    assert report.ok
    history = env.client.get("/stations/b1/history", headers=env.auth("admin")).json()
    (entry,) = history["entries"]
    assert entry["action"] == "update"
    assert entry["actor"]["role"] == "admin"
    assert entry["etag_before"] == tag and entry["etag_after"] == r.headers["etag"]
    paths = {c["path"]: (c["before"], c["after"]) for c in entry["changes"]}
    assert paths["properties.operator"] == ("bank", None)
    assert paths["properties.address"] == (None, "金水路 1 号")


def test_served_state_changes_at_once(env: Env) -> None:
    tag = env.etag("a1")
    env.client.patch(
        "/stations/a1",
        json={"geometry": {"type": "Point", "coordinates": [113.70, 34.80]}},
        headers={**env.auth("admin"), "If-Match": tag},
    )
    r = env.client.get("/nearest", params={"lon": 113.70, "lat": 34.80, "k": 1})
    assert r.json()["features"][0]["id"] == "a1"
    assert r.json()["features"][0]["properties"]["distance_m"] == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"id": "zz"}, "id"),
        ({"type": "Point"}, "type"),
        ({"properties": {"kind": "cooling_bus"}}, "properties.kind"),
        ({"properties": {"name": None}}, "properties.name"),
        ({"properties": {"name": "   "}}, "properties.name"),
        ({"properties": {"opening_hours": "Mo-Fr 25:00-26:00"}}, "properties.opening_hours"),
        ({"properties": {"amenities": ["teleporter"]}}, "properties.amenities.0"),
        ({"properties": {"status": "gone"}}, "properties.status"),
        ({"properties": {"last_verified_at": "2026-01-01"}}, "properties.last_verified_at"),
        ({"properties": {"updated_at": "2026-01-01"}}, "properties.updated_at"),
        ({"properties": {"name": "x" * 201}}, "properties.name"),
        ({"properties": {"phone": "1\x00"}}, "properties.phone"),
        ({"geometry": {"type": "Point", "coordinates": [34.75, 113.6]}}, "geometry.coordinates"),
        ({"geometry": {"type": "Point", "coordinates": [200, 0]}}, "geometry.coordinates"),
        ({"properties": "name"}, "properties"),
        ([1, 2], "body"),
    ],
)
def test_invalid_patches_are_refused_naming_the_field(env: Env, patch: Any, field: str) -> None:
    tag = env.etag("a1")
    r = env.client.patch("/stations/a1", json=patch, headers={**env.auth("admin"), "If-Match": tag})
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", field]
    assert env.etag("a1") == tag  # nothing changed
    assert env.client.get("/stations/a1/history").json()["entries"] == []


def test_html_is_stored_as_text(env: Env) -> None:
    tag = env.etag("a1")
    r = env.client.patch(
        "/stations/a1",
        json={"properties": {"name": XSS, "address": "<b>1</b> & 2"}},
        headers={**env.auth("manager"), "If-Match": tag},
    )
    assert r.status_code == 200
    stored = env.on_disk("a1")["properties"]
    assert stored["name"] == XSS
    assert stored["address"] == "<b>1</b> & 2"


def test_body_size_is_capped(env: Env) -> None:
    tag = env.etag("a1")
    r = env.client.patch(
        "/stations/a1",
        content=json.dumps({"properties": {"source": "x" * 5000}}),
        headers={**env.auth("admin"), "If-Match": tag, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert "4096" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length
        yield b'{"properties": {"source": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    r = env.client.patch(
        "/stations/a1",
        content=chunks(),
        headers={**env.auth("admin"), "If-Match": tag, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert env.etag("a1") == tag


# -- create, remove, verify ----------------------------------------------------------------


def test_create_station(env: Env) -> None:
    feat = make_feature("new-1", 113.64, 34.76, operator="union", amenities=["toilet"])
    r = env.client.post("/stations", json=feat, headers=env.auth("operator"))
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith("/stations/new-1")
    assert r.headers["etag"] == env.etag("new-1")
    assert env.on_disk("new-1")["properties"]["created_at"]
    r = env.client.post("/stations", json=feat, headers=env.auth("admin"))
    assert r.status_code == 409
    # an id is made when none is given
    anon = {k: v for k, v in feat.items() if k != "id"}
    r = env.client.post("/stations", json=anon, headers=env.auth("admin"))
    assert r.status_code == 201
    assert env.client.get(r.headers["location"]).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "has space"}, "id"),
        ({"id": 5}, "id"),
        ({"properties": None}, "properties"),
        ({"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, "geometry"),
        (
            {"properties": {"kind": "station", "name": "n", "status": "removed"}},
            "properties.status",
        ),
        (
            {"properties": {"kind": "station", "name": "n", "created_at": "2020-01-01"}},
            "properties.created_at",
        ),
    ],
)
def test_create_refuses_invalid_features(env: Env, change: dict[str, Any], field: str) -> None:
    feat = {**make_feature("new-2", 113.64, 34.76), **change}
    r = env.client.post("/stations", json=feat, headers=env.auth("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]


def test_remove_keeps_the_station_with_a_reason(env: Env) -> None:
    tag = env.etag("a2")
    r = env.client.delete("/stations/a2", headers={**env.auth("operator"), "If-Match": tag})
    assert r.status_code == 422  # the reason is required
    r = env.client.delete(
        "/stations/a2",
        params={"reason": "building demolished"},
        headers={**env.auth("operator"), "If-Match": tag},
    )
    assert r.status_code == 200, r.text
    props = env.on_disk("a2")["properties"]
    assert (props["status"], props["status_reason"]) == ("removed", "building demolished")
    near = env.client.get("/nearest", params={"lon": 113.61, "lat": 34.75, "k": 1}).json()
    assert near["features"][0]["id"] != "a2"
    assert env.client.get("/stations/a2").status_code == 200
    actions = [e["action"] for e in env.client.get("/stations/a2/history").json()["entries"]]
    assert actions == ["remove"]


@pytest.mark.parametrize(("stale", "bus_found"), [("false", False), ("true", True)])
def test_stale_filter_applies_to_cooling_buses(env: Env, stale: str, bus_found: bool) -> None:
    # bus1 stands at s1 10:00-16:00 and was never verified: it is stale like any station.
    params = {"lon": 113.63, "lat": 34.75, "open_at": "2026-07-15T13:00", "stale": stale}
    ids = [f["id"] for f in env.client.get("/nearest", params=params).json()["features"]]
    assert ("bus1" in ids) is bus_found


def test_verify_clears_stale(env: Env) -> None:
    assert env.client.get("/stations/a2").json()["properties"]["stale"] is True
    fresh = env.client.get("/stations", params={"stale": "false"}).json()
    assert [f["id"] for f in fresh["features"]] == []
    r = env.client.post(
        "/stations/a2/verify", json={"note": "water ok"}, headers=env.auth("operator")
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["stale"] is False
    assert props["last_verified_by"] == "Union ops"
    fresh = env.client.get("/stations", params={"stale": "false"}).json()
    assert [f["id"] for f in fresh["features"]] == ["a2"]
    near = env.client.get("/nearest", params={"lon": 113.6, "lat": 34.75, "stale": "false"})
    assert [f["id"] for f in near.json()["features"]] == ["a2"]
    stale = env.client.get("/stations", params={"stale": "true"}).json()
    assert "a2" not in [f["id"] for f in stale["features"]]


# -- roles ---------------------------------------------------------------------------------

WRITES = ["patch", "delete", "verify", "create", "read_reports", "history_full"]
# role -> (station, allowed writes)
MATRIX: list[tuple[str | None, str, set[str]]] = [
    (None, "a1", set()),
    ("manager", "a1", {"patch", "verify", "read_reports", "history_full"}),
    ("manager", "b1", set()),
    ("manager_b", "b1", {"patch", "verify", "read_reports", "history_full"}),
    ("operator", "a1", {"patch", "delete", "verify", "create", "read_reports", "history_full"}),
    ("operator", "b1", set()),
    (
        "bus_operator",
        "bus1",
        {"patch", "delete", "verify", "create", "read_reports", "history_full"},
    ),
    ("bus_operator", "a1", set()),
    ("admin", "a1", set(WRITES)),
    ("admin", "bus1", set(WRITES)),
]


def _call(env: Env, action: str, role: str | None, fid: str) -> int:
    headers = env.auth(role)
    operator = env.on_disk(fid)["properties"].get("operator")
    if action == "create":
        feat = make_feature(f"{fid}-new", 113.65, 34.77, operator=operator)
        return env.client.post("/stations", json=feat, headers=headers).status_code
    if action == "read_reports":
        return env.client.get(f"/stations/{fid}/reports", headers=headers).status_code
    if action == "history_full":
        return env.client.get(
            f"/stations/{fid}/history", params={"full": "true"}, headers=headers
        ).status_code
    tag = env.client.app.state.store.find(fid).etag  # type: ignore[attr-defined]
    headers = {**headers, "If-Match": tag}
    if action == "patch":
        return env.client.patch(
            f"/stations/{fid}", json={"properties": {"phone": "110"}}, headers=headers
        ).status_code
    if action == "delete":
        return env.client.delete(
            f"/stations/{fid}", params={"reason": "test"}, headers=headers
        ).status_code
    assert action == "verify"
    return env.client.post(f"/stations/{fid}/verify", headers=headers).status_code


@pytest.mark.parametrize(("role", "fid", "allowed"), MATRIX)
@pytest.mark.parametrize("action", WRITES)
def test_auth_matrix(env: Env, role: str | None, fid: str, allowed: set[str], action: str) -> None:
    status = _call(env, action, role, fid)
    if action in allowed:
        assert status in (200, 201), (role, fid, action, status)
    elif role is None and action != "history_full":
        assert status == 401, (role, fid, action, status)
    else:
        assert status == 403, (role, fid, action, status)


def test_bad_and_revoked_tokens_get_401(env: Env) -> None:
    tag = env.etag("a1")
    for token in ("nonsense", "yz_" + "x" * 43):
        r = env.client.patch(
            "/stations/a1",
            json={"properties": {"phone": "1"}},
            headers={"Authorization": f"Bearer {token}", "If-Match": tag},
        )
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    store = env.client.app.state.tokens  # type: ignore[attr-defined]
    token, rec = store.create("manager", name="temp", stations=["a1"])
    ok = env.client.post("/stations/a1/verify", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    store.revoke(rec.token_id)
    r = env.client.post("/stations/a1/verify", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_only_admins_change_the_operator(env: Env) -> None:
    tag = env.etag("a1")
    for role in ("manager", "operator"):
        r = env.client.patch(
            "/stations/a1",
            json={"properties": {"operator": "bank"}},
            headers={**env.auth(role), "If-Match": tag},
        )
        assert r.status_code == 403
    r = env.client.patch(
        "/stations/a1",
        json={"properties": {"operator": "bank"}},
        headers={**env.auth("admin"), "If-Match": tag},
    )
    assert r.status_code == 200


def test_a_manager_cannot_remove_by_patching_the_status(env: Env) -> None:
    tag = env.etag("a1")
    r = env.client.patch(
        "/stations/a1",
        json={"properties": {"status": "removed"}},
        headers={**env.auth("manager"), "If-Match": tag},
    )
    assert r.status_code == 403
    r = env.client.patch(
        "/stations/a1",
        json={"properties": {"status": "temporarily_closed"}},
        headers={**env.auth("manager"), "If-Match": tag},
    )
    assert r.status_code == 200


# -- reports -------------------------------------------------------------------------------


def _report(env: Env, fid: str, code: str, client: str, **extra: Any) -> Any:
    return env.client.post(
        f"/stations/{fid}/reports",
        json={"code": code, **extra},
        headers={"X-Forwarded-For": client},
    )


def test_reports_mark_needs_check_until_verified(env: Env) -> None:
    r = _report(env, "a1", "no_water", "10.0.0.1", comment=XSS, location=[113.6, 34.75])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["comment"] == XSS
    assert "client" not in body
    # one client twice is not independent
    assert _report(env, "a1", "no_water", "10.0.0.1").status_code == 201
    assert env.client.get("/stations/a1").json()["properties"]["needs_check"] is False
    assert _report(env, "a1", "closed", "10.0.0.2").status_code == 201
    assert env.client.get("/stations/a1").json()["properties"]["needs_check"] is False
    assert _report(env, "a1", "no_water", "10.0.0.3").status_code == 201
    props = env.client.get("/stations/a1").json()["properties"]
    assert (props["needs_check"], props["needs_check_reasons"]) == (True, ["no_water"])
    near = env.client.get("/nearest", params={"lon": 113.6, "lat": 34.75, "k": 1}).json()
    assert near["features"][0]["properties"]["needs_check"] is True
    flagged = env.client.get("/stations", params={"needs_check": "true"}).json()
    assert [f["id"] for f in flagged["features"]] == ["a1"]
    # the manager sees them, all open; admins see them in /reports
    mine = env.client.get("/stations/a1/reports", headers=env.auth("manager")).json()
    assert len(mine["reports"]) == 4
    assert {x["status"] for x in mine["reports"]} == {"open"}
    assert mine["needs_check_reasons"] == ["no_water"]
    listed = env.client.get("/reports", params={"status": "open"}, headers=env.auth("admin"))
    assert listed.json()["numberMatched"] == 4
    # a verification clears it
    time.sleep(1.01)  # reports and verifications are stamped to the second
    assert env.client.post("/stations/a1/verify", headers=env.auth("manager")).status_code == 200
    props = env.client.get("/stations/a1").json()["properties"]
    assert (props["needs_check"], props["needs_check_reasons"]) == (False, [])
    listed = env.client.get("/reports", params={"status": "open"}, headers=env.auth("admin"))
    assert listed.json()["numberMatched"] == 0
    resolved = env.client.get("/reports", params={"status": "resolved"}, headers=env.auth("admin"))
    assert resolved.json()["numberMatched"] == 4
    # reports are durable: a new app over the same files still has them
    path = env.settings.state_file(env.path, "reports", ".jsonl")
    assert path is not None and len(path.read_text().splitlines()) >= 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "on_fire"}, "code"),
        ({}, "code"),
        ({"code": "closed", "comment": "x" * 1001}, "comment"),
        ({"code": "closed", "location": [113.6]}, "location"),
        ({"code": "closed", "location": [113.6, 95]}, "location"),
        ({"code": "closed", "extra": 1}, "extra"),
    ],
)
def test_bad_reports_get_422(env: Env, body: dict[str, Any], field: str) -> None:
    r = env.client.post("/stations/a1/reports", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]


def test_reports_are_rate_limited(env: Env) -> None:
    statuses = [_report(env, "a1", "all_good", "10.9.9.9").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    r = _report(env, "a1", "all_good", "10.9.9.9")
    assert int(r.headers["retry-after"]) > 0
    assert _report(env, "a1", "all_good", "10.9.9.8").status_code == 201
    assert _report(env, "nope", "closed", "10.9.9.7").status_code == 404


# -- history -------------------------------------------------------------------------------


def test_history_hides_names_from_the_public(env: Env) -> None:
    env.client.post("/stations/a1/verify", headers=env.auth("manager"))
    public = env.client.get("/stations/a1/history").json()["entries"]
    assert public[0]["actor"] == {"role": "manager"}
    assert "after" not in public[0]
    mine = env.client.get(
        "/stations/a1/history", params={"full": "true"}, headers=env.auth("manager")
    ).json()["entries"]
    assert mine[0]["actor"]["name"] == "Li (a1)"
    assert mine[0]["after"]["properties"]["last_verified_by"] == "Li (a1)"
    assert env.client.get("/stations/nope/history").status_code == 404


# -- reloading -----------------------------------------------------------------------------


def test_a_valid_change_on_disk_is_served_and_audited(env: Env) -> None:
    doc = json.loads(env.path.read_text())
    doc["features"][0]["properties"]["name"] = "Changed by git pull"
    env.path.write_text(json.dumps(doc))
    os.utime(env.path, ns=(time.time_ns(), time.time_ns() + 10**9))
    store = env.client.app.state.store  # type: ignore[attr-defined]
    assert store.reload_if_changed() is True
    assert env.client.get("/stations/a1").json()["properties"]["name"] == "Changed by git pull"
    (entry,) = env.client.get("/stations/a1/history").json()["entries"]
    assert (entry["action"], entry["actor"]["role"]) == ("external", "file")


def test_an_invalid_change_on_disk_is_refused(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    doc = json.loads(env.path.read_text())
    doc["features"][0]["geometry"]["coordinates"] = [500, 0]
    env.path.write_text(json.dumps(doc))
    os.utime(env.path, ns=(time.time_ns(), time.time_ns() + 10**9))
    store = env.client.app.state.store  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="yizhan"):
        assert store.reload_if_changed() is False
    assert "invalid" in caplog.text and "previous version" in caplog.text
    assert env.client.get("/stations/a1").status_code == 200
    assert store.changed_on_disk() is False  # not retried until the file changes again


def _write_later(path: Path, doc: dict[str, Any], seconds: int) -> None:
    path.write_text(json.dumps(doc))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + seconds * 10**9))


def test_writes_are_refused_while_the_file_on_disk_is_invalid(env: Env) -> None:
    """An offline save with one valid change (a2's phone) and one invalid value (a1's
    coordinates) is refused; until the file is fixed, no write may overwrite it (503 with
    the reason and Retry-After), reads keep the last valid version; once fixed, the
    offline change is served, audited once, and kept by the next write."""
    doc = json.loads(env.path.read_text())
    doc["features"][1]["properties"]["phone"] = "saved offline"
    good = doc["features"][0]["geometry"]["coordinates"]
    doc["features"][0]["geometry"]["coordinates"] = [500, 0]
    _write_later(env.path, doc, 1)
    store = env.client.app.state.store  # type: ignore[attr-defined]
    assert store.reload_if_changed() is False  # refused

    tag = env.etag("b1")
    writes = [
        lambda: env.client.patch(
            "/stations/b1",
            json={"properties": {"phone": "api"}},
            headers={**env.auth("admin"), "If-Match": tag},
        ),
        lambda: env.client.post("/stations/b1/verify", headers=env.auth("admin")),
        lambda: env.client.delete(
            "/stations/b1",
            params={"reason": "closed"},
            headers={**env.auth("admin"), "If-Match": tag},
        ),
        lambda: env.client.post(
            "/stations",
            json={**registry_doc()["features"][0], "id": "new1"},
            headers=env.auth("admin"),
        ),
    ]
    for write in writes:
        r = write()
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        detail = r.json()["detail"]
        assert "invalid" in detail and str(env.path) in detail and "coordinates" in detail
    on_disk = json.loads(env.path.read_text())
    assert on_disk == doc  # the refused file is still there, with the offline change
    assert (
        env.client.get("/stations/a2").json()["properties"].get("phone") is None
    )  # served: last valid

    doc["features"][0]["geometry"]["coordinates"] = good  # fixed
    _write_later(env.path, doc, 2)
    r = env.client.patch(
        "/stations/b1",
        json={"properties": {"phone": "api"}},
        headers={**env.auth("admin"), "If-Match": tag},
    )
    assert r.status_code == 200, r.text
    assert env.on_disk("a2")["properties"]["phone"] == "saved offline"
    assert env.on_disk("b1")["properties"]["phone"] == "api"
    assert env.client.get("/stations/a2").json()["properties"]["phone"] == "saved offline"
    (entry,) = env.client.get("/stations/a2/history").json()["entries"]
    assert entry["action"] == "external"
    assert entry["changes"] == [
        {"path": "properties.phone", "before": None, "after": "saved offline"}
    ]
    assert env.client.get("/stations/a1/history").json()["entries"] == []  # a1 is as before


def test_an_edit_builds_on_a_change_another_process_made(env: Env) -> None:
    doc = json.loads(env.path.read_text())
    doc["features"][1]["properties"]["phone"] = "from elsewhere"
    env.path.write_text(json.dumps(doc))
    os.utime(env.path, ns=(time.time_ns(), time.time_ns() + 10**9))
    tag = feature_etag(doc["features"][0])
    r = env.client.patch(
        "/stations/a1",
        json={"properties": {"phone": "mine"}},
        headers={**env.auth("admin"), "If-Match": tag},
    )
    assert r.status_code == 200
    assert env.on_disk("a2")["properties"]["phone"] == "from elsewhere"
    assert env.on_disk("a1")["properties"]["phone"] == "mine"


def test_restart_logs_a_change_made_while_down(tmp_path: Path) -> None:
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(registry_doc()))
    settings = Settings(registry=path, admin_token=ADMIN, reload_interval_s=0)
    with TestClient(create_app(settings)) as c:
        tag = c.get("/stations/a1").headers["etag"]
        c.patch(
            "/stations/a1",
            json={"properties": {"phone": "1"}},
            headers={"Authorization": f"Bearer {ADMIN}", "If-Match": tag},
        )
    doc = json.loads(path.read_text())
    doc["features"][0]["properties"]["phone"] = "2"
    path.write_text(json.dumps(doc))
    with TestClient(create_app(settings)) as c:
        entries = c.get("/stations/a1/history").json()["entries"]
    assert [e["action"] for e in entries] == ["update", "external"]
    assert entries[1]["changes"] == [{"path": "properties.phone", "before": "1", "after": "2"}]
    assert load_registry(path).feature("a1")["properties"]["phone"] == "2"


def test_cli_history(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from yizhan.cli import main

    tag = env.etag("a1")
    env.client.patch(
        "/stations/a1",
        json={"properties": {"phone": "0371-9"}},
        headers={**env.auth("manager"), "If-Match": tag},
    )
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(env.settings.state_dir))
    assert main(["history", "a1", "--registry", str(env.path)]) == 0
    out = capsys.readouterr().out
    assert "update" in out and "Li (a1) (manager)" in out
    assert 'properties.phone: null -> "0371-9"' in out
    assert main(["history", "a1", "--registry", str(env.path), "--json", "--full"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["after"]["properties"]["phone"] == "0371-9"
    assert main(["history", "nope", "--registry", str(env.path)]) == 1
    assert "no changes to 'nope'" in capsys.readouterr().err


def test_report_comment_crlf_is_kept_as_newlines(env: Env) -> None:
    r = _report(env, "a1", "wrong_info", "10.1.1.1", comment="line one\r\nline two")
    assert r.status_code == 201, r.text
    assert r.json()["comment"] == "line one\nline two"


def test_the_server_watches_the_file(tmp_path: Path) -> None:
    """With reload_interval_s set, a valid file written by someone else is served within
    a few intervals, without any request having to notice it."""
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(registry_doc()))
    settings = Settings(registry=path, state_dir=tmp_path / "state", reload_interval_s=0.05)
    with TestClient(create_app(settings)) as c:
        doc = json.loads(path.read_text())
        doc["features"][0]["properties"]["name"] = "Pulled from git"
        tmp = tmp_path / "new.geojson"
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)
        deadline = time.monotonic() + 5
        name = None
        while time.monotonic() < deadline:
            name = c.get("/stations/a1").json()["properties"]["name"]
            if name == "Pulled from git":
                break
            time.sleep(0.05)
        assert name == "Pulled from git"
