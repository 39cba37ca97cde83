"""Proposals of missing stations and photos of stations in PostgreSQL tables.

The rules stay in ``stations/`` (:class:`~yizhan.stations.proposals.ProposalStore`,
:class:`~yizhan.stations.photos.PhotoStore`); here is where their entries are kept
(migration ``0003_proposals_photos.sql``):

- :class:`PgProposalLog` (a :class:`~yizhan.stations.proposals.ProposalLog`): one
  ``proposals`` row per proposal, its decision columns filled once. Every change runs in one
  transaction holding the proposals' advisory lock, after reading the rows other processes
  changed: the per-client rate limit and the cap on pending proposals are checked on every
  proposal committed up to then, and ``UPDATE … WHERE status = 'pending'`` records a
  decision once across replicas (409 for the second). Each change bumps the ``proposals``
  counter and stamps the row with it (``changed``); a process reads the rows changed since
  the counter it last saw. The reading methods look at the counter on every call (one
  primary-key read, about 0.2 ms on a local database: proposals are read by admins and
  managers, rarely), so a proposal made or decided through one replica is listed by every
  other at once; while the database is unreachable they answer from memory.
- :class:`PgPhotos` (a :class:`~yizhan.stations.photos.PhotoShelf`): one ``photos`` row
  per photo, the re-encoded image and its thumbnail as ``bytea``; a removal keeps the row
  (when, by whom) and drops the bytes. Every read is one indexed query (by id, or by station
  on a partial index of the photos not removed), so every replica serves a photo the moment
  another added it; reads of photos need the database (503 while it is unreachable).

The salt of the proposers' hashes is kept once in ``yizhan_meta`` (``proposals_salt``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, LiteralString

import orjson

from yizhan.errors import ConflictError
from yizhan.stations.photoimage import Photo, photo_entry, photo_from_entry
from yizhan.storage.pg_state import bump
from yizhan.storage.pg_stations import dumps
from yizhan.storage.postgres import Conn, Database

#: Advisory lock held while a proposal or a decision is checked and written (after
#: :data:`yizhan.storage.pg_state.LOCKS`).
PROPOSALS_LOCK = 0x595A_0005
_SALT_KEY = "proposals_salt"
_CONTENT: dict[bool, LiteralString] = {
    False: "SELECT data FROM photos WHERE id = %s AND removed_at IS NULL",
    True: "SELECT thumb FROM photos WHERE id = %s AND removed_at IS NULL",
}


class PgProposalLog:
    """A :class:`~yizhan.stations.proposals.ProposalLog` in the ``proposals`` table (see the
    module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = f"the proposals in {db.where}"
        self._seen = -1
        self._salt: str | None = None
        db.on_change("proposals", lambda version, conn: None)  # the listener keeps db.known

    def changed(self) -> bool:
        with self.db.connection(self.where) as conn:
            row = conn.execute(
                "SELECT version FROM state_versions WHERE kind = 'proposals'"
            ).fetchone()
        return row is not None and int(row[0]) > self._seen

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        with self.db.connection(self.where) as conn:
            return self._read(conn)

    def _read(self, conn: Conn) -> tuple[bool, list[dict[str, Any]]]:
        # The counter first: a row committed in between is read now and again next time
        # (the store takes an event twice as once).
        row = conn.execute("SELECT version FROM state_versions WHERE kind = 'proposals'").fetchone()
        version = int(row[0]) if row else 0
        rows = conn.execute(
            "SELECT entry::text, decision::text FROM proposals WHERE changed > %s ORDER BY seq",
            (self._seen,),
        ).fetchall()
        events: list[dict[str, Any]] = []
        for entry, decision in rows:
            events.append(orjson.loads(entry))
            if decision is not None:
                events.append(orjson.loads(decision))
        self._seen = max(self._seen, version)
        return False, events

    def _salt_of(self, conn: Conn) -> str:
        if self._salt is None:
            conn.execute(
                "INSERT INTO yizhan_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                (_SALT_KEY, secrets.token_hex(16)),
            )
            row = conn.execute("SELECT value FROM yizhan_meta WHERE key = %s", (_SALT_KEY,))
            got = row.fetchone()
            assert got is not None
            self._salt = str(got[0])
        return self._salt

    @contextmanager
    def writing(self) -> Iterator[_ProposalWriter]:
        """A transaction holding the proposals' advisory lock. One thread per process waits
        for it with a pooled connection (the store's own lock queues the others without
        one), so an acceptance creating its station on a second connection is not starved."""
        with self.db.connection(self.where) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PROPOSALS_LOCK,))
            writer = _ProposalWriter(self, conn)
            yield writer
        # Committed: under the lock, right after reading every earlier change, nothing lies
        # between, and the store takes this change in itself. (Not before the commit: a
        # rolled-back version number is given to the next change.)
        if writer.version is not None:
            self._seen = max(self._seen, writer.version)


