"""The usage layers on the planner map (``yizhan usage map``) in headless Chromium: listed in
the layer control, drawn, no script error, offline. Skipped without Chromium, playwright or
the fetched map assets (fails under CI=true)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_awards import demo  # noqa: F401 - the July demo data (a fixture)
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, REPO
from yizhan.assets import missing
from yizhan.cli import main

try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="needs playwright (pip install playwright)"),
    pytest.mark.skipif(bool(missing()), reason="map assets not fetched: run `yizhan assets fetch`"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_the_usage_map_shows_its_layers(
    browser: Browser,
    demo: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(demo))
    out = tmp_path / "usage.html"
    args = ["usage", "map", "-o", str(out), "--from", "2026-07-01", "--to", "2026-07-31"]
    assert main([*args, "--lang", "en"]) == 0
    assert "bus move suggestions" in capsys.readouterr().err
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    external: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            external.append(r.request.url)  # tiles: not needed to test the layers
            r.abort()

    page.route("**/*", route)
    page.goto(out.as_uri())
    page.wait_for_selector(".leaflet-control-layers-overlays label")
    labels = page.eval_on_selector_all(
        ".leaflet-control-layers-overlays label", "els => els.map(e => e.textContent.trim())"
    )
    for name in ("Utilization (stations)", "Bus stops by visits", "Suggested bus moves"):
        assert name in labels
    circles = page.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
    dashed = page.eval_on_selector_all(
        "path.leaflet-interactive[stroke-dasharray]", "els => els.length"
    )
    assert circles > 80 and dashed >= 1
    assert page.is_visible(".yz-usage-legend")
    assert errors == []
    assert all("tile.openstreetmap.org" in u for u in external)
    page.screenshot(path=str(REPO / "bench" / "out" / "usage-map.png"))
    page.close()
