"""Photos of stations: ``POST /stations/{id}/photos`` (the station's manager or operator),
``GET /stations/{id}/photos``, ``GET /photos/{photo_id}`` and
``DELETE /stations/{id}/photos/{photo_id}``.

An upload is the image itself as the request body (``Content-Type: image/jpeg``,
``image/png`` or ``image/webp``, up to ``photo_max_bytes``); it is resized and re-encoded
without its metadata (EXIF, GPS position) before anything is stored
(:mod:`yizhan.stations.photos`), in the backend's photo store (files beside the registry, or
the ``photos`` table: :func:`yizhan.storage.open_backend`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException

from yizhan.errors import InvalidInputError, PermissionDeniedError
from yizhan.routes.deps import BackendDep, FastJSONResponse, PrincipalDep, StoreDep, body_error
from yizhan.routes.usage import DAY, parse_day
from yizhan.stations.tokens import may_edit

router = APIRouter(tags=["photos"])

StationId = Annotated[str, Path(description="The station's (or cooling bus's) id.")]
PhotoId = Annotated[str, Path(max_length=64, description="The photo's id (`ph_…`).")]
MEDIA = ("image/jpeg", "image/png", "image/webp")
#: The upload path, which the body-size limit lets carry ``photo_max_bytes``.
UPLOAD_PATH = r"^/stations/[^/]+/photos$"
_CACHE = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The photo: a JPEG, PNG or WebP image.",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA},
    }
}


@router.post(
    "/stations/{station_id}/photos",
    response_class=FastJSONResponse,
    status_code=201,
    summary="Add a dated photo of a station (manager, operator)",
    openapi_extra=_UPLOAD_BODY,
    responses={
        201: {"description": "The photo as stored, with its URLs."},
        401: {"description": "No bearer token, or an unknown one."},
        403: {"description": "Not this station's manager or operator, nor an admin."},
        404: {"description": "No station or bus with this id."},
        413: {"description": "The image is larger than photo_max_bytes."},
        415: {"description": "Not image/jpeg, image/png or image/webp."},
        422: {"description": "Not a readable image, or `taken_on` in the future."},
    },
)
async def add_photo(
    request: Request,
    store: StoreDep,
    backend: BackendDep,
    who: PrincipalDep,
    station_id: StationId,
    taken_on: Annotated[
        str | None,
        Query(
            pattern=DAY,
            description="When it was taken, YYYY-MM-DD (default: the photo's EXIF date, "
            "else today).",
        ),
    ] = None,
) -> FastJSONResponse:
    """The image is turned upright, resized to at most `photo_max_px` pixels, and
    re-encoded without EXIF (no GPS position), XMP or ICC data."""
    found = store.find(station_id)
    if not may_edit(who, station_id, found.feature["properties"].get("operator")):
        raise PermissionDeniedError(f"this token may not add photos of {station_id!r}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in MEDIA:
        raise HTTPException(415, f"Content-Type: Expected one of {', '.join(MEDIA)}, got {kind!r}")
    data = await request.body()
    try:
        when = parse_day(taken_on, ("query", "taken_on")) if taken_on else None
        photo = await asyncio.to_thread(backend.photos.add, station_id, data, who, when)
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(photo.as_dict(), status_code=201)


@router.get(
    "/stations/{station_id}/photos",
    response_class=FastJSONResponse,
    summary="The photos of a station, newest first",
    responses={404: {"description": "No station or bus with this id."}},
)
async def list_photos(
    store: StoreDep, backend: BackendDep, station_id: StationId
) -> FastJSONResponse:
    """Each photo's date taken, size and URLs (`url`, `thumbnail_url`)."""
    store.find(station_id)
    photos = await asyncio.to_thread(backend.photos.for_station, station_id)
    return FastJSONResponse({"id": station_id, "photos": [p.as_dict() for p in photos]})


@router.get(
    "/photos/{photo_id}",
    summary="A photo (or its thumbnail)",
    response_class=Response,
    responses={
        200: {
            "description": "The image.",
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA},
        },
        404: {"description": "No photo with this id."},
    },
)
async def get_photo(
    backend: BackendDep,
    photo_id: PhotoId,
    size: Annotated[Literal["full", "thumb"], Query(description="`thumb`: 400 px.")] = "full",
) -> Response:
    """Served with a long cache lifetime: a photo never changes (a new one gets a new id)."""
    content, media = await asyncio.to_thread(backend.photos.content, photo_id, size == "thumb")
    if isinstance(content, FilePath):
        return FileResponse(content, media_type=media, headers=_CACHE)
    return Response(content, media_type=media, headers=_CACHE)


@router.delete(
    "/stations/{station_id}/photos/{photo_id}",
    status_code=204,
    summary="Remove a photo (manager, operator)",
    responses={
        401: {"description": "No bearer token, or an unknown one."},
        403: {"description": "Not this station's manager or operator, nor an admin."},
        404: {"description": "No such station, or no such photo of it."},
    },
)
async def delete_photo(
    store: StoreDep,
    backend: BackendDep,
    who: PrincipalDep,
    station_id: StationId,
    photo_id: PhotoId,
) -> Response:
    found = store.find(station_id)
    if not may_edit(who, station_id, found.feature["properties"].get("operator")):
        raise PermissionDeniedError(f"this token may not remove photos of {station_id!r}")
    await asyncio.to_thread(backend.photos.remove, station_id, photo_id, who)
    return Response(status_code=204)


__all__ = ["MEDIA", "UPLOAD_PATH", "router"]
