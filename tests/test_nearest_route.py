"""``GET /nearest`` through the app's fast route is the FastAPI route's answer: the same
status, headers and bytes for valid, repeated, escaped, unknown and invalid parameters,
for other methods and with reports, buses and an edit in between."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from yizhan.api import create_app
from yizhan.routes import nearest as nearest_route
from yizhan.settings import Settings
from yizhan.stations.registry import from_document

QUERIES = [
    "lon=113.61&lat=34.751",
    "lon=113.61&lat=34.751&k=5&amenity=toilet",
    "lon=113.61&lat=34.751&k=3&k=7",
    "lat=34.751&lon=113.61&amenity=drinking_water&amenity=toilet&status=operational",
    "lon=113.61&lat=34.751&status=temporarily_closed&status=operational&kind=station",
    "lon=113.61&lat=34.751&category=bank_outlet&stale=false",
    "lon=113.61&lat=34.751&stale=true&k=50",
    "lon=113.61&lat=34.751&radius_m=1500.5",
    "lon=113.61&lat=34.751&open_at=2026-07-15T13:00&k=4",
    "lon=113.61&lat=34.751&open_at=2026-07-15T11:00%2B08:00&open_for_min=30",
    "lon=113.61&lat=34.751&open_for_min=0",
    "lon=113.6159&lat=34.7524&crs=gcj02&out_crs=bd09",
    "lon=113.61&lat=34.751&out_crs=GCJ02",
    "lon=113.61&lat=34.751&amenity=%74oilet&unknown=1&_=123",
    "lon=113.61&lat=34.751&amenity=toilet+",
    "lon=%20113.61&lat=34.751",
    "lon=113.61&lat=34.751&k=",
    "lon=113.61&lat=34.751&&k=2",
    "lon=113.61&lat=34.751&k",
    "lon=1e2&lat=34.751",
    "lon=113.61&lat=91",
    "lon=113.61",
    "",
    "lon=nan&lat=34.7",
    "lon=113.61&lat=inf",
    "lon=east&lat=34.7",
    "lon=113.61&lat=34.751&k=0",
    "lon=113.61&lat=34.751&k=2.5",
    "lon=113.61&lat=34.751&radius_m=-1",
    "lon=113.61&lat=34.751&amenity=coffee&kind=tent",
    "lon=113.61&lat=34.751&status=open",
    "lon=113.61&lat=34.751&crs=mars",
    "lon=113.61&lat=34.751&open_at=tomorrow",
    "lon=113.61&lat=34.751&open_at=2026-07-15T25:00",
    "lon=113.61&lat=34.751&open_for_min=1441",
    "lon=113.61&lat=34.751&stale=maybe",
    "lon=%FF%FE&lat=34.751",
    "lon=113.61&lat=34.751&amenity=%F0%B5%A1%9F",
]


def _time_masked(body: bytes) -> bytes:
    """The answer without ``time`` and a clock-derived ``open_at`` (two calls, two clocks)."""
    body = re.sub(rb'"time":"[^"]*"', b'"time":"-"', body)
    return re.sub(rb'"open_at":"[^"]*"', b'"open_at":"-"', body)


ADMIN = "tok-admin-0123456789"


@pytest.fixture
def client(bus_doc: dict[str, Any], tmp_path: Path) -> Iterator[TestClient]:
    """The app as served, over stations with and without hours and two cooling buses."""
    doc = {**bus_doc, "features": list(bus_doc["features"])}
    doc["features"][1] = {
        **doc["features"][1],
        "properties": {**doc["features"][1]["properties"], "opening_hours": "Mo-Fr 09:00-18:00"},
    }
    settings = Settings(state_dir=tmp_path, max_k=20, admin_token=ADMIN, trust_forwarded_for=True)
    with TestClient(create_app(settings, registry=from_document(doc))) as c:
        yield c


def both(client: TestClient, method: str, url: str) -> tuple[httpx.Response, httpx.Response]:
    """The answer of the app as served, then of the same app (same state) with ``GET
    /nearest`` left to its FastAPI route (dependencies, query model)."""
    routes = client.app.router.routes  # type: ignore[attr-defined]
    assert routes[0] is nearest_route.fast_route
    fast = client.request(method, url, follow_redirects=False)
    routes.remove(nearest_route.fast_route)
    try:
        plain = client.request(method, url, follow_redirects=False)
    finally:
        routes.insert(0, nearest_route.fast_route)
    return fast, plain


def assert_same(fast: httpx.Response, plain: httpx.Response) -> None:
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    for header in ("content-type", "content-length", "allow", "location"):
        assert fast.headers.get(header) == plain.headers.get(header), header
    assert _time_masked(fast.content) == _time_masked(plain.content)


def test_the_fast_route_answers_as_fastapi(client: TestClient) -> None:
    statuses = set()
    for query in QUERIES:
        fast, plain = both(client, "GET", f"/nearest?{query}")
        assert_same(fast, plain)
        statuses.add(fast.status_code)
    assert statuses == {200, 422}


def test_other_methods_and_paths_as_fastapi(client: TestClient) -> None:
    for method in ("HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        fast, plain = both(client, method, "/nearest?lon=113.61&lat=34.751")
        assert fast.status_code == 405
        assert_same(fast, plain)
    fast, plain = both(client, "GET", "/nearest/?lon=113.61&lat=34.751")
    assert fast.status_code == 307
    assert_same(fast, plain)


def test_flags_reports_and_edits_as_fastapi(client: TestClient) -> None:
    """Reports make a station need checking, an edit renames one: both routes see every
    change (the same state, the same cached bytes of the new snapshot)."""
    query = "/nearest?lon=113.62&lat=34.751&k=6"
    before, _ = both(client, "GET", query)
    for who in ("10.0.0.1", "10.0.0.2"):
        r = client.post(
            "/stations/zz-02/reports", json={"code": "closed"}, headers={"X-Forwarded-For": who}
        )
        assert r.status_code == 201, r.text
    fast, plain = both(client, "GET", query)
    assert_same(fast, plain)
    flagged = {f["id"]: f["properties"]["needs_check"] for f in fast.json()["features"]}
    assert flagged["zz-02"] is True and flagged["zz-01"] is False
    auth = {"Authorization": f"Bearer {ADMIN}"}
    etag = client.get("/stations/zz-01").headers["etag"]
    r = client.patch(
        "/stations/zz-01",
        json={"properties": {"name": "Renamed station"}},
        headers={**auth, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    fast, plain = both(client, "GET", query)
    assert_same(fast, plain)
    assert b"Renamed station" in fast.content and b"Renamed station" not in before.content
