"""Heat alerts: ``GET /alerts`` (public), ``POST /alerts`` and ``DELETE /alerts/{id}`` (admin).

Features with ``activation: heat_alert`` count as open only while an alert covers their
district and their own hours say open.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from yizhan.errors import InvalidInputError, PermissionDeniedError
from yizhan.routes.deps import FastJSONResponse, PrincipalDep, SearchDep, SettingsDep, body_error
from yizhan.stations.alerts import ALL_DISTRICTS
from yizhan.stations.hours import localize
from yizhan.stations.tokens import Principal

router = APIRouter(tags=["alerts"])


class AlertIn(BaseModel):
    """A heat alert to declare."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "districts": ["金水区", "中原区"],
                    "from": "2026-07-15T08:00",
                    "until": "2026-07-17T20:00",
                    "note": "橙色高温预警 (orange heat warning)",
                }
            ]
        },
    )

    districts: list[str] = Field(
        min_length=1,
        description=f"District names as in the features' `district`; `{ALL_DISTRICTS}` for all.",
    )
    start: datetime = Field(
        alias="from", description="ISO 8601; without offset in the registry's time zone."
    )
    until: datetime = Field(description="End (exclusive); at most 14 days after `from`.")
    note: str | None = Field(default=None, max_length=500)


def require_admin(who: Principal) -> None:
    """Raise :class:`PermissionDeniedError` unless *who* holds an admin token."""
    if not who.admin:
        raise PermissionDeniedError(
            f"operator {who.name!r} may not manage heat alerts: that needs an admin token"
        )


@router.get("/alerts", response_class=FastJSONResponse, summary="Heat alerts not yet ended")
async def list_alerts(search: SearchDep) -> FastJSONResponse:
    """Active and upcoming alerts, by start time, each with `active` (in force now)."""
    now = search.alerts.clock()
    out = []
    for a in search.alerts.all():
        d = a.as_dict()
        d["active"] = a.start <= now < a.until
        out.append(d)
    return FastJSONResponse({"alerts": out})


@router.post(
    "/alerts",
    response_class=FastJSONResponse,
    status_code=201,
    summary="Declare a heat alert",
    responses={
        401: {"description": "No or unknown bearer token."},
        403: {"description": "Not an admin token."},
        422: {"description": "Unknown district, or a window that is empty, over or too long."},
    },
)
async def create_alert(
    search: SearchDep, settings: SettingsDep, who: PrincipalDep, body: AlertIn
) -> FastJSONResponse:
    """Declare an alert over `districts` from `from` until `until` (admin token)."""
    require_admin(who)
    tz = settings.timezone
    try:
        alert = search.alerts.add(
            body.districts,
            localize(body.start, tz),
            localize(body.until, tz),
            who.name,
            body.note,
            known_districts=search.registry.districts(),
            maximum=timedelta(days=settings.max_alert_days),
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(alert.as_dict(), status_code=201)


@router.delete(
    "/alerts/{alert_id}",
    response_class=FastJSONResponse,
    summary="End a heat alert",
    responses={
        401: {"description": "No or unknown bearer token."},
        403: {"description": "Not an admin token."},
        404: {"description": "No such alert."},
    },
)
async def delete_alert(
    search: SearchDep,
    who: PrincipalDep,
    alert_id: Annotated[str, Path(description="The alert's id.")],
) -> FastJSONResponse:
    """Delete the alert (admin token)."""
    require_admin(who)
    return FastJSONResponse(search.alerts.remove(alert_id).as_dict())
