"""The file-backed registry store: edits made durable, each with exactly one audit line.

The GeoJSON file stays the source of truth and the audit log (``<registry>.audit.jsonl``,
:mod:`yizhan.stations.audit`) says how it came to be. A change is accepted in this order,
under a thread lock and an inter-process file lock (``<registry>.lock``):

1. the store catches up with the disk (:class:`~yizhan.stations.registryfile.RegistryFile`:
   other processes' changes, a file changed by hand, a change left half done by a crash);
   while the file on disk is invalid, writes are refused (503,
   :class:`~yizhan.errors.StorageUnavailableError`) so that the changes in it are not
   overwritten;
2. the caller's ``If-Match`` is compared with the feature's current version: a stale
   version is refused (412), none at all too (428); the rules of
   :mod:`yizhan.stations.editing` give the new version, which is validated exactly as a
   load would (model, bus stops, unique id) plus write limits;
3. the new registry is written to a temporary file beside the old one and flushed;
4. **the commit point**: one audit line is appended and flushed; it records the file the
   change was made on and the temporary file (``file.before``, ``file.after``);
5. the temporary file is renamed over the registry and the directory flushed;
6. the new snapshot is served; only then is the change acknowledged.

So every change has exactly one audit line, whatever stops when: a crash before 4 leaves
nothing but a temporary file (removed at the next start); a crash between 4 and 5 leaves
the change logged and not applied, and the next process to take the lock (a second worker,
or the restarted one) completes it from its line; a crash after 5 leaves it applied and
logged, and the other processes recognise it from its line. A write that fails inside the
process after 4 (the rename refused) cuts its line off the log again and answers 503.

This module is plain Python (no web framework): the HTTP routes call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from yizhan.errors import ConflictError, NotFoundError, StorageUnavailableError
from yizhan.stations.audit import HistoryPage
from yizhan.stations.editing import (
    Action,
    Found,
    check_if_match,
    check_new_version,
    check_note,
    check_patch,
    check_reason,
    new_feature,
    patched,
    removed,
    verified,
)
from yizhan.stations.registryfile import (
    RETRY_AFTER_S,
    RegistryFile,
    file_lock,
    file_stamp,
)
from yizhan.stations.tokens import Principal

#: Test-only fault injection; never set outside the tests. When set, it is called with the
#: name of each point of a commit where a crash matters: ``"audit-appended"`` (the audit
#: line is on disk, the registry file not yet renamed) and ``"registry-renamed"`` (both on
#: disk, the change not yet served). ``tests/test_durability.py`` sets it in a child
#: process to SIGKILL itself there.
fault_hook: Callable[[str], None] | None = None


def _fault(point: str) -> None:
    if fault_hook is not None:
        fault_hook(point)


def _unsaved(what: str, exc: OSError) -> StorageUnavailableError:
    return StorageUnavailableError(
        f"the change was not saved: {what} ({exc.strerror or exc})", retry_after_s=RETRY_AFTER_S
    )


class RegistryStore(RegistryFile):
    """The registry being served and edited; see the module docstring for the guarantees
    (and :class:`~yizhan.stations.registryfile.RegistryFile` for its parameters)."""

    def history(
        self,
        feature_id: str,
        limit: int | None = None,
        cursor: int = 0,
        newest_first: bool = False,
    ) -> HistoryPage:
        """Audit entries of one feature, oldest first (or newest first), a page at a time.

        Reads only this feature's lines of the log (see :class:`AuditLog.page
        <yizhan.stations.audit.AuditLog>`); *limit* ``None`` gives them all.
        """
        return self.audit.page(feature_id, limit, cursor, newest_first)

    def catch_up(self) -> bool:
        """Follow other processes' changes and changes to the file (``True``: a new snapshot
        is served); what the server's file watcher calls."""
        return self.reload_if_changed()

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

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, file_lock(self._lock_path):
            self._sync()
            if self._refused is not None and self._refused[0] == file_stamp(self.path):
                raise StorageUnavailableError(
                    f"the registry file {self.path} was changed on disk and is invalid, so "
                    "changes are refused until it is fixed (a write would overwrite the "
                    f"changes in it): {self._refused[1]}",
                    retry_after_s=RETRY_AFTER_S,
                )
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
        fid = after["id"]
        search = self._changed(self.search, before, after)  # before anything is written
        reg = search.registry
        if self.path is None:
            self.audit.append([self._entry(action, fid, before, after, who, reason)])
            self._serve(search)
            return
        try:
            tmp, new_stamp = self._write_temp(reg)
        except OSError as exc:
            raise _unsaved(f"cannot write beside {self.path}", exc) from exc
        try:
            entry = self._entry(
                action, fid, before, after, who, reason, file=(self._stamp, new_stamp)
            )
            try:
                start = self.audit.append([entry])
            except OSError as exc:
                raise _unsaved(f"cannot write the audit log {self.audit.path}", exc) from exc
            _fault("audit-appended")
            try:
                self._replace_file(tmp)
            except OSError as exc:
                self._undo_append(start)
                raise _unsaved(f"cannot replace {self.path}", exc) from exc
        finally:
            tmp.unlink(missing_ok=True)
        _fault("registry-renamed")
        self._serve(search)
        self._stamp = file_stamp(self.path)
        self._checked_tail = start
        self._followed()


__all__ = ["RegistryStore", "fault_hook"]
