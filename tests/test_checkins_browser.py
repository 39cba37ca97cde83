"""The station page's "I'm here" button and photos in headless Chromium on a phone.

A live server (uvicorn in a thread); the phone's position is mocked: near the station the tap
is accepted, a second tap is refused as a repeat, far away it is refused as too far. A photo
added by the manager shows with its date. Skipped without Chromium/playwright (fails under
CI=true).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import make_doc, make_feature
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_pages_browser import Server
from yizhan.api import create_app
from yizhan.settings import Settings
from yizhan.stations.registry import from_document

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
]

HERE = (113.6654, 34.7579)
ADMIN = "browser-admin-0123456789"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    doc = make_doc([make_feature("s-1", *HERE, name="<b>驿站</b>", opening_hours="24/7")])
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"), admin_token=ADMIN)
    srv = Server(create_app(settings, registry=from_document(doc)))
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


def phone(browser: Browser, lon: float, lat: float) -> Any:
    ctx = browser.new_context(
        viewport={"width": 360, "height": 740},
        locale="en-US",
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 15},
        permissions=["geolocation"],
    )
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return ctx, page, errors


def tap(page: Any) -> str:
    page.click("#yz-here")
    page.wait_for_function(
        "() => { const m = document.getElementById('yz-checkin-msg');"
        " return !m.hidden && !m.textContent.startsWith('Sending'); }"
    )
    return str(page.text_content("#yz-checkin-msg"))


def test_i_m_here_checks_in_once_and_refuses_far_taps(browser: Browser, site: str) -> None:
    ctx, page, errors = phone(browser, HERE[0] + 0.001, HERE[1])  # ~90 m away
    page.goto(f"{site}/s/s-1?lang=en")
    page.select_option("#yz-trade", "courier")
    assert tap(page) == "Checked in, thank you!"
    assert tap(page) == "You checked in here recently."
    assert errors == []
    ctx.close()
    ctx, page, errors = phone(browser, HERE[0] + 0.03, HERE[1])  # ~2.7 km away
    page.goto(f"{site}/s/s-1?lang=en")
    assert tap(page).startswith("You seem to be too far away")
    ctx.close()
    usage = httpx.get(f"{site}/stations/s-1/usage").json()
    assert usage["visits"] == 1 and usage["usage"]["trades"]["courier"] == 1


def test_photos_show_with_their_date(browser: Browser, site: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (30, 120, 60)).save(buf, "JPEG")
    r = httpx.post(
        f"{site}/stations/s-1/photos?taken_on=2026-07-01",
        content=buf.getvalue(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "image/jpeg"},
    )
    assert r.status_code == 201, r.text
    ctx, page, errors = phone(browser, *HERE)
    page.goto(f"{site}/s/s-1?lang=en")
    page.wait_for_selector("#yz-photos figure img")
    assert page.is_visible("#yz-photos")
    assert page.text_content("#yz-photos figcaption") == "Taken 2026-07-01"
    loaded = page.eval_on_selector("#yz-photos img", "img => img.complete && img.naturalWidth")
    assert loaded == 400
    assert errors == []
    ctx.close()
