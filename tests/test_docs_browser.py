"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) render offline in headless Chromium.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank without the
internet (and slow where the CDN is unreachable); Yizhan serves its own copies from
``/static/vendor/`` (``yizhan assets fetch``). Every request to another host is aborted
and recorded: there must be none. Same requirements as the other browser tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_pages_browser import Server
from yizhan.api import create_app
from yizhan.assets import missing, package
from yizhan.settings import Settings

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:
        yield c


def test_docs_pages_link_this_servers_copies(client: TestClient) -> None:
    swagger = client.get("/docs")
    assert swagger.status_code == 200
    base = f"/static/vendor/{package('swagger-ui-dist').dirname}/"
    for path in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"{base}{path}" in swagger.text
    assert "cdn.jsdelivr.net" not in swagger.text and "fastapi.tiangolo.com" not in swagger.text
    assert '"validatorUrl": null' in swagger.text
    redoc = client.get("/redoc")
    assert redoc.status_code == 200
    assert f"/static/vendor/{package('redoc').dirname}/bundles/redoc.standalone.js" in redoc.text
    assert "cdn.jsdelivr.net" not in redoc.text and "fonts.googleapis.com" not in redoc.text
    assert client.get("/docs/oauth2-redirect").status_code == 200
    # Nothing from another origin, even what the pages themselves would fetch.
    for page in (swagger, redoc):
        assert "default-src 'self'" in page.headers["content-security-policy"]
    # The documentation pages stay out of the OpenAPI document, as FastAPI's own do.
    paths = client.get("/openapi.json").json()["paths"]
    assert "/docs" not in paths and "/redoc" not in paths


def test_docs_pages_honour_the_root_path() -> None:
    with TestClient(create_app(Settings()), root_path="/yizhan") as c:
        html = c.get("/docs").text
    assert "url: '/yizhan/openapi.json'" in html
    assert f"/yizhan/static/vendor/{package('swagger-ui-dist').dirname}/" in html


BROWSER_MARKS = (
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="needs playwright (pip install playwright)"),
    pytest.mark.skipif(bool(missing()), reason="assets not fetched: run `yizhan assets fetch`"),
)


def browser_test(func: Any) -> Any:
    """The marks of a test that needs Chromium, playwright and the fetched assets."""
    for mark in reversed(BROWSER_MARKS):
        func = mark(func)
    return func


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    srv = Server(create_app(Settings(state_dir=tmp_path_factory.mktemp("state"))))
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


def _offline_page(browser: Browser, local: str) -> tuple[Page, list[str], list[str]]:
    page = browser.new_page(viewport=DESKTOP)
    external: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r: Any) -> None:
        if r.request.url.startswith(local):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page, external, errors


def _operations(client_url: str, browser: Browser) -> int:
    page = browser.new_page()
    try:
        spec = page.request.get(f"{client_url}/openapi.json").json()
    finally:
        page.close()
    methods = {"get", "post", "put", "patch", "delete"}
    return sum(1 for ops in spec["paths"].values() for m in ops if m in methods)


def test_swagger_ui_renders_every_operation_offline(server: str, browser: Browser) -> None:
    n_ops = _operations(server, browser)
    page, external, errors = _offline_page(browser, server)
    try:
        page.goto(f"{server}/docs")
        page.wait_for_selector(".opblock-summary", timeout=20_000)
        page.wait_for_function(
            "(n) => document.querySelectorAll('.opblock').length >= n", arg=n_ops, timeout=20_000
        )
        assert page.locator(".opblock").count() == n_ops
        paths = page.locator(".opblock-summary-path").all_text_contents()
        assert any(p.replace("\u200b", "") == "/nearest" for p in paths)
        assert "Yizhan" in (page.locator(".info .title").text_content() or "")
        assert external == [] and errors == []
    finally:
        page.close()


@browser_test
@browser_test
def test_redoc_renders_every_operation_offline(server: str, browser: Browser) -> None:
    n_ops = _operations(server, browser)
    page, external, errors = _offline_page(browser, server)
    try:
        page.goto(f"{server}/redoc")
        page.wait_for_function(
            "(n) => document.querySelectorAll('[data-section-id^=\"operation/\"]').length >= n",
            arg=n_ops,
            timeout=30_000,
        )
        assert page.locator('[data-section-id^="operation/"]').count() == n_ops
        assert "Yizhan" in (page.locator("h1").first.text_content() or "")
        assert external == [] and errors == []
    finally:
        page.close()
