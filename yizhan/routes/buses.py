"""Cooling buses: ``GET /buses``, ``GET /buses/{id}``, ``GET /buses/{id}/timeline`` and
placements (``POST``/``GET /buses/{id}/placements``, ``DELETE .../{placement_id}``).

Reads are public. Writes need a bearer token: an operator token moves only that
operator's buses, an admin token any bus.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from yizhan.errors import InvalidInputError, PermissionDeniedError
from yizhan.query.features import Flags, geometry_in
from yizhan.routes.deps import (
    FastJSONResponse,
    FlagsDep,
    GeoJSONResponse,
    PrincipalDep,
    SearchDep,
    SettingsDep,
    StoreDep,
    body_error,
)
from yizhan.routes.params import OutCrs
from yizhan.stations.hours import localize, zone
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import Principal, may_move_bus

router = APIRouter(tags=["buses"])

BusId = Annotated[str, Path(description="The bus's id.")]


class PlacementIn(BaseModel):
    """Where to put a bus, and for which window."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "location": [113.7395, 34.7062],
                    "from": "2026-07-15T10:00",
                    "until": "2026-07-15T16:00",
                    "note": "moved to the east gate of the site",
                }
            ]
        },
    )

    location: list[float] = Field(description="`[lon, lat]`, WGS-84.")
    start: datetime = Field(
        alias="from",
        description="Start; ISO 8601, a time without offset is in the registry's time zone.",
    )
    until: datetime = Field(description="End (exclusive), after `from`; at most 7 days later.")
    note: str | None = Field(default=None, max_length=500)


def _flagged(feature: dict[str, Any], flags: Flags) -> dict[str, Any]:
    feature["properties"] = {**feature["properties"], **flags(feature)}
    return feature


def bus_feature(search: StationSearch, i: int, out_crs: str, ts: float) -> dict[str, Any]:
    """Bus *i* as a Feature (MultiPoint of its stops) with ``current`` and ``placements``."""
    fleet = search.fleet
    bus = fleet.buses[i]
    pos, _ = fleet.position(i, ts)
    props = dict(bus["properties"])
    props["current"] = pos.properties() if pos is not None else None
    if pos is not None and out_crs != "wgs84":
        props["current"]["location"] = geometry_in(
            {"type": "Point", "coordinates": [pos.lon, pos.lat]}, out_crs
        )["coordinates"]
    props["placements"] = [p.as_dict() for p in fleet.placements.for_bus(str(bus["id"]))]
    return {
        "type": "Feature",
        "id": bus["id"],
        "geometry": geometry_in(bus["geometry"], out_crs),
        "properties": props,
    }


def check_may_move(search: StationSearch, i: int, who: Principal) -> None:
    """Raise :class:`PermissionDeniedError` unless *who* may move bus *i*."""
    operator = search.fleet.operator(i)
    if not may_move_bus(who, operator):
        bus_id = search.fleet.buses[i]["id"]
        raise PermissionDeniedError(
            f"operator {who.name!r} may not move bus {bus_id!r}: it is operated by {operator!r}"
        )


@router.get(
    "/buses",
    response_class=GeoJSONResponse,
    summary="Every cooling bus, with where it stands now",
)
async def list_buses(
    search: SearchDep, flags: FlagsDep, out_crs: OutCrs = "wgs84"
) -> GeoJSONResponse:
    """A FeatureCollection of the cooling buses (geometry: MultiPoint of the stops), each
    with `current` (where it stands now: `stop_id` or `placement_id`, `location`,
    `leaves_at`; null when not in service) and its `placements` not yet ended."""
    ts = time.time()
    feats = [_flagged(bus_feature(search, i, out_crs, ts), flags) for i in range(len(search.fleet))]
    return GeoJSONResponse(
        {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats)}
    )


