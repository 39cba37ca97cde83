"""Usage: check-ins, recorded visit counts, utilization, scores and rankings.

* ``POST /stations/{id}/checkins`` — a worker's anonymous "I'm here" (no token);
* ``PUT /stations/{id}/visits/{date}`` — a count a manager or operator keeps (audited);
  ``GET /stations/{id}/visits`` — the recorded counts;
* ``GET /stations/{id}/usage`` — visits, per open hour, utilization, weeks, months,
  trades, trend and ``busy_now``;
* ``GET /stations/{id}/score`` — the score and each component (value, weight, points);
* ``GET /analysis/usage`` — per district; ``GET /analysis/ranking`` — stations and managers
  ranked, as JSON, CSV, XLSX or a printable HTML report.

See ``docs/evaluation.md``.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from yizhan.errors import InvalidInputError, PermissionDeniedError
from yizhan.query.awards import build_awards, station_table, to_csv, to_html, to_xlsx
from yizhan.query.ranking import StoreHistory, find_station, parse_award_period, score_stations
from yizhan.query.usage_service import (
    UsageStores,
    analysis_usage,
    check_in,
    parse_period,
    station_usage,
)
from yizhan.routes.clients import client_key
from yizhan.routes.deps import (
    FastJSONResponse,
    PrincipalDep,
    ReportsDep,
    SearchDep,
    SettingsDep,
    StoreDep,
    body_error,
)
from yizhan.stations.tokens import TokenStore, may_edit
from yizhan.stations.usage_files import TRADES

router = APIRouter(tags=["usage"])

StationId = Annotated[str, Path(description="The station's (or cooling bus's) id.")]
Trade = Literal["sanitation", "courier", "taxi", "truck_driver", "builder", "other"]
assert set(Trade.__args__) == set(TRADES)  # type: ignore[attr-defined]
DAY = r"^\d{4}-\d{2}-\d{2}$"
FromParam = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=DAY,
        description="First day, YYYY-MM-DD (default: 27 days before `to`).",
    ),
]
ToParam = Annotated[
    str | None, Query(pattern=DAY, description="Last day, YYYY-MM-DD (default: today).")
]
PeriodParam = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}(-\d{2})?$",
        description="A month `YYYY-MM` or a year `YYYY` (default: this month).",
    ),
]
DistrictParam = Annotated[
    str | None, Query(max_length=200, description="Only this district (default: all).")
]


def parse_day(text: str, where: tuple[str, str]) -> date:
    """A ``YYYY-MM-DD`` parameter as a date (422 naming it when it is no real day)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": where,
                    "msg": f"Expected a day YYYY-MM-DD, got {text!r}",
                    "input": text,
                }
            ]
        ) from None


async def get_usage(request: Request) -> UsageStores:
    stores: UsageStores = request.app.state.usage
    return stores


UsageDep = Annotated[UsageStores, Depends(get_usage)]


# -- check-ins -----------------------------------------------------------------------------------


