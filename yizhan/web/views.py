"""What the workers' pages show, computed from the registry and the search (no HTTP here).

The routes (:mod:`yizhan.routes.pages`) and the ``yizhan poster`` command build their
pages from these functions and the templates in ``yizhan/web/templates/`` (Jinja2 with
autoescaping: every value from the registry is escaped). Directions links are computed
here, with :mod:`yizhan.geo.crs`: Amap wants GCJ-02, Baidu BD-09, OpenStreetMap WGS-84.
This module holds the pieces every page shares, the station page and the poster; the find
page is :mod:`yizhan.web.find`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Final
from urllib.parse import quote, urlencode

import jinja2
import segno

from yizhan.errors import NotFoundError
from yizhan.geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from yizhan.geo.distance import haversine_m
from yizhan.maps.i18n import (
    Lang,
    amenity_label,
    category_label,
    format_distance,
    status_label,
)
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time, to_local
from yizhan.stations.registry import Registry
from yizhan.stations.search import StationSearch
from yizhan.web.i18n import CHIPS, REPORT_CODES, TEXT, t

__all__ = [
    "DETOUR",
    "WALK_M_PER_MIN",
    "directions",
    "freshness",
    "hours_phrase",
    "phone_links",
    "poster_page",
    "public_base_url",
    "qr_svg",
    "render",
    "station_view",
    "walking_minutes",
]

#: Walking speed (metres a minute, 4.5 km/h) and the ratio of a walk to the straight line.
WALK_M_PER_MIN: Final = 75.0
DETOUR: Final = 1.3
#: Below this many minutes, "closes in N min" rather than "open until HH:MM".
SOON_MIN: Final = 60
#: Where the Amap/Baidu links say they come from (their URI APIs ask for it).
SOURCE: Final = "yizhan"

#: Amenity -> icon (a ``<symbol>`` of the pages' sprite): the six hardships and access.
ICONS: Final[dict[str, str]] = {
    amenity: chip for chip, amenities in CHIPS.items() for amenity in amenities
}
_HARDSHIP_ORDER: Final[dict[str, int]] = {a: i for i, a in enumerate(ICONS)}

#: OpenStreetMap tiles (WGS-84, like the registry): the only request to another server the
#: pages make, and only when the worker opens the map.
TILES_URL: Final = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
TILES_ATTR: Final = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)
LEAFLET_JS: Final = "/static/vendor/leaflet-1.9.4/dist/leaflet.js"
LEAFLET_CSS: Final = "/static/vendor/leaflet-1.9.4/dist/leaflet.css"


# -- templates -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("yizhan", "web/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = _asset
    return env


@lru_cache(maxsize=8)
def _asset(name: str) -> str:
    """The text of ``yizhan/web/static/<name>`` (CSS and JS inlined into the pages)."""
    return resources.files("yizhan.web").joinpath("static", name).read_text(encoding="utf-8")


def render(template: str, **context: Any) -> str:
    """Render ``yizhan/web/templates/<template>`` (autoescaped) with *context*."""
    return _env().get_template(template).render(**context)


def texts(lang: Lang, keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """Page text in *lang*, for the templates' ``T`` (and the scripts' labels)."""
    return {k: (v[0] if lang == "zh" else v[1]) for k, v in TEXT.items() if not keys or k in keys}


# -- small pieces --------------------------------------------------------------------------


def walking_minutes(distance_m: float) -> int:
    """Minutes on foot for a straight-line distance (×:data:`DETOUR` at :data:`WALK_M_PER_MIN`).

    Examples
    --------
    >>> walking_minutes(0), walking_minutes(500), walking_minutes(1200)
    (1, 9, 21)
    """
    return max(1, math.ceil(distance_m * DETOUR / WALK_M_PER_MIN))


def display_name(props: dict[str, Any], lang: Lang) -> str:
    if lang == "en" and props.get("name_en"):
        return str(props["name_en"])
    return str(props["name"])


def directions(lon: float, lat: float, name: str, lang: Lang) -> list[dict[str, str]]:
    """Links that open navigation to WGS-84 ``(lon, lat)`` in Amap, Baidu Maps and OSM.

    Amap's URI API takes GCJ-02 (``coordinate=gaode``) and Baidu's BD-09
    (``coord_type=bd09ll``); both are converted here with :mod:`yizhan.geo.crs`.
    OpenStreetMap takes WGS-84 as is.

    Parameters
    ----------
    lon, lat : float
        The destination, WGS-84 degrees.
    name : str
        Its name, shown by the apps.
    lang : {"zh", "en"}
        Language of the link labels.

    Returns
    -------
    list of dict
        ``{"key", "label", "href"}`` for ``amap_walk``, ``amap_ride``, ``baidu``, ``osm``.
    """
    g_lon, g_lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    b_lon, b_lat = (float(v) for v in wgs84_to_bd09(lon, lat))
    # Amap's `to` is "lon,lat,name": a comma in the name would shift the fields.
    amap_name = name.replace(",", " ").replace("，", " ")

    def amap(mode: str) -> str:
        return "https://uri.amap.com/navigation?" + urlencode(
            {
                "to": f"{g_lon:.6f},{g_lat:.6f},{amap_name}",
                "mode": mode,
                "coordinate": "gaode",
                "callnative": "1",
                "src": SOURCE,
            }
        )

    baidu = "https://api.map.baidu.com/marker?" + urlencode(
        {
            "location": f"{b_lat:.6f},{b_lon:.6f}",
            "title": name,
            "content": name,
            "coord_type": "bd09ll",
            "output": "html",
            "src": SOURCE,
        }
    )
    osm = (
        "https://www.openstreetmap.org/?"
        + urlencode({"mlat": f"{lat:.6f}", "mlon": f"{lon:.6f}"})
        + f"#map=18/{lat:.6f}/{lon:.6f}"
    )
    return [
        {"key": "amap_walk", "label": t("amap_walk", lang), "href": amap("walk")},
        {"key": "amap_ride", "label": t("amap_ride", lang), "href": amap("ride")},
        {"key": "baidu", "label": t("baidu", lang), "href": baidu},
        {"key": "osm", "label": t("osm", lang), "href": osm},
    ]


def _clock(when: datetime, now: datetime, lang: Lang) -> str:
    """``10:00`` today, ``tomorrow 10:00``, else ``07-16 10:00`` (in *now*'s zone)."""
    local = when.astimezone(now.tzinfo)
    hm = f"{local:%H:%M}"
    if local.date() == now.date():
        return hm
    if local.date() == now.date() + timedelta(days=1):
        return t("tomorrow", lang, time=hm)
    return f"{local:%m-%d} {hm}"


def _minutes_until(when: datetime, now: datetime) -> int:
    return max(0, math.ceil((when - now).total_seconds() / 60.0))


def hours_phrase(props: dict[str, Any], now: datetime, lang: Lang) -> tuple[str, str]:
    """What the hours mean now, and a tone for the colour.

    Parameters
    ----------
    props : dict
        A result's properties: ``open_now`` and ``next_change`` (stations), ``leaves_at``
        (a cooling bus where it stands), ``kind``.
    now : datetime
        The time of the answer (aware).
    lang : {"zh", "en"}

    Returns
    -------
    text, tone : str
        e.g. ``("closes in 25 min", "warn")``, ``("opens at 10:00", "closed")``,
        ``("open until 20:00", "ok")``, ``("hours unknown", "unknown")``.
    """
    if props.get("kind") == "cooling_bus" and "leaves_at" in props:
        leaves = props.get("leaves_at")
        if not leaves:
            return t("open_always", lang), "ok"
        when = datetime.fromisoformat(leaves)
        n = _minutes_until(when, now)
        if n <= SOON_MIN:
            return t("bus_leaves_in", lang, n=n), "warn"
        return t("bus_here_until", lang, time=_clock(when, now, lang)), "ok"
    is_open, change = props.get("open_now"), props.get("next_change")
    if is_open is None:
        return t("hours_unknown", lang), "unknown"
    if is_open:
        if not change:
            return t("open_always", lang), "ok"
        when = datetime.fromisoformat(change)
        n = _minutes_until(when, now)
        if n <= SOON_MIN:
            return t("closes_in", lang, n=n), "warn"
        return t("open_until", lang, time=_clock(when, now, lang)), "ok"
    if not change:
        return t("closed_now", lang), "closed"
    when = datetime.fromisoformat(change)
    n = _minutes_until(when, now)
    if n <= SOON_MIN:
        return t("opens_in", lang, n=n), "closed"
    return t("opens_at", lang, time=_clock(when, now, lang)), "closed"


def freshness(props: dict[str, Any], lang: Lang) -> list[tuple[str, str]]:
    """Lines about how current the record is: ``(text, tone)``.

    Reads ``last_verified_at`` and, when present, ``stale``, ``needs_check`` and
    ``needs_check_reasons`` (absent means unknown: nothing is claimed).
    """
    lines: list[tuple[str, str]] = []
    if props.get("needs_check") is True:
        reasons = [
            t(f"r_{code}", lang)
            for code in props.get("needs_check_reasons") or []
            if code in REPORT_CODES
        ]
        sep = "、" if lang == "zh" else ", "
        text = (
            t("needs_check", lang, reasons=sep.join(reasons))
            if reasons
            else t("needs_check_plain", lang)
        )
        lines.append((text, "warn"))
    verified = props.get("last_verified_at")
    if verified:
        lines.append((t("verified_on", lang, date=str(verified)[:10]), "ok"))
    else:
        lines.append((t("not_verified", lang), "unknown"))
    if props.get("stale") is True:
        lines.append((t("stale", lang), "warn"))
    return lines


def amenity_items(amenities: list[str] | None, lang: Lang) -> list[dict[str, str | None]]:
    """Amenities with label and icon, the six hardships first (in chip order)."""
    codes = sorted(amenities or [], key=lambda a: (_HARDSHIP_ORDER.get(a, 99), a))
    return [{"code": a, "label": amenity_label(a, lang), "icon": ICONS.get(a)} for a in codes]


def is_guessed(props: dict[str, Any], name: str) -> bool:
    return name in (props.get("guessed") or [])


_PHONE_SPLIT = re.compile(r"[;；,，/、|]+")


def phone_links(phone: str | None) -> list[dict[str, str]]:
    """Call links for a ``phone`` property: ``{"text", "href"}`` per number (at most two).

    A property may hold several numbers (``0371-67956331;0371-60223349``); each becomes a
    ``tel:`` link with only its digits (and a leading ``+``). Text without 5-20 digits is
    not a number and gets no link.

    Examples
    --------
    >>> [p["href"] for p in phone_links("0371-67956331;0371 6022 3349")]
    ['tel:037167956331', 'tel:037160223349']
    >>> phone_links("见现场公告")
    []
    """
    out: list[dict[str, str]] = []
    for part in _PHONE_SPLIT.split(phone or ""):
        text = part.strip()
        digits = re.sub(r"\D", "", text)
        if not 5 <= len(digits) <= 20:
            continue
        plus = "+" if text.startswith("+") else ""
        out.append({"text": text, "href": f"tel:{plus}{digits}"})
    return out[:2]


def station_href(fid: str, lang: Lang, origin: tuple[float, float] | None = None) -> str:
    """The station page of *fid* (the id percent-encoded), with the worker's position."""
    params: list[tuple[str, str]] = [("lang", lang)]
    if origin is not None:
        params += [("lon", f"{origin[0]:.6f}"), ("lat", f"{origin[1]:.6f}")]
    return f"/s/{quote(fid, safe='')}?{urlencode(params)}"


# -- the station page ----------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A bus's place in a time window (for the station page)."""

    name: str
    start: datetime
    end: datetime
    lon: float
    lat: float


def _bus_next(search: StationSearch, i: int, now: datetime) -> Where | None:
    """Where bus *i* stands next after its current place (today or tomorrow)."""
    fleet = search.fleet
    local_day = to_local(now.timestamp(), fleet.tz[i]).date()
    for day in (local_day, local_day + timedelta(days=1)):
        for seg in fleet.timeline(i, day):
            if seg.start > now:
                return Where(seg.name, seg.start, seg.end, seg.lon, seg.lat)
    return None


def station_view(
    search: StationSearch,
    fid: str,
    lang: Lang,
    now: datetime | None = None,
    origin: tuple[float, float] | None = None,
    flags: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything the page ``/s/{id}`` shows about station or cooling bus *fid*
    (*flags* adds ``stale``, ``needs_check`` … to its properties).

    Parameters
    ----------
    search : StationSearch
        The server's search (hours, buses and their placements).
    fid : str
        A station or bus id.
    lang : {"zh", "en"}
    now : datetime, optional
        Time of the answer (default: now, in the registry's zone).
    origin : (lon, lat), optional
        The worker's position (WGS-84), to show the distance.

    Raises
    ------
    NotFoundError
        No station or bus has this id.
    """
    registry = search.registry
    now = now or parse_time("now", search.timezone)
    ts = now.timestamp()
    i = registry.index_of.get(fid)
    view: dict[str, Any]
    if i is not None:
        f = registry.features[i]
        p = dict(f["properties"])
        if flags is not None:
            p.update(flags(f))
        is_open, change = search.status(i, ts)
        p.update(open_now=is_open, next_change=change)
        lon, lat = (float(v) for v in f["geometry"]["coordinates"][:2])
        hours, tone = hours_phrase(p, now, lang)
        view = {
            "is_bus": False,
            "here": (lon, lat),
            "now": hours,
            "tone": tone,
            "hours_text": p.get("opening_hours_text") or p.get("opening_hours") or "",
            "next": None,
            "schedule": [],
            "reports": list(REPORT_CODES),
        }
    else:
        fleet = search.fleet
        bi = fleet.index_of.get(fid)
        if bi is None:
            raise NotFoundError(f"no station or cooling bus with id {fid!r}")
        f = fleet.buses[bi]
        p = dict(f["properties"])
        if flags is not None:
            p.update(flags(f))
        pos, _ = fleet.position(bi, ts)
        nxt = _bus_next(search, bi, now)
        if pos is not None:
            where = {"kind": "cooling_bus", "leaves_at": pos.properties()["leaves_at"]}
            hours, tone = hours_phrase(where, now, lang)
            now_text = t("bus_at", lang, place=pos.name) + " · " + hours
            here: tuple[float, float] | None = (pos.lon, pos.lat)
        else:
            now_text, tone, here = t("bus_not_in_service", lang), "closed", None
        view = {
            "is_bus": True,
            "here": here,
            "now": now_text,
            "tone": tone,
            "hours_text": "",
            "next": (
                {
                    "text": t("bus_next", lang, place=nxt.name, time=_clock(nxt.start, now, lang)),
                    "links": directions(nxt.lon, nxt.lat, nxt.name, lang),
                }
                if nxt is not None
                else None
            ),
            "schedule": [
                {
                    "name": str(s["name"]),
                    "hours": str(s.get("opening_hours_text") or s["opening_hours"]),
                    "address": str(s.get("address") or ""),
                }
                for s in p.get("stops") or []
            ],
            "reports": [],  # reports are for stations (POST /stations/{id}/reports)
        }
    name = display_name(p, lang)
    status = p.get("status") or "operational"
    here_pt = view["here"]
    distance = None
    if origin is not None and here_pt is not None:
        d = float(haversine_m(origin[0], origin[1], here_pt[0], here_pt[1]))
        distance = f"{format_distance(d, lang)} · {t('walk_min', lang, n=walking_minutes(d))}"
    view.update(
        id=fid,
        name=name,
        other_name=str(p["name"]) if name != p["name"] else "",
        category=t("bus", lang) if view["is_bus"] else category_label(p.get("category"), lang),
        status=status_label(status, lang),
        operational=status == "operational",
        amenities=amenity_items(p.get("amenities"), lang),
        amenities_guessed=is_guessed(p, "amenities"),
        hours_guessed=is_guessed(p, "opening_hours"),
        address=str(p.get("address") or ""),
        district=str(p.get("district") or ""),
        phone=str(p.get("phone") or ""),
        phones=phone_links(p.get("phone")),
        operator=str(p.get("operator") or ""),
        plate=str(p.get("plate") or ""),
        capacity=p.get("capacity"),
        fresh=freshness(p, lang),
        links=directions(here_pt[0], here_pt[1], name, lang) if here_pt is not None else [],
        distance=distance,
        time=f"{now:%H:%M}",
        at=now,
    )
    return view


# -- posters -------------------------------------------------------------------------------


def public_base_url(settings: Settings) -> tuple[str, bool]:
    """The address printed on posters and in their QR codes, and whether it is configured.

    ``settings.public_url`` (``YIZHAN_PUBLIC_URL``) when set. Otherwise the address the
    server listens on (``http://YIZHAN_HOST:YIZHAN_PORT``, ``127.0.0.1`` for a wildcard
    host), which phones usually cannot reach: the poster says so. Never the request's
    ``Host`` header, which any client can set.
    """
    if settings.public_url:
        return settings.public_url, True
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}", False


def qr_svg(url: str) -> str:
    """An inline SVG QR code of *url* (segno; error correction M or better, 4-module border).

    The SVG scales to its container (``viewBox``, no fixed size).
    """
    qr = segno.make(url, error="m", micro=False)
    svg: str = qr.svg_inline(scale=1, border=4, omitsize=True, title=url, dark="#000")
    return svg


def poster_page(
    registry: Registry,
    fid: str,
    base_url: str,
    lang: Lang,
    today: date | None = None,
    nonce: str = "",
    configured: bool = True,
) -> str:
    """The printable A4 poster (HTML) of station or bus *fid*.

    Parameters
    ----------
    registry : Registry
        Where the station is.
    fid : str
        Station or bus id.
    base_url : str
        The public address of the server (``https://yizhan.example.org``); the QR code
        opens ``<base_url>/s/<id>``.
    lang : {"zh", "en"}
    today : date, optional
        Printed in the footer (default: today).
    nonce : str
        The Content Security Policy nonce of the page's one script (print button).
    configured : bool
        ``False``: *base_url* is a fallback, not the configured public address; the
        poster warns on screen and labels the printed link.

    Raises
    ------
    NotFoundError
        No station or bus has this id.
    """
    i = registry.index_of.get(fid)
    f: dict[str, Any] | None = (
        registry.features[i]
        if i is not None
        else next((b for b in registry.buses if b["id"] == fid), None)
    )
    if f is None:
        raise NotFoundError(f"no station or cooling bus with id {fid!r}")
    p = f["properties"]
    is_bus = p.get("kind") == "cooling_bus"
    url = base_url.rstrip("/") + "/s/" + quote(fid, safe="")
    name = display_name(p, lang)
    return render(
        "poster.html",
        lang=lang,
        nonce=nonce,
        T=texts(lang),
        is_bus=is_bus,
        name=name,
        other_name=str(p["name"]) if name != p["name"] else "",
        category=t("bus", lang) if is_bus else category_label(p.get("category"), lang),
        amenities=amenity_items(p.get("amenities"), lang),
        amenities_guessed=is_guessed(p, "amenities"),
        hours_text=str(p.get("opening_hours_text") or p.get("opening_hours") or ""),
        hours_guessed=is_guessed(p, "opening_hours"),
        schedule=[
            {
                "name": str(s["name"]),
                "hours": str(s.get("opening_hours_text") or s["opening_hours"]),
            }
            for s in (p.get("stops") or [])
        ],
        address=str(p.get("address") or ""),
        phone=str(p.get("phone") or ""),
        plate=str(p.get("plate") or ""),
        url=url,
        configured=configured,
        qr=qr_svg(url),
        today=(today or date.today()).isoformat(),
    )
