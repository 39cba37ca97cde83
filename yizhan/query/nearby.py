"""What a search for places *open now* left out, and whether a position is in the registry's area.

The workers' find page lists the nearest places open now. A station closer than the
places listed but closed (or with unknown hours) is not among them; the page must say so
instead of hiding it silently (:func:`closer_left_out`). A position with no station within
``area_radius_m`` (a setting, 50 km by default) is outside the area the registry covers
(:func:`nearest_any`): the page says so instead of listing stations hundreds of kilometres
away.

Both answer with the same GeoJSON Features as ``/nearest`` (:mod:`yizhan.query.features`),
with ``open_now`` and ``next_change`` at the time asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from yizhan.query.features import bus_hit_feature, hit_feature
from yizhan.stations.registry import StationFilter
from yizhan.stations.search import BusHit, Hit, StationSearch

__all__ = ["LeftOut", "closer_left_out", "nearest_any"]

Flags = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class LeftOut:
    """Closer places a search for open places did not list.

    Attributes
    ----------
    features : list of dict
        The nearest of them (at most the *limit* asked for), nearest first: ``/nearest``
        Features with ``open_now`` (``False``: closed, ``None``: hours unknown) and
        ``next_change``.
    total : int
        How many there are in all (a lower bound when *capped*).
    capped : bool
        More may exist than *total* (the search stopped at ``max_k`` per filter).
    """

    features: list[dict[str, Any]]
    total: int
    capped: bool


def closer_left_out(
    search: StationSearch,
    lon: float,
    lat: float,
    amenity_groups: Sequence[Sequence[str]],
    ts: float,
    within_m: float,
    shown: Collection[str],
    *,
    limit: int = 5,
    max_k: int = 100,
    flags: Flags | None = None,
) -> LeftOut:
    """Operational stations within *within_m* of a WGS-84 point that are not open at *ts*.

    Parameters
    ----------
    search : StationSearch
        The server's search (hours, alerts).
    lon, lat : float
        The worker's position, degrees WGS-84.
    amenity_groups : sequence of sequence of str
        The filter chips: a station must offer one amenity of every group (OR within a
        group, AND between groups), as on the find page.
    ts : float
        The time (POSIX seconds) "open" is judged at.
    within_m : float
        Only stations at most this far, metres (the distance of the farthest place listed,
        or the area radius when nothing was listed).
    shown : collection of str
        Ids already listed (never repeated here).
    limit : int
        How many Features to return.
    max_k : int
        Most stations looked at per filter combination (the server's ``max_k``).
    flags : callable, optional
        Adds ``stale``, ``needs_check`` ... to each Feature's properties.

    Returns
    -------
    LeftOut
    """
    best: dict[str, Hit] = {}
    capped = False
    registry = search.registry
    shown_ids = set(shown)
    for combo in itertools.product(*amenity_groups):
        hits = search.nearest(lon, lat, max_k, StationFilter.make(amenities=combo), within_m)
        capped = capped or len(hits) >= max_k
        for h in hits:
            fid = str(registry.ids[h.index])
            if fid in shown_ids or fid in best:
                continue
            if search.status(h.index, ts)[0] is not True:
                best[fid] = h
    ordered = sorted(best.items(), key=lambda kv: (kv[1].distance_m, kv[0]))
    features = []
    for _, h in ordered[:limit]:
        is_open, change = search.status(h.index, ts)
        extra: dict[str, Any] = {"open_now": is_open, "next_change": change}
        if flags is not None:
            extra.update(flags(registry.features[h.index]))
        features.append(hit_feature(registry, h, "wgs84", extra))
    return LeftOut(features, len(ordered), capped)


def nearest_any(
    search: StationSearch, lon: float, lat: float, ts: float, flags: Flags | None = None
) -> dict[str, Any] | None:
    """The nearest operational station or cooling bus (where it stands at *ts*), whatever
    its hours and amenities, as a ``/nearest`` Feature; ``None`` for an empty registry.

    The find page compares its ``distance_m`` with ``area_radius_m`` to tell a position
    outside the registry's area.
    """
    hits = search.nearest_at(lon, lat, 1, StationFilter.make(), ts, only_open=False)
    if not hits:
        return None
    h = hits[0]
    if isinstance(h, BusHit):
        bus = search.fleet.buses[h.position.bus_index]
        return bus_hit_feature(search, h, "wgs84", flags(bus) if flags else None)
    is_open, change = search.status(h.index, ts)
    extra: dict[str, Any] = {"open_now": is_open, "next_change": change}
    if flags is not None:
        extra.update(flags(search.registry.features[h.index]))
    return hit_feature(search.registry, h, "wgs84", extra)
