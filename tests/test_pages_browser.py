"""The workers' pages in headless Chromium on a phone-sized screen (360×740).

Needs ``/usr/bin/chromium`` and the ``playwright`` package (never ``playwright install``),
and the vendored Leaflet (``yizhan assets fetch``); skipped otherwise.
The API runs in a thread (uvicorn, with its GZip middleware); the browser is offline:
requests to other hosts are aborted and recorded, except map tiles (a blank tile) and the
navigation apps, whose URLs are checked and answered with an empty page.

Screenshots go to ``bench/out/pages/`` (git-ignored); ``YIZHAN_UPDATE_SCREENSHOT=1`` also
copies them to ``docs/img/``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import uvicorn

from tests.test_maps_browser import BLANK_TILE, CHROMIUM, CHROMIUM_ARGS, REPO
from tests.test_pages import HERE, OPEN_ORDER, XSS, page_doc
from yizhan.api import create_app
from yizhan.assets import missing
from yizhan.geo.crs import gcj02_to_wgs84
from yizhan.geo.distance import haversine_m
from yizhan.settings import Settings
from yizhan.stations.registry import from_document, load_registry

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

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

OUT = REPO / "bench" / "out" / "pages"
PHONE = {"width": 360, "height": 740}
ZHENGZHOU = (113.6654, 34.7579)  # 二七广场 (Erqi Square), WGS-84
NAV_HOSTS = ("uri.amap.com", "api.map.baidu.com", "www.openstreetmap.org")


def shot(page: Page, name: str, full_page: bool = False) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5_000
    if os.environ.get("YIZHAN_UPDATE_SCREENSHOT") == "1":
        target = REPO / "docs" / "img" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return path


class Server:
    """The API on a free port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test registry (tests/test_pages.py: stations at known distances, an XSS name)."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"))
    srv = Server(create_app(settings, registry=from_document(page_doc())))
    try:
        yield srv.url
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def zhengzhou(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundled Zhengzhou registry, as `make serve` serves it."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("state-zz"))
    reg = load_registry(settings.registry, timezone=settings.timezone)
    srv = Server(create_app(settings, registry=reg))
    try:
        yield srv.url
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Visit:
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    tiles: int = 0

    def close(self) -> None:
        self.context.close()

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.external == []


def open_phone(
    browser: Browser,
    local: str,
    *,
    locale: str = "zh-CN",
    position: tuple[float, float] | None = HERE,
) -> Visit:
    """A phone-sized context; *position* (lon, lat) is the mocked geolocation (None: denied)."""
    kw: dict[str, Any] = {"viewport": PHONE, "locale": locale, "device_scale_factor": 2}
    kw["has_touch"] = True
    if position is not None:
        kw["geolocation"] = {"longitude": position[0], "latitude": position[1], "accuracy": 20}
        kw["permissions"] = ["geolocation"]
    ctx = browser.new_context(**kw)
    page = ctx.new_page()
    v = Visit(ctx, page)
    page.on("pageerror", lambda exc: v.errors.append(str(exc)))
    page.on("console", lambda m: v.errors.append(m.text) if m.type == "error" else None)

    def route(r: Any) -> None:
        u = r.request.url
        host = urlsplit(u).hostname or ""
        if "tile.openstreetmap.org" in host:
            v.tiles += 1
            r.fulfill(status=200, content_type="image/png", body=BLANK_TILE)
        elif host in NAV_HOSTS:
            v.navigations.append(u)
            r.fulfill(status=200, content_type="text/html", body="<!doctype html><p>nav</p>")
        else:
            v.external.append(u)
            r.abort()

    # Local requests are not intercepted (their sizes are the real transfers).
    page.route(lambda u: not u.startswith(local), route)
    return v


def cards(page: Page) -> list[str]:
    return page.eval_on_selector_all("li.card", "els => els.map(e => e.dataset.id)")


def small_targets(page: Page) -> list[str]:
    """Visible links, buttons, chips and selects smaller than 44×44 CSS pixels."""
    return page.eval_on_selector_all(
        "a, button, select, summary, textarea",
        """els => els.filter(e => e.offsetParent !== null && !e.closest('.leaflet-container'))
            .map(e => [e, e.getBoundingClientRect()])
            .filter(([e, r]) => r.height < 44 || r.width < 44)
            .map(([e, r]) => e.outerHTML.slice(0, 80) + ' ' + r.width + 'x' + r.height)""",
    )


def test_find_lists_nearest_open_stations_from_the_phone_position(
    browser: Browser, site: str
) -> None:
    v = open_phone(browser, site)
    page = v.page
    try:
        page.goto(site + "/")
        page.wait_for_url("**/find?**src=gps**")
        q = parse_qs(urlsplit(page.url).query)
        assert float(q["lon"][0]) == pytest.approx(HERE[0], abs=1e-6)
        assert cards(page) == OPEN_ORDER
        first = page.locator("li.card").first
        assert first.locator(".name").text_content() == "饮水点"
        assert "180 米" in (first.locator(".dist").text_content() or "")
        assert first.locator(".hours").text_content() == "全天开放"
        assert first.locator("ul.am li").all_text_contents() == ["饮用水", "卫生间"]
        assert page.locator("li.card[data-kind=cooling_bus] .name").text_content() == "清凉公交 A"
        assert small_targets(page) == []
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # nothing wider than the phone
        shot(page, "worker-find")
        shot(page, "worker-find-full", full_page=True)
        # A chip is a link: tapping it filters, keeping the position.
        page.locator("[data-chip=charging]").click()
        page.wait_for_url("**need=charging**")
        assert cards(page) == ["s-phone", "s-ebike"]
        assert page.locator("[data-chip=charging]").get_attribute("aria-pressed") == "true"
        v.assert_clean()
    finally:
        v.close()


def test_language_follows_the_browser_and_switches(browser: Browser, site: str) -> None:
    v = open_phone(browser, site, locale="en-US")
    page = v.page
    try:
        page.goto(site + "/")
        page.wait_for_url("**/find?**")
        assert page.get_attribute("html", "lang") == "en"
        assert page.locator("h1").text_content() == "Stations near you"
        assert page.locator("li.card .hours").first.text_content() == "open all day"
        ids = cards(page)
        page.locator("#yz-lang").click()
        page.wait_for_url("**lang=zh**")
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.locator("h1").text_content() == "附近的驿站"
        assert cards(page) == ids
        page.locator("#yz-lang").click()
        page.wait_for_url("**lang=en**")
        assert page.locator("h1").text_content() == "Stations near you"
        v.assert_clean()
    finally:
        v.close()


def test_xss_name_shows_as_text_and_runs_nothing(browser: Browser, site: str) -> None:
    v = open_phone(browser, site)
    page = v.page
    try:
        page.goto(f"{site}/find?lon={HERE[0]}&lat={HERE[1]}")
        card = page.locator("li.card[data-id=s-xss]")
        assert card.locator(".name").text_content() == XSS
        assert card.locator(".place").text_content() == "</script><script>window.__xss=2</script>"
        assert page.locator("li.card img, li.card script").count() == 0
        page.locator("#yz-map-btn").click()  # names go into map tooltips too
        page.wait_for_selector(".leaflet-tooltip")
        tips = page.locator(".leaflet-tooltip").all_text_contents()
        assert f"2. {XSS}" in tips
        assert page.locator(".leaflet-tooltip img").count() == 0
        page.goto(f"{site}/s/s-xss")
        assert page.locator("#yz-name").text_content() == XSS
        page.goto(f"{site}/s/s-xss/poster?lang=en")
        assert page.locator("#yz-name").text_content() == "Bank & <b>Co</b>"
        assert page.evaluate("() => window.__xss") is None
        v.assert_clean()
    finally:
        v.close()


def test_without_location_pick_a_district_or_a_point_on_the_map(
    browser: Browser, site: str
) -> None:
    v = open_phone(browser, site, position=None)
    page = v.page
    try:
        page.goto(site + "/")
        status = page.locator("#yz-status")
        status.filter(has_text="无法获取您的位置").wait_for()
        assert page.locator("#yz-district").get_attribute("open") is not None
        assert cards(page) == []
        shot(page, "worker-no-location")
        # The map loads Leaflet on demand; tapping it lists stations from that point.
        page.locator("#yz-map-btn").click()
        page.evaluate("() => yz.whenMap()")
        page.wait_for_selector(".leaflet-tile-loaded")
        assert v.tiles > 0
        box = page.locator("#yz-map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_url("**src=map**")
        assert page.locator("#yz-from").text_content().startswith("距地图上选的点")  # type: ignore[union-attr]
        assert len(cards(page)) == 6
        # A district, from the picker (it submits on change).
        page.goto(site + "/find?lang=zh")
        page.locator("#yz-district-select").select_option("金水区")
        page.wait_for_url("**district=**")
        assert page.locator("#yz-from").text_content().startswith("距金水区中心")  # type: ignore[union-attr]
        assert cards(page)[0] == "s-phone"
        v.assert_clean()
    finally:
        v.close()


def test_station_page_and_reports(browser: Browser, site: str) -> None:
    v = open_phone(browser, site)
    page = v.page
    posted: list[dict[str, Any]] = []
    answers = [201, 429, 500]

    def report(r: Any) -> None:
        assert r.request.method == "POST"
        assert r.request.headers["content-type"] == "application/json"
        posted.append(orjson.loads(r.request.post_data or "null"))
        r.fulfill(status=answers[len(posted) - 1], content_type="application/json", body="{}")

    page.route("**/stations/s-water/reports", report)
    try:
        page.goto(f"{site}/find?lon={HERE[0]}&lat={HERE[1]}&src=gps")
        page.locator("li.card[data-id=s-water] .name").click()
        page.wait_for_url("**/s/s-water?**")
        assert page.locator("#yz-name").text_content() == "饮水点"
        assert "180 米" in (page.locator(".dist").text_content() or "")
        assert small_targets(page) == []
        page.fill("#yz-comment", "  水桶空了  ")
        page.locator("button[data-code=no_water]").click()
        msg = page.locator("#yz-report-msg")
        msg.filter(has_text="谢谢").wait_for()
        assert posted[0] == {"code": "no_water", "comment": "水桶空了", "location": list(HERE)}
        assert page.input_value("#yz-comment") == ""
        shot(page, "worker-station", full_page=True)
        page.locator("button[data-code=all_good]").click()
        msg.filter(has_text="反馈太频繁").wait_for()
        assert posted[1] == {"code": "all_good", "location": list(HERE)}
        page.locator("button[data-code=closed]").click()
        msg.filter(has_text="提交失败").wait_for()
        # The directions link opens Amap at the station (the request is answered by the test).
        with page.expect_navigation():
            page.locator("a[data-app=amap_walk]").click()
        q = parse_qs(urlsplit(v.navigations[-1]).query)
        glon, glat, name = q["to"][0].split(",", 2)
        wlon, wlat = (float(x) for x in gcj02_to_wgs84(float(glon), float(glat)))
        assert float(haversine_m(wlon, wlat, HERE[0] + 180 / 91_500.0, HERE[1])) < 0.5
        assert name == "饮水点"
        # The browser logs the 429 and the 500 it was sent; nothing else.
        expected = [e for e in v.errors if "status of 429" in e or "status of 500" in e]
        assert len(expected) == 2
        v.errors = [e for e in v.errors if e not in expected]
        v.assert_clean()
    finally:
        v.close()


def test_bus_page(browser: Browser, site: str) -> None:
    v = open_phone(browser, site, locale="en-US")
    page = v.page
    try:
        page.goto(f"{site}/s/bus-a")
        assert page.locator("#yz-now").text_content().startswith("Standing at: Stop s1")  # type: ignore[union-attr]
        assert page.locator("#yz-schedule li").all_text_contents() == ["Mo-Su 00:00-24:00: Stop s1"]
        assert page.locator("#yz-report").count() == 0
        assert page.locator("a[data-app=osm]").count() == 1
        shot(page, "worker-bus", full_page=True)
        v.assert_clean()
    finally:
        v.close()


def test_poster_prints_with_a_working_qr_code(browser: Browser, site: str) -> None:
    ctx = browser.new_context(viewport={"width": 794, "height": 1123})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{site}/s/s-water/poster")
        assert page.locator("#yz-name").text_content() == "饮水点"
        path = shot(page, "station-poster", full_page=True)
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF")
        assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1  # one A4 sheet
        assert re.search(rb"/MediaBox \[0 0 59[45]\.\d+ 841\.\d+\]", pdf)  # A4 in points
        try:
            import zxingcpp
            from PIL import Image
        except ImportError:
            pytest.skip(
                "needs zxing-cpp and Pillow to decode the QR code (pip install zxing-cpp pillow)"
            )
        found = zxingcpp.read_barcodes(Image.open(path))
        assert [b.text for b in found] == [f"{site}/s/s-water"]
        # The decoded address opens the station page.
        page.goto(found[0].text)
        assert page.locator("#yz-name").text_content() == "饮水点"
        assert errors == []
    finally:
        ctx.close()


def test_zhengzhou_nearest_open_stations_and_directions(browser: Browser, zhengzhou: str) -> None:
    """The "done when" of issue 6: `make serve`'s registry, a phone in Zhengzhou."""
    v = open_phone(browser, zhengzhou, position=ZHENGZHOU)
    page = v.page
    try:
        page.goto(zhengzhou + "/")
        page.wait_for_url("**/find?**")
        api = page.request.get(
            f"{zhengzhou}/nearest?lon={ZHENGZHOU[0]}&lat={ZHENGZHOU[1]}&k=6&open_at=now"
        ).json()
        expected = [f["id"] for f in api["features"]]
        assert cards(page) == expected
        shot(page, "worker-find-zhengzhou")
        for f in api["features"]:
            card = page.locator(f'li.card[data-id="{f["id"]}"]')
            lon, lat = f["geometry"]["coordinates"]
            amap = parse_qs(
                urlsplit(card.locator("a[data-app=amap_walk]").get_attribute("href") or "").query
            )
            glon, glat, _ = amap["to"][0].split(",", 2)
            wlon, wlat = (float(x) for x in gcj02_to_wgs84(float(glon), float(glat)))
            assert float(haversine_m(wlon, wlat, lon, lat)) < 0.5
            osm = parse_qs(
                urlsplit(card.locator("a[data-app=osm]").get_attribute("href") or "").query
            )
            assert float(osm["mlon"][0]) == pytest.approx(lon, abs=1e-6)
            assert float(osm["mlat"][0]) == pytest.approx(lat, abs=1e-6)
        v.assert_clean()
    finally:
        v.close()


def test_page_weight_without_tiles(browser: Browser, site: str) -> None:
    """Bytes on the wire (headers and gzip-compressed bodies) for the page, then with the map."""
    v = open_phone(browser, site)
    page = v.page
    sizes: dict[str, int] = {}

    def finished(req: Any) -> None:
        if req.url.startswith(site):
            s = req.sizes()
            sizes[req.url] = s["responseBodySize"] + s["responseHeadersSize"]

    page.on("requestfinished", finished)
    try:
        resp = page.goto(f"{site}/find?lon={HERE[0]}&lat={HERE[1]}")
        assert resp is not None and resp.headers.get("content-encoding") == "gzip"
        page.wait_for_load_state("networkidle")
        list_only = sum(sizes.values())
        assert list_only < 30_000, sizes  # the list: one response, no Leaflet
        assert len(sizes) == 1
        page.locator("#yz-map-btn").click()
        page.evaluate("() => yz.whenMap()")
        page.wait_for_load_state("networkidle")
        with_map = sum(sizes.values())
        assert any(u.endswith("leaflet.js") for u in sizes)
        assert with_map <= 150_000, sizes
        shot(page, "worker-map")
        print(f"page weight: list {list_only} B, with the map {with_map} B (tiles excluded)")
        v.assert_clean()
    finally:
        v.close()
