"""The planner map at a planner's desktop size (1440×900) in headless Chromium, offline:
the headline and district table, base maps (Amap's GCJ-02 moves every overlay, Tianditu
moves nothing), the search for cooling buses, and a map without demand.

Same requirements as ``tests/test_maps_browser.py`` (``/usr/bin/chromium``, playwright, the
vendored assets); every request to another host is aborted and recorded, except map tiles
(OpenStreetMap, Amap, Tianditu), which get a blank tile and are counted per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_maps import sample_flags, sample_layers, sample_registry
from tests.test_maps_browser import (
    BLANK_TILE,
    CHROMIUM,
    CHROMIUM_ARGS,
    Site,
    browser,
    publish,
    site,
)
from yizhan.assets import missing
from yizhan.cli import main
from yizhan.geo.coverage import coverage
from yizhan.geo.crs import transform
from yizhan.geo.distance import haversine_m
from yizhan.maps import planner_map
from yizhan.maps.study_map import coverage_map
from yizhan.query.studies import bundled_study, load_study
from yizhan.settings import DEFAULT_REGISTRY
from yizhan.stations.registry import KINDS, StationFilter, load_registry

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

__all__ = ["browser", "site"]  # fixtures shared with tests/test_maps_browser.py

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="needs playwright (pip install playwright)"),
    pytest.mark.skipif(bool(missing()), reason="map assets not fetched: run `yizhan assets fetch`"),
]

DESKTOP = {"width": 1440, "height": 900}
TILE_HOSTS = ("tile.openstreetmap.org", "is.autonavi.com", "tianditu.gov.cn")
TIANDITU_KEY = "0123456789abcdef0123456789abcdef"
_ = CHROMIUM_ARGS  # the browser fixture's arguments


@dataclass
class Visit:
    page: Page
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    tiles: dict[str, list[str]] = field(default_factory=dict)


def visit(browser: Browser, url: str, local_prefix: str) -> Visit:
    page = browser.new_page(viewport=DESKTOP)
    v = Visit(page)
    page.on("pageerror", lambda exc: v.errors.append(str(exc)))
    page.on("console", lambda msg: v.errors.append(msg.text) if msg.type == "error" else None)

    def route(r: Any) -> None:
        u = r.request.url
        host = next((h for h in TILE_HOSTS if h in u), None)
        if u.startswith(local_prefix):
            r.continue_()
        elif host is not None:
            v.tiles.setdefault(host, []).append(u)
            r.fulfill(status=200, content_type="image/png", body=BLANK_TILE)
        else:
            v.external.append(u)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.evaluate("() => yz.whenReady()")
    return v


def assert_clean(v: Visit) -> None:
    assert v.errors == []
    assert v.external == []


def box(page: Page, selector: str) -> dict[str, float]:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, selector
    return b


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


# -- item 8: headline and district table ---------------------------------------------------------


@pytest.fixture(scope="module")
def seoul() -> tuple[Any, Any, Any]:
    """The bundled Seoul study: registry, study and its coverage within 500 m."""
    b = bundled_study("seoul")
    reg = load_registry(b.registry)
    study = load_study(b.spec)
    result = coverage(reg, study.demand, b.radius_m, StationFilter.make())
    return reg, study, result


def test_seoul_headline_and_sortable_district_table(
    browser: Browser, site: Site, seoul: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    reg, study, result = seoul
    fmap, _, _ = coverage_map(reg, study, radius_m=500.0, n_sites=3, lang="en")
    v = visit(browser, publish(site, "seoul-en.html", fmap), site.url)
    page = v.page
    try:
        head = page.locator(".yz-headline")
        assert head.locator(".yz-hl-title").text_content() == (
            f"Covered within 500 m: {result.covered_weight_pct:.1f}%"
        )
        lines = head.locator(".yz-hl-line").all_text_contents()
        assert lines[0] == (
            f"{result.covered_weight:,.0f} of {result.total_weight:,.0f} people aged 65+ "
            "within reach"
        )
        assert lines[1].startswith("4,087 stations counted · radius 500 m · as of ")
        assert "UTC+" in lines[1]
        assert lines[2].startswith("Demand: residents aged 65+")
        # At 1440×900 the headline covers neither the search box nor the layer list.
        hb = box(page, ".yz-headline")
        assert not overlap(hb, box(page, ".yz-search"))
        assert not overlap(hb, box(page, ".leaflet-control-layers"))
        # The heat legend says what is uncovered.
        legend = page.locator(".yz-legend").text_content() or ""
        assert "Warmer = more uncovered demand (people aged 65+)" in legend

        table = page.locator(".yz-districts")
        assert table.locator(".yz-legend-head span").text_content() == "Districts (25)"
        assert "Unit: people aged 65+" in (table.text_content() or "")
        rows = {r["district"]: r for r in result.per_district}

        def column(k: int) -> list[str]:
            return table.locator(f"tbody tr td:nth-child({k})").all_text_contents()

        def order() -> list[str]:
            return column(1)

        # First: most uncovered demand first.
        by_uncovered = sorted(rows, key=lambda d: -(rows[d]["demand"] - rows[d]["covered"]))
        assert order() == by_uncovered
        assert table.locator("th[aria-sort=descending]").text_content() == "Uncovered"
        # Covered share: descending, then ascending on a second click.
        share = table.locator("th button").nth(2)  # District, Demand, Covered, …
        share.click()
        shares = [rows[d]["share_pct"] for d in order()]
        assert shares == sorted(shares, reverse=True)
        share.click()
        shares = [rows[d]["share_pct"] for d in order()]
        assert shares == sorted(shares)
        assert table.locator("th[aria-sort=ascending]").text_content() == "Covered"
        assert column(3)[0] == f"{min(shares):.1f}%"
        table.locator("th button").nth(0).click()
        assert order() == sorted(rows, key=lambda d: d)  # Hangul sorts by code point here
        # A row zooms to its district and shows the districts layer.
        worst = min(rows, key=lambda d: rows[d]["share_pct"])
        table.locator("tbody tr", has_text=worst).first.click()
        ok = page.evaluate(
            """(name) => { const layer = yz.find("districts")[0], map = yz.stationLayers[0]._map;
                           let hit = null;
                           layer.eachLayer(l => { if (l.feature.properties.name === name) hit = l; });
                           return map.hasLayer(layer)
                                  && map.getBounds().pad(0.01).contains(hit.getBounds()); }""",
            worst,
        )
        assert ok
        page.screenshot(path=str(tmp_path / "seoul-en.png"))
        # A click folds the headline to its title, another unfolds it.
        head.click()
        assert not head.locator(".yz-hl-line").first.is_visible()
        head.click()
        assert head.locator(".yz-hl-line").first.is_visible()
        assert_clean(v)
    finally:
        page.close()


# -- item 9: base maps -----------------------------------------------------------------------


def _max_error_m(got: list[list[float]], lon: Any, lat: Any) -> float:
    """Largest distance (m) between browser [lat, lon] pairs and WGS-84 points converted to
    GCJ-02 with yizhan.geo.crs."""
    glon, glat = transform(np.asarray(lon, float), np.asarray(lat, float), "wgs84", "gcj02")
    g = np.asarray(got, dtype=np.float64)
    assert g.shape == (len(glon), 2)
    return float(np.max(haversine_m(g[:, 1], g[:, 0], glon, glat)))


def _max_gap_m(got: list[list[float]], lon: Any, lat: Any) -> float:
    g = np.asarray(got, dtype=np.float64)
    return float(
        np.max(haversine_m(g[:, 1], g[:, 0], np.asarray(lon, float), np.asarray(lat, float)))
    )


READ_POSITIONS = """() => {
  const out = {};
  const st = yz.stationLayers[0];
  out.stations = st.yz.markers.map(m => [m.getLatLng().lat, m.getLatLng().lng]);
  const circles = [];
  yz.find("coverage")[0].eachLayer(c => circles.push([c.yzI, c.getLatLng().lat, c.getLatLng().lng]));
  out.circles = circles;
  out.heat = yz.find("heat")[0]._latlngs.map(p => Array.isArray(p) ? [p[0], p[1]] : [p.lat, p.lng]);
  const ring = (kind) => { const pts = [];
    yz.find(kind)[0].eachLayer(l => { const ll = l.getLatLngs();
      const flat = (a) => Array.isArray(a) ? a.flatMap(flat) : [a];
      flat(ll).forEach(p => pts.push([p.lat, p.lng])); });
    return pts; };
  out.gaps = ring("gaps");
  out.districts = ring("districts");
  out.sites = []; yz.find("sites")[0].eachLayer(m => out.sites.push([m.getLatLng().lat, m.getLatLng().lng]));
  out.stops = []; out.bus = [];
  yz.find("buses")[0].eachLayer(l => {
    if (l.yzS) out.stops.push([l.getLatLng().lat, l.getLatLng().lng]);
    else if (l.getIcon) out.bus.push([l.getLatLng().lat, l.getLatLng().lng]);
  });
  out.rings = []; const nc = yz.find("needsCheck")[0];
  if (nc) nc.eachLayer(r => out.rings.push([r.getLatLng().lat, r.getLatLng().lng]));
  return out;
}"""


def _geo_positions(fc: dict[str, Any]) -> tuple[list[float], list[float]]:
    lon: list[float] = []
    lat: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], int | float):
            lon.append(float(c[0]))
            lat.append(float(c[1]))
        else:
            for x in c:
                walk(x)

    for f in fc["features"]:
        coords = f["geometry"]["coordinates"]
        if f["geometry"]["type"] == "Polygon":
            coords = [ring[:-1] for ring in coords]  # Leaflet drops the closing position
        walk(coords)
    return lon, lat


def _choose_base(page: Page, name: str) -> None:
    page.locator(".leaflet-control-layers-base label", has_text=name).locator("input").click()
    page.evaluate("() => yz.whenReady()")


def test_amap_base_moves_every_overlay_to_gcj02_and_back(browser: Browser, site: Site) -> None:
    reg = sample_registry()
    layers = sample_layers()
    m = planner_map(reg, lang="en", flags=sample_flags(), stale_after_days=180, **layers)
    v = visit(browser, publish(site, "planner-amap.html", m), site.url)
    page = v.page
    try:
        bases = page.locator(".leaflet-control-layers-base label").all_text_contents()
        assert [b.strip() for b in bases] == ["OpenStreetMap", "Amap (GCJ-02)"]  # no key
        # The bus stands at its first stop at 11:00.
        page.evaluate(
            "() => { const s = document.querySelector('.yz-slider input'); s.value = 660;"
            " s.dispatchEvent(new Event('input')); }"
        )
        before = page.evaluate(READ_POSITIONS)
        assert "is.autonavi.com" not in v.tiles
        _choose_base(page, "Amap")
        assert page.evaluate("() => yz.gcj(yz.stationLayers[0]._map)") is True
        after = page.evaluate(READ_POSITIONS)
        assert len(v.tiles.get("is.autonavi.com", [])) > 0  # Amap's tiles were drawn

        is_station = reg.kind == KINDS.index("station")
        lon, lat = reg.lon[is_station], reg.lat[is_station]
        # Every overlay sits where yizhan.geo.crs puts it, within 0.5 m (the offset is ~500 m).
        assert _max_error_m(after["stations"], lon, lat) < 0.5
        assert _max_gap_m(after["stations"], lon, lat) > 200
        idx = [c[0] for c in after["circles"]]
        assert _max_error_m([c[1:] for c in after["circles"]], lon[idx], lat[idx]) < 0.5
        ulon, ulat, uw = layers["uncovered"]
        assert _max_error_m(after["heat"], ulon[uw > 0], ulat[uw > 0]) < 0.5
        glon, glat = _geo_positions(layers["gaps"])
        assert _max_error_m(after["gaps"], glon, glat) < 0.5
        dlon, dlat = _geo_positions(layers["districts"])
        assert _max_error_m(after["districts"], dlon, dlat) < 0.5
        slon, slat = _geo_positions(layers["sites"])
        assert _max_error_m(after["sites"], slon, slat) < 0.5
        stops = layers["buses"][0]["properties"]["stops"]
        assert (
            _max_error_m(
                after["stops"], [s["location"][0] for s in stops], [s["location"][1] for s in stops]
            )
            < 0.5
        )
        assert _max_error_m(after["bus"], [113.665], [34.755]) < 0.5  # standing at 二七广场
        ring_ids = ["zz-003", "zz-004"]
        rl = [reg.feature(f)["geometry"]["coordinates"] for f in ring_ids]
        assert _max_error_m(after["rings"], [c[0] for c in rl], [c[1] for c in rl]) < 0.5
        # Clustering is redone at the new positions: every station is still in the layer.
        assert page.evaluate("() => yz.stationLayers[0].getLayers().length") == 8

        # Back to OpenStreetMap: the WGS-84 positions again.
        _choose_base(page, "OpenStreetMap")
        back = page.evaluate(READ_POSITIONS)
        for key in ("stations", "heat", "gaps", "districts", "sites", "stops", "bus", "rings"):
            b = np.asarray(before[key], dtype=np.float64)
            assert _max_gap_m(back[key], b[:, 1], b[:, 0]) < 0.1, key
        assert_clean(v)
    finally:
        page.close()


def test_tianditu_base_needs_a_key_and_moves_nothing(browser: Browser, site: Site) -> None:
    reg = sample_registry()
    m = planner_map(reg, lang="zh", tianditu_key=TIANDITU_KEY, **sample_layers())
    v = visit(browser, publish(site, "planner-tianditu.html", m), site.url)
    page = v.page
    try:
        bases = page.locator(".leaflet-control-layers-base label").all_text_contents()
        assert [b.strip() for b in bases] == [
            "OpenStreetMap 开放街图",
            "高德地图（GCJ-02）",
            "天地图",
        ]
        before = page.evaluate(READ_POSITIONS)
        _choose_base(page, "天地图")
        after = page.evaluate(READ_POSITIONS)
        assert page.evaluate("() => yz.gcj(yz.stationLayers[0]._map)") is False
        for key in ("stations", "heat", "gaps", "districts", "sites"):
            assert after[key] == before[key], key
        urls = v.tiles.get("tianditu.gov.cn", [])
        assert any("/vec_w/" in u for u in urls) and any("/cva_w/" in u for u in urls)
        assert all(f"tk={TIANDITU_KEY}" in u for u in urls)
        assert_clean(v)
    finally:
        page.close()


# -- item 10: search finds cooling buses; a registry without demand ---------------------------


def test_search_finds_cooling_buses(browser: Browser, site: Site) -> None:
    m = planner_map(sample_registry(), lang="en", **sample_layers())
    v = visit(browser, publish(site, "planner-search-bus.html", m), site.url)
    page = v.page
    try:

        def at(minutes: int) -> None:
            page.evaluate(
                "(t) => { const s = document.querySelector('.yz-slider input'); s.value = t;"
                " s.dispatchEvent(new Event('input')); }",
                minutes,
            )

        for query in ("清凉巴士", "豫A·12345", "bus-1"):
            page.fill(".yz-search input", query)
            hit = page.locator(".yz-search li.yz-hit-bus")
            hit.first.wait_for()
            assert hit.count() == 1, query
            assert hit.locator("small").text_content() == "cooling bus · 豫A·12345 · 郑州公交"
        # In service at 11:00: the map centres on the bus and names its stop (Enter picks
        # the first hit: the list is searched again first, never a stale one).
        at(11 * 60)
        page.fill(".yz-search input", "清凉巴士")
        page.press(".yz-search input", "Enter")
        tip = page.wait_for_selector(".leaflet-tooltip .yz-title")
        assert tip is not None and tip.text_content() == "清凉巴士 1 号"
        page.wait_for_function(
            "() => { const c = yz.stationLayers[0]._map.getCenter();"
            " return Math.abs(c.lng - 113.665) < 1e-4 && Math.abs(c.lat - 34.755) < 1e-4; }"
        )
        # Not in service at 22:00: its stops are shown, and why.
        at(22 * 60)
        page.fill(".yz-search input", "bus-1")
        page.press(".yz-search input", "Enter")
        note = page.wait_for_selector(".leaflet-popup-content .yz-sub")
        assert note is not None
        assert note.text_content() == "Not in service at this time: its stops are shown"
        # Stations are still found as before.
        page.fill(".yz-search input", "人民公园")
        page.wait_for_function(
            "() => { const l = [...document.querySelectorAll('.yz-search li')];"
            " return l.length > 0 && l.every(li => li.textContent.includes('人民公园')); }"
        )
        assert page.locator(".yz-search li.yz-hit").count() == 1
        assert page.locator(".yz-search li.yz-hit-bus").count() == 0
        assert_clean(v)
    finally:
        page.close()


def test_map_of_a_registry_without_demand_shows_stations_and_how_to_add_demand(
    browser: Browser, tmp_path: Path
) -> None:
    own = tmp_path / "own.geojson"
    own.write_text(DEFAULT_REGISTRY.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "own.html"
    assert main(["map", str(own), "-o", str(out), "--lang", "en", "-q"]) == 0
    v = visit(browser, out.as_uri(), out.as_uri())
    page = v.page
    try:
        head = page.locator(".yz-headline")
        assert head.locator(".yz-hl-title").text_content() == (
            "Stations only: 82 stations, no demand set"
        )
        note = head.locator(".yz-hl-note").text_content() or ""
        assert note.startswith("To add demand: yizhan map REGISTRY -o map.html --demand ")
        assert page.evaluate("() => yz.stationLayers[0].getLayers().length") == 82
        names = page.eval_on_selector_all(
            ".leaflet-control-layers-overlays label > span > span",
            "els => els.map(e => e.textContent.trim())",
        )
        assert "Uncovered demand (heat)" not in names and "Coverage gaps" not in names
        assert page.locator(".yz-districts").count() == 0
        assert_clean(v)
    finally:
        page.close()
