"""The maps under their Content-Security-Policy in headless Chromium (issue 15, item 20):
they still render, with no violation reported, and a script injected into them is blocked.

Needs ``/usr/bin/chromium``, the ``playwright`` package and the vendored map assets
(skipped otherwise, as in ``tests/test_maps_browser.py``). The server is a real
``yizhan serve``; the browser is offline (map tiles get a blank tile).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.realserver import RealServer, yizhan_serve
from tests.test_maps_browser import BLANK_TILE, CHROMIUM, CHROMIUM_ARGS
from yizhan.assets import missing

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
    pytest.mark.skipif(sync_playwright is None, reason="needs playwright"),
    pytest.mark.skipif(bool(missing()), reason="map assets not fetched"),
]

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    with yizhan_serve(tmp_path_factory.mktemp("csp")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _visit(browser: Browser, server: RealServer, path: str) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(server.url):
            r.continue_()
        elif "tile.openstreetmap.org" in url:
            r.fulfill(status=200, content_type="image/png", body=BLANK_TILE)
        else:
            r.abort()

    page.route("**/*", route)
    page.add_init_script(WATCH)
    try:
        resp = page.goto(f"{server.url}{path}", wait_until="load", timeout=120_000)
        assert resp is not None and resp.status == 200
        page.wait_for_selector(".leaflet-container", timeout=30_000)
        page.wait_for_timeout(500)
        drawn = page.evaluate(
            "() => document.querySelectorAll("
            "'.leaflet-marker-icon, path.leaflet-interactive, .leaflet-control-layers').length"
        )
        injected = page.evaluate(
            """() => {
                const s = document.createElement('script');
                s.textContent = 'window.__pwned = 1';
                document.body.appendChild(s);
                return window.__pwned === 1;
            }"""
        )
        page.wait_for_timeout(200)
        return {
            "csp_header": resp.headers.get("content-security-policy", ""),
            "violations": page.evaluate("() => window.__csp"),
            "errors": errors,
            "console": console,
            "drawn": drawn,
            "injected": injected,
        }
    finally:
        page.close()


@pytest.mark.parametrize(
    "path", ["/maps/nearest?lon=113.65&lat=34.76&k=5", "/maps/coverage?sites=2&lang=en"]
)
def test_map_renders_under_its_csp(browser: Browser, server: RealServer, path: str) -> None:
    seen = _visit(browser, server, path)
    assert "script-src 'self' 'sha256-" in seen["csp_header"]
    assert seen["drawn"] > 0, "nothing drawn on the map"
    assert seen["errors"] == []
    # The only violation is the script injected on purpose (and it did not run).
    assert seen["injected"] is False
    assert seen["violations"] == ["script-src-elem inline"], seen["violations"]
    assert not [c for c in seen["console"] if "Content Security Policy" in c][1:], seen["console"]


def test_cached_planner_map_keeps_working(browser: Browser, server: RealServer) -> None:
    path = "/maps/coverage?sites=2&lang=en"
    first = _visit(browser, server, path)
    again = _visit(browser, server, path)  # from the map cache
    assert again["csp_header"] == first["csp_header"]
    assert again["drawn"] == first["drawn"] > 0
    assert again["violations"] == ["script-src-elem inline"]
