"""Check-ins: a worker's anonymous "I'm here" tap at a station or a cooling bus.

A check-in says which station (and, for a bus, at which stop it stood), when, optionally
the worker's trade (:data:`~yizhan.stations.usage_files.TRADES`) and whether a position was
given (the position itself is checked by the caller and never stored). The client is kept
only as a hash under the day's salt (:mod:`yizhan.stations.salts`), for the rules:

* one check-in per client and station in ``interval_s`` (4 hours): a repeated tap gets
  :class:`~yizhan.errors.RateLimitedError` with the seconds to wait;
* at most ``rate_per_hour`` check-ins per client over all stations.

**Files.** Each local day's check-ins are appended to ``checkins-YYYY-MM-DD.jsonl`` in the
usage directory (``<registry>.usage/``, mode 0600)::

    {"id": "chk_…", "s": "zz-01", "p": null, "t": "courier", "at": 1784102400, "c": "<sha256>", "l": true}

Once a day is over (from the day after next), its file is aggregated into the month's
columns (:func:`~yizhan.stations.usage_files.add_days`: counts per unit, hour and trade, no
hashes) and deleted: client hashes live for two days at most, aggregates for good.

**Durability: group commit.** :meth:`CheckinStore.submit` queues a check-in and returns a
future; one writer thread takes everything queued, checks the rules under the file's
``flock`` (after reading what other processes appended, so the rules hold across
processes), appends the accepted lines in one write, ``fsync``\\ s once and only then
resolves the futures. A check-in is acknowledged only when it is on disk, and under load
one ``fsync`` (≈2–3 ms here) covers every check-in that arrived meanwhile
(``bench/bench_usage.py``: over 1,000 a second on one worker).

This module is plain Python (no web framework): the routes and the CLI call it.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import secrets
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from yizhan.errors import InvalidInputError, RateLimitedError, StorageUnavailableError
from yizhan.stations.clock import Clock, iso, utc_now
from yizhan.stations.jsonio import fsync_dir
from yizhan.stations.salts import PROCESS_SALTS, DailySalts
from yizhan.stations.usage_files import (
    SOURCE_CHECKINS,
    TRADES,
    VisitRows,
    add_days,
    check_trade,
    unit_key,
)

log = logging.getLogger("yizhan")

HOUR = 3600.0
#: How long the last check-ins of each station are kept in memory ("busy now").
RECENT_S = 2 * HOUR
_DAY_FILE = re.compile(r"^checkins-(\d{4}-\d{2}-\d{2})\.jsonl$")
_TRADE_INDEX = {t: i for i, t in enumerate(TRADES)}


@dataclass(frozen=True)
class Checkin:
    """One accepted check-in.

    Attributes
    ----------
    id : str
        ``chk_`` + 16 hex digits.
    station_id : str
    stop_id : str or None
        The bus stop where the bus stood (buses only).
    trade : str or None
    at : datetime
        Aware, UTC, whole seconds.
    client : str
        The client's hash under the day's salt.
    located : bool
        Whether the worker's position was given (and found close enough).
    """

    id: str
    station_id: str
    stop_id: str | None
    trade: str | None
    at: datetime
    client: str
    located: bool

    def as_dict(self) -> dict[str, Any]:
        """What the API answers (without the client hash)."""
        return {
            "id": self.id,
            "station_id": self.station_id,
            "stop_id": self.stop_id,
            "trade": self.trade,
            "at": iso(self.at),
            "located": self.located,
        }

    def line(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "s": self.station_id,
                "p": self.stop_id,
                "t": self.trade,
                "at": int(self.at.timestamp()),
                "c": self.client,
                "l": self.located,
            }
        )

    @classmethod
    def from_line(cls, d: Any) -> Checkin:
        if not isinstance(d, dict):
            raise TypeError(f"Expected an object, got {d!r:.80}")
        for key in ("id", "s", "c"):
            if not isinstance(d.get(key), str):
                raise TypeError(f"{key}: Expected a string, got {d.get(key)!r}")
        stop = d.get("p")
        return cls(
            id=d["id"],
            station_id=d["s"],
            stop_id=stop if isinstance(stop, str) else None,
            trade=check_trade(d.get("t")),
            at=datetime.fromtimestamp(int(d["at"]), UTC),
            client=d["c"],
            located=bool(d.get("l")),
        )


@dataclass
class _Pending:
    checkin: Checkin
    hashes: list[str]
    future: Future[Checkin]


@dataclass
class _DayFile:
    offset: int = 0
    ino: int | None = None
    ends_with_newline: bool = True


class CheckinStore:
    """Check-ins, the rules against abuse, durable writes by group commit.

    Parameters
    ----------
    directory : Path, optional
        The usage directory; ``None`` keeps check-ins in memory only.
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
        #: Guards the indexes below (the writer thread and readers).
        self._lock = threading.Lock()
        #: (client hash, station) -> time of the last check-in.
        self._last: dict[tuple[str, str], float] = {}
        #: client hash -> times of its check-ins in the last hour, oldest first.
        self._client_times: dict[str, deque[float]] = {}
        #: station -> times of its check-ins in the last RECENT_S seconds, oldest first.
        self._station_times: dict[str, deque[float]] = {}
        self._newest = 0.0
        self._files: dict[date, _DayFile] = {}
        self._io_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closed = False
        self._compacted_through: date | None = None
        self._compacting = False
        #: Ids: a random prefix per store (process) and a counter (no system call each).
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count(secrets.randbelow(1 << 32))
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            today = self._day(self.clock())
            with self._io_lock:
                for day in (today - timedelta(days=1), today):
                    self._read_day(day)
            self.compact()

    # -- days and files ------------------------------------------------------------------------
    def _day(self, when: datetime) -> date:
        return when.astimezone(self.zone).date()

    def day_path(self, day: date) -> Path:
        """The file of one day's check-ins."""
        assert self.directory is not None
        return self.directory / f"checkins-{day.isoformat()}.jsonl"

    def _read_new(self, fd: int, day: date, state: _DayFile, final: bool) -> None:
        """Index what was appended to a day's file since it was last read (I/O lock held)."""
        st = os.fstat(fd)
        if state.ino is not None and (st.st_ino != state.ino or st.st_size < state.offset):
            log.warning("%s was replaced or truncated; reading it again", self.day_path(day))
            state.offset = 0
        state.ino = st.st_ino
        if st.st_size <= state.offset:
            return
        data = os.pread(fd, st.st_size - state.offset, state.offset)
        consumed = 0
        rows: list[Checkin] = []
        while consumed < len(data):
            end = data.find(b"\n", consumed)
            if end < 0:
                if final:
                    consumed = len(data)  # a torn last line: skipped
                break
            line = data[consumed:end].strip()
            consumed = end + 1
            if line:
                try:
                    rows.append(Checkin.from_line(orjson.loads(line)))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    log.warning("%s: skipping an unreadable line: %s", self.day_path(day), exc)
        state.offset += consumed
        state.ends_with_newline = data.endswith(b"\n")
        with self._lock:
            for c in rows:
                self._index(c)

    def _read_day(self, day: date) -> None:
        path = self.day_path(day)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            self._read_new(fd, day, self._files.setdefault(day, _DayFile()), final=False)
        finally:
            os.close(fd)

    def refresh(self) -> None:
        """Read the check-ins other processes appended to today's file."""
        if self.directory is None:
            return
        with self._io_lock:
            self._read_day(self._day(self.clock()))

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
        if self.directory is None:
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
        with self._io_lock:
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
            log.exception("aggregating old check-in files in %s failed", self.directory)
        finally:
            self._compacting = False

    def _write_day(self, day: date, items: list[_Pending]) -> None:
        path = self.day_path(day)
        state = self._files.setdefault(day, _DayFile())
        created = not path.exists()
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageUnavailableError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._read_new(fd, day, state, final=False)  # other processes' check-ins
            accepted: list[_Pending] = []
            with self._lock:
                for p in items:
                    try:
                        self._check(p)
                    except RateLimitedError as exc:
                        p.future.set_exception(exc)
                        continue
                    self._index(p.checkin)  # later items of this batch see it
                    accepted.append(p)
            if not accepted:
                return
            data = b"".join(p.checkin.line() + b"\n" for p in accepted)
            if not state.ends_with_newline:
                data = b"\n" + data
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                if created:
                    fsync_dir(path.parent)
            except OSError as exc:
                with self._lock:
                    self._forget(accepted)
                raise StorageUnavailableError(
                    f"the check-in was not saved: cannot write {path} ({exc.strerror})"
                ) from exc
            state.offset = os.fstat(fd).st_size
            state.ends_with_newline = True
        finally:
            os.close(fd)
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

    def day_rows(self, day: date) -> VisitRows:
        """The check-ins of one local day, aggregated (from its file; memory: none)."""
        if self.directory is None:
            return VisitRows.empty()
        return aggregate_file(self.day_path(day), self.zone)

    def open_days(self) -> list[date]:
        """Days whose check-ins are still in their own files (not yet aggregated)."""
        if self.directory is None or not self.directory.is_dir():
            return []
        out = []
        for p in self.directory.iterdir():
            m = _DAY_FILE.match(p.name)
            if m:
                out.append(date.fromisoformat(m.group(1)))
        return sorted(out)

    def compact(self) -> list[date]:
        """Aggregate the files of days before yesterday into their months and delete them.

        Safe to run in several processes (a lock file) and after a crash (a month file
        records the days it holds; a day already there is not added again).
        """
        if self.directory is None:
            return []
        today = self._day(self.clock())
        done: list[date] = []
        lock = os.open(self.directory / ".compact.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for day in self.open_days():
                if day >= today - timedelta(days=1):
                    continue
                rows = self.day_rows(day)
                add_days(self.directory, rows, [day.toordinal()])
                self.day_path(day).unlink(missing_ok=True)
                fsync_dir(self.directory)
                with self._io_lock:
                    self._files.pop(day, None)
                done.append(day)
        finally:
            os.close(lock)
        self._compacted_through = today - timedelta(days=2)
        return done


def aggregate_file(path: Path, zone: ZoneInfo) -> VisitRows:
    """The check-ins of a day file as visit rows: counts per unit, local hour and trade."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return VisitRows.empty()
    counts: dict[tuple[int, str, int, int], int] = {}
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            c = Checkin.from_line(orjson.loads(raw))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a torn line
        local = c.at.astimezone(zone)
        key = (
            local.date().toordinal(),
            unit_key(c.station_id, c.stop_id),
            local.hour,
            _TRADE_INDEX.get(c.trade, -1) if c.trade else -1,
        )
        counts[key] = counts.get(key, 0) + 1
    return VisitRows.from_records(
        (d, u, h, t, SOURCE_CHECKINS, n) for (d, u, h, t), n in sorted(counts.items())
    )


__all__ = ["Checkin", "CheckinStore", "aggregate_file"]
