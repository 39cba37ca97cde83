"""The PostgreSQL + PostGIS backend: connections, change notifications, degraded mode.

:class:`Database` is one process's link to the database: a connection pool for requests
(``psycopg_pool``), and one listener thread with a connection of its own (``LISTEN
yizhan``; psycopg's ``notifies()`` blocks its connection, so it cannot share the pool).
Every write bumps its kind's counter in ``state_versions`` and sends ``NOTIFY yizhan
'<kind> <version>'`` in its transaction (delivered at commit, a few bytes: well under
the 8,000-byte limit). On a notification, and every :data:`POLL_S` seconds without one,
the listener reads the counters (one small query) and tells each store whose counter
moved to catch up: a notification lost while the listener was reconnecting (a restart, a
network blip) is made up for at the next look, and after a reconnect the stations catch
up from the ``audit`` table. NOTIFY does not pass a transaction-pooling pgbouncer: point
``YIZHAN_DATABASE_URL`` at PostgreSQL itself or at a session-pooling bouncer.

**Degraded mode.** Reads never touch the database: stations, tokens, flags, placements
and alerts answer from memory. While the database cannot be reached, writes (and
history, which is read from the database) raise
:class:`~yizhan.errors.StorageUnavailableError` (HTTP 503 with ``Retry-After``) — at once
when the listener already knows the database is down, else after the pool's timeout.
Nothing is acknowledged before its transaction committed. The pool replaces broken
connections by itself (each is checked when taken) and the listener reconnects with
backoff, so service resumes without a restart.

**Driver.** psycopg 3 with psycopg_pool, chosen on measurement
(``bench/bench_storage.py``, docs/database.md): the stores are called from worker threads
(FastAPI runs blocking work off the event loop, and the in-memory read model is shared by
threads), which a synchronous driver serves directly. On our operations (a point read, the
KNN query, an edit's write transaction) asyncpg reached from a worker thread was no faster
— within the noise, 0.6–3× either way between runs — and it would need an event loop of its
own beside FastAPI's; LISTEN in psycopg is a plain blocking loop in the listener thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from yizhan.errors import StorageUnavailableError

log = logging.getLogger("yizhan")

Conn = psycopg.Connection[tuple[Any, ...]]

#: Channel of the change notifications.
CHANNEL = "yizhan"
#: Longest wait for a notification before the listener reads the counters anyway (s).
POLL_S = 0.5
#: Seconds a client is asked to wait (``Retry-After``) while the database is unavailable.
RETRY_AFTER_S = 5
#: Longest wait for a pooled connection before a write is refused (s).
POOL_TIMEOUT_S = 3.0


def redact(url: str) -> str:
    """*url* without its password (for logs and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def unavailable(
    exc: BaseException | None = None, what: str = "the database"
) -> StorageUnavailableError:
    """The 503 to answer while the database cannot be used."""
    detail = f": {str(exc).strip().splitlines()[0]}" if exc is not None and str(exc).strip() else ""
    return StorageUnavailableError(
        f"{what} is unavailable for now{detail}; nothing was changed, try again",
        retry_after_s=RETRY_AFTER_S,
    )


class Database:
    """One process's connections to the database (see the module docstring).

    Parameters
    ----------
    url : str
        ``postgresql://…``.
    pool_size : int
        Most pooled connections (writes and history; reads need none).
    """

    def __init__(self, url: str, pool_size: int = 8) -> None:
        self.url = url
        self.where = redact(url)
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=POOL_TIMEOUT_S,
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="yizhan",
            kwargs={"connect_timeout": 5, "application_name": "yizhan"},
        )
        self._handlers: dict[str, Callable[[int, Conn], None]] = {}
        self.known: dict[str, int] = {}
        #: Set by the listener while the database cannot be reached.
        self.down_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Open the pool (waiting for its first connection).

        Raises
        ------
        StorageUnavailableError
            The database cannot be reached.
        """
        try:  # one direct attempt first: its error says why (the pool would only time out)
            psycopg.connect(self.url, connect_timeout=5).close()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageUnavailableError(
                f"cannot connect to the database {self.where}: {first}",
                retry_after_s=RETRY_AFTER_S,
            ) from None
        try:
            self.pool.open(wait=True, timeout=10)
        except psycopg_pool.PoolTimeout as exc:
            self.pool.close()
            raise StorageUnavailableError(
                f"cannot connect to the database {self.where}", retry_after_s=RETRY_AFTER_S
            ) from exc

    @contextmanager
    def connection(self, what: str = "the database") -> Iterator[Conn]:
        """A pooled connection in a transaction (committed on a normal exit); connection
        failures become :class:`StorageUnavailableError` (503)."""
        if self.down_since is not None:  # the listener cannot connect either: fail fast
            raise unavailable(None, what)
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise unavailable(exc, what) from exc

    # -- following the counters ------------------------------------------------------------
    def on_change(self, kind: str, handler: Callable[[int, Conn], None]) -> None:
        """Call *handler(version, conn)* (on the listener's connection) whenever *kind*'s
        counter differs from the last one seen, and after every reconnect."""
        self._handlers[kind] = handler

    def versions(self, conn: Conn) -> dict[str, int]:
        """Every kind's counter now."""
        rows = conn.execute("SELECT kind, version FROM state_versions").fetchall()
        return {str(k): int(v) for k, v in rows}

    def start(self) -> None:
        """Start the listener thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._listen, name="yizhan-pg-listener", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the listener and close the pool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.pool.close()

    def _dispatch(self, conn: Conn, every: bool) -> None:
        for kind, version in self.versions(conn).items():
            handler = self._handlers.get(kind)
            if handler is not None and (every or self.known.get(kind) != version):
                handler(version, conn)
                self.known[kind] = version

    def _listen(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name="yizhan-listener",
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # After LISTEN: whatever was committed before is read now.
                    self._dispatch(conn, every=True)
                    if self.down_since is not None:
                        log.warning("the database %s is reachable again", self.where)
                    self.down_since = None
                    backoff = 0.2
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=POLL_S, stop_after=1):
                            pass
                        self._dispatch(conn, every=False)
            except psycopg.Error as exc:
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    log.error(
                        "lost the database %s (%s); serving reads from memory and refusing "
                        "writes (503) until it is back",
                        self.where,
                        str(exc).strip().splitlines()[0]
                        if str(exc).strip()
                        else type(exc).__name__,
                    )
                else:
                    self.down_since = time.monotonic()
            except Exception:  # a handler failed: log, reconnect and catch up again
                log.exception("following the database %s failed", self.where)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 1.0)


__all__ = ["CHANNEL", "POLL_S", "RETRY_AFTER_S", "Database", "redact", "unavailable"]
