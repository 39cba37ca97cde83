"""Where the files backend keeps proposals: an append-only JSON-lines file (a
:class:`~yizhan.stations.proposals.ProposalLog`).

``<registry>.proposals.jsonl``, mode 0600::

    {"type": "yizhan-proposals", "version": 1, "salt": "<32 hex digits>"}
    {"event": "proposal", "id": "prop_…", …, "client": "<sha256 hex>", "created_at": …}
    {"event": "decision", "id": "prop_…", "status": "accepted", "station_id": "yz-p-…", …}

The header (with the salt of the clients' hashes) is written when the file is created.
Every write appends one line under ``fcntl.flock`` and fsyncs before it returns; a line torn
by a crash is skipped with a warning and the next line starts on a new line. The file is
read again from the start when it was replaced or truncated.

Hand-written rather than shared with :class:`~yizhan.stations.reportfile.ReportFile`: the
header keeps a salt, and a decision is checked and appended under one lock together with
the station it creates (:meth:`ProposalStore.decide
<yizhan.stations.proposals.ProposalStore.decide>`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson

from yizhan.errors import InvalidInputError
from yizhan.stations.jsonio import write_durably

log = logging.getLogger("yizhan")

FILE_TYPE: Final = "yizhan-proposals"
FILE_VERSION: Final = 1


class ProposalFile:
    """Proposal and decision events in an append-only JSON-lines file.

    Parameters
    ----------
    path : Path
        The file; created (with its header) on first use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self.salt: str | None = None
        self._offset = 0
        self._ino: int | None = None
        self._ends_with_newline = True

    # -- the ProposalLog protocol -------------------------------------------------------------
    def changed(self) -> bool:
        """Whether the file grew or was replaced since the last read (one ``os.stat``)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return st.st_ino != self._ino or st.st_size != self._offset

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        """The events appended since the last read (see :meth:`ProposalWriter.read_new
        <yizhan.stations.proposals.ProposalWriter.read_new>`)."""
        with self._locked() as fd:
            return self._catch_up(fd)

    @contextmanager
    def writing(self) -> Iterator[_Writer]:
        """The file locked (``flock``) for one change."""
        with self._locked() as fd:
            yield _Writer(self, fd)

    # -- the file -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[int]:
        """The file opened for appending, with an exclusive ``flock`` held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InvalidInputError(
                str(self.path), f"cannot open for appending: {exc.strerror or exc}"
            ) from exc
        try:
            if not existed:  # make the new file's name durable too
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _catch_up(self, fd: int) -> tuple[bool, list[dict[str, Any]]]:
        """With the lock held: the events appended since the last read (``True`` first when
        the file was replaced: every event again); the header is written if missing."""
        st = os.fstat(fd)
        again = False
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._offset):
            log.warning("%s was replaced or truncated; reading it again", self.path)
            self.salt = None
            self._offset = 0
            self._ends_with_newline = True
            again = True
        self._ino = st.st_ino
        rows: list[dict[str, Any]] = []
        if st.st_size > self._offset:
            data = os.pread(fd, st.st_size - self._offset, self._offset)
            self._offset += self._parse(data, self._offset, rows)
            self._ends_with_newline = data.endswith(b"\n")
        if self.salt is None:
            self.salt = secrets.token_hex(16)
            self._append(fd, {"type": FILE_TYPE, "version": FILE_VERSION, "salt": self.salt})
        return again, rows

    def _parse(self, data: bytes, start: int, rows: list[dict[str, Any]]) -> int:
        consumed = 0
        while consumed < len(data):
            end = data.find(b"\n", consumed)
            if end < 0:
                log.warning("%s: skipping an incomplete last line at byte %d", self.path, start)
                return len(data)
            line = data[consumed:end].strip()
            where = start + consumed
            consumed = end + 1
            if not line:
                continue
            try:
                d = orjson.loads(line)
                if not isinstance(d, dict):
                    raise TypeError(f"Expected an object, got {d!r:.80}")
                if d.get("type") == FILE_TYPE:
                    salt = d.get("salt")
                    if self.salt is None:
                        if not isinstance(salt, str) or not salt:
                            raise ValueError(f"salt: Expected a string, got {salt!r}")
                        self.salt = salt
                    continue
                rows.append(d)
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                log.warning("%s: skipping an unreadable line at byte %d: %s", self.path, where, exc)
        return consumed

    def _append(self, fd: int, line: dict[str, Any]) -> None:
        data = (b"" if self._ends_with_newline else b"\n") + orjson.dumps(line) + b"\n"
        write_durably(fd, data)
        self._offset = os.fstat(fd).st_size
        self._ends_with_newline = True


class _Writer:
    """A :class:`ProposalFile` while its lock is held."""

    def __init__(self, file: ProposalFile, fd: int) -> None:
        self.file = file
        self.fd = fd

    @property
    def salt(self) -> str:
        assert self.file.salt is not None  # read_new runs first and writes the header
        return self.file.salt

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        return self.file._catch_up(self.fd)

    def append(self, event: dict[str, Any]) -> None:
        self.file._append(self.fd, event)


__all__ = ["FILE_TYPE", "FILE_VERSION", "ProposalFile"]
