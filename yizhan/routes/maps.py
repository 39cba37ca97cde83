"""HTML maps: ``GET /maps/coverage`` (the planner map) and ``GET /maps/nearest`` (a worker's map).

Both load their JavaScript and CSS from ``/static/vendor/`` on this server, so they work
without internet access.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from yizhan.geo.study import Study
from yizhan.maps.study_map import coverage_map
from yizhan.routes.deps import SearchDep, SettingsDep
from yizhan.routes.nearest import nearest_collection
from yizhan.routes.params import AmenityParam, CategoryParam, InCrs, KindParam, Lat, Lon
from yizhan.routes.planning import NO_DEMAND, FilterDep, RadiusParam, StudyDep
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import StationFilter

router = APIRouter(tags=["maps"])

Lang = Annotated[str, Query(pattern="^(zh|en)$", description="Label language: zh or en.")]

#: Built planner maps, by parameters; an entry is rebuilt after this many seconds so that
#: open-now states and bus positions stay current.
MAP_TTL_S = 300.0
_cache: OrderedDict[Any, tuple[float, str]] = OrderedDict()
_cache_lock = threading.Lock()


def _build_coverage_html(
    search: Any, study: Study, radius_m: float, flt: StationFilter, sites: int, lang: str
) -> str:
    registry = search.registry
    now = time.time()
    open_now = {registry.ids[i]: search.status(i, now)[0] for i in range(len(registry))}
    fleet = search.fleet
    today = parse_time("now", search.hours.timezone).date()
    timeline: dict[str, list[tuple[Any, Any, float, float, str]]] = {}
    for i, bus in enumerate(registry.buses):
        segs = fleet.timeline(i, today)
        timeline[bus["id"]] = [(s.start, s.end, s.lon, s.lat, s.name) for s in segs]
    fmap, _, _ = coverage_map(
        registry,
        study,
        radius_m=radius_m,
        flt=flt,
        n_sites=sites,
        lang=lang,
        assets="local",
        open_now=open_now,
        buses=registry.buses or None,
        bus_timeline=timeline or None,
        timeline_date=today,
    )
    return str(fmap.get_root().render())


@router.get(
    "/maps/coverage",
    response_class=HTMLResponse,
    summary="The planner map of the served registry",
    responses=NO_DEMAND,
)
async def coverage_map_page(
    search: SearchDep,
    study: StudyDep,
    flt: FilterDep,
    radius_m: RadiusParam = 1000.0,
    sites: Annotated[int, Query(ge=0, le=50, description="Also suggest this many new sites.")] = 0,
    lang: Lang = "zh",
) -> HTMLResponse:
    """Stations, coverage circles, uncovered demand, gaps, district coverage share, cooling
    buses through today and (with `sites`) suggested sites, as an interactive map."""
    key = (radius_m, sites, lang, flt)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < MAP_TTL_S and hit[1]:
            return HTMLResponse(hit[1])
    html = await asyncio.to_thread(_build_coverage_html, search, study, radius_m, flt, sites, lang)
    with _cache_lock:
        _cache[key] = (now, html)
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return HTMLResponse(html)


@router.get(
    "/maps/nearest", response_class=HTMLResponse, summary="A worker's map of the nearest stations"
)
async def nearest_map_page(
    search: SearchDep,
    settings: SettingsDep,
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
    now), each with a line and its distance."""
    from yizhan.maps.worker import worker_map

    flt = StationFilter.make(amenities=amenity, kinds=kind, categories=category)
    fc = nearest_collection(search, settings, lon, lat, k, flt, crs=crs)
    q = fc["query"]
    fmap = worker_map(q["lon_wgs84"], q["lat_wgs84"], fc["features"], lang=lang, assets="local")
    return HTMLResponse(fmap.get_root().render())
