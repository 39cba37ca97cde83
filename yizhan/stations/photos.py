"""Dated photos of stations, added by their managers.

A photo is decoded with Pillow, turned upright (its EXIF orientation applied), resized to
at most ``max_px`` pixels wide and high, and **re-encoded without any metadata**: no EXIF
(camera, time, and above all the GPS position a phone writes), no XMP, no ICC profile, no
comments. JPEG and PNG become JPEG, WebP stays WebP. A 400-pixel thumbnail is made too.
Only the date the photo was taken is kept: given by the manager, else read from the EXIF
``DateTimeOriginal`` before the metadata is dropped, else the day of the upload.

Files, in the photo directory (``<registry>.photos/``)::

    index.jsonl            one line per change: {"op": "add", "id": …, "station_id": …,
                           "taken_on": "2026-07-15", "added_at": …, "by": {"role", "token_id"},
                           "format": "jpeg", "width": …, "height": …, "bytes": …}
                           or {"op": "remove", "id": …, "at": …, "by": …}
    ph_<16 hex>.jpg|.webp  the photo;  ph_<16 hex>.thumb.jpg|.webp  its thumbnail

A photo's files are written (``fsync``) before its index line, which is the commit point;
a file without a line (a crash in between) is never listed.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import secrets
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from PIL import Image, ImageOps, UnidentifiedImageError

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.stations.clock import Clock, iso, utc_now
from yizhan.stations.jsonio import fsync_dir
from yizhan.stations.tokens import Principal

#: Formats accepted, and the format each is stored in.
STORED_AS = {"JPEG": "jpeg", "PNG": "jpeg", "MPO": "jpeg", "WEBP": "webp"}
MEDIA_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp"}
SUFFIX = {"jpeg": ".jpg", "webp": ".webp"}
THUMB_PX = 400
#: Largest image accepted, in pixels (a "decompression bomb" beyond).
MAX_PIXELS = 60_000_000
PHOTO_ID = re.compile(r"^ph_[0-9a-f]{16}$")
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_IFD = 0x8769


@dataclass(frozen=True)
class Photo:
    """One photo of a station."""

    id: str
    station_id: str
    taken_on: date
    added_at: str
    format: str
    width: int
    height: int
    bytes: int
    by: dict[str, Any]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def as_dict(self, base: str = "") -> dict[str, Any]:
        """JSON form with the URLs of the photo and its thumbnail under *base*."""
        return {
            "id": self.id,
            "station_id": self.station_id,
            "taken_on": self.taken_on.isoformat(),
            "added_at": self.added_at,
            "width": self.width,
            "height": self.height,
            "url": f"{base}/photos/{self.id}",
            "thumbnail_url": f"{base}/photos/{self.id}?size=thumb",
            "by": {"role": self.by.get("role")},
        }


@dataclass(frozen=True)
class Processed:
    """A photo re-encoded without metadata, its thumbnail, and what was read from it."""

    data: bytes
    thumb: bytes
    format: str
    width: int
    height: int
    taken_on: date | None


def _exif_date(img: Image.Image) -> date | None:
    try:
        exif = img.getexif()
        value = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(0x0132)
        if isinstance(value, str) and len(value) >= 10:
            return date.fromisoformat(value[:10].replace(":", "-"))
    except (ValueError, TypeError, KeyError, OSError):
        pass
    return None


def _encode(img: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "webp":
        img.save(out, "WEBP", quality=quality, method=4)
    else:
        img.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()


def process_image(data: bytes, max_px: int = 1600) -> Processed:
    """Decode, turn upright, resize and re-encode a photo without its metadata.

    Raises
    ------
    InvalidInputError
        Naming ``body``: not a JPEG, PNG or WebP image, or too large in pixels.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data))
            fmt_in = opened.format or ""
            img: Image.Image = opened
            if fmt_in not in STORED_AS:
                raise InvalidInputError(
                    "body", f"Expected a JPEG, PNG or WebP image, got {fmt_in or 'unknown data'}"
                )
            if img.width * img.height > MAX_PIXELS:
                raise InvalidInputError(
                    "body",
                    f"Expected at most {MAX_PIXELS:,} pixels, got {img.width}×{img.height}",
                )
            taken = _exif_date(img)
            img = ImageOps.exif_transpose(img)
            img.load()
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            Image.DecompressionBombWarning,
            Image.DecompressionBombError,
        ) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError("body", f"Expected a JPEG, PNG or WebP image: {exc}") from None
    fmt = STORED_AS[fmt_in]
    if img.mode in ("RGBA", "LA", "P") and fmt == "jpeg":
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        img = flat
    elif img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")
    # A new image of the pixels only: nothing of the original's info (EXIF, XMP, ICC) follows.
    clean = Image.new(img.mode, img.size)
    clean.paste(img)
    clean.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    thumb = clean.copy()
    thumb.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
    return Processed(
        data=_encode(clean, fmt, 82),
        thumb=_encode(thumb, fmt, 75),
        format=fmt,
        width=clean.width,
        height=clean.height,
        taken_on=taken,
    )


