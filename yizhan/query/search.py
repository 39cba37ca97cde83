"""The station search wired to the stores kept beside a registry, and what counts as service.

The API's search is built by its storage backend (:mod:`yizhan.storage`: one snapshot per
registry version, patched per change); the CLI (read-only) builds its search here over the
same bus placements and heat alerts files, so both see the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from yizhan.settings import Settings
from yizhan.stations.alerts import AlertStore
from yizhan.stations.placements import PlacementStore
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import StationSearch
from yizhan.storage import new_search


def search_from_settings(
    settings: Settings, registry: Registry, read_only: bool = False
) -> StationSearch:
    """The search over *registry* with the placements and heat alerts stored beside it.

    The stores are the files :meth:`Settings.state_file` names; the CLI opens them
    read-only, the API writes them.
    """
    return StationSearch(
        registry,
        timezone=settings.timezone,
        holiday_country=settings.holiday_country,
        placements=PlacementStore(
            settings.state_file(registry.path, "placements"), read_only=read_only
        ),
        alerts=AlertStore(settings.state_file(registry.path, "alerts"), read_only=read_only),
    )


def build_search(
    settings: Settings,
    registry: Registry,
    placements: PlacementStore | None = None,
    alerts: AlertStore | None = None,
) -> StationSearch:
    """The search over *registry*, with its placements and alerts stores, built now.

    Placements and alerts are read from (and written to) the files
    :meth:`Settings.state_file` names, unless the stores are given (a new snapshot of
    an edited registry keeps the stores of the previous one). Hours and buses are built
    now, not on the first request.
    """
    if placements is None or alerts is None:
        search = search_from_settings(settings, registry)
        _ = search.fleet  # build the hours keys and the buses now, not on the first request
        return search
    return new_search(settings, registry, placements, alerts)


def service_points(
    registry: Registry,
    flt: StationFilter,
    at: datetime | None,
    open_for_min: int | None,
    search: Callable[[], StationSearch],
) -> tuple[Any, Any, str]:
    """What counts as service for coverage and siting: ``(stations, station_mask, description)``.

    Without a time (*at* and *open_for_min* both ``None``): the registry's stations passing
    *flt*. With one: the stations open at *at* (``now`` when only *open_for_min* is given,
    the caller resolves it) and staying open *open_for_min* minutes, plus the cooling buses
    standing then; *search* is called only in that case.
    """
    if at is None:
        return registry, flt, f"{int(registry.mask(flt).sum())} stations"
    lon, lat, n_st, n_bus = search().serving_at(flt, at.timestamp(), 60.0 * (open_for_min or 0))
    when = at.isoformat(timespec="minutes")
    stay = f" for {open_for_min} min" if open_for_min else ""
    return (
        (lon, lat),
        None,
        f"{n_st} stations open at {when}{stay} and {n_bus} cooling buses standing then",
    )
