"""Problem reports from workers: "closed", "no water", "toilet unusable", ….

Anyone may report; a station *needs checking* when at least ``threshold`` different clients
reported the same problem within ``window_days`` days and after the station was last
verified (a verification clears every earlier report).

Reports are kept in an append-only JSON-lines file (``<registry>.reports.jsonl``, mode 0600)::

    {"type": "yizhan-reports", "version": 1}
    {"id": "rep_…", "station_id": "zz-01", "code": "no_water", "comment": null,
     "location": [113.61, 34.75], "client": "<sha256 hex>", "created_at": "2026-07-15T08:00:00+00:00"}
    …

The first line is the header, written when the file is created. ``client`` is the SHA-256 of
a daily salt and the client address (:mod:`yizhan.stations.salts`): the salt rotates every
day and is never stored with the reports (files written before kept one in their header; it
is ignored). A client's reports on different days are unlinkable, except that a report about
a station the same client reported on within ``window_days`` is stored under that earlier
hash, so that ``threshold`` still counts different clients. The raw address is never
stored. Every :meth:`ReportStore.add` appends one line under ``fcntl.flock`` and fsyncs
before returning, so that two processes never interleave lines. A line torn by a crash is
skipped (with a logged warning) and the next line starts on a new line; nothing is ever
rewritten.

This module is plain Python (no web framework): the HTTP routes and the CLI call it.
"""

from __future__ import annotations

import bisect
import builtins
import logging
import math
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from yizhan.errors import InvalidInputError, RateLimitedError, StorageUnavailableError
from yizhan.stations.clock import Clock, iso, utc_now
from yizhan.stations.models import check_lon_lat
from yizhan.stations.reportfile import ReportFile
from yizhan.stations.salts import PROCESS_SALTS, DailySalts

log = logging.getLogger("yizhan")

#: What a report can say. ``all_good`` confirms a station and is never a problem.
REPORT_CODES = (
    "closed",
    "no_water",
    "toilet_unusable",
    "too_crowded",
    "moved",
    "wrong_info",
    "all_good",
)
#: Codes that are problems.
PROBLEM_CODES = tuple(c for c in REPORT_CODES if c != "all_good")
#: Longest comment, in characters.
MAX_COMMENT = 1000
#: Report statuses.
STATUSES = ("open", "resolved")

HOUR = 3600.0
DAY = 86400.0


def check_comment(value: Any) -> str | None:
    """Validate a comment: ``None`` or text of at most 1000 characters.

    Surrounding whitespace is stripped (an empty comment is ``None``); nothing else is
    changed — HTML is text. Control characters other than newline and tab are refused.

    Raises
    ------
    InvalidInputError
        Naming ``comment``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError("comment", f"Expected text or null, got {value!r:.80}")
    text = value.strip()
    if len(text) > MAX_COMMENT:
        raise InvalidInputError(
            "comment", f"Expected at most {MAX_COMMENT} characters, got {len(text)}"
        )
    for i, c in enumerate(text):
        if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cs"):
            raise InvalidInputError(
                "comment",
                f"Expected text without control characters (newline and tab are fine), "
                f"got U+{ord(c):04X} at position {i}",
            )
    return text or None


def check_code(value: Any) -> str:
    """Validate a report code (one of :data:`REPORT_CODES`); raises naming ``code``."""
    if not isinstance(value, str) or value not in REPORT_CODES:
        raise InvalidInputError("code", f"Expected one of {', '.join(REPORT_CODES)}, got {value!r}")
    return value


def check_location(value: Any) -> tuple[float, float] | None:
    """Validate a reporter's position ``[lon, lat]`` (WGS-84) or ``None``; raises naming
    ``location``."""
    if value is None:
        return None
    try:
        return check_lon_lat(value)
    except ValueError as exc:
        raise InvalidInputError("location", str(exc)) from None


def as_utc(value: datetime | date | None, field: str = "verified_at") -> datetime | None:
    """An aware UTC datetime; a date is the start of that day (UTC); ``None`` stays ``None``.

    Raises
    ------
    InvalidInputError
        A naive datetime, naming *field*.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError(field, f"Expected a time with a UTC offset, got {value!r}")
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


