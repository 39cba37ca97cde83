"""Nearest stations (and cooling buses) to a point, as the GeoJSON FeatureCollection that
``GET /nearest``, ``/maps/nearest``, the workers' find page and ``yizhan nearest --json``
all return.

The answer is built once, as JSON bytes (:func:`nearest_json`, what the API sends): each
station's static part comes serialized from the registry snapshot's cache and only the
per-request members are serialized per request (:func:`~yizhan.query.features.hit_json`).
:func:`nearest_collection` is the same answer parsed, for the pages, the maps and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from yizhan.geo.crs import point_to_wgs84
from yizhan.query.features import JSON_OPTIONS, Flags, bus_hit_feature, hit_json
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import StationFilter
from yizhan.stations.search import BusHit, StationSearch

FlagsFn = Callable[[dict[str, Any]], dict[str, Any]]


@lru_cache(maxsize=512)
def station_filter(
    amenities: tuple[str, ...] | None,
    kinds: tuple[str, ...] | None,
    categories: tuple[str, ...] | None,
    statuses: tuple[str, ...] | None,
    stale: bool | None,
    stale_before: Any,
) -> StationFilter:
    """:meth:`StationFilter.make` for these values, remembered: a server sees the same few
    combinations again and again (the arguments are tuples so that they can be keys)."""
    return StationFilter.make(
        amenities=amenities,
        kinds=kinds,
        categories=categories,
        statuses=statuses,
        stale=stale,
        stale_before=stale_before,
    )


def nearest_json(
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
    flags: Flags | FlagsFn | None = None,
) -> bytes:
    """The `/nearest` answer: a GeoJSON FeatureCollection, as JSON bytes.

    *k* ``None`` asks for the server's ``default_k``; any *k* is clamped to ``max_k``.
    *flags* adds properties to each station and bus (``stale``, ``needs_check`` …).

    Raises
    ------
    InvalidInputError
        *open_at* is not ``now`` or an ISO 8601 time; *crs* or *out_crs* is unknown.
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
    # A Flags reads the registry's columns (Flags.station_json); any other callable is
    # given each station's Feature.
    flags_obj = flags if isinstance(flags, Flags) else None
    flags_fn = None if flags_obj is not None else flags
    features: list[orjson.Fragment] = []
    for h in hits:
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            feature = bus_hit_feature(search, h, out_crs, flags(bus) if flags else None)
            features.append(orjson.Fragment(orjson.dumps(feature, option=JSON_OPTIONS)))
        else:
            is_open, change = search.status(h.index, ts)
            extra = {"open_now": is_open, "next_change": change}
            if flags_fn is not None:
                extra.update(flags_fn(registry.features[h.index]))
            features.append(orjson.Fragment(hit_json(registry, h, out_crs, extra, flags_obj)))
    time_text = at.isoformat(timespec="seconds")
    return orjson.dumps(
        {
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
                **_filter_query(flt),
                "open_at": time_text if filtered else None,
                "open_for_min": open_for_min,
                "time": time_text,
                "out_crs": out_crs,
            },
        },
        option=JSON_OPTIONS,
    )


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
    flags: Flags | FlagsFn | None = None,
) -> dict[str, Any]:
    """The `/nearest` answer (:func:`nearest_json`) as a dict (also drawn by `/maps/nearest`)."""
    answer: dict[str, Any] = orjson.loads(
        nearest_json(
            search,
            settings,
            lon,
            lat,
            k,
            flt,
            radius_m,
            open_at,
            open_for_min,
            crs,
            out_crs,
            flags=flags,
        )
    )
    return answer


@lru_cache(maxsize=512)
def _filter_query(flt: StationFilter) -> dict[str, Any]:
    """The members of the answer's ``query`` that describe *flt* (shared, never changed)."""
    return {
        "amenity": sorted(flt.amenities),
        "kind": sorted(flt.kinds) if flt.kinds else None,
        "category": sorted(flt.categories) if flt.categories else None,
        "status": sorted(flt.statuses) if flt.statuses else None,
        "stale": None if flt.freshness is None else flt.freshness == "stale",
    }
