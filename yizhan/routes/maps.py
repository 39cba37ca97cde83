"""HTML maps: ``GET /maps/coverage`` (the planner map) and ``GET /maps/nearest`` (a worker's map).

Both load their JavaScript and CSS from ``/static/vendor/`` on this server, so they work
without internet access, and both show which stations are stale or need checking (the
``stale``/``needs_check`` properties of the API's responses).

Both are sent with a Content Security Policy: scripts only from this server and the
inline scripts the map was rendered with, allowed by their SHA-256 hashes (Folium writes
its maps as inline scripts; hashes rather than a nonce, so that a cached planner map
needs no rewriting), no plugins, no other base URL. Tiles may come from any HTTPS server
(base maps are configurable). The planner map is built in an analysis process
(:mod:`yizhan.query.analysis`: bounded, time- and memory-limited), so its siting cannot
hold the server's threads; so are its walking layers and, with ``metric=walk``, its
coverage, gaps and sites on foot (the process maps the server's network file).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from collections import OrderedDict
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from yizhan.maps.study_map import coverage_map, station_flags
from yizhan.maps.usage_layers import add_usage_layers
from yizhan.maps.worker import worker_map
from yizhan.query.features import Flags
from yizhan.query.nearest import nearest_collection
from yizhan.query.proposals import proposals_geojson
from yizhan.query.studies import HOW_TO_ADD_DEMAND, Study
from yizhan.query.usage import Usage
from yizhan.query.usage_service import network_usage, parse_period
from yizhan.query.walk_studies import walk_layers
from yizhan.query.walking import Walking, WalkSpec, require
from yizhan.routes.deps import FlagsDep, SearchDep, SettingsDep, StoreDep
from yizhan.routes.nearest import walking_of
from yizhan.routes.params import AmenityParam, CategoryParam, InCrs, KindParam, Lat, Lon
from yizhan.routes.planning import (
    ANALYSIS_ERRORS,
    AnalysisCaller,
    FilterDep,
    MetricParam,
    MinutesParam,
    OptionalStudyDep,
    RadiusParam,
    check_radius_limit,
    run_analysis,
)
from yizhan.routes.proposals import proposal_store
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import Registry, StationFilter

router = APIRouter(tags=["maps"])

Lang = Annotated[str, Query(pattern="^(zh|en)$", description="Label language: zh or en.")]

#: Built planner maps, per app and by parameters and data versions; an entry is rebuilt
#: after this many seconds so that open-now states and bus positions stay current.
MAP_TTL_S = 300.0
#: Planner maps kept per app.
MAP_CACHE_SIZE = 16
_cache_lock = threading.Lock()


class _InlineScripts(HTMLParser):
    """The text of every inline ``<script>`` and every inline event handler of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self._inline = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [v for k, v in attrs if k.startswith("on") and v is not None]
        if tag == "script":
            self._inline = not any(k == "src" for k, _ in attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._inline:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._inline:
            self.scripts.append("".join(self._text))
            self._inline = False


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def map_csp(html: str) -> str:
    """The Content-Security-Policy of a map page: its own inline scripts (and inline event
    handlers, if any) by hash, everything else from this server only."""
    found = _InlineScripts()
    found.feed(html)
    found.close()
    scripts = sorted({_sha256(t) for t in found.scripts})
    handlers = sorted({_sha256(t) for t in found.handlers})
    script_src = " ".join(
        ["'self'", *scripts, *(["'unsafe-hashes'", *handlers] if handlers else [])]
    )
    return (
        "default-src 'self'; "
        f"script-src {script_src}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob: https:; "
        "font-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'self'"
    )


def _map_response(html: str, csp: str | None = None) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp or map_csp(html),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def _map_cache(request: Request) -> OrderedDict[Any, tuple[float, str, str]]:
    """The app's planner-map cache (one per app: two apps never share pages)."""
    with _cache_lock:
        cache: OrderedDict[Any, tuple[float, str, str]] | None = getattr(
            request.app.state, "planner_map_cache", None
        )
        if cache is None:
            cache = OrderedDict()
            request.app.state.planner_map_cache = cache
        return cache


def _coverage_map_inputs(search: Any, flags: Flags) -> dict[str, Any]:
    """What the planner map needs from the live search and stores, as plain data (it is
    built in another process)."""
    registry = search.registry
    reports = flags.reports
    flagged = station_flags(
        registry,
        flags.stale_before,
        flags if reports is not None else None,
        reports.station_ids() if reports is not None else (),
    )
    now = time.time()
    open_now = {registry.ids[i]: search.status(i, now)[0] for i in range(len(registry))}
    fleet = search.fleet
    made_at = parse_time("now", search.hours.timezone)
    today = made_at.date()
    timeline: dict[str, list[tuple[Any, Any, float, float, str]]] = {}
    for i, bus in enumerate(registry.buses):
        segs = fleet.timeline(i, today)
        timeline[bus["id"]] = [(s.start, s.end, s.lon, s.lat, s.name) for s in segs]
    return {
        "open_now": open_now,
        "flags": flagged,
        "stale_after_days": flags.stale_after_days,
        "buses": registry.buses or None,
        "bus_timeline": timeline or None,
        "timeline_date": today,
        "when": made_at,
    }


def render_coverage_map(
    registry: Registry,
    study: Study | None,
    radius_m: float,
    flt: StationFilter,
    sites: int,
    lang: str,
    inputs: dict[str, Any],
    tianditu_key: str | None = None,
    proposals: dict[str, Any] | None = None,
    walk: WalkSpec | None = None,
    usage: Usage | None = None,
    metric: str = "great_circle",
    minutes: float = 15.0,
) -> tuple[str, str]:
    """The planner map's HTML and its Content-Security-Policy (run in an analysis process;
    *walk*: the server's walking network, opened here (with the snaps of the registry's
    stations and the demand, so no snapping index is built here); with ``metric="walk"``
    coverage, gaps and sites are on foot, otherwise it adds the layer of areas within
    *minutes* on foot and the far-from-network marks)."""
    timeline_date: date = inputs["timeline_date"]
    when: datetime = inputs["when"]
    walking = None if walk is None else Walking.open(walk)
    layers = None
    if walking is not None and metric != "walk":
        layers = walk_layers(walking, registry, flt, minutes)
    fmap, _, _ = coverage_map(
        registry,
        study,
        radius_m=radius_m,
        flt=flt,
        n_sites=sites,
        lang=lang,
        assets="local",
        open_now=inputs["open_now"],
        flags=inputs["flags"],
        stale_after_days=inputs["stale_after_days"],
        buses=inputs["buses"],
        bus_timeline=inputs["bus_timeline"],
        timeline_date=timeline_date,
        when=when,
        tianditu_key=tianditu_key,
        add_demand=HOW_TO_ADD_DEMAND,
        proposals=proposals,
        walk=layers,
        walking=walking,
        metric=metric,
        minutes=minutes,
    )
    if usage is not None:  # stations by utilization, bus stops by visits (check-ins, counts)
        add_usage_layers(fmap, usage, lang=lang)
    html = str(fmap.get_root().render())
    return html, map_csp(html)


#: What the planner map may answer besides the map (it works without demand: no 409).
MAP_ERRORS = {k: v for k, v in ANALYSIS_ERRORS.items() if k != 409}


@router.get(
    "/maps/coverage",
    response_class=HTMLResponse,
    summary="The planner map of the served registry",
    responses=MAP_ERRORS,
)
async def coverage_map_page(
    request: Request,
    client: AnalysisCaller,
    store: StoreDep,
    settings: SettingsDep,
    flags: FlagsDep,
    study: OptionalStudyDep,
    flt: FilterDep,
    radius_m: RadiusParam = 1000.0,
    sites: Annotated[int, Query(ge=0, le=50, description="Also suggest this many new sites.")] = 0,
    lang: Lang = "zh",
    metric: MetricParam = "great_circle",
    minutes: MinutesParam = 15.0,
) -> HTMLResponse:
    """Stations, coverage circles, uncovered demand, gaps, district coverage share, cooling
    buses through today and (with `sites`) suggested sites, as an interactive map, with a
    headline (covered share, demand within reach, stations counted, radius, time) and a
    district table. Stale stations are greyed; those that need checking have a red ring, a
    warning naming the reported problems, and a layer and list of their own. Without
    demand configured, the stations alone, and how to add demand. When the server has a
    walking network: a layer of the areas within `minutes` on foot of the stations, and a
    mark on each station farther than the largest snap distance from any walkable way.
    With `metric=walk` the headline, district table, uncovered demand, gaps and suggested
    sites are within `minutes` on foot (as `/coverage?metric=walk` and
    `/analysis/site`), the `radius_m` circles a layer to compare; 422 naming `metric`
    without a network."""
    check_radius_limit(radius_m, settings)
    walking = walking_of(request)
    require(walking, metric)  # metric=walk without a network: 422 naming metric
    # The version first: the store publishes a snapshot before bumping it, so the snapshot
    # read next is at least as new as the key says (an edit, e.g. a verification, makes a
    # new key). A report can change needs_check: the number of reports is in the key too.
    version = store.version
    search = store.search
    n_reports = len(flags.reports.all()) if flags.reports is not None else 0
    pending = proposals_geojson(proposal_store(request))
    n_pending = tuple(str(f["id"]) for f in pending["features"])
    key = (
        radius_m,
        sites,
        lang,
        flt,
        version,
        n_reports,
        n_pending,
        flags.today,
        flags.stale_after_days,
        minutes if walking is not None else None,
        metric,
    )
    cache = _map_cache(request)
    now = time.monotonic()
    with _cache_lock:
        hit = cache.get(key)
        if hit is not None and now - hit[0] < MAP_TTL_S and hit[1]:
            cache.move_to_end(key)
            return _map_response(hit[1], hit[2])
    inputs = _coverage_map_inputs(search, flags)
    usage = None
    stores = getattr(request.app.state, "usage", None)
    if stores is not None:
        first, last = parse_period(None, None, stores.today())
        usage = await asyncio.to_thread(network_usage, search, stores, first, last)
        if not usage.days_with_data.any():
            usage = None
    walk = None
    if walking is not None:  # the stations and demand snapped here (see /coverage)
        walk = await asyncio.to_thread(
            walking.spec, search.registry, None if study is None else study.demand
        )
    html, csp = await run_analysis(
        request,
        client,
        render_coverage_map,
        search.registry,
        study,
        radius_m,
        flt,
        sites if study is not None else 0,
        lang,
        inputs,
        settings.tianditu_key,
        pending,
        walk,
        usage,
        metric,
        minutes,
    )
    with _cache_lock:
        cache[key] = (now, html, csp)
        while len(cache) > MAP_CACHE_SIZE:
            cache.popitem(last=False)
    return _map_response(html, csp)


@router.get(
    "/maps/nearest", response_class=HTMLResponse, summary="A worker's map of the nearest stations"
)
async def nearest_map_page(
    search: SearchDep,
    settings: SettingsDep,
    flags: FlagsDep,
    lon: Lon,
    lat: Lat,
    k: Annotated[int, Query(ge=1, le=20)] = 5,
    amenity: AmenityParam = None,
    kind: KindParam = None,
    category: CategoryParam = None,
    crs: InCrs = "wgs84",
    lang: Lang = "zh",
) -> HTMLResponse:
    """The worker's position and the `k` nearest operational stations (and buses standing
    now), each with a line and its distance, and a warning on those that are stale or
    need checking."""
    flt = StationFilter.make(amenities=amenity, kinds=kind, categories=category)
    fc = nearest_collection(search, settings, lon, lat, k, flt, crs=crs, flags=flags)
    q = fc["query"]
    fmap = worker_map(
        q["lon_wgs84"],
        q["lat_wgs84"],
        fc["features"],
        lang=lang,
        stale_after_days=flags.stale_after_days,
        assets="local",
    )
    return _map_response(fmap.get_root().render())
