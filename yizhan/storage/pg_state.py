"""Tokens, placements, alerts, reports and rate-limit counters in PostgreSQL tables.

The services of ``stations/`` keep their rules and their in-memory view; here are the
sources they read and change (:class:`~yizhan.stations.jsonstate.EntrySource`,
:class:`~yizhan.stations.reports.ReportLog`):

- :class:`PgEntrySource` (``tokens``, ``placements``, ``alerts``): a change runs in one
  transaction holding an advisory lock for its kind, on the rows as they are then; rows are
  deleted, inserted or updated by id, the kind's counter bumped and ``NOTIFY`` sent. Each
  process reads the table again when the counter moved (the listener tells it).
- :class:`PgReportLog`: append-only ``reports``; an append holds the advisory lock while the
  rate limits are checked on the reports read up to then, so two processes cannot both
  let a client past its limit.
- :class:`PgRateLimits`: ``rate_hits`` rows, one per counted event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, LiteralString

import orjson
import psycopg

from yizhan.errors import ConflictError, RateLimitedError
from yizhan.stations.jsonstate import Entries, Held
from yizhan.stations.reports import ReportAppender
from yizhan.storage.pg_stations import dumps
from yizhan.storage.postgres import CHANNEL, Conn, Database

EntryKind = Literal["tokens", "placements", "alerts"]

#: Advisory lock keys (one per kind of state changed under a lock).
LOCKS: dict[str, int] = {
    "tokens": 0x595A_0001,
    "placements": 0x595A_0002,
    "alerts": 0x595A_0003,
    "reports": 0x595A_0004,
}

_LOAD: dict[str, LiteralString] = {
    "tokens": "SELECT (SELECT version FROM state_versions WHERE kind = 'tokens'), "
    "coalesce(json_agg(entry ORDER BY pos), '[]')::text FROM tokens",
    "placements": "SELECT (SELECT version FROM state_versions WHERE kind = 'placements'), "
    "coalesce(json_agg(entry ORDER BY pos), '[]')::text FROM placements",
    "alerts": "SELECT (SELECT version FROM state_versions WHERE kind = 'alerts'), "
    "coalesce(json_agg(entry ORDER BY pos), '[]')::text FROM alerts",
}
_DELETE: dict[str, LiteralString] = {
    "tokens": "DELETE FROM tokens WHERE id = ANY(%s)",
    "placements": "DELETE FROM placements WHERE id = ANY(%s)",
    "alerts": "DELETE FROM alerts WHERE id = ANY(%s)",
}
_UPSERT: dict[str, LiteralString] = {
    "tokens": "INSERT INTO tokens (id, hash, entry) VALUES (%s, %s, %s::json) "
    "ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, entry = excluded.entry",
    "placements": "INSERT INTO placements (id, bus_id, starts, until, entry) "
    "VALUES (%s, %s, %s, %s, %s::json) ON CONFLICT (id) DO UPDATE SET bus_id = excluded.bus_id, "
    "starts = excluded.starts, until = excluded.until, entry = excluded.entry",
    "alerts": "INSERT INTO alerts (id, starts, until, entry) VALUES (%s, %s, %s, %s::json) "
    "ON CONFLICT (id) DO UPDATE SET starts = excluded.starts, until = excluded.until, "
    "entry = excluded.entry",
}


def _id(kind: str, entry: dict[str, Any]) -> str:
    key = {"tokens": "id", "placements": "placement_id", "alerts": "alert_id"}[kind]
    return str(entry[key])


def _row(kind: str, entry: dict[str, Any]) -> tuple[Any, ...]:
    text = dumps(entry)
    if kind == "tokens":
        return (entry["id"], entry["hash"], text)
    start = datetime.fromisoformat(str(entry["from"]))
    until = datetime.fromisoformat(str(entry["until"]))
    if kind == "placements":
        return (entry["placement_id"], entry["bus_id"], start, until, text)
    return (entry["alert_id"], start, until, text)


def bump(conn: Conn, kind: str) -> int:
    """Bump *kind*'s counter and notify every process (at commit); the new version."""
    row = conn.execute(
        "UPDATE state_versions SET version = version + 1 WHERE kind = %s RETURNING version",
        (kind,),
    ).fetchone()
    assert row is not None
    version = int(row[0])
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{kind} {version}"))
    return version