class CheckinIn(BaseModel):
    """A worker's "I'm here"."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"location": [113.6654, 34.7579], "trade": "courier"}]},
    )

    location: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Where the worker is, `[lon, lat]` WGS-84 (optional; if given it must be "
        "within checkin_radius_m, 300 m, of the station or of where the bus stands). It is "
        "checked, never stored.",
    )
    trade: Trade | None = Field(
        default=None, description="The worker's trade (optional; reported only in aggregates)."
    )


@router.post(
    "/stations/{station_id}/checkins",
    response_class=FastJSONResponse,
    status_code=201,
    summary="Check in at a station or cooling bus (anonymous)",
    responses={
        201: {"description": "The check-in as stored (without who sent it); durable."},
        404: {"description": "No station or bus with this id."},
        409: {"description": "The station is not operational, or the bus not in service now."},
        422: {"description": "The position is too far from the station, or not `[lon, lat]`."},
        429: {
            "description": "Already checked in here within 4 hours, or too many check-ins "
            "from this client; `Retry-After` says when."
        },
        503: {"description": "The check-in could not be saved; try again (`Retry-After`)."},
    },
)
async def create_checkin(
    request: Request,
    search: SearchDep,
    usage: UsageDep,
    settings: SettingsDep,
    station_id: StationId,
    body: CheckinIn | None = None,
) -> FastJSONResponse:
    """No token, no personal data: the client is kept only as a hash under a salt that
    rotates daily (never stored beside the data). One check-in per client and station
    every 4 hours (`checkin_interval_hours`), `checkin_rate_per_hour` (12) an hour in all.
    The answer comes once the check-in is on disk."""
    body = body or CheckinIn()
    try:
        future = check_in(
            search,
            usage,
            station_id,
            client=client_key(request, settings),
            location=body.location,
            trade=body.trade,
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    checkin = await asyncio.wrap_future(future)
    return FastJSONResponse(checkin.as_dict(), status_code=201)


# -- recorded counts --------------------------------------------------------------------------------


class VisitsIn(BaseModel):
    """A count of visits on one day, as the station's manager or the bus operator kept it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"count": 64}, {"count": 30, "stop_id": "s2"}]},
    )

    count: int = Field(ge=0, le=1_000_000, description="Visits on that day.")
    hours: list[int] | None = Field(
        default=None,
        min_length=24,
        max_length=24,
        description="Visits in each hour from 00:00 (24 numbers adding up to `count`).",
    )
    stop_id: str | None = Field(
        default=None, max_length=200, description="For a cooling bus: the stop counted at."
    )
    note: str | None = Field(default=None, max_length=500, description="Kept in the audit line.")


