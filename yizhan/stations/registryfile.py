"""The registry file as this process follows it: the served snapshot, the file on disk and
the audit log, kept in step across processes.

:class:`RegistryFile` holds the current :class:`~yizhan.stations.search.StationSearch`
(registry and indexes) and replaces it as a whole, so a reader works on one consistent
snapshot. It catches up with the disk under a thread lock and the inter-process lock
``<registry>.lock`` (before every write, and from :meth:`~RegistryFile.reload_if_changed`,
which the server's watcher calls):

- changes another Yizhan process made are taken from its audit lines when the file on disk
  is exactly the one they say they wrote (each line records the file it was made on and the
  file it wrote, ``file.before`` and ``file.after``, as ``[mtime_ns, size, inode]``, which a
  rename keeps): one station is patched in, nothing is read or logged;
- otherwise the file is loaded and validated, and only what the log does not already
  explain is logged, as ``external`` (a ``git pull``, a hand edit): a feature whose version
  is the log's last for it was changed by another process, and is not logged again;
- an invalid file is refused with one error log line: the snapshot stays, and writes are
  refused (503) until the file changes again, so the changes in it are not overwritten;
- a change whose writer died after its audit line and before its rename is completed: the
  log's last line then names as ``file.before`` the registry file still on disk, so the
  line is applied to the registry and the file written, and no second line is logged;
- at start, a feature whose version differs from the log's last one for it (changed while
  no Yizhan process was watching) is logged as ``external``.

The writes themselves (rules, commit order) are :class:`~yizhan.stations.filestore.RegistryStore`'s.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from yizhan.errors import InvalidInputError, NotFoundError, RegistryInvalidError
from yizhan.stations.audit import AuditLog, FileStamp, audit_entry
from yizhan.stations.editing import Action, Found, feature_etag
from yizhan.stations.jsonio import fsync_dir, gc_paused, read_document
from yizhan.stations.registry import Registry, from_document
from yizhan.stations.retire import retire
from yizhan.stations.tokens import Principal

log = logging.getLogger("yizhan")

#: Seconds a client is asked to wait (``Retry-After``) while writes are refused.
RETRY_AFTER_S = 30


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


def file_stamp(path: Path | None) -> FileStamp | None:
    """``(mtime_ns, size, inode)`` of a file, ``None`` when there is none."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _first_lines(exc: Exception, n: int = 4) -> str:
    lines = str(exc).splitlines()
    more = f" … ({len(lines) - n} more lines in the server log)" if len(lines) > n else ""
    return " ".join(lines[:n]) + more


