"""``GET /nearest``: the nearest stations (and cooling buses) to a point, as GeoJSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from yizhan.geo.crs import point_to_wgs84
from yizhan.routes.deps import (
    COLLECTION_SCHEMA,
    FlagsDep,
    GeoJSONResponse,
    SearchDep,
    SettingsDep,
)
from yizhan.routes.params import CrsParam
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import StationFilter
from yizhan.stations.search import BusHit, StationSearch, bus_hit_feature, hit_feature
from yizhan.stations.vocab import Amenity, Category, Kind, Status

router = APIRouter(tags=["nearest"])


class NearestQuery(BaseModel):
    """Query parameters of `/nearest`, validated in one pydantic model (one pass in Rust
    instead of FastAPI's per-parameter machinery, which cost more than the search).
    Unknown parameters are ignored, as cache-busting clients expect."""

    model_config = ConfigDict(extra="ignore")

    lon: float = Field(
        ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees, in `crs`."
    )
    lat: float = Field(
        ge=-90, le=90, allow_inf_nan=False, description="Latitude, degrees, in `crs`."
    )
    k: int = Field(5, ge=1, description="How many stations (clamped to the server's maximum).")
    radius_m: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Only stations within this many metres."
    )
    amenity: list[Amenity] | None = Field(
        None, description="Required amenity; repeat for several (a station must offer all of them)."
    )
    kind: list[Kind] | None = Field(None, description="Kind of feature; repeatable.")
    category: list[Category] | None = Field(None, description="Station category; repeatable.")
    status: list[Status] | None = Field(
        None, description="Status; repeatable. Default: operational."
    )
    open_at: str | None = Field(
        None,
        description="Only stations open at this time: `now` or ISO 8601 (`2026-07-15T13:00`; "
        "a time without offset is in the registry's time zone). Buses are found where they "
        "stand then. Without it stations are not filtered by hours (buses: where they stand now).",
    )
    open_for_min: int | None = Field(
        None,
        ge=0,
        le=1440,
        description="Each result must stay open (a bus: stay where it stands) at least this "
        "many minutes after `open_at` (default `now`).",
    )
    stale: bool | None = Field(
        None,
        description="`false`: leave out stale stations (not verified within the server's "
        "stale_after_days); `true`: only stale ones.",
    )
    crs: CrsParam = Field(
        "wgs84",
        description="System of `lon`/`lat`: WGS-84 (GPS), GCJ-02 (Amap, Tencent) or BD-09 (Baidu).",
    )
    out_crs: CrsParam = Field("wgs84", description="System of the returned geometries.")


@router.get(
    "/nearest",
    response_class=GeoJSONResponse,
    summary="Nearest stations to a point",
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection ordered by distance; each Feature keeps its `id` "
            "and has `distance_m`, `bearing_deg`, `open_now` (true/false/null: unknown) and "
            "`next_change` (ISO time it next opens or closes) in its properties. A cooling bus "
            "is a Point where it stands, with `stop_id` (or `placement_id`) and `leaves_at`.",
            "content": {"application/geo+json": {"schema": COLLECTION_SCHEMA}},
        }
    },
)
async def nearest(
    search: SearchDep,
    settings: SettingsDep,
    flags: FlagsDep,
    q: Annotated[NearestQuery, Query()],
) -> GeoJSONResponse:
    """Exact great-circle nearest stations. By default only `operational` stations are returned.

    With `open_at` (or `open_for_min`) only stations open then (and staying open
    `open_for_min` minutes) are returned; unknown hours never count as open. Cooling
    buses appear where they stand at that time (at the current time without `open_at`).
    """
    flt = StationFilter.make(
        amenities=q.amenity,
        kinds=q.kind,
        categories=q.category,
        statuses=q.status if q.status else ("operational",),
        stale=q.stale,
        stale_before=flags.stale_before,
    )
    return GeoJSONResponse(
        nearest_collection(
            search,
            settings,
            q.lon,
            q.lat,
            q.k,
            flt,
            q.radius_m,
            q.open_at,
            q.open_for_min,
            q.crs,
            q.out_crs,
            flags=flags,
        )
    )


def nearest_collection(
    search: StationSearch,
    settings: Settings,
    lon: float,
    lat: float,
    k: int,
    flt: StationFilter,
    radius_m: float | None = None,
    open_at: str | None = None,
    open_for_min: int | None = None,
    crs: str = "wgs84",
    out_crs: str = "wgs84",
    *,
    flags: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `/nearest` answer as a GeoJSON FeatureCollection (also drawn by `/maps/nearest`).

    *flags* adds properties to each station and bus (``stale``, ``needs_check`` …)."""
    k_used = min(k, settings.max_k)
    filtered = open_at is not None or open_for_min is not None
    at = parse_time(open_at or "now", settings.timezone)
    ts = at.timestamp()
    qlon, qlat = point_to_wgs84(lon, lat, crs)
    hits = search.nearest_at(
        qlon,
        qlat,
        k_used,
        flt,
        ts,
        open_for_s=60.0 * (open_for_min or 0),
        max_distance_m=radius_m,
        only_open=filtered,
    )
    registry = search.registry
    features: list[dict[str, Any]] = []
    for h in hits:
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            features.append(bus_hit_feature(search, h, out_crs, flags(bus) if flags else None))
        else:
            is_open, change = search.status(h.index, ts)
            extra = {"open_now": is_open, "next_change": change}
            if flags is not None:
                extra.update(flags(registry.features[h.index]))
            features.append(hit_feature(registry, h, out_crs, extra))
    return {
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
            "stale": None if flt.freshness is None else flt.freshness == "stale",
            "open_at": at.isoformat(timespec="seconds") if filtered else None,
            "open_for_min": open_for_min,
            "time": at.isoformat(timespec="seconds"),
            "out_crs": out_crs,
        },
    }
