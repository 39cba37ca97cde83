"""``GET /isochrone`` and ``GET /stations/{id}/isochrone``: areas reachable on foot.

Both need the walking network the server loaded (``YIZHAN_NETWORK``); without one they
answer 422 naming ``metric``. The method is in docs/walking.md ("Isochrones").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from yizhan.query.listing import station_index
from yizhan.query.walking import isochrone_collection, parse_minutes, require
from yizhan.routes.deps import GeoJSONResponse, RegistryDep
from yizhan.routes.nearest import walking_of

router = APIRouter(tags=["walking"])

MinutesParam = Annotated[
    str,
    Query(
        description="Walking times, minutes, separated by commas (each above 0, at most 120; "
        "at most 12 values). Default 15.",
        examples=["5,10,15"],
    ),
]

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "A GeoJSON FeatureCollection: one (Multi)Polygon per walking time, "
        "largest first, with `minutes`, `walk_m` and `speed_kmh`.",
        "content": {"application/geo+json": {}},
    },
    422: {"description": "Bad `minutes`, no network (`metric`), or a point outside it."},
}


@router.get(
    "/isochrone",
    response_class=GeoJSONResponse,
    summary="Area reachable on foot from a point",
    responses=_RESPONSES,
)
async def point_isochrone(
    request: Request,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, degrees WGS-84.")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, degrees WGS-84.")],
    minutes: MinutesParam = "15",
) -> GeoJSONResponse:
    """The areas reachable on foot within each walking time from the point."""
    walking = require(walking_of(request), "walk")
    assert walking is not None
    return GeoJSONResponse(isochrone_collection(walking, lon, lat, parse_minutes(minutes)))


@router.get(
    "/stations/{station_id}/isochrone",
    response_class=GeoJSONResponse,
    summary="Area reachable on foot from a station",
    responses={**_RESPONSES, 404: {"description": "No station with this id."}},
)
async def station_isochrone(
    request: Request,
    registry: RegistryDep,
    station_id: Annotated[str, Path(description="The station's id.")],
    minutes: MinutesParam = "15",
) -> GeoJSONResponse:
    """The areas from which the station is reached on foot within each walking time
    (walks are the same both ways)."""
    walking = require(walking_of(request), "walk")
    assert walking is not None
    i = station_index(registry, station_id)
    lon, lat = float(registry.lon[i]), float(registry.lat[i])
    return GeoJSONResponse(
        isochrone_collection(
            walking, lon, lat, parse_minutes(minutes), {"station_id": registry.ids[i]}
        )
    )
