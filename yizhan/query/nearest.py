"""Nearest stations (and cooling buses) to a point, as the GeoJSON FeatureCollection that
``GET /nearest``, ``/maps/nearest``, the workers' find page and ``yizhan nearest --json``
all return.

The answer is built once, as JSON bytes (:func:`nearest_json`, what the API sends): each
station's static part comes serialized from the registry snapshot's cache
(:func:`~yizhan.query.features.station_head`) and only the per-request members
(distance, bearing, hours, flags) are serialized per request and spliced in.
:func:`nearest_collection` is the same answer parsed, for the pages, the maps and the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from yizhan.geo.crs import point_to_wgs84
from yizhan.query.features import (
    JSON_OPTIONS,
    Flags,
    bus_hit_feature,
    distance_bearing,
    hit_feature,
    round_to,
    station_head,
)
from yizhan.query.walking import Walking, nearest_walk
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time, zone
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
    # "now" without parse_time's text handling: the same aware time, in the registry's zone.
    at = (
        parse_time(open_at, settings.timezone) if open_at else datetime.now(zone(settings.timezone))
    )
    ts = at.timestamp()
    qlon, qlat = (float(lon), float(lat)) if crs == "wgs84" else point_to_wgs84(lon, lat, crs)
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
    cache = registry.json_cache
    status = search.status
    # A Flags reads the registry's columns (Flags.station_json); any other callable is
    # given each station's Feature, and the station is then serialized as a whole.
    flags_obj = flags if isinstance(flags, Flags) else None
    spliced = out_crs == "wgs84" and (flags is None or flags_obj is not None)
    features: list[orjson.Fragment] = []
    for h in hits:
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            feature = bus_hit_feature(search, h, out_crs, flags(bus) if flags else None)
            features.append(orjson.Fragment(orjson.dumps(feature, option=JSON_OPTIONS)))
            continue
        i = h.index
        is_open, change = status(i, ts)
        head = (cache[i] or station_head(registry, i)) if spliced else b""
        if head:  # spliced (see yizhan.query.features), written out: the hot loop
            distance_m, bearing_deg = distance_bearing(h)
            computed = orjson.dumps(
                {
                    "distance_m": distance_m,
                    "bearing_deg": bearing_deg,
                    "open_now": is_open,
                    "next_change": change,
                },
                option=JSON_OPTIONS,
            )
            tail = flags_obj.station_json(registry, i) if flags_obj is not None else b""
            features.append(orjson.Fragment(b"".join((head, computed[1:-1], tail, b"}}"))))
        else:  # another system, a stored computed property or flags from a function
            extra: dict[str, Any] = {"open_now": is_open, "next_change": change}
            if flags_obj is not None:
                extra.update(flags_obj.station(registry, i))
            elif flags is not None:
                extra.update(flags(registry.features[i]))
            feature = hit_feature(registry, h, out_crs, extra)
            features.append(orjson.Fragment(orjson.dumps(feature, option=JSON_OPTIONS)))
    time_text = _seconds_text(at, ts)
    return orjson.dumps(
        {
            "type": "FeatureCollection",
            "features": features,
            "numberReturned": len(features),
            "query": {
                "lon": lon,
                "lat": lat,
                "crs": crs,
                "lon_wgs84": round_to(qlon, 7, 1e7),
                "lat_wgs84": round_to(qlat, 7, 1e7),
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


#: The last time :func:`_seconds_text` formatted: ``(whole POSIX seconds, zone, text)``.
_last_text: tuple[int, Any, str] = (0, None, "")


def _seconds_text(at: datetime, ts: float) -> str:
    """``at.isoformat(timespec="seconds")`` (*ts* is ``at.timestamp()``), formatted once per
    second and zone: answers within the same second share it (zone offsets change only on
    whole seconds, so the text is the same)."""
    global _last_text
    second, tz, text = _last_text
    whole = math.floor(ts)
    if whole != second or at.tzinfo is not tz:
        text = at.isoformat(timespec="seconds")
        _last_text = (whole, at.tzinfo, text)
    return text


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
    walking: Walking | None = None,
) -> dict[str, Any]:
    """The `/nearest` answer (:func:`nearest_json`) as a dict (also drawn by `/maps/nearest`).

    With *walking* (``metric=walk``) the *k* nearest on foot, exactly, each with ``walk_m``
    and ``walk_min`` (:func:`nearest_walk_collection`).
    """
    if walking is not None:
        return nearest_walk_collection(
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
            walking=walking,
        )
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


def nearest_walk_collection(
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
    flags: Flags | FlagsFn | None,
    walking: Walking,
) -> dict[str, Any]:
    """The `/nearest?metric=walk` answer, built feature by feature: the *k* nearest on foot,
    exactly, each with ``walk_m`` and ``walk_min``; *radius_m* is a walking distance, and a
    point outside the network's area is refused (:class:`~yizhan.errors.InvalidInputError`
    naming ``lon/lat``). *k* and *flags* as in :func:`nearest_collection`.
    """
    k_used = min(settings.default_k if k is None else k, settings.max_k)
    filtered = open_at is not None or open_for_min is not None
    at = parse_time(open_at or "now", settings.timezone)
    ts = at.timestamp()
    qlon, qlat = point_to_wgs84(lon, lat, crs)
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
    registry = search.registry
    features: list[dict[str, Any]] = []
    for h, walk_m in pairs:
        walked = {"walk_m": round(walk_m, 1), "walk_min": round(walking.minutes(walk_m), 1)}
        if isinstance(h, BusHit):
            bus = search.fleet.buses[h.position.bus_index]
            flagged = flags(bus) if flags is not None else {}
            features.append(bus_hit_feature(search, h, out_crs, {**flagged, **walked}))
        else:
            is_open, change = search.status(h.index, ts)
            extra: dict[str, Any] = {"open_now": is_open, "next_change": change}
            if flags is not None:
                extra.update(flags(registry.features[h.index]))
            extra.update(walked)
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
            **_filter_query(flt),
            "open_at": at.isoformat(timespec="seconds") if filtered else None,
            "open_for_min": open_for_min,
            "time": at.isoformat(timespec="seconds"),
            "out_crs": out_crs,
        },
    }
    out["query"].update(metric="walk", speed_kmh=walking.speed_kmh, network=walking.source)
    return out
