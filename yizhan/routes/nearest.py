"""``GET /nearest``: the nearest stations (and cooling buses) to a point, as GeoJSON.

One operation, two routes:

* :data:`router` holds the FastAPI route: it documents the operation (OpenAPI, hence the
  schemathesis tests) and answers when the router is mounted on its own;
* :data:`fast_route` is a plain Starlette route that :func:`yizhan.api.create_app` puts
  ahead of the routers, and that answers ``GET /nearest`` in the app. It runs the same
  endpoint, :func:`nearest`, on the same state the FastAPI dependencies read
  (:mod:`yizhan.routes.deps`); the query is decoded and validated by :func:`parse_query`
  (the same :class:`NearestQuery`, Starlette's decoding, FastAPI's rules and error format).

Why: on one uvicorn worker, FastAPI's per-request machinery for an included router's
route (matching through the inclusion, dependency and query-model resolution, exit
stacks) cost more than the search and the answer together; measured in
``docs/benchmarks.md``. The tests check that both routes give the same status, headers
and bytes. No FastAPI dependency runs on the fast route: add none to :data:`router`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from yizhan.query.features import flags_today
from yizhan.query.nearest import nearest_collection, nearest_json, station_filter
from yizhan.query.walking import Walking, require
from yizhan.routes.deps import COLLECTION_SCHEMA, FlagsDep, GeoJSONResponse, SearchDep, SettingsDep
from yizhan.routes.params import CrsParam
from yizhan.stations.vocab import Amenity, Category, Kind, Status


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


def _is_list(annotation: Any) -> bool:
    """Whether a field is a list (``list[X]`` or ``list[X] | None``)."""
    return get_origin(annotation) is list or any(
        get_origin(a) is list for a in get_args(annotation)
    )


_FIELDS = frozenset(NearestQuery.model_fields)
#: The parameters that may repeat (FastAPI reads every value of a list field, and only the
#: last value of any other).
_REPEATABLE = frozenset(
    name for name, f in NearestQuery.model_fields.items() if _is_list(f.annotation)
)


def parse_query(query_string: bytes) -> NearestQuery:
    """The query of a request as FastAPI would give it to ``q: Annotated[NearestQuery,
    Query()]``: decoded like Starlette's ``QueryParams``, list fields with every value,
    others with the last one, unknown names ignored.

    Raises
    ------
    RequestValidationError
        With pydantic's errors under ``("query", name)``, as FastAPI reports them (422).
    """
    text = query_string.decode("latin-1")
    if "%" in text or "+" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
    else:  # nothing to unquote: what parse_qsl does then, without its per-pair overhead
        pairs = [
            (name, value) for name, _, value in (p.partition("=") for p in text.split("&") if p)
        ]
    params: dict[str, Any] = {}
    for name, value in pairs:
        if name in _REPEATABLE:
            params.setdefault(name, []).append(value)
        elif name in _FIELDS:
            params[name] = value
    try:
        return NearestQuery.model_validate(params)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


class FastNearest:
    """The ASGI app of :data:`fast_route`: :func:`nearest` on the app's state, with the
    query from :func:`parse_query`. Errors propagate to the app's exception handlers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        q = parse_query(scope["query_string"])
        state = scope["app"].state
        flags = flags_today(state.settings, getattr(state, "reports", None))
        walking = getattr(state, "walking", None)
        response = await nearest(state.store.search, state.settings, flags, q, walking)
        await response(scope, receive, send)


def _get_only(route: Route) -> Route:
    """*route* for ``GET`` only: Starlette adds ``HEAD`` to a ``GET`` route, FastAPI does not
    (``HEAD /nearest`` stays a 405)."""
    route.methods = {"GET"}
    return route


#: ``GET /nearest`` without FastAPI's per-request machinery (see the module docstring).
fast_route = _get_only(Route("/nearest", FastNearest(), methods=["GET"], include_in_schema=False))

router = APIRouter(tags=["nearest"])


def walking_of(request: Request) -> Walking | None:
    """The walking network the app loaded at start (``None`` without one)."""
    got = getattr(request.app.state, "walking", None)
    return got if isinstance(got, Walking) else None


async def get_walking(request: Request) -> Walking | None:
    return walking_of(request)


WalkingDep = Annotated[Walking | None, Depends(get_walking)]


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
    walking: WalkingDep = None,
) -> Response:
    """Exact great-circle (or, with `metric=walk`, walking) nearest stations. By default only
    `operational` stations are returned.

    With `open_at` (or `open_for_min`) only stations open then (and staying open
    `open_for_min` minutes) are returned; unknown hours never count as open. Cooling
    buses appear where they stand at that time (at the current time without `open_at`).
    """
    flt = station_filter(
        tuple(q.amenity) if q.amenity is not None else None,
        tuple(q.kind) if q.kind is not None else None,
        tuple(q.category) if q.category is not None else None,
        tuple(q.status) if q.status else ("operational",),
        q.stale,
        flags.stale_before if q.stale is not None else None,
    )
    if q.metric == "walk":
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
                walking=require(walking, q.metric),
            )
        )
    return Response(
        nearest_json(
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
        ),
        media_type=GeoJSONResponse.media_type,
    )
