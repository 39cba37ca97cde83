"""The maps in headless Chromium: no errors, every layer listed, names shown as text.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``), the ``playwright`` Python
package (its own browsers are not used: never ``playwright install``) and the vendored
assets (``yizhan assets fetch``); skipped otherwise.

The browser is offline: every request that is not to the local test server is aborted
and recorded, except map tiles, which get a blank tile (tiles are not Yizhan's).

``YIZHAN_UPDATE_SCREENSHOT=1`` also writes the README screenshot ``docs/img/planner-map.png``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_maps import XSS_IMG, XSS_SCRIPT, sample_flags, sample_layers, sample_registry
from yizhan.assets import missing, vendor_dir
from yizhan.maps import planner_map, worker_map
from yizhan.maps.i18n import format_distance, label
from yizhan.maps.runtime import RUNTIME_DIR, runtime_dir
from yizhan.stations.registry import from_document

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="needs playwright (pip install playwright)"),
    pytest.mark.skipif(
        bool(missing()),
        reason="map assets not fetched: run `yizhan assets fetch`",
    ),
]


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


BLANK_TILE = _png(256, 256, (238, 236, 230))


@dataclass
class Site:
    root: Path
    url: str


@dataclass
class Visit:
    page: Page
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    tiles: int = 0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A local web server with the maps' static files where the API serves them: the
    vendored assets at /static/vendor/ and the runtime at /static/vendor/yizhan-map/."""
    root = tmp_path_factory.mktemp("site")
    served = root / "static" / "vendor"
    served.mkdir(parents=True)
    for entry in vendor_dir().iterdir():
        (served / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (served / RUNTIME_DIR).symlink_to(runtime_dir(), target_is_directory=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def visit(browser: Browser, url: str, local_prefix: str) -> Visit:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    v = Visit(page)
    page.on("pageerror", lambda exc: v.errors.append(str(exc)))
    page.on(
        "console", lambda msg: v.console_errors.append(msg.text) if msg.type == "error" else None
    )

    def route(r: Any) -> None:
        u = r.request.url
        if u.startswith(local_prefix):
            r.continue_()
        elif "tile.openstreetmap.org" in u:
            v.tiles += 1
            r.fulfill(status=200, content_type="image/png", body=BLANK_TILE)
        else:
            v.external.append(u)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.evaluate("() => yz.whenReady()")
    return v


def publish(site: Site, name: str, m: Any) -> str:
    m.save(str(site.root / name))
    return f"{site.url}/{name}"


def layer_names(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        ".leaflet-control-layers-overlays label > span > span",
        "els => els.map(e => e.textContent.trim())",
    )


def assert_clean(v: Visit) -> None:
    assert v.errors == []
    assert v.console_errors == []
    assert v.external == []


def expected_layers(lang: Any) -> list[str]:
    return [
        label("layer_stations", lang),
        label("layer_coverage", lang, radius=format_distance(500, lang)),
        label("layer_uncovered", lang),
        label("layer_gaps", lang),
        label("layer_sites", lang),
        label("layer_districts", lang),
        label("layer_buses", lang),
    ]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_planner_map_loads_offline_with_every_layer(
    browser: Browser, site: Site, tmp_path: Path, lang: str
) -> None:
    url = publish(
        site, f"planner-{lang}.html", planner_map(sample_registry(), lang=lang, **sample_layers())
    )
    v = visit(browser, url, site.url)
    try:
        assert_clean(v)
        assert v.tiles > 0
        assert layer_names(v.page) == expected_layers(lang)
        # Stations are on a canvas, clustered; all of them are loaded.
        assert v.page.evaluate("() => yz.stationLayers[0].getLayers().length") == 8
        assert v.page.locator(".leaflet-pane canvas").count() >= 1
        for selector in (
            ".yz-search input",
            ".yz-legend",
            ".yz-slider",
            ".leaflet-control-zoom-fullscreen",
            ".leaflet-control-locate",
        ):
            assert v.page.locator(selector).count() == 1, selector
        v.page.screenshot(path=str(tmp_path / f"planner-{lang}.png"))
    finally:
        v.page.close()


def _open_by_search(page: Page, query: str) -> None:
    page.evaluate("() => yz.stationLayers[0]._map.closePopup()")
    page.fill(".yz-search input", query)
    page.locator(".yz-search li.yz-hit").first.click()
    page.wait_for_selector(".leaflet-popup-content .yz-title")


def test_popups_show_html_in_names_as_text(browser: Browser, site: Site) -> None:
    url = publish(
        site, "planner-xss.html", planner_map(sample_registry(), lang="en", **sample_layers())
    )
    v = visit(browser, url, site.url)
    page = v.page
    try:
        _open_by_search(page, "<script>")
        title = page.locator(".leaflet-popup-content .yz-title")
        assert title.text_content() == XSS_SCRIPT
        assert "&lt;script&gt;" in title.inner_html()
        assert page.locator(".leaflet-popup-content").text_content().count("(guessed)") >= 1

        _open_by_search(page, "onerror")
        assert page.locator(".leaflet-popup-content .yz-title").text_content() == "Bank & <b>Co</b>"
        assert page.locator(".leaflet-popup-content .yz-sub").text_content() == XSS_IMG
        assert page.locator(".leaflet-popup-content img, .leaflet-popup-content b").count() == 0
        assert page.evaluate("() => window.__xss") is None
        # Search results list the name as text too.
        page.fill(".yz-search input", "onerror")
        page.wait_for_selector(".yz-search li.yz-hit")
        assert page.locator(".yz-search li img").count() == 0

        # Clicking the canvas marker itself opens the popup.
        page.keyboard.press("Escape")
        page.evaluate("() => yz.stationLayers[0]._map.closePopup()")
        xy = page.evaluate(
            """() => { const g = yz.stationLayers[0], m = g.yz.markers[3];
                       const p = g._map.latLngToContainerPoint(m.getLatLng());
                       const r = g._map.getContainer().getBoundingClientRect();
                       return [r.left + p.x, r.top + p.y]; }"""
        )
        page.mouse.click(xy[0], xy[1])
        page.wait_for_selector(".leaflet-popup-content .yz-title")
        assert page.locator(".leaflet-popup-content .yz-title").text_content() == "人民公园饮水点"
        assert_clean(v)
    finally:
        page.close()


def test_layer_toggles_and_district_tooltip(browser: Browser, site: Site) -> None:
    url = publish(
        site, "planner-layers.html", planner_map(sample_registry(), lang="en", **sample_layers())
    )
    v = visit(browser, url, site.url)
    page = v.page
    try:
        overlay = page.locator(".leaflet-control-layers-overlays label")
        gaps = overlay.filter(has_text="Coverage gaps").locator("input")
        districts = overlay.filter(has_text="District coverage share").locator("input")
        assert gaps.is_checked() and not districts.is_checked()
        gaps.click()
        assert not gaps.is_checked()
        districts.click()
        assert districts.is_checked()
        # Hover a district away from every other feature: its tooltip shows (shared canvas).
        xy = page.evaluate(
            """() => { const map = yz.stationLayers[0]._map;
                       const p = map.latLngToContainerPoint([34.805, 113.59]);
                       const r = map.getContainer().getBoundingClientRect();
                       return [r.left + p.x, r.top + p.y]; }"""
        )
        page.mouse.move(xy[0], xy[1])
        page.mouse.move(xy[0] + 2, xy[1] + 1)
        tip = page.wait_for_selector(".leaflet-tooltip .yz-title")
        assert tip is not None and tip.text_content() == "中原区"
        assert "45.2%" in (page.locator(".leaflet-tooltip").text_content() or "")
        assert_clean(v)
    finally:
        page.close()


def test_bus_time_slider(browser: Browser, site: Site) -> None:
    url = publish(
        site, "planner-bus.html", planner_map(sample_registry(), lang="en", **sample_layers())
    )
    v = visit(browser, url, site.url)
    page = v.page
    try:
        slider = page.locator(".yz-slider input[type=range]")
        count = page.locator(".yz-slider .yz-slider-count").last

        def at(minutes: int) -> None:
            slider.evaluate(
                "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", minutes
            )

        at(11 * 60)
        assert page.locator(".yz-slider-time").text_content() == "11:00"
        assert count.text_content() == "Buses in service: 1 / 1"
        bus = page.locator(".leaflet-marker-pane .yz-bus")
        assert bus.count() == 1
        first = bus.bounding_box()
        at(14 * 60)
        # The marker moves on the next animation frame: poll (up to 5 s), don't race it.
        second = bus.bounding_box()
        for _ in range(50):
            if first and second and second["x"] > first["x"]:
                break
            page.wait_for_timeout(100)
            second = bus.bounding_box()
        assert first and second and first["x"] < second["x"]  # moved east, to the second stop
        at(22 * 60)
        assert count.text_content() == "Buses in service: 0 / 1"
        assert bus.count() == 0
        assert_clean(v)
    finally:
        page.close()


def test_worker_map_lines_and_distances(browser: Browser, site: Site) -> None:
    reg = sample_registry()
    hits = []
    for fid, dist, bearing in (
        ("zz-001", 347.0, 80.0),
        ("zz-004", 910.0, 20.0),
        ("zz-002", 1530.0, 300.0),
    ):
        f = reg.feature(fid)
        props = {**f["properties"], "distance_m": dist, "bearing_deg": bearing, "open_now": True}
        hits.append({**f, "properties": props})
    url = publish(site, "worker.html", worker_map(113.64, 34.755, hits, lang="en"))
    v = visit(browser, url, site.url)
    page = v.page
    try:
        labels = page.eval_on_selector_all(
            ".leaflet-tooltip.yz-dist", "els => els.map(e => e.textContent)"
        )
        assert labels == ["350 m", "910 m", "1.5 km"]
        assert page.locator(".yz-rank").count() == 3
        page.locator(".yz-list li").first.click()
        popup = page.wait_for_selector(".leaflet-popup-content")
        assert popup is not None
        assert page.locator(".leaflet-popup-content .yz-title").text_content() == XSS_SCRIPT
        assert "350 m · E" in (popup.text_content() or "")
        assert_clean(v)
    finally:
        page.close()


def _canvas_style(page: Page, fid: str) -> dict[str, Any]:
    """Options of the canvas circle drawn for station *fid* in the stations layer."""
    style: dict[str, Any] = page.evaluate(
        """(fid) => { const g = yz.stationLayers[0], i = g.yz.data.id.indexOf(fid);
                      const o = g.yz.markers[i].options;
                      return {color: o.color, fillColor: o.fillColor, weight: o.weight,
                              radius: o.radius}; }""",
        fid,
    )
    return style


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_stale_and_needs_check_stations(
    browser: Browser, site: Site, tmp_path: Path, lang: Any
) -> None:
    m = planner_map(
        sample_registry(),
        lang=lang,
        flags=sample_flags(),
        stale_after_days=180,
        **sample_layers(),
    )
    url = publish(site, f"planner-flags-{lang}.html", m)
    v = visit(browser, url, site.url)
    page = v.page
    try:
        stale_text = label("stale_days", lang, days=180)
        names = layer_names(page)
        assert names[1:3] == [
            label("layer_needs_check", lang, n="2"),
            label("layer_stale", lang, stale=stale_text, n="2"),
        ]
        # Distinct styles: stale greyed, needs-check a thick red stroke, others unchanged.
        plain, stale, check = (_canvas_style(page, f) for f in ("zz-006", "zz-001", "zz-004"))
        assert plain["color"] == "#ffffff" and plain["fillColor"] == "#8C6D1F"
        assert stale["color"] == "#57606a" and stale["fillColor"] != "#D55E00"
        assert check["color"] == "#d1242f" and check["weight"] == 3
        assert check["radius"] > plain["radius"]
        # The legend has both entries, drawn with their own symbols.
        legend = page.locator(".yz-legend")
        assert legend.locator(".yz-sym-stale").count() == 1
        assert legend.locator(".yz-sym-check").count() == 1
        text = legend.text_content() or ""
        assert label("legend_stale", lang, stale=stale_text) in text
        assert label("legend_needs_check", lang) in text
        # Rings around the two stations that need checking, and their list.
        assert page.evaluate("() => yz.stationLayers[0]._map") is not None
        rings = page.evaluate(
            """() => { let n = 0; yz.stationLayers[0]._map.eachLayer(l => {
                         if (l.options && l.options.radius === 12) { n++; } }); return n; }"""
        )
        assert rings == 2
        items = page.locator(".yz-checklist li")
        assert items.count() == 2
        reasons = items.first.locator("small").text_content() or ""
        if lang == "en":
            assert reasons == "Several workers reported: no water, not here / moved"
        else:
            assert reasons == "多位工友反映：没有水、不在这里（已搬走）"
        # The list opens the station's popup, with the warning and the stale note.
        items.first.click()
        page.wait_for_selector(".leaflet-popup-content .yz-warn")
        popup = page.locator(".leaflet-popup-content")
        assert popup.locator(".yz-title").text_content() == "{{ 7*7 }} 清凉点"
        assert (
            popup.locator(".yz-warn").text_content() == "⚠ " + label("needs_check", lang) + reasons
        )
        note = popup.locator(".yz-stale-note").text_content() or ""
        assert note.startswith(stale_text[:1].upper() + stale_text[1:])
        assert label("never_verified", lang) in note
        # The stale-only layer: hidden at first, then the two stale stations only.
        stale_box = page.locator(".leaflet-control-layers-overlays label").nth(2).locator("input")
        assert not stale_box.is_checked()
        stale_box.click()
        got = page.evaluate(
            """() => { let ids = []; yz.stationLayers[0]._map.eachLayer(l => {
                         if (l.zoomToShowLayer && l !== yz.stationLayers[0]
                             && l.yz && l.yz.count !== undefined) {
                           l.eachLayer(m => ids.push(yz.stationLayers[0].yz.data.id[m.yzI])); } });
                       return ids.sort(); }"""
        )
        assert got == ["zz-001", "zz-003"]
        # Hiding the needs-check layer hides its list.
        page.locator(".leaflet-control-layers-overlays label").nth(1).locator("input").click()
        assert page.locator(".yz-checklist").count() == 0
        assert page.evaluate("() => window.__xss") is None
        assert_clean(v)
        v.page.screenshot(path=str(tmp_path / f"maps-flags-{lang}.png"))
    finally:
        page.close()


def test_worker_map_warns_of_stale_and_needs_check(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    reg = sample_registry()
    hits = []
    for fid, dist, extra in (
        ("zz-004", 300.0, {"needs_check": True, "needs_check_reasons": ["closed", XSS_IMG]}),
        ("zz-001", 600.0, {"stale": True, "needs_check": False}),
        ("zz-005", 900.0, {"stale": False, "needs_check": False}),
    ):
        f = reg.feature(fid)
        props = {**f["properties"], "distance_m": dist, "bearing_deg": 10.0, **extra}
        hits.append({**f, "properties": props})
    url = publish(
        site, "worker-flags.html", worker_map(113.64, 34.755, hits, lang="en", stale_after_days=180)
    )
    v = visit(browser, url, site.url)
    page = v.page
    try:
        assert page.locator(".yz-rank.yz-rank-check").count() == 1
        assert page.locator(".yz-rank.yz-rank-stale").count() == 1
        rows = page.locator(".yz-list li")
        assert "⚠ Needs checking" in (rows.nth(0).text_content() or "")
        assert "Not verified for 180+ days" in (rows.nth(1).text_content() or "")
        assert "⚠" not in (rows.nth(2).text_content() or "")
        assert "Not verified" not in (rows.nth(2).text_content() or "")
        legend = page.locator(".yz-legend")
        assert legend.locator(".yz-sym-stale").count() == 1
        assert legend.locator(".yz-sym-check").count() == 1
        rows.nth(0).click()
        page.wait_for_selector(".leaflet-popup-content .yz-warn")
        warn = page.locator(".leaflet-popup-content .yz-warn").text_content()
        assert warn == f"⚠ Needs checkingSeveral workers reported: closed, {XSS_IMG}"
        assert page.locator(".leaflet-popup-content img").count() == 0
        rows.nth(1).click()
        page.wait_for_selector(".leaflet-popup-content .yz-stale-note")
        note = page.locator(".leaflet-popup-content .yz-stale-note").text_content()
        assert (
            note
            == "Not verified for 180+ daysLast verified 2025-06-01 · details may be out of date"
        )
        assert page.evaluate("() => window.__xss") is None
        assert_clean(v)
        page.screenshot(path=str(tmp_path / "worker-flags.png"))
    finally:
        page.close()


def test_inline_map_is_standalone(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "standalone.html"
    planner_map(sample_registry(), assets="inline", **sample_layers()).save(str(path))
    v = visit(browser, path.as_uri(), path.as_uri())
    try:
        assert_clean(v)
        assert len(layer_names(v.page)) == 7
        # Icon fonts are embedded too: the bus icon has a glyph.
        width = v.page.evaluate(
            "() => document.querySelector('.yz-bus i').getBoundingClientRect().width"
        )
        assert width > 5
    finally:
        v.page.close()


def demo_inputs() -> tuple[Any, dict[str, Any]]:
    """A plausible city for the README screenshot: clustered stations, uncovered edges."""
    rng = np.random.default_rng(2025)
    n = 260
    lon = 113.655 + rng.normal(0, 0.035, n)
    lat = 34.755 + rng.normal(0, 0.025, n)
    cats = rng.choice(
        [
            "union_station",
            "bank_outlet",
            "cooling_center",
            "hydration_point",
            "smart_station",
            "other",
        ],
        n,
        p=[0.4, 0.25, 0.12, 0.1, 0.08, 0.05],
    )
    feats = []
    for i in range(n):
        p: dict[str, Any] = {
            "name": f"户外劳动者驿站 {i + 1} 号",
            "kind": "station",
            "category": str(cats[i]),
            "amenities": ["drinking_water", "seating", "air_conditioning"][: 1 + i % 3],
            "opening_hours": "Mo-Su 08:00-20:00",
        }
        if i % 17 == 0:
            p["status"] = "temporarily_closed"
        feats.append(
            {
                "type": "Feature",
                "id": f"zz-{i:04d}",
                "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
                "properties": p,
            }
        )
    reg = from_document({"type": "FeatureCollection", "features": feats})
    m = 3000
    dlon = 113.655 + rng.normal(0, 0.07, m)
    dlat = 34.755 + rng.normal(0, 0.05, m)
    d2 = (dlon[:, None] - lon[None, :]) ** 2 * 0.82**2 + (dlat[:, None] - lat[None, :]) ** 2
    far = np.sqrt(d2.min(axis=1)) * 111_000 > 500
    layers = sample_layers()
    layers.update(
        uncovered=(dlon[far], dlat[far], np.ones(int(far.sum()))),
        open_now=None,
        timeline_date=date(2025, 7, 15),
    )
    return reg, layers


def test_readme_screenshot(browser: Browser, site: Site, tmp_path: Path) -> None:
    reg, layers = demo_inputs()
    url = publish(site, "planner-demo.html", planner_map(reg, lang="zh", **layers))
    v = visit(browser, url, site.url)
    try:
        v.page.evaluate(
            "() => { const s = document.querySelector('.yz-slider input'); s.value = 690;"
            " s.dispatchEvent(new Event('input')); }"
        )
        v.page.wait_for_timeout(300)
        shot = tmp_path / "planner-map.png"
        v.page.screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000
        assert_clean(v)
        if os.environ.get("YIZHAN_UPDATE_SCREENSHOT") == "1":
            target = REPO / "docs" / "img" / "planner-map.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, target)
    finally:
        v.page.close()
