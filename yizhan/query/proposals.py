"""Proposed stations: where a proposal is (its area), who may decide it, the station an
accepted one becomes, and proposals as GeoJSON for the planner map.

The store (:class:`~yizhan.stations.proposals.ProposalStore`) keeps proposals; this module
answers what the API and the maps ask of them.

**Area.** A proposal's ``district`` is the ``district`` of the nearest operational station
within ``area_radius_m`` (none beyond it). A manager's area is the districts of the
stations their token manages: a manager may list and decide the proposals of their area;
an admin all of them. Using the stations' own ``district`` values (not polygons) keeps one
vocabulary: the one managers' stations are filed under.

**Accepting.** An accepted proposal becomes a station through
:meth:`RegistryStore.create <yizhan.stations.filestore.RegistryStore.create>`, validated like
any new station, with id ``yz-p-<the proposal's hex>``, ``source`` naming the proposal,
``opening_hours_text`` the proposer's hours and ``opening_hours`` their conversion when
:func:`~yizhan.stations.importing.hours_text.convert_hours` can read them. The decider may
override properties (and the position) in the same request. The registry lets only admins
and operators add stations; a manager's acceptance is made on their behalf, recorded in the
audit log under their name and token (``<name> (manager, proposal prop_…)``). A manager may
not set ``operator`` (it decides who else may edit the station).
"""

from __future__ import annotations

from typing import Any, Final

from yizhan.errors import InvalidInputError, PermissionDeniedError
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.importing.hours_text import convert_hours
from yizhan.stations.models import check_lon_lat
from yizhan.stations.proposals import Proposal, ProposalStore
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import Principal

__all__ = [
    "accept",
    "area_of",
    "manager_districts",
    "may_decide",
    "proposals_geojson",
    "reject",
    "station_feature",
    "station_id_of",
    "visible_districts",
]

#: Properties a manager may not set when accepting (an admin may).
ADMIN_ONLY: Final = ("operator",)


def area_of(
    search: StationSearch, lon: float, lat: float, radius_m: float
) -> tuple[str | None, dict[str, Any] | None]:
    """The district a proposed position is in and the nearest station, within *radius_m*.

    Returns
    -------
    district : str or None
        The ``district`` of the nearest operational station (``None``: none within
        *radius_m*, or it has no district).
    nearest : dict or None
        ``{"id", "name", "distance_m"}`` of that station, for reviewers (a proposal a few
        metres from a station is probably that station).
    """
    hits = search.nearest(lon, lat, 1, StationFilter.make(), radius_m)
    if not hits:
        return None, None
    h = hits[0]
    props = search.registry.features[h.index]["properties"]
    nearest = {
        "id": search.registry.ids[h.index],
        "name": str(props.get("name") or ""),
        "distance_m": round(h.distance_m, 1),
    }
    return (str(props["district"]) if props.get("district") else None), nearest


def manager_districts(who: Principal, registry: Registry) -> set[str]:
    """The districts of the stations a manager's token manages."""
    out: set[str] = set()
    for fid in who.stations:
        i = registry.index_of.get(fid)
        if i is not None:
            d = registry.features[i]["properties"].get("district")
            if d:
                out.add(str(d))
    return out


def visible_districts(who: Principal, registry: Registry) -> set[str] | None:
    """Whose proposals *who* may list: ``None`` (all) for an admin, a manager's districts.

    Raises
    ------
    PermissionDeniedError
        Neither an admin nor a manager.
    """
    if who.role == "admin":
        return None
    if who.role == "manager":
        return manager_districts(who, registry)
    raise PermissionDeniedError("proposals are listed for admins and station managers only")


def may_decide(who: Principal, proposal: Proposal, registry: Registry) -> bool:
    """Whether *who* may accept or reject *proposal*: an admin, or a manager of its area."""
    if who.role == "admin":
        return True
    return (
        who.role == "manager"
        and proposal.district is not None
        and proposal.district in manager_districts(who, registry)
    )


def station_id_of(proposal: Proposal) -> str:
    """The id the station of an accepted proposal gets: ``yz-p-`` and the proposal's hex."""
    return "yz-p-" + proposal.id.removeprefix("prop_")


