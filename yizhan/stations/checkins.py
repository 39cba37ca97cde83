"""Check-ins: a worker's anonymous "I'm here" tap at a station or a cooling bus.

A check-in says which station (and, for a bus, at which stop it stood), when, optionally
the worker's trade (:data:`~yizhan.stations.usage_files.TRADES`) and whether a position was
given (the position itself is checked by the caller and never stored). The client is kept
only as a hash under the day's salt (:mod:`yizhan.stations.salts`), for the rules:

* one check-in per client and station in ``interval_s`` (4 hours): a repeated tap gets
  :class:`~yizhan.errors.RateLimitedError` with the seconds to wait;
* at most ``rate_per_hour`` check-ins per client over all stations.

**Where.** A :class:`~yizhan.stations.checkin_log.CheckinLog` keeps them: day files in the
usage directory (:mod:`yizhan.stations.checkin_files`, the files backend) or the
``checkins`` table (:mod:`yizhan.storage.pg_usage`). Once a day is over (from the day after
next), its check-ins are aggregated into the visit rows (counts per unit, hour and trade,
no hashes) and deleted: client hashes live for two days at most, aggregates for good.

**Durability: group commit.** :meth:`CheckinStore.submit` queues a check-in and returns a
future; one writer thread takes everything queued, and for each day holds the log's lock
shared by every process (the file's ``flock``, or an advisory lock in the database), reads
what other processes appended, checks the rules, appends the accepted check-ins at once
(one write and ``fsync``, or one transaction) and only then resolves the futures. A
check-in is acknowledged only when it is durable, and under load one ``fsync`` (≈2–3 ms
here) or one commit covers every check-in that arrived meanwhile (``bench/bench_usage.py``:
over 1,000 a second on one worker).

This module is plain Python (no web framework): the routes and the CLI call it.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from collections import deque
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from yizhan.errors import InvalidInputError, RateLimitedError, StorageUnavailableError
from yizhan.stations.checkin_files import CheckinFiles, aggregate_file
from yizhan.stations.checkin_log import Checkin, CheckinLog
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.salts import PROCESS_SALTS, DailySalts
from yizhan.stations.usage_files import VisitRows, check_trade

log = logging.getLogger("yizhan")

HOUR = 3600.0
#: How long the last check-ins of each station are kept in memory ("busy now").
RECENT_S = 2 * HOUR


@dataclass
class _Pending:
    checkin: Checkin
    hashes: list[str]
    future: Future[Checkin]


class CheckinStore:
    """Check-ins, the rules against abuse, durable writes by group commit.

    Parameters
    ----------
    directory : Path, optional
        The usage directory (check-ins in its day files); ``None`` keeps check-ins in
        memory only, unless *log* is given.
    salts : DailySalts, optional
        Salts of the client hashes (default: this process's).
    timezone : str
        Days (files, aggregation) are local days in this zone.
    interval_s : float
        One check-in per client and station in this many seconds.
    rate_per_hour : int
        Check-ins one client may make in any hour.
    clock : callable
        The current time (aware).
    log : CheckinLog, optional
        Where check-ins are kept instead of *directory* (the database's table).

    Raises
    ------
    InvalidInputError
        A parameter out of range.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        salts: DailySalts | None = None,
        timezone: str = "Asia/Shanghai",
        interval_s: float = 4 * HOUR,
        rate_per_hour: int = 12,
        clock: Clock = utc_now,
        log: CheckinLog | None = None,
    ) -> None:
        if not interval_s > 0:
            raise InvalidInputError("interval_s", f"Expected a positive number, got {interval_s!r}")
        if (
            isinstance(rate_per_hour, bool)
            or not isinstance(rate_per_hour, int)
            or rate_per_hour < 1
        ):
            raise InvalidInputError(
                "rate_per_hour", f"Expected a whole number >= 1, got {rate_per_hour!r}"
            )
        self.directory = directory
        self.salts = salts if salts is not None else PROCESS_SALTS
        self.zone = ZoneInfo(timezone)
        self.interval_s = float(interval_s)
        self.rate_per_hour = rate_per_hour
        self.clock = clock
        self.log: CheckinLog | None = (
            log
            if log is not None
            else CheckinFiles(directory, self.zone)
            if directory is not None
            else None
        )
        #: Guards the indexes below (the writer thread and readers).
        self._lock = threading.Lock()
        #: (client hash, station) -> time of the last check-in.
        self._last: dict[tuple[str, str], float] = {}
        #: client hash -> times of its check-ins in the last hour, oldest first.
        self._client_times: dict[str, deque[float]] = {}
        #: station -> times of its check-ins in the last RECENT_S seconds, oldest first.
        self._station_times: dict[str, deque[float]] = {}
        self._newest = 0.0
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closed = False
        self._compacted_through: date | None = None
        self._compacting = False
        #: Ids: a random prefix per store (process) and a counter (no system call each).
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count(secrets.randbelow(1 << 32))
        if self.log is not None:
            today = self._day(self.clock())
            self._index_all(self.log.read_new([today - timedelta(days=1), today]))
            self.compact()

    @property
    def where(self) -> str:
        """Where check-ins are kept, for messages."""
        return self.log.where if self.log is not None else "memory"

    def _day(self, when: datetime) -> date:
        return when.astimezone(self.zone).date()

    def _index_all(self, rows: list[Checkin]) -> None:
        with self._lock:
            for c in rows:
                self._index(c)

    def refresh(self) -> None:
        """Read the check-ins other processes appended today (kept as they were when the
        storage cannot be reached: reads answer from memory)."""
        if self.log is None:
            return
        try:
            self._index_all(self.log.read_new([self._day(self.clock())]))
        except StorageUnavailableError as exc:
            log.warning("check-ins of other processes not read: %s", exc)

    # -- the rules -----------------------------------------------------------------------------
    def _index(self, c: Checkin) -> None:
        """Remember an accepted check-in for the rules and "busy now" (lock held)."""
        t = c.at.timestamp()
        key = (c.client, c.station_id)
        if self._last.get(key, -1.0) < t:
            self._last[key] = t
        self._client_times.setdefault(c.client, deque()).append(t)
        self._station_times.setdefault(c.station_id, deque()).append(t)
        if t > self._newest:
            self._newest = t
            if len(self._last) > 4096 and secrets.randbelow(64) == 0:
                self._prune(t)

    def _prune(self, now: float) -> None:
        for pair in [k for k, t in self._last.items() if t <= now - self.interval_s]:
            del self._last[pair]
        for table, span in ((self._client_times, HOUR), (self._station_times, RECENT_S)):
            for key in list(table):
                q = table[key]
                while q and q[0] <= now - span:
                    q.popleft()
                if not q:
                    del table[key]

    def _check(self, p: _Pending) -> None:
        """Raise :class:`RateLimitedError` if *p* breaks a rule (lock held)."""
        c = p.checkin
        t = c.at.timestamp()
        last = max((self._last.get((h, c.station_id), -1.0) for h in p.hashes), default=-1.0)
        if last >= 0 and t - last < self.interval_s:
            wait = int(np.ceil(last + self.interval_s - t))
            raise RateLimitedError(
                f"Already checked in at {c.station_id!r} "
                f"{int((t - last) // 60)} min ago: one check-in per station every "
                f"{self.interval_s / HOUR:g} hours; try again in {wait} s",
                wait,
            )
        times = sorted(x for h in p.hashes for x in self._client_times.get(h, ()) if x > t - HOUR)
        if len(times) >= self.rate_per_hour:
            wait = int(np.ceil(times[len(times) - self.rate_per_hour] + HOUR - t))
            raise RateLimitedError(
                f"Too many check-ins: at most {self.rate_per_hour} an hour from one client; "
                f"try again in {wait} s",
                max(wait, 1),
            )

    # -- writing -------------------------------------------------------------------------------
    def submit(
        self,
        station_id: str,
        *,
        client: str,
        stop_id: str | None = None,
        trade: str | None = None,
        located: bool = False,
        now: datetime | None = None,
    ) -> Future[Checkin]:
        """Queue a check-in; the future resolves once it is on disk (or raises).

        The future raises :class:`RateLimitedError` (a rule is broken) or
        :class:`StorageUnavailableError` (the file cannot be written).

        Raises
        ------
        InvalidInputError
            Naming ``station_id``, ``trade``, ``client`` or ``now`` (at once).
        """
        if not isinstance(station_id, str) or not station_id:
            raise InvalidInputError("station_id", f"Expected a station id, got {station_id!r}")
        trade = check_trade(trade)
        if not isinstance(client, str) or not client:
            raise InvalidInputError("client", f"Expected a client address, got {client!r}")
        when = now or self.clock()
        if when.tzinfo is None:
            raise InvalidInputError("now", f"Expected a time with a UTC offset, got {when!r}")
        when = when.astimezone(UTC).replace(microsecond=0)
        hashes = self.salts.hashes(client, "checkins", when, timedelta(seconds=self.interval_s))
        checkin = Checkin(
            id=f"chk_{self._id_prefix}{next(self._ids) & 0xFFFFFFFF:08x}",
            station_id=station_id,
            stop_id=stop_id,
            trade=trade,
            at=when,
            client=hashes[0],
            located=bool(located),
        )
        pending = _Pending(checkin, hashes, Future())
        if self.log is None:
            with self._lock:
                self._accept(pending)
            return pending.future
        with self._cond:
            if self._closed:
                raise StorageUnavailableError("the check-in store is closed")
            self._pending.append(pending)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="yizhan-checkins", daemon=True
                )
                self._writer.start()
            self._cond.notify()
        return pending.future

    def add(self, station_id: str, **kwargs: Any) -> Checkin:
        """:meth:`submit` and wait until the check-in is on disk; raises what it raises."""
        return self.submit(station_id, **kwargs).result()

    def _accept(self, p: _Pending) -> None:
        """Check and, in memory, accept (lock held)."""
        try:
            self._check(p)
        except RateLimitedError as exc:
            p.future.set_exception(exc)
            return
        self._index(p.checkin)
        p.future.set_result(p.checkin)

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            try:
                self._write_batch(batch)
            except Exception as exc:  # never leave a caller waiting
                log.exception("writing check-ins failed")
                err = StorageUnavailableError(f"the check-in was not saved: {exc}")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(err)

    def _write_batch(self, batch: list[_Pending]) -> None:
        by_day: dict[date, list[_Pending]] = {}
        for p in batch:
            by_day.setdefault(self._day(p.checkin.at), []).append(p)
        for day, items in sorted(by_day.items()):
            self._write_day(day, items)
        due = self._day(self.clock()) - timedelta(days=2)
        if not self._compacting and (
            self._compacted_through is None or self._compacted_through < due
        ):
            self._compacting = True
            threading.Thread(
                target=self._compact_quietly, name="yizhan-compact", daemon=True
            ).start()

    def _compact_quietly(self) -> None:
        try:
            self.compact()
        except Exception:  # tried again after the next write
            log.exception("aggregating old check-ins in %s failed", self.where)
        finally:
            self._compacting = False

    def _write_day(self, day: date, items: list[_Pending]) -> None:
        """Check and store one day's check-ins of a batch under the log's lock."""
        assert self.log is not None
        accepted: list[_Pending] = []

        def decide(others: list[Checkin]) -> list[Checkin]:
            with self._lock:
                for c in others:  # other processes' check-ins count first
                    self._index(c)
                for p in items:
                    try:
                        self._check(p)
                    except RateLimitedError as exc:
                        p.future.set_exception(exc)
                        continue
                    self._index(p.checkin)  # later items of this batch see it
                    accepted.append(p)
            return [p.checkin for p in accepted]

        try:
            self.log.append(day, decide)
        except BaseException:
            with self._lock:
                self._forget(accepted)
            raise
        for p in accepted:
            p.future.set_result(p.checkin)

    def _forget(self, items: list[_Pending]) -> None:
        """Undo the in-memory acceptance of check-ins that were not written (lock held)."""
        for p in items:
            c = p.checkin
            t = c.at.timestamp()
            for table, key in ((self._client_times, c.client), (self._station_times, c.station_id)):
                q = table.get(key)
                if q is not None and t in q:
                    q.remove(t)
            if self._last.get((c.client, c.station_id)) == t:
                del self._last[(c.client, c.station_id)]

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            writer = self._writer
        if writer is not None:
            writer.join(timeout=30)

    # -- reading -------------------------------------------------------------------------------
    def recent_count(self, station_id: str, since: datetime) -> int:
        """Check-ins at *station_id* from *since* (at most two hours back) until now."""
        self.refresh()
        t = since.timestamp()
        with self._lock:
            return sum(1 for x in self._station_times.get(station_id, ()) if x >= t)

    def day_rows(self, day: date, stations: Collection[str] | None = None) -> VisitRows:
        """The check-ins of one local day, aggregated (of these stations and buses only, if
        given: the rows may hold others; memory: none)."""
        if self.log is None:
            return VisitRows.empty()
        return self.log.day_rows(day, stations)

    def open_days(self) -> list[date]:
        """Days whose check-ins are still kept one by one (not yet aggregated)."""
        return [] if self.log is None else self.log.open_days()

    def compact(self) -> list[date]:
        """Aggregate the check-ins of days before yesterday into the visit rows and delete
        them (:meth:`CheckinLog.compact`: safe in several processes, a day added once)."""
        if self.log is None:
            return []
        today = self._day(self.clock())
        done = self.log.compact(today - timedelta(days=1))
        self._compacted_through = today - timedelta(days=2)
        return done


__all__ = ["Checkin", "CheckinLog", "CheckinStore", "aggregate_file"]
