"""Opening hours in OpenStreetMap ``opening_hours`` syntax, parsed with opening-hours-py.

Two layers:

* :func:`hours_error` validates an expression (used by the registry validator and the
  importer).
* :class:`HoursCache` evaluates expressions at a time. An expression is compiled once per
  *hours key* -- ``(expression, time zone, holiday country, coordinates)`` -- and for each
  key the cache keeps the current *run*: the state at the last time asked and the time
  that state next changes. Any later query inside the run is answered without calling
  the parser, so thousands of stations that share ``08:00-20:00`` cost one evaluation
  per state change, not one per station and query.

States are ``OPEN`` (1), ``CLOSED`` (0) and ``UNKNOWN`` (-1). A feature without hours is
unknown, never assumed open. Public holidays (``PH``) come from opening-hours-py's
calendar of the holiday country (the registry's region, ``CN`` by default); solar events
(``sunrise`` ...) use the feature's coordinates rounded to 0.1°.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import opening_hours

from yizhan.errors import InvalidInputError
from yizhan.settings import AUTO_COUNTRY

OPEN = 1
CLOSED = 0
UNKNOWN = -1

#: ``None`` end of a run: the state does not change within the library's horizon.
NEVER = math.inf

_STATE_CODE = {
    opening_hours.State.OPEN: OPEN,
    opening_hours.State.CLOSED: CLOSED,
    opening_hours.State.UNKNOWN: UNKNOWN,
}

#: A run longer than this is treated as "no change" (keeps next-change searches bounded).
MAX_INTERVAL_DAYS = 400

_SOLAR = re.compile(r"sunrise|sunset|dawn|dusk", re.IGNORECASE)
_HOLIDAY = re.compile(r"\b(PH|SH)\b")

#: (expression, IANA time zone, holiday country or None, (lat, lon) or None)
HoursKey = tuple[str, str, str | None, tuple[float, float] | None]


@lru_cache(maxsize=65536)
def hours_error(expression: str) -> str | None:
    """Why *expression* is not valid OSM opening_hours syntax, or ``None`` if it is.

    Parameters
    ----------
    expression : str
        An ``opening_hours`` value such as ``"Mo-Fr 09:00-17:00; PH off"``.

    Returns
    -------
    str or None
        The parser's message (first lines only), or ``None`` when the expression parses.
    """
    if not expression.strip():
        return "empty opening_hours; omit the property when hours are unknown"
    try:
        opening_hours.OpeningHours(expression)
    except Exception as exc:  # the parser raises ParserError and friends
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[-1].lstrip("= ").strip() if lines else type(exc).__name__
        return f"unparseable opening_hours {expression!r}: {detail}"
    return None


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone *name* (cached).

    Raises
    ------
    InvalidInputError
        ``timezone: Expected an IANA time zone such as Asia/Shanghai, got ...``.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInputError(
            "timezone", f"Expected an IANA time zone such as Asia/Shanghai, got {name!r}"
        ) from None


def timezone_error(name: str) -> str | None:
    """Why *name* is not an IANA time zone, or ``None`` if it is."""
    try:
        zone(name)
    except InvalidInputError as exc:
        return exc.message
    return None


def hours_key(
    expression: str, timezone: str, country: str | None, lon: float, lat: float
) -> HoursKey:
    """The cache key of an expression evaluated at a place.

    Coordinates (rounded to 0.1°) are part of the key only when they change the result:
    for solar events, and for holidays when the country is inferred (``auto``).
    """
    coords: tuple[float, float] | None = None
    if _SOLAR.search(expression) or (country == AUTO_COUNTRY and _HOLIDAY.search(expression)):
        coords = (round(lat, 1), round(lon, 1))
    if country == AUTO_COUNTRY and coords is None:
        country = None  # no holidays in the expression: the country does not matter
    return (expression, timezone, country, coords)


@lru_cache(maxsize=16384)
def compiled(key: HoursKey) -> opening_hours.OpeningHours:
    """The parsed expression of *key* (cached: many features share one string)."""
    expression, tz, country, coords = key
    auto = country == AUTO_COUNTRY
    return opening_hours.OpeningHours(
        expression,
        timezone=zone(tz),
        country=None if auto else country,
        coords=coords,
        auto_country=auto,
        auto_timezone=False,
        max_interval_days=MAX_INTERVAL_DAYS,
    )


def run_at(key: HoursKey, when: datetime) -> tuple[int, float]:
    """State of *key* at *when* and the POSIX time it changes to another state.

    Changes of comment only (``"a"`` then ``"b"`` while open) are not state changes.

    Returns
    -------
    (int, float)
        The state code and the change time (``math.inf`` if none within the horizon).
    """
    oh = compiled(key)
    when = when.astimezone(zone(key[1]))  # the library wants a ZoneInfo zone
    st = _STATE_CODE[oh.state(when)[0]]
    nxt = oh.next_change(when)
    for _ in range(64):
        if nxt is None:
            return st, NEVER
        if _STATE_CODE[oh.state(nxt)[0]] != st:
            return st, nxt.timestamp()
        nxt = oh.next_change(nxt)
    return st, NEVER if nxt is None else nxt.timestamp()


class HoursCache:
    """Hours keys, numbered, with the current run of each.

    ``state(kid, ts)`` answers from the cached run when ``ts`` lies in it and
    evaluates the expression otherwise. Not locked: a race only recomputes a run. The
    run lists (``_lo``, ``_hi``, ``_st``) are read directly by the search's hot loop.
    """

    #: Runs remembered per key besides the current one (queries at scattered times).
    HISTORY = 32

    def __init__(self) -> None:
        self._ids: dict[HoursKey, int] = {}
        self.keys: list[HoursKey] = []
        self._lo: list[float] = []
        self._hi: list[float] = []
        self._st: list[int] = []
        self._runs: list[list[tuple[float, float, int]]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def key_id(self, key: HoursKey) -> int:
        """The number of *key*, registering it on first use."""
        kid = self._ids.get(key)
        if kid is None:
            kid = self._ids[key] = len(self.keys)
            self.keys.append(key)
            self._lo.append(NEVER)
            self._hi.append(-NEVER)
            self._st.append(UNKNOWN)
            self._runs.append([])
        return kid

    def state(self, kid: int, ts: float) -> tuple[int, float]:
        """State of key *kid* at POSIX time *ts* and when it changes (``inf``: never)."""
        if self._lo[kid] <= ts < self._hi[kid]:
            return self._st[kid], self._hi[kid]
        runs = self._runs[kid]
        for lo, hi, st in runs:
            if lo <= ts < hi:
                self._lo[kid], self._hi[kid], self._st[kid] = lo, hi, st
                return st, hi
        key = self.keys[kid]
        st, end = run_at(key, datetime.fromtimestamp(ts, zone(key[1])))
        self._lo[kid], self._hi[kid], self._st[kid] = ts, end, st
        runs.append((ts, end, st))
        if len(runs) > self.HISTORY:
            del runs[0]
        return st, end

    def intervals(
        self, kid: int, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, datetime, int]]:
        """Runs of one state between *start* and *end* (aware datetimes), merged over comments."""
        yield from merged_intervals(self.keys[kid], start, end)


def merged_intervals(
    key: HoursKey, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, int]]:
    """``(from, until, state)`` runs of *key* covering ``[start, end)``, adjacent equal states merged."""
    z = zone(key[1])
    cur: tuple[datetime, datetime, int] | None = None
    for a, b, st, _comment in compiled(key).intervals(start.astimezone(z), end.astimezone(z)):
        code = _STATE_CODE[st]
        if cur is not None and cur[2] == code and cur[1] >= a:
            cur = (cur[0], b, code)
            continue
        if cur is not None:
            yield cur
        cur = (a, b, code)
    if cur is not None:
        yield cur


def to_local(ts: float, tz: str) -> datetime:
    """POSIX time *ts* as an aware datetime in zone *tz*."""
    return datetime.fromtimestamp(ts, zone(tz))


def iso_or_none(ts: float, tz: str) -> str | None:
    """ISO 8601 text of POSIX time *ts* in zone *tz* (minutes precision), ``None`` for ``inf``."""
    if not math.isfinite(ts):
        return None
    return to_local(ts, tz).isoformat(timespec="minutes")


def open_state(code: int) -> bool | None:
    """``True``/``False``/``None`` (unknown) for a state code."""
    return None if code == UNKNOWN else code == OPEN


def parse_time(text: str, tz: str, field: str = "open_at", now: datetime | None = None) -> datetime:
    """An aware datetime from ``now`` or ISO 8601 text; a naive time is in zone *tz*.

    Parameters
    ----------
    text : str
        ``now``, ``2026-07-15T13:00``, ``2026-07-15T13:00+08:00``, ``2026-07-15T05:00Z``
        or a date ``2026-07-15`` (midnight).
    tz : str
        IANA zone of naive times (the registry's).
    field : str
        Name reported in errors.
    now : datetime, optional
        The current time (tests); default the clock.

    Raises
    ------
    InvalidInputError
        Naming *field*, saying what was expected and what came.
    """
    s = text.strip()
    if s.lower() == "now":
        return (now or datetime.now(UTC)).astimezone(zone(tz))
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        raise InvalidInputError(
            field,
            f"Expected 'now' or an ISO 8601 time such as 2026-07-15T13:00 (a time without "
            f"offset is in {tz}), got {text!r}",
        ) from None
    return localize(when, tz)


def localize(when: datetime, tz: str) -> datetime:
    """*when* as an aware datetime: naive values are read in zone *tz*."""
    if when.tzinfo is None or when.utcoffset() is None:
        return when.replace(tzinfo=zone(tz))
    return when


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """Local midnight of *day* and of the next day, in zone *tz*."""
    z = zone(tz)
    return datetime.combine(day, time(), z), datetime.combine(day + timedelta(days=1), time(), z)
