"""Stations on PostgreSQL: rows, versions, audit rows in the change's transaction, and an
in-memory read model that follows every process's changes.

A feature is a row of ``features`` (the feature as stored, its generated properties and
geography point, its ETag and the registry version that wrote it). A change, made under the
same rules as the files backend (:mod:`yizhan.stations.editing`):

1. reads the feature's row and compares the caller's ``If-Match`` with its ETag (412, 428);
2. computes and validates the new version outside any transaction (422, 403);
3. in one transaction: bumps the registry version (``state_versions``, whose row lock orders
   the commits), writes the row **only if its version is still the one read in 1**
   (optimistic concurrency: otherwise someone changed it meanwhile, and the change is
   refused with 412 — or, without ``If-Match``, made again on the new version), inserts the
   audit row and sends ``NOTIFY``; then commits — the change is acknowledged only now;
4. patches that one station into this process's read model (every other process does the
   same from the audit row when notified: :meth:`PgStationStore.follow`).

The read model is the files backend's: :class:`~yizhan.stations.search.StationSearch`,
patched per change (:meth:`~yizhan.stations.search.StationSearch.with_change`). It records
the registry version it has applied; a process that finds a gap in the audit rows (a change
without one: ``yizhan db import``) loads the registry again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from yizhan.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    StorageUnavailableError,
)
from yizhan.settings import Settings
from yizhan.stations.alerts import AlertStore
from yizhan.stations.audit import HistoryPage, audit_entry
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.editing import (
    Action,
    Found,
    check_if_match,
    check_new_version,
    check_note,
    check_patch,
    check_reason,
    feature_etag,
    new_feature,
    patched,
    removed,
    verified,
)
from yizhan.stations.jsonio import gc_paused
from yizhan.stations.models import is_bus
from yizhan.stations.placements import PlacementStore
from yizhan.stations.registry import Registry, from_document
from yizhan.stations.retire import retire
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import Principal
from yizhan.storage.base import new_search
from yizhan.storage.postgres import Conn, Database

log = logging.getLogger("yizhan")

#: How often a change is made again when another process changed the same feature between
#: its read and its write (only without ``If-Match``: with it, the answer is 412).
MAX_ATTEMPTS = 8


def dumps(value: Any) -> str:
    """JSON text as stored (orjson: the same bytes as the files backend writes)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode("utf-8")


def load_document(conn: Conn, where: str) -> tuple[dict[str, Any], list[tuple[str, int]], int]:
    """The registry document (features in their order), each feature's ``(id, version)``
    and the registry version, read in one snapshot."""
    if not conn.autocommit:
        conn.commit()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute("SELECT version FROM state_versions WHERE kind = 'stations'").fetchone()
        version = int(row[0]) if row else 0
        meta = conn.execute("SELECT document::text FROM registry_meta").fetchone()
        with gc_paused():
            doc: dict[str, Any] = (
                orjson.loads(meta[0]) if meta else {"type": "FeatureCollection", "features": None}
            )
            cur = conn.execute("SELECT id, version, feature::text FROM features ORDER BY pos")
            rows = cur.fetchall()
            doc["features"] = [orjson.loads(text) for _, _, text in rows]
    if not isinstance(doc, dict):
        raise StorageUnavailableError(f"{where}: registry_meta is not a JSON object")
    return doc, [(str(fid), int(v)) for fid, v, _ in rows], version


def history_page(
    db: Database,
    feature_id: str,
    limit: int | None = None,
    cursor: int = 0,
    newest_first: bool = False,
) -> HistoryPage:
    """Audit rows of one feature, oldest (or newest) first, a page at a time (read by the
    ``audit_by_feature`` index: only this feature's rows)."""
    if cursor < 0:
        raise ValueError(f"cursor must be >= 0, got {cursor}")
    with db.connection("the audit history") as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit WHERE feature_id = %s", (feature_id,)
        ).fetchone()
        total = int(row[0]) if row else 0
        if newest_first:
            cur = conn.execute(
                "SELECT entry::text FROM audit WHERE feature_id = %s "
                "ORDER BY registry_version DESC OFFSET %s LIMIT %s",
                (feature_id, cursor, limit),
            )
        else:
            cur = conn.execute(
                "SELECT entry::text FROM audit WHERE feature_id = %s "
                "ORDER BY registry_version OFFSET %s LIMIT %s",
                (feature_id, cursor, limit),
            )
        rows = [orjson.loads(text) for (text,) in cur.fetchall()]
    stop = total if limit is None else min(total, cursor + limit)
    return HistoryPage(rows, total, stop if stop < total else None)


