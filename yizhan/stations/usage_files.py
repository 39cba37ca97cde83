"""Visits as columns: the aggregated check-ins of finished days, one file per month.

A *unit* is what visits are counted at: a station (its id) or one stop of a cooling bus
(``"<bus id>\\t<stop id>"``, :func:`unit_key`). A row counts the visits at one unit on one
day, in one hour (``-1``: the hour is not known) by one trade (``-1``: not given), from
one source (check-ins, a manager's count, or the synthetic generator). Rows of one
(day, unit) add up to that day's visits.

The rows of the finished days of a month are kept in ``visits-YYYY-MM.npz`` (numpy's
uncompressed ``.npz``, no pickles) in the usage directory (``<registry>.usage/``)::

    units   str[k]   unit keys; ``unit`` indexes them
    day     int32[n] ``date.toordinal()`` of the local day
    unit    int32[n]
    hour    int8[n]
    trade   int8[n]  index into :data:`TRADES`
    source  int8[n]  index into :data:`SOURCES`
    count   int32[n]
    days    int32[m] the days this file holds (so that a day is never added twice)
    meta    str      JSON: ``{"synthetic": {day: parameters}}`` for generated days

Written atomically (a temporary file, ``fsync``, rename, directory ``fsync``). Columns are
what the analyses want: a year of 100,000 stations' daily counts (36.5 M rows) is read and
summed with ``numpy.bincount`` in seconds (``bench/bench_usage.py``).

:class:`MonthFiles` is the files backend's :class:`VisitMonths`; with PostgreSQL the same
rows are the ``visit_rows`` table (:class:`~yizhan.storage.pg_usage.PgVisitMonths`).

Hand-written on numpy: the columns are few and fixed, and the registry stays plain files
(no database or Arrow dependency for the few arrays a month holds).
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.npzmap import mapped_npz
from yizhan.stations.jsonio import fsync_dir

#: What a check-in may say about the worker's trade (reported only in aggregates).
TRADES: tuple[str, ...] = ("sanitation", "courier", "taxi", "truck_driver", "builder", "other")
#: Where a row's count comes from.
SOURCES: tuple[str, ...] = ("checkins", "count", "synthetic")
SOURCE_CHECKINS, SOURCE_COUNT, SOURCE_SYNTHETIC = 0, 1, 2

_MONTH_FILE = re.compile(r"^visits-(\d{4})-(\d{2})\.npz$")

I32 = NDArray[np.int32]
I8 = NDArray[np.int8]


def unit_key(station_id: str, stop_id: str | None = None) -> str:
    """The key of a station, or of one stop of a cooling bus."""
    return station_id if stop_id is None else f"{station_id}\t{stop_id}"


def split_unit(key: str) -> tuple[str, str | None]:
    """``(station_id, stop_id)`` of a unit key (``stop_id`` ``None`` for a station)."""
    sid, _, stop = key.partition("\t")
    return sid, (stop or None)


def check_trade(value: Any) -> str | None:
    """A trade code (one of :data:`TRADES`) or ``None``; raises naming ``trade``."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in TRADES:
        raise InvalidInputError("trade", f"Expected one of {', '.join(TRADES)}, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class VisitRows:
    """Rows of visit counts, as columns (see the module docstring)."""

    units: list[str]
    day: I32
    unit: I32
    hour: I8
    trade: I8
    source: I8
    count: I32

    def __len__(self) -> int:
        return int(self.day.size)

    @classmethod
    def empty(cls) -> VisitRows:
        return cls([], *_empty_columns())

    @classmethod
    def from_records(cls, records: Iterable[tuple[int, str, int, int, int, int]]) -> VisitRows:
        """Rows from ``(day, unit key, hour, trade, source, count)`` tuples."""
        index: dict[str, int] = {}
        cols: list[list[int]] = [[], [], [], [], [], []]
        for day, key, hour, trade, source, count in records:
            u = index.setdefault(key, len(index))
            for col, v in zip(cols, (day, u, hour, trade, source, count), strict=True):
                col.append(v)
        return cls(
            list(index),
            np.asarray(cols[0], dtype=np.int32),
            np.asarray(cols[1], dtype=np.int32),
            np.asarray(cols[2], dtype=np.int8),
            np.asarray(cols[3], dtype=np.int8),
            np.asarray(cols[4], dtype=np.int8),
            np.asarray(cols[5], dtype=np.int32),
        )

    def take(self, mask: NDArray[np.bool_] | NDArray[np.intp]) -> VisitRows:
        """The rows selected by a boolean mask or positions (same unit table)."""
        return VisitRows(
            self.units,
            self.day[mask],
            self.unit[mask],
            self.hour[mask],
            self.trade[mask],
            self.source[mask],
            self.count[mask],
        )

    def between(self, first: date, last: date) -> VisitRows:
        """The rows of the days ``first`` to ``last`` (both included)."""
        if not len(self):
            return self
        lo, hi = first.toordinal(), last.toordinal()
        if lo <= int(self.day.min()) and int(self.day.max()) <= hi:
            return self
        return self.take((self.day >= lo) & (self.day <= hi))

    def days(self) -> set[int]:
        """Days that have rows."""
        return {int(d) for d in np.unique(self.day)}


def _empty_columns() -> tuple[I32, I32, I8, I8, I8, I32]:
    return (
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros(0, np.int8),
        np.zeros(0, np.int8),
        np.zeros(0, np.int8),
        np.zeros(0, np.int32),
    )


def concat(parts: Sequence[VisitRows]) -> VisitRows:
    """One :class:`VisitRows` of several, their unit tables merged."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return VisitRows.empty()
    if len(parts) == 1:
        return parts[0]
    index: dict[str, int] = {}
    remapped = []
    for p in parts:
        table = np.fromiter(
            (index.setdefault(k, len(index)) for k in p.units), dtype=np.int32, count=len(p.units)
        )
        remapped.append(table[p.unit])
    return VisitRows(
        list(index),
        np.concatenate([p.day for p in parts]),
        np.concatenate(remapped),
        np.concatenate([p.hour for p in parts]),
        np.concatenate([p.trade for p in parts]),
        np.concatenate([p.source for p in parts]),
        np.concatenate([p.count for p in parts]),
    )


# -- month files -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MonthFile:
    """What one month file holds."""

    rows: VisitRows
    days: set[int]
    meta: dict[str, Any]


def month_path(directory: Path, year: int, month: int) -> Path:
    """The file of a month in the usage directory."""
    return directory / f"visits-{year:04d}-{month:02d}.npz"


def month_files(directory: Path) -> list[tuple[int, int, Path]]:
    """``(year, month, path)`` of every month file in *directory*, oldest first."""
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        m = _MONTH_FILE.match(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), p))
    return sorted(out)


def read_month(path: Path) -> MonthFile:
    """Read a month file (empty when it does not exist).

    Raises
    ------
    InvalidInputError
        Naming the file, when it cannot be read.
    """
    if not path.exists():
        return MonthFile(VisitRows.empty(), set(), {})
    try:
        z = mapped_npz(path)
        rows = VisitRows(
            [str(u) for u in z["units"].tolist()],
            z["day"].astype(np.int32, copy=False),
            z["unit"].astype(np.int32, copy=False),
            z["hour"].astype(np.int8, copy=False),
            z["trade"].astype(np.int8, copy=False),
            z["source"].astype(np.int8, copy=False),
            z["count"].astype(np.int32, copy=False),
        )
        days = {int(d) for d in z["days"].tolist()}
        meta = orjson.loads(str(z["meta"][()]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, orjson.JSONDecodeError) as exc:
        raise InvalidInputError(str(path), f"cannot read the visits file: {exc}") from exc
    return MonthFile(rows, days, meta if isinstance(meta, dict) else {})


def write_month(path: Path, month: MonthFile) -> None:
    """Write a month file atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    r = month.rows
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                units=np.array(r.units, dtype=str),
                day=r.day,
                unit=r.unit,
                hour=r.hour,
                trade=r.trade,
                source=r.source,
                count=r.count,
                days=np.asarray(sorted(month.days), dtype=np.int32),
                meta=np.asarray(orjson.dumps(month.meta).decode()),
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def add_days(
    directory: Path,
    rows: VisitRows,
    days: Iterable[int],
    *,
    replace: bool = False,
    meta: dict[str, Any] | None = None,
) -> list[int]:
    """Add the rows of whole *days* to their month files; returns the days added.

    A day a month file already holds is skipped (so that adding is idempotent), unless
    *replace*, which drops its old rows first. *meta* entries (``{"synthetic": {day: …}}``)
    are merged into the month's.
    """
    by_month: dict[tuple[int, int], list[int]] = {}
    for d in sorted(set(days)):
        day = date.fromordinal(d)
        by_month.setdefault((day.year, day.month), []).append(d)
    added: list[int] = []
    for (y, m), ds in sorted(by_month.items()):
        path = month_path(directory, y, m)
        old = read_month(path)
        todo = [d for d in ds if replace or d not in old.days]
        if not todo:
            continue
        keep = old.rows.take(~np.isin(old.rows.day, todo)) if replace else old.rows
        new = rows.take(np.isin(rows.day, todo))
        merged_meta = {
            k: {key: val for key, val in v.items() if not (replace and int(key) in todo)}
            for k, v in old.meta.items()
            if isinstance(v, dict)
        }
        for k, v in (meta or {}).items():
            merged_meta.setdefault(k, {}).update(
                {key: val for key, val in v.items() if int(key) in todo}
            )
        write_month(path, MonthFile(concat([keep, new]), old.days | set(todo), merged_meta))
        added += todo
    return added


def load_month_parts(directory: Path, first: date, last: date) -> tuple[list[VisitRows], MonthFile]:
    """The rows of the days ``first``–``last``, one part per month file (memory-mapped), and
    a :class:`MonthFile` with no rows but the days those files hold and their merged meta."""
    parts: list[VisitRows] = []
    meta: dict[str, Any] = {}
    days: set[int] = set()
    lo, hi = (first.year, first.month), (last.year, last.month)
    for y, m, path in month_files(directory):
        if lo <= (y, m) <= hi:
            f = read_month(path)
            parts.append(f.rows.between(first, last))
            days |= f.days
            for k, v in f.meta.items():
                if isinstance(v, dict):
                    meta.setdefault(k, {}).update(
                        {
                            key: val
                            for key, val in v.items()
                            if first.toordinal() <= int(key) <= last.toordinal()
                        }
                    )
    return parts, MonthFile(VisitRows.empty(), days, meta)


def load_months(directory: Path | VisitMonths, first: date, last: date) -> MonthFile:
    """Rows of the days ``first``–``last`` from the month files (or any
    :class:`VisitMonths`) in one table, the days they hold and their merged meta."""
    months = MonthFiles(directory) if isinstance(directory, Path) else directory
    parts, held = months.load_parts(first, last)
    return MonthFile(concat(parts), held.days, held.meta)


class VisitMonths(Protocol):
    """The visit rows of finished days (aggregated check-ins, synthetic days): the month
    files (:class:`MonthFiles`) or the ``visit_rows`` table
    (:class:`~yizhan.storage.pg_usage.PgVisitMonths`)."""

    @property
    def where(self) -> str:
        """What they are kept in, for messages."""
        ...

    def load_parts(
        self, first: date, last: date, units: Collection[str] | None = None
    ) -> tuple[list[VisitRows], MonthFile]:
        """The rows of the days ``first``–``last`` (of *units* only, if given; a store may
        return more), in parts, and a :class:`MonthFile` with no rows but the days held
        and the merged meta."""
        ...

    def add_days(
        self,
        rows: VisitRows,
        days: Iterable[int],
        *,
        replace: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> list[int]:
        """:func:`add_days`: add the rows of whole days, each day once (unless *replace*)."""
        ...


class MonthFiles:
    """:class:`VisitMonths` in the month files of a usage directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def where(self) -> str:
        return str(self.directory)

    def load_parts(
        self, first: date, last: date, units: Collection[str] | None = None
    ) -> tuple[list[VisitRows], MonthFile]:
        return load_month_parts(self.directory, first, last)  # memory-mapped: all units

    def add_days(
        self,
        rows: VisitRows,
        days: Iterable[int],
        *,
        replace: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> list[int]:
        return add_days(self.directory, rows, days, replace=replace, meta=meta)


__all__ = [
    "SOURCES",
    "SOURCE_CHECKINS",
    "SOURCE_COUNT",
    "SOURCE_SYNTHETIC",
    "TRADES",
    "MonthFile",
    "MonthFiles",
    "VisitMonths",
    "VisitRows",
    "add_days",
    "check_trade",
    "concat",
    "load_month_parts",
    "load_months",
    "month_files",
    "month_path",
    "read_month",
    "split_unit",
    "unit_key",
    "write_month",
]
