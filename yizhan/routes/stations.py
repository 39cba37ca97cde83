"""``GET /stations`` (filtered, paged listing) and ``GET /stations/{id}``.

Every station returned carries ``open_now`` (true/false, null when its hours are unknown)
and ``next_change`` (ISO time it next opens or closes), evaluated at the request's time.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from yizhan.query.features import station_feature
from yizhan.query.listing import MAX_OFFSET, StationQuery, matching, station_index
from yizhan.routes.deps import (
    COLLECTION_SCHEMA,
    FEATURE_SCHEMA,
    FlagsDep,
    GeoJSONResponse,
    RegistryDep,
    SearchDep,
    SettingsDep,
    StoreDep,
)
from yizhan.routes.params import (
    AmenityParam,
    CategoryParam,
    DistrictParam,
    KindParam,
    OutCrs,
    StaleParam,
    StatusParam,
    TextParam,
)

router = APIRouter(tags=["stations"])


@router.get(
    "/stations",
    response_class=GeoJSONResponse,
    summary="List stations, filtered and paged",
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection, ordered by id.",
            "content": {"application/geo+json": {"schema": COLLECTION_SCHEMA}},
        }
    },
)
async def list_stations(
    request: Request,
    registry: RegistryDep,
    search: SearchDep,
    settings: SettingsDep,
    flags: FlagsDep,
    bbox: Annotated[
        str | None,
        Query(description="minlon,minlat,maxlon,maxlat (WGS-84); minlon > maxlon crosses 180°."),
    ] = None,
    kind: KindParam = None,
    category: CategoryParam = None,
    amenity: AmenityParam = None,
    status: Annotated[
        StatusParam, Query(description="Status; repeatable. Default: every status.")
    ] = None,
    district: DistrictParam = None,
    q: TextParam = None,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size (clamped to the server's maximum).")
    ] = None,
    stale: StaleParam = None,
    needs_check: Annotated[
        bool | None,
        Query(
            description="`true`: only stations several workers reported a problem at since "
            "their last verification; `false`: only the others."
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    out_crs: OutCrs = "wgs84",
) -> GeoJSONResponse:
    """Stations matching every filter given, ordered by id. Statuses are not filtered unless
    asked. Each has `open_now`, `next_change`, `stale`, `needs_check` and
    `needs_check_reasons`."""
    query = StationQuery.make(
        amenity, kind, category, status, district, stale, flags.stale_before, bbox, q, needs_check
    )
    matched = matching(registry, query, flags)
    page_size = min(limit or settings.default_limit, settings.max_limit)
    ts = time.time()
    features = [
        station_feature(search, i, ts, out_crs, flags)
        for i in matched[offset : offset + page_size].tolist()
    ]
    links = []
    if offset + page_size < len(matched):
        links.append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": str(
                    request.url.include_query_params(offset=offset + page_size, limit=page_size)
                ),
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": "application/geo+json",
                "href": str(
                    request.url.include_query_params(
                        offset=max(0, offset - page_size), limit=page_size
                    )
                ),
            }
        )
    return GeoJSONResponse(
        {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": len(matched),
            "numberReturned": len(features),
            "limit": page_size,
            "offset": offset,
            "links": links,
        }
    )


@router.get(
    "/stations/{station_id}",
    response_class=GeoJSONResponse,
    summary="One station",
    responses={
        200: {
            "description": "A GeoJSON Feature; the `ETag` header is its version.",
            "content": {"application/geo+json": {"schema": FEATURE_SCHEMA}},
        },
        404: {"description": "No station with this id."},
    },
)
async def get_station(
    registry: RegistryDep,
    search: SearchDep,
    store: StoreDep,
    flags: FlagsDep,
    station_id: Annotated[str, Path(description="The station's id.")],
    out_crs: OutCrs = "wgs84",
) -> GeoJSONResponse:
    """The station with this id, as a GeoJSON Feature; the `ETag` header is its version
    (send it as `If-Match` to change it)."""
    i = station_index(registry, station_id)
    return GeoJSONResponse(
        station_feature(search, i, time.time(), out_crs, flags),
        headers={"ETag": store.etag(registry.features[i])},
    )
