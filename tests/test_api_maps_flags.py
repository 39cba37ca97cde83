"""The HTML maps over HTTP show stale and needs-check stations, and follow edits and reports."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from yizhan.api import create_app
from yizhan.maps._core import unpack
from yizhan.maps.planner import FLAG_NEEDS_CHECK, FLAG_STALE
from yizhan.query.studies import DEFAULT_DISTRICTS
from yizhan.settings import DEFAULT_REGISTRY, Settings

ADMIN = "admin-secret-token-for-map-tests"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A copy of the bundled registry (every station never verified, so all stale) with the
    bundled districts as the study."""
    path = tmp_path / "reg.geojson"
    shutil.copyfile(DEFAULT_REGISTRY, path)
    settings = Settings(
        registry=path,
        districts=DEFAULT_DISTRICTS,
        state_dir=tmp_path / "state",
        admin_token=ADMIN,
        trust_forwarded_for=True,
        reload_interval_s=0,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def flags_of(html: str) -> dict[str, int]:
    """Station id -> ``fl`` bits, from the page's compressed station data."""
    m = re.search(r'= yz\.stations\(\w+, (\{.*?\}), (\{"z":"[^"]+"\})\);', html)
    assert m, "no yz.stations call"
    data = unpack(json.loads(m.group(2)))
    return dict(zip(data["id"], data["fl"], strict=True))


def first_station(client: TestClient) -> str:
    r = client.get("/stations", params={"limit": 1})
    fid: str = r.json()["features"][0]["id"]
    return fid


def test_coverage_map_changes_when_a_station_is_verified(client: TestClient) -> None:
    fid = first_station(client)
    before = client.get("/maps/coverage", params={"lang": "en"})
    assert before.status_code == 200, before.text
    fl = flags_of(before.text)
    assert fl[fid] & FLAG_STALE
    assert all(b & FLAG_STALE for b in fl.values())  # nothing in the bundle is verified
    assert f"Only stations not verified for 180+ days ({len(fl):,})" in before.text
    assert "Needs checking (0)" in before.text
    # The same request again is served from the cache.
    assert client.get("/maps/coverage", params={"lang": "en"}).text == before.text
    r = client.post(f"/stations/{fid}/verify", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["stale"] is False
    after = client.get("/maps/coverage", params={"lang": "en"})
    assert after.text != before.text
    fl = flags_of(after.text)
    assert fl[fid] == 0
    assert f"Only stations not verified for 180+ days ({len(fl) - 1:,})" in after.text


def _report(client: TestClient, fid: str, code: str, who: str) -> Any:
    r = client.post(
        f"/stations/{fid}/reports", json={"code": code}, headers={"X-Forwarded-For": who}
    )
    assert r.status_code == 201, r.text
    return r


def test_reports_mark_needs_check_on_both_maps(client: TestClient) -> None:
    fid = first_station(client)
    assert flags_of(client.get("/maps/coverage").text)[fid] == FLAG_STALE
    _report(client, fid, "no_water", "10.0.0.1")
    _report(client, fid, "no_water", "10.0.0.2")
    assert client.get(f"/stations/{fid}").json()["properties"]["needs_check"] is True
    html = client.get("/maps/coverage").text  # a new report: not the cached page
    assert flags_of(html)[fid] & FLAG_NEEDS_CHECK
    assert "Needs checking (1)" in client.get("/maps/coverage", params={"lang": "en"}).text
    # The worker's map at the station: its hit carries the warning.
    feat = client.get(f"/stations/{fid}").json()
    lon, lat = feat["geometry"]["coordinates"]
    r = client.get("/maps/nearest", params={"lon": lon, "lat": lat, "k": 3, "lang": "en"})
    assert r.status_code == 200
    m = re.search(r"= yz\.workerStations\(\w+, (\{.*?\}), (\{.*?\})\);", r.text)
    assert m
    hits = {h["id"]: h for h in json.loads(m.group(2))["hits"]}
    assert hits[fid]["needs_check"] is True and hits[fid]["reasons"] == ["no_water"]
    assert hits[fid]["stale"] is True
    assert "Not verified for 180+ days" in r.text
