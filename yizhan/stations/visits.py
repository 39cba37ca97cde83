"""Visit counts that station managers and bus operators keep: ``PUT /stations/{id}/visits/{date}``.

A count says how many visits a station (or one stop of a cooling bus) had on one local
day, optionally hour by hour. Recording a count for a day that already has one replaces
it. A day's count, when there is one, is that unit's visits for the day; check-ins count
only on days without one (:mod:`yizhan.query.usage`).

Counts are audited like edits, and the audit log *is* their store: every change is one line
of ``<registry>.visits.jsonl`` written through :class:`~yizhan.stations.audit.AuditLog`
(``flock``, ``fsync`` before the answer, a per-station index), in the audit format::

    {"at": "…", "id": "zz-01", "action": "visits", "actor": {"role": "manager", "name": "…",
     "token_id": "tok_…"}, "reason": null, "etag_before": null, "etag_after": null,
     "changes": [{"path": "visits.2026-07-15", "before": 80, "after": 95}],
     "before": {…} | null, "after": {"day": "2026-07-15", "stop_id": null, "count": 95,
     "hours": [0, …, 12, …] | null}}

They are kept apart from the registry's own audit log on purpose: that log's last line is
how a crashed registry write is completed (:mod:`yizhan.stations.registryfile`), so only
registry changes may be appended to it, under the registry's lock.

With PostgreSQL the same entries are rows of ``visit_counts``
(:class:`~yizhan.storage.pg_usage.PgVisitLog`); either is a :class:`VisitLog`, and the
store's rules (what a count may be, "before" being the last count whichever process
wrote it) are the same over both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from yizhan.errors import InvalidInputError
from yizhan.stations.audit import AuditLog
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.registryfile import file_lock
from yizhan.stations.tokens import Principal
from yizhan.stations.usage_files import SOURCE_COUNT, VisitRows, unit_key

#: Largest count of one day (and of one hour).
MAX_COUNT = 1_000_000
#: How far back a count may be recorded.
MAX_AGE_DAYS = 5 * 366


@dataclass(frozen=True)
class VisitCount:
    """A recorded count: one unit, one day."""

    station_id: str
    stop_id: str | None
    day: date
    count: int
    hours: tuple[int, ...] | None
    at: str
    actor: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """The ``after`` member of its audit line."""
        return {
            "day": self.day.isoformat(),
            "stop_id": self.stop_id,
            "count": self.count,
            "hours": list(self.hours) if self.hours is not None else None,
        }

    def as_dict(self, show_actor: bool = False) -> dict[str, Any]:
        """JSON form; the recorder's name and token only with *show_actor* (role always)."""
        who = (
            self.actor
            if show_actor
            else {"role": self.actor.get("role"), "name": None, "token_id": None}
        )
        return {"station_id": self.station_id, **self.record(), "recorded_at": self.at, "by": who}


