"""Small lists of entries shared by several processes: tokens, bus placements, heat alerts.

Each kind is a list of JSON objects kept by an :class:`EntrySource` — a file
(:class:`JsonStateFile`, ``{"type": "yizhan-<kind>", "<kind>": [ … ]}`` written atomically)
or a database table (``yizhan.storage.postgres``) — and held in memory by a
:class:`SharedList`, which reads the source again whenever its :meth:`~EntrySource.stamp`
changes (another process wrote it) and changes it under the source's inter-process lock:
a change is computed on the entries as they are now, so two processes never lose each
other's updates.

The services (:mod:`yizhan.stations.tokens`, :mod:`~yizhan.stations.placements`,
:mod:`~yizhan.stations.alerts`) keep their rules here in ``stations/``; the sources are
the storage backends' business, and this protocol is the seam between them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson

from yizhan.errors import InvalidInputError, StorageUnavailableError
from yizhan.stations.jsonio import write_json_atomic

log = logging.getLogger("yizhan")

Entries = list[dict[str, Any]]
T = TypeVar("T")
R = TypeVar("R")


class Held:
    """The entries of a source while its lock is held (:meth:`EntrySource.exclusive`).

    Attributes
    ----------
    entries : list of dict
        Read under the lock; the holder changes this list in place.
    stamp : hashable
        Set on exit: the stamp of the entries stored then, taken under the lock.
    """

    def __init__(self, entries: Entries) -> None:
        self.entries = entries
        self.stamp: Hashable = None


class EntrySource(Protocol):
    """Where a list of entries is kept, shared by every process.

    Attributes
    ----------
    where : str
        What to name in messages (a file path, a table).
    """

    where: str

    def stamp(self) -> Hashable:
        """Cheap: a value that changes whenever the stored entries change (a file's time,
        size and inode; a change counter)."""
        ...

    def load(self) -> tuple[Entries, Hashable]:
        """The stored entries and the stamp they were read at.

        Raises
        ------
        InvalidInputError
            The stored list cannot be read (naming where it is).
        """
        ...

    def exclusive(self) -> AbstractContextManager[Held]:
        """Hold the inter-process lock and yield the stored entries, read now; the caller
        changes ``entries`` in place and they are stored, durably, on a normal exit
        (nothing is stored when they did not change or the block raised); ``stamp`` is
        set then, under the lock."""
        ...


class JsonStateFile:
    """An :class:`EntrySource` in a JSON file (or only in memory when *path* is ``None``).

    Parameters
    ----------
    path : Path, optional
        The file; ``None`` keeps nothing on disk. A missing file holds no entries.
    kind : str
        The name of the list in the file (``placements``, ``alerts``, ``tokens``).
    mode : int
        Permissions of the file (``0o600`` for tokens).
    read_only : bool
        Never write the file (:meth:`exclusive` raises).

    Notes
    -----
    Changes are serialised across processes with ``fcntl.flock`` on ``<file>.lock`` and
    written atomically (temporary file, ``fsync``, rename); :meth:`stamp` is one
    ``os.stat``.
    """

    def __init__(
        self, path: Path | None, kind: str, *, mode: int = 0o644, read_only: bool = False
    ) -> None:
        self.path = path
        self.kind = kind
        self.mode = mode
        self.read_only = read_only
        self.where = str(path) if path is not None else f"{kind} (memory)"
        self._memory: Entries = []
        self._count = 0

    def stamp(self) -> Hashable:
        if self.path is None:
            return self._count
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load(self) -> tuple[Entries, Hashable]:
        if self.path is None:
            return [dict(e) for e in self._memory], self._count
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
        except FileNotFoundError:
            return [], None
        except OSError as exc:
            raise InvalidInputError(str(self.path), f"cannot read: {exc.strerror or exc}") from exc
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(str(self.path), f"not valid JSON: {exc}") from exc
        entries = doc.get(self.kind) if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise InvalidInputError(
                str(self.path), f"Expected an object with a list {self.kind!r}, got {doc!r:.80}"
            )
        return list(entries), (st.st_mtime_ns, st.st_size, st.st_ino)

    @contextmanager
    def exclusive(self) -> Iterator[Held]:
        if self.read_only:
            raise InvalidInputError(self.where, "opened read-only: changes are not allowed")
        if self.path is None:
            held = Held([dict(e) for e in self._memory])
            yield held
            if held.entries != self._memory:
                self._memory = [dict(e) for e in held.entries]
                self._count += 1
            held.stamp = self._count
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries, _ = self.load()  # raises for a corrupt file: never overwrite it
            before = [dict(e) for e in entries]
            held = Held(entries)
            yield held
            if held.entries != before:
                write_json_atomic(
                    self.path, {"type": f"yizhan-{self.kind}", self.kind: held.entries}
                )
                os.chmod(self.path, self.mode)
            held.stamp = self.stamp()
        finally:
            os.close(lock)  # releases the flock

    def read(self) -> Entries:
        """Entries stored in the file (``[]`` when there is none), as :func:`read_document`
        reports a bad file."""
        if self.path is None or not self.path.exists():
            return []
        return self.load()[0]


class SharedList(Generic[T]):
    """The in-memory view (*T*, parsed from the entries) of an :class:`EntrySource`.

    Parameters
    ----------
    source : EntrySource
    parse : callable
        Entries → the view (raises :class:`InvalidInputError` naming a bad entry).
    noun : str
        What the entries are, for the log (``tokens``).

    Raises
    ------
    InvalidInputError
        The source cannot be read or parsed at start.

    Notes
    -----
    :meth:`current` compares the source's stamp with the one it read (one ``os.stat`` for
    a file) and reads it again when it changed; a source that turns unreadable while the
    process runs is logged once and the last good view kept, and so is one that cannot be
    reached (a database down: reads keep answering from memory). :attr:`version` is bumped
    whenever the view is replaced, so that caches built from it can tell.
    """

    def __init__(
        self, source: EntrySource, parse: Callable[[Entries], T], noun: str = "entries"
    ) -> None:
        self.source = source
        self.noun = noun
        self._parse = parse
        self._lock = threading.RLock()
        entries, stamp = source.load()
        self._value = parse(entries)
        self._stamp: Hashable = stamp
        self._bad: Hashable = None
        self.version = 0

    def current(self) -> T:
        """The view of the entries as stored now."""
        stamp = self.source.stamp()
        if stamp == self._stamp or (stamp is not None and stamp == self._bad):
            return self._value
        with self._lock:
            try:
                entries, stamp = self.source.load()
                value = self._parse(entries)
            except StorageUnavailableError as exc:  # the database is down: answer from memory
                log.warning(
                    "%s cannot be read now; using what was read before: %s", self.source.where, exc
                )
                return self._value
            except InvalidInputError as exc:
                if stamp != self._bad:
                    log.error(
                        "%s changed but is unusable; keeping the last good %s: %s",
                        self.source.where,
                        self.noun,
                        exc,
                    )
                    self._bad = stamp
                return self._value
            self._install(value, stamp)
            return value

    def change(self, edit: Callable[[Entries], R]) -> R:
        """Change the stored entries under the source's lock: *edit* changes the list
        (fresh from the source) in place and its result is returned; the new view is
        installed at once. Nothing is stored when *edit* raises."""
        with self._lock:
            with self.source.exclusive() as held:
                out = edit(held.entries)
                value = self._parse(held.entries)
            self._install(value, held.stamp)
            return out

    def _install(self, value: T, stamp: Hashable) -> None:
        self._value = value
        self._stamp = stamp
        self._bad = None
        self.version += 1


__all__ = ["Entries", "EntrySource", "Held", "JsonStateFile", "SharedList"]
