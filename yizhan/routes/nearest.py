"""``GET /nearest``: the nearest stations to a point, as GeoJSON ordered by distance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from yizhan.geo.crs import point_to_wgs84
from yizhan.geo.search import hit_feature
from yizhan.routes.deps import GeoJSONResponse, SearchDep, SettingsDep
from yizhan.routes.params import (
    AmenityParam,
    CategoryParam,
    InCrs,
    KindParam,
    Lat,
    Lon,
    OutCrs,
    StatusParam,
)
from yizhan.stations.registry import StationFilter

router = APIRouter(tags=["nearest"])


@router.get(
    "/nearest",
    response_class=GeoJSONResponse,
    summary="Nearest stations to a point",
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection ordered by distance; each Feature keeps its `id` "
            "and has `distance_m` and `bearing_deg` in its properties.",
            "content": {"application/geo+json": {}},
        }
    },
)
async def nearest(
    search: SearchDep,
    settings: SettingsDep,
    lon: Lon,
    lat: Lat,
    k: Annotated[
        int, Query(ge=1, description="How many stations (clamped to the server's maximum).")
    ] = 5,
    radius_m: Annotated[
        float | None,
        Query(gt=0, allow_inf_nan=False, description="Only stations within this many metres."),
    ] = None,
    amenity: AmenityParam = None,
    kind: KindParam = None,
    category: CategoryParam = None,
    status: StatusParam = None,
    crs: InCrs = "wgs84",
    out_crs: OutCrs = "wgs84",
) -> GeoJSONResponse:
    """Exact great-circle nearest stations. By default only `operational` stations are returned."""
    k_used = min(k, settings.max_k)
    flt = StationFilter.make(
        amenities=amenity,
        kinds=kind,
        categories=category,
        statuses=status if status else ("operational",),
    )
    qlon, qlat = point_to_wgs84(lon, lat, crs)
    hits = search.nearest(qlon, qlat, k_used, flt, max_distance_m=radius_m)
    registry = search.registry
    features = [hit_feature(registry, h, out_crs) for h in hits]
    return GeoJSONResponse(
        {
            "type": "FeatureCollection",
            "features": features,
            "numberReturned": len(features),
            "query": {
                "lon": lon,
                "lat": lat,
                "crs": crs,
                "lon_wgs84": round(qlon, 7),
                "lat_wgs84": round(qlat, 7),
                "k": k_used,
                "radius_m": radius_m,
                "amenity": sorted(flt.amenities),
                "kind": sorted(flt.kinds) if flt.kinds else None,
                "category": sorted(flt.categories) if flt.categories else None,
                "status": sorted(flt.statuses) if flt.statuses else None,
                "out_crs": out_crs,
            },
        }
    )
