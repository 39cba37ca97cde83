"""Nearest stations (and cooling buses) to a point, as the GeoJSON FeatureCollection that
``GET /nearest``, ``/maps/nearest``, the workers' find page and ``yizhan nearest --json``
all return."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yizhan.geo.crs import point_to_wgs84
from yizhan.query.features import bus_hit_feature, hit_feature
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
) -> dict[str, Any]:
    """The `/nearest` answer as a GeoJSON FeatureCollection (also drawn by `/maps/nearest`).

    *k* ``None`` asks for the server's ``default_k``; any *k* is clamped to ``max_k``.
    *flags* adds properties to each station and bus (``stale``, ``needs_check`` …).
    """
    k_used = min(settings.default_k if k is None else k, settings.max_k)
    filtered = open_at is not None or open_for_min is not None
    at = parse_time(open_at or "now", settings.timezone)
    ts = at.timestamp()
    qlon, qlat = point_to_wgs84(lon, lat, crs)
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
    registry = search.registry
    features: list[dict[str, Any]] = []
    for h in hits:
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            features.append(bus_hit_feature(search, h, out_crs, flags(bus) if flags else None))
        else:
            is_open, change = search.status(h.index, ts)
            extra = {"open_now": is_open, "next_change": change}
            if flags is not None:
                extra.update(flags(registry.features[h.index]))
            features.append(hit_feature(registry, h, out_crs, extra))
    return {
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
