"""Helpers shared by the tests (imported as ``tests.helpers``; fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import datetime


class SetClock:
    """A clock the stores call for "now" (``clock=``), set by the test: ``clock.now = …``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
