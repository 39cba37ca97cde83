"""Editing stations: ``POST /stations``, ``PATCH`` and ``DELETE /stations/{id}``,
``POST /stations/{id}/verify`` and ``GET /stations/{id}/history`` (paged).

Every write needs a bearer token whose role allows it (see ``docs/editing.md``) and, except
creating and verifying, the station's current ``ETag`` in ``If-Match``: without it the
answer is 428, with an old one 412, so that two editors never overwrite each other
silently. A change is on disk (and in the audit log) before the answer is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from yizhan.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from yizhan.routes.deps import (
    FEATURE_SCHEMA,
    CallerDep,
    FastJSONResponse,
    FlagsDep,
    GeoJSONResponse,
    PrincipalDep,
    StoreDep,
    body_error,
    geojson,
)
from yizhan.stations.editing import Found
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.tokens import Principal, may_read_reports

router = APIRouter(tags=["editing"])

T = TypeVar("T")

StationId = Annotated[str, Path(description="The station's (or cooling bus's) id.")]
IfMatch = Annotated[
    str | None,
    Header(
        description="The ETag of the version you edited (from GET /stations/{id}); "
        "required: 428 without it, 412 when someone changed the station since."
    ),
]

_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an unknown or revoked one."},
    403: {"description": "The token's role does not allow this on this station."},
    404: {"description": "No station or bus with this id."},
    412: {"description": "If-Match is not the current version (the ETag header has it)."},
    413: {"description": "The request body is too large."},
    422: {"description": "The change would make the station invalid (field and reason given)."},
    428: {"description": "If-Match is missing."},
    503: {
        "description": "Writes are refused for now (the registry file on disk is invalid, "
        "or the disk refused the write); the reason is given, and `Retry-After`."
    },
}

FEATURE_EXAMPLE = {
    "type": "Feature",
    "id": "zz-new-001",
    "geometry": {"type": "Point", "coordinates": [113.6650, 34.7570]},
    "properties": {
        "name": "金水路环卫工人爱心驿站",
        "kind": "station",
        "category": "union_station",
        "operator": "郑州市总工会",
        "amenities": ["drinking_water", "toilet", "seating", "air_conditioning"],
        "opening_hours": "Mo-Su 08:00-20:00",
    },
}


async def _write(func: Callable[..., T], *args: Any) -> T:
    """Run a store write in a worker thread (it fsyncs), turning input errors into a 422
    that names the body member."""
    try:
        return await asyncio.to_thread(func, *args)
    except InvalidInputError as exc:
        raise body_error(exc) from None


def feature_response(
    found: Found, flags: Callable[[dict[str, Any]], dict[str, Any]], status_code: int = 200
) -> GeoJSONResponse:
    """A stored feature with its flags, and its version in the ``ETag`` header."""
    f = found.feature
    out = {**f, "properties": {**f["properties"], **flags(f)}}
    return GeoJSONResponse(out, status_code=status_code, headers={"ETag": found.etag})


@router.post(
    "/stations",
    response_class=GeoJSONResponse,
    status_code=201,
    summary="Add a station",
    responses={
        201: geojson("The new station; `Location` and `ETag` headers.", FEATURE_SCHEMA),
        409: {"description": "A station or bus with this id exists."},
        **{k: v for k, v in _WRITE_RESPONSES.items() if k not in (404, 412, 428)},
    },
)
async def create_station(
    request: Request,
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    feature: Annotated[
        dict[str, Any],
        Body(
            description="A GeoJSON Feature (WGS-84 `[lon, lat]`) in the registry format; "
            "`id` is generated when absent.",
            examples=[FEATURE_EXAMPLE],
        ),
    ],
) -> GeoJSONResponse:
    """Add a station (admin, or an operator for a station with its own `operator`)."""
    found = await _write(store.create, feature, who)
    resp = feature_response(found, flags, status_code=201)
    resp.headers["Location"] = str(request.url_for("get_station", station_id=found.feature["id"]))
    return resp


@router.patch(
    "/stations/{station_id}",
    response_class=GeoJSONResponse,
    summary="Change a station (JSON merge patch)",
    responses={
        200: {"description": "The station as stored now, with its new ETag."},
        **_WRITE_RESPONSES,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {
                    "schema": {"type": "object"},
                    "example": {"properties": {"phone": "0371-12345678", "address": None}},
                },
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def patch_station(
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    station_id: StationId,
    patch: Annotated[Any, Body()],
    if_match: IfMatch = None,
) -> GeoJSONResponse:
    """Apply an RFC 7396 merge patch: members replace, `null` removes. A manager may edit
    its own stations, an operator the stations of its `operator`, an admin any."""
    found = await _write(store.update, station_id, patch, if_match, who)
    return feature_response(found, flags)


@router.delete(
    "/stations/{station_id}",
    response_class=GeoJSONResponse,
    summary="Remove a station (keeps it, with status removed)",
    responses={
        200: geojson("The station, now `status: removed`.", FEATURE_SCHEMA),
        **_WRITE_RESPONSES,
    },
)
async def remove_station(
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    station_id: StationId,
    reason: Annotated[
        str, Query(min_length=1, max_length=500, description="Why it is removed (kept).")
    ],
    if_match: IfMatch = None,
) -> GeoJSONResponse:
    """Set `status: removed` and `status_reason`; nothing is erased and history keeps every
    earlier version (admin, or the station's operator)."""
    found = await _write(store.remove, station_id, reason, if_match, who)
    return feature_response(found, flags)


class VerifyIn(BaseModel):
    """What a verification may say besides "checked on site now"."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000, description="What was checked.")


@router.post(
    "/stations/{station_id}/verify",
    response_class=GeoJSONResponse,
    summary="Record an on-site check",
    responses={
        200: geojson("The station with `last_verified_at` and `last_verified_by`.", FEATURE_SCHEMA),
        **{k: v for k, v in _WRITE_RESPONSES.items() if k != 428},
    },
)
async def verify_station(
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    station_id: StationId,
    body: Annotated[VerifyIn | None, Body()] = None,
    if_match: Annotated[str | None, Header(description="Optional: checked when given.")] = None,
) -> GeoJSONResponse:
    """Record that the station was checked now (its manager, operator or an admin): it is no
    longer stale, and problem reports made before now no longer mark it `needs_check`."""
    found = await _write(store.verify, station_id, who, if_match, body.note if body else None)
    return feature_response(found, flags)


def _may_see_names(who: Principal, store: RegistryStore, station_id: str) -> bool:
    try:
        props = store.find(station_id).feature["properties"]
    except NotFoundError:
        return who.admin
    return may_read_reports(who, station_id, props.get("operator"))


#: Entries in one page of history when the request does not say, and at most.
HISTORY_LIMIT = 100
HISTORY_MAX_LIMIT = 1000


@router.get(
    "/stations/{station_id}/history",
    response_class=FastJSONResponse,
    summary="Every change to a station, a page at a time",
    responses={
        401: {"description": "An unknown or revoked bearer token (none is needed)."},
        403: {"description": "`full` without the station's manager, operator or an admin token."},
        404: {"description": "No such station, and no history for this id."},
    },
)
async def station_history(
    request: Request,
    store: StoreDep,
    who: CallerDep,
    station_id: StationId,
    full: Annotated[
        bool,
        Query(
            description="Also each version before and after (managers of the station, its "
            "operator, admins)."
        ),
    ] = False,
    limit: Annotated[
        int,
        Query(ge=1, le=HISTORY_MAX_LIMIT, description="Entries per page."),
    ] = HISTORY_LIMIT,
    cursor: Annotated[
        int,
        Query(
            ge=0,
            le=10**9,
            description="Where the page starts: `next_cursor` of the previous page (0: the "
            "first page).",
        ),
    ] = 0,
    order: Annotated[
        Literal["oldest", "newest"],
        Query(description="`oldest` first (the default) or `newest` first."),
    ] = "oldest",
) -> FastJSONResponse:
    """The audit log of a station, oldest first, `limit` entries a page; `next` (also in a
    `Link` header) and `next_cursor` give the next page, `null` on the last. Only this
    station's entries are read. Without a token the actor is only a role; the station's
    manager, operator or an admin also see names, and with `full` each version before and
    after."""
    page = await asyncio.to_thread(store.history, station_id, limit, cursor, order == "newest")
    if not page.total:
        store.find(station_id)  # 404 for an unknown id
    privileged = who.role != "public" and _may_see_names(who, store, station_id)
    if full and not privileged:
        raise PermissionDeniedError(
            "full history (names and versions) needs the station's manager or operator "
            "token, or an admin token"
        )
    entries = []
    for row in page.entries:
        e = {k: row.get(k) for k in ("at", "action", "reason", "etag_before", "etag_after")}
        actor = row.get("actor") or {}
        e["actor"] = actor if privileged else {"role": actor.get("role")}
        e["changes"] = row.get("changes")
        if full:
            e["before"], e["after"] = row.get("before"), row.get("after")
        entries.append(e)
    headers = {}
    next_url = None
    if page.next_cursor is not None:
        url = request.url.include_query_params(cursor=page.next_cursor, limit=limit)
        next_url = f"{url.path}?{url.query}"
        headers["Link"] = f'<{next_url}>; rel="next"'
    body = {
        "id": station_id,
        "entries": entries,
        "total": page.total,
        "next_cursor": page.next_cursor,
        "next": next_url,
    }
    return FastJSONResponse(body, headers=headers)
