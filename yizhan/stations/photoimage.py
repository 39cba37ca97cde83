"""A station's photo: what is kept of it (:class:`Photo`) and how an upload is made safe
to keep (:func:`process_image`).

A photo is decoded with Pillow, turned upright (its EXIF orientation applied), resized to
at most ``max_px`` pixels wide and high, and **re-encoded without any metadata**: no EXIF
(camera, time, and above all the GPS position a phone writes), no XMP, no ICC profile, no
comments. JPEG and PNG become JPEG, WebP stays WebP. A 400-pixel thumbnail is made too.
Only the date the photo was taken is kept: given by the manager, else read from the EXIF
``DateTimeOriginal`` before the metadata is dropped, else the day of the upload.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from yizhan.errors import InvalidInputError

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


def photo_from_entry(d: dict[str, Any]) -> Photo:
    """A photo from its stored entry (an index line's ``op: add``, a row's ``entry``).

    Raises
    ------
    KeyError, TypeError, ValueError
        The entry is not a photo's.
    """
    return Photo(
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


def photo_entry(photo: Photo) -> dict[str, Any]:
    """The stored form of *photo* (without ``op``): what :func:`photo_from_entry` reads."""
    entry = {**photo.as_dict(), "format": photo.format, "bytes": photo.bytes, "by": photo.by}
    for k in ("url", "thumbnail_url"):
        entry.pop(k)
    return entry


__all__ = [
    "MEDIA_TYPES",
    "PHOTO_ID",
    "STORED_AS",
    "SUFFIX",
    "THUMB_PX",
    "Photo",
    "Processed",
    "photo_entry",
    "photo_from_entry",
    "process_image",
]
