"""The planner map of a coverage study: analysis and map in one call.

Both ``yizhan map`` and ``GET /maps/coverage`` call :func:`coverage_map`, so the file a
planner writes and the page the server shows are the same map. With ``metric="walk"``
its headline, district table, uncovered demand, gaps and suggested sites are on foot
(the functions of ``yizhan coverage|gaps|site --metric walk``), with the great-circle
circles kept as a layer and a figure to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import date, datetime
from typing import Any

import numpy as np
import shapely

from yizhan.geo.coverage import CoverageResult, coverage, gap_polygons, gaps_geojson
from yizhan.geo.siting import SitingResult, site_mclp
from yizhan.maps.asset_refs import DEFAULT_BASE_URL
from yizhan.maps.buses import LOCAL_TZ
from yizhan.maps.headline import coverage_headline
from yizhan.maps.i18n import check_lang, label
from yizhan.maps.planner import planner_map
from yizhan.query.studies import Study
from yizhan.query.walk_studies import (
    far_from_network,
    reach_features,
    walk_coverage,
    walk_gap_polygons,
    walk_reach,
    walk_siting_inputs,
)
from yizhan.query.walking import Walking, require
from yizhan.stations.registry import KINDS, Registry, StationFilter
from yizhan.stations.vocab import Kind


def station_flags(
    registry: Registry,
    stale_before: date,
    check: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
    candidates: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """The flagged stations of *registry*, for :func:`yizhan.maps.planner_map`'s ``flags``.

    Stale stations (never verified, or last verified before *stale_before*: the rule of
    ``StationFilter.make(stale=True)``) are found with one vectorised comparison;
    *check* (e.g. the API's ``Flags``) is called only for *candidates*, the stations with
    problem reports, which are the only ones that can need checking. Stations that are
    neither stale nor need checking are left out.

    Returns
    -------
    dict
        Station id -> ``{"stale", "needs_check", "needs_check_reasons"}``.
    """
    is_station = registry.kind == KINDS.index(Kind.station.value)
    stale = np.flatnonzero(is_station & (registry.verified_day < stale_before.toordinal()))
    out: dict[str, dict[str, Any]] = {
        registry.ids[i]: {"stale": True, "needs_check": False, "needs_check_reasons": []}
        for i in stale.tolist()
    }
    if check is not None:
        for sid in candidates:
            i = registry.index_of.get(sid)
            if i is None or not is_station[i]:
                continue
            flags = dict(check(registry.features[i]))
            if flags.get("stale") or flags.get("needs_check"):
                out[sid] = flags
            else:
                out.pop(sid, None)
    return out


def districts_geojson(
    study: Study, result: CoverageResult, precision: int = 5
) -> dict[str, Any] | None:
    """District polygons with ``name``, ``share_pct``, ``demand``, ``covered``, ``stations``."""
    if study.districts is None:
        return None
    rows = {r["district"]: r for r in result.per_district}
    feats = []
    for name, geom in zip(study.districts.names, study.districts.geometries, strict=True):
        row = rows.get(name, {})
        feats.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(shapely.set_precision(geom, 10**-precision)),
                "properties": {
                    "name": name,
                    "share_pct": row.get("share_pct"),
                    "demand": row.get("demand"),
                    "covered": row.get("covered"),
                    "stations": row.get("stations"),
                },
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def coverage_map(
    registry: Registry,
    study: Study | None,
    *,
    radius_m: float = 1000.0,
    flt: StationFilter | None = None,
    n_sites: int = 0,
    lang: str = "zh",
    assets: str = "local",
    asset_base_url: str = DEFAULT_BASE_URL,
    open_now: Mapping[str, bool | None] | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    stale_after_days: int | None = None,
    buses: list[dict[str, Any]] | None = None,
    bus_timeline: Mapping[str, Sequence[Any]] | None = None,
    timeline_date: date | None = None,
    step: Callable[[str], Any] | None = None,
    service: tuple[Any, Any] | None = None,
    when: datetime | None = None,
    open_at: datetime | None = None,
    tianditu_key: str | None = None,
    add_demand: str | None = None,
    proposals: dict[str, Any] | None = None,
    walk: Mapping[str, Any] | None = None,
    walking: Walking | None = None,
    metric: str = "great_circle",
    minutes: float = 15.0,
) -> tuple[Any, CoverageResult | None, SitingResult | None]:
    """Run coverage (and optionally siting) over *study* and build the planner map.

    Parameters
    ----------
    registry : Registry
        Stations.
    study : Study or None
        Demand and districts; ``None`` draws the stations (and their circles) only, with
        a headline saying there is no demand and how to add some (*add_demand*).
    radius_m : float
        Coverage radius, metres.
    flt : StationFilter, optional
        Which stations count (default: operational).
    n_sites : int
        Suggest this many new sites (0: none).
    lang, assets, asset_base_url, tianditu_key, proposals
        Passed to :func:`yizhan.maps.planner_map` (*proposals*: stations suggested by
        workers, pending).
    open_now, flags, stale_after_days, buses, bus_timeline, timeline_date
        Passed to :func:`yizhan.maps.planner_map` (*flags*: station id -> ``stale``,
        ``needs_check``, ``needs_check_reasons``, e.g. from :func:`station_flags`).
    step : callable, optional
        Context-manager factory called with a label around each long step (progress).
    service : (lon, lat), optional
        The points that count as service for coverage, gaps and siting (e.g. stations
        open at a time plus cooling buses where they stand); default: the registry's
        stations passing *flt*.
    when : datetime, optional
        When the map is made, for the headline (default: now, in China's time).
    open_at : datetime, optional
        The time *service* was counted at (``--open-at``), for the headline.
    add_demand : str, optional
        How to add demand, shown when *study* is ``None``.
    walk : mapping, optional
        ``walk_areas``, ``walk_minutes`` and ``far_from_network`` for
        :func:`yizhan.maps.planner_map` (the walking layer and marks).
    walking, metric, minutes
        With ``metric="walk"`` (which needs *walking*, else an error naming
        ``metric``): coverage, the district table, uncovered demand, gaps and sites
        within *minutes* on foot, the walking layer of the service points (replacing
        *walk*) and the headline and legend saying so; the circles of *radius_m* stay
        as a layer and the headline gives their share for comparison.

    Returns
    -------
    (folium.Map, CoverageResult or None, SitingResult or None)
    """

    def stage(label: str) -> Any:
        return step(label) if step is not None else nullcontext()

    flt = flt or StationFilter()
    if service is None:
        mask = registry.mask(flt)
        s_lon, s_lat = registry.lon[mask], registry.lat[mask]
    else:
        s_lon, s_lat = (
            np.asarray(service[0], dtype=np.float64),
            np.asarray(service[1], dtype=np.float64),
        )
    lng = check_lang(lang)
    now = when or datetime.now(LOCAL_TZ)
    common: dict[str, Any] = {
        "lang": lng,
        "open_now": open_now,
        "flags": flags,
        "stale_after_days": stale_after_days,
        "radius_m": radius_m,
        "buses": buses,
        "bus_timeline": bus_timeline,
        "timeline_date": timeline_date,
        "assets": assets,
        "asset_base_url": asset_base_url,
        "tianditu_key": tianditu_key,
        "proposals": proposals,
        **(walk or {}),
    }
    on_foot = require(walking, metric)
    reach = None
    if on_foot is not None:
        with stage(f"areas within {minutes:g} min on foot"):
            reach = walk_reach(on_foot, s_lon, s_lat, minutes)
            common.update(
                walk_areas=reach_features(on_foot, reach, minutes),
                walk_minutes=float(minutes),
                far_from_network=far_from_network(on_foot, registry),
                walk_legend=label(
                    "legend_walk",
                    lng,
                    minutes=f"{minutes:g}",
                    speed=f"{on_foot.speed_kmh:g}",
                    network=on_foot.source,
                ),
            )
    if study is None:
        head = coverage_headline(
            lng, stations=int(s_lon.size), when=now, open_at=open_at, add_demand=add_demand
        )
        with stage("building the map"):
            fmap = planner_map(registry, headline=head, **common)
        return fmap, None, None
    with stage(f"coverage of {study.demand.n:,} demand points"):
        result = coverage((s_lon, s_lat), study.demand, radius_m)
    circles = result
    if on_foot is not None:
        with stage(f"coverage within {minutes:g} min on foot"):
            result = walk_coverage(on_foot, (s_lon, s_lat), study.demand, minutes)
    gaps = None
    if study.area is not None:
        with stage("gap polygons"):
            gaps = gaps_geojson(
                gap_polygons(study.area, s_lon, s_lat, radius_m)
                if on_foot is None
                else walk_gap_polygons(on_foot, study.area, s_lon, s_lat, minutes, reach),
                study.demand,
                districts=study.districts,
                precision=5,
            )
    sites = None
    siting = None
    if n_sites > 0:
        with stage(f"siting {n_sites} new stations"):
            seam: dict[str, Any] = {}
            site_radius = radius_m
            if on_foot is not None:  # cover sets on foot; candidates: uncovered on foot
                site_radius, cover, covered = walk_siting_inputs(
                    on_foot, s_lon, s_lat, study.demand, minutes
                )
                seam = {"cover": cover, "covered": covered}
            siting = site_mclp(
                study.demand,
                s_lon,
                s_lat,
                n_new=n_sites,
                radius_m=site_radius,
                time_limit_s=30,
                **seam,
            )
            sites = siting.to_geojson()
    unc = result.uncovered_demand()
    meaning = study.meaning
    head = coverage_headline(
        lng,
        stations=int(s_lon.size),
        when=now,
        open_at=open_at,
        radius_m=radius_m,
        covered_pct=result.covered_weight_pct,
        covered=result.covered_weight,
        total=result.total_weight,
        what=meaning.what(lng),
        unit=meaning.unit(lng),
        digits=meaning.digits,
        walk=None if on_foot is None else (minutes, on_foot.speed_kmh, on_foot.source),
        circles_pct=circles.covered_weight_pct,
    )
    with stage("building the map"):
        fmap = planner_map(
            registry,
            uncovered=(unc.lon, unc.lat, np.asarray(unc.weight)),
            gaps=gaps,
            sites=sites,
            districts=districts_geojson(study, result),
            headline=head,
            unit=meaning.unit(lng),
            unit_digits=meaning.digits,
            **common,
        )
    return fmap, result, siting