def station_feature(
    proposal: Proposal,
    who: Principal,
    properties: dict[str, Any] | None = None,
    location: Any = None,
) -> dict[str, Any]:
    """The station (a GeoJSON Feature) an accepted proposal becomes.

    *properties* override the proposal's (``null`` removes one), *location* (``[lon, lat]``)
    its position.

    Raises
    ------
    InvalidInputError
        Naming ``properties`` or ``location``.
    PermissionDeniedError
        A manager sets an admin-only property.
    """
    props: dict[str, Any] = {
        "name": proposal.name,
        "kind": "station",
        "category": "other",
        "amenities": list(proposal.amenities),
        "status": "operational",
        "source": (
            f"proposal {proposal.id} (suggested by a worker on {proposal.created_at:%Y-%m-%d}, "
            f"accepted by {who.name})"
        ),
    }
    if proposal.hours:
        props["opening_hours_text"] = proposal.hours
        converted = convert_hours(proposal.hours)
        if converted:
            props["opening_hours"] = converted
    if proposal.district:
        props["district"] = proposal.district
    if properties is not None:
        if not isinstance(properties, dict):
            raise InvalidInputError("properties", "Expected an object of properties")
        if who.role != "admin":
            for key in ADMIN_ONLY:
                if key in properties:
                    raise PermissionDeniedError(f"only an admin may set {key!r} when accepting")
        for key, value in properties.items():
            if value is None:
                props.pop(key, None)
            else:
                props[key] = value
    lon, lat = proposal.location
    if location is not None:
        try:
            lon, lat = check_lon_lat(location)
        except ValueError as exc:
            raise InvalidInputError("location", str(exc)) from None
    return {
        "type": "Feature",
        "id": station_id_of(proposal),
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


def accept(
    proposals: ProposalStore,
    stations: RegistryStore,
    proposal_id: str,
    who: Principal,
    properties: dict[str, Any] | None = None,
    location: Any = None,
) -> Proposal:
    """Accept a proposal: add its station (validated like any new station), then record
    the decision; if the station is refused, the proposal stays pending.

    Raises
    ------
    NotFoundError, ConflictError, InvalidInputError, PermissionDeniedError
    """
    p = proposals.get(proposal_id)
    if not may_decide(who, p, stations.registry):
        raise PermissionDeniedError(
            f"only an admin or a manager of {p.district or 'its area'!r} may decide {p.id!r}"
        )
    actor = who
    if who.role != "admin":
        actor = Principal(
            name=f"{who.name} ({who.role}, proposal {p.id})",
            role="admin",
            token_id=who.token_id,
        )

    def create(current: Proposal) -> str:
        found = stations.create(station_feature(current, who, properties, location), actor)
        return str(found.feature["id"])

    return proposals.decide(proposal_id, "accepted", who, create=create)


def reject(
    proposals: ProposalStore, registry: Registry, proposal_id: str, who: Principal, reason: Any
) -> Proposal:
    """Reject a proposal with a reason.

    Raises
    ------
    NotFoundError, ConflictError, InvalidInputError, PermissionDeniedError
    """
    p = proposals.get(proposal_id)
    if not may_decide(who, p, registry):
        raise PermissionDeniedError(
            f"only an admin or a manager of {p.district or 'its area'!r} may decide {p.id!r}"
        )
    return proposals.decide(proposal_id, "rejected", who, reason=reason)


def proposals_geojson(
    proposals: ProposalStore,
    status: str | None = "pending",
    districts: set[str] | None = None,
) -> dict[str, Any]:
    """Proposals as a GeoJSON FeatureCollection (WGS-84 Points), newest first, for maps.

    Each Feature's ``id`` is the proposal's; its properties are ``name``, ``amenities``,
    ``hours``, ``comment``, ``location_source``, ``district``, ``nearest``,
    ``created_at``, ``status`` and ``decision`` (never who sent it).

    Parameters
    ----------
    proposals : ProposalStore
    status : {"pending", "accepted", "rejected"} or None
        Only these (``None``: all).
    districts : set of str, optional
        Only proposals in these districts (a manager's area).
    """
    feats = []
    for p in proposals.list(status, districts):
        props = p.as_dict()
        lon, lat = props.pop("location")
        props.pop("id")
        feats.append(
            {
                "type": "Feature",
                "id": p.id,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats)}