def check_count(count: Any, hours: Any) -> tuple[int, tuple[int, ...] | None]:
    """Validate a count and its optional hour-by-hour split (24 numbers adding up to it).

    Raises
    ------
    InvalidInputError
        Naming ``count`` or ``hours``.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise InvalidInputError("count", f"Expected a whole number 0–{MAX_COUNT}, got {count!r}")
    if hours is None:
        return count, None
    if (
        not isinstance(hours, list | tuple)
        or len(hours) != 24
        or any(isinstance(h, bool) or not isinstance(h, int) or h < 0 for h in hours)
    ):
        raise InvalidInputError(
            "hours", "Expected 24 whole numbers >= 0 (visits in each hour from 00:00), or null"
        )
    if sum(hours) != count:
        raise InvalidInputError(
            "hours", f"Expected hours adding up to count ({count}), got {sum(hours)}"
        )
    return count, tuple(int(h) for h in hours)


class VisitLogTx(Protocol):
    """A :class:`VisitLog` while its lock is held."""

    def read_since(self, pos: int) -> tuple[list[dict[str, Any]], int]:
        """The entries after position *pos* and the position after them."""
        ...

    def append(self, entry: dict[str, Any]) -> None:
        """Append one entry (durable when the lock is released)."""
        ...


class VisitLog(Protocol):
    """Where count entries are kept: :class:`VisitFile`, or the ``visit_counts`` table."""

    @property
    def where(self) -> str: ...

    def read_since(self, pos: int) -> tuple[list[dict[str, Any]], int]:
        """The entries after position *pos* (by any process) and the position after them."""
        ...

    def locked(self) -> AbstractContextManager[VisitLogTx]:
        """Hold the lock every process takes to append."""
        ...


class VisitFile:
    """:class:`VisitLog` in ``<registry>.visits.jsonl`` (``None``: in memory)."""

    def __init__(self, path: Path | None) -> None:
        self.log = AuditLog(path)
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock") if path is not None else None

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "memory"

    def read_since(self, pos: int) -> tuple[list[dict[str, Any]], int]:
        self.log.refresh()
        return [row for _, row in self.log.since(pos)], self.log.end

    @contextmanager
    def locked(self) -> Iterator[VisitFile]:
        with file_lock(self._lock_path):
            yield self

    def append(self, entry: dict[str, Any]) -> None:
        self.log.append([entry])


class VisitCountStore:
    """Recorded counts, in their audit log (``None``: in memory) or another :class:`VisitLog`.

    Parameters
    ----------
    path : Path, optional
        ``<registry>.visits.jsonl``.
    clock : callable
        The current time (aware).
    log : VisitLog, optional
        Where the entries are kept instead of *path* (the database's table).
    """

    def __init__(
        self, path: Path | None, *, clock: Clock = utc_now, log: VisitLog | None = None
    ) -> None:
        self.log: VisitLog = log if log is not None else VisitFile(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str | None, date], VisitCount] = {}
        self._read_to = 0

    def _catch_up(self, tx: VisitLogTx | None = None) -> None:
        """Apply the entries appended since the last look (by any process)."""
        with self._lock:
            rows, end = (tx or self.log).read_since(self._read_to)
            for row in rows:
                c = _from_entry(row)
                if c is not None:
                    self._current[(c.station_id, c.stop_id, c.day)] = c
            self._read_to = end

    def put(
        self,
        station_id: str,
        day: date,
        count: Any,
        *,
        hours: Any = None,
        stop_id: str | None = None,
        who: Principal,
        today: date,
        note: str | None = None,
    ) -> tuple[VisitCount, bool]:
        """Record (or replace) the count of one day; ``(count, created)``.

        The caller checks that *who* may, that the station exists and that *stop_id* is
        one of its stops (buses) or ``None`` (stations).

        Raises
        ------
        InvalidInputError
            Naming ``date``, ``count`` or ``hours``.
        """
        n, split = check_count(count, hours)
        if day > today:
            raise InvalidInputError("date", f"Expected today ({today}) or earlier, got {day}")
        if day < today - timedelta(days=MAX_AGE_DAYS):
            raise InvalidInputError(
                "date", f"Expected a day within {MAX_AGE_DAYS} days of today, got {day}"
            )
        at = self.clock().astimezone(UTC)
        actor = {"role": who.role, "name": who.name, "token_id": who.token_id}
        new = VisitCount(
            station_id, stop_id, day, n, split, at.isoformat(timespec="seconds"), actor
        )
        with self.log.locked() as tx:  # "before" is the last count, whichever process wrote it
            self._catch_up(tx)
            old = self._append(new, note, tx)
        self._catch_up()
        return new, old is None

    def _append(self, new: VisitCount, note: str | None, tx: VisitLogTx) -> VisitCount | None:
        station_id, stop_id, day, n, split = (
            new.station_id,
            new.stop_id,
            new.day,
            new.count,
            new.hours,
        )
        with self._lock:
            old = self._current.get((station_id, stop_id, day))
            path = f"visits.{day.isoformat()}" + (f".{stop_id}" if stop_id else "")
            entry = {
                "at": self.clock().astimezone(UTC).isoformat(timespec="microseconds"),
                "id": station_id,
                "action": "visits",
                "actor": new.actor,
                "reason": note,
                "etag_before": None,
                "etag_after": None,
                "changes": [
                    {"path": path, "before": old.count if old else None, "after": n},
                    *(
                        [
                            {
                                "path": path + ".hours",
                                "before": old.record()["hours"] if old else None,
                                "after": list(split) if split else None,
                            }
                        ]
                        if (old.hours if old else None) != split
                        else []
                    ),
                ],
                "before": old.record() if old else None,
                "after": new.record(),
            }
            tx.append(entry)
        return old

    def for_station(self, station_id: str, first: date, last: date) -> list[VisitCount]:
        """The counts of a station (or bus) between two days, by day and stop."""
        self._catch_up()
        with self._lock:
            rows = [
                c
                for (sid, _, day), c in self._current.items()
                if sid == station_id and first <= day <= last
            ]
        return sorted(rows, key=lambda c: (c.day, c.stop_id or ""))

    def rows(self, first: date, last: date) -> VisitRows:
        """The counts of the days ``first``–``last`` as visit rows (source ``count``)."""
        self._catch_up()
        with self._lock:
            counts = [c for (_, _, day), c in self._current.items() if first <= day <= last]
        records: list[tuple[int, str, int, int, int, int]] = []
        for c in counts:
            key = unit_key(c.station_id, c.stop_id)
            d = c.day.toordinal()
            if c.hours is None:
                records.append((d, key, -1, -1, SOURCE_COUNT, c.count))
            else:
                records += [(d, key, h, -1, SOURCE_COUNT, v) for h, v in enumerate(c.hours) if v]
                if c.count == 0:
                    records.append((d, key, -1, -1, SOURCE_COUNT, 0))
        return VisitRows.from_records(records)

    def work(self, first: datetime, last: datetime) -> list[dict[str, Any]]:
        """Every count recorded in ``[first, last)``: ``{"id", "actor", "at"}`` each."""
        self._catch_up()
        with self._lock:
            return [
                {"id": c.station_id, "actor": c.actor, "at": c.at}
                for c in self._current.values()
                if first <= datetime.fromisoformat(c.at) < last
            ]


def _from_entry(row: dict[str, Any]) -> VisitCount | None:
    after = row.get("after")
    if row.get("action") != "visits" or not isinstance(after, dict):
        return None
    try:
        n, split = check_count(after.get("count"), after.get("hours"))
        return VisitCount(
            station_id=str(row["id"]),
            stop_id=after.get("stop_id") if isinstance(after.get("stop_id"), str) else None,
            day=date.fromisoformat(str(after["day"])),
            count=n,
            hours=split,
            at=str(row.get("at", ""))[:19] + "+00:00",
            actor=dict(row["actor"]) if isinstance(row.get("actor"), dict) else {},
        )
    except (InvalidInputError, KeyError, ValueError):
        return None


__all__ = [
    "MAX_COUNT",
    "VisitCount",
    "VisitCountStore",
    "VisitFile",
    "VisitLog",
    "VisitLogTx",
    "check_count",
]
