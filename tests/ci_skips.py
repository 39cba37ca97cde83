"""A pytest plugin: under ``CI=true`` a skip for a missing component fails the run.

Loaded by ``tests/conftest.py``. Every skip in the suite that is about a missing component
(Chromium, Playwright, fetched map assets, PostgreSQL, a Python package) gives a reason
starting with one of :data:`MISSING_COMPONENT`; under ``CI=true`` such a test fails
instead of skipping, so CI can never pass without running it. Elsewhere it skips.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def in_ci() -> bool:
    """Whether the suite runs under `CI=true` (read at each test, so a test can set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


#: Skip reasons that mean "a component is missing" (every such skip in the suite says so).
MISSING_COMPONENT = ("needs ", "map assets not fetched", "could not import")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if reason.startswith(MISSING_COMPONENT):
            report.outcome = "failed"
            report.longrepr = f"CI=true and a component this test needs is missing: {reason}"
