"""Planners' endpoints: ``GET /coverage`` and ``POST /analysis/site``.

The study (demand and districts) is read from the files the settings name
(``YIZHAN_DEMAND``, ``YIZHAN_DISTRICTS`` …) on first use and kept in ``app.state``; for the
bundled registry it defaults to a hexagon grid over the bundled Zhengzhou districts.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from yizhan.errors import ConflictError, InvalidInputError
from yizhan.geo.access import two_step_fca
from yizhan.geo.coverage import coverage, select_stations
from yizhan.geo.siting import site_mclp
from yizhan.query.search import service_points
from yizhan.query.studies import Study, StudySpec, default_spec, load_study
from yizhan.routes.deps import FastJSONResponse, RegistryDep, SearchDep, SettingsDep, body_error
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
from yizhan.stations.vocab import Amenity, Category, Kind, Status

router = APIRouter(tags=["planning"])
_study_lock = threading.Lock()


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
    with _study_lock:
        study = getattr(request.app.state, "study", None)
        if study is None:
            study = load_study(spec)
            request.app.state.study = study
    return study


StudyDep = Annotated[Study, Depends(get_study)]


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
    responses=NO_DEMAND,
)
async def get_coverage(
    search: SearchDep,
    settings: SettingsDep,
    study: StudyDep,
    flt: FilterDep,
    radius_m: RadiusParam = 1000.0,
    open_at: OpenAtParam = None,
    open_for_min: OpenForMinParam = None,
    access: Annotated[
        bool, Query(description="Also 2SFCA accessibility per district (`access` member).")
    ] = False,
) -> FastJSONResponse:
    """Weighted share of demand with a station within `radius_m` (same exact distances as
    `/nearest`), per-district rows, and the distance-to-nearest distribution. With
    `open_at` only stations open then count, and cooling buses where they stand then."""
    stations, mask, described = _service(search, settings, flt, open_at, open_for_min)
    result = await asyncio.to_thread(coverage, stations, study.demand, radius_m, mask)
    out = result.to_dict()
    out["demand"] = study.description
    out["stations"] = described
    if access:
        fca = await asyncio.to_thread(two_step_fca, stations, study.demand, radius_m, mask)
        out["access"] = fca.to_dict()
    return FastJSONResponse(out)


class SiteRequest(BaseModel):
    """Where should `n_new` new stations go?"""

    model_config = ConfigDict(extra="forbid")

    n_new: int = Field(ge=1, le=200, description="How many new stations.")
    radius_m: float = Field(1000.0, gt=0, le=100_000, allow_inf_nan=False)
    candidates: list[list[float]] | None = Field(
        None,
        description="Candidate sites as `[lon, lat]` (WGS-84); default: uncovered demand points.",
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
    responses=NO_DEMAND,
)
async def post_site(
    body: SiteRequest, search: SearchDep, settings: SettingsDep, study: StudyDep
) -> FastJSONResponse:
    """Exact maximal-covering answer (HiGHS) with existing stations kept, the greedy answer and
    its gap, and each chosen site's marginal gain; `sites` is a GeoJSON FeatureCollection."""
    try:
        flt = StationFilter.make(
            amenities=body.amenity,
            kinds=body.kind,
            categories=body.category,
            statuses=body.status or ("operational",),
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    try:
        stations, mask, described = _service(search, settings, flt, body.open_at, body.open_for_min)
    except InvalidInputError as exc:
        raise body_error(exc) from None
    counted = select_stations(stations, mask)
    cand: Any = (None, None)
    if body.candidates is not None:
        arr = np.asarray([c[:2] for c in body.candidates], dtype=np.float64)
        cand = (arr[:, 0], arr[:, 1])
    result = await asyncio.to_thread(
        site_mclp,
        study.demand,
        counted.lon,
        counted.lat,
        cand[0],
        cand[1],
        n_new=body.n_new,
        radius_m=body.radius_m,
        time_limit_s=body.time_limit_s,
    )
    out = result.to_dict()
    out["sites"] = result.to_geojson()
    out["demand"] = study.description
    out["stations"] = described
    return FastJSONResponse(out)