class RegistryFile:
    """The registry being served, following its file and audit log on disk.

    Parameters
    ----------
    registry : Registry
        The validated registry (``registry.path`` ``None``: nothing on disk).
    build : callable
        Builds the search (indexes, hours, buses) over a registry; called for a snapshot
        read from the file, outside of any reader's way.
    patch : callable, optional
        ``patch(search, before, after)``: the search with one feature changed, in place of
        a rebuild (:meth:`StationSearch.with_change
        <yizhan.stations.search.StationSearch.with_change>`); called for each change made
        here or followed from another process's audit line. Default: *build* over the
        registry with the change.
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
        patch: Callable[[Any, dict[str, Any] | None, dict[str, Any]], Any] | None = None,
        timezone: str = "Asia/Shanghai",
        holiday_country: str | None = "CN",
        audit_path: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._build = build
        self._patch = patch
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
        #: The file the snapshot was read from or written to.
        self._stamp = file_stamp(self.path)
        #: The file on disk last refused as invalid, and why.
        self._refused: tuple[FileStamp, str] | None = None
        #: How far this store has followed the audit log (bytes), and the log's stamp then.
        self._mark = 0
        self._audit_seen: FileStamp | None = None
        #: Offset of the last audit line checked for a change to complete.
        self._checked_tail: int | None = None
        #: Bumped with every new snapshot (edits and reloads).
        self.version = 0
        self.search = build(registry)
        if self.path is not None:
            with self._lock, file_lock(self._lock_path):
                self._remove_temp_files()
                self.audit.refresh()
                self._recover()
                self._reconcile()
                self._followed()

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

    def _changed(self, search: Any, before: dict[str, Any] | None, after: dict[str, Any]) -> Any:
        """*search* with one feature changed: patched in place of a rebuild when possible."""
        if self._patch is not None:
            return self._patch(search, before, after)
        return self._build(search.registry.with_change(before, after))

    def _get(self, feature_id: str) -> dict[str, Any] | None:
        try:
            return self.find(feature_id).feature
        except NotFoundError:
            return None

    # -- following the disk ----------------------------------------------------------------
    def changed_on_disk(self) -> bool:
        """Whether the file differs from the one served (and was not already refused), or
        the audit log has lines this store has not followed (another process's change)."""
        stamp = file_stamp(self.path)
        if stamp is not None and stamp != self._stamp and not self._is_refused(stamp):
            return True
        return self.audit.changed(self._audit_seen)

    def reload_if_changed(self) -> bool:
        """Catch up with the disk; ``True`` if a new snapshot is served.

        An invalid file is refused with one log line (every error in it follows), and the
        current snapshot stays; the same file is not tried again until it changes, and
        writes are refused meanwhile.
        """
        if not self.changed_on_disk():
            return False
        with self._lock, file_lock(self._lock_path):
            return self._sync()

    def _is_refused(self, stamp: FileStamp | None) -> bool:
        return self._refused is not None and stamp == self._refused[0]

    def _followed(self) -> None:
        """Every line of the audit log so far is accounted for in the snapshot."""
        self._mark = self.audit.end
        self._audit_seen = self.audit.seen

    def _sync(self) -> bool:
        """Catch up with the file and the audit log (both locks held); ``True``: a new
        snapshot is served."""
        if self.path is None:
            return False
        self.audit.refresh()
        rows = self.audit.since(self._mark)
        changed = False
        stamp = file_stamp(self.path)
        if stamp is not None and stamp != self._stamp and not self._is_refused(stamp):
            changed = self._follow(rows, stamp) or self._reload(stamp)
        changed = self._recover() or changed
        self._followed()
        return changed

    def _follow(self, rows: list[tuple[int, dict[str, Any]]], stamp: FileStamp) -> bool:
        """Apply other processes' changes from their audit lines, when the file on disk is
        exactly the one they wrote (each line's ``file.before`` is the previous one's
        ``file.after``, from the file served to the file on disk). ``False``: load it."""
        cur = list(self._stamp) if self._stamp is not None else None
        todo = []
        for i, (_, row) in enumerate(rows):
            files = row.get("file")
            if not isinstance(files, dict) or files.get("before") != cur:
                return False
            if cur == list(stamp) and i == len(rows) - 1:
                break  # logged, not renamed: its writer died; _recover completes it
            cur = files.get("after")
            todo.append(row)
        if not todo or cur != list(stamp):
            return False
        search = self.search
        for row in todo:
            before = _feature(search.registry, row["id"])
            tag = feature_etag(before) if before is not None else None
            if tag != row.get("etag_before") or not isinstance(row.get("after"), dict):
                return False
            search = self._changed(search, before, row["after"])
        self._serve(search)
        self._stamp = stamp
        return True

    def _reload(self, stamp: FileStamp, log_external: bool = True) -> bool:
        """Load and validate the file on disk; log what the audit log does not explain."""
        assert self.path is not None
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
            self._refused = (stamp, _first_lines(exc))
            log.error(
                "the registry file %s changed on disk but is invalid; still serving the "
                "previous version, and refusing writes until it is fixed. %s",
                self.path,
                exc,
            )
            return False
        old = self.registry
        self._swap(reg)
        self._stamp = stamp
        self._refused = None
        if log_external:
            self.audit.append(self._external_entries(old, reg))
        log.info("reloaded %s after a change on disk (%d stations)", self.path, len(reg))
        return True

    def _external_entries(self, old: Registry, new: Registry) -> list[dict[str, Any]]:
        """Audit entries for the features a change on disk added, changed or dropped, except
        the changes the log already has (another process's, whose version is the log's last
        for that feature)."""
        a = {f["id"]: f for f in (*old.features, *old.buses)}
        b = {f["id"]: f for f in (*new.features, *new.buses)}
        out = []
        for fid in sorted(set(a) | set(b)):
            if a.get(fid) == b.get(fid):
                continue
            after = b.get(fid)
            logged, tag = self.audit.last_etag(fid)
            if logged and tag == (feature_etag(after) if after is not None else None):
                continue
            last = self.audit.last(fid) if logged else None
            before = last.get("after") if last is not None else a.get(fid)
            out.append(self._entry("external", fid, before, after, None))
        return out

    def _recover(self) -> bool:
        """Complete the change of the log's last line if its writer died between the
        audit append and the rename (the registry on disk is still the one the line names
        as ``file.before``); ``True`` if it was completed."""
        assert self.path is not None
        start = self.audit.last_start
        if start is None or start == self._checked_tail:
            return False
        tail = self.audit.tail()
        if tail is None:
            return False
        start, row = tail
        files = row.get("file")
        stamp = file_stamp(self.path)
        if not isinstance(files, dict) or stamp is None or files.get("before") != list(stamp):
            self._checked_tail = start  # applied (the file was replaced since), or external
            return False
        if stamp != self._stamp:
            return False  # the snapshot is not that file (it was refused): not now
        fid, after = row.get("id"), row.get("after")
        before = self._get(fid) if isinstance(fid, str) else None
        if (feature_etag(before) if before is not None else None) != row.get("etag_before"):
            # The snapshot may predate the file (read before another process's change).
            if not self._reload(stamp, log_external=False):
                return False  # refused: once fixed, its versions are logged against this line
            before = self._get(fid) if isinstance(fid, str) else None
        if not isinstance(after, dict) or (
            (feature_etag(before) if before is not None else None) != row.get("etag_before")
        ):
            log.error(
                "%s: the last line (%s of %r at %s) was logged by a process that stopped "
                "before writing the registry, and does not apply to the registry on disk; "
                "removing it",
                self.audit.path,
                row.get("action"),
                fid,
                row.get("at"),
            )
            self._undo_append(start)
            return False
        try:
            search = self._changed(self.search, before, after)
            reg = search.registry
        except Exception:
            log.exception(
                "%s: cannot complete the change of %r; removing its line", self.audit.path, fid
            )
            self._undo_append(start)
            return False
        try:
            tmp = self._write_temp(reg)[0]
            try:
                self._replace_file(tmp)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError:
            log.exception("cannot complete the change of %r logged in %s yet", fid, self.audit.path)
            return False  # tried again at the next write or file check
        self._serve(search)
        self._stamp = file_stamp(self.path)
        self._checked_tail = start
        log.warning(
            "completed the change of %r (%s at %s) that a process logged in %s but stopped "
            "before writing",
            fid,
            row.get("action"),
            row.get("at"),
            self.audit.path,
        )
        return True

    def _reconcile(self) -> None:
        """At start: log the features whose version differs from the log's last one for
        them (changed while no Yizhan process was watching)."""
        last = self.audit.last_etags()
        if not last:
            return

        def differing() -> tuple[dict[str, dict[str, Any]], list[str]]:
            reg = self.registry
            current = {f["id"]: f for f in (*reg.features, *reg.buses)}
            out = []
            for fid, tag in last.items():
                f = current.get(fid)
                if (self.etag(f) if f is not None else None) != tag:
                    out.append(fid)
            return current, sorted(out)

        current, ids = differing()
        if not ids:
            return
        # The registry may have been read before another process's last change: read the
        # file again before calling anything external.
        stamp = file_stamp(self.path)
        if stamp is None or not self._reload(stamp, log_external=False):
            return  # an invalid file: its changes are logged once it is fixed
        current, ids = differing()
        out = []
        for fid in ids:
            row = self.audit.last(fid)
            before = row.get("after") if row is not None else None
            out.append(self._entry("external", fid, before, current.get(fid), None))
        if out:
            log.warning(
                "%d features of %s differ from the audit log's last entry (changed outside "
                "Yizhan); logged as external changes",
                len(out),
                self.path,
            )
            self.audit.append(out)

    # -- writing the file ------------------------------------------------------------------
    def _write_temp(self, registry: Registry) -> tuple[Path, FileStamp]:
        """Write the registry to a flushed temporary file beside the file; its path and
        stamp (which the rename keeps). Raises ``OSError``."""
        assert self.path is not None
        data = orjson.dumps(
            registry.to_geojson(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
        )
        fd, name = tempfile.mkstemp(
            prefix=f".{self.path.name}.commit-", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
                st = os.fstat(fh.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), (st.st_mtime_ns, st.st_size, st.st_ino)

    def _replace_file(self, tmp: Path) -> None:
        assert self.path is not None
        os.replace(tmp, self.path)
        try:
            fsync_dir(self.path.parent)
        except OSError:  # the rename is done; a power cut may undo it, and _recover redo it
            log.exception("could not flush the directory of %s", self.path)

    def _undo_append(self, start: int) -> None:
        try:
            self.audit.truncate(start)
        except OSError:
            log.exception(
                "could not remove the audit line of a change that was not applied from %s; "
                "the next write completes that change",
                self.audit.path,
            )
        self._checked_tail = None

    def _remove_temp_files(self) -> None:
        """Remove the temporary files of writers that stopped before their rename."""
        assert self.path is not None
        for tmp in self.path.parent.glob(f".{self.path.name}.commit-*.tmp"):
            tmp.unlink(missing_ok=True)

    def _serve(self, search: Any) -> None:
        old, self.search = self.search, search
        self.version += 1
        retire(old)

    def _swap(self, registry: Registry) -> None:
        self._serve(self._build(registry))
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
        file: tuple[FileStamp | None, FileStamp] | None = None,
    ) -> dict[str, Any]:
        at = self.clock().astimezone(UTC)
        return audit_entry(
            action, fid, before, after, who, at, source=str(self.path), reason=reason, file=file
        )


def _feature(registry: Registry, feature_id: str) -> dict[str, Any] | None:
    i = registry.index_of.get(feature_id)
    if i is not None:
        return registry.features[i]
    return next((b for b in registry.buses if b["id"] == feature_id), None)


__all__ = ["RETRY_AFTER_S", "RegistryFile", "file_lock"]