# One change in one statement: the registry version is bumped (its row lock, held until the
# commit, orders the commits), the row written only if it is still at the version read,
# the audit row inserted and NOTIFY sent only then; the caller rolls back when no row was
# written. Data-modifying CTEs all run, whether or not the final SELECT reads them. The
# channel is postgres.CHANNEL ('yizhan'); a new feature's position comes from a sequence
# (a sub-select's snapshot would be stale after waiting for the version's row lock).
_UPDATE = (
    "WITH v AS (UPDATE state_versions SET version = version + 1 WHERE kind = 'stations' "
    "RETURNING version), "
    "f AS (UPDATE features SET feature = %(feature)s::json, etag = %(etag)s, "
    "version = (SELECT version FROM v) WHERE id = %(id)s AND version = %(row_version)s "
    "RETURNING id), "
    "a AS (INSERT INTO audit (registry_version, feature_id, at, action, entry) "
    "SELECT version, %(id)s, %(at)s, %(action)s, %(entry)s::json FROM v "
    "WHERE EXISTS (SELECT FROM f) RETURNING registry_version) "
    "SELECT (SELECT version FROM v), EXISTS (SELECT FROM f), "
    "(SELECT pg_notify('yizhan', 'stations ' || registry_version) FROM a)"
)
_CREATE = (
    "WITH v AS (UPDATE state_versions SET version = version + 1 WHERE kind = 'stations' "
    "RETURNING version), "
    "f AS (INSERT INTO features (id, pos, feature, etag, version) "
    "SELECT %(id)s, nextval('features_pos_seq'), %(feature)s::json, "
    "%(etag)s, version FROM v ON CONFLICT (id) DO NOTHING RETURNING id), "
    "a AS (INSERT INTO audit (registry_version, feature_id, at, action, entry) "
    "SELECT version, %(id)s, %(at)s, %(action)s, %(entry)s::json FROM v "
    "WHERE EXISTS (SELECT FROM f) RETURNING registry_version) "
    "SELECT (SELECT version FROM v), EXISTS (SELECT FROM f), "
    "(SELECT pg_notify('yizhan', 'stations ' || registry_version) FROM a)"
)


