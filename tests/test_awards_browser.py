"""The awards report opens in headless Chromium with its charts, offline, and prints.

Needs ``/usr/bin/chromium`` and the ``playwright`` package (its own browsers are never used);
skipped otherwise (fails under CI=true, see tests/ci_skips.py). Screenshots go to
``bench/out/awards/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_awards import PERIOD, demo  # noqa: F401 - the module's fixture
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, REPO
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
]

OUT = REPO / "bench" / "out" / "awards"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_the_html_report_opens_in_chromium_with_its_charts(
    browser: Browser,
    demo: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(demo))
    assert main(["awards", "--period", PERIOD, "-o", str(tmp_path), "--format", "html"]) == 0
    report = tmp_path / f"awards-{PERIOD}.html"
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    errors: list[str] = []
    external: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(report.as_uri())
    charts = page.eval_on_selector_all(
        "svg.chart",
        """els => els.map(svg => ({
            title: svg.querySelector('title').textContent,
            bars: [...svg.querySelectorAll('rect.bar')].map(r => r.getBoundingClientRect().width),
            winners: svg.querySelectorAll('rect.bar.win').length,
            height: svg.getBoundingClientRect().height,
        }))""",
    )
    assert len(charts) == 15  # one per district of the bundled registry
    for chart in charts:
        assert chart["bars"] and all(w > 0 for w in chart["bars"]), chart
        assert chart["winners"] >= 1 and chart["height"] > 40
        assert chart["bars"] == sorted(chart["bars"], reverse=True)  # best first
    # each winner's components are listed, seven rows
    rows = page.eval_on_selector_all(
        ".winner table.comp tbody", "els => els.map(e => e.rows.length)"
    )
    assert rows and set(rows) == {7}
    assert errors == [] and external == []
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "awards-report.png"), full_page=False)
    pdf = page.pdf(format="A4")  # printable
    assert pdf[:4] == b"%PDF" and len(pdf) > 20_000
    page.close()
