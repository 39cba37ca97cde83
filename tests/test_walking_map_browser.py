"""The planner map's walking layer in headless Chromium (harness of test_maps_browser):
the 15-minute walking areas are listed beside the 1 km circles and toggle, and a station
far from every walkable way gets a mark. Real data: the Helsinki demo and its extract."""

from __future__ import annotations

import json
from pathlib import Path

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
from yizhan.maps import planner_map
from yizhan.maps.i18n import format_distance, label
from yizhan.network import build_network
from yizhan.query.walk_studies import walk_layers
from yizhan.query.walking import Walking
from yizhan.settings import BUNDLED_DATA
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