class PgEntrySource:
    """An :class:`~yizhan.stations.jsonstate.EntrySource` in a table (see the module
    docstring).

    Parameters
    ----------
    db : Database
    kind : {"tokens", "placements", "alerts"}
    """

    def __init__(self, db: Database, kind: EntryKind) -> None:
        self.db = db
        self.kind = kind
        self.where = f"the {kind} in {db.where}"
        self._last = -1
        db.on_change(kind, lambda version, conn: None)  # the listener keeps db.known

    def stamp(self) -> Hashable:
        return max(self.db.known.get(self.kind, -1), self._last)

    def _load(self, conn: Conn) -> tuple[Entries, int]:
        row = conn.execute(_LOAD[self.kind]).fetchone()
        assert row is not None
        entries = orjson.loads(row[1])
        version = int(row[0])
        self._last = max(self._last, version)
        return entries, version

    def load(self) -> tuple[Entries, Hashable]:
        with self.db.connection(self.where) as conn:
            return self._load(conn)

    @contextmanager
    def exclusive(self) -> Iterator[Held]:
        with self.db.connection(self.where) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCKS[self.kind],))
            entries, version = self._load(conn)
            before = {_id(self.kind, e): e for e in entries}
            held = Held(entries)
            yield held
            after = {_id(self.kind, e): e for e in held.entries}
            gone = [i for i in before if i not in after]
            changed = [e for i, e in after.items() if before.get(i) != e]
            if not gone and not changed:
                held.stamp = version
                return
            try:
                if gone:
                    conn.execute(_DELETE[self.kind], (gone,))
                for e in changed:
                    conn.execute(_UPSERT[self.kind], _row(self.kind, e))
            except psycopg.errors.ExclusionViolation as exc:
                raise ConflictError(
                    "the bus already has a placement overlapping this window"
                ) from exc
            held.stamp = bump(conn, self.kind)
        self._last = max(self._last, int(str(held.stamp)))


class PgReportLog:
    """A :class:`~yizhan.stations.reports.ReportLog` in the ``reports`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = f"the reports in {db.where}"
        self._seq = 0
        self._seen = -1
        db.on_change("reports", lambda version, conn: None)

    def changed(self) -> bool:
        return self.db.known.get("reports", -1) > self._seen

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        with self.db.connection(self.where) as conn:
            return self._read(conn)

    def _read(self, conn: Conn) -> tuple[bool, list[dict[str, Any]]]:
        row = conn.execute("SELECT version FROM state_versions WHERE kind = 'reports'").fetchone()
        version = int(row[0]) if row else 0
        rows = conn.execute(
            "SELECT seq, entry::text FROM reports WHERE seq > %s ORDER BY seq", (self._seq,)
        ).fetchall()
        if rows:
            self._seq = int(rows[-1][0])
        self._seen = max(self._seen, version)
        return False, [orjson.loads(text) for _, text in rows]

    @contextmanager
    def appending(self) -> Iterator[ReportAppender]:
        with self.db.connection(self.where) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCKS["reports"],))
            yield _Appender(self, conn)


class _Appender:
    def __init__(self, log: PgReportLog, conn: Conn) -> None:
        self.log = log
        self.conn = conn

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        return self.log._read(self.conn)

    def append(self, row: dict[str, Any]) -> None:
        got = self.conn.execute(
            "INSERT INTO reports (id, station_id, code, client, created_at, entry) "
            "VALUES (%s, %s, %s, %s, %s, %s::json) RETURNING seq",
            (
                row["id"],
                row["station_id"],
                row["code"],
                row["client"],
                datetime.fromisoformat(str(row["created_at"])),
                dumps(row),
            ),
        ).fetchone()
        assert got is not None
        version = bump(self.conn, "reports")
        # Under the lock, right after reading every earlier row: nothing lies between.
        self.log._seq = int(got[0])
        self.log._seen = max(self.log._seen, version)


class PgRateLimits:
    """:class:`~yizhan.storage.base.RateLimits` in ``rate_hits`` (one row per event).

    A hit takes an advisory lock on its key for its transaction, forgets the key's events
    older than the window, counts the rest and records itself if under the limit. Events of
    keys no longer used are deleted now and then (about one hit in 200).
    """

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def hit(self, key: str, limit: int, window_s: float, what: str = "requests") -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        with self.db.connection("the rate limits") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
            conn.execute(
                "DELETE FROM rate_hits WHERE key = %s AND window_s = %s "
                "AND at <= %s - make_interval(secs => %s)",
                (key, window_s, now, window_s),
            )
            times = [
                r[0]
                for r in conn.execute(
                    "SELECT at FROM rate_hits WHERE key = %s AND window_s = %s ORDER BY at",
                    (key, window_s),
                ).fetchall()
            ]
            if len(times) >= limit:
                retry = (times[len(times) - limit] - now).total_seconds() + window_s
                raise RateLimitedError(
                    f"Too many {what}: at most {limit} in {window_s:g} s from one client; "
                    f"try again in {max(1, round(retry))} s",
                    max(1, round(retry + 0.5)),
                )
            conn.execute(
                "INSERT INTO rate_hits (key, window_s, at) VALUES (%s, %s, %s)",
                (key, window_s, now),
            )
            if random.random() < 0.005:
                conn.execute(
                    "DELETE FROM rate_hits WHERE at <= %s - make_interval(secs => window_s)",
                    (now,),
                )

    def wait_s(self, key: str, limit: int, window_s: float) -> float:
        now = datetime.fromtimestamp(self.clock(), UTC)
        with self.db.connection("the rate limits") as conn:
            times = [
                r[0]
                for r in conn.execute(
                    "SELECT at FROM rate_hits WHERE key = %s AND window_s = %s "
                    "AND at > %s - make_interval(secs => %s) ORDER BY at",
                    (key, window_s, now, window_s),
                ).fetchall()
            ]
        if len(times) < limit:
            return 0.0
        return max(0.0, float((times[len(times) - limit] - now).total_seconds()) + window_s)


__all__ = ["LOCKS", "PgEntrySource", "PgRateLimits", "PgReportLog", "bump"]
