"""What the find page (``/``, ``/find``) shows: the nearest places for the chips, the closer
places "open now" left out and why, one line for what every result shares, and "no station
in your area" far from every station (no HTTP here; :mod:`yizhan.routes.pages` serves it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import numpy as np

from yizhan.errors import InvalidInputError
from yizhan.maps.i18n import Lang, category_label, compass_point, format_distance, status_label
from yizhan.query.nearby import LeftOut, closer_left_out, nearest_any
from yizhan.query.nearest import nearest_collection
from yizhan.query.walking import Walking
from yizhan.settings import Settings
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import StationSearch
from yizhan.web.i18n import CHIPS, t
from yizhan.web.views import (
    amenity_items,
    directions,
    display_name,
    freshness,
    hours_phrase,
    is_guessed,
    phone_links,
    station_href,
    walking_minutes,
)

__all__ = [
    "RESULTS_K",
    "check_needs",
    "district_centres",
    "far_view",
    "find_nearest",
    "left_out",
    "left_out_section",
    "left_out_view",
    "registry_centre",
    "result_view",
    "shared_notes",
]

#: How many results the find page lists.
RESULTS_K: Final = 6
#: How many closer places left out by "open now" are named (the rest are counted).
LEFT_OUT_K: Final = 5

Flags = Callable[[dict[str, Any]], dict[str, Any]]


def check_needs(needs: list[str] | None) -> list[str]:
    """Validate the ``need`` chips; returned in chip order without repeats."""
    got = set(needs or [])
    unknown = sorted(got - set(CHIPS))
    if unknown:
        raise InvalidInputError("need", f"Expected one of {', '.join(CHIPS)}, got {unknown[0]!r}")
    return [n for n in CHIPS if n in got]


def find_nearest(
    search: StationSearch,
    settings: Settings,
    lon: float,
    lat: float,
    needs: list[str],
    open_only: bool,
    k: int = RESULTS_K,
    flags: Flags | None = None,
    walking: Walking | None = None,
) -> tuple[list[dict[str, Any]], datetime]:
    """The *k* nearest operational stations and cooling buses answering every chip in *needs*,
    within ``settings.area_radius_m``.

    A chip is answered by any of its amenities (``charging``: phone or e-bike), so the
    search runs once per combination of alternatives and the answers are merged by
    distance (then id): each is exact, so the merge is too. With *walking* (the server's
    street network) the stations are the nearest on foot, with ``walk_min``, unless the
    position is outside the network's area: then the great-circle answer, whose minutes
    are the straight-line estimate.

    Returns
    -------
    features : list of dict
        ``/nearest`` Features (WGS-84), nearest first.
    now : datetime
        The time the hours were evaluated at (aware, the registry's zone).
    """
    groups = [CHIPS[n] for n in needs]
    if walking is not None and walking.snap_point_or_none(lon, lat) is None:
        walking = None
    best: dict[str, dict[str, Any]] = {}
    when = ""
    for combo in itertools.product(*groups):
        fc = nearest_collection(
            search,
            settings,
            lon,
            lat,
            k,
            StationFilter.make(amenities=combo),
            radius_m=settings.area_radius_m,
            open_at="now" if open_only else None,
            flags=flags,
            walking=walking,
        )
        when = str(fc["query"]["time"])
        for f in fc["features"]:
            best.setdefault(str(f["id"]), f)
    key = "walk_m" if walking is not None else "distance_m"
    ordered = sorted(best.values(), key=lambda f: (f["properties"][key], str(f["id"])))
    return ordered[:k], datetime.fromisoformat(when)


def result_view(
    feature: dict[str, Any],
    rank: int,
    now: datetime,
    lang: Lang,
    origin: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """One result of the find page: everything the template shows, as plain values.

    *origin* (the worker's WGS-84 position, when it is one) is passed on to the station page.
    ``notes`` names the caveats of the record (``hours_guessed``, ``amenities_guessed``,
    ``not_verified``, ``stale``) that :func:`shared_notes` may say once for the whole list.
    """
    p = feature["properties"]
    lon, lat = (float(v) for v in feature["geometry"]["coordinates"][:2])
    name = display_name(p, lang)
    is_bus = p.get("kind") == "cooling_bus"
    hours, tone = hours_phrase(p, now, lang)
    status = p.get("status") or "operational"
    fresh = freshness(p, lang)
    notes = {
        "hours_guessed": is_guessed(p, "opening_hours"),
        "amenities_guessed": is_guessed(p, "amenities") and bool(p.get("amenities")),
        "not_verified": not p.get("last_verified_at"),
        "stale": p.get("stale") is True,
    }
    return {
        "id": str(feature["id"]),
        "rank": rank,
        "is_bus": is_bus,
        "name": name,
        "place": str(p.get("stop_name") or "") if is_bus else str(p.get("address") or ""),
        "category": t("bus", lang) if is_bus else category_label(p.get("category"), lang),
        "distance": format_distance(float(p["distance_m"]), lang),
        "distance_m": float(p["distance_m"]),
        "walk": t(
            "walk_min",
            lang,
            n=max(1, math.ceil(float(p["walk_min"])))
            if "walk_min" in p
            else walking_minutes(float(p["distance_m"])),
        ),
        "compass": t("toward", lang, dir=compass_point(float(p.get("bearing_deg") or 0.0), lang)),
        "hours": hours,
        "hours_guessed": notes["hours_guessed"],
        "tone": tone,
        "status": None if status == "operational" else status_label(status, lang),
        "amenities": amenity_items(p.get("amenities"), lang),
        "amenities_guessed": notes["amenities_guessed"],
        "fresh": fresh,
        "notes": notes,
        "phones": phone_links(p.get("phone")),
        "links": directions(lon, lat, name, lang),
        "href": station_href(str(feature["id"]), lang, origin),
        "lon": round(lon, 6),
        "lat": round(lat, 6),
    }


#: The caveats :func:`shared_notes` may collapse, in the order said, with the freshness
#: line each one is (``None``: not a freshness line).
_NOTES: Final = (
    ("hours_guessed", None),
    ("amenities_guessed", None),
    ("not_verified", "not_verified"),
    ("stale", "stale"),
)


def shared_notes(results: list[dict[str, Any]], lang: Lang) -> str:
    """Say once what every result shares, and take it off the cards.

    When every result (two or more) has guessed hours, guessed amenities, no on-site check
    or possibly outdated information, the cards would repeat it line after line: it is
    said once above the list (the returned text, ``""`` when nothing is shared) and the
    cards' own lines for it are dropped (*results* is changed in place).
    """
    if len(results) < 2:
        return ""
    shared = [key for key, _ in _NOTES if all(r["notes"][key] for r in results)]
    if not shared:
        return ""
    drop = {t(line, lang) for key, line in _NOTES if key in shared and line is not None}
    for r in results:
        r["fresh"] = [(text, tone) for text, tone in r["fresh"] if text not in drop]
        if "hours_guessed" in shared:
            r["hours_guessed"] = False
        if "amenities_guessed" in shared:
            r["amenities_guessed"] = False
    sep = "、" if lang == "zh" else ", "
    return t("shared_notes", lang, notes=sep.join(t(f"n_{key}", lang) for key in shared))


def left_out_view(
    feature: dict[str, Any], now: datetime, lang: Lang, origin: tuple[float, float] | None
) -> dict[str, Any]:
    """A closer place "open now" left out: its name, distance and why it is not listed.

    The reason is the hours as they matter now ("opens at 08:00", "opens in 9 min",
    "closed") or, when the hours are unknown, "hours unknown — call first" (a phone number
    is known) or "— check before you go", with the source's own hours text.
    """
    p = feature["properties"]
    phones = phone_links(p.get("phone"))
    if p.get("open_now") is None:
        reason = t("left_out_unknown_call" if phones else "left_out_unknown", lang)
        tone = "unknown"
    else:
        reason, tone = hours_phrase(p, now, lang)
        if is_guessed(p, "opening_hours"):
            reason += t("guessed_note", lang)
    source = str(p.get("opening_hours_text") or "")
    distance_m = float(p["distance_m"])
    return {
        "id": str(feature["id"]),
        "name": display_name(p, lang),
        "distance": format_distance(distance_m, lang),
        "walk": t("walk_min", lang, n=walking_minutes(distance_m)),
        "reason": reason,
        "tone": tone,
        "source": t("left_out_source", lang, text=source) if source else "",
        "phones": phones,
        "href": station_href(str(feature["id"]), lang, origin),
    }


def left_out(
    search: StationSearch,
    settings: Settings,
    lon: float,
    lat: float,
    needs: list[str],
    now: datetime,
    shown: list[dict[str, Any]],
    flags: Flags | None = None,
) -> LeftOut:
    """The operational places answering the chips that "open now" hid: closer than the
    farthest place listed (within the area radius when nothing is listed)."""
    within = (
        float(shown[-1]["properties"]["distance_m"]) if shown else float(settings.area_radius_m)
    )
    return closer_left_out(
        search,
        lon,
        lat,
        [CHIPS[n] for n in needs],
        now.timestamp(),
        within,
        {str(f["id"]) for f in shown},
        limit=LEFT_OUT_K,
        max_k=settings.max_k,
        flags=flags,
    )


def left_out_section(
    search: StationSearch,
    settings: Settings,
    here: tuple[float, float],
    needs: list[str],
    now: datetime,
    shown: list[dict[str, Any]],
    lang: Lang,
    origin: tuple[float, float] | None,
    show_all_href: str,
    flags: Flags | None = None,
) -> dict[str, Any]:
    """The find page's section on what "open now" left out: a heading, the nearest places
    left out (:func:`left_out_view`), and a line counting the others with a link that
    lists everything (*show_all_href*)."""
    lo = left_out(search, settings, here[0], here[1], needs, now, shown, flags)
    more = lo.total - len(lo.features)
    return {
        "heading": t("left_out_heading" if shown else "left_out_heading_none", lang),
        "items": [left_out_view(f, now, lang, origin) for f in lo.features],
        "more": t("left_out_more", lang, n=f"{more}+" if lo.capped else more) if more > 0 else "",
        "all_href": show_all_href,
    }


def far_view(
    search: StationSearch,
    settings: Settings,
    lon: float,
    lat: float,
    now: datetime,
    lang: Lang,
) -> dict[str, str] | None:
    """``None`` when a station is within ``settings.area_radius_m`` of the point; else what
    the page says instead of a list: no station in your area, and how far the nearest is."""
    nearest = nearest_any(search, lon, lat, now.timestamp())
    radius = format_distance(float(settings.area_radius_m), lang)
    if nearest is None:
        return {"title": t("far_title", lang), "text": t("far_empty", lang)}
    distance_m = float(nearest["properties"]["distance_m"])
    if distance_m <= settings.area_radius_m:
        return None
    return {
        "title": t("far_title", lang),
        "text": t("far_text", lang, radius=radius, distance=format_distance(distance_m, lang)),
    }


_centres: dict[int, tuple[Registry, dict[str, tuple[float, float]]]] = {}


def district_centres(registry: Registry) -> dict[str, tuple[float, float]]:
    """Each district's centre (mean position of its stations, WGS-84), by name.

    A worker whose phone cannot give a position picks a district; distances are then
    from its centre. Cached per registry.
    """
    hit = _centres.get(id(registry))
    if hit is not None and hit[0] is registry:
        return hit[1]
    names = registry.district
    out: dict[str, tuple[float, float]] = {}
    for name in sorted({str(d) for d in names.tolist() if d}):
        m = names == name
        out[name] = (
            round(float(np.mean(registry.lon[m])), 6),
            round(float(np.mean(registry.lat[m])), 6),
        )
    if len(_centres) >= 4:
        _centres.clear()
    _centres[id(registry)] = (registry, out)
    return out


def registry_centre(registry: Registry) -> tuple[float, float]:
    """The median station position (where the map opens without a location)."""
    if len(registry) == 0:
        return 113.65, 34.76
    return float(np.median(registry.lon)), float(np.median(registry.lat))


def busy_text(busy: dict[str, Any] | None, lang: Lang) -> str | None:
    """The "busy now" line of a result (:func:`yizhan.query.usage_service.busy_now`); ``None``
    when there were too few check-ins in the last hour to say anything."""
    if busy is None:
        return None
    return t(f"busy_{busy['level']}", lang, n=busy["checkins_last_hour"])