@dataclass(frozen=True)
class Report:
    """One report about one station.

    Attributes
    ----------
    id : str
        ``rep_`` + 16 hex digits.
    station_id : str
    code : str
        One of :data:`REPORT_CODES`.
    comment : str or None
        As given (surrounding whitespace stripped).
    location : tuple of float or None
        Where the reporter was, ``(lon, lat)`` WGS-84.
    client : str
        Salted SHA-256 (hex) of the client address.
    created_at : datetime
        Aware, UTC, whole seconds.
    """

    id: str
    station_id: str
    code: str
    comment: str | None
    location: tuple[float, float] | None
    client: str
    created_at: datetime

    @property
    def problem(self) -> bool:
        """Whether the report is about a problem (anything but ``all_good``)."""
        return self.code != "all_good"

    def as_dict(self, include_client: bool = False) -> dict[str, Any]:
        """JSON form: ``id, station_id, code, comment, location, created_at`` (and ``client``)."""
        d: dict[str, Any] = {
            "id": self.id,
            "station_id": self.station_id,
            "code": self.code,
            "comment": self.comment,
            "location": list(self.location) if self.location else None,
            "created_at": iso(self.created_at),
        }
        if include_client:
            d["client"] = self.client
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Report:
        """Read a stored line (``ValueError``/``KeyError``/``TypeError`` if malformed)."""
        if not isinstance(d, dict):
            raise TypeError(f"Expected an object, got {d!r:.80}")
        created = datetime.fromisoformat(d["created_at"])
        if created.tzinfo is None:
            raise ValueError(f"created_at: Expected a UTC offset, got {d['created_at']!r}")
        for key in ("id", "station_id", "client"):
            if not isinstance(d[key], str):
                raise TypeError(f"{key}: Expected a string, got {d[key]!r}")
        return cls(
            id=d["id"],
            station_id=d["station_id"],
            code=check_code(d["code"]),
            comment=check_comment(d.get("comment")),
            location=check_location(d.get("location")),
            client=d["client"],
            created_at=created.astimezone(UTC),
        )


class ReportAppender(Protocol):
    """A :class:`ReportLog` while its inter-process lock is held (:meth:`ReportLog.appending`)."""

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        """As :meth:`ReportLog.read_new`, under the lock (nothing can be appended meanwhile)."""
        ...

    def append(self, row: dict[str, Any]) -> None:
        """Store one report durably (it is on disk, or committed, when this returns)."""
        ...


class ReportLog(Protocol):
    """Where reports are kept, shared by every process: an append-only log.

    Attributes
    ----------
    where : str
        What to name in messages (a file, a table).
    """

    where: str

    def changed(self) -> bool:
        """Cheap: whether anything was appended (by any process) since the last read."""
        ...

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        """The reports appended since the last call, as stored; ``True`` first when the log
        was replaced and every report is given again (forget what was read)."""
        ...

    def appending(self) -> AbstractContextManager[ReportAppender]:
        """Hold the log's inter-process lock while a report is checked and appended."""
        ...


