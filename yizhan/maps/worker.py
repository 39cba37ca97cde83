"""The worker's map: where I am, the nearest stations, and how far each one is."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import folium

from yizhan.errors import InvalidInputError
from yizhan.geo.distance import bearing_deg, haversine_m
from yizhan.maps._core import (
    CATEGORY_COLORS,
    STALE_LEGEND,
    UNCATEGORISED_COLOR,
    JsControl,
    JsLayer,
    add_map_controls,
    meta_for,
    new_map,
)
from yizhan.maps.asset_refs import DEFAULT_BASE_URL, check_mode, normalize_base_url
from yizhan.maps.i18n import (
    Lang,
    capitalize,
    category_label,
    check_lang,
    compass_point,
    format_distance,
    label,
    stale_text,
)


def _position(value: object, field: str, lo: float, hi: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise InvalidInputError(field, f"Expected a number in {lo:g}..{hi:g}, got {value!r}")
    return float(value)


def _hit(i: int, f: Mapping[str, Any], lon: float, lat: float, lng: Lang) -> dict[str, Any]:
    where = f"hits[{i}]"
    try:
        coords = f["geometry"]["coordinates"]
        s_lon = _position(coords[0], f"{where}.geometry.coordinates", -180, 180)
        s_lat = _position(coords[1], f"{where}.geometry.coordinates", -90, 90)
    except (KeyError, TypeError, IndexError) as exc:
        raise InvalidInputError(f"{where}.geometry", "Expected a GeoJSON Point [lon, lat]") from exc
    p = f.get("properties") or {}
    dist = p.get("distance_m")
    if not isinstance(dist, int | float) or isinstance(dist, bool) or not math.isfinite(dist):
        dist = float(haversine_m(lon, lat, s_lon, s_lat))
    bearing = p.get("bearing_deg")
    if (
        not isinstance(bearing, int | float)
        or isinstance(bearing, bool)
        or not math.isfinite(bearing)
    ):
        bearing = float(bearing_deg(lon, lat, s_lon, s_lat))
    category = p.get("category")
    open_now = p.get("open_now")
    reasons = [str(c) for c in p.get("needs_check_reasons") or []]
    verified = p.get("last_verified_at")
    return {
        "rank": i + 1,
        "lat": round(s_lat, 7),
        "lon": round(s_lon, 7),
        "id": str(f.get("id") or ""),
        "name": str(p.get("name") or f.get("id") or ""),
        "name_en": str(p.get("name_en") or ""),
        "distance_text": format_distance(float(dist), lng),
        # Under ~15 m the direction is noise.
        "direction": compass_point(float(bearing), lng) if dist >= 15 else "",
        "category": category if category in CATEGORY_COLORS else None,
        "status": p.get("status"),
        "open_now": open_now if isinstance(open_now, bool) else None,
        "opening_hours": p.get("opening_hours"),
        "amenities": [str(a) for a in p.get("amenities") or []],
        "guessed": [str(g) for g in p.get("guessed") or []],
        "address": p.get("address"),
        # Freshness, when the hit carries it (absent: nothing is claimed).
        "stale": p.get("stale") is True,
        "needs_check": p.get("needs_check") is True or bool(reasons),
        "reasons": reasons,
        "verified": str(verified)[:10] if verified else None,
        "color": CATEGORY_COLORS.get(str(category), UNCATEGORISED_COLOR),
    }


def worker_map(
    lon: float,
    lat: float,
    hits: Sequence[Mapping[str, Any]],
    *,
    lang: str = "zh",
    stale_after_days: int | None = None,
    assets: str = "local",
    asset_base_url: str = DEFAULT_BASE_URL,
    tiles: str | None = "OpenStreetMap",
    attr: str | None = None,
) -> folium.Map:
    """Build a worker's map of the nearest stations.

    Draws the worker's position, each station as a numbered badge (in the order given,
    normally nearest first) coloured by category, a straight dashed line to each with
    its distance as a label, and a list of the stations; popups show name, distance and
    direction, category, open now, hours and amenities. A hit whose properties say
    ``needs_check`` (with ``needs_check_reasons``) gets a red ring and a warning naming
    the problems; one that says ``stale`` a greyed, dashed badge and a note.

    Parameters
    ----------
    lon, lat : float
        The worker's position, WGS-84 degrees.
    hits : sequence of dict
        GeoJSON Point Features whose properties include ``name``, ``distance_m``,
        ``bearing_deg``, ``amenities``, ``opening_hours`` and ``open_now`` (as returned
        by the nearest-station API). Distance and bearing are computed when missing;
        ``stale``, ``needs_check``, ``needs_check_reasons`` and ``last_verified_at`` are
        shown when present.
    lang : {"zh", "en"}
        Language of every label.
    stale_after_days : int, optional
        The staleness threshold, for the text ("not verified for 180+ days"; without it
        "not verified recently").
    assets : {"local", "inline", "cdn"}
        How JS/CSS reach the browser (see :func:`yizhan.maps.planner_map`).
    asset_base_url : str
        Where the vendored assets are served (``local``), with the maps' runtime under
        its ``yizhan-map/`` (as the API serves them at ``/static/vendor/``).
    tiles : str or None
        Basemap; ``None`` for none. Must be WGS-84.
    attr : str, optional
        Attribution for a custom *tiles* URL.

    Returns
    -------
    folium.Map
        The map.

    Raises
    ------
    InvalidInputError
        A position or argument is not acceptable (the message names it).
    """
    lng = check_lang(lang)
    mode = check_mode(assets)
    base = normalize_base_url(asset_base_url)
    w_lon = _position(lon, "lon", -180, 180)
    w_lat = _position(lat, "lat", -90, 90)
    items = [_hit(i, f, w_lon, w_lat, lng) for i, f in enumerate(hits)]
    data = {"lat": w_lat, "lon": w_lon, "hits": items}
    meta = meta_for(lng, stale_text=capitalize(stale_text(stale_after_days, lng)))

    m = new_map(
        lang=lng,
        assets=mode,
        asset_base_url=base,
        title_key="worker_title",
        tiles=tiles,
        attr=attr,
        center=(w_lat, w_lon),
        zoom=16,
    )
    JsLayer("workerLines", meta, data, name=label("layer_lines", lng)).add_to(m)
    JsLayer("workerYou", meta, data, name=label("layer_you", lng)).add_to(m)
    stations = JsLayer("workerStations", meta, data, name=label("layer_nearest", lng))
    stations.add_to(m)
    if items:
        JsControl("workerList", meta, data, stations).add_to(m)

    legend: list[list[Any]] = [
        ["you", label("legend_you", lng)],
        ["line", label("legend_line", lng)],
    ]
    seen: set[str | None] = set()
    for h in items:
        if h["category"] not in seen:
            seen.add(h["category"])
            legend.append(["dot", category_label(h["category"], lng), h["color"]])
    if any(h["stale"] for h in items):
        legend.append(
            [
                "stale",
                label("legend_stale", lng, stale=stale_text(stale_after_days, lng)),
                STALE_LEGEND,
            ]
        )
    if any(h["needs_check"] for h in items):
        legend.append(["check", label("legend_needs_check", lng)])
    JsControl("legend", meta, legend, "bottomright").add_to(m)
    add_map_controls(m, lng, layers_collapsed=True)

    if items:
        lats = [w_lat, *(h["lat"] for h in items)]
        lons = [w_lon, *(h["lon"] for h in items)]
        m.fit_bounds(
            [[min(lats), min(lons)], [max(lats), max(lons)]], padding=(40, 40), max_zoom=17
        )
    return m
