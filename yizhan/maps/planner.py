"""The planner's map: every station, coverage, gaps, suggested sites, districts and buses.

Stations are shipped as compressed column arrays and turned into canvas circle markers
in the browser (clustered), so 100,000 stations make a page of a few megabytes that
builds in about a second, instead of one folium object per station.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import folium
import numpy as np

from yizhan.errors import InvalidInputError
from yizhan.maps._core import (
    BUS_COLORS,
    CATEGORY_COLORS,
    HEAT_JS,
    MARKERCLUSTER_CSS,
    MARKERCLUSTER_JS,
    SHARE_BINS,
    SHARE_COLORS,
    SHARE_MISSING,
    STALE_LEGEND,
    UNCATEGORISED_COLOR,
    JsControl,
    JsLayer,
    add_map_controls,
    meta_for,
    new_map,
    pack,
)
from yizhan.maps.asset_refs import DEFAULT_BASE_URL, check_mode, normalize_base_url
from yizhan.maps.basemaps import base_maps, gcj_deltas, gcj_geojson, needs_gcj
from yizhan.maps.buses import (
    LOCAL_TZ,
    BusInterval,
    bus_payload,
    derive_bus_timeline,
    first_day,
)
from yizhan.maps.i18n import (
    Lang,
    capitalize,
    category_label,
    check_lang,
    format_distance,
    label,
    paren,
    stale_text,
)
from yizhan.stations.registry import CATEGORIES, KINDS, STATUSES, Registry
from yizhan.stations.reports import PROBLEM_CODES
from yizhan.stations.vocab import Amenity, Kind

__all__ = ["BusInterval", "derive_bus_timeline", "district_rows", "planner_map", "station_columns"]

#: Properties whose "guessed" flag popups show (bit order of the ``g`` column).
GUESS_FIELDS: tuple[str, ...] = (
    "category",
    "status",
    "opening_hours",
    "amenities",
    "operator",
    "district",
    "last_verified_at",
)

#: Bits of the ``fl`` column: stale, needs checking, then one bit per problem code
#: (``PROBLEM_CODES`` order) that makes the station need checking.
FLAG_STALE = 1
FLAG_NEEDS_CHECK = 2
FLAG_REASON_SHIFT = 2

#: Stroke of stations that need checking (not a category colour).
CHECK_COLOR = "#d1242f"
#: Stroke of stale stations; their fill is their category colour greyed (``_greyed``).
STALE_STROKE = "#57606a"

#: Above this many stations, coverage circles start hidden (drawing them all costs time).
COVERAGE_SHOWN_MAX = 20_000


class _Codes:
    """Dictionary encoding of a column of repeated strings (``-1`` for none)."""

    def __init__(self) -> None:
        self.table: list[str] = []
        self._index: dict[str, int] = {}

    def code(self, value: object) -> int:
        if value is None or value == "":
            return -1
        s = str(value)
        i = self._index.get(s)
        if i is None:
            i = self._index[s] = len(self.table)
            self.table.append(s)
        return i


def _greyed(color: str, amount: float = 0.7) -> str:
    """*color* (``#rrggbb``) mixed with grey: a stale station keeps a hint of its category."""
    grey = (0xAF, 0xB8, 0xC1)
    rgb = (int(color[k : k + 2], 16) for k in (1, 3, 5))
    mixed = (round(c * (1 - amount) + g * amount) for c, g in zip(rgb, grey, strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def flag_bits(entry: Mapping[str, Any] | None) -> int:
    """The ``fl`` value of a station from its flags (``stale``, ``needs_check``,
    ``needs_check_reasons``, as in API responses); unknown reasons keep only the
    needs-check bit."""
    if not entry:
        return 0
    bits = FLAG_STALE if entry.get("stale") is True else 0
    reasons = entry.get("needs_check_reasons") or ()
    if entry.get("needs_check") is True or reasons:
        bits |= FLAG_NEEDS_CHECK
        for code in reasons:
            if code in PROBLEM_CODES:
                bits |= 1 << (FLAG_REASON_SHIFT + PROBLEM_CODES.index(code))
    return bits


def _date_text(value: object) -> object:
    s = str(value) if value is not None else ""
    return s[:10] if len(s) >= 10 and s[4] == "-" and s[7] == "-" else (s or None)


def station_columns(
    registry: Registry,
    open_now: Mapping[str, bool | None] | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The registry's stations as the column arrays the map's JavaScript reads.

    Only features of kind ``station`` are included. Coordinates are rounded to 1e-6°
    (about 0.1 m); strings that repeat (hours, dates, operators, districts) are
    dictionary-encoded.

    Parameters
    ----------
    registry : Registry
        The stations.
    open_now : mapping of str to bool or None, optional
        Station id -> open now (``None``: unknown). Without it popups omit the line.
    flags : mapping of str to dict, optional
        Station id -> ``{"stale", "needs_check", "needs_check_reasons"}`` (as in API
        responses); ids not in it are neither. Without it ``fl`` is ``None``.

    Returns
    -------
    dict
        ``lat``, ``lon``, ``id``, ``name``, ``name_en`` (or ``None``), ``cat``, ``st``,
        ``am`` (amenity bits), ``hours``/``hours_tab``, ``ver``/``ver_tab``,
        ``op``/``op_tab``, ``dist``/``dist_tab``, ``g`` (guessed bits), ``open`` and
        ``fl`` (:func:`flag_bits`: 0 for most stations, so it compresses to nearly nothing).
    """
    idx = np.flatnonzero(registry.kind == KINDS.index(Kind.station.value))
    feats = registry.features
    hours, ver, op, dist = _Codes(), _Codes(), _Codes(), _Codes()
    guess_bit = {f: 1 << k for k, f in enumerate(GUESS_FIELDS)}
    names: list[str] = []
    names_en: list[str] = []
    ids: list[str] = []
    h_col: list[int] = []
    v_col: list[int] = []
    o_col: list[int] = []
    d_col: list[int] = []
    g_col: list[int] = []
    open_col: list[int] | None = [] if open_now is not None else None
    fl_col: list[int] | None = [] if flags is not None else None
    for i in idx.tolist():
        f = feats[i]
        p = f["properties"]
        ids.append(str(f["id"]))
        names.append(str(p.get("name") or ""))
        names_en.append(str(p.get("name_en") or ""))
        h_col.append(hours.code(p.get("opening_hours")))
        v_col.append(ver.code(_date_text(p.get("last_verified_at"))))
        o_col.append(op.code(p.get("operator")))
        d_col.append(dist.code(p.get("district")))
        g = 0
        for name in p.get("guessed") or ():
            g |= guess_bit.get(str(name), 0)
        g_col.append(g)
        if open_col is not None and open_now is not None:
            state = open_now.get(str(f["id"]))
            open_col.append(-1 if state is None else int(bool(state)))
        if fl_col is not None and flags is not None:
            fl_col.append(flag_bits(flags.get(str(f["id"]))))
    cat = registry.category[idx].astype(np.int64)
    cat[cat < 0] = len(CATEGORIES)  # uncategorised: the last colour
    return {
        "lat": np.round(registry.lat[idx], 6).tolist(),
        "lon": np.round(registry.lon[idx], 6).tolist(),
        "id": ids,
        "name": names,
        "name_en": names_en if any(names_en) else None,
        "cat": cat.tolist(),
        "st": registry.status[idx].astype(np.int64).tolist(),
        "am": registry.amenity_bits[idx].astype(np.int64).tolist(),
        "hours": h_col,
        "hours_tab": hours.table,
        "ver": v_col,
        "ver_tab": ver.table,
        "op": o_col,
        "op_tab": op.table,
        "dist": d_col,
        "dist_tab": dist.table,
        "g": g_col,
        "open": open_col,
        "fl": fl_col,
    }


# -- inputs ------------------------------------------------------------------------------------


def _as_features(geo: Any, field: str) -> dict[str, Any]:
    """A FeatureCollection from a FeatureCollection, Feature or bare geometry."""
    if not isinstance(geo, Mapping) or "type" not in geo:
        raise InvalidInputError(field, f"Expected a GeoJSON object, got {type(geo).__name__}")
    kind = geo["type"]
    if kind == "FeatureCollection":
        return dict(geo)
    if kind == "Feature":
        return {"type": "FeatureCollection", "features": [dict(geo)]}
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": dict(geo), "properties": {}}],
    }


def _uncovered_columns(uncovered: Any, gcj: bool) -> dict[str, Any]:
    try:
        lon, lat, w = (np.asarray(a, dtype=np.float64).ravel() for a in uncovered)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            "uncovered", "Expected (lon_array, lat_array, weight_array)"
        ) from exc
    if not lon.shape == lat.shape == w.shape:
        raise InvalidInputError(
            "uncovered", f"arrays differ in length: {lon.size}, {lat.size}, {w.size}"
        )
    ok = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(w) & (w > 0)
    lon, lat, w = lon[ok], lat[ok], w[ok]
    top = float(w.max()) if w.size else 1.0
    out: dict[str, Any] = {
        "lat": np.round(lat, 5).tolist(),
        "lon": np.round(lon, 5).tolist(),
        "w": np.round(w / top, 4).tolist(),
    }
    if gcj:
        out["gdy"], out["gdx"] = gcj_deltas(lat, lon, decimals=5)
    return out


def _bounds(lat: Sequence[float], lon: Sequence[float]) -> list[list[float]] | None:
    if not lat:
        return None
    la, lo = np.asarray(lat), np.asarray(lon)
    if la.size > 200:  # a few stray points must not zoom the map out to the world
        q = (0.5, 99.5)
        la_lo, la_hi = np.percentile(la, q)
        lo_lo, lo_hi = np.percentile(lo, q)
    else:
        la_lo, la_hi, lo_lo, lo_hi = la.min(), la.max(), lo.min(), lo.max()
    return [[float(la_lo), float(lo_lo)], [float(la_hi), float(lo_hi)]]


def _share_legend(lang: Lang) -> list[list[Any]]:
    rows: list[list[Any]] = [["title", label("legend_district", lang)]]
    edges = (0.0, *SHARE_BINS, 100.0)
    for k, color in enumerate(SHARE_COLORS):
        rows.append(["box", f"{edges[k]:.0f}–{edges[k + 1]:.0f}%", color])
    rows.append(["box", label("unknown", lang), SHARE_MISSING])
    return rows


def district_rows(districts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The district table's rows from the districts' GeoJSON properties: ``name``,
    ``demand``, ``covered``, ``uncovered``, ``share_pct`` and ``stations``."""
    rows = []
    for f in districts.get("features") or []:
        p = (f or {}).get("properties") or {}
        demand, covered = p.get("demand"), p.get("covered")
        uncovered = (
            float(demand) - float(covered) if demand is not None and covered is not None else None
        )
        rows.append(
            {
                "name": "" if p.get("name") is None else str(p["name"]),
                "demand": demand,
                "covered": covered,
                "uncovered": uncovered,
                "share_pct": p.get("share_pct"),
                "stations": p.get("stations"),
            }
        )
    return rows


def _overlay(geo: Any, field: str, gcj: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    fc = _as_features(geo, field)
    return fc, gcj_geojson(fc) if gcj else None


# -- the map -------------------------------------------------------------------------------------


def planner_map(
    registry: Registry,
    *,
    lang: str = "zh",
    open_now: Mapping[str, bool | None] | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    stale_after_days: int | None = None,
    radius_m: float | None = None,
    uncovered: tuple[Any, Any, Any] | None = None,
    gaps: dict[str, Any] | None = None,
    sites: dict[str, Any] | None = None,
    proposals: dict[str, Any] | None = None,
    districts: dict[str, Any] | None = None,
    buses: list[dict[str, Any]] | None = None,
    timeline_date: date | None = None,
    bus_timeline: Mapping[str, Sequence[BusInterval]] | None = None,
    assets: str = "local",
    asset_base_url: str = DEFAULT_BASE_URL,
    tiles: str | None = "OpenStreetMap",
    attr: str | None = None,
    headline: Mapping[str, Any] | None = None,
    unit: str | None = None,
    unit_digits: int = 0,
    tianditu_key: str | None = None,
    walk_areas: dict[str, Any] | None = None,
    walk_minutes: float = 15.0,
    far_from_network: dict[str, Any] | None = None,
    walk_legend: str | None = None,
) -> folium.Map:
    """Build the planner's map.

    Layers (each toggled in the layer control, labels in *lang*): stations (clustered
    canvas circle markers coloured by category, hollow when not operational, popups with
    name, category, status, hours, open-now, amenities, operator, district, last
    verification and id; values listed in ``guessed`` are marked as guessed; with *flags*,
    stale stations are greyed and stations that need checking get a red ring, a warning
    in their popup and two more layers: "Needs checking (N)", rings that stay visible
    when their station is clustered, with a list, and "Only stations not verified …
    (N)", hidden at first), and, when given, coverage circles, uncovered demand (heat
    map), coverage gaps, suggested sites, district coverage share (choropleth, hidden at
    first, with a sortable district table) and cooling buses (stops, route and a time
    slider through *timeline_date*). Base maps: OpenStreetMap, Amap (GCJ-02: every
    overlay moves with it, see :mod:`yizhan.maps.basemaps`) and, with a key, Tianditu.
    Also: a headline, legend, full screen, locate-me, and search by station name,
    English name or id, and by cooling-bus name or plate.

    Parameters
    ----------
    registry : Registry
        The stations (features of kind ``station`` are drawn).
    lang : {"zh", "en"}
        Language of every label.
    open_now : mapping of str to bool or None, optional
        Station id -> open now; shown in popups when given.
    flags : mapping of str to dict, optional
        Station id -> ``{"stale": bool, "needs_check": bool, "needs_check_reasons":
        [code, …]}``, the properties API responses carry (``yizhan.routes.deps.Flags``);
        stations not in it are neither stale nor need checking, so it may hold only the
        flagged ones. Without it nothing is marked.
    stale_after_days : int, optional
        The staleness threshold, for the text ("not verified for 180+ days"; without it
        "not verified recently").
    radius_m : float, optional
        Service radius; draws a circle around each operational station.
    uncovered : (lon, lat, weight) arrays, optional
        Demand not covered, as a heat map (weights are scaled to their maximum).
    gaps : dict, optional
        GeoJSON (FeatureCollection, Feature or geometry) of gap polygons, WGS-84.
        Properties ``demand``/``uncovered_demand``, ``area_km2`` and ``name`` are shown.
    proposals : dict, optional
        GeoJSON FeatureCollection of stations suggested by workers and not yet decided
        (:func:`yizhan.query.proposals.proposals_geojson`): a layer of "?" markers.
    sites : dict, optional
        GeoJSON FeatureCollection of suggested sites (Points) with ``rank``, ``gain``
        and ``covered_after``.
    districts : dict, optional
        GeoJSON FeatureCollection of district polygons with ``name``, ``share_pct``,
        ``demand``, ``covered`` and ``stations`` (also the district table's rows).
    buses : list of dict, optional
        Cooling-bus Features whose ``properties.stops`` list ``{stop_id, name,
        location: [lon, lat], opening_hours}``; ``name``, ``plate`` and ``operator``
        are shown.
    timeline_date : datetime.date, optional
        Day of the bus time slider (default: the first day in *bus_timeline*, else
        today in China).
    bus_timeline : mapping, optional
        Bus id -> ``[(start, end, lon, lat, stop_name)]``. Derived from the stops'
        opening hours with :func:`derive_bus_timeline` when not given.
    assets : {"local", "inline", "cdn"}
        ``local``: JS/CSS from *asset_base_url*; ``inline``: embedded (a standalone
        file that works offline; needs ``yizhan assets fetch``);
        ``cdn``: public CDNs (the maps' own runtime is embedded).
    asset_base_url : str
        Where the vendored assets are served (``local``), with the maps' runtime under
        its ``yizhan-map/`` (as the API serves them at ``/static/vendor/``).
    tiles : str or None
        ``"OpenStreetMap"``: OpenStreetMap, Amap and (with *tianditu_key*) Tianditu to
        choose from; a URL template: that base map alone, which must be WGS-84; ``None``:
        no base map.
    attr : str, optional
        Attribution for a custom *tiles* URL.
    headline : dict, optional
        ``{"title": str, "lines": [str, …], "note": str or None}``, shown at the top
        (:func:`yizhan.maps.headline.coverage_headline` makes one).
    unit : str, optional
        What one unit of demand is ("people aged 65+", "km² of land"), written after the
        numbers in the legend, tooltips, popups and the district table.
    unit_digits : int
        Decimals of demand numbers.
    tianditu_key : str, optional
        Offer the Tianditu base map with this key (it is written into the page).
    walk_areas : dict, optional
        GeoJSON of the areas within *walk_minutes* on foot of the stations (walking
        isochrones, :func:`yizhan.query.walk_studies.walk_area_features`): a layer beside
        the coverage circles.
    walk_minutes : float
        The walk of *walk_areas*, minutes (its layer's label).
    far_from_network : dict, optional
        GeoJSON Points of the stations farther than the largest snap distance from every
        walkable way (``id``, ``name``, ``snap_m``): a red "!" mark each.
    walk_legend : str, optional
        The walking layer's legend line (default its name), e.g. "Within 15 min on foot
        (4.5 km/h, network X)" on a map whose coverage is on foot.

    Returns
    -------
    folium.Map
        Save it with ``.save(path)``; JS/CSS links follow *assets* when it is rendered.

    Raises
    ------
    InvalidInputError
        An argument is not acceptable (the message names it), e.g.
        ``lang: Expected one of zh, en, got 'fr'``.
    """
    lng = check_lang(lang)
    mode = check_mode(assets)
    base = normalize_base_url(asset_base_url)
    if radius_m is not None and not (
        isinstance(radius_m, int | float) and math.isfinite(radius_m) and radius_m > 0
    ):
        raise InvalidInputError(
            "radius_m", f"Expected a positive number of metres, got {radius_m!r}"
        )
    bases = base_maps(lng, tiles=tiles, attr=attr, tianditu_key=tianditu_key)
    gcj = needs_gcj(bases)

    cols = station_columns(registry, open_now, flags)
    if gcj:
        cols["gdy"], cols["gdx"] = gcj_deltas(cols["lat"], cols["lon"])
    n = len(cols["lat"])
    colors = [*(CATEGORY_COLORS[c] for c in CATEGORIES), UNCATEGORISED_COLOR]
    stale = stale_text(stale_after_days, lng)
    meta = meta_for(
        lng,
        colors=colors,
        stale_colors=[_greyed(c) for c in colors],
        stale_stroke=STALE_STROKE,
        check_color=CHECK_COLOR,
        stale_text=capitalize(stale),
        problems=list(PROBLEM_CODES),
        categories=list(CATEGORIES),
        statuses=list(STATUSES),
        amenities=[a.value for a in Amenity],
        guess_fields=list(GUESS_FIELDS),
        share_bins=list(SHARE_BINS),
        share_colors=list(SHARE_COLORS),
        share_missing=SHARE_MISSING,
        unit=unit,
        digits=int(unit_digits),
    )
    m = new_map(
        lang=lng,
        assets=mode,
        asset_base_url=base,
        title_key="planner_title",
        tiles=None,
        attr=None,
    )
    for k, base_map in enumerate(bases):
        JsLayer(
            "base", meta, base_map.spec(), name=base_map.name, overlay=False, show=k == 0
        ).add_to(m)

    legend: list[list[Any]] = [["title", label("layer_stations", lng)]]
    present = sorted(set(cols["cat"]))
    for c in present:
        code = CATEGORIES[c] if c < len(CATEGORIES) else None
        legend.append(["dot", category_label(code, lng), meta["colors"][c]])
    if any(s != 0 for s in cols["st"]):
        legend.append(["hollow", label("legend_not_operational", lng)])
    fl = cols["fl"] or []
    n_stale = sum(1 for b in fl if b & FLAG_STALE)
    n_check = sum(1 for b in fl if b & FLAG_NEEDS_CHECK)
    if n_stale:
        legend.append(["stale", label("legend_stale", lng, stale=stale), STALE_LEGEND])
    if n_check:
        legend.append(["check", label("legend_needs_check", lng), CHECK_COLOR])
    legend.append(["cluster", label("legend_cluster", lng)])

    # Script order = layer-control order; the stations come first because coverage
    # circles and search read their data. Drawing order is separate: the vector layers
    # share one canvas and yz.restack keeps districts, circles and gaps under stations.
    stations = JsLayer(
        "stations",
        meta,
        pack(cols),
        name=label("layer_stations", lng),
        links=(MARKERCLUSTER_JS, *MARKERCLUSTER_CSS),
    )
    stations.add_to(m)
    if cols["fl"] is not None:
        # Rings over the stations that need checking, unclustered (a handful, normally),
        # so they show even inside a cluster; and a clustered layer of stale ones only.
        check = JsLayer(
            "needsCheck",
            meta,
            stations,
            name=label("layer_needs_check", lng, n=f"{n_check:,}"),
            show=0 < n_check <= COVERAGE_SHOWN_MAX,
        )
        check.add_to(m)
        JsControl("checkList", meta, stations, check).add_to(m)
        JsLayer(
            "staleStations",
            meta,
            stations,
            name=label("layer_stale", lng, stale=stale, n=f"{n_stale:,}"),
            show=False,
        ).add_to(m)
    if radius_m is not None:
        JsLayer(
            "coverage",
            meta,
            stations,
            float(radius_m),
            name=label("layer_coverage", lng, radius=format_distance(float(radius_m), lng)),
            show=n <= COVERAGE_SHOWN_MAX,
        ).add_to(m)
        legend.append(
            ["ring", label("legend_coverage", lng) + f" {format_distance(float(radius_m), lng)}"]
        )
    if walk_areas is not None:
        fc, fc_g = _overlay(walk_areas, "walk_areas", gcj)
        walk_name = (
            f"步行{walk_minutes:g}分钟范围" if lng == "zh" else f"{walk_minutes:g}-minute walk"
        )
        JsLayer("walkAreas", meta, fc, fc_g, walk_name, name=walk_name).add_to(m)
        legend.append(["ring", walk_legend or walk_name])
    if far_from_network is not None and far_from_network.get("features"):
        fc, fc_g = _overlay(far_from_network, "far_from_network", gcj)
        far_name = "远离步行道路的站点" if lng == "zh" else "Stations far from any walkable way"
        far_name += f" ({len(fc['features']):,})"
        JsLayer("farFromNetwork", meta, fc, fc_g, far_name, name=far_name).add_to(m)
    if uncovered is not None:
        JsLayer(
            "heat",
            meta,
            pack(_uncovered_columns(uncovered, gcj)),
            name=label("layer_uncovered", lng),
            links=(HEAT_JS,),
        ).add_to(m)
        legend.append(["heat", label("legend_heat", lng) + (paren(unit, lng) if unit else "")])
    if gaps is not None:
        fc, fc_g = _overlay(gaps, "gaps", gcj)
        JsLayer("gaps", meta, fc, fc_g, name=label("layer_gaps", lng)).add_to(m)
        legend.append(["gap", label("legend_gap", lng)])
    site_pts: list[tuple[float, float]] = []
    if sites is not None:
        fc, fc_g = _overlay(sites, "sites", gcj)
        JsLayer("sites", meta, fc, fc_g, name=label("layer_sites", lng)).add_to(m)
        legend.append(["site", label("legend_site", lng)])
        for f in fc.get("features") or []:
            g = (f or {}).get("geometry") or {}
            if g.get("type") == "Point":
                site_pts.append((float(g["coordinates"][1]), float(g["coordinates"][0])))
    if proposals is not None and proposals.get("features"):
        fc, fc_g = _overlay(proposals, "proposals", gcj)
        n_prop = f" ({len(fc['features']):,})"
        JsLayer("proposals", meta, fc, fc_g, name=label("layer_proposals", lng, n=n_prop)).add_to(m)
        legend.append(["proposal", label("legend_proposal", lng)])
    district_layer = None
    if districts is not None:
        fc, fc_g = _overlay(districts, "districts", gcj)
        district_layer = JsLayer(
            "districts", meta, fc, fc_g, name=label("layer_districts", lng), show=False
        )
        district_layer.add_to(m)
    bus_pts: list[tuple[float, float]] = []
    bus_layer: JsLayer | None = None
    if buses:
        day = timeline_date or first_day(bus_timeline) or datetime.now(LOCAL_TZ).date()
        tl = bus_timeline if bus_timeline is not None else derive_bus_timeline(buses, day)
        data = bus_payload(buses, tl, day, gcj=gcj)
        bus_layer = JsLayer("buses", meta, data, name=label("layer_buses", lng))
        bus_layer.add_to(m)
        JsControl("busSlider", meta, bus_layer, data).add_to(m)
        legend.append(["bus", label("legend_bus", lng)])
        legend.append(["stop", label("legend_bus_stop", lng), BUS_COLORS[0]])
        bus_pts = [(s["lat"], s["lon"]) for b in data["buses"] for s in b["stops"]]
    if districts is not None:
        legend.extend(_share_legend(lng))

    if headline is not None:
        JsControl("headline", meta, dict(headline)).add_to(m)
    JsControl("search", meta, stations, bus_layer).add_to(m)
    if district_layer is not None and districts is not None:
        rows = district_rows(_as_features(districts, "districts"))
        JsControl("districtTable", meta, rows, district_layer).add_to(m)
    JsControl("legend", meta, legend, "bottomright").add_to(m)
    add_map_controls(m, lng, layers_collapsed=False)

    pts_lat = list(cols["lat"]) + [p[0] for p in site_pts + bus_pts]
    pts_lon = list(cols["lon"]) + [p[1] for p in site_pts + bus_pts]
    b = _bounds(pts_lat, pts_lon)
    if b is not None:
        m.fit_bounds(b, padding=(20, 20), max_zoom=15)
    return m
