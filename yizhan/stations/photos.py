"""Dated photos of stations, added by their managers.

:class:`PhotoStore` keeps the rules: an upload is made safe to keep
(:func:`~yizhan.stations.photoimage.process_image`: decoded, turned upright, resized and
re-encoded **without any metadata** — no EXIF, no GPS position, no XMP, no ICC profile — with
a 400-pixel thumbnail), the day it was taken is decided (given by the manager, else the
EXIF ``DateTimeOriginal``, else the day of the upload; never in the future), and a photo is
removed only through its own station. Where photos are kept is a :class:`PhotoShelf` the
storage backend gives it:

- files (:class:`~yizhan.stations.photofiles.PhotoDir`): ``<registry>.photos/`` with the
  images, their thumbnails and an append-only ``index.jsonl`` (the commit point);
- PostgreSQL (:class:`~yizhan.storage.pg_records.PgPhotos`): the ``photos`` table, the
  image and thumbnail as ``bytea``;
- or one process's memory (:class:`~yizhan.stations.photofiles.PhotoMemory`).

Every process sees the photos any other added or removed.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.stations.clock import Clock, iso, utc_now
from yizhan.stations.photofiles import PhotoDir, PhotoMemory
from yizhan.stations.photoimage import (
    MEDIA_TYPES,
    PHOTO_ID,
    Photo,
    Processed,
    process_image,
)
from yizhan.stations.tokens import Principal


class PhotoShelf(Protocol):
    """Where photos are kept, shared by every process.

    Attributes
    ----------
    where : str
        What to name in messages (a directory, a table).
    """

    where: str

    def put(self, photo: Photo, data: bytes, thumb: bytes) -> None:
        """Keep *photo* with its image and thumbnail, durably before this returns."""
        ...

    def remove(self, photo: Photo, at: str, by: dict[str, Any]) -> bool:
        """Remove *photo* (recording when and by whom); ``False`` if it was gone already."""
        ...

    def get(self, photo_id: str) -> Photo | None:
        """The photo with this id (not removed), as any process added it."""
        ...

    def for_station(self, station_id: str) -> list[Photo]:
        """The photos of a station (any order)."""
        ...

    def latest_by_station(self) -> dict[str, date]:
        """Station id -> the day its newest photo was taken."""
        ...

    def content(self, photo: Photo, thumb: bool) -> bytes | Path | None:
        """The image (or thumbnail) of *photo*: its bytes or its file; ``None`` if missing."""
        ...


class PhotoStore:
    """Photos of stations (see the module docstring).

    Parameters
    ----------
    directory : Path, optional
        ``<registry>.photos/``; ``None`` (and no *source*): memory only.
    max_px : int
        Photos are resized to at most this many pixels wide and high.
    timezone : str
        Days (``taken_on``) are local days in this zone.
    clock : callable
        The current time (aware).
    source : PhotoShelf, optional
        Where photos are kept instead of *directory* (a storage backend's table).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        max_px: int = 1600,
        timezone: str = "Asia/Shanghai",
        clock: Clock = utc_now,
        source: PhotoShelf | None = None,
    ) -> None:
        self.directory = directory
        self.zone = ZoneInfo(timezone)
        self.max_px = max_px
        self.clock = clock
        self.shelf: PhotoShelf = (
            source
            if source is not None
            else (PhotoDir(directory) if directory is not None else PhotoMemory())
        )

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
        self.shelf.put(photo, p.data, p.thumb)
        return photo

    def remove(self, station_id: str, photo_id: str, who: Principal) -> None:
        """Remove a photo of *station_id* (its image is deleted).

        Raises
        ------
        NotFoundError
            No such photo of this station.
        """
        photo = self.get(photo_id)
        if photo.station_id != station_id:
            raise NotFoundError(f"station {station_id!r} has no photo {photo_id!r}")
        by = {"role": who.role, "token_id": who.token_id}
        if not self.shelf.remove(photo, iso(self.clock().astimezone(UTC)), by):
            raise NotFoundError(f"no photo {photo_id!r}")

    def get(self, photo_id: str) -> Photo:
        """One photo (any station).

        Raises
        ------
        NotFoundError
        """
        photo = self.shelf.get(photo_id) if PHOTO_ID.match(photo_id) else None
        if photo is None:
            raise NotFoundError(f"no photo {photo_id!r}")
        return photo

    def for_station(self, station_id: str) -> list[Photo]:
        """The photos of a station, newest first (by the day taken, then added)."""
        found = self.shelf.for_station(station_id)
        return sorted(found, key=lambda p: (p.taken_on, p.added_at), reverse=True)

    def latest_by_station(self) -> dict[str, date]:
        """Station id -> the day its newest photo was taken."""
        return self.shelf.latest_by_station()

    def content(self, photo_id: str, thumb: bool = False) -> tuple[bytes | Path, str]:
        """The photo (or thumbnail) as a file path (or its bytes) and its media type.

        Raises
        ------
        NotFoundError
        """
        photo = self.get(photo_id)
        found = self.shelf.content(photo, thumb)
        if found is None:
            raise NotFoundError(f"the file of photo {photo_id!r} is missing")
        return found, photo.media_type


__all__ = [
    "MEDIA_TYPES",
    "PHOTO_ID",
    "Photo",
    "PhotoShelf",
    "PhotoStore",
    "Processed",
    "process_image",
]
