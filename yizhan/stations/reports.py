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
day and is never stored in this file (files written before kept one in their header; it is
ignored). A client's reports on different days are unlinkable, except that a report about a
station the same client reported on within ``window_days`` is stored under that earlier
hash, so that ``threshold`` still counts different clients. The raw address is never stored. Every :meth:`ReportStore.add` appends one line under ``fcntl.flock`` and fsyncs
before returning, so that two processes never interleave lines. A line torn by a crash is
skipped (with a logged warning) and the next line starts on a new line; nothing is ever
rewritten.

This module is plain Python (no web framework): the HTTP routes and the CLI call it.
"""

from __future__ import annotations

import bisect
import builtins
import fcntl
import logging
import math
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from yizhan.errors import InvalidInputError, RateLimitedError
from yizhan.stations.clock import Clock, iso, utc_now
from yizhan.stations.models import check_lon_lat
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
FILE_TYPE = "yizhan-reports"
FILE_VERSION = 1

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


class ReportStore:
    """Every report, in memory and in an append-only JSON-lines file.

    Parameters
    ----------
    path : Path, optional
        The file; ``None`` keeps reports in memory only. Created (with its header) if missing.
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
    salts : DailySalts, optional
        Where the daily salts of client hashes come from (default: this process's, in
        memory); it should keep salts for at least ``window_days``.

    Raises
    ------
    InvalidInputError
        A parameter is out of range, or the file cannot be opened for appending.

    Notes
    -----
    Rate limits count the reports accepted in the sliding hour / 24 hours before now
    (reports loaded from the file count too). Reports appended by another process are read
    by :meth:`add` at once and by the reading methods at most ``refresh_interval_s`` later
    (one ``os.stat``).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        window_days: int = 14,
        threshold: int = 2,
        rate_per_hour: int = 10,
        rate_per_station_per_day: int = 3,
        clock: Clock = utc_now,
        refresh_interval_s: float = 1.0,
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
        self.salts = salts if salts is not None else PROCESS_SALTS
        self._reset()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked_file() as fd:
                self._catch_up(fd)

    def _reset(self) -> None:
        self._header = False
        self._reports: list[Report] = []
        self._ids: set[str] = set()
        self._by_station: dict[str, list[Report]] = {}
        #: Sorted POSIX times of each client's reports, and of each (client, station).
        self._client_times: dict[str, list[float]] = {}
        self._client_station_times: dict[tuple[str, str], list[float]] = {}
        #: How many bytes of the file have been read, and its inode.
        self._offset = 0
        self._ino: int | None = None
        self._ends_with_newline = True

    # -- the file ---------------------------------------------------------------------------
    def _locked_file(self) -> _LockedFile:
        assert self.path is not None
        return _LockedFile(self.path)

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

    def _parse(self, data: bytes, start: int, final: bool) -> int:
        """Index the complete lines of *data* (read from byte *start*); returns how many bytes
        were consumed. A last line without newline is skipped as torn when *final*, else left
        for later (another process may be writing it)."""
        consumed = 0
        while consumed < len(data):
            end = data.find(b"\n", consumed)
            if end < 0:
                if not final:
                    break
                log.warning(
                    "%s: skipping an incomplete last line at byte %d (a write was interrupted)",
                    self.path,
                    start + consumed,
                )
                consumed = len(data)
                break
            line = data[consumed:end].strip()
            where = start + consumed
            consumed = end + 1
            if not line:
                continue
            try:
                d = orjson.loads(line)
                if isinstance(d, dict) and d.get("type") == FILE_TYPE:
                    self._header = True  # an old header's "salt" is not used
                    continue
                self._index(Report.from_dict(d))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s: skipping an unreadable line at byte %d: %s", self.path, where, exc)
        return consumed

    def _catch_up(self, fd: int) -> None:
        """With the file lock held: read what was appended since the file was last read, and
        write the header if the file has none."""
        self._read_new(fd, final=True)
        if not self._header:
            self._header = True
            self._append(fd, orjson.dumps({"type": FILE_TYPE, "version": FILE_VERSION}))

    def _read_new(self, fd: int, final: bool) -> None:
        """Read what was appended to the file since it was last read."""
        st = os.fstat(fd)
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._offset):
            log.warning("%s was replaced or truncated; reading it again", self.path)
            self._reset()
        self._ino = st.st_ino
        if st.st_size > self._offset:
            data = os.pread(fd, st.st_size - self._offset, self._offset)
            self._offset += self._parse(data, self._offset, final)
            self._ends_with_newline = data.endswith(b"\n")

    def _append(self, fd: int, line: bytes) -> None:
        """Append *line* (on a line of its own) and fsync; the file lock is held."""
        data = (b"" if self._ends_with_newline else b"\n") + line + b"\n"
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
        self._offset = os.fstat(fd).st_size
        self._ends_with_newline = True

    def refresh(self, force: bool = False) -> None:
        """Read reports another process appended (one ``os.stat`` when nothing changed).

        Looks at most once every ``refresh_interval_s`` unless *force*.
        """
        if self.path is None:
            return
        if not force:
            t = time.monotonic()
            if t < self._next_refresh:
                return
            self._next_refresh = t + self.refresh_interval_s
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino == self._ino and st.st_size == self._offset:
            return
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                self._read_new(fd, final=False)
            finally:
                os.close(fd)

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
            if self.path is None:
                return self._add(station_id, code, text, lon_lat, client, when, None)
            with self._locked_file() as fd:
                self._catch_up(fd)
                return self._add(station_id, code, text, lon_lat, client, when, fd)

    def _add(
        self,
        station_id: str,
        code: str,
        comment: str | None,
        location: tuple[float, float] | None,
        client: str,
        when: datetime,
        fd: int | None,
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
        if fd is not None:
            self._append(fd, orjson.dumps(report.as_dict(include_client=True)))
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


class _LockedFile:
    """The report file opened for appending, with an exclusive ``flock`` held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> int:
        existed = self.path.exists()
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InvalidInputError(
                str(self.path), f"cannot open for appending: {exc.strerror or exc}"
            ) from exc
        if not existed:  # make the new file's name durable too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # releases the lock
