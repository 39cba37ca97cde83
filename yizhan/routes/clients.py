"""Who sent a request, for every per-client limit, and the in-memory limits themselves.

:func:`client_key` is the one place that decides which client a request comes from. The
peer address of the connection is the client, unless the peer is one of the configured
reverse proxies (``YIZHAN_TRUSTED_PROXIES``): then ``X-Forwarded-For`` is walked from the
right, skipping addresses that are themselves trusted proxies, and the first other address
is the client. Everything to the left of it was written by the client (or by proxies we do
not know) and is ignored, so a client cannot choose its own key. IPv6 clients are keyed by
their /64 network: one household or phone gets a whole /64 and could otherwise rotate
through its addresses to escape every limit.

``yizhan serve`` runs uvicorn with ``proxy_headers=False``: the peer address the app sees
is the real one, and the forwarding headers are interpreted here only.

:class:`WindowLimiter` counts events per client in a sliding window. It is written here
rather than taken from a library (e.g. ``limits``) because each limit needs both "how long
until the next event is allowed" (for ``Retry-After``) and a hard bound on the number of
clients remembered, and the whole thing is thirty lines; state is per process.

:class:`SharedLimit` is what the routes use: a limit counted in the storage backend's
shared counters (:class:`~yizhan.storage.base.RateLimits`: a file, or a PostgreSQL table),
so that every worker and every replica of one deployment count a client's events
together — a client cannot multiply its allowance by the number of processes. While
storage is unavailable it falls back to a :class:`WindowLimiter` of this process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from starlette.requests import HTTPConnection

from yizhan.errors import RateLimitedError, StorageUnavailableError
from yizhan.settings import Settings
from yizhan.storage.base import RateLimits

log = logging.getLogger("yizhan")

#: Longest client key kept (a malformed forwarded address is cut).
MAX_KEY_CHARS = 64


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[object, ...]:
    return tuple(ip_network(p, strict=False) for p in proxies)


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    """An address from a peer or an ``X-Forwarded-For`` entry (``[v6]:port``, ``v4:port``
    and IPv4-mapped IPv6 accepted), or ``None``."""
    t = text.strip()
    if t.startswith("[") and "]" in t:
        t = t[1 : t.index("]")]
    elif t.count(":") == 1:  # v4:port
        t = t.split(":", 1)[0]
    try:
        addr = ip_address(t)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: IPv4Address | IPv6Address | None, nets: Iterable[object]) -> bool:
    return addr is not None and any(addr in net for net in nets)  # type: ignore[operator]


def forwarded_for(conn: HTTPConnection) -> list[str]:
    """Every ``X-Forwarded-For`` entry of the request, left to right (several headers are
    one list, in order)."""
    hops: list[str] = []
    for value in conn.headers.getlist("x-forwarded-for"):
        hops.extend(h.strip() for h in value.split(",") if h.strip())
    return hops


def client_address(conn: HTTPConnection, settings: Settings) -> str:
    """The address of the client that sent *conn*, as described in the module docstring.

    Parameters
    ----------
    conn : starlette.requests.HTTPConnection
        The request.
    settings : Settings
        ``trusted_proxies`` (and the deprecated ``trust_forwarded_for``: every peer is one
        proxy hop, so the right-most ``X-Forwarded-For`` entry is the client).

    Returns
    -------
    str
        An IP address in its canonical text form; a forwarded entry a trusted proxy
        wrote that is not an address, as written (cut to 64 characters); ``"unknown"``
        without a peer.
    """
    peer_text = conn.client.host if conn.client else "unknown"
    nets = _networks(tuple(settings.trusted_proxies))
    if settings.trust_forwarded_for and not nets:
        hops = forwarded_for(conn)
        chosen = hops[-1] if hops else peer_text
    else:
        peer = _parse(peer_text)
        chosen = peer_text
        if _trusted(peer, nets):
            for hop in reversed(forwarded_for(conn)):
                chosen = hop
                if not _trusted(_parse(hop), nets):
                    break
    addr = _parse(chosen)
    return str(addr) if addr is not None else chosen[:MAX_KEY_CHARS]


def client_key(conn: HTTPConnection, settings: Settings) -> str:
    """The key of every per-client limit (reports, failed tokens, analyses): the client's
    address (:func:`client_address`), an IPv6 address reduced to its /64 network."""
    addr_text = client_address(conn, settings)
    addr = _parse(addr_text)
    if isinstance(addr, IPv6Address):
        return str(ip_network(f"{addr}/64", strict=False))
    return addr_text


class WindowLimiter:
    """At most *limit* events per key in any *window_s* seconds.

    Parameters
    ----------
    limit : int
        Events allowed per window.
    window_s : float
        Window length, seconds.
    max_keys : int
        Clients remembered; the least recently seen is forgotten beyond this.
    clock : callable
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after_s(self, key: str) -> float:
        """Seconds until *key* may have another event (0: now)."""
        with self._lock:
            times = self._events.get(key)
            if times is None or len(times) < self.limit:
                return 0.0
            return max(0.0, times[0] + self.window_s - self._clock())

    def hit(self, key: str) -> None:
        """Record an event of *key* now."""
        now = self._clock()
        with self._lock:
            times = self._events.pop(key, None)
            if times is None:
                times = deque(maxlen=self.limit)
            while times and times[0] <= now - self.window_s:
                times.popleft()
            times.append(now)
            self._events[key] = times
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)


class SharedLimit:
    """At most *limit* events per client in any *window_s* seconds, counted by every
    process of the deployment (see the module docstring).

    Parameters
    ----------
    limits : RateLimits
        The backend's shared counters.
    name : str
        Names the limit's counters (``auth``, ``analysis``): keys are ``name:client``.
    limit : int
    window_s : float
    what : str
        What is counted, for the 429 message.
    """

    def __init__(
        self, limits: RateLimits, name: str, limit: int, window_s: float, what: str
    ) -> None:
        self.limits = limits
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self.what = what
        self.fallback = WindowLimiter(limit, window_s)
        #: Whether the shared counters failed last time (logged once per outage, not per
        #: request).
        self.degraded = False

    def _unavailable(self, exc: Exception) -> None:
        if not self.degraded:
            self.degraded = True
            log.warning(
                "the shared %s limit is unavailable (%s): counting in this process until it "
                "is back",
                self.name,
                exc,
            )

    def _available(self) -> None:
        if self.degraded:
            self.degraded = False
            log.warning("the shared %s limit is back", self.name)

    def wait_s(self, client: str) -> float:
        """Seconds until *client* may have another event (0: now); nothing is counted."""
        try:
            wait = self.limits.wait_s(f"{self.name}:{client}", self.limit, self.window_s)
        except (StorageUnavailableError, OSError) as exc:
            self._unavailable(exc)
            return self.fallback.retry_after_s(client)
        self._available()
        return wait

    def hit(self, client: str) -> None:
        """Count an event of *client*, or raise :class:`RateLimitedError` (not counted)
        when it already had *limit* in the window."""
        try:
            self.limits.hit(f"{self.name}:{client}", self.limit, self.window_s, self.what)
            self._available()
            return
        except (StorageUnavailableError, OSError) as exc:
            self._unavailable(exc)
        wait = self.fallback.retry_after_s(client)
        if wait > 0:
            raise RateLimitedError(
                f"Too many {self.what}: at most {self.limit} in {self.window_s:g} s from one "
                f"client; try again in {max(1, round(wait))} s",
                max(1, round(wait + 0.5)),
            )
        self.fallback.hit(client)