class _ProposalWriter:
    """A :class:`PgProposalLog` in a transaction holding its advisory lock."""

    def __init__(self, log: PgProposalLog, conn: Conn) -> None:
        self.log = log
        self.conn = conn
        #: The proposals counter of the change written, if any.
        self.version: int | None = None

    @property
    def salt(self) -> str:
        return self.log._salt_of(self.conn)

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        return self.log._read(self.conn)

    def append(self, event: dict[str, Any]) -> None:
        version = bump(self.conn, "proposals")
        if event.get("event") == "decision":
            cur = self.conn.execute(
                "UPDATE proposals SET status = %s, decided_at = %s, decision = %s::json, "
                "station_id = %s, changed = %s WHERE id = %s AND status = 'pending'",
                (
                    event["status"],
                    datetime.fromisoformat(str(event["at"])),
                    dumps(event),
                    event.get("station_id"),
                    version,
                    event["id"],
                ),
            )
            if cur.rowcount != 1:
                raise ConflictError(f"proposal {event['id']!r} was already decided")
        else:
            self.conn.execute(
                "INSERT INTO proposals (id, client, created_at, district, entry, changed) "
                "VALUES (%s, %s, %s, %s, %s::json, %s)",
                (
                    event["id"],
                    event["client"],
                    datetime.fromisoformat(str(event["created_at"])),
                    event.get("district"),
                    dumps(event),
                    version,
                ),
            )
        self.version = version


class PgPhotos:
    """A :class:`~yizhan.stations.photos.PhotoShelf` in the ``photos`` table (see the module
    docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = f"the photos in {db.where}"

    def put(self, photo: Photo, data: bytes, thumb: bytes) -> None:
        with self.db.connection(self.where) as conn:
            conn.execute(
                "INSERT INTO photos (id, station_id, taken_on, added_at, entry, data, thumb) "
                "VALUES (%s, %s, %s, %s, %s::json, %s, %s)",
                (
                    photo.id,
                    photo.station_id,
                    photo.taken_on,
                    datetime.fromisoformat(photo.added_at),
                    dumps({"op": "add", **photo_entry(photo)}),
                    data,
                    thumb,
                ),
            )
            bump(conn, "photos")

    def remove(self, photo: Photo, at: str, by: dict[str, Any]) -> bool:
        with self.db.connection(self.where) as conn:
            cur = conn.execute(
                "UPDATE photos SET removed_at = %s, removed_by = %s::json, data = NULL, "
                "thumb = NULL WHERE id = %s AND removed_at IS NULL",
                (datetime.fromisoformat(at), dumps(by), photo.id),
            )
            if cur.rowcount != 1:
                return False
            bump(conn, "photos")
            return True

    def get(self, photo_id: str) -> Photo | None:
        with self.db.connection(self.where) as conn:
            row = conn.execute(
                "SELECT entry::text FROM photos WHERE id = %s AND removed_at IS NULL", (photo_id,)
            ).fetchone()
        return photo_from_entry(orjson.loads(row[0])) if row else None

    def for_station(self, station_id: str) -> list[Photo]:
        with self.db.connection(self.where) as conn:
            rows = conn.execute(
                "SELECT entry::text FROM photos WHERE station_id = %s AND removed_at IS NULL",
                (station_id,),
            ).fetchall()
        return [photo_from_entry(orjson.loads(r[0])) for r in rows]

    def latest_by_station(self) -> dict[str, date]:
        with self.db.connection(self.where) as conn:
            rows = conn.execute(
                "SELECT station_id, max(taken_on) FROM photos WHERE removed_at IS NULL "
                "GROUP BY station_id"
            ).fetchall()
        return {str(s): d for s, d in rows}

    def content(self, photo: Photo, thumb: bool) -> bytes | Path | None:
        with self.db.connection(self.where) as conn:
            row = conn.execute(_CONTENT[thumb], (photo.id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None


__all__ = ["PROPOSALS_LOCK", "PgPhotos", "PgProposalLog"]
