"""Problem reports from workers: ``POST /stations/{id}/reports`` (anyone, rate-limited),
``GET /stations/{id}/reports`` (the station's manager or operator, admins) and
``GET /reports`` (admins).

Reports of the same problem from several different clients since the last verification
mark the station ``needs_check`` in every response until someone verifies it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from yizhan.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from yizhan.routes.clients import client_key as client_key  # also for routes.proposals
from yizhan.routes.deps import (
    FastJSONResponse,
    PrincipalDep,
    ReportsDep,
    SettingsDep,
    StoreDep,
    body_error,
)
from yizhan.stations.reports import REPORT_CODES
from yizhan.stations.staleness import verified_at
from yizhan.stations.tokens import may_list_all_reports, may_read_reports

router = APIRouter(tags=["reports"])

StationId = Annotated[str, Path(description="The station's (or cooling bus's) id.")]
ReportCode = Literal[
    "closed", "no_water", "toilet_unusable", "too_crowded", "moved", "wrong_info", "all_good"
]
assert set(ReportCode.__args__) == set(REPORT_CODES)  # type: ignore[attr-defined]


class ReportIn(BaseModel):
    """A worker's report about a station."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"code": "no_water", "comment": "饮水机坏了 (the water dispenser is broken)"}
            ]
        },
    )

    code: ReportCode = Field(description="What is wrong (`all_good`: nothing, it was checked).")
    comment: str | None = Field(
        default=None, max_length=1000, description="Free text, kept as text."
    )
    location: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Where the reporter is, `[lon, lat]` WGS-84 (optional).",
    )


@router.post(
    "/stations/{station_id}/reports",
    response_class=FastJSONResponse,
    status_code=201,
    summary="Report a problem at a station",
    responses={
        201: {"description": "The report as stored (without who sent it)."},
        404: {"description": "No station or bus with this id."},
        422: {"description": "Unknown code, comment too long or a bad location."},
        429: {"description": "Too many reports from this client; `Retry-After` says when."},
    },
)
async def create_report(
    request: Request,
    store: StoreDep,
    reports: ReportsDep,
    settings: SettingsDep,
    station_id: StationId,
    body: ReportIn,
) -> FastJSONResponse:
    """Anyone may report (no token). Only a salted hash of the sender's address is kept."""
    store.find(station_id)  # 404 for an unknown id
    try:
        report = await asyncio.to_thread(
            reports.add,
            station_id,
            body.code,
            # Browsers send a form's line breaks as CRLF: keep them as plain newlines.
            comment=body.comment.replace("\r\n", "\n") if body.comment else None,
            location=body.location,
            client=client_key(request, settings),
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(report.as_dict(), status_code=201)


@router.get(
    "/stations/{station_id}/reports",
    response_class=FastJSONResponse,
    summary="Reports about one station",
    responses={
        401: {"description": "No bearer token, or an unknown one."},
        403: {"description": "Not this station's manager or operator, nor an admin."},
        404: {"description": "No station or bus with this id."},
    },
)
async def station_reports(
    store: StoreDep, reports: ReportsDep, who: PrincipalDep, station_id: StationId
) -> FastJSONResponse:
    """Every report about the station, newest first, each `open` or `resolved` (verified
    since), and the station's current `needs_check_reasons`."""
    found = store.find(station_id)
    if not may_read_reports(who, station_id, found.feature["properties"].get("operator")):
        raise PermissionDeniedError(f"this token may not read the reports of {station_id!r}")
    rows = await asyncio.to_thread(reports.for_station, station_id)
    when = verified_at(found.feature)
    return FastJSONResponse(
        {
            "id": station_id,
            "needs_check_reasons": reports.needs_check(station_id, when),
            "reports": [{**r.as_dict(), "status": reports.status_of(r, when)} for r in rows],
        }
    )


@router.get(
    "/reports",
    response_class=FastJSONResponse,
    summary="Every report (admins)",
    responses={
        401: {"description": "No bearer token, or an unknown one."},
        403: {"description": "Not an admin token."},
    },
)
async def all_reports(
    store: StoreDep,
    reports: ReportsDep,
    who: PrincipalDep,
    status: Annotated[
        Literal["open", "resolved"] | None,
        Query(description="`open`: not yet followed by a verification of the station."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=10000, description="At most this many, newest first.")
    ] = 1000,
) -> FastJSONResponse:
    """Reports of every station, newest first (admin token)."""
    if not may_list_all_reports(who):
        raise PermissionDeniedError("listing every report needs an admin token")

    def when(station_id: str) -> Any:
        try:
            return verified_at(store.find(station_id).feature)
        except NotFoundError:
            return None

    rows = await asyncio.to_thread(reports.list, status, when)
    return FastJSONResponse(
        {
            "numberMatched": len(rows),
            "reports": [{**r.as_dict(), "status": s} for r, s in rows[:limit]],
        }
    )
