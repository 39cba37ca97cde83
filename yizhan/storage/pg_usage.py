"""Usage in PostgreSQL: check-ins, visit rows, managers' visit counts and the daily salts.

The services of ``stations/`` keep their rules (:class:`~yizhan.stations.checkins.CheckinStore`:
one check-in per client and station in 4 hours, N an hour; group commit;
:class:`~yizhan.stations.visits.VisitCountStore`); here are the sources they use, in the
tables of migration ``0002_usage.sql``:

- :class:`PgCheckinLog` (``checkins``): a batch of the writer thread is one transaction
  holding an advisory lock: the check-ins other replicas committed since this one last
  read are read first, the rules decide on them, the accepted ones are inserted (one
  statement) and committed before any future resolves. The lock serialises the inserts,
  so ``seq`` is commit order and each process reads the others' rows with ``seq >`` its
  cursor. A finished day is aggregated in SQL (``GROUP BY`` day, unit, hour, trade) into
  ``visit_rows``, recorded in ``visit_days`` and its check-ins deleted, in one transaction
  under another advisory lock: several replicas may compact at once, a day is added once.
- :class:`PgVisitMonths` (``visit_rows``, ``visit_days``): what the files' month ``.npz``
  hold, also written by the synthetic generator (``COPY``). Whole-network reads take each
  month's rows packed as columns from ``visit_months`` (migration ``0004``), written by the
  first such read of the month and deleted by any change to its rows, in the writer's
  transaction; per-station reads use ``visit_rows``.
- :class:`PgVisitLog` (``visit_counts``): the count entries in the audit format; an append
  holds an advisory lock while the last counts are read.
- :class:`PgSalts` (``salts``): the salts every replica hashes clients under (see
  docs/database.md for why they are in the database, and how to keep them out of backups).

No NOTIFY: every read of these is a query on an indexed column (a cursor, a day range), and
usage answers are read from the database anyway.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from yizhan.stations.checkin_log import Checkin, Decide
from yizhan.stations.usage_files import (
    SOURCE_CHECKINS,
    TRADES,
    MonthFile,
    VisitRows,
)
from yizhan.storage.pg_stations import dumps
from yizhan.storage.postgres import Conn, Database

#: Advisory lock keys of usage (apart from pg_state.LOCKS).
USAGE_LOCKS: dict[str, int] = {
    "checkins": 0x595A_0101,
    "visit_days": 0x595A_0102,
    "visit_counts": 0x595A_0103,
}
#: A replica reads the check-ins others made at most this often outside its writes (s):
#: "busy now" of a page's results costs one query, not one each.
REFRESH_S = 0.5
#: Network-wide periods of visit rows a process keeps (see :class:`PgVisitMonths`).
CACHED_PERIODS = 2
#: ``date.toordinal()`` in SQL.
_ORDINAL = "(day - DATE '0001-01-01') + 1"
#: The unit key (:func:`~yizhan.stations.usage_files.unit_key`) in SQL.
_UNIT = "station_id || coalesce(E'\\t' || stop_id, '')"


def _records(rows: Iterable[tuple[Any, ...]]) -> VisitRows:
    return VisitRows.from_records(
        (int(d), str(u), int(h), int(t), int(s), int(n)) for d, u, h, t, s, n in rows
    )


class PgCheckinLog:
    """A :class:`~yizhan.stations.checkin_log.CheckinLog` in the ``checkins`` table.

    Parameters
    ----------
    db : Database
    zone : ZoneInfo
        Days and hours are local in this zone (stored with each check-in).
    """

    def __init__(self, db: Database, zone: ZoneInfo) -> None:
        self.db = db
        self.zone = zone
        self.where = f"the check-ins in {db.where}"
        self._seq = 0
        self._looked = -math.inf
        #: Held while the cursor moves (a read, or an append): no row is indexed twice.
        self._cursor = threading.Lock()

    def _read(self, conn: Conn, since_day: date) -> list[Checkin]:
        rows = conn.execute(
            "SELECT seq, id, station_id, stop_id, trade, at, client, located FROM checkins "
            "WHERE seq > %s AND day >= %s ORDER BY seq",
            (self._seq, since_day),
        ).fetchall()
        if rows:
            self._seq = int(rows[-1][0])
        return [
            Checkin(
                id=str(i),
                station_id=str(s),
                stop_id=None if p is None else str(p),
                trade=TRADES[t] if 0 <= t < len(TRADES) else None,
                at=at.astimezone(UTC),
                client=str(c),
                located=bool(loc),
            )
            for _, i, s, p, t, at, c, loc in rows
        ]

    def read_new(self, days: Sequence[date]) -> list[Checkin]:
        if not days:
            return []
        with self._cursor:
            now = time.monotonic()
            if now - self._looked < REFRESH_S:
                return []  # looked a moment ago (each result of a page asks)
            with self.db.connection(self.where) as conn:
                found = self._read(conn, min(days))
            self._looked = now
            return found

    def append(self, day: date, decide: Decide) -> None:
        with self._cursor:
            with self.db.connection(self.where) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (USAGE_LOCKS["checkins"],))
                accepted = decide(self._read(conn, day - timedelta(days=1)))
                if not accepted:
                    return
                local = [c.at.astimezone(self.zone) for c in accepted]
                row = conn.execute(
                    "WITH ins AS (INSERT INTO checkins "
                    "(id, station_id, stop_id, trade, at, day, hour, client, located) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::smallint[], "
                    "%s::timestamptz[], %s::date[], %s::smallint[], %s::text[], %s::boolean[]) "
                    "RETURNING seq) SELECT max(seq) FROM ins",
                    (
                        [c.id for c in accepted],
                        [c.station_id for c in accepted],
                        [c.stop_id for c in accepted],
                        [c.trade_index for c in accepted],
                        [c.at for c in accepted],
                        [t.date() for t in local],
                        [t.hour for t in local],
                        [c.client for c in accepted],
                        [c.located for c in accepted],
                    ),
                ).fetchone()
                newest = int(row[0]) if row and row[0] is not None else self._seq
            # Committed: ours come after everything read (the lock serialises inserts).
            self._seq = max(self._seq, newest)

    def day_rows(self, day: date, stations: Collection[str] | None = None) -> VisitRows:
        where = "day = %s"
        params: list[Any] = [day]
        if stations is not None:
            where += " AND station_id = ANY(%s)"
            params.append(list(stations))
        with self.db.connection(self.where) as conn:
            rows = conn.execute(
                f"SELECT {_ORDINAL}, {_UNIT}, hour, trade, {SOURCE_CHECKINS}, count(*) "
                f"FROM checkins WHERE {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
                params,
            ).fetchall()
        return _records(rows)

    def open_days(self) -> list[date]:
        with self.db.connection(self.where) as conn:
            rows = conn.execute(  # the distinct days, one index probe each
                "WITH RECURSIVE d AS (SELECT min(day) AS day FROM checkins UNION ALL "
                "SELECT (SELECT min(day) FROM checkins WHERE day > d.day) FROM d "
                "WHERE d.day IS NOT NULL) SELECT day FROM d WHERE day IS NOT NULL"
            ).fetchall()
        return [r[0] for r in rows]

    def compact(self, before: date) -> list[date]:
        done: list[date] = []
        with self.db.connection(self.where) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (USAGE_LOCKS["visit_days"],))
            days = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT day FROM checkins WHERE day < %s ORDER BY day", (before,)
                ).fetchall()
            ]
            for day in days:
                new = conn.execute(
                    "INSERT INTO visit_days (day) VALUES (%s) ON CONFLICT DO NOTHING RETURNING day",
                    (day,),
                ).fetchone()
                if new is not None:  # a day already held is not added again (as the files)
                    conn.execute(
                        "INSERT INTO visit_rows (day, unit, hour, trade, source, count) "
                        f"SELECT day, {_UNIT}, hour, trade, {SOURCE_CHECKINS}, count(*) "
                        "FROM checkins WHERE day = %s GROUP BY 1, 2, 3, 4",
                        (day,),
                    )
                conn.execute("DELETE FROM checkins WHERE day = %s", (day,))
                done.append(day)
            if done:
                _bump_visits(conn, [d.toordinal() for d in done])
        return done


class PgVisitMonths:
    """:class:`~yizhan.stations.usage_files.VisitMonths` in ``visit_rows`` and ``visit_days``.

    The network's rows of a period (an analysis) are read one month a part from the packed
    columns of ``visit_months`` (:func:`_network_parts`), and kept for the next question on
    the same period until the ``visits`` counter of ``state_versions`` moves (a day added or
    replaced, by any process): the rows of finished days change only then.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = f"the visit rows in {db.where}"
        self._cache: dict[tuple[date, date], tuple[int, list[VisitRows], MonthFile]] = {}
        self._lock = threading.Lock()

    def load_parts(
        self, first: date, last: date, units: Collection[str] | None = None
    ) -> tuple[list[VisitRows], MonthFile]:
        with self.db.connection(self.where) as conn:
            got = conn.execute(
                "SELECT version FROM state_versions WHERE kind = 'visits'"
            ).fetchone()
            version = int(got[0]) if got else 0
            if units is None:
                with self._lock:
                    cached = self._cache.get((first, last))
                if cached is not None and cached[0] == version:
                    return cached[1], cached[2]
            if units is None:
                parts = _network_parts(conn, first, last)
            else:
                parts = [_read_rows(conn, list(units), first, last)]
            held = conn.execute(
                f"SELECT {_ORDINAL}, synthetic::text FROM visit_days WHERE day BETWEEN %s AND %s",
                (first, last),
            ).fetchall()
        synthetic = {str(d): orjson.loads(s) for d, s in held if s is not None}
        meta: dict[str, Any] = {"synthetic": synthetic} if synthetic else {}
        month = MonthFile(VisitRows.empty(), {int(d) for d, _ in held}, meta)
        if units is None:
            with self._lock:
                if len(self._cache) >= CACHED_PERIODS:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[(first, last)] = (version, parts, month)
        return parts, month

    def add_days(
        self,
        rows: VisitRows,
        days: Iterable[int],
        *,
        replace: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> list[int]:
        wanted = sorted(set(days))
        synthetic = (meta or {}).get("synthetic", {})
        with self.db.connection(self.where) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (USAGE_LOCKS["visit_days"],))
            asked = [date.fromordinal(d) for d in wanted]
            if replace:
                conn.execute("DELETE FROM visit_rows WHERE day = ANY(%s)", (asked,))
                conn.execute("DELETE FROM visit_days WHERE day = ANY(%s)", (asked,))
                todo = wanted
            else:
                held = {
                    int(r[0])
                    for r in conn.execute(
                        f"SELECT {_ORDINAL} FROM visit_days WHERE day = ANY(%s)", (asked,)
                    ).fetchall()
                }
                todo = [d for d in wanted if d not in held]
            if not todo:
                return []
            _bump_visits(conn, todo)
            conn.execute(
                "INSERT INTO visit_days (day, synthetic) "
                "SELECT * FROM unnest(%s::date[], %s::jsonb[])",
                (
                    [date.fromordinal(d) for d in todo],
                    [
                        None if synthetic.get(str(d)) is None else dumps(synthetic[str(d)])
                        for d in todo
                    ],
                ),
            )
            new = rows.take(np.isin(rows.day, todo)) if len(rows) else rows
            if len(new):
                units = new.units
                with conn.cursor().copy(
                    "COPY visit_rows (day, unit, hour, trade, source, count) FROM STDIN"
                ) as copy:
                    for d, u, h, t, s, n in zip(
                        new.day.tolist(),
                        new.unit.tolist(),
                        new.hour.tolist(),
                        new.trade.tolist(),
                        new.source.tolist(),
                        new.count.tolist(),
                        strict=True,
                    ):
                        copy.write_row((date.fromordinal(d), units[u], h, t, s, n))
        return todo