@router.put(
    "/stations/{station_id}/visits/{day}",
    response_class=FastJSONResponse,
    summary="Record the visits of one day (manager, operator)",
    responses={
        200: {"description": "A count for this day was replaced."},
        201: {"description": "The count was recorded."},
        401: {"description": "No bearer token, or an unknown one."},
        403: {"description": "Not this station's manager or operator, nor an admin."},
        404: {"description": "No station or bus with this id."},
        422: {"description": "A day in the future, hours not adding up, a bad stop."},
    },
)
async def put_visits(
    store: StoreDep,
    usage: UsageDep,
    who: PrincipalDep,
    station_id: StationId,
    day: Annotated[str, Path(pattern=DAY, description="The local day counted, YYYY-MM-DD.")],
    body: VisitsIn,
) -> FastJSONResponse:
    """Replaces the count of that day (and stop), if any. Each change is one line of the
    counts' audit log (who, when, before, after), on disk before the answer. On a day with
    a count, the count is the visits; check-ins count only on days without one."""
    counted_day = parse_day(day, ("path", "day"))
    found = store.find(station_id)
    props = found.feature["properties"]
    if not may_edit(who, station_id, props.get("operator")):
        raise PermissionDeniedError(f"this token may not record visits of {station_id!r}")
    stops = [str(s["stop_id"]) for s in props.get("stops") or []]
    if found.bus and body.stop_id not in stops:
        raise body_error(
            InvalidInputError(
                "stop_id", f"Expected one of this bus's stops {stops}, got {body.stop_id!r}"
            )
        )
    if not found.bus and body.stop_id is not None:
        raise body_error(InvalidInputError("stop_id", "Expected null: a station has no stops"))
    try:
        count, created = await asyncio.to_thread(
            usage.counts.put,
            station_id,
            counted_day,
            body.count,
            hours=body.hours,
            stop_id=body.stop_id,
            who=who,
            today=usage.today(),
            note=body.note,
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(count.as_dict(show_actor=True), status_code=201 if created else 200)


@router.get(
    "/stations/{station_id}/visits",
    response_class=FastJSONResponse,
    summary="The visit counts recorded for a station",
    responses={404: {"description": "No station or bus with this id."}},
)
async def get_visits(
    store: StoreDep,
    usage: UsageDep,
    station_id: StationId,
    first: FromParam = None,
    to: ToParam = None,
) -> FastJSONResponse:
    """Counts per day (and stop), with when and by which role they were recorded."""
    store.find(station_id)
    a, b = parse_period(first, to, usage.today())
    rows = await asyncio.to_thread(usage.counts.for_station, station_id, a, b)
    return FastJSONResponse(
        {
            "id": station_id,
            "from": a.isoformat(),
            "to": b.isoformat(),
            "counts": [c.as_dict() for c in rows],
        }
    )


# -- usage and scores ------------------------------------------------------------------------------


@router.get(
    "/stations/{station_id}/usage",
    response_class=FastJSONResponse,
    summary="Visits, utilization, trend and busy-now of a station or bus",
    responses={
        404: {"description": "No station or bus with this id."},
        422: {"description": "A bad period (`from` after `to`, longer than two years)."},
    },
)
async def get_station_usage(
    search: SearchDep,
    usage: UsageDep,
    station_id: StationId,
    first: FromParam = None,
    to: ToParam = None,
) -> FastJSONResponse:
    """Visits (recorded counts, else check-ins), open hours, visits per open hour,
    utilization (with a capacity), per week and month, by hour and trade, the trend, and
    `busy_now`: the last hour's check-ins against the usual, or `null` when there were
    fewer than `busy_min_checkins` (3). A bus gives each stop."""
    a, b = parse_period(first, to, usage.today())
    out = await asyncio.to_thread(station_usage, search, usage, station_id, a, b)
    return FastJSONResponse(out)


@router.get(
    "/stations/{station_id}/score",
    response_class=FastJSONResponse,
    summary="A station's score (0–100) and its components",
    responses={
        404: {"description": "No operational station with this id (buses are not scored)."},
        422: {"description": "A bad period."},
    },
)
async def get_station_score(
    search: SearchDep,
    usage: UsageDep,
    reports: ReportsDep,
    store: StoreDep,
    station_id: StationId,
    period: PeriodParam = None,
) -> FastJSONResponse:
    """Each component with its value (0–1), weight and points, what it was computed from,
    and whether the station has enough data to be ranked (see docs/evaluation.md)."""
    p = parse_award_period(period, usage.today())

    def run() -> dict[str, Any]:
        table = score_stations(search, usage, reports, StoreHistory(store), p)
        return {"period": p.label, **table.row(find_station(table, station_id))}

    return FastJSONResponse(await asyncio.to_thread(run))


@router.get(
    "/analysis/usage",
    response_class=FastJSONResponse,
    summary="Usage per district, and the busiest stations and bus stops",
    responses={422: {"description": "An unknown district, or a bad period."}},
)
async def get_analysis_usage(
    search: SearchDep,
    usage: UsageDep,
    district: DistrictParam = None,
    first: FromParam = None,
    to: ToParam = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Busiest units listed.")] = 100,
) -> FastJSONResponse:
    """Per district: visits, open hours, visits per open hour, utilization (over the units
    with a capacity), weekly and monthly visits, trades; then the busiest units."""
    a, b = parse_period(first, to, usage.today())
    out = await asyncio.to_thread(analysis_usage, search, usage, a, b, district, limit)
    return FastJSONResponse(out)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/analysis/ranking",
    summary="Stations and station managers ranked by score",
    response_class=FastJSONResponse,
    responses={
        200: {
            "description": "JSON, or with `format`: the stations as CSV, a workbook, or the "
            "printable report.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        422: {"description": "An unknown district, or a bad period."},
    },
)
async def get_ranking(
    request: Request,
    search: SearchDep,
    usage: UsageDep,
    reports: ReportsDep,
    store: StoreDep,
    period: PeriodParam = None,
    district: DistrictParam = None,
    format: Annotated[
        Literal["json", "csv", "xlsx", "html"], Query(description="What to answer with.")
    ] = "json",
    limit: Annotated[
        int, Query(ge=1, le=100_000, description="Stations listed in JSON (best first).")
    ] = 1000,
) -> Response:
    """Stations ranked within the district (or the network), per district, and managers;
    ties and the minimum-data rules are stated in the answer (`rules`)."""
    p = parse_award_period(period, usage.today())
    tokens: TokenStore = request.app.state.tokens
    awards = await asyncio.to_thread(
        build_awards, search, usage, reports, StoreHistory(store), tokens.records(), p, district
    )
    name = f"awards-{p.label}"
    if format == "csv":
        head, rows = station_table(awards)
        return Response(
            to_csv(head, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-stations.csv"'},
        )
    if format == "xlsx":
        return Response(
            await asyncio.to_thread(to_xlsx, awards),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    if format == "html":
        return HTMLResponse(
            to_html(awards),
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
            },
        )
    return FastJSONResponse(awards.as_dict(limit))


__all__ = ["router"]
