"""Walking wired into the API on the Helsinki demo: /nearest?metric=walk and isochrones.

The registry is yizhan/data/helsinki-amenities.geojson (OpenStreetMap toilets, fountains,
libraries and community centres of central Helsinki, made with yizhan import and
yizhan/data/helsinki-import.toml) and the network is built from the bundled extract
tests/data/network/helsinki.osm.pbf (© OpenStreetMap contributors, ODbL).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from yizhan.api import create_app
from yizhan.settings import BUNDLED_DATA, Settings
from yizhan.stations.registry import Registry, load_registry

DATA = Path(__file__).resolve().parent / "data" / "network"
REGISTRY = BUNDLED_DATA / "helsinki-amenities.geojson"
#: Inside the extract (Esplanadi) and far outside it (the sea south of Suomenlinna).
INSIDE = (24.9445, 60.1675)
OUTSIDE = (24.99, 60.13)


@pytest.fixture(scope="module")
def settings(network_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        registry=REGISTRY,
        network=network_file,
        state_dir=tmp_path_factory.mktemp("state"),
        timezone="Europe/Helsinki",
        max_k=50,
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def registry(settings: Settings) -> Registry:
    return load_registry(REGISTRY, timezone=settings.timezone)


def brute_force(client: TestClient, registry: Registry, lon: float, lat: float) -> np.ndarray:
    """Walking metres from the point to every station: one unbounded search, no k-nearest."""
    walking = client.app.state.walking  # type: ignore[attr-defined]
    net = walking.network
    return np.asarray(net.walk_m(net.snap([lon], [lat]), walking.stations(registry), math.inf)[0])


def test_nearest_walk_is_exact_on_helsinki(client: TestClient, registry: Registry) -> None:
    rng = np.random.default_rng(12)
    for lon, lat in zip(
        rng.uniform(24.937, 24.952, 12), rng.uniform(60.166, 60.177, 12), strict=True
    ):
        r = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 5, "metric": "walk"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["query"]["metric"] == "walk"
        walks = brute_force(client, registry, float(lon), float(lat))
        order = np.lexsort((np.arange(walks.size), walks))[:5]
        got = [f["id"] for f in body["features"]]
        assert got == [registry.ids[i] for i in order]
        for f, i in zip(body["features"], order, strict=True):
            assert f["properties"]["walk_m"] == pytest.approx(walks[i], abs=0.06)
            assert f["properties"]["walk_min"] == pytest.approx(walks[i] / 75.0, abs=0.06)
            assert f["properties"]["walk_m"] >= f["properties"]["distance_m"] - 0.01


def test_nearest_walk_honours_filters(client: TestClient, registry: Registry) -> None:
    lon, lat = INSIDE
    r = client.get(
        "/nearest",
        params={"lon": lon, "lat": lat, "k": 3, "metric": "walk", "category": "hydration_point"},
    )
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    assert len(feats) == 3
    assert all(f["properties"]["category"] == "hydration_point" for f in feats)
    walks = brute_force(client, registry, lon, lat)
    cats = np.array([f["properties"]["category"] for f in registry.features])
    allowed = np.flatnonzero(cats == "hydration_point")
    best = allowed[np.argsort(walks[allowed], kind="stable")[:3]]
    assert [f["id"] for f in feats] == [registry.ids[i] for i in best]
    # radius_m is a walking distance with metric=walk
    limit = feats[1]["properties"]["walk_m"] + 0.05
    r = client.get(
        "/nearest",
        params={
            "lon": lon,
            "lat": lat,
            "k": 3,
            "metric": "walk",
            "category": "hydration_point",
            "radius_m": limit,
        },
    )
    assert [f["id"] for f in r.json()["features"]] == [f["id"] for f in feats[:2]]


def test_nearest_walk_with_open_at_keeps_only_open(client: TestClient, registry: Registry) -> None:
    lon, lat = INSIDE
    at = "2026-07-15T19:00"  # a Wednesday evening: some libraries open, others closed
    g = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 50, "open_at": at})
    open_ids = {f["id"] for f in g.json()["features"]}
    assert 0 < len(open_ids) < len(registry.ids)
    r = client.get(
        "/nearest", params={"lon": lon, "lat": lat, "k": 2, "metric": "walk", "open_at": at}
    )
    assert r.status_code == 200, r.text
    walks = brute_force(client, registry, lon, lat)
    allowed = np.array([i for i, sid in enumerate(registry.ids) if sid in open_ids])
    best = allowed[np.argsort(walks[allowed], kind="stable")[:2]]
    got = r.json()["features"]
    assert [f["id"] for f in got] == [registry.ids[i] for i in best]
    assert all(f["properties"]["open_now"] is True for f in got)


def test_great_circle_answer_unchanged(client: TestClient) -> None:
    lon, lat = INSIDE
    a = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 4})
    b = client.get("/nearest", params={"lon": lon, "lat": lat, "k": 4, "metric": "great_circle"})
    assert a.content == b.content
    assert "metric" not in a.json()["query"]
    assert all("walk_m" not in f["properties"] for f in a.json()["features"])


def test_nearest_walk_outside_the_network_is_422(client: TestClient) -> None:
    lon, lat = OUTSIDE
    r = client.get("/nearest", params={"lon": lon, "lat": lat, "metric": "walk"})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"][-1] == "lon/lat"
    assert "outside the walking network" in detail["msg"]


def test_metric_walk_without_network_is_422() -> None:
    with TestClient(create_app(Settings(registry=REGISTRY))) as c:
        r = c.get("/nearest", params={"lon": INSIDE[0], "lat": INSIDE[1], "metric": "walk"})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][-1] == "metric"
        r = c.get("/isochrone", params={"lon": INSIDE[0], "lat": INSIDE[1]})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][-1] == "metric"
    with TestClient(create_app(Settings(registry=REGISTRY))) as c:
        r = c.get("/nearest", params={"lon": INSIDE[0], "lat": INSIDE[1], "metric": "taxi"})
        assert r.status_code == 422
        assert "metric" in r.text


def polygons(body: dict[str, Any]) -> list[Any]:
    return [shapely.geometry.shape(f["geometry"]) for f in body["features"]]


def test_point_isochrones_largest_first_and_nested(client: TestClient, registry: Registry) -> None:
    lon, lat = INSIDE
    r = client.get("/isochrone", params={"lon": lon, "lat": lat, "minutes": "5,15,10"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["properties"]["minutes"] for f in body["features"]] == [15.0, 10.0, 5.0]
    big, mid, small = polygons(body)
    assert big.area > mid.area > small.area > 0
    # nested, up to the rounding of drawn street ends (docs/walking.md: under 2 % of 25 m)
    assert mid.difference(big).area < 0.01 * mid.area
    assert small.difference(mid).area < 0.01 * small.area
    # every station within 10 minutes on foot lies inside the 10-minute area
    walks = brute_force(client, registry, lon, lat)
    for i in np.flatnonzero(walks <= 10 * 75.0 - 1.0):
        walking = client.app.state.walking  # type: ignore[attr-defined]
        snap = walking.stations(registry)
        assert mid.buffer(1e-7).contains(shapely.Point(snap.lon[i], snap.lat[i]))


def test_station_isochrone(client: TestClient, registry: Registry) -> None:
    sid = registry.ids[0]
    r = client.get(f"/stations/{sid}/isochrone", params={"minutes": "5,10,15"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["properties"]["station_id"] for f in body["features"]] == [sid] * 3
    assert body["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert client.get("/stations/nope/isochrone").status_code == 404
    bad = client.get(f"/stations/{sid}/isochrone", params={"minutes": "0,abc"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "minutes"
    far = client.get("/isochrone", params={"lon": OUTSIDE[0], "lat": OUTSIDE[1]})
    assert far.status_code == 422 and far.json()["detail"][0]["loc"][-1] == "lon/lat"


def test_planner_map_has_the_walking_layer(client: TestClient) -> None:
    r = client.get("/maps/coverage", params={"lang": "en", "minutes": 10})
    assert r.status_code == 200
    assert '"walkAreas"' in r.text and "10-minute walk" in r.text
    with TestClient(create_app(Settings(registry=REGISTRY))) as c:
        plain = c.get("/maps/coverage", params={"lang": "en"})
        assert plain.status_code == 200 and '"walkAreas"' not in plain.text
        r = c.get("/maps/coverage", params={"metric": "walk"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "metric"


def test_find_page_minutes_come_from_the_network(client: TestClient) -> None:
    lon, lat = INSIDE
    r = client.get("/find", params={"lon": lon, "lat": lat, "open": "0", "lang": "en"})
    assert r.status_code == 200
    shown = re.findall(r'<span class="walk">about (\d+) min on foot</span>', r.text)
    walk = client.get(
        "/nearest", params={"lon": lon, "lat": lat, "k": len(shown), "metric": "walk"}
    )
    expected = [
        str(max(1, math.ceil(f["properties"]["walk_min"]))) for f in walk.json()["features"]
    ]
    assert shown and shown == expected
    # the straight-line estimate (x 1.3) differs somewhere: the network is what is shown
    straight = [
        str(max(1, math.ceil(f["properties"]["distance_m"] * 1.3 / 75.0)))
        for f in walk.json()["features"]
    ]
    assert straight != expected
    # outside the network the page still answers, with the straight-line estimate
    far = client.get("/find", params={"lon": OUTSIDE[0], "lat": OUTSIDE[1], "open": "0"})
    assert far.status_code == 200


def test_nearest_walk_with_a_cooling_bus(settings: Settings, tmp_path: Path) -> None:
    """A bus standing at a stop is a candidate like a station: exact on foot as well."""
    doc = json.loads(REGISTRY.read_text(encoding="utf-8"))
    stop = [24.9440, 60.1690]  # a street corner north of Esplanadi
    doc["features"].append(
        {
            "type": "Feature",
            "id": "bus-hki-1",
            "geometry": {"type": "MultiPoint", "coordinates": [stop]},
            "properties": {
                "name": "Cooling bus (test)",
                "kind": "cooling_bus",
                "category": "cooling_center",
                "operator": "test operator",
                "amenities": ["drinking_water", "seating"],
                "stops": [
                    {"stop_id": "s1", "name": "corner", "location": stop, "opening_hours": "24/7"}
                ],
                "status": "operational",
                "source": "test",
            },
        }
    )
    path = tmp_path / "with-bus.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    s = settings.model_copy(update={"registry": path, "state_dir": tmp_path})
    with TestClient(create_app(s)) as c:
        lon, lat = 24.9441, 60.1689
        r = c.get("/nearest", params={"lon": lon, "lat": lat, "k": 3, "metric": "walk"})
        assert r.status_code == 200, r.text
        feats = r.json()["features"]
        assert feats[0]["id"] == "bus-hki-1"
        net = c.app.state.walking.network  # type: ignore[attr-defined]
        expected = net.walk_m(net.snap([lon], [lat]), net.snap([stop[0]], [stop[1]]), math.inf)
        assert feats[0]["properties"]["walk_m"] == pytest.approx(float(expected[0][0]), abs=0.06)
        walks = [f["properties"]["walk_m"] for f in feats]
        assert walks == sorted(walks)
