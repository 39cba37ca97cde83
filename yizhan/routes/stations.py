"""``GET /stations`` (filtered, paged listing) and ``GET /stations/{id}``.

Every station returned carries ``open_now`` (true/false, null when its hours are unknown)
and ``next_change`` (ISO time it next opens or closes), evaluated at the request's time.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError, NotFoundError
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
    KindParam,
    OutCrs,
    StaleParam,
    StatusParam,
)
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import geometry_in

router = APIRouter(tags=["stations"])


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` in degrees; ``minlon > maxlon`` crosses the 180° meridian."""
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidInputError(
            "bbox", f"Expected 4 comma-separated numbers minlon,minlat,maxlon,maxlat, got {text!r}"
        )
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise InvalidInputError(
            "bbox", f"Expected numbers minlon,minlat,maxlon,maxlat, got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in vals):
        raise InvalidInputError("bbox", f"Expected finite numbers, got {text!r}")
    minlon, minlat, maxlon, maxlat = vals
    if not (-180 <= minlon <= 180 and -180 <= maxlon <= 180):
        raise InvalidInputError("bbox", f"Expected longitudes in -180..180, got {minlon}, {maxlon}")
    if not (-90 <= minlat <= 90 and -90 <= maxlat <= 90):
        raise InvalidInputError("bbox", f"Expected latitudes in -90..90, got {minlat}, {maxlat}")
    if minlat > maxlat:
        raise InvalidInputError("bbox", f"Expected minlat <= maxlat, got {minlat} > {maxlat}")
    return minlon, minlat, maxlon, maxlat


def bbox_mask(registry: Registry, bbox: tuple[float, float, float, float]) -> NDArray[np.bool_]:
    minlon, minlat, maxlon, maxlat = bbox
    lat_ok = (registry.lat >= minlat) & (registry.lat <= maxlat)
    if minlon <= maxlon:
        lon_ok = (registry.lon >= minlon) & (registry.lon <= maxlon)
    else:  # crosses the antimeridian (RFC 7946 §5.2)
        lon_ok = (registry.lon >= minlon) | (registry.lon <= maxlon)
    return np.asarray(lat_ok & lon_ok)


def feature_out(
    feature: dict[str, Any], out_crs: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """*feature* with its geometry in *out_crs* and *extra* properties added (a copy)."""
    if out_crs == "wgs84" and not extra:
        return feature
    out = {**feature, "geometry": geometry_in(feature["geometry"], out_crs)}
    if extra:
        out["properties"] = {**feature["properties"], **extra}
    return out


def hours_now(search: Any, i: int, ts: float) -> dict[str, Any]:
    """``open_now`` and ``next_change`` of station *i* at POSIX time *ts*."""
    is_open, change = search.status(i, ts)
    return {"open_now": is_open, "next_change": change}


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
    district: Annotated[list[str] | None, Query(description="District name; repeatable.")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, description="Text in name, English name, address or operator."),
    ] = None,
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
    offset: Annotated[int, Query(ge=0)] = 0,
    out_crs: OutCrs = "wgs84",
) -> GeoJSONResponse:
    """Stations matching every filter given, ordered by id. Statuses are not filtered unless
    asked. Each has `open_now`, `next_change`, `stale`, `needs_check` and
    `needs_check_reasons`."""
    flt = StationFilter.make(
        amenities=amenity,
        kinds=kind,
        categories=category,
        statuses=status or None,
        districts=district,
        stale=stale,
        stale_before=flags.stale_before,
    )
    mask = registry.mask(flt)
    if bbox is not None:
        mask &= bbox_mask(registry, parse_bbox(bbox))
    if q is not None:
        mask &= registry.text_match(q)
    if needs_check is not None and flags.reports is not None:
        flagged = np.zeros(len(registry), dtype=bool)
        for sid in flags.reports.station_ids():
            i = registry.index_of.get(sid)
            if i is not None and flags(registry.features[i])["needs_check"]:
                flagged[i] = True
        mask &= flagged if needs_check else ~flagged
    matched = np.flatnonzero(mask)
    matched = matched[np.argsort(registry.id_rank[matched], kind="stable")]
    page_size = min(limit or settings.default_limit, settings.max_limit)
    page = matched[offset : offset + page_size].tolist()
    ts = time.time()
    features = [
        feature_out(
            registry.features[i],
            out_crs,
            {**hours_now(search, i, ts), **flags(registry.features[i])},
        )
        for i in page
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
    i = registry.index_of.get(station_id)
    if i is None:
        if any(b["id"] == station_id for b in registry.buses):
            raise NotFoundError(
                f"no station with id {station_id!r}; it is a cooling bus: see /buses/{station_id}"
            )
        raise NotFoundError(f"no station with id {station_id!r}")
    f = registry.features[i]
    return GeoJSONResponse(
        feature_out(f, out_crs, {**hours_now(search, i, time.time()), **flags(f)}),
        headers={"ETag": store.etag(f)},
    )
