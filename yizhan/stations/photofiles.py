"""Where the files backend keeps photos (a :class:`~yizhan.stations.photos.PhotoShelf`): a
directory, or one process's memory.

Files, in the photo directory (``<registry>.photos/``)::

    index.jsonl            one line per change: {"op": "add", "id": …, "station_id": …,
                           "taken_on": "2026-07-15", "added_at": …, "by": {"role", "token_id"},
                           "format": "jpeg", "width": …, "height": …, "bytes": …}
                           or {"op": "remove", "id": …, "at": …, "by": …}
    ph_<16 hex>.jpg|.webp  the photo;  ph_<16 hex>.thumb.jpg|.webp  its thumbnail

A photo's files are written (``fsync``) before its index line, which is the commit point;
a file without a line (a crash in between) is never listed. Lines are appended under
``flock``; every process reads the lines appended since its last look (one ``os.stat``
when nothing changed).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from yizhan.stations.jsonio import fsync_dir, write_durably
from yizhan.stations.photoimage import SUFFIX, Photo, photo_entry, photo_from_entry


def _latest(photos: Any) -> dict[str, date]:
    out: dict[str, date] = {}
    for p in photos:
        if p.station_id not in out or out[p.station_id] < p.taken_on:
            out[p.station_id] = p.taken_on
    return out


class PhotoDir:
    """Photos in a directory with an append-only index (see the module docstring).

    Parameters
    ----------
    directory : Path
        ``<registry>.photos/`` (created on the first photo).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.where = str(directory)
        self._lock = threading.Lock()
        self._photos: dict[str, Photo] = {}
        self._offset = 0
        self._ino: int | None = None

    @property
    def _index_path(self) -> Path:
        return self.directory / "index.jsonl"

    def _refresh(self) -> None:
        """Read index lines appended since the last look (lock held)."""
        try:
            st = os.stat(self._index_path)
        except FileNotFoundError:
            return
        if st.st_ino == self._ino and st.st_size == self._offset:
            return
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._offset):
            self._photos.clear()
            self._offset = 0
        self._ino = st.st_ino
        with open(self._index_path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(st.st_size - self._offset)
        end = data.rfind(b"\n") + 1
        for raw in data[:end].split(b"\n"):
            if raw.strip():
                self._apply(raw)
        self._offset += end

    def _apply(self, raw: bytes) -> None:
        try:
            d = orjson.loads(raw)
            if d.get("op") == "remove":
                self._photos.pop(str(d["id"]), None)
            elif d.get("op") == "add":
                self._photos[str(d["id"])] = photo_from_entry(d)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            pass  # a torn line

    def _append(self, entry: dict[str, Any]) -> None:
        fd = os.open(self._index_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            line = orjson.dumps(entry) + b"\n"
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            write_durably(fd, line)
        finally:
            os.close(fd)

    def _write_file(self, name: str, data: bytes) -> None:
        path = self.directory / name
        tmp = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    # -- the PhotoShelf protocol ----------------------------------------------------------------
    def put(self, photo: Photo, data: bytes, thumb: bytes) -> None:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            suffix = SUFFIX[photo.format]
            self._write_file(photo.id + suffix, data)
            self._write_file(photo.id + ".thumb" + suffix, thumb)
            fsync_dir(self.directory)
            self._append({"op": "add", **photo_entry(photo)})  # the commit point
            self._refresh()

    def remove(self, photo: Photo, at: str, by: dict[str, Any]) -> bool:
        with self._lock:
            self._refresh()
            if photo.id not in self._photos:
                return False
            self._append({"op": "remove", "id": photo.id, "at": at, "by": by})
            self._refresh()
            suffix = SUFFIX[photo.format]
            for name in (photo.id + suffix, photo.id + ".thumb" + suffix):
                (self.directory / name).unlink(missing_ok=True)
            return True

    def get(self, photo_id: str) -> Photo | None:
        with self._lock:
            self._refresh()
            return self._photos.get(photo_id)

    def for_station(self, station_id: str) -> list[Photo]:
        with self._lock:
            self._refresh()
            return [p for p in self._photos.values() if p.station_id == station_id]

    def latest_by_station(self) -> dict[str, date]:
        with self._lock:
            self._refresh()
            return _latest(self._photos.values())

    def content(self, photo: Photo, thumb: bool) -> bytes | Path | None:
        path = self.directory / (photo.id + (".thumb" if thumb else "") + SUFFIX[photo.format])
        return path if path.exists() else None


class PhotoMemory:
    """Photos in this process's memory only (no registry file)."""

    where = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._photos: dict[str, Photo] = {}
        self._data: dict[str, tuple[bytes, bytes]] = {}

    def put(self, photo: Photo, data: bytes, thumb: bytes) -> None:
        with self._lock:
            self._data[photo.id] = (data, thumb)
            self._photos[photo.id] = photo

    def remove(self, photo: Photo, at: str, by: dict[str, Any]) -> bool:
        with self._lock:
            self._data.pop(photo.id, None)
            return self._photos.pop(photo.id, None) is not None

    def get(self, photo_id: str) -> Photo | None:
        with self._lock:
            return self._photos.get(photo_id)

    def for_station(self, station_id: str) -> list[Photo]:
        with self._lock:
            return [p for p in self._photos.values() if p.station_id == station_id]

    def latest_by_station(self) -> dict[str, date]:
        with self._lock:
            return _latest(self._photos.values())

    def content(self, photo: Photo, thumb: bool) -> bytes | Path | None:
        with self._lock:
            found = self._data.get(photo.id)
        if found is None:
            return None
        return found[1] if thumb else found[0]


__all__ = ["PhotoDir", "PhotoMemory"]
