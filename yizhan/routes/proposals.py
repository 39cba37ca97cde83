"""Proposed stations: ``POST /proposals`` (anyone, rate-limited), ``GET /proposals`` (admins;
managers see their area's) and ``POST /proposals/{id}/accept`` or ``/reject`` (an admin or
the area's manager).

An accepted proposal becomes a station, validated like any new one (422 naming the field
when it is not valid, and the proposal stays pending); see :mod:`yizhan.query.proposals`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from yizhan.errors import InvalidInputError
from yizhan.query import proposals as q
from yizhan.routes.deps import (
    BackendDep,
    FastJSONResponse,
    PrincipalDep,
    SearchDep,
    SettingsDep,
    StoreDep,
    body_error,
)
from yizhan.routes.reports import client_key
from yizhan.stations.proposals import MAX_HOURS, MAX_NAME, MAX_REASON, ProposalStore
from yizhan.stations.reports import MAX_COMMENT
from yizhan.storage import Backend

router = APIRouter(tags=["proposals"])

ProposalId = Annotated[str, Path(description="A proposal's id (`prop_…`).", max_length=64)]


def proposal_store(request: Request) -> ProposalStore:
    """The backend's proposal store (``<registry>.proposals.jsonl``, or the ``proposals``
    table: :func:`yizhan.storage.open_backend`)."""
    backend: Backend = request.app.state.backend
    return backend.proposals


class ProposalIn(BaseModel):
    """A place a worker suggests."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "建设路环卫工人休息室",
                    "amenities": ["drinking_water", "seating"],
                    "hours": "每天 7:00-19:00",
                    "location": [113.6401, 34.7552],
                    "location_source": "gps",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=MAX_NAME, description="What the place is called.")
    location: list[float] = Field(
        min_length=2, max_length=2, description="Where it is, `[lon, lat]` WGS-84."
    )
    amenities: list[str] = Field(
        default_factory=list, max_length=30, description="What it offers (registry vocabulary)."
    )
    hours: str | None = Field(
        default=None, max_length=MAX_HOURS, description="Opening hours as the proposer knows them."
    )
    comment: str | None = Field(default=None, max_length=MAX_COMMENT, description="Free text.")
    location_source: Literal["gps", "map"] | None = Field(
        default=None, description="`gps`: the phone's position; `map`: a tap on the map."
    )


class AcceptIn(BaseModel):
    """Optional corrections made when accepting."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"properties": {"category": "union_station", "phone": "0371-1234567"}}]
        },
    )

    properties: dict[str, Any] | None = Field(
        default=None,
        description="Properties of the new station overriding the proposal's (`null` removes one).",
    )
    location: list[float] | None = Field(
        default=None, min_length=2, max_length=2, description="A corrected `[lon, lat]`."
    )


class RejectIn(BaseModel):
    """Why a proposal is rejected."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "已有驿站 (already listed)"}]}
    )

    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Why (kept).")


_DECIDE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an unknown one."},
    403: {"description": "Neither an admin nor a manager of the proposal's area."},
    404: {"description": "No proposal with this id."},
    409: {"description": "The proposal was already decided (or the station exists)."},
}


@router.post(
    "/proposals",
    response_class=FastJSONResponse,
    status_code=201,
    summary="Suggest a missing station",
    responses={
        201: {"description": "The proposal as stored (without who sent it)."},
        422: {"description": "A missing name, a bad location, an unknown amenity, text too long."},
        429: {"description": "Too many proposals from this client; `Retry-After` says when."},
    },
)
async def create_proposal(
    request: Request,
    backend: BackendDep,
    search: SearchDep,
    settings: SettingsDep,
    body: ProposalIn,
) -> FastJSONResponse:
    """Anyone may suggest a place (no token). It is listed for admins and the area's
    managers, who accept it (it becomes a station) or reject it with a reason."""
    proposals = backend.proposals
    try:
        lon, lat = body.location
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InvalidInputError(
                "location", f"Expected [lon, lat] in range, got {body.location}"
            )
        district, nearest = q.area_of(search, lon, lat, settings.area_radius_m)
        p = await asyncio.to_thread(
            proposals.add,
            body.name,
            body.location,
            client=client_key(request, settings),
            amenities=body.amenities,
            hours=body.hours,
            comment=body.comment.replace("\r\n", "\n") if body.comment else None,
            location_source=body.location_source,
            district=district,
            nearest=nearest,
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(p.as_dict(), status_code=201)


@router.get(
    "/proposals",
    response_class=FastJSONResponse,
    summary="Proposed stations (admins; managers: their area's)",
    responses={
        401: {"description": "No bearer token, or an unknown one."},
        403: {"description": "Neither an admin nor a manager."},
    },
)
async def list_proposals(
    backend: BackendDep,
    store: StoreDep,
    who: PrincipalDep,
    status: Annotated[
        Literal["pending", "accepted", "rejected"] | None,
        Query(description="Only proposals in this state."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many, newest.")] = 1000,
) -> FastJSONResponse:
    """Proposals newest first, each with its `status` and `decision`; an admin sees all, a
    manager those of the districts of their stations."""
    districts = q.visible_districts(who, store.registry)
    rows = await asyncio.to_thread(backend.proposals.list, status, districts)
    return FastJSONResponse(
        {"numberMatched": len(rows), "proposals": [p.as_dict() for p in rows[:limit]]}
    )


@router.post(
    "/proposals/{proposal_id}/accept",
    response_class=FastJSONResponse,
    summary="Accept a proposal: it becomes a station",
    responses={
        200: {"description": "The decided proposal; `station_id` names the new station."},
        422: {"description": "The station would not be valid (the field is named)."},
        **_DECIDE_ERRORS,
    },
)
async def accept_proposal(
    backend: BackendDep,
    store: StoreDep,
    who: PrincipalDep,
    proposal_id: ProposalId,
    body: Annotated[AcceptIn | None, Body()] = None,
) -> FastJSONResponse:
    """Adds the station (validated like `POST /stations`, `source` naming the proposal),
    then records the decision. The station's `Location` is in the response headers."""
    proposals = backend.proposals
    corrections = body or AcceptIn()
    try:
        p = await asyncio.to_thread(
            q.accept,
            proposals,
            store,
            proposal_id,
            who,
            corrections.properties,
            corrections.location,
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    station_id = p.decision.station_id if p.decision is not None else None
    headers = {"Location": f"/stations/{station_id}"} if station_id else None
    return FastJSONResponse(p.as_dict(), headers=headers)


@router.post(
    "/proposals/{proposal_id}/reject",
    response_class=FastJSONResponse,
    summary="Reject a proposal, with a reason",
    responses={
        200: {"description": "The decided proposal."},
        422: {"description": "No reason, or one too long."},
        **_DECIDE_ERRORS,
    },
)
async def reject_proposal(
    backend: BackendDep,
    store: StoreDep,
    who: PrincipalDep,
    proposal_id: ProposalId,
    body: RejectIn,
) -> FastJSONResponse:
    """The reason is kept with the proposal."""
    proposals = backend.proposals
    try:
        p = await asyncio.to_thread(
            q.reject, proposals, store.registry, proposal_id, who, body.reason
        )
    except InvalidInputError as exc:
        raise body_error(exc) from None
    return FastJSONResponse(p.as_dict())