@router.get(
    "/buses/{bus_id}",
    response_class=GeoJSONResponse,
    summary="One cooling bus: schedule and current placement",
    responses={404: {"description": "No bus with this id."}},
)
async def get_bus(
    search: SearchDep,
    store: StoreDep,
    flags: FlagsDep,
    bus_id: BusId,
    out_crs: OutCrs = "wgs84",
) -> GeoJSONResponse:
    """The bus with its `stops` (the schedule), `current` position and `placements`."""
    i = search.fleet.index(bus_id)
    stored = search.fleet.buses[i]
    return GeoJSONResponse(
        _flagged(bus_feature(search, i, out_crs, time.time()), flags),
        headers={"ETag": store.etag(stored)},  # send as If-Match to PATCH /stations/{id}
    )


@router.get(
    "/buses/{bus_id}/timeline",
    response_class=FastJSONResponse,
    summary="Where a bus stands through a day",
    responses={404: {"description": "No bus with this id."}},
)
async def bus_timeline(
    search: SearchDep,
    bus_id: BusId,
    day: Annotated[
        date | None,
        Query(
            alias="date",
            description="The day (YYYY-MM-DD, in the bus's time zone); default today.",
        ),
    ] = None,
) -> FastJSONResponse:
    """Segments `{from, until, source: schedule|placement, stop_id|placement_id, name,
    location}` in time order; hours between segments the bus is not in service."""
    fleet = search.fleet
    i = fleet.index(bus_id)
    tz = fleet.tz[i]
    d = day or datetime.now(zone(tz)).date()
    segs = fleet.timeline(i, d)
    return FastJSONResponse(
        {
            "bus_id": bus_id,
            "date": d.isoformat(),
            "timezone": tz,
            "segments": [s.as_dict() for s in segs],
        }
    )


@router.get(
    "/buses/{bus_id}/placements",
    response_class=FastJSONResponse,
    summary="A bus's placements not yet ended",
    responses={404: {"description": "No bus with this id."}},
)
async def list_placements(search: SearchDep, bus_id: BusId) -> FastJSONResponse:
    """Active and upcoming placements of the bus, by start time."""
    search.fleet.index(bus_id)
    return FastJSONResponse(
        {"placements": [p.as_dict() for p in search.fleet.placements.for_bus(bus_id)]}
    )


@router.post(
    "/buses/{bus_id}/placements",
    response_class=FastJSONResponse,
    status_code=201,
    summary="Place a bus at a location for a time window",
    responses={
        401: {"description": "No or unknown bearer token."},
        403: {"description": "The token's operator does not run this bus."},
        404: {"description": "No bus with this id."},
        409: {"description": "The window overlaps another placement of the bus."},
        422: {"description": "Bad location, or a window that is empty, over or too long."},
    },
)
async def create_placement(
    search: SearchDep,
    settings: SettingsDep,
    who: PrincipalDep,
    bus_id: BusId,
    body: PlacementIn,
) -> FastJSONResponse:
    """Put the bus at `location` from `from` until `until`: this overrides its schedule for
    the window (it appears there in `/nearest`), and expires by itself. Needs the bus
    operator's token (`Authorization: Bearer …`) or an admin token."""
    fleet = search.fleet
    i = fleet.index(bus_id)
    check_may_move(search, i, who)
    tz = fleet.tz[i]
    try:
        placement = fleet.place(
            bus_id,
            body.location,
            localize(body.start, tz),
            localize(body.until, tz),
            who.name,
            body.note,
            timedelta(days=settings.max_placement_days),
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(placement.as_dict(), status_code=201)


@router.delete(
    "/buses/{bus_id}/placements/{placement_id}",
    response_class=FastJSONResponse,
    summary="Cancel a placement",
    responses={
        401: {"description": "No or unknown bearer token."},
        403: {"description": "The token's operator does not run this bus."},
        404: {"description": "No such bus or placement."},
    },
)
async def delete_placement(
    search: SearchDep,
    who: PrincipalDep,
    bus_id: BusId,
    placement_id: Annotated[str, Path(description="The placement's id.")],
) -> FastJSONResponse:
    """Delete the placement; the bus is back on its schedule for that window."""
    i = search.fleet.index(bus_id)
    check_may_move(search, i, who)
    removed = search.fleet.placements.remove(bus_id, placement_id)
    return FastJSONResponse(removed.as_dict())