class ReportStore:
    """Every report, in memory and in an append-only log shared by every process.

    Parameters
    ----------
    path : Path, optional
        The JSON-lines file; ``None`` keeps reports in memory only. Created (with its
        header) if missing.
    window_days : int
        Reports older than this many days no longer make a station need checking.
    threshold : int
        How many different clients must report the same problem.
    rate_per_hour : int
        Most reports one client may make in any hour.
    rate_per_station_per_day : int
        Most reports one client may make about one station in any 24 hours.
    clock : callable, optional
        Returns the current aware time.
    refresh_interval_s : float
        How often the reading methods look for reports appended by another process.
    source : ReportLog, optional
        Where reports are kept instead of *path* (a storage backend's table).

    Raises
    ------
    InvalidInputError
        A parameter is out of range, or the file cannot be opened for appending.

    Notes
    -----
    Rate limits count the reports accepted in the sliding hour / 24 hours before now
    (reports read from the log count too), checked under the log's lock after reading
    what other processes appended. Reports appended by another process are read by
    :meth:`add` at once and by the reading methods at most ``refresh_interval_s`` later
    (one ``os.stat`` of the file).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        window_days: int = 14,
        threshold: int = 2,
        rate_per_hour: int = 10,
        rate_per_station_per_day: int = 3,
        clock: Clock = utc_now,
        refresh_interval_s: float = 1.0,
        source: ReportLog | None = None,
        salts: DailySalts | None = None,
    ) -> None:
        for name, value in (
            ("window_days", window_days),
            ("threshold", threshold),
            ("rate_per_hour", rate_per_hour),
            ("rate_per_station_per_day", rate_per_station_per_day),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(name, f"Expected a whole number >= 1, got {value!r}")
        self.path = path
        self.window = timedelta(days=window_days)
        self.threshold = threshold
        self.rate_per_hour = rate_per_hour
        self.rate_per_station_per_day = rate_per_station_per_day
        self.clock = clock
        self.refresh_interval_s = refresh_interval_s
        self._next_refresh = 0.0
        self._lock = threading.RLock()
        self.source: ReportLog | None = (
            source if source is not None else (ReportFile(path) if path is not None else None)
        )
        self.salts = salts if salts is not None else PROCESS_SALTS
        self._reset()
        if self.source is not None:
            with self._lock, self.source.appending() as log_:
                self._take(log_.read_new())

    def _reset(self) -> None:
        self._reports: list[Report] = []
        self._ids: set[str] = set()
        self._by_station: dict[str, list[Report]] = {}
        #: Sorted POSIX times of each client's reports, and of each (client, station).
        self._client_times: dict[str, list[float]] = {}
        self._client_station_times: dict[tuple[str, str], list[float]] = {}

    def _index(self, report: Report) -> None:
        if report.id in self._ids:
            return
        self._ids.add(report.id)
        self._reports.append(report)
        self._by_station.setdefault(report.station_id, []).append(report)
        ts = report.created_at.timestamp()
        bisect.insort(self._client_times.setdefault(report.client, []), ts)
        key = (report.client, report.station_id)
        bisect.insort(self._client_station_times.setdefault(key, []), ts)

    def _take(self, new: tuple[bool, list[dict[str, Any]]]) -> None:
        """Index what the log gave (starting over when it says so); unreadable rows are
        skipped with a warning."""
        again, rows = new
        if again:
            self._reset()
        for d in rows:
            try:
                self._index(Report.from_dict(d))
            except (KeyError, TypeError, ValueError) as exc:
                where = self.source.where if self.source is not None else "reports"
                log.warning("%s: skipping an unreadable report: %s", where, exc)

    def refresh(self, force: bool = False) -> None:
        """Read reports another process appended (one ``os.stat`` when nothing changed).

        Looks at most once every ``refresh_interval_s`` unless *force*.
        """
        if self.source is None:
            return
        if not force:
            t = time.monotonic()
            if t < self._next_refresh:
                return
            self._next_refresh = t + self.refresh_interval_s
        if not self.source.changed():
            return
        with self._lock:
            try:
                self._take(self.source.read_new())
            except StorageUnavailableError as exc:  # the database is down: answer from memory
                log.warning("%s cannot be read now: %s", self.source.where, exc)

    # -- the API ----------------------------------------------------------------------------
    def client_hash(self, client: str, now: datetime | None = None) -> str:
        """The salted SHA-256 of *client* (an address) under the salt of today (or *now*)."""
        return self.salts.hash(client, "reports", now or self.clock())

    def _check_rate(self, clients: builtins.list[str], station_id: str, now: datetime) -> None:
        """*clients*: the client's hashes under every salt still kept."""
        t = now.timestamp()

        def merged(table: dict[Any, builtins.list[float]], keys: Any) -> builtins.list[float]:
            return sorted(x for k in keys for x in table.get(k, ()))

        for times, span, limit, what in (
            (merged(self._client_times, clients), HOUR, self.rate_per_hour, "in an hour"),
            (
                merged(self._client_station_times, [(c, station_id) for c in clients]),
                DAY,
                self.rate_per_station_per_day,
                f"about station {station_id!r} in 24 hours",
            ),
        ):
            lo = bisect.bisect_right(times, t - span)
            count = bisect.bisect_right(times, t) - lo
            if count >= limit:
                # The window must lose count - limit + 1 reports: wait for that one to age out.
                retry = times[lo + count - limit] + span - t
                raise RateLimitedError(
                    f"Too many reports: at most {limit} {what} from one client; "
                    f"try again in {math.ceil(retry)} s",
                    math.ceil(retry),
                )

    def add(
        self,
        station_id: str,
        code: str,
        *,
        comment: str | None = None,
        location: Any = None,
        client: str,
        now: datetime | None = None,
    ) -> Report:
        """Record a report, durably (appended and fsynced before this returns).

        Parameters
        ----------
        station_id : str
            The station (the caller checks that it exists).
        code : str
            One of :data:`REPORT_CODES`.
        comment : str, optional
            At most 1000 characters.
        location : [lon, lat], optional
            Where the reporter is (WGS-84).
        client : str
            The client's address (or other identity); only its salted hash is kept.
        now : datetime, optional
            Aware; default the store's clock.

        Raises
        ------
        InvalidInputError
            Naming ``station_id``, ``code``, ``comment``, ``location`` or ``client``.
        RateLimitedError
            The client made too many reports recently.
        """
        if not isinstance(station_id, str) or not station_id:
            raise InvalidInputError("station_id", f"Expected a station id, got {station_id!r}")
        code = check_code(code)
        text = check_comment(comment)
        lon_lat = check_location(location)
        if not isinstance(client, str) or not client:
            raise InvalidInputError("client", f"Expected a client address, got {client!r}")
        when = as_utc(now or self.clock(), "now")
        assert when is not None
        when = when.replace(microsecond=0)
        with self._lock:
            if self.source is None:
                return self._add(station_id, code, text, lon_lat, client, when, None)
            with self.source.appending() as log_:
                self._take(log_.read_new())
                return self._add(station_id, code, text, lon_lat, client, when, log_)

    def _add(
        self,
        station_id: str,
        code: str,
        comment: str | None,
        location: tuple[float, float] | None,
        client: str,
        when: datetime,
        log_: ReportAppender | None,
    ) -> Report:
        hashes = self.salts.hashes(client, "reports", when, self.window)
        self._check_rate(hashes, station_id, when)
        since = (when - self.window).timestamp()
        # The hash this client reported this station under within the window, if any.
        client_hash = next(
            (
                h
                for h in hashes
                if any(t > since for t in self._client_station_times.get((h, station_id), ()))
            ),
            hashes[0],
        )
        report = Report(
            id="rep_" + secrets.token_hex(8),
            station_id=station_id,
            code=code,
            comment=comment,
            location=location,
            client=client_hash,
            created_at=when,
        )
        if log_ is not None:
            log_.append(report.as_dict(include_client=True))
        self._index(report)
        return report

    def for_station(self, station_id: str) -> builtins.list[Report]:
        """Reports about *station_id*, newest first."""
        self.refresh()
        with self._lock:
            return _newest_first(self._by_station.get(station_id, []))

    def all(self) -> builtins.list[Report]:
        """Every report, newest first."""
        self.refresh()
        with self._lock:
            return _newest_first(self._reports)

    def needs_check(
        self, station_id: str, verified_at: datetime | date | None, now: datetime | None = None
    ) -> builtins.list[str]:
        """Problems that make station *station_id* need checking, sorted.

        A problem code counts when at least ``threshold`` different clients reported it
        within the last ``window_days`` days and after *verified_at* (a date means the start
        of that day, UTC). ``all_good`` is never a problem.
        """
        t = as_utc(now or self.clock(), "now")
        assert t is not None
        since = t - self.window
        verified = as_utc(verified_at)
        if verified is not None and verified > since:
            since = verified
        self.refresh()
        clients: dict[str, set[str]] = {}
        with self._lock:
            for r in self._by_station.get(station_id, ()):
                if r.problem and since < r.created_at <= t:
                    clients.setdefault(r.code, set()).add(r.client)
        return sorted(c for c, who in clients.items() if len(who) >= self.threshold)

    def station_ids(self) -> builtins.list[str]:
        """Stations with at least one problem report (the only ones :meth:`needs_check` can
        flag), sorted."""
        self.refresh()
        with self._lock:
            return sorted(
                sid for sid, reps in self._by_station.items() if any(r.problem for r in reps)
            )

    @staticmethod
    def status_of(report: Report, verified_at: datetime | date | None) -> str:
        """``"resolved"`` if the station was verified after the report was made, else ``"open"``.

        Age alone does not resolve a report: an old report stays ``"open"`` until the station
        is verified (it no longer counts towards :meth:`needs_check`, though).
        """
        verified = as_utc(verified_at)
        return "resolved" if verified is not None and verified > report.created_at else "open"

    def list(
        self,
        status: str | None,
        verified_at_of: Callable[[str], datetime | date | None],
    ) -> builtins.list[tuple[Report, str]]:
        """Every report with its status, newest first; only those of *status* if given.

        Parameters
        ----------
        status : {"open", "resolved"} or None
        verified_at_of : callable
            Station id → when it was last verified (``None`` if never).

        Raises
        ------
        InvalidInputError
            Naming ``status``.
        """
        if status is not None and status not in STATUSES:
            raise InvalidInputError(
                "status", f"Expected one of {', '.join(STATUSES)} (or none), got {status!r}"
            )
        verified: dict[str, datetime | date | None] = {}
        out: builtins.list[tuple[Report, str]] = []
        for r in self.all():
            if r.station_id not in verified:
                verified[r.station_id] = verified_at_of(r.station_id)
            s = self.status_of(r, verified[r.station_id])
            if status is None or s == status:
                out.append((r, s))
        return out


def _newest_first(reports: builtins.list[Report]) -> builtins.list[Report]:
    # A stable sort, reversed: among equal times, the later-appended comes first.
    return sorted(reports, key=lambda r: r.created_at)[::-1]
