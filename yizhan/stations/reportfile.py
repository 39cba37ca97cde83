"""The report log in a file: ``<registry>.reports.jsonl`` (see :mod:`yizhan.stations.reports`).

The files backend's :class:`~yizhan.stations.reports.ReportLog`: append-only JSON lines,
appended under ``fcntl.flock`` and fsynced, read incrementally by byte offset by every
process.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from yizhan.errors import InvalidInputError
from yizhan.stations.jsonio import fsync_dir, write_durably

log = logging.getLogger("yizhan")

FILE_TYPE = "yizhan-reports"
FILE_VERSION = 1


class ReportFile:
    """A :class:`ReportLog` in an append-only JSON-lines file (the module docstring).

    Parameters
    ----------
    path : Path
        The file; created (mode 0600, with its header) by the first :meth:`appending`.

    Notes
    -----
    Every append is made under ``fcntl.flock`` and fsynced; a line torn by a crash is
    skipped (with a logged warning) and the next line starts on a new line; nothing is
    ever rewritten. A file replaced or cut short is read again from its start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        #: Whether the file has its header line (written when the file is created).
        self._header = False
        #: How many bytes of the file have been read, and its inode.
        self._offset = 0
        self._ino: int | None = None
        self._ends_with_newline = True
        self._fd = -1

    def changed(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return not (st.st_ino == self._ino and st.st_size == self._offset)

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        if self._fd >= 0:
            return self._read_new(self._fd, final=True)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False, []
        try:
            return self._read_new(fd, final=False)
        finally:
            os.close(fd)

    @contextmanager
    def appending(self) -> Iterator[ReportFile]:
        """Open the file for appending with an exclusive ``flock``; its header is written
        first if it has none."""
        existed = self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InvalidInputError(
                str(self.path), f"cannot open for appending: {exc.strerror or exc}"
            ) from exc
        try:
            if not existed:  # make the new file's name durable too
                fsync_dir(self.path.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            if not self._header:
                # The header is the first line: read up to it (what is read is given again
                # by the next read_new, from the start). The salt of the clients' hashes is
                # never kept here (yizhan.stations.salts).
                again, rows = self._read_new(fd, final=True)
                self._pending = (again, rows)
                if not self._header:
                    self._header = True
                    header = {"type": FILE_TYPE, "version": FILE_VERSION}
                    self._write(fd, orjson.dumps(header))
            yield self
        finally:
            self._fd = -1
            os.close(fd)  # releases the lock

    def append(self, row: dict[str, Any]) -> None:
        assert self._fd >= 0, "append() needs appending()"
        self._write(self._fd, orjson.dumps(row))

    _pending: tuple[bool, list[dict[str, Any]]] | None = None

    def _read_new(self, fd: int, final: bool) -> tuple[bool, list[dict[str, Any]]]:
        """What was appended to the file since it was last read."""
        pending, self._pending = self._pending, None
        again, rows = pending if pending is not None else (False, [])
        st = os.fstat(fd)
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._offset):
            log.warning("%s was replaced or truncated; reading it again", self.path)
            self._offset, self._header, again, rows = 0, False, True, []
        self._ino = st.st_ino
        if st.st_size > self._offset:
            data = os.pread(fd, st.st_size - self._offset, self._offset)
            self._offset += self._parse(data, self._offset, final, rows)
            self._ends_with_newline = data.endswith(b"\n")
        return again, rows

    def _parse(self, data: bytes, start: int, final: bool, rows: list[dict[str, Any]]) -> int:
        """Collect the complete lines of *data* (read from byte *start*); returns how many
        bytes were consumed. A last line without newline is skipped as torn when *final*,
        else left for later (another process may be writing it)."""
        consumed = 0
        while consumed < len(data):
            end = data.find(b"\n", consumed)
            if end < 0:
                if not final:
                    break
                log.warning(
                    "%s: skipping an incomplete last line at byte %d (a write was interrupted)",
                    self.path,
                    start + consumed,
                )
                consumed = len(data)
                break
            line = data[consumed:end].strip()
            where = start + consumed
            consumed = end + 1
            if not line:
                continue
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                log.warning("%s: skipping an unreadable line at byte %d: %s", self.path, where, exc)
                continue
            if isinstance(d, dict) and d.get("type") == FILE_TYPE:
                self._header = True  # an old header's "salt" is not used
                continue
            if isinstance(d, dict):
                rows.append(d)
            else:
                log.warning("%s: skipping an unreadable line at byte %d", self.path, where)
        return consumed

    def _write(self, fd: int, line: bytes) -> None:
        """Append *line* (on a line of its own) and fsync; the file lock is held."""
        data = (b"" if self._ends_with_newline else b"\n") + line + b"\n"
        write_durably(fd, data)
        self._offset = os.fstat(fd).st_size
        self._ends_with_newline = True


__all__ = ["FILE_TYPE", "FILE_VERSION", "ReportFile"]
