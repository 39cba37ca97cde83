"""Planners' endpoints: ``GET /coverage`` and ``POST /analysis/site``.

The study (demand and districts) is read from the files the settings name
(``YIZHAN_DEMAND``, ``YIZHAN_DISTRICTS`` …) on first use and kept in ``app.state``; for the
bundled registry it defaults to a hexagon grid over the bundled Zhengzhou districts.

Analyses (these two and the planner map) run in processes of their own
(:class:`yizhan.query.analysis.AnalysisRunner`: bounded, killed at a hard time limit,
memory-limited), behind :func:`analysis_caller` (``YIZHAN_ANALYSIS_ACCESS``: anyone, or
holders of a token) and :func:`run_analysis` (per-client hourly quota and concurrency, 429).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from yizhan.errors import AuthenticationError, ConflictError, InvalidInputError, RateLimitedError
from yizhan.geo.coverage import select_stations
from yizhan.query.analysis import AnalysisRunner, coverage_analysis, site_analysis
from yizhan.query.search import service_points
from yizhan.query.studies import Study, StudySpec, default_spec, load_study
from yizhan.query.walk_analysis import walk_coverage_analysis, walk_site_analysis
from yizhan.query.walking import require
from yizhan.routes.clients import SharedLimit, client_key
from yizhan.routes.deps import (
    FastJSONResponse,
    RegistryDep,
    SearchDep,
    SettingsDep,
    bearer,
    body_error,
    get_caller,
    get_tokens,
)
from yizhan.routes.nearest import walking_of
from yizhan.routes.params import (
    AmenityParam,
    CategoryParam,
    KindParam,
    OpenAtParam,
    OpenForMinParam,
    StatusParam,
)
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.models import check_lon_lat
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import TokenStore
from yizhan.stations.vocab import Amenity, Category, Kind, Status
from yizhan.storage import RateLimits

router = APIRouter(tags=["planning"])

MetricParam = Annotated[
    Literal["great_circle", "walk"],
    Query(
        description="`great_circle` (within `radius_m`) or `walk`: within `minutes` on foot "
        "along the server's street network (one multi-source search from every station); "
        "the answer then also has the great-circle summary within `radius_m` and a "
        "per-district `side_by_side` table. 422 naming `metric` without a network."
    ),
]
MinutesParam = Annotated[
    float,
    Query(gt=0, le=120, allow_inf_nan=False, description="With `metric=walk`: minutes on foot."),
]
_study_lock = threading.Lock()
_gate_lock = threading.Lock()
T = TypeVar("T")

log = logging.getLogger("yizhan")

#: Modules holding what analysis processes run (imported once by their forkserver).
ANALYSIS_MODULES = (
    "yizhan.query.analysis",
    "yizhan.query.export_study",
    "yizhan.query.walk_analysis",
    "yizhan.routes.maps",
)


def analysis_runner(settings: Settings) -> AnalysisRunner:
    """The runner of an app's analyses, sized by the settings."""
    return AnalysisRunner(
        workers=settings.analysis_workers,
        queue=settings.analysis_queue,
        timeout_s=settings.analysis_timeout_s,
        memory_mb=settings.analysis_memory_mb,
        preload=ANALYSIS_MODULES,
    )


class AnalysisGate:
    """Per-client limits of analyses: starts per hour (counted by every process of the
    deployment) and analyses at once (in this process, which runs them)."""

    def __init__(self, settings: Settings, limits: RateLimits) -> None:
        self.rate = SharedLimit(
            limits,
            "analysis",
            settings.analysis_rate_per_hour,
            3600.0,
            "analyses started by this client (YIZHAN_ANALYSIS_RATE_PER_HOUR)",
        )
        self.per_client = settings.analysis_per_client
        self.active: dict[str, int] = {}


def _gate(request: Request) -> tuple[AnalysisRunner, AnalysisGate]:
    state = request.app.state
    with _gate_lock:
        runner: AnalysisRunner | None = getattr(state, "analysis", None)
        if runner is None:
            runner = analysis_runner(state.settings)
            state.analysis = runner
        gate: AnalysisGate | None = getattr(state, "analysis_gate", None)
        if gate is None or gate.rate.limits is not state.rate_limits:
            gate = AnalysisGate(state.settings, state.rate_limits)
            state.analysis_gate = gate
    return runner, gate


