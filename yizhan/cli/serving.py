"""How ``yizhan serve`` runs uvicorn: proxy headers off, timeouts, a connection limit, and a
guard against clients that connect and then send their request slowly or not at all.

What uvicorn offers is set from the settings: ``timeout_keep_alive`` (``keep_alive_s``),
``limit_concurrency`` (requests beyond it get 503) and ``h11_max_incomplete_event_size``
(``max_header_bytes``, the h11 parser only), and ``proxy_headers=False``: the peer address
the app sees is the real one; ``X-Forwarded-For`` is read by
:func:`yizhan.routes.clients.client_key`, from configured proxies only.

What uvicorn lacks is added by :func:`guarded_protocol`, a subclass of uvicorn's HTTP
protocol (httptools or h11, whichever uvicorn picks), hand-written because no library
plugs into uvicorn at that level:

* **a header-read timeout**: a connection that has not sent a complete request head
  ``header_timeout_s`` after it was opened (or after its previous response) is closed.
  uvicorn's keep-alive timer is cancelled by any byte received, so without this one byte
  every few seconds holds a connection forever;
* **a head-size cap for every parser**: httptools has none; more than
  ``max_header_bytes`` before the head is complete gets 431 and the connection closed;
* **room for new clients**: when ``limit_concurrency`` connections are open, the one that
  has waited longest for a request head is closed for each new one, so idle and trickling
  connections cannot keep real requests out (uvicorn alone would answer them 503). The
  limit is kept below the open-file limit (raised to fit when the system allows), so the
  server does not run out of descriptors and fail every ``accept``.

These conditions, and uvicorn's and asyncio's per-connection warnings about them, are
logged at most once per ``overload_log_interval_s`` with counts (:class:`OverloadLog`,
:class:`OncePerInterval`), never once per connection.

A reverse proxy in front (``docs/deployment.md``) is still the better first guard; this
is what holds when the server is reached directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any, cast

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from yizhan.settings import Settings

try:
    import resource
except ImportError:  # pragma: no cover - not on Unix
    resource = None  # type: ignore[assignment]

#: Under uvicorn's error logger: formatted and routed with uvicorn's own messages (and not
#: subject to the repeat filter installed on that logger itself).
log = logging.getLogger("uvicorn.error.yizhan")

#: Connections ``yizhan serve`` allows by default.
DEFAULT_CONNECTIONS = 1000
#: File descriptors kept for everything else (registry, logs, analysis processes, …).
RESERVED_FDS = 64
#: A connection closed for a timeout that still has unsent data is aborted after this.
CLOSE_GRACE_S = 5.0
#: After a 431 the rest of what the client sends is read and dropped this long, so that
#: closing does not reset the connection before the client has read the answer.
LINGER_S = 2.0
#: On shutdown, requests still running after this are cancelled (an analysis is then
#: killed) so that the server stops.
SHUTDOWN_GRACE_S = 10

_REASONS = {
    "header_timeout": "connections closed without a complete request head within {timeout:g} s",
    "evicted": "waiting connections closed to make room for new ones ({limit} open)",
    "head_too_large": "connections refused for a request head over {max_bytes} bytes",
}


class OverloadLog:
    """Counts of overload events, logged at most once per *interval_s*.

    The first event after a quiet interval is logged at once; later ones are counted and
    logged together when the interval is over.
    """

    def __init__(self, interval_s: float, **context: Any) -> None:
        self.interval_s = interval_s
        self.context = context
        self.counts: dict[str, int] = {}
        self._last = -float("inf")
        self._scheduled = False

    def note(self, reason: str) -> None:
        """Count one event of *reason* (a key of the reasons above)."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self._last + self.interval_s - now, self.flush)

    def flush(self) -> None:
        """Log the counts so far (if any) and start a new interval."""
        self._scheduled = False
        if not self.counts:
            return
        parts = [
            f"{n} {_REASONS[r].format(**self.context)}" for r, n in sorted(self.counts.items())
        ]
        log.warning(
            "connection guard: %s (logged at most once per %g s)",
            "; ".join(parts),
            self.interval_s,
        )
        self.counts.clear()
        self._last = time.monotonic()


