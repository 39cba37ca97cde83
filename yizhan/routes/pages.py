"""The workers' pages: ``/`` and ``/find`` (find a station), ``/s/{id}`` (one station or
cooling bus), ``/s/{id}/poster`` (a printable A4 poster with a QR code) and ``/suggest``
(suggest a missing place); the installable app's ``/manifest.webmanifest``, ``/sw.js`` and
icons; ``/find/basemap.json`` (what the find page's map draws when tiles cannot load).

The pages are rendered here, on the server, in one response each (CSS and JavaScript
inline): a phone on a weak signal gets a useful list in one round trip, and the list works
without JavaScript once the position is known (chips, district picker and language switch
are plain links and forms). JavaScript asks for the position, lazy-loads Leaflet (served
by Yizhan, ``/static/vendor/``) only when the worker opens the map, and sends reports.

Everything from the registry is escaped by the templates' autoescaping; a Content Security
Policy with a per-response nonce allows no other script on these pages.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.geo.crs import point_to_wgs84
from yizhan.maps.i18n import Lang, amenity_label
from yizhan.query.basemap import basemap
from yizhan.query.usage_service import busy_now
from yizhan.routes.deps import FastJSONResponse, FlagsDep, SearchDep, SettingsDep
from yizhan.routes.nearest import walking_of
from yizhan.routes.params import CrsParam
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.web import find, pwa, views
from yizhan.web.i18n import CHIPS, pick_lang, t

router = APIRouter(tags=["pages"])

LangParam = Annotated[
    str | None,
    Query(
        pattern="^(zh|en)$",
        description="Page language; default: the browser's preference (Accept-Language), "
        "else Chinese.",
    ),
]
OptLon = Annotated[
    float | None,
    Query(ge=-180, le=180, allow_inf_nan=False, description="The worker's longitude, in `crs`."),
]
OptLat = Annotated[
    float | None,
    Query(ge=-90, le=90, allow_inf_nan=False, description="The worker's latitude, in `crs`."),
]
StationId = Annotated[str, Path(description="A station's or cooling bus's id.")]

#: Labels the find page's script uses (the rest of the text is rendered in the HTML).
FIND_JS_TEXT = (
    "locating",
    "locate_failed",
    "locate_unsupported",
    "map_tap_hint",
    "map_failed",
    "pick_on_map",
    "show_map",
    "hide_map",
    "map_offline",
    "you_are_here",
)
#: Where the find page's map gets the area's outlines and station dots.
BASEMAP_PATH = "/find/basemap.json"
STATION_JS_TEXT = (
    "report_thanks",
    "report_rate_limited",
    "report_error",
    "report_offline",
    "report_sending",
)


def _csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https://tile.openstreetmap.org; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _html(body: str, nonce: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body,
        status_code=status_code,
        headers={
            "Content-Security-Policy": _csp(nonce),
            "Cache-Control": "no-store",
            "Vary": "Accept-Language",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def _href(path: str, params: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _switch_href(request: Request, lang: Lang) -> str:
    """The current page in the other language."""
    other = "en" if lang == "zh" else "zh"
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return _href(request.url.path, [*params, ("lang", other)])


def _not_found(lang: Lang, request: Request, nonce: str) -> HTMLResponse:
    body = views.render(
        "notfound.html",
        lang=lang,
        T=views.texts(lang),
        nonce=nonce,
        switch_href=_switch_href(request, lang),
    )
    return _html(body, nonce, status_code=404)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get(
    "/find",
    response_class=HTMLResponse,
    summary="Find a station: the page for workers' phones",
    responses={422: {"description": "Only one of lon/lat, an unknown district or chip."}},
)
async def find_page(
    request: Request,
    search: SearchDep,
    settings: SettingsDep,
    flags: FlagsDep,
    lon: OptLon = None,
    lat: OptLat = None,
    crs: Annotated[CrsParam, Query(description="System of `lon`/`lat`.")] = "wgs84",
    district: Annotated[
        str | None, Query(description="No position: distances from this district's centre.")
    ] = None,
    need: Annotated[
        list[str] | None,
        Query(description=f"Filter chips, repeatable, all required: {', '.join(CHIPS)}."),
    ] = None,
    open_only: Annotated[
        str, Query(alias="open", pattern="^[01]$", description="1: only places open now.")
    ] = "1",
    src: Annotated[
        str | None, Query(pattern="^(gps|map)$", description="Where the position came from.")
    ] = None,
    lang: LangParam = None,
) -> HTMLResponse:
    """The nearest open stations and cooling buses, with distance, walking time, amenities,
    hours, freshness and directions (Amap, Baidu, OpenStreetMap). Without `lon`/`lat` (or
    `district`) the page asks the browser for the position."""
    language = pick_lang(lang, request.headers.get("accept-language"))
    needs = find.check_needs(need)
    only_open = open_only == "1"
    registry = search.registry
    centres = find.district_centres(registry)
    if (lon is None) != (lat is None):
        missing = "lat" if lat is None else "lon"
        raise InvalidInputError(missing, "Expected both lon and lat, or neither")
    here: tuple[float, float] | None = None
    used_district: str | None = None
    if lon is not None and lat is not None:
        here = point_to_wgs84(lon, lat, crs)
    elif district is not None:
        if district not in centres:
            names = ", ".join(centres) or "(none)"
            raise InvalidInputError("district", f"Expected one of {names}, got {district!r}")
        here = centres[district]
        used_district = district
    origin = here if used_district is None else None

    # The state of the page as query parameters, for the chips and the language switch.
    base: list[tuple[str, str]] = [("lang", language)]
    if origin is not None:
        base += [("lon", f"{origin[0]:.6f}"), ("lat", f"{origin[1]:.6f}")]
        if src:
            base.append(("src", src))
    if used_district is not None:
        base.append(("district", used_district))

    def state(chips: list[str], open_flag: bool) -> str:
        return _href("/find", base + [("need", n) for n in chips] + [("open", str(int(open_flag)))])

    results: list[dict[str, Any]] = []
    left: dict[str, Any] | None = None
    far: dict[str, str] | None = None
    shared = ""
    now = parse_time("now", settings.timezone)
    if here is not None:
        features, now = find.find_nearest(
            search,
            settings,
            here[0],
            here[1],
            needs,
            only_open,
            flags=flags,
            walking=walking_of(request),
        )
        if not features:
            far = find.far_view(search, settings, here[0], here[1], now, language)
        if far is None:
            results = [
                find.result_view(f, r, now, language, origin) for r, f in enumerate(features, 1)
            ]
            usage = getattr(request.app.state, "usage", None)
            if usage is not None:  # "busy now", where the last hour's check-ins say enough
                for r in results:
                    r["busy"] = find.busy_text(busy_now(search, usage, r["id"]), language)
            shared = find.shared_notes(results, language)
        if far is None and only_open:
            left = find.left_out_section(
                search,
                settings,
                here,
                needs,
                now,
                features,
                language,
                origin,
                show_all_href=state(needs, False),
                flags=flags,
            )
    updated = t("updated", language, time=f"{now:%H:%M}") if here is not None else ""

    chips = [
        {
            "key": key,
            "label": t(f"h_{key}", language),
            "pressed": key in needs,
            "href": state(
                [n for n in needs if n != key] if key in needs else [*needs, key], only_open
            ),
        }
        for key in CHIPS
    ]
    if used_district is not None:
        source = t("from_district", language, district=used_district)
    else:
        source = t({"gps": "from_gps", "map": "from_map"}.get(src or "", "from_point"), language)
    suggest: list[tuple[str, str]] = [("lang", language)]
    if origin is not None:
        suggest += [("lon", f"{origin[0]:.6f}"), ("lat", f"{origin[1]:.6f}")]
        if src:
            suggest.append(("src", src))
    nonce = secrets.token_urlsafe(16)
    data = {
        "lang": language,
        "text": views.texts(language, FIND_JS_TEXT),
        "autoLocate": here is None,
        "leaflet": {"js": views.LEAFLET_JS, "css": views.LEAFLET_CSS},
        "tiles": {"url": views.TILES_URL, "attr": views.TILES_ATTR},
        "basemap": BASEMAP_PATH,
        "centre": list(find.registry_centre(registry)),
        "here": list(here) if here is not None else None,
        "results": [
            {
                "id": r["id"],
                "rank": r["rank"],
                "name": r["name"],
                "lon": r["lon"],
                "lat": r["lat"],
                "bus": r["is_bus"],
            }
            for r in results
        ],
    }
    body = views.render(
        "find.html",
        lang=language,
        T=views.texts(language),
        nonce=nonce,
        page_time=now,
        switch_href=_switch_href(request, language),
        chips=chips,
        open_chip={"pressed": only_open, "href": state(needs, not only_open)},
        needs=needs,
        open_only=only_open,
        have_location=here is not None,
        auto_locate=here is None,
        district=used_district,
        districts=list(centres),
        source=source,
        updated=updated,
        results=results,
        shared=shared,
        left=left,
        far=far,
        suggest_href=_href("/suggest", suggest),
        data=data,
    )
    return _html(body, nonce)


@router.get(
    "/s/{station_id}",
    response_class=HTMLResponse,
    summary="One station or cooling bus: the page for workers' phones",
    responses={404: {"description": "No station or bus with this id (an HTML page)."}},
)
async def station_page(
    request: Request,
    search: SearchDep,
    flags: FlagsDep,
    station_id: StationId,
    lon: OptLon = None,
    lat: OptLat = None,
    lang: LangParam = None,
) -> HTMLResponse:
    """Everything about one station (hours, amenities, freshness, directions, "report a
    problem" buttons) or cooling bus (where it stands now and next, its schedule).
    `lon`/`lat` (WGS-84), when given, are the worker's position: the page shows the
    distance and sends it with a report."""
    language = pick_lang(lang, request.headers.get("accept-language"))
    nonce = secrets.token_urlsafe(16)
    origin = (lon, lat) if lon is not None and lat is not None else None
    try:
        s = views.station_view(search, station_id, language, origin=origin, flags=flags)
    except NotFoundError:
        return _not_found(language, request, nonce)
    back: list[tuple[str, str]] = [("lang", language)]
    if origin is not None:
        back += [("lon", f"{origin[0]:.6f}"), ("lat", f"{origin[1]:.6f}")]
    quoted = quote(station_id, safe="")
    data = {
        "lang": language,
        "text": views.texts(language, STATION_JS_TEXT),
        "reportUrl": f"/stations/{quoted}/reports",
        "origin": [round(origin[0], 6), round(origin[1], 6)] if origin is not None else None,
    }
    body = views.render(
        "station.html",
        lang=language,
        T=views.texts(language),
        nonce=nonce,
        switch_href=_switch_href(request, language),
        s=s,
        back_href=_href("/find", back),
        poster_href=f"/s/{quoted}/poster?lang={language}",
        updated=t("updated", language, time=s["time"]),
        page_time=s["at"],
        data=data,
    )
    return _html(body, nonce)


@router.get(
    "/s/{station_id}/poster",
    response_class=HTMLResponse,
    summary="A printable A4 poster of a station, with a QR code to its page",
    responses={404: {"description": "No station or bus with this id (an HTML page)."}},
)
async def poster(
    request: Request,
    search: SearchDep,
    settings: SettingsDep,
    station_id: StationId,
    lang: Annotated[
        str, Query(pattern="^(zh|en)$", description="Poster language (default Chinese).")
    ] = "zh",
) -> HTMLResponse:
    """Print-ready HTML (A4): name, what the station offers, its hours and a QR code that
    opens `/s/{id}` at the server's public address (`YIZHAN_PUBLIC_URL`), never at the
    address the request named (its `Host` header). Without the setting the poster uses the
    local address the server listens on and says so on screen and on paper."""
    language: Lang = "en" if lang == "en" else "zh"
    nonce = secrets.token_urlsafe(16)
    base_url, configured = views.public_base_url(settings)
    try:
        body = views.poster_page(
            search.registry,
            station_id,
            base_url,
            language,
            nonce=nonce,
            configured=configured,
        )
    except NotFoundError:
        return _not_found(language, request, nonce)
    return _html(body, nonce)


# -- suggest a place ----------------------------------------------------------------------

#: The amenities the suggestion form offers (the chips' first, then common others).
SUGGEST_AMENITIES = (
    "drinking_water",
    "toilet",
    "seating",
    "air_conditioning",
    "heating",
    "phone_charging",
    "ebike_charging",
    "microwave",
    "hot_meals",
    "wheelchair_accessible",
    "first_aid",
    "wifi",
)
SUGGEST_JS_TEXT = (
    "locating",
    "locate_failed",
    "locate_unsupported",
    "map_failed",
    "map_tap_hint",
    "suggest_sending",
    "suggest_thanks",
    "suggest_rate_limited",
    "suggest_error",
    "suggest_offline",
    "suggest_need_place",
    "suggest_place_set",
)


@router.get(
    "/suggest",
    response_class=HTMLResponse,
    summary="Suggest a missing place: the page for workers' phones",
    responses={422: {"description": "Only one of lon/lat, or a bad value."}},
)
async def suggest_page(
    request: Request,
    search: SearchDep,
    lon: OptLon = None,
    lat: OptLat = None,
    src: Annotated[
        str | None, Query(pattern="^(gps|map)$", description="Where the position came from.")
    ] = None,
    lang: LangParam = None,
) -> HTMLResponse:
    """A form (name, what it offers, hours, where: the phone's position or a tap on the
    map) that sends `POST /proposals`; an admin or the area's manager decides."""
    language = pick_lang(lang, request.headers.get("accept-language"))
    if (lon is None) != (lat is None):
        raise InvalidInputError("lat" if lat is None else "lon", "Expected both lon and lat")
    here = [round(lon, 6), round(lat, 6)] if lon is not None and lat is not None else None
    nonce = secrets.token_urlsafe(16)
    data = {
        "lang": language,
        "text": views.texts(language, SUGGEST_JS_TEXT),
        "leaflet": {"js": views.LEAFLET_JS, "css": views.LEAFLET_CSS},
        "tiles": {"url": views.TILES_URL, "attr": views.TILES_ATTR},
        "basemap": BASEMAP_PATH,
        "centre": list(find.registry_centre(search.registry)),
        "here": here,
        "src": src if here is not None else None,
    }
    back: list[tuple[str, str]] = [("lang", language)]
    if here is not None:
        back += [("lon", f"{here[0]:.6f}"), ("lat", f"{here[1]:.6f}")]
    body = views.render(
        "suggest.html",
        lang=language,
        T=views.texts(language),
        nonce=nonce,
        switch_href=_switch_href(request, language),
        back_href=_href("/find", back),
        amenities=[
            {"code": a, "label": amenity_label(a, language), "icon": views.ICONS.get(a)}
            for a in SUGGEST_AMENITIES
        ],
        here=here,
        data=data,
    )
    return _html(body, nonce)


# -- the installable app and the map's own picture ----------------------------------------


def _asset_response(body: bytes | str, media_type: str, cache: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
    )


@router.get("/manifest.webmanifest", include_in_schema=False)
async def web_manifest(
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
) -> Response:
    """The web app manifest (name, start page, icons): the find page can be installed."""
    language: Lang = "en" if lang == "en" else "zh"
    return FastJSONResponse(
        pwa.manifest(language),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/sw.js", include_in_schema=False)
async def service_worker() -> Response:
    """The service worker (served at the root so that it may answer for every page)."""
    return _asset_response(pwa.service_worker(), "text/javascript", "no-cache")


@router.get("/static/app/{name}", include_in_schema=False)
async def app_icon(name: Annotated[str, Path(pattern="^[a-z0-9.-]+$")]) -> Response:
    """The app's icons."""
    if name not in pwa.ICONS:
        return Response("not found", status_code=404, media_type="text/plain")
    return _asset_response(pwa.icon_bytes(name), pwa.ICONS[name], "public, max-age=86400")


@router.get(
    BASEMAP_PATH,
    response_class=FastJSONResponse,
    summary="What the find page's map draws under its tiles: district outlines, station dots",
)
async def find_basemap(
    search: SearchDep,
    settings: SettingsDep,
    lon: OptLon = None,
    lat: OptLat = None,
) -> FastJSONResponse:
    """District outlines (the configured or bundled districts, else the convex hull of each
    district's stations) and every station as `[lon, lat, name, id]` (at most 2000, the
    nearest to `lon`/`lat` when given): a map whose tiles cannot load is still a map."""
    near = None
    if lon is not None and lat is not None:
        near = (lon - 1.0, lat - 1.0, lon + 1.0, lat + 1.0)
    return FastJSONResponse(_basemap(settings, search, near), headers={"Cache-Control": "no-cache"})


def _basemap(
    settings: Settings, search: Any, box: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    out = basemap(settings, search.registry, box)
    if box is not None and not out["stations"]:
        out = basemap(settings, search.registry, None)
    return out
