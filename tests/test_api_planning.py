"""Planners' endpoints: /coverage, /analysis/site, /maps/coverage, /maps/nearest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from yizhan.api import create_app
from yizhan.assets import vendor_dir
from yizhan.settings import Settings
from yizhan.stations.registry import from_document


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """The bundled registry with its default study (hexagons over the Zhengzhou districts)."""
    with TestClient(create_app(Settings())) as c:
        yield c


def test_coverage_json(client: TestClient) -> None:
    r = client.get("/coverage")
    assert r.status_code == 200
    out = r.json()
    assert 0 < out["covered_weight_pct"] < 100
    assert out["covered_weight"] == pytest.approx(
        out["total_weight"] * out["covered_weight_pct"] / 100
    )
    assert len(out["per_district"]) == 12
    assert "hexagon grid" in out["demand"]
    wider = client.get("/coverage", params={"radius_m": 3000}).json()
    assert wider["covered_weight_pct"] > out["covered_weight_pct"]
    fewer = client.get("/coverage", params={"category": "bank_outlet"}).json()
    assert fewer["n_stations"] == 9 and fewer["covered_weight_pct"] < out["covered_weight_pct"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"radius_m": 0}, "radius_m"),
        ({"radius_m": "nan"}, "radius_m"),
        ({"amenity": "sauna"}, "amenity"),
    ],
)
def test_coverage_bad_parameters(client: TestClient, params: dict[str, Any], param: str) -> None:
    r = client.get("/coverage", params=params)
    assert r.status_code == 422
    assert any(e["loc"][:2] == ["query", param] for e in r.json()["detail"])


def test_coverage_without_demand_is_409() -> None:
    reg = from_document(make_doc([make_feature("a", 113.6, 34.7)]))
    with TestClient(create_app(Settings(), registry=reg)) as c:
        r = c.get("/coverage")
    assert r.status_code == 409
    assert "YIZHAN_DEMAND" in r.json()["detail"]


def test_site_suggestions(client: TestClient) -> None:
    r = client.post("/analysis/site", json={"n_new": 3, "radius_m": 1000})
    assert r.status_code == 200
    out = r.json()
    feats = out["sites"]["features"]
    assert [f["properties"]["rank"] for f in feats] == [1, 2, 3]
    assert out["objective"] >= out["greedy_objective"]
    assert out["covered_after"] > out["covered_before"]
    r = client.post(
        "/analysis/site", json={"n_new": 1, "candidates": [[113.66, 34.75], [113.30, 34.50]]}
    )
    assert r.status_code == 200
    [site] = r.json()["sites"]["features"]
    assert site["geometry"]["coordinates"] in ([113.66, 34.75], [113.3, 34.5])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n_new": 0}, "n_new"),
        ({}, "n_new"),
        ({"n_new": 2, "radius_m": -1}, "radius_m"),
        ({"n_new": 2, "candidates": [[200.0, 34.0]]}, "candidates"),
        ({"n_new": 2, "candidates": []}, "candidates"),
        ({"n_new": 2, "amenity": ["sauna"]}, "amenity"),
        ({"n_new": 2, "colour": "red"}, "colour"),
    ],
)
def test_site_bad_body_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    r = client.post("/analysis/site", json=body)
    assert r.status_code == 422, r.text
    assert any(field in [str(p) for p in e["loc"]] for e in r.json()["detail"])


def test_coverage_map_page(client: TestClient) -> None:
    r = client.get("/maps/coverage", params={"lang": "en", "sites": 2})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    for layer in (
        "Stations",
        "Coverage gaps",
        "Suggested sites",
        "Uncovered demand",
        "Cooling buses",
    ):
        assert layer in html, layer
    assert "/static/vendor/leaflet" in html and "cdn.jsdelivr.net" not in html


def test_vendor_assets_are_served(client: TestClient) -> None:
    # Set-up (`make test`) fetches them: a missing file is a broken set-up, not a skip.
    js = next(vendor_dir().glob("leaflet-*/dist/leaflet.js"), None)
    assert js is not None, "map assets missing: yizhan assets fetch"
    rel = js.relative_to(vendor_dir()).as_posix()
    r = client.get(f"/static/vendor/{rel}")
    assert r.status_code == 200
    assert "Leaflet" in r.text[:2000]


def test_worker_map_page(client: TestClient) -> None:
    r = client.get(
        "/maps/nearest", params={"lon": 113.65, "lat": 34.76, "k": 3, "amenity": "drinking_water"}
    )
    assert r.status_code == 200
    assert "/static/vendor/leaflet" in r.text
    r = client.get("/maps/nearest", params={"lon": 113.65, "lat": 91})
    assert r.status_code == 422
    r = client.get("/maps/nearest", params={"lon": 113.65, "lat": 34.7, "lang": "fr"})
    assert r.status_code == 422


def test_coverage_at_a_time_counts_open_stations_and_standing_buses(client: TestClient) -> None:
    day = client.get("/coverage", params={"open_at": "2026-07-15T13:00"}).json()
    night = client.get("/coverage", params={"open_at": "2026-07-15T03:00"}).json()
    always = client.get("/coverage").json()
    assert "3 cooling buses standing then" in day["stations"]
    assert "0 cooling buses" in night["stations"]
    assert night["n_stations"] < day["n_stations"]
    assert night["covered_weight_pct"] < day["covered_weight_pct"]
    assert always["stations"] == "82 stations"
    r = client.get("/coverage", params={"open_at": "tomorrow"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "open_at"]


def test_where_buses_should_stand_this_afternoon(client: TestClient) -> None:
    r = client.post(
        "/analysis/site", json={"n_new": 2, "open_at": "2026-07-15T13:00", "open_for_min": 120}
    )
    assert r.status_code == 200
    out = r.json()
    assert "stations open at 2026-07-15T13:00" in out["stations"]
    assert len(out["sites"]["features"]) == 2
    r = client.post("/analysis/site", json={"n_new": 2, "open_at": "soon"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "open_at"]


def test_coverage_with_access(client: TestClient) -> None:
    out = client.get("/coverage", params={"access": "true"}).json()
    assert len(out["access"]["per_district"]) == 12
    assert 0 < out["access"]["no_access_pct"] <= 100
    assert "access" not in client.get("/coverage").json()