def _bump_visits(conn: Conn, days: Iterable[int]) -> None:
    """The visit rows of *days* (ordinals) were added or replaced: cached periods are stale,
    and so are the packed columns of their months (deleted in the writer's transaction)."""
    conn.execute("UPDATE state_versions SET version = version + 1 WHERE kind = 'visits'")
    months = sorted({date.fromordinal(d).replace(day=1) for d in days})
    conn.execute("DELETE FROM visit_months WHERE month = ANY(%s)", (months,))


def _months(first: date, last: date) -> list[tuple[date, date, date]]:
    """Each month touching ``first``–``last``: its first day, and the period's first and
    last day in it."""
    out = []
    month = first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        out.append((month, max(first, month), min(last, following - timedelta(days=1))))
        month = following
    return out


#: The columns of ``visit_months`` and their little-endian dtypes (as in the month ``.npz``).
_PACKED = {"day": "<i4", "unit": "<i4", "hour": "i1", "trade": "i1", "source": "i1", "count": "<i4"}


def _network_parts(conn: Conn, first: date, last: date) -> list[VisitRows]:
    """Every unit's visit rows of ``first``–``last``, one part a month, from the packed
    columns of ``visit_months``; a month not packed yet is read from ``visit_rows``
    (:func:`_read_rows`) and packed for the next reader, of any process.

    Holds the visit days' advisory lock shared: writers (``add_days``, compaction), which
    delete a month's packed columns in their transaction, wait, so a month is never packed
    from rows older than its last change, and the months read agree with each other.
    """
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (USAGE_LOCKS["visit_days"],))
    spans = _months(first, last)
    cols = ", ".join(_PACKED)
    packed: dict[date, VisitRows] = {}
    with conn.cursor(binary=True) as cur:
        cur.execute(
            f"SELECT month, units, {cols} FROM visit_months WHERE month = ANY(%s)",
            ([m for m, _, _ in spans],),
        )
        for month, units, *arrays in cur:
            packed[month] = VisitRows(
                list(units),
                *(
                    np.frombuffer(a, dtype=t)  # read-only, as the files' memory maps
                    for a, t in zip(arrays, _PACKED.values(), strict=True)
                ),
            )
    missing = [m for m, _, _ in spans if m not in packed]
    if missing:  # one read of visit_rows for them all (a scan each would cost as much)
        end = (missing[-1] + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        rows = _read_rows(conn, _all_units(conn), missing[0], end)
        for month in missing:
            following = (month + timedelta(days=32)).replace(day=1)
            packed[month] = got = rows.take(
                (rows.day >= month.toordinal()) & (rows.day < following.toordinal())
            )
            conn.execute(
                f"INSERT INTO visit_months (month, units, {cols}) VALUES (%s, %s"
                + ", %s" * len(_PACKED)
                + ") ON CONFLICT (month) DO NOTHING",
                (
                    month,
                    got.units,
                    *(
                        np.ascontiguousarray(getattr(got, c), dtype=t).tobytes()
                        for c, t in _PACKED.items()
                    ),
                ),
            )
    parts = []
    for month, a, b in spans:
        rows = packed[month]
        if a != month or b.month == (b + timedelta(days=1)).month:  # part of the month
            rows = rows.take((rows.day >= a.toordinal()) & (rows.day <= b.toordinal()))
        parts.append(rows)
    return parts


def _all_units(conn: Conn) -> list[str]:
    """Every unit with visit rows: a loose scan of the ``(unit, day)`` index."""
    rows = conn.execute(
        "WITH RECURSIVE u AS (SELECT min(unit) AS unit FROM visit_rows UNION ALL "
        "SELECT (SELECT min(unit) FROM visit_rows WHERE unit > u.unit) FROM u "
        "WHERE u.unit IS NOT NULL) SELECT unit FROM u WHERE unit IS NOT NULL"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _read_rows(conn: Conn, units: list[str], first: date, last: date) -> VisitRows:
    """The visit rows of *units* over ``first``–``last``, as columns.

    Each column comes as one ``bytea``: the server concatenates its values' binary form
    (``string_agg`` of ``int4send`` …, all in one aggregation, so every column has the rows
    in the same order; units as their position in *units*), parsed by numpy. Hand-written
    because fetching a row of Python objects per visit row is ~50× slower, and even a
    binary ``COPY`` hands Python one message per row: a year of a large network is tens of
    millions of rows.
    """
    if not units:
        return VisitRows.empty()
    cols = [
        ("(v.day - DATE '0001-01-01') + 1", "int4", ">i4", np.int32),
        ("(u.i - 1)::int4", "int4", ">i4", np.int32),
        ("v.hour", "int2", ">i2", np.int8),
        ("v.trade", "int2", ">i2", np.int8),
        ("v.source", "int2", ">i2", np.int8),
        ("v.count", "int4", ">i4", np.int32),
    ]
    aggs = ", ".join(f"string_agg({t}send({e}), ''::bytea)" for e, t, _, _ in cols)
    with conn.cursor(binary=True) as cur:
        got = cur.execute(
            f"SELECT {aggs} FROM visit_rows v "
            "JOIN unnest(%s::text[]) WITH ORDINALITY AS u(unit, i) ON v.unit = u.unit "
            "WHERE v.day BETWEEN %s AND %s",
            (units, first, last),
        ).fetchone()
    if got is None or got[0] is None:
        return VisitRows.empty()
    day, unit, hour, trade, source, count = (
        np.frombuffer(b, dtype=wire).astype(kind)
        for b, (_, _, wire, kind) in zip(got, cols, strict=True)
    )
    return VisitRows(list(units), day, unit, hour, trade, source, count)


class PgVisitLog:
    """A :class:`~yizhan.stations.visits.VisitLog` in the ``visit_counts`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = f"the visit counts in {db.where}"

    def read_since(self, pos: int) -> tuple[list[dict[str, Any]], int]:
        with self.db.connection(self.where) as conn:
            return _read_counts(conn, pos)

    @contextmanager
    def locked(self) -> Iterator[_VisitTx]:
        with self.db.connection(self.where) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (USAGE_LOCKS["visit_counts"],))
            yield _VisitTx(conn)


def _read_counts(conn: Conn, pos: int) -> tuple[list[dict[str, Any]], int]:
    rows = conn.execute(
        "SELECT seq, entry::text FROM visit_counts WHERE seq > %s ORDER BY seq", (pos,)
    ).fetchall()
    return [orjson.loads(text) for _, text in rows], int(rows[-1][0]) if rows else pos


class _VisitTx:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def read_since(self, pos: int) -> tuple[list[dict[str, Any]], int]:
        return _read_counts(self.conn, pos)

    def append(self, entry: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO visit_counts (station_id, at, entry) VALUES (%s, %s, %s::json)",
            (str(entry["id"]), datetime.fromisoformat(str(entry["at"])), dumps(entry)),
        )


class PgSalts:
    """A :class:`~yizhan.stations.salts.SaltSource` in the ``salts`` table: today's salt is
    made by whichever replica needs it first (``ON CONFLICT DO NOTHING``, then read), so
    every replica hashes a client alike."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def salt(self, day: date, today: date, keep_days: int) -> bytes | None:
        with self.db.connection("the salts") as conn:
            conn.execute("DELETE FROM salts WHERE day < %s", (today - timedelta(days=keep_days),))
            if day == today:
                conn.execute(
                    "INSERT INTO salts (day, salt) VALUES (%s, %s) ON CONFLICT (day) DO NOTHING",
                    (day, secrets.token_bytes(16)),
                )
            row = conn.execute("SELECT salt FROM salts WHERE day = %s", (day,)).fetchone()
        return None if row is None else bytes(row[0])


__all__ = [
    "CACHED_PERIODS",
    "REFRESH_S",
    "USAGE_LOCKS",
    "PgCheckinLog",
    "PgSalts",
    "PgVisitLog",
    "PgVisitMonths",
]
