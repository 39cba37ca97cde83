"""The audit log: one JSON line per change to a station or bus, appended and flushed.

Each line says when (UTC), which feature (``id``), what (``action``), who (``actor``: role,
name, token id; ``file`` for a change found on disk), why (``reason``), the versions before
and after (``etag_before``, ``etag_after``), each changed field (``changes``) and both full
versions (``before``, ``after``). A change made through Yizhan also records the registry
file it was made on and the file it wrote (``file``: ``before`` and ``after`` as
``[mtime_ns, size, inode]``), which lets the store tell an applied change from one whose
writer died before its rename (see :mod:`yizhan.stations.filestore`).

The log is indexed, so that reading one station's history does not read the whole log: the
first use scans it once, keeping for every line its byte offset and length, and for every
feature the numbers of its lines and its last ``etag_after``. Later uses read only the
bytes appended since (by this process or any other: the file's size, time and inode tell),
and a history page reads only that station's lines (``os.pread`` at their offsets). A log
that was replaced or cut short is indexed again from the start.

The index is hand-written: it is a list of offsets over an append-only file, which no
embedded database we could add would make simpler, and the registry stays plain files.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from yizhan.stations.editing import Action, diff, feature_etag
from yizhan.stations.jsonio import write_durably
from yizhan.stations.tokens import Principal

log = logging.getLogger("yizhan")

#: Bytes read at a time while indexing.
CHUNK_BYTES = 8 << 20
#: Bytes of the last indexed line compared on each refresh, to notice a log cut short and
#: appended to again (its first bytes hold the line's time to the microsecond).
_TAIL_CHECK_BYTES = 128

FileStamp = tuple[int, int, int]


def audit_entry(
    action: Action,
    feature_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    who: Principal | None,
    at: datetime,
    *,
    source: str | None = None,
    reason: str | None = None,
    file: tuple[FileStamp | None, FileStamp] | None = None,
) -> dict[str, Any]:
    """One audit line: a change by *who*, or (``who`` ``None``) one found in file *source*.

    *file* is ``(before, after)``: the stamps of the registry file the change was made on
    and of the file that holds it.
    """
    entry: dict[str, Any] = {
        "at": at.isoformat(timespec="microseconds"),
        "id": feature_id,
        "action": action,
        "actor": (
            {"role": who.role, "name": who.name, "token_id": who.token_id}
            if who is not None
            else {"role": "file", "name": source, "token_id": None}
        ),
        "reason": reason,
        "etag_before": feature_etag(before) if before is not None else None,
        "etag_after": feature_etag(after) if after is not None else None,
    }
    if file is not None:
        entry["file"] = {
            "before": list(file[0]) if file[0] is not None else None,
            "after": list(file[1]),
        }
    entry["changes"] = diff(before or {}, after or {})
    entry["before"] = before
    entry["after"] = after
    return entry


@dataclass(frozen=True)
class HistoryPage:
    """Some audit entries of one feature.

    Attributes
    ----------
    entries : list of dict
        The entries, in the order asked for.
    total : int
        How many entries the feature has in all.
    next_cursor : int or None
        The cursor of the next page; ``None`` on the last page.
    """

    entries: list[dict[str, Any]]
    total: int
    next_cursor: int | None


def _file_stamp(st: os.stat_result) -> FileStamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class AuditLog:
    """Append-only JSON lines: one entry per accepted change (or ``None``: memory only).

    Parameters
    ----------
    path : Path, optional
        The log file; ``None`` keeps the entries in memory (a registry without a file).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        #: Offset and length (without its newline) of every indexed line, in file order.
        self._starts = array("q")
        self._sizes = array("q")
        #: Line numbers of each feature, oldest first, and its last ``etag_after``.
        self._by_id: dict[str, array[int]] = {}
        self._etag_after: dict[str, str | None] = {}
        #: Bytes indexed: up to the end of the last complete line.
        self._end = 0
        #: (mtime, size, inode) of the file when it was last looked at.
        self._seen: FileStamp | None = None
        self._tail_head = b""

    # -- the index -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Index the lines appended since the last look (by this process or another)."""
        if self.path is None:
            return
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            if self._end:
                self._reset()
            self._seen = None
            return
        try:
            stamp = _file_stamp(os.fstat(fd))
            if stamp == self._seen:
                return
            if self._seen is not None and (
                stamp[2] != self._seen[2]
                or stamp[1] < self._end
                or (
                    self._starts
                    and os.pread(fd, len(self._tail_head), self._starts[-1]) != self._tail_head
                )
            ):
                # replaced, or cut short (and maybe appended to since): index it again
                self._reset()
            self._index(fd)
            self._seen = stamp
        finally:
            os.close(fd)

    def _index(self, fd: int) -> None:
        buf = b""
        while True:
            chunk = os.pread(fd, CHUNK_BYTES, self._end + len(buf))
            if not chunk:
                return
            buf += chunk
            used = self._index_lines(buf)
            buf = buf[used:]
            self._end += used

    def _index_lines(self, buf: bytes) -> int:
        """Index the complete lines of *buf* (the file's bytes from ``self._end``)."""
        view = memoryview(buf)
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                return pos
            if nl > pos:
                try:
                    row = orjson.loads(view[pos:nl])
                except orjson.JSONDecodeError:
                    row = None
                fid = row.get("id") if isinstance(row, dict) else None
                if isinstance(fid, str):
                    assert isinstance(row, dict)
                    lines = self._by_id.get(fid)
                    if lines is None:
                        lines = self._by_id[fid] = array("q")
                    lines.append(len(self._starts))
                    self._starts.append(self._end + pos)
                    self._sizes.append(nl - pos)
                    self._etag_after[fid] = row.get("etag_after")
                    self._tail_head = bytes(view[pos : min(nl, pos + _TAIL_CHECK_BYTES)])
                elif buf[pos:nl].strip():
                    log.warning(
                        "%s: skipping a torn audit line at byte %d", self.path, self._end + pos
                    )
            pos = nl + 1

    @property
    def end(self) -> int:
        """Bytes of the log indexed so far (the end of its last complete line)."""
        return self._end if self.path is not None else len(self._memory)

    def changed(self, since: FileStamp | None) -> bool:
        """Whether the file differs from the one a caller saw (*since*: :attr:`seen`)."""
        if self.path is None:
            return False
        try:
            return _file_stamp(os.stat(self.path)) != since
        except FileNotFoundError:
            return since is not None

    @property
    def last_start(self) -> int | None:
        """Offset of the last indexed line (``None``: no line), without reading it."""
        if self.path is None:
            return len(self._memory) - 1 if self._memory else None
        return self._starts[-1] if self._starts else None

    @property
    def seen(self) -> FileStamp | None:
        """The file's ``(mtime_ns, size, inode)`` at the last refresh."""
        return self._seen

    def _read(self, numbers: Sequence[int]) -> list[dict[str, Any] | None]:
        """The rows of indexed lines *numbers*, each read at its offset (``None``: a line
        that no longer reads, the log having been cut short meanwhile)."""
        assert self.path is not None
        with self._lock:
            spans = [(self._starts[n], self._sizes[n]) for n in numbers]
        if not spans:
            return []
        rows: list[dict[str, Any] | None] = []
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start, size in spans:
                try:
                    row = orjson.loads(os.pread(fd, size, start))
                except orjson.JSONDecodeError:
                    row = None
                rows.append(row if isinstance(row, dict) else None)
        finally:
            os.close(fd)
        return rows

    # -- reading ---------------------------------------------------------------------------
    def count(self, feature_id: str) -> int:
        """How many entries one feature has."""
        if self.path is None:
            return sum(1 for r in self._memory if r.get("id") == feature_id)
        self.refresh()
        return len(self._by_id.get(feature_id, ()))

    def spans(self, feature_id: str) -> list[tuple[int, int]]:
        """Where one feature's lines are in the log: ``(offset, length)`` each, oldest first."""
        if self.path is None:
            return []
        self.refresh()
        with self._lock:
            return [(self._starts[n], self._sizes[n]) for n in self._by_id.get(feature_id, ())]

    def last_etags(self) -> dict[str, str | None]:
        """Every feature of the log and the ``etag_after`` of its last entry (as indexed)."""
        if self.path is None:
            return {r["id"]: r.get("etag_after") for r in self._memory}
        with self._lock:
            return dict(self._etag_after)

    def last_etag(self, feature_id: str) -> tuple[bool, str | None]:
        """Whether the feature has entries, and the ``etag_after`` of its last one."""
        etags = self._etag_after if self.path is not None else self.last_etags()
        return feature_id in etags, etags.get(feature_id)

    def last(self, feature_id: str) -> dict[str, Any] | None:
        """The last entry of one feature (as indexed), if any."""
        if self.path is None:
            rows = [r for r in self._memory if r.get("id") == feature_id]
            return rows[-1] if rows else None
        with self._lock:
            lines = self._by_id.get(feature_id)
            n = lines[-1] if lines else None
        return self._read([n])[0] if n is not None else None

    def since(self, offset: int) -> list[tuple[int, dict[str, Any]]]:
        """The indexed entries that start at byte *offset* or later, with their offsets."""
        if self.path is None:
            return list(enumerate(self._memory))[offset:]
        with self._lock:
            numbers = range(bisect.bisect_left(self._starts, offset), len(self._starts))
            starts = [self._starts[n] for n in numbers]
        rows = self._read(numbers)
        return [(start, row) for start, row in zip(starts, rows, strict=True) if row is not None]

    def tail(self) -> tuple[int, dict[str, Any]] | None:
        """The last indexed entry of the log and its offset."""
        if self.path is None:
            return (len(self._memory) - 1, self._memory[-1]) if self._memory else None
        with self._lock:
            if not self._starts:
                return None
            n = len(self._starts) - 1
            start = self._starts[n]
        row = self._read([n])[0]
        return (start, row) if row is not None else None

    def page(
        self,
        feature_id: str,
        limit: int | None = None,
        cursor: int = 0,
        newest_first: bool = False,
    ) -> HistoryPage:
        """Entries of one feature: *limit* of them (all: ``None``) from position *cursor*.

        Positions count the feature's entries from its oldest (or with *newest_first*, its
        newest), so the cursor of a page stays right while entries are appended.
        """
        if cursor < 0:
            raise ValueError(f"cursor must be >= 0, got {cursor}")
        if self.path is None:
            mine = [r for r in self._memory if r.get("id") == feature_id]
            if newest_first:
                mine.reverse()
            total = len(mine)
            stop = total if limit is None else min(total, cursor + limit)
            rows = mine[cursor:stop]
        else:
            self.refresh()
            with self._lock:
                lines = self._by_id.get(feature_id, array("q"))
                total = len(lines)
                stop = total if limit is None else min(total, cursor + limit)
                if newest_first:
                    numbers = [lines[total - 1 - i] for i in range(cursor, stop)]
                else:
                    numbers = list(lines[cursor:stop])
            rows = [r for r in self._read(numbers) if r is not None]
        return HistoryPage(rows, total, stop if stop < total else None)

    def entries(self, feature_id: str | None = None) -> list[dict[str, Any]]:
        """Every entry (of one feature), oldest first. A torn line is skipped with a warning."""
        if feature_id is not None:
            return self.page(feature_id).entries
        if self.path is None:
            return list(self._memory)
        self.refresh()
        with self._lock:
            numbers = range(len(self._starts))
        return [r for r in self._read(numbers) if r is not None]

    # -- writing ---------------------------------------------------------------------------
    def append(self, entries: Sequence[dict[str, Any]]) -> int:
        """Append entries and flush them to disk before returning.

        Returns the log's size before the append (what :meth:`truncate` takes to undo it).
        A failed write is undone before the error is raised, so that no entry of a refused
        change stays in the log.
        """
        if self.path is None:
            size = len(self._memory)
            self._memory.extend(entries)
            return size
        if not entries:
            return self.end
        data = b"".join(orjson.dumps(e, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            # A crash in the middle of an earlier append leaves a line without its newline:
            # start on a fresh line so that the torn entry stays the only casualty.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            try:
                write_durably(fd, data)
            except OSError:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    log.exception("could not undo a failed append to %s", self.path)
                raise
        finally:
            os.close(fd)
        self.refresh()
        return size

    def truncate(self, size: int) -> None:
        """Cut the log back to *size* bytes: undoes an append whose change was not applied."""
        if self.path is None:
            del self._memory[size:]
            return
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._reset()
            self._refresh()


__all__ = ["CHUNK_BYTES", "AuditLog", "FileStamp", "HistoryPage", "audit_entry"]
