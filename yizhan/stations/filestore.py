"""The registry file being served and edited: durable writes, locks, reloads, reconciling.

The GeoJSON file stays the source of truth. :class:`RegistryStore` holds the current
:class:`~yizhan.stations.search.StationSearch` (registry and indexes) and replaces it as a
whole after every accepted change, so a reader works on one consistent snapshot and
never sees half of a change. A change is accepted in this order, under a thread lock and
an inter-process file lock (``<registry>.lock``):

1. if the file changed on disk since it was read (another process, a ``git pull``), the
   new file is loaded and validated first;
2. the caller's ``If-Match`` version is compared with the feature's current version
   (:func:`~yizhan.stations.editing.feature_etag`): a stale version is refused (412), none
   at all too (428);
3. the new feature is validated exactly as a load would (its model, bus stops, unique
   id), plus write limits (:data:`~yizhan.stations.editing.TEXT_LIMITS`);
4. the whole registry is written to a temporary file, flushed, renamed over the old one
   and the directory flushed (:func:`~yizhan.stations.registry.write_json_atomic`);
5. one JSON line is appended to the audit log (``<registry>.audit.jsonl``) and flushed;
6. the new snapshot replaces the old one; only then is the change acknowledged.

A crash before step 4's rename leaves the old file, after it the new one. A crash between
steps 4 and 5 leaves a change without its audit line: at the next start the store sees
that the file's version of the feature differs from the last one the log recorded and
logs the difference as an ``external`` change, so history stays complete.

The rules of each change live in :mod:`yizhan.stations.editing`, the audit log in
:mod:`yizhan.stations.audit`; this module is their file-backed storage (plain Python, no
web framework: the HTTP routes call it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from yizhan.errors import ConflictError, InvalidInputError, NotFoundError, RegistryInvalidError
from yizhan.stations.audit import AuditLog, audit_entry
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
from yizhan.stations.models import is_bus
from yizhan.stations.registry import (
    Registry,
    from_document,
    gc_paused,
    read_document,
    write_json_atomic,
)
from yizhan.stations.tokens import Principal

log = logging.getLogger("yizhan")


@contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive inter-process lock on *path* (``fcntl.flock``); no-op for ``None``."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class RegistryStore:
    """The registry being served and edited; see the module docstring for the guarantees.

    Parameters
    ----------
    registry : Registry
        The validated registry (``registry.path`` ``None``: edits stay in memory).
    build : callable
        Builds the search (indexes, hours, buses) over a registry; called for every new
        snapshot, outside of any reader's way.
    timezone, holiday_country : str
        As for loading: bus stop hours are checked in them.
    audit_path : Path, optional
        The audit log (default ``<registry>.audit.jsonl``; memory only without a file).
    clock : callable
        The current time (aware); tests inject one.
    """

    def __init__(
        self,
        registry: Registry,
        build: Callable[[Registry], Any],
        *,
        timezone: str = "Asia/Shanghai",
        holiday_country: str | None = "CN",
        audit_path: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._build = build
        self.timezone = timezone
        self.holiday_country = holiday_country
        self.clock = clock
        self.path = registry.path
        if audit_path is None and self.path is not None:
            audit_path = self.path.with_name(self.path.name + ".audit.jsonl")
        self.audit = AuditLog(audit_path)
        self._lock_path = (
            self.path.with_name(self.path.name + ".lock") if self.path is not None else None
        )
        self._lock = threading.RLock()
        self._etags: dict[str, str] = {}
        self._etag_owner: dict[str, dict[str, Any]] = {}
        self._stamp = _stamp(self.path)
        self._refused_stamp: tuple[int, int, int] | None = None
        #: Bumped with every new snapshot (edits and reloads).
        self.version = 0
        self.search = build(registry)
        self._reconcile()

    # -- reading ---------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        """The registry of the current snapshot."""
        reg: Registry = self.search.registry
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
        """The feature with this id (station or bus) and its version.

        Raises
        ------
        NotFoundError
            No feature has this id.
        """
        reg = self.registry
        i = reg.index_of.get(feature_id)
        if i is not None:
            f = reg.features[i]
            return Found(f, self.etag(f), bus=False)
        for b in reg.buses:
            if b["id"] == feature_id:
                return Found(b, self.etag(b), bus=True)
        raise NotFoundError(f"no station or bus with id {feature_id!r}")

    def history(self, feature_id: str) -> list[dict[str, Any]]:
        """The audit entries of one feature, oldest first."""
        return self.audit.entries(feature_id)

    # -- writing ---------------------------------------------------------------------------
    def create(self, feature: dict[str, Any], who: Principal) -> Found:
        """Add a new station (or bus); the id is generated when absent.

        Raises
        ------
        InvalidInputError, PermissionDeniedError, ConflictError
        """
        new = new_feature(feature, who, self._now())
        fid = new["id"]
        with self._transaction():
            try:
                self.find(fid)
            except NotFoundError:
                pass
            else:
                raise ConflictError(f"a station or bus with id {fid!r} already exists")
            self._check_new(new)
            self._commit(None, new, "create", who)
            return self.find(fid)

    def update(self, feature_id: str, patch: Any, if_match: str | None, who: Principal) -> Found:
        """Apply a JSON merge patch (RFC 7396) to a feature (rules: :func:`editing.patched
        <yizhan.stations.editing.patched>`).

        Raises
        ------
        NotFoundError, PreconditionRequiredError, PreconditionFailedError,
        PermissionDeniedError, InvalidInputError
        """
        check_patch(patch)
        with self._transaction():
            cur = self._current(feature_id, if_match)
            after = patched(cur.feature, patch, who, self._now())
            if after is None:
                return cur
            self._check_new(after)
            self._commit(cur.feature, after, "update", who)
            return self.find(feature_id)

    def remove(self, feature_id: str, reason: str, if_match: str | None, who: Principal) -> Found:
        """Mark a feature ``status: removed`` with a reason; nothing is erased."""
        reason = check_reason(reason)
        with self._transaction():
            cur = self._current(feature_id, if_match)
            after = removed(cur.feature, reason, who, self._now())
            self._check_new(after)
            self._commit(cur.feature, after, "remove", who, reason=reason)
            return self.find(feature_id)

    def verify(
        self, feature_id: str, who: Principal, if_match: str | None = None, note: str | None = None
    ) -> Found:
        """Record that *who* checked the feature on site now (``last_verified_at/_by``).

        ``If-Match`` is optional: a verification changes nothing an editor wrote, so it
        cannot overwrite an edit; when given it is checked.
        """
        check_note(note)
        with self._transaction():
            cur = self._current(feature_id, if_match, required=False)
            after = verified(cur.feature, who, self._now())
            self._commit(cur.feature, after, "verify", who, reason=note)
            return self.find(feature_id)

    # -- reloading -------------------------------------------------------------------------
    def changed_on_disk(self) -> bool:
        """Whether the file differs from the one served (and was not already refused)."""
        stamp = _stamp(self.path)
        return stamp is not None and stamp != self._stamp and stamp != self._refused_stamp

    def reload_if_changed(self) -> bool:
        """Load the file again if someone else changed it; ``True`` if a new snapshot is served.

        An invalid file is refused with one log line (every error in it follows), and the
        current snapshot stays; the same file is not tried again until it changes.
        """
        if not self.changed_on_disk():
            return False
        with self._lock, file_lock(self._lock_path):
            return self._reload()

    def _reload(self) -> bool:
        stamp = _stamp(self.path)
        if self.path is None or stamp is None or stamp == self._stamp:
            return False
        try:
            with gc_paused():
                reg = from_document(
                    read_document(self.path),
                    path=self.path,
                    source=str(self.path),
                    timezone=self.timezone,
                    holiday_country=self.holiday_country,
                )
        except (InvalidInputError, RegistryInvalidError) as exc:
            self._refused_stamp = stamp
            log.error(
                "the registry file %s changed on disk but is invalid; still serving the "
                "previous version. %s",
                self.path,
                exc,
            )
            return False
        old = self.registry
        self._swap(reg)
        self._stamp = stamp
        self.audit.append(self._external_entries(old, reg))
        log.info("reloaded %s after a change on disk (%d stations)", self.path, len(reg))
        return True

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, file_lock(self._lock_path):
            if self.changed_on_disk():
                # Another process wrote the file: build on its version, not ours.
                self._reload()
            yield

    def _current(self, feature_id: str, if_match: str | None, required: bool = True) -> Found:
        cur = self.find(feature_id)
        check_if_match(cur, feature_id, if_match, required)
        return cur

    def _now(self) -> str:
        """The current time in the registry's time zone, to the second (``updated_at`` …)."""
        return self.clock().astimezone(ZoneInfo(self.timezone)).isoformat(timespec="seconds")

    def _check_new(self, feature: dict[str, Any]) -> None:
        check_new_version(feature, self.timezone, self.holiday_country)

    def _commit(
        self,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        action: Action,
        who: Principal,
        reason: str | None = None,
    ) -> None:
        reg = self.registry
        fid = after["id"]
        if before is not None and not is_bus(before):
            new = reg.with_station(reg.index_of[fid], after)  # the common case: cheap
        elif before is not None:
            buses = list(reg.buses)
            buses[next(j for j, b in enumerate(buses) if b["id"] == fid)] = after
            new = reg.with_buses(buses)
        elif is_bus(after):
            new = reg.with_buses([*reg.buses, after])
        else:
            new = Registry(
                features=[*reg.features, after],
                meta=reg.meta,
                path=reg.path,
                warnings=reg.warnings,
                buses=reg.buses,
            )
        search = self._build(new)  # before anything is written: a failure changes nothing
        if self.path is not None:
            write_json_atomic(self.path, new.to_geojson())
        entry = self._entry(action, fid, before, after, who, reason)
        try:
            self.audit.append([entry])
        except OSError:
            # The change is on disk: serve it. The next start logs it as an external change.
            log.exception("could not append to the audit log %s", self.audit.path)
        self.search = search
        self.version += 1
        self._stamp = _stamp(self.path)

    def _swap(self, registry: Registry) -> None:
        self.search = self._build(registry)
        self.version += 1
        self._etags.clear()
        self._etag_owner.clear()

    def _entry(
        self,
        action: Action,
        fid: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        who: Principal | None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        at = self.clock().astimezone(UTC)
        return audit_entry(
            action, fid, before, after, who, at, source=str(self.path), reason=reason
        )

    def _external_entries(self, old: Registry, new: Registry) -> list[dict[str, Any]]:
        """Audit entries for the features a change on disk added, changed or dropped."""
        a = {f["id"]: f for f in (*old.features, *old.buses)}
        b = {f["id"]: f for f in (*new.features, *new.buses)}
        out = []
        for fid in sorted(set(a) | set(b)):
            if a.get(fid) != b.get(fid):
                out.append(self._entry("external", fid, a.get(fid), b.get(fid), None))
        return out

    def _reconcile(self) -> None:
        """Log features whose stored version differs from the last one the audit log has."""
        if self.audit.path is None or not self.audit.path.exists():
            return
        last: dict[str, dict[str, Any]] = {}
        for row in self.audit.entries():
            if isinstance(row.get("id"), str):
                last[row["id"]] = row
        reg = self.registry
        current = {f["id"]: f for f in (*reg.features, *reg.buses)}
        out = []
        for fid, row in sorted(last.items()):
            f = current.get(fid)
            tag = feature_etag(f) if f is not None else None
            if tag != row.get("etag_after"):
                out.append(self._entry("external", fid, row.get("after"), f, None))
        if out:
            log.warning(
                "%d features of %s differ from the audit log's last entry (changed outside "
                "Yizhan, or a crash before the log was written); logged as external changes",
                len(out),
                self.path,
            )
            with file_lock(self._lock_path):
                self.audit.append(out)


__all__ = ["RegistryStore", "file_lock"]
