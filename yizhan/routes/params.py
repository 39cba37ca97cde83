"""Query parameters shared by several routes, declared once."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import StringConstraints

from yizhan.stations.vocab import Amenity, Category, Kind, Status

CrsParam = Literal["wgs84", "gcj02", "bd09"]

Lon = Annotated[
    float,
    Query(
        ge=-180,
        le=180,
        allow_inf_nan=False,
        description="Longitude in degrees, in the system given by `crs`.",
    ),
]
Lat = Annotated[
    float,
    Query(
        ge=-90,
        le=90,
        allow_inf_nan=False,
        description="Latitude in degrees, in the system given by `crs`.",
    ),
]
InCrs = Annotated[
    CrsParam,
    Query(
        description="Coordinate system of `lon`/`lat`: WGS-84 (GPS), GCJ-02 (Amap, Tencent) or BD-09 (Baidu)."
    ),
]
OutCrs = Annotated[
    CrsParam,
    Query(
        description="Coordinate system of the returned geometries (distances are always exact, in metres)."
    ),
]
AmenityParam = Annotated[
    list[Amenity] | None,
    Query(description="Required amenity; repeat for several (a station must offer all of them)."),
]
KindParam = Annotated[list[Kind] | None, Query(description="Kind of feature; repeatable.")]
CategoryParam = Annotated[list[Category] | None, Query(description="Station category; repeatable.")]
StatusParam = Annotated[list[Status] | None, Query(description="Status; repeatable.")]

#: Longest free-text query value (a district name, a search text), in characters: the
#: schema states it and the server enforces it, so the two agree on what is accepted.
TEXT_PARAM_MAX = 200
DistrictParam = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=TEXT_PARAM_MAX)]] | None,
    Query(description="District name; repeatable."),
]
TextParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=TEXT_PARAM_MAX,
        description="Text in name, English name, address or operator.",
    ),
]
OpenAtParam = Annotated[
    str | None,
    Query(
        description="Only stations open at this time: `now` or ISO 8601 (`2026-07-15T13:00`; "
        "a time without offset is in the registry's time zone). Buses are found where they "
        "stand then. Without it stations are not filtered by hours (buses: where they stand now).",
        examples=["now", "2026-07-15T13:00"],
    ),
]
OpenForMinParam = Annotated[
    int | None,
    Query(
        ge=0,
        le=1440,
        description="Each result must stay open (a bus: stay where it stands) at least this "
        "many minutes after `open_at` (default `now`).",
    ),
]

StaleParam = Annotated[
    bool | None,
    Query(
        description="`false`: only stations verified within the server's stale_after_days "
        "(default 180); `true`: only stale ones (never verified, or not since)."
    ),
]
