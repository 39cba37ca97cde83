"""``GET /nearest``: the nearest stations (and cooling buses) to a point, as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from yizhan.query.nearest import nearest_collection
from yizhan.query.walking import Walking, require
from yizhan.routes.deps import COLLECTION_SCHEMA, FlagsDep, GeoJSONResponse, SearchDep, SettingsDep
from yizhan.routes.params import CrsParam
from yizhan.stations.registry import StationFilter
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
    k: int | None = Field(
        None,
        ge=1,
        description="How many stations (default: the server's `default_k`, 5 unless "
        "configured; clamped to the server's `max_k`).",
    )
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
    metric: Literal["great_circle", "walk"] = Field(
        "great_circle",
        description="`great_circle` (default) or `walk`: the k nearest on foot along the "
        "server's street network (exact; each result gets `walk_m` and `walk_min`, "
        "`radius_m` is a walking distance). 422 naming `metric` when the server has no "
        "network, naming `lon/lat` when the point is outside the network's area.",
    )


def walking_of(request: Request) -> Walking | None:
    """The walking network the app loaded at start (``None`` without one)."""
    got = getattr(request.app.state, "walking", None)
    return got if isinstance(got, Walking) else None


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
    request: Request,
) -> GeoJSONResponse:
    """Exact great-circle (or, with `metric=walk`, walking) nearest stations. By default only
    `operational` stations are returned.

    With `open_at` (or `open_for_min`) only stations open then (and staying open
    `open_for_min` minutes) are returned; unknown hours never count as open. Cooling
    buses appear where they stand at that time (at the current time without `open_at`).
    """
    walking = require(walking_of(request), q.metric)
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
            walking=walking,
        )
    )
