"""The planner map's walking layer in headless Chromium (harness of test_maps_browser):
the 15-minute walking areas are listed beside the 1 km circles and toggle, and a station
far from every walkable way gets a mark; the served map by walking (metric=walk) loads
with its walking areas and headline. Real data: the Helsinki demo and its extract."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from tests.test_maps_browser import (
    Site,
    assert_clean,
    browser,
    layer_names,
    publish,
    pytestmark,
    site,
    visit,
)
from yizhan.api import create_app
from yizhan.maps import planner_map
from yizhan.maps.i18n import format_distance, label
from yizhan.network import build_network, save_network
from yizhan.query.walk_studies import walk_layers
from yizhan.query.walking import Walking
from yizhan.settings import BUNDLED_DATA, Settings
from yizhan.stations.registry import StationFilter, from_document

__all__ = ["browser", "pytestmark", "site"]

DATA = Path(__file__).resolve().parent / "data" / "network"

COUNT_WALK = """() => { const map = yz.stationLayers[0]._map; let n = 0;
  map.eachLayer(l => { if (l.feature && l.feature.properties
                            && l.feature.properties.minutes === 15) { n++; } });
  return n; }"""


def test_walking_layer_toggles_and_far_station_is_marked(browser: Browser, site: Site) -> None:
    doc = json.loads((BUNDLED_DATA / "helsinki-amenities.geojson").read_text(encoding="utf-8"))
    far = json.loads(json.dumps(doc["features"][0]))
    far["id"] = "hki-in-the-sea"
    far["geometry"]["coordinates"] = [24.99, 60.13]
    doc["features"].append(far)
    registry = from_document(doc)
    net = build_network(DATA / "helsinki.osm.pbf")[0].network
    walking = Walking(net, 4.5, 300.0, "helsinki.network")
    layers = walk_layers(walking, registry, StationFilter(), 15)
    assert [f["id"] for f in layers["far_from_network"]["features"]] == ["hki-in-the-sea"]
    m = planner_map(registry, lang="en", radius_m=1000.0, **layers)
    v = visit(browser, publish(site, "planner-walk.html", m), site.url)
    page = v.page
    try:
        names = layer_names(page)
        assert "15-minute walk" in names
        circles = label("layer_coverage", "en", radius=format_distance(1000.0, "en"))
        assert names.index("15-minute walk") == names.index(circles) + 1
        assert any(n.startswith("Stations far from any walkable way (1)") for n in names)
        assert page.evaluate(COUNT_WALK) >= 1
        assert page.locator(".yz-far").count() == 1
        box = page.locator(".leaflet-control-layers-overlays label").filter(
            has_text="15-minute walk"
        )
        toggle = box.locator("input")
        assert toggle.is_checked()
        toggle.click()
        assert not toggle.is_checked() and page.evaluate(COUNT_WALK) == 0
        toggle.click()
        assert toggle.is_checked() and page.evaluate(COUNT_WALK) >= 1
        assert_clean(v)
    finally:
        page.close()


COUNT_WALK_5 = COUNT_WALK.replace("=== 15", "=== 5")


def test_the_map_by_walking_served_on_the_helsinki_demo(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    """GET /maps/coverage?metric=walk on the Helsinki demo (network, districts): the page
    loads clean, the walking-area layer is drawn, the headline says the share on foot
    (the /coverage?metric=walk figure) with the circles' share beside it."""
    net_file = tmp_path / "helsinki.network"
    save_network(net_file, build_network(DATA / "helsinki.osm.pbf")[0])
    settings = Settings(
        registry=BUNDLED_DATA / "helsinki-amenities.geojson",
        network=net_file,
        districts=DATA / "helsinki-quarters.geojson",
        hex_size_m=100.0,
        state_dir=tmp_path / "state",
        timezone="Europe/Helsinki",
    )
    with TestClient(create_app(settings)) as c:
        params = {"metric": "walk", "minutes": 5, "lang": "en", "sites": 1}
        r = c.get("/maps/coverage", params=params)
        assert r.status_code == 200, r.text
        pct = c.get("/coverage", params={"metric": "walk", "minutes": 5}).json()[
            "covered_weight_pct"
        ]
    (site.root / "planner-on-foot.html").write_text(r.text, encoding="utf-8")
    v = visit(browser, f"{site.url}/planner-on-foot.html", site.url)
    page = v.page
    try:
        names = layer_names(page)
        assert "5-minute walk" in names
        assert label("layer_coverage", "en", radius=format_distance(1000.0, "en")) in names
        assert page.evaluate(COUNT_WALK_5) >= 1
        head = page.locator(".yz-headline .yz-hl-title")
        assert head.is_visible()
        assert head.inner_text() == (
            f"Covered within 5 min on foot (4.5 km/h, network helsinki.network): {pct:.1f}%"
        )
        assert "for comparison, 1.0 km circles:" in page.locator(".yz-headline").inner_text()
        legend = page.locator(".leaflet-bottom.leaflet-right").inner_text()
        assert "Within 5 min on foot (4.5 km/h, network helsinki.network)" in legend
        assert_clean(v)
    finally:
        page.close()