async def analysis_caller(
    request: Request,
    settings: SettingsDep,
    tokens: Annotated[TokenStore, Depends(get_tokens)],
) -> str:
    """Who runs an analysis (their client key), if they may.

    With ``YIZHAN_ANALYSIS_ACCESS=token`` a valid bearer token (any role) is needed;
    with ``public`` (the default) anyone may and a token is not looked at. (The token is
    read here rather than declared as a dependency: the schema then does not claim that
    a token is needed on a server where it is not.)

    Raises
    ------
    AuthenticationError
        ``token`` access and no token, or an unknown one (401).
    """
    if settings.analysis_access == "token":
        credentials = await bearer(request)
        who = await get_caller(request, tokens, credentials)
        if who.role == "public":
            raise AuthenticationError(
                "analyses need a bearer token on this server (YIZHAN_ANALYSIS_ACCESS=token): "
                "send 'Authorization: Bearer <token>'"
            )
    return client_key(request, settings)


AnalysisCaller = Annotated[str, Depends(analysis_caller)]


async def run_analysis(request: Request, client: str, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in an analysis process, counted against *client*'s limits.

    Raises
    ------
    RateLimitedError
        *client* started ``analysis_rate_per_hour`` analyses in the last hour, or has
        ``analysis_per_client`` running or waiting (429, ``Retry-After``).
    AnalysisUnavailableError
        No worker free and the queue full, or the analysis was stopped (503).
    """
    runner, gate = _gate(request)
    with _gate_lock:
        if gate.active.get(client, 0) >= gate.per_client:
            raise RateLimitedError(
                f"this client already has {gate.per_client} analyses running or waiting "
                "(YIZHAN_ANALYSIS_PER_CLIENT): wait for them",
                runner.retry_after_s(),
            )
        gate.active[client] = gate.active.get(client, 0) + 1
    try:
        await asyncio.to_thread(gate.rate.hit, client)
    except BaseException:
        _release(gate, client)
        raise
    try:
        return await runner.run(func, *args)
    finally:
        _release(gate, client)


def _release(gate: AnalysisGate, client: str) -> None:
    """One analysis of *client* is over (or was refused)."""
    with _gate_lock:
        left = gate.active[client] - 1
        if left:
            gate.active[client] = left
        else:
            del gate.active[client]


def check_radius_limit(radius_m: float, settings: Settings) -> float:
    """*radius_m*, or :class:`InvalidInputError` above ``analysis_max_radius_m``."""
    if radius_m > settings.analysis_max_radius_m:
        raise InvalidInputError(
            "radius_m",
            f"Expected at most {settings.analysis_max_radius_m:g} m on this server "
            f"(YIZHAN_ANALYSIS_MAX_RADIUS_M), got {radius_m:g}",
        )
    return radius_m


def study_spec(settings: Settings, registry: Registry) -> StudySpec | None:
    """The study the settings describe, or ``None`` when there is no demand to analyse."""
    if settings.districts is None and settings.demand is None:
        return default_spec(registry.path, settings.hex_size_m)  # a bundled study, or None
    return StudySpec(
        demand=settings.demand,
        weight=settings.demand_weight,
        districts=settings.districts,
        district_field=settings.district_field,
        crs=settings.demand_crs,
        hex_size_m=settings.hex_size_m,
    )


def get_study(request: Request, settings: SettingsDep, registry: RegistryDep) -> Study:
    """The study, loaded once (first use) and cached in ``app.state``."""
    study: Study | None = getattr(request.app.state, "study", None)
    if study is not None:
        return study
    spec = study_spec(settings, registry)
    if spec is None:
        raise ConflictError(
            "no demand configured for this registry: set YIZHAN_DEMAND (points or polygons) "
            "or YIZHAN_DISTRICTS (a hexagon grid over them)"
        )
    return _load_study(request.app.state, spec)


def _load_study(state: Any, spec: StudySpec) -> Study:
    """The app's study, loaded from *spec* by the first caller (the others wait for it)."""
    with _study_lock:
        study: Study | None = getattr(state, "study", None)
        if study is None:
            study = load_study(spec)
            state.study = study
    return study


StudyDep = Annotated[Study, Depends(get_study)]


def warm_walking(app: Any) -> None:
    """Load the study and snap its demand onto the walking network now (called on a
    thread at start-up), so that the first walking analysis does not wait for it (2–3 s
    per million demand points). Without a network or a study nothing is done; a study
    that cannot be loaded is logged here and answered as an error by the first request."""
    state = app.state
    walking = getattr(state, "walking", None)
    if walking is None:
        return
    try:
        spec = study_spec(state.settings, state.store.registry)
        if spec is None:
            return
        walking.demand_table(_load_study(state, spec).demand)
    except Exception:  # the request that needs the study reports it properly
        log.exception("preparing the study's demand on the walking network failed")


def get_study_or_none(
    request: Request, settings: SettingsDep, registry: RegistryDep
) -> Study | None:
    """The study, or ``None`` when no demand is configured (maps then show stations only)."""
    if study_spec(settings, registry) is None:
        return None
    return get_study(request, settings, registry)


OptionalStudyDep = Annotated[Study | None, Depends(get_study_or_none)]

#: Routes that need a demand layer answer 409 without one.
NO_DEMAND: dict[int | str, dict[str, Any]] = {
    409: {"description": "No demand is configured (YIZHAN_DEMAND or YIZHAN_DISTRICTS)."}
}
#: What every analysis route may answer besides its result.
ANALYSIS_ERRORS: dict[int | str, dict[str, Any]] = {
    **NO_DEMAND,
    401: {
        "description": "YIZHAN_ANALYSIS_ACCESS=token and no valid bearer token, or an "
        "unknown token."
    },
    422: {"description": "A bad parameter, or radius_m above YIZHAN_ANALYSIS_MAX_RADIUS_M."},
    429: {
        "description": "Too many analyses (or failed tokens) from this client; "
        "`Retry-After` says when."
    },
    503: {
        "description": "Every analysis worker is busy (`Retry-After`), or the analysis was "
        "stopped at the server's time or memory limit."
    },
}

RadiusParam = Annotated[
    float,
    Query(
        gt=0,
        le=100_000,
        allow_inf_nan=False,
        description="Coverage radius in metres (default 1000).",
    ),
]


async def station_filter(
    amenity: AmenityParam = None,
    kind: KindParam = None,
    category: CategoryParam = None,
    status: StatusParam = None,
) -> StationFilter:
    """Which stations count (default: operational ones), from query parameters."""
    return StationFilter.make(
        amenities=amenity, kinds=kind, categories=category, statuses=status or ("operational",)
    )


FilterDep = Annotated[StationFilter, Depends(station_filter)]


def _service(
    search: StationSearch,
    settings: Settings,
    flt: StationFilter,
    open_at: str | None,
    open_for_min: int | None,
) -> tuple[Any, Any, str]:
    """:func:`yizhan.stations.search.service_points` for the served registry."""
    at = None
    if open_at is not None or open_for_min is not None:
        at = parse_time(open_at or "now", settings.timezone, field="open_at")
    return service_points(search.registry, flt, at, open_for_min, lambda: search)


@router.get(
    "/coverage",
    summary="Share of demand within reach of a station, per district",
    responses=ANALYSIS_ERRORS,
)
async def get_coverage(
    request: Request,
    client: AnalysisCaller,
    search: SearchDep,
    settings: SettingsDep,
    study: StudyDep,
    flt: FilterDep,
    radius_m: RadiusParam = 1000.0,
    open_at: OpenAtParam = None,
    open_for_min: OpenForMinParam = None,
    access: Annotated[
        bool,
        Query(
            description="Also 2SFCA accessibility per district (`access` member); with "
            "`metric=walk` the catchments are the demand within `minutes` on foot."
        ),
    ] = False,
    metric: MetricParam = "great_circle",
    minutes: MinutesParam = 15.0,
) -> FastJSONResponse:
    """Weighted share of demand with a station within `radius_m` (same exact distances as
    `/nearest`), per-district rows, and the distance-to-nearest distribution. With
    `open_at` only stations open then count, and cooling buses where they stand then."""
    check_radius_limit(radius_m, settings)
    walking = require(walking_of(request), metric)
    stations, mask, described = _service(search, settings, flt, open_at, open_for_min)
    counted = select_stations(stations, mask)
    if walking is not None:
        # On foot, in an analysis process too: it maps the server's network file and gets
        # the stations and demand snapped here (the demand once per study, on a thread),
        # so that it builds no snapping index.
        spec = await asyncio.to_thread(
            walking.spec, search.registry, study.demand, [(counted.lon, counted.lat)]
        )
        out = await run_analysis(
            request,
            client,
            walk_coverage_analysis,
            spec,
            counted,
            study.demand,
            radius_m,
            minutes,
            access,
        )
    else:
        out = await run_analysis(
            request, client, coverage_analysis, counted, study.demand, radius_m, access
        )
    out["demand"] = study.description
    out["stations"] = described
    return FastJSONResponse(out)


class SiteRequest(BaseModel):
    """Where should `n_new` new stations go?"""

    model_config = ConfigDict(extra="forbid")

    n_new: int = Field(ge=1, le=200, description="How many new stations.")
    radius_m: float = Field(1000.0, gt=0, le=100_000, allow_inf_nan=False)
    candidates: list[list[float]] | None = Field(
        None,
        description="Candidate sites as `[lon, lat]` (WGS-84); default: the demand points not "
        "covered (within `radius_m`, or with `metric=walk` within `minutes` on foot).",
    )
    amenity: list[Amenity] | None = None
    kind: list[Kind] | None = None
    category: list[Category] | None = None
    status: list[Status] | None = None
    time_limit_s: float = Field(30.0, gt=0, le=300, allow_inf_nan=False)
    open_at: str | None = Field(
        None,
        description="Count only stations open then (and buses standing then): where should "
        "`n_new` more buses stand at this time? `now` or ISO 8601.",
    )
    open_for_min: int | None = Field(None, ge=0, le=1440)
    metric: Literal["great_circle", "walk"] = Field(
        "great_circle",
        description="`walk`: cover within `minutes` on foot along the server's street network "
        "(cover sets from bounded searches from the candidates); `radius_m` is then unused.",
    )
    minutes: float = Field(15.0, gt=0, le=120, allow_inf_nan=False)

    @field_validator("candidates")
    @classmethod
    def _positions(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        if value is not None:
            if not value:
                raise ValueError("Expected at least one candidate [lon, lat], got an empty list")
            for i, pos in enumerate(value):
                try:
                    check_lon_lat(pos)
                except ValueError as exc:
                    raise ValueError(f"candidate {i}: {exc}") from None
        return value


@router.post(
    "/analysis/site",
    summary="Suggest sites for new stations (maximal covering)",
    responses=ANALYSIS_ERRORS,
)
async def post_site(
    request: Request,
    client: AnalysisCaller,
    body: SiteRequest,
    search: SearchDep,
    settings: SettingsDep,
    study: StudyDep,
) -> FastJSONResponse:
    """Exact maximal-covering answer (HiGHS) with existing stations kept, the greedy answer and
    its gap, and each chosen site's marginal gain; `sites` is a GeoJSON FeatureCollection.

    The solver gets `time_limit_s`, at most three quarters of the server's hard limit
    (`YIZHAN_ANALYSIS_TIMEOUT_S`, when the analysis is stopped: 503); `time_limit_s` in
    the answer is what it got."""
    try:
        check_radius_limit(body.radius_m, settings)
        flt = StationFilter.make(
            amenities=body.amenity,
            kinds=body.kind,
            categories=body.category,
            statuses=body.status or ("operational",),
        )
        stations, mask, described = _service(search, settings, flt, body.open_at, body.open_for_min)
    except InvalidInputError as exc:
        raise body_error(exc) from None
    counted = select_stations(stations, mask)
    cand: Any = (None, None)
    if body.candidates is not None:
        arr = np.asarray([c[:2] for c in body.candidates], dtype=np.float64)
        cand = (arr[:, 0], arr[:, 1])
    runner, _ = _gate(request)
    solver_s = runner.solver_time_s(body.time_limit_s)
    try:
        walking = require(walking_of(request), body.metric)
    except InvalidInputError as exc:
        raise body_error(exc) from None
    # On foot: cover sets from bounded searches from the candidates (default: the demand
    # not covered on foot), in an analysis process that maps the server's network file.
    if walking is None:
        func: Callable[..., dict[str, Any]] = site_analysis
        head: tuple[Any, ...] = ()
        reach: float = body.radius_m
    else:  # stations, demand and candidates snapped here (see get_coverage)
        points = [(counted.lon, counted.lat)]
        if cand[0] is not None:
            points.append(cand)
        try:
            spec = await asyncio.to_thread(walking.spec, search.registry, study.demand, points)
        except InvalidInputError as exc:
            raise body_error(exc) from None
        func, head, reach = walk_site_analysis, (spec,), body.minutes
    try:
        out = await run_analysis(
            request,
            client,
            func,
            *head,
            study.demand,
            counted.lon,
            counted.lat,
            cand[0],
            cand[1],
            body.n_new,
            reach,
            solver_s,
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    out["time_limit_s"] = solver_s
    out["demand"] = study.description
    out["stations"] = described
    return FastJSONResponse(out)