class PgStationStore:
    """The registry kept in PostgreSQL (see the module docstring).

    Parameters
    ----------
    db : Database
    settings : Settings
        Time zone and holiday country (validation, hours), the search's options.
    placements, alerts : PlacementStore, AlertStore
        Kept by every snapshot of the search.
    clock : callable
        The current time (aware); tests inject one.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        placements: PlacementStore,
        alerts: AlertStore,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.timezone = settings.timezone
        self.holiday_country = settings.holiday_country
        self.clock = clock
        self._placements = placements
        self._alerts = alerts
        self._lock = threading.RLock()
        self._etags: dict[str, str] = {}
        self._etag_owner: dict[str, dict[str, Any]] = {}
        #: Registry version of the change each feature was last patched in from.
        self._row_version: dict[str, int] = {}
        #: Every change up to this registry version is in the snapshot.
        self.applied = 0
        #: Bumped with every new snapshot.
        self.version = 0
        with db.connection("the database") as conn:
            self._search = self._load(conn)

    # -- reading ---------------------------------------------------------------------------
    @property
    def search(self) -> StationSearch:
        return self._search

    @property
    def registry(self) -> Registry:
        reg: Registry = self._search.registry
        return reg

    def etag(self, feature: dict[str, Any]) -> str:
        """The version of a feature of the current snapshot (cached per feature object)."""
        key = feature["id"]
        tag = self._etags.get(key)
        if tag is None or self._etag_owner.get(key) is not feature:
            tag = feature_etag(feature)
            self._etags[key] = tag
            self._etag_owner[key] = feature
        return tag

    def find(self, feature_id: str) -> Found:
        reg = self.registry
        i = reg.index_of.get(feature_id)
        if i is not None:
            f = reg.features[i]
            return Found(f, self.etag(f), bus=False)
        for b in reg.buses:
            if b["id"] == feature_id:
                return Found(b, self.etag(b), bus=True)
        raise NotFoundError(f"no station or bus with id {feature_id!r}")

    def history(
        self,
        feature_id: str,
        limit: int | None = None,
        cursor: int = 0,
        newest_first: bool = False,
    ) -> HistoryPage:
        """Audit rows of one feature, oldest (or newest) first, a page at a time."""
        return history_page(self.db, feature_id, limit, cursor, newest_first)

    # -- writing ---------------------------------------------------------------------------
    def create(self, feature: dict[str, Any], who: Principal) -> Found:
        """Add a station (or bus); the id is generated when absent."""
        new = new_feature(feature, who, self._now())
        fid = new["id"]
        if self._memory(fid) is not None:
            raise ConflictError(f"a station or bus with id {fid!r} already exists")
        check_new_version(new, self.timezone, self.holiday_country)
        version = self._commit(None, new, "create", who, None, None)
        if version is None:  # created meanwhile by another process
            raise ConflictError(f"a station or bus with id {fid!r} already exists")
        return self._published(version, new)

    def update(self, feature_id: str, patch: Any, if_match: str | None, who: Principal) -> Found:
        """Apply a JSON merge patch (:func:`~yizhan.stations.editing.patched`)."""
        check_patch(patch)
        return self._change(
            feature_id,
            if_match,
            True,
            lambda f: patched(f, patch, who, self._now()),
            "update",
            who,
        )

    def remove(self, feature_id: str, reason: str, if_match: str | None, who: Principal) -> Found:
        """Mark a feature ``status: removed`` with a reason; nothing is erased."""
        reason = check_reason(reason)
        return self._change(
            feature_id,
            if_match,
            True,
            lambda f: removed(f, reason, who, self._now()),
            "remove",
            who,
            reason,
        )

    def verify(
        self, feature_id: str, who: Principal, if_match: str | None = None, note: str | None = None
    ) -> Found:
        """Record that *who* checked the feature on site now; ``If-Match`` optional."""
        check_note(note)
        return self._change(
            feature_id,
            if_match,
            False,
            lambda f: verified(f, who, self._now()),
            "verify",
            who,
            note,
            validate=False,
        )

    def _now(self) -> str:
        return self.clock().astimezone(ZoneInfo(self.timezone)).isoformat(timespec="seconds")

    def _memory(self, feature_id: str) -> tuple[Found, int] | None:
        """The feature as this process serves it, with the row version it was read at."""
        try:
            found = self.find(feature_id)
        except NotFoundError:
            return None
        return found, self._row_version.get(feature_id, -1)

    def _stored(self, feature_id: str) -> tuple[Found, int] | None:
        """The feature as stored now, with its row version (``None``: no such feature)."""
        with self.db.connection("the database") as conn:
            row = conn.execute(
                "SELECT feature::text, etag, version FROM features WHERE id = %s", (feature_id,)
            ).fetchone()
        if row is None:
            return None
        feature = orjson.loads(row[0])
        return Found(feature, str(row[1]), bus=is_bus(feature)), int(row[2])

    def _change(
        self,
        feature_id: str,
        if_match: str | None,
        required: bool,
        make: Callable[[dict[str, Any]], dict[str, Any] | None],
        action: Action,
        who: Principal,
        reason: str | None = None,
        *,
        validate: bool = True,
    ) -> Found:
        """Make a change on the feature as this process serves it (almost always the stored
        version: one round trip saved); when that is not the stored version (the write
        finds another row version) or does not match ``If-Match``, on the feature read
        from the database."""
        for attempt in range(MAX_ATTEMPTS):
            stored = self._memory(feature_id) if attempt == 0 else self._stored(feature_id)
            if stored is None:
                if attempt == 0:
                    continue  # maybe created by another process a moment ago
                raise NotFoundError(f"no station or bus with id {feature_id!r}")
            cur, row_version = stored
            try:
                check_if_match(cur, feature_id, if_match, required)
            except PreconditionFailedError:
                if attempt == 0:
                    continue  # this process may lag behind: ask the database
                raise
            after = make(cur.feature)
            if after is None:
                return cur
            if validate:
                check_new_version(after, self.timezone, self.holiday_country)
            version = self._commit(cur.feature, after, action, who, reason, row_version)
            if version is not None:
                return self._published(version, after)
            # Not the stored version (changed by someone else since it was read): read it
            # again (with If-Match, the check above now answers 412 with the new version).
        raise StorageUnavailableError(
            f"{feature_id!r} is being changed by others too often to apply this change; try again",
            retry_after_s=1,
        )

    def _commit(
        self,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        action: Action,
        who: Principal,
        reason: str | None,
        row_version: int | None,
    ) -> int | None:
        """Write one change and its audit row in one transaction (one statement, then the
        commit); its registry version, or ``None`` when the row was not the one read
        (changed, or created meanwhile)."""
        fid = after["id"]
        at = self.clock().astimezone(UTC)
        entry = audit_entry(
            action, fid, before, after, who, at, source=self.db.where, reason=reason
        )
        args = {
            "id": fid,
            "feature": dumps(after),
            "etag": entry["etag_after"],
            "row_version": row_version,
            "at": at,
            "action": action,
            "entry": dumps(entry),
        }
        with self.db.connection("the database") as conn:
            row = conn.execute(_CREATE if row_version is None else _UPDATE, args).fetchone()
            assert row is not None
            if not row[1]:
                conn.rollback()
                return None
        return int(row[0])

    def _published(self, version: int, after: dict[str, Any]) -> Found:
        """Serve a committed change here at once (read your writes), then answer with it."""
        fid = after["id"]
        with self._lock:
            if self.applied == version - 1:
                self._apply([(version, fid, after)], version)
            else:
                try:
                    with self.db.connection("the database") as conn:
                        self._catch_up(conn)
                except StorageUnavailableError:
                    pass  # the change is committed: the follower catches up later
                if self._row_version.get(fid, 0) < version:
                    self._apply([(version, fid, after)], None)
        return Found(after, feature_etag(after), bus=is_bus(after))

    # -- following -------------------------------------------------------------------------
    def catch_up(self) -> bool:
        """Apply the changes committed since the snapshot's version (any process's)."""
        with self.db.connection("the database") as conn:
            return self._catch_up(conn)

    def follow(self, version: int, conn: Conn) -> None:
        """The listener's call when the registry version moved (or after a reconnect)."""
        if version != self.applied:
            self._catch_up(conn)

    def _catch_up(self, conn: Conn) -> bool:
        with self._lock:
            row = conn.execute(
                "SELECT version FROM state_versions WHERE kind = 'stations'"
            ).fetchone()
            current = int(row[0]) if row else 0
            if current <= self.applied:
                return False
            # Versions are committed in order (the counter's row lock): every version up to
            # `current` is committed, so the rows read here have no hole unless a change
            # was made without an audit row (an import): then load everything again.
            rows = conn.execute(
                "SELECT registry_version, feature_id, entry::text FROM audit "
                "WHERE registry_version > %s AND registry_version <= %s "
                "ORDER BY registry_version",
                (self.applied, current),
            ).fetchall()
            changes: list[tuple[int, str, dict[str, Any] | None]] = []
            for v, fid, text in rows:
                after = orjson.loads(text).get("after")
                changes.append((int(v), str(fid), after if isinstance(after, dict) else None))
            complete = [v for v, _, _ in changes] == list(range(self.applied + 1, current + 1))
            if not complete or any(after is None for _, _, after in changes):
                log.info(
                    "registry version %d -> %d with changes outside the audit rows: reloading",
                    self.applied,
                    current,
                )
                self._serve(self._load(conn))
                return True
            self._apply(changes, current)
            return True

    def _apply(
        self, changes: list[tuple[int, str, dict[str, Any] | None]], through: int | None
    ) -> None:
        """Patch changes into the snapshot (skipping those already in it) and publish it;
        *through*: every change up to this version is now applied."""
        search = self._search
        for v, fid, after in changes:
            if after is None or self._row_version.get(fid, 0) >= v:
                continue
            search = search.with_change(_feature(search.registry, fid), after)
            self._row_version[fid] = v
        if search is not self._search:
            self._serve(search)
        if through is not None:
            self.applied = through

    def _load(self, conn: Conn) -> StationSearch:
        """The registry as stored, validated exactly as a file is at load."""
        doc, versions, current = load_document(conn, self.db.where)
        with gc_paused():
            reg = from_document(
                doc,
                source=f"the registry in {self.db.where}",
                timezone=self.timezone,
                holiday_country=self.holiday_country,
            )
        search = new_search(self.settings, reg, self._placements, self._alerts)
        self._row_version = dict(versions)
        self.applied = current
        return search

    def _serve(self, search: StationSearch) -> None:
        old, self._search = self._search, search
        self.version += 1
        retire(old)


def _feature(registry: Registry, feature_id: str) -> dict[str, Any] | None:
    i = registry.index_of.get(feature_id)
    if i is not None:
        return registry.features[i]
    return next((b for b in registry.buses if b["id"] == feature_id), None)


__all__ = ["MAX_ATTEMPTS", "PgStationStore", "dumps", "history_page", "load_document"]