class OncePerInterval(logging.Filter):
    """Let each distinct message (by its format string) through at most once per
    *interval_s*; the next one that passes says how many were held back."""

    def __init__(self, interval_s: float, max_level: int = logging.WARNING) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.max_level = max_level
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > self.max_level:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it, not logged)"
        return True


def install_log_limits(interval_s: float) -> None:
    """Hold back repeats of uvicorn's per-connection warnings (``Invalid HTTP request
    received.``, ``Exceeded concurrency limit.``) and of asyncio's (``socket.accept() out
    of system resource``) to one per *interval_s* each."""
    for name, level in (("uvicorn.error", logging.WARNING), ("asyncio", logging.CRITICAL)):
        logger = logging.getLogger(name)
        logger.filters = [f for f in logger.filters if not isinstance(f, OncePerInterval)]
        logger.addFilter(OncePerInterval(interval_s, level))


def connection_limit(configured: int | None) -> int:
    """The connection limit to serve with: *configured* (or :data:`DEFAULT_CONNECTIONS`),
    lowered so that it and uvicorn's :func:`headroom` fit the open-file limit less
    :data:`RESERVED_FDS`, after raising the soft limit as far as the hard one allows."""
    wanted = configured or DEFAULT_CONNECTIONS
    if resource is None:  # pragma: no cover - not on Unix
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + headroom(wanted) + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < need:
        fit = max(2, (soft - RESERVED_FDS) * 16 // 17)
        log.warning(
            "connection limit lowered from %d to %d to fit the open-file limit (%d); raise "
            "it (ulimit -n) to allow more",
            wanted,
            fit,
            soft,
        )
        return fit
    return wanted


def _idle(server_state: Any) -> OrderedDict[Any, None]:
    """Connections of one server that wait for a request head, oldest first (entries may
    have become busy or closed since: they are skipped when met)."""
    idle: OrderedDict[Any, None] | None = getattr(server_state, "_yizhan_idle", None)
    if idle is None:
        idle = OrderedDict()
        server_state._yizhan_idle = idle
    return idle


class _HeadGuard:
    """The guard, mixed in before uvicorn's HTTP protocol (see :func:`guarded_protocol`)."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 16_384
    overload: OverloadLog | None = None

    # Set by uvicorn's protocol.
    transport: asyncio.Transport
    connections: set[Any]
    limit_concurrency: int | None
    loop: asyncio.AbstractEventLoop
    server_state: Any

    _idle_since: float
    _head_bytes: int
    _timer: asyncio.TimerHandle | None
    _refused: bool
    #: Connections at which waiting ones are closed for new ones (uvicorn's own
    #: limit_concurrency, at which it answers 503, is set a little higher).
    max_connections: int | None = None

    def _busy(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def _note(self, reason: str) -> None:
        if self.overload is not None:
            self.overload.note(reason)

    def _wait_for_head(self) -> None:
        self._idle_since = self.loop.time()
        self._head_bytes = 0
        idle = _idle(self.server_state)
        idle[self] = None
        idle.move_to_end(self)
        self._arm(self.header_timeout_s)

    def _arm(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(delay_s, self._check_head)

    def _check_head(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._busy() or self._refused:
            return  # busy: the end of its response starts a new wait
        left = self._idle_since + self.header_timeout_s - self.loop.time()
        if left > 0:
            self._arm(left)
            return
        self._close("header_timeout")

    def _close(self, reason: str) -> None:
        _idle(self.server_state).pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        if not transport.is_closing():
            transport.close()
            self.loop.call_later(CLOSE_GRACE_S, transport.abort)
        self._note(reason)

    def _make_room(self) -> None:
        limit = self.max_connections
        if limit is None or len(self.connections) < limit:
            return
        idle = _idle(self.server_state)
        while idle:
            conn, _ = idle.popitem(last=False)
            if conn is self or conn.transport.is_closing():
                continue
            if conn._busy():
                continue  # back in the list when it waits again
            conn._close("evicted")
            return

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer = None
        self._refused = False
        super().connection_made(transport)  # type: ignore[misc]
        self._make_room()
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a 431: read and drop
        if self._busy():
            super().data_received(data)  # type: ignore[misc]
            return
        if self._head_bytes > self.max_header_bytes:
            self._refuse_head()
            return
        self._head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        # Still no complete head after more than the cap (all of it in one read, and the
        # client now silent): refused now, not at the next read or the header timeout.
        if (
            self._head_bytes > self.max_header_bytes
            and not self._busy()
            and not self.transport.is_closing()
        ):
            self._refuse_head()

    def _refuse_head(self) -> None:
        """Answer 431, stop sending, and close after :data:`LINGER_S` (reading meanwhile)."""
        self._refused = True
        _idle(self.server_state).pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n"
        )
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER_S, transport.close)
        self.loop.call_later(LINGER_S + CLOSE_GRACE_S, transport.abort)
        self._note("head_too_large")

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        _idle(self.server_state).pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)  # type: ignore[misc]


def guarded_protocol(
    http: str | type[asyncio.Protocol],
    header_timeout_s: float,
    max_header_bytes: int,
    max_connections: int | None = None,
    overload: OverloadLog | None = None,
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol *http* (``"auto"``, ``"httptools"``, ``"h11"`` or a class)
    with the header guard of this module mixed in; at *max_connections* open connections
    the one waiting longest for a request head is closed for each new one."""
    base = (
        cast(type[asyncio.Protocol], import_from_string(HTTP_PROTOCOLS.get(http, http)))
        if isinstance(http, str)
        else http
    )
    attrs = {
        "header_timeout_s": header_timeout_s,
        "max_header_bytes": max_header_bytes,
        "max_connections": max_connections,
        "overload": overload,
    }
    return cast(type[asyncio.Protocol], type(f"Guarded{base.__name__}", (_HeadGuard, base), attrs))


class WorkerGuardedHttpTools(_HeadGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol with the guard, for ``yizhan serve --workers N``.

    uvicorn starts each worker from a pickled configuration, and a class pickles by its
    name: the classes :func:`guarded_protocol` makes at run time cannot be sent, this one
    can. Its limits are read from the worker's own settings (the ``YIZHAN_*`` environment
    ``yizhan serve`` passes on to its workers) when the worker's first connection is made,
    so every worker guards itself exactly as a single-process server does.
    """

    configured = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not WorkerGuardedHttpTools.configured:
            WorkerGuardedHttpTools.configure(Settings())
        super().__init__(*args, **kwargs)

    @classmethod
    def configure(cls, settings: Settings) -> None:
        """Take the guard's limits from *settings* (once per worker process)."""
        limit = connection_limit(settings.limit_concurrency)
        cls.header_timeout_s = settings.header_timeout_s
        cls.max_header_bytes = settings.max_header_bytes
        cls.max_connections = limit
        cls.overload = OverloadLog(
            settings.overload_log_interval_s,
            timeout=settings.header_timeout_s,
            limit=limit,
            max_bytes=settings.max_header_bytes,
        )
        install_log_limits(settings.overload_log_interval_s)
        cls.configured = True


def uvicorn_options(
    settings: Settings, http: str | type[asyncio.Protocol] = "auto"
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` from *settings* (see the
    module docstring); *http* is the uvicorn HTTP implementation to guard."""
    limit = connection_limit(settings.limit_concurrency)
    overload = OverloadLog(
        settings.overload_log_interval_s,
        timeout=settings.header_timeout_s,
        limit=limit,
        max_bytes=settings.max_header_bytes,
    )
    return {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": False,
        "timeout_keep_alive": settings.keep_alive_s,
        # uvicorn answers 503 from here on; a little above the guard's limit, so that a
        # connection closed to make room (its close completes a moment later) does not
        # count against the new one.
        "limit_concurrency": limit + headroom(limit),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_S,
        "http": guarded_protocol(
            http, settings.header_timeout_s, settings.max_header_bytes, limit, overload
        ),
    }


def headroom(limit: int) -> int:
    """Connections above the guard's limit before uvicorn answers 503."""
    return max(2, limit // 16)