class PhotoStore:
    """Photos of stations in a directory (``None``: memory only).

    Parameters
    ----------
    directory : Path, optional
        ``<registry>.photos/``.
    max_px : int
        Photos are resized to at most this many pixels wide and high.
    timezone : str
        Days (``taken_on``) are local days in this zone.
    clock : callable
        The current time (aware).
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        max_px: int = 1600,
        timezone: str = "Asia/Shanghai",
        clock: Clock = utc_now,
    ) -> None:
        self.directory = directory
        self.zone = ZoneInfo(timezone)
        self.max_px = max_px
        self.clock = clock
        self._lock = threading.Lock()
        self._photos: dict[str, Photo] = {}
        self._memory: dict[str, tuple[bytes, bytes]] = {}
        self._offset = 0
        self._ino: int | None = None

    @property
    def _index_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "index.jsonl"

    def _refresh(self) -> None:
        """Read index lines appended since the last look (lock held)."""
        if self.directory is None:
            return
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
                self._photos[str(d["id"])] = Photo(
                    id=str(d["id"]),
                    station_id=str(d["station_id"]),
                    taken_on=date.fromisoformat(d["taken_on"]),
                    added_at=str(d["added_at"]),
                    format=str(d["format"]),
                    width=int(d["width"]),
                    height=int(d["height"]),
                    bytes=int(d["bytes"]),
                    by=d.get("by") or {},
                )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            pass  # a torn line

    def _append(self, entry: dict[str, Any]) -> None:
        assert self.directory is not None
        fd = os.open(self._index_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            line = orjson.dumps(entry) + b"\n"
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_file(self, name: str, data: bytes) -> None:
        assert self.directory is not None
        path = self.directory / name
        tmp = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    # -- the API -------------------------------------------------------------------------------
    def add(
        self, station_id: str, data: bytes, who: Principal, taken_on: date | None = None
    ) -> Photo:
        """Store a photo of *station_id* (the caller checks who may); durable on return.

        Raises
        ------
        InvalidInputError
            Naming ``body`` (not an image) or ``taken_on`` (in the future).
        """
        now = self.clock()
        p = process_image(data, self.max_px)
        today = now.astimezone(self.zone).date()
        when = taken_on or p.taken_on or today
        if when > today and taken_on is None:  # a camera clock in the future: the upload's day
            when = today
        if when > today:
            raise InvalidInputError("taken_on", f"Expected a day not after today, got {when}")
        photo = Photo(
            id="ph_" + secrets.token_hex(8),
            station_id=station_id,
            taken_on=when,
            added_at=iso(now.astimezone(UTC)),
            format=p.format,
            width=p.width,
            height=p.height,
            bytes=len(p.data),
            by={"role": who.role, "token_id": who.token_id},
        )
        entry = {
            "op": "add",
            **photo.as_dict(),
            "format": p.format,
            "bytes": len(p.data),
            "by": photo.by,
        }
        for k in ("url", "thumbnail_url"):
            entry.pop(k)
        with self._lock:
            if self.directory is None:
                self._memory[photo.id] = (p.data, p.thumb)
                self._photos[photo.id] = photo
                return photo
            self.directory.mkdir(parents=True, exist_ok=True)
            suffix = SUFFIX[p.format]
            self._write_file(photo.id + suffix, p.data)
            self._write_file(photo.id + ".thumb" + suffix, p.thumb)
            fsync_dir(self.directory)
            self._append(entry)  # the commit point
            self._refresh()
        return photo

    def remove(self, station_id: str, photo_id: str, who: Principal) -> None:
        """Remove a photo of *station_id* (its files are deleted).

        Raises
        ------
        NotFoundError
            No such photo of this station.
        """
        photo = self.get(photo_id)
        if photo.station_id != station_id:
            raise NotFoundError(f"station {station_id!r} has no photo {photo_id!r}")
        with self._lock:
            if self.directory is None:
                self._photos.pop(photo_id, None)
                self._memory.pop(photo_id, None)
                return
            self._append(
                {
                    "op": "remove",
                    "id": photo_id,
                    "at": iso(self.clock().astimezone(UTC)),
                    "by": {"role": who.role, "token_id": who.token_id},
                }
            )
            self._refresh()
            suffix = SUFFIX[photo.format]
            for name in (photo_id + suffix, photo_id + ".thumb" + suffix):
                (self.directory / name).unlink(missing_ok=True)

    def get(self, photo_id: str) -> Photo:
        """One photo (any station).

        Raises
        ------
        NotFoundError
        """
        with self._lock:
            self._refresh()
            photo = self._photos.get(photo_id) if PHOTO_ID.match(photo_id) else None
        if photo is None:
            raise NotFoundError(f"no photo {photo_id!r}")
        return photo

    def for_station(self, station_id: str) -> list[Photo]:
        """The photos of a station, newest first (by the day taken, then added)."""
        with self._lock:
            self._refresh()
            found = [p for p in self._photos.values() if p.station_id == station_id]
        return sorted(found, key=lambda p: (p.taken_on, p.added_at), reverse=True)

    def latest_by_station(self) -> dict[str, date]:
        """Station id -> the day its newest photo was taken."""
        with self._lock:
            self._refresh()
            out: dict[str, date] = {}
            for p in self._photos.values():
                if p.station_id not in out or out[p.station_id] < p.taken_on:
                    out[p.station_id] = p.taken_on
        return out

    def content(self, photo_id: str, thumb: bool = False) -> tuple[bytes | Path, str]:
        """The photo (or thumbnail) as a file path (bytes in memory) and its media type.

        Raises
        ------
        NotFoundError
        """
        photo = self.get(photo_id)
        if self.directory is None:
            full, small = self._memory[photo_id]
            return (small if thumb else full), photo.media_type
        name = photo_id + (".thumb" if thumb else "") + SUFFIX[photo.format]
        path = self.directory / name
        if not path.exists():
            raise NotFoundError(f"the file of photo {photo_id!r} is missing")
        return path, photo.media_type


__all__ = ["MEDIA_TYPES", "PHOTO_ID", "Photo", "PhotoStore", "Processed", "process_image"]
