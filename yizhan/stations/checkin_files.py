"""Check-ins in day files: the files backend's :class:`~yizhan.stations.checkin_log.CheckinLog`.

Each local day's check-ins are appended to ``checkins-YYYY-MM-DD.jsonl`` in the usage
directory (``<registry>.usage/``, mode 0600)::

    {"id": "chk_…", "s": "zz-01", "p": null, "t": "courier", "at": 1784102400, "c": "<sha256>", "l": true}

An append holds the file's ``flock``, reads what other processes appended, writes the
accepted lines in one write and ``fsync``\\ s once. Once a day is over (from the day after
next), its file is aggregated into the month's columns
(:func:`~yizhan.stations.usage_files.add_days`: counts per unit, hour and trade, no hashes)
and deleted: client hashes live for two days at most, aggregates for good.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from yizhan.errors import StorageUnavailableError
from yizhan.stations.checkin_log import Checkin, Decide, aggregate
from yizhan.stations.jsonio import fsync_dir, write_durably
from yizhan.stations.usage_files import MonthFiles, VisitRows

log = logging.getLogger("yizhan")

_DAY_FILE = re.compile(r"^checkins-(\d{4}-\d{2}-\d{2})\.jsonl$")


@dataclass
class _DayFile:
    offset: int = 0
    ino: int | None = None
    ends_with_newline: bool = True


class CheckinFiles:
    """Check-ins in the day files of a usage directory (made at the first check-in).

    Parameters
    ----------
    directory : Path
    zone : ZoneInfo
        Days are local days in this zone.
    """

    def __init__(self, directory: Path, zone: ZoneInfo) -> None:
        self.directory = directory
        self.zone = zone
        self.months = MonthFiles(directory)
        self._files: dict[date, _DayFile] = {}
        self._io_lock = threading.Lock()

    @property
    def where(self) -> str:
        return str(self.directory)

    def day_path(self, day: date) -> Path:
        """The file of one day's check-ins."""
        return self.directory / f"checkins-{day.isoformat()}.jsonl"

    def _read_new(self, fd: int, day: date, state: _DayFile) -> list[Checkin]:
        """What was appended to a day's file since it was last read (I/O lock held)."""
        st = os.fstat(fd)
        if state.ino is not None and (st.st_ino != state.ino or st.st_size < state.offset):
            log.warning("%s was replaced or truncated; reading it again", self.day_path(day))
            state.offset = 0
        state.ino = st.st_ino
        if st.st_size <= state.offset:
            return []
        data = os.pread(fd, st.st_size - state.offset, state.offset)
        consumed = 0
        rows: list[Checkin] = []
        while consumed < len(data):
            end = data.find(b"\n", consumed)
            if end < 0:
                break  # a line being written (or torn): read again next time
            line = data[consumed:end].strip()
            consumed = end + 1
            if line:
                try:
                    rows.append(Checkin.from_line(orjson.loads(line)))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    log.warning("%s: skipping an unreadable line: %s", self.day_path(day), exc)
        state.offset += consumed
        state.ends_with_newline = data.endswith(b"\n")
        return rows

    def read_new(self, days: Sequence[date]) -> list[Checkin]:
        out: list[Checkin] = []
        with self._io_lock:
            for day in days:
                try:
                    fd = os.open(self.day_path(day), os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    out += self._read_new(fd, day, self._files.setdefault(day, _DayFile()))
                finally:
                    os.close(fd)
        return out

    def append(self, day: date, decide: Decide) -> None:
        path = self.day_path(day)
        with self._io_lock:
            state = self._files.setdefault(day, _DayFile())
            created = not path.exists()
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StorageUnavailableError(f"cannot open {path}: {exc.strerror}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                accepted = decide(self._read_new(fd, day, state))  # other processes' first
                if not accepted:
                    return
                data = b"".join(c.line() + b"\n" for c in accepted)
                if not state.ends_with_newline:
                    data = b"\n" + data
                try:
                    write_durably(fd, data)
                    if created:
                        fsync_dir(path.parent)
                except OSError as exc:
                    raise StorageUnavailableError(
                        f"the check-in was not saved: cannot write {path} ({exc.strerror})"
                    ) from exc
                state.offset = os.fstat(fd).st_size
                state.ends_with_newline = True
            finally:
                os.close(fd)

    def day_rows(self, day: date, stations: Collection[str] | None = None) -> VisitRows:
        return aggregate_file(self.day_path(day), self.zone)  # the whole file is read anyway

    def open_days(self) -> list[date]:
        if not self.directory.is_dir():
            return []
        out = []
        for p in self.directory.iterdir():
            m = _DAY_FILE.match(p.name)
            if m:
                out.append(date.fromisoformat(m.group(1)))
        return sorted(out)

    def compact(self, before: date) -> list[date]:
        """Aggregate the files of days before *before* into their months and delete them.

        Safe to run in several processes (a lock file) and after a crash (a month file
        records the days it holds; a day already there is not added again).
        """
        if not self.directory.is_dir():
            return []
        done: list[date] = []
        lock = os.open(self.directory / ".compact.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for day in self.open_days():
                if day >= before:
                    continue
                self.months.add_days(self.day_rows(day), [day.toordinal()])
                self.day_path(day).unlink(missing_ok=True)
                fsync_dir(self.directory)
                with self._io_lock:
                    self._files.pop(day, None)
                done.append(day)
        finally:
            os.close(lock)
        return done


def aggregate_file(path: Path, zone: ZoneInfo) -> VisitRows:
    """The check-ins of a day file as visit rows: counts per unit, local hour and trade."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return VisitRows.empty()
    rows: list[Checkin] = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rows.append(Checkin.from_line(orjson.loads(raw)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a torn line
    return aggregate(rows, zone)


__all__ = ["CheckinFiles", "aggregate_file"]
