"""Nearest stations (and cooling buses) to a point, as the GeoJSON FeatureCollection that
``GET /nearest``, ``/maps/nearest``, the workers' find page and ``yizhan nearest --json``
all return."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yizhan.geo.crs import point_to_wgs84
from yizhan.query.features import bus_hit_feature, hit_feature
from yizhan.query.walking import Walking, nearest_walk
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import StationFilter
from yizhan.stations.search import BusHit, StationSearch


def nearest_collection(
    search: StationSearch,
    settings: Settings,
    lon: float,
    lat: float,
    k: int | None,
    flt: StationFilter,
    radius_m: float | None = None,
    open_at: str | None = None,
    open_for_min: int | None = None,
    crs: str = "wgs84",
    out_crs: str = "wgs84",
    *,
    flags: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    walking: Walking | None = None,
) -> dict[str, Any]:
    """The `/nearest` answer as a GeoJSON FeatureCollection (also drawn by `/maps/nearest`).

    *k* ``None`` asks for the server's ``default_k``; any *k* is clamped to ``max_k``.
    *flags* adds properties to each station and bus (``stale``, ``needs_check`` …).
    With *walking* (``metric=walk``) the *k* nearest on foot are returned, exactly, each
    with ``walk_m`` and ``walk_min``; *radius_m* is then a walking distance, and a point
    outside the network's area is refused (:class:`~yizhan.errors.InvalidInputError`
    naming ``lon/lat``).
    """
    k_used = min(settings.default_k if k is None else k, settings.max_k)
    filtered = open_at is not None or open_for_min is not None
    at = parse_time(open_at or "now", settings.timezone)
    ts = at.timestamp()
    qlon, qlat = point_to_wgs84(lon, lat, crs)
    walks: list[float | None]
    if walking is None:
        hits = search.nearest_at(
            qlon,
            qlat,
            k_used,
            flt,
            ts,
            open_for_s=60.0 * (open_for_min or 0),
            max_distance_m=radius_m,
            only_open=filtered,
        )
        walks = [None] * len(hits)
    else:
        pairs = nearest_walk(
            search,
            walking,
            qlon,
            qlat,
            k_used,
            flt,
            ts,
            open_for_s=60.0 * (open_for_min or 0),
            max_walk_m=radius_m,
            only_open=filtered,
        )
        hits = [h for h, _ in pairs]
        walks = [w for _, w in pairs]
    registry = search.registry
    features: list[dict[str, Any]] = []
    for h, walk_m in zip(hits, walks, strict=True):
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            bus_extra = flags(bus) if flags else None
            if walking is not None and walk_m is not None:
                bus_extra = {**(bus_extra or {}), **_walk_props(walking, walk_m)}
            features.append(bus_hit_feature(search, h, out_crs, bus_extra))
        else:
            is_open, change = search.status(h.index, ts)
            extra = {"open_now": is_open, "next_change": change}
            if flags is not None:
                extra.update(flags(registry.features[h.index]))
            if walking is not None and walk_m is not None:
                extra.update(_walk_props(walking, walk_m))
            features.append(hit_feature(registry, h, out_crs, extra))
    out: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "query": {
            "lon": lon,
            "lat": lat,
            "crs": crs,
            "lon_wgs84": round(qlon, 7),
            "lat_wgs84": round(qlat, 7),
            "k": k_used,
            "radius_m": radius_m,
            "amenity": sorted(flt.amenities),
            "kind": sorted(flt.kinds) if flt.kinds else None,
            "category": sorted(flt.categories) if flt.categories else None,
            "status": sorted(flt.statuses) if flt.statuses else None,
            "stale": None if flt.freshness is None else flt.freshness == "stale",
            "open_at": at.isoformat(timespec="seconds") if filtered else None,
            "open_for_min": open_for_min,
            "time": at.isoformat(timespec="seconds"),
            "out_crs": out_crs,
        },
    }
    if walking is not None:  # great-circle answers stay exactly as they were
        out["query"]["metric"] = "walk"
        out["query"]["speed_kmh"] = walking.speed_kmh
        out["query"]["network"] = walking.source
    return out


def _walk_props(walking: Walking, walk_m: float) -> dict[str, Any]:
    """``walk_m`` and ``walk_min`` of one result."""
    return {"walk_m": round(walk_m, 1), "walk_min": round(walking.minutes(walk_m), 1)}
