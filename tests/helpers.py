"""Helpers shared by the tests (imported as ``tests.helpers``; fixtures are in conftest.py)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import uvicorn

from yizhan.stations.usage_files import VisitRows


class SetClock:
    """A clock the stores call for "now" (``clock=``), set by the test: ``clock.now = …``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Server:
    """The API on a free loopback port, in a thread (uvicorn, as `yizhan serve` runs it).

    ``url`` is ``http://127.0.0.1:PORT``; :meth:`stop` ends it.
    """

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                proxy_headers=False,  # as `yizhan serve`: X-Forwarded-For is the app's business
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self.port: int = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def visit_records(rows: VisitRows) -> list[tuple[int, str, int, int, int, int]]:
    """Visit rows as sorted ``(day, unit, hour, trade, source, count)`` tuples."""
    return sorted(
        (d, rows.units[u], h, t, s, n)
        for d, u, h, t, s, n in zip(
            rows.day.tolist(),
            rows.unit.tolist(),
            rows.hour.tolist(),
            rows.trade.tolist(),
            rows.source.tolist(),
            rows.count.tolist(),
            strict=True,
        )
    )
