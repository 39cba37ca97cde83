"""The HTTP API through TestClient(create_app(...)): results, filters and every bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from yizhan.api import create_app
from yizhan.errors import RegistryInvalidError
from yizhan.geo.crs import transform
from yizhan.geo.distance import haversine_m
from yizhan.settings import Settings
from yizhan.stations.registry import from_document


@pytest.fixture
def client(small_doc: dict[str, Any]) -> Iterator[TestClient]:
    settings = Settings(max_k=4, max_limit=3, default_limit=2)
    with TestClient(create_app(settings, registry=from_document(small_doc))) as c:
        yield c


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["stations"] == 10


def test_nearest_returns_geojson_ordered_by_distance(client: TestClient) -> None:
    r = client.get(
        "/nearest", params={"lon": 113.652, "lat": 34.751, "k": 3, "amenity": "drinking_water"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    ids = [f["id"] for f in fc["features"]]
    assert ids == ["zz-05", "zz-07", "zz-09"]
    d = [f["properties"]["distance_m"] for f in fc["features"]]
    assert d == sorted(d)
    lon, lat = fc["features"][0]["geometry"]["coordinates"]
    assert d[0] == pytest.approx(float(haversine_m(113.652, 34.751, lon, lat)), abs=0.01)
    assert 0 <= fc["features"][0]["properties"]["bearing_deg"] < 360
    assert fc["query"]["k"] == 3 and fc["query"]["amenity"] == ["drinking_water"]


def test_nearest_filters_combine(client: TestClient) -> None:
    r = client.get(
        "/nearest",
        params=[
            ("lon", 113.6),
            ("lat", 34.75),
            ("amenity", "toilet"),
            ("amenity", "drinking_water"),
            ("category", "bank_outlet"),
        ],
    )
    assert [f["id"] for f in r.json()["features"]] == ["zz-07"]
    r = client.get("/nearest", params={"lon": 113.6, "lat": 34.75, "status": "temporarily_closed"})
    assert [f["id"] for f in r.json()["features"]] == ["zz-03"]
    r = client.get("/nearest", params={"lon": 113.6, "lat": 34.75, "k": 4, "radius_m": 1500})
    assert [f["id"] for f in r.json()["features"]] == ["zz-00", "zz-01"]


def test_k_above_maximum_is_clamped(client: TestClient) -> None:
    r = client.get("/nearest", params={"lon": 113.6, "lat": 34.75, "k": 50})
    assert r.status_code == 200
    assert len(r.json()["features"]) == 4 and r.json()["query"]["k"] == 4


def test_gcj02_input_and_output(client: TestClient) -> None:
    # The caller's GCJ-02 position of zz-05 finds zz-05 at ~0 m, and can get GCJ-02 back.
    glon, glat = (float(v) for v in transform(113.65, 34.75, "wgs84", "gcj02"))
    r = client.get(
        "/nearest", params={"lon": glon, "lat": glat, "k": 1, "crs": "gcj02", "out_crs": "gcj02"}
    )
    f = r.json()["features"][0]
    assert f["id"] == "zz-05"
    assert f["properties"]["distance_m"] < 0.05
    assert f["geometry"]["coordinates"] == pytest.approx([glon, glat], abs=1e-6)
    # The same numbers read as WGS-84 are 300-700 m off: the offset the conversion removes.
    assert 300 < float(haversine_m(glon, glat, 113.65, 34.75)) < 700


def test_nearest_skips_closed_station_unless_asked(client: TestClient) -> None:
    r = client.get("/nearest", params={"lon": 113.63, "lat": 34.75, "k": 1, "amenity": "toilet"})
    assert [f["id"] for f in r.json()["features"]] == [
        "zz-01"
    ]  # zz-03 is closer but temporarily closed


BAD_REQUESTS = [
    ("/nearest", {"lon": 113.6, "lat": 91}, "lat"),
    ("/nearest", {"lon": 181, "lat": 34}, "lon"),
    ("/nearest", {"lon": "nan", "lat": 34}, "lon"),
    ("/nearest", {"lon": 113.6, "lat": "inf"}, "lat"),
    ("/nearest", {"lon": "east", "lat": 34}, "lon"),
    ("/nearest", {"lat": 34}, "lon"),
    ("/nearest", {"lon": 113.6, "lat": 34, "k": 0}, "k"),
    ("/nearest", {"lon": 113.6, "lat": 34, "k": -3}, "k"),
    ("/nearest", {"lon": 113.6, "lat": 34, "radius_m": 0}, "radius_m"),
    ("/nearest", {"lon": 113.6, "lat": 34, "radius_m": "nan"}, "radius_m"),
    ("/nearest", {"lon": 113.6, "lat": 34, "amenity": "coffee"}, "amenity"),
    ("/nearest", {"lon": 113.6, "lat": 34, "kind": "tent"}, "kind"),
    ("/nearest", {"lon": 113.6, "lat": 34, "category": "shop"}, "category"),
    ("/nearest", {"lon": 113.6, "lat": 34, "status": "open"}, "status"),
    ("/nearest", {"lon": 113.6, "lat": 34, "crs": "mars"}, "crs"),
    ("/nearest", {"lon": 113.6, "lat": 34, "out_crs": "utm"}, "out_crs"),
    ("/nearest", {"lon": 113.6, "lat": 34, "open_at": "tomorrow"}, "open_at"),
    ("/nearest", {"lon": 113.6, "lat": 34, "open_at": "2026-07-15T25:00"}, "open_at"),
    ("/nearest", {"lon": 113.6, "lat": 34, "open_for_min": -1}, "open_for_min"),
    ("/nearest", {"lon": 113.6, "lat": 34, "open_for_min": 1441}, "open_for_min"),
    ("/nearest", {"lon": 113.6, "lat": 34, "open_for_min": "long"}, "open_for_min"),
    ("/buses/bus-1/timeline", {"date": "15/07/2026"}, "date"),
    ("/stations", {"bbox": "1,2,3"}, "bbox"),
    ("/stations", {"bbox": "a,b,c,d"}, "bbox"),
    ("/stations", {"bbox": "1,2,3,nan"}, "bbox"),
    ("/stations", {"bbox": "1,50,3,40"}, "bbox"),
    ("/stations", {"bbox": "1,2,300,4"}, "bbox"),
    ("/stations", {"limit": 0}, "limit"),
    ("/stations", {"offset": -1}, "offset"),
    ("/stations", {"offset": 18446744073709551616}, "offset"),
    ("/stations", {"offset": 10_000_001}, "offset"),
    ("/stations", {"district": ""}, "district"),
    ("/stations", {"district": "区" * 201}, "district"),
    ("/stations", {"q": ""}, "q"),
    ("/stations", {"q": "x" * 201}, "q"),
    ("/export/stations.geojson", {"district": "区" * 201}, "district"),
    ("/export/stations.csv", {"q": ""}, "q"),
    ("/stations", {"amenity": "sauna"}, "amenity"),
    ("/stations/zz-00", {"out_crs": "x"}, "out_crs"),
]


@pytest.mark.parametrize(("path", "params", "param"), BAD_REQUESTS)
def test_bad_input_gets_422_naming_the_parameter(
    client: TestClient, path: str, params: dict[str, Any], param: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert any(loc[0] == "query" and loc[1] == param for loc in locs), locs
    assert all(e["msg"] for e in r.json()["detail"])


def test_unknown_station_is_404(client: TestClient) -> None:
    r = client.get("/stations/nope")
    assert r.status_code == 404
    assert "nope" in r.json()["detail"]


def test_station_by_id_keeps_unknown_properties(small_doc: dict[str, Any]) -> None:
    small_doc["features"][2]["properties"]["x_note"] = "kept"
    with TestClient(create_app(Settings(), registry=from_document(small_doc))) as c:
        f = c.get("/stations/zz-02").json()
    assert f["id"] == "zz-02" and f["properties"]["x_note"] == "kept"


def test_stations_listing_filters_and_pages(client: TestClient) -> None:
    r = client.get("/stations")
    fc = r.json()
    assert fc["numberMatched"] == 10 and fc["numberReturned"] == 2 and fc["limit"] == 2
    assert [f["id"] for f in fc["features"]] == ["zz-00", "zz-01"]
    nxt = next(link for link in fc["links"] if link["rel"] == "next")["href"]
    assert [f["id"] for f in client.get(nxt).json()["features"]] == ["zz-02", "zz-03"]
    # limit above the maximum is clamped, not an error
    r = client.get("/stations", params={"limit": 500})
    assert r.status_code == 200 and r.json()["limit"] == 3
    r = client.get("/stations", params={"bbox": "113.615,34.7,113.645,34.8"})
    assert [f["id"] for f in r.json()["features"]] == ["zz-02", "zz-03"]
    r = client.get("/stations", params={"district": "金水区", "amenity": "toilet", "limit": 3})
    assert [f["id"] for f in r.json()["features"]] == ["zz-05", "zz-07", "zz-09"]
    r = client.get("/stations", params={"status": "temporarily_closed"})
    assert [f["id"] for f in r.json()["features"]] == ["zz-03"]
    r = client.get("/stations", params={"q": "station ZZ-08"})
    assert [f["id"] for f in r.json()["features"]] == ["zz-08"]
    r = client.get("/stations", params={"category": "bank_outlet"})
    assert [f["id"] for f in r.json()["features"]] == ["zz-07"]


def test_bbox_across_the_antimeridian() -> None:
    doc = make_doc(
        [
            make_feature("east", 179.5, 0.0),
            make_feature("west", -179.5, 0.0),
            make_feature("mid", 0.0, 0.0),
        ]
    )
    with TestClient(create_app(Settings(), registry=from_document(doc))) as c:
        r = c.get("/stations", params={"bbox": "179,-1,-179,1"})
    assert sorted(f["id"] for f in r.json()["features"]) == ["east", "west"]


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/nearest", "/stations", "/stations/{station_id}", "/health"} <= set(spec["paths"])


def test_server_refuses_an_invalid_registry(tmp_path: Path, small_doc: dict[str, Any]) -> None:
    small_doc["features"][1]["properties"]["amenities"] = ["jacuzzi"]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(small_doc))
    app = create_app(Settings(registry=path))
    with pytest.raises(RegistryInvalidError, match="feature 1"), TestClient(app):
        pass


def test_settings_come_from_yizhan_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_doc: dict[str, Any]
) -> None:
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps(small_doc))
    monkeypatch.setenv("YIZHAN_REGISTRY", str(path))
    monkeypatch.setenv("YIZHAN_MAX_K", "2")
    with TestClient(create_app()) as c:
        r = c.get("/nearest", params={"lon": 113.6, "lat": 34.75, "k": 9})
    assert len(r.json()["features"]) == 2


@pytest.fixture
def hours_client(small_doc: dict[str, Any]) -> Iterator[TestClient]:
    hours = ["08:00-20:00", "24/7", "Mo-Fr 09:00-17:00; PH off", None, "Mo-Su 22:00-06:00"]
    for i, f in enumerate(small_doc["features"]):
        if hours[i % 5]:
            f["properties"]["opening_hours"] = hours[i % 5]
    with TestClient(create_app(Settings(), registry=from_document(small_doc))) as c:
        yield c


def test_nearest_open_at_filters_and_reports_state(hours_client: TestClient) -> None:
    r = hours_client.get(
        "/nearest", params={"lon": 113.6, "lat": 34.75, "k": 10, "open_at": "2026-07-15T23:00"}
    )
    fc = r.json()
    assert fc["query"]["open_at"] == "2026-07-15T23:00:00+08:00"
    # At 23:00 only 24/7 and overnight stations (zz-03 is temporarily closed).
    assert [f["id"] for f in fc["features"]] == ["zz-01", "zz-04", "zz-06", "zz-09"]
    states = {
        f["id"]: (f["properties"]["open_now"], f["properties"]["next_change"])
        for f in fc["features"]
    }
    assert states["zz-01"] == (True, None)
    assert states["zz-04"] == (True, "2026-07-16T06:00+08:00")


def test_nearest_without_open_at_is_not_filtered_but_has_state(hours_client: TestClient) -> None:
    r = hours_client.get("/nearest", params={"lon": 113.6, "lat": 34.75, "k": 4})
    fc = r.json()
    assert [f["id"] for f in fc["features"]] == ["zz-00", "zz-01", "zz-02", "zz-04"]
    assert fc["query"]["open_at"] is None and fc["query"]["time"]
    for f in fc["features"]:
        assert f["properties"]["open_now"] in (True, False) and "next_change" in f["properties"]


def test_open_for_min_alone_means_from_now(hours_client: TestClient) -> None:
    r = hours_client.get(
        "/nearest", params={"lon": 113.6, "lat": 34.75, "k": 10, "open_for_min": 30}
    )
    assert r.status_code == 200
    fc = r.json()
    assert fc["query"]["open_for_min"] == 30 and fc["query"]["open_at"] is not None
    assert all(f["properties"]["open_now"] is True for f in fc["features"])


def test_stations_carry_open_now_and_unknown_hours_are_null(hours_client: TestClient) -> None:
    fc = hours_client.get("/stations", params={"limit": 10}).json()
    by_id = {f["id"]: f["properties"] for f in fc["features"]}
    assert by_id["zz-03"]["open_now"] is None and by_id["zz-03"]["next_change"] is None
    assert by_id["zz-01"]["open_now"] is True
    one = hours_client.get("/stations/zz-00").json()["properties"]
    assert isinstance(one["open_now"], bool) and one["next_change"].startswith("20")
