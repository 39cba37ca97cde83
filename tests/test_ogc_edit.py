"""OGC API – Features Part 4 on /ogc/collections/stations/items: create, replace, update
and delete with the checks of the editing API (tokens and roles, If-Match, validation,
the audit log, durable writes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from yizhan.api import create_app
from yizhan.settings import Settings

ADMIN = "admin-token-for-ogc-tests"
ITEMS = "/ogc/collections/stations/items"


@dataclass
class Env:
    client: TestClient
    path: Path
    tokens: dict[str, str]

    def auth(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}

    def on_disk(self, fid: str) -> dict[str, Any]:
        doc = json.loads(self.path.read_text(encoding="utf-8"))
        return next(f for f in doc["features"] if f["id"] == fid)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    path = tmp_path / "reg.geojson"
    feats = [
        make_feature("a1", 113.60, 34.75, operator="union", name="金水路驿站", capacity=4),
        make_feature("b1", 113.62, 34.75, operator="bank", name="银行驿站"),
    ]
    path.write_text(json.dumps(make_doc(feats)), encoding="utf-8")
    settings = Settings(
        registry=path, state_dir=tmp_path / "state", admin_token=ADMIN, reload_interval_s=0
    )
    with TestClient(create_app(settings)) as client:
        ts = client.app.state.tokens  # type: ignore[attr-defined]
        tokens = {"admin": ADMIN}
        tokens["manager"], _ = ts.create("manager", name="Li", stations=["a1"])
        tokens["operator"], _ = ts.create("operator", name="Union ops", operator="union")
        yield Env(client, path, tokens)


NEW = {
    "type": "Feature",
    "id": "n1",
    "geometry": {"type": "Point", "coordinates": [113.65, 34.76]},
    "properties": {"name": "新驿站", "kind": "station", "operator": "union"},
}


def test_create_needs_a_token_and_a_role(env: Env) -> None:
    """/conf/create-replace-delete/insert: 401 without a token, 403 for a manager; an
    operator creates its own station: 201, Location, ETag, on disk."""
    assert env.client.post(ITEMS, json=NEW).status_code == 401
    assert env.client.post(ITEMS, json=NEW, headers=env.auth("manager")).status_code == 403
    r = env.client.post(ITEMS, json=NEW, headers=env.auth("operator"))
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith("/ogc/collections/stations/items/n1")
    assert r.headers["etag"]
    assert env.on_disk("n1")["properties"]["name"] == "新驿站"
    got = env.client.get(ITEMS + "/n1")
    assert got.headers["etag"] == r.headers["etag"]
    assert env.client.post(ITEMS, json=NEW, headers=env.auth("admin")).status_code == 409


def test_create_invalid_names_the_field(env: Env) -> None:
    bad = {**NEW, "id": "n2", "properties": {**NEW["properties"], "kind": "castle"}}
    r = env.client.post(ITEMS, json=bad, headers=env.auth("admin"))
    assert r.status_code == 422
    assert "kind" in json.dumps(r.json())
    r = env.client.post(ITEMS, content=b"{not json", headers=env.auth("admin"))
    assert r.status_code == 400


def test_update_with_if_match(env: Env) -> None:
    """/conf/update and /conf/optimistic-locking-etags: PATCH needs If-Match (428), an old
    ETag is 412, the current one changes the station."""
    tag = env.client.get(ITEMS + "/a1").headers["etag"]
    patch = {"properties": {"phone": "0371-12345678"}}
    r = env.client.patch(ITEMS + "/a1", json=patch, headers=env.auth("manager"))
    assert r.status_code == 428
    r = env.client.patch(
        ITEMS + "/a1", json=patch, headers=env.auth("manager", **{"If-Match": tag})
    )
    assert r.status_code == 200, r.text
    new_tag = r.headers["etag"]
    assert new_tag != tag
    assert env.on_disk("a1")["properties"]["phone"] == "0371-12345678"
    r = env.client.patch(
        ITEMS + "/a1", json=patch, headers=env.auth("manager", **{"If-Match": tag})
    )
    assert r.status_code == 412
    r = env.client.patch(
        ITEMS + "/b1", json=patch, headers=env.auth("manager", **{"If-Match": new_tag})
    )
    assert r.status_code in (403, 412)


def test_replace_keeps_server_properties(env: Env) -> None:
    """/conf/create-replace-delete/update (PUT): the body replaces the station; computed
    properties sent back are ignored, server-set ones are kept, left-out ones removed."""
    got = env.client.get(ITEMS + "/a1")
    body = got.json()
    body.pop("links")
    body["properties"] = {
        **{k: v for k, v in body["properties"].items() if k != "capacity"},
        "name": "金水路驿站 (新)",
        "open_now": False,
    }
    body["geometry"] = {"type": "Point", "coordinates": [113.601, 34.751]}
    r = env.client.put(
        ITEMS + "/a1", json=body, headers=env.auth("admin", **{"If-Match": got.headers["etag"]})
    )
    assert r.status_code == 200, r.text
    stored = env.on_disk("a1")
    assert stored["properties"]["name"] == "金水路驿站 (新)"
    assert "capacity" not in stored["properties"]
    assert "open_now" not in stored["properties"]
    assert stored["geometry"]["coordinates"] == [113.601, 34.751]
    assert "updated_at" in stored["properties"]
    r = env.client.put(ITEMS + "/a1", json=body, headers=env.auth("admin"))
    assert r.status_code == 428
    other = {**body, "id": "zz"}
    r = env.client.put(ITEMS + "/a1", json=other, headers=env.auth("admin", **{"If-Match": "x"}))
    assert r.status_code == 422


def test_delete_marks_removed(env: Env) -> None:
    """/conf/create-replace-delete/delete: 204; the registry keeps the station, removed."""
    tag = env.client.get(ITEMS + "/b1").headers["etag"]
    assert (
        env.client.delete(
            ITEMS + "/b1", headers=env.auth("manager", **{"If-Match": tag})
        ).status_code
        == 403
    )
    r = env.client.delete(
        ITEMS + "/b1?reason=closed", headers=env.auth("admin", **{"If-Match": tag})
    )
    assert r.status_code == 204
    props = env.on_disk("b1")["properties"]
    assert (props["status"], props["status_reason"]) == ("removed", "closed")
    history = env.client.get("/stations/b1/history").json()["entries"]
    assert [e["action"] for e in history][-1] == "remove"
    assert env.client.delete(ITEMS + "/b1?bogus=1", headers=env.auth("admin")).status_code == 400


def test_read_only_collections_refuse_writes(env: Env) -> None:
    r = env.client.post("/ogc/collections/cooling_buses/items", json=NEW, headers=env.auth("admin"))
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
