"""The collections of the OGC API: stations, cooling buses where they stand, and — when a
study is configured — districts with their coverage share and the gap polygons.

Each collection answers :func:`items` with the positions it matched (exact count) and the
features of the requested page; filters run on columns (:mod:`.ogc_tables`).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from yizhan.errors import NotFoundError
from yizhan.query.export_study import district_features, gap_features
from yizhan.query.features import Flags, station_feature
from yizhan.query.listing import bbox_mask, station_index
from yizhan.query.ogc import CollectionInfo, ItemsQuery, iso_utc, property_filter_ast
from yizhan.query.ogc_filter import Evaluator, Queryable
from yizhan.query.ogc_tables import (
    STATION_QUERYABLES,
    FeatureListTable,
    StationTable,
    spatial_points,
)
from yizhan.query.studies import Study
from yizhan.stations.registry import StationFilter
from yizhan.stations.search import StationSearch

STATIONS = "stations"
BUSES = "cooling_buses"
DISTRICTS = "districts"
GAPS = "gaps"

#: Coverage radius of the districts and gaps collections (the national 1 km target).
STUDY_RADIUS_M = 1000.0

_T = "string"
BUS_QUERYABLES: dict[str, Queryable] = {
    "id": Queryable(_T, "The bus's id."),
    "name": Queryable(_T, "Name of the bus."),
    "operator": Queryable(_T, "Who runs it."),
    "plate": Queryable(_T, "Licence plate."),
    "district": Queryable(_T, "District."),
    "status": Queryable(_T, "Status of the bus."),
    "stop_id": Queryable(_T, "The scheduled stop where it stands."),
    "placement_id": Queryable(_T, "The placement where it stands (an operator moved it)."),
    "stop_name": Queryable(_T, "Name of the place where it stands."),
    "leaves_at": Queryable("date-time", "When it leaves."),
    "amenities": Queryable("array", "What it offers."),
    "stale": Queryable("boolean", "Not verified within the server's stale_after_days."),
    "needs_check": Queryable("boolean", "Several workers reported a problem."),
}
DISTRICT_QUERYABLES: dict[str, Queryable] = {
    "name": Queryable(_T, "District name."),
    "demand": Queryable("number", "Demand weight in the district."),
    "covered": Queryable("number", "Demand within the radius of a station."),
    "uncovered": Queryable("number", "Demand beyond it."),
    "share_pct": Queryable("number", "Covered share of the demand, %."),
    "stations": Queryable("integer", "Operational stations in the district."),
    "demand_per_station": Queryable("number", "Demand per station."),
}
GAP_QUERYABLES: dict[str, Queryable] = {
    "rank": Queryable("integer", "1 = the gap with the most demand."),
    "area_m2": Queryable("number", "Area of the gap, m²."),
    "district": Queryable(_T, "District the gap lies in."),
    "demand": Queryable("number", "Demand weight inside the gap."),
    "demand_points": Queryable("integer", "Demand points inside the gap."),
}


@dataclass(frozen=True)
class Page:
    """What an items request found: the exact number matched and the page's features."""

    matched: int
    features: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------
# Stations
# ---------------------------------------------------------------------------------------
def stations_info(search: StationSearch) -> CollectionInfo:
    reg = search.registry
    bbox = None
    if len(reg):
        bbox = (
            float(reg.lon.min()),
            float(reg.lat.min()),
            float(reg.lon.max()),
            float(reg.lat.max()),
        )
    return CollectionInfo(
        STATIONS,
        "Stations",
        "Service stations for outdoor workers (驿站): water, toilets, rest and cool air. "
        "Each carries open_now and next_change at the time of the request, stale and "
        "needs_check. Ordered by id.",
        STATION_QUERYABLES,
        bbox,
        (None, None),
        "point",
        editable=True,
    )


def station_mask(
    search: StationSearch, flags: Flags, query: ItemsQuery, ts: float, timezone: str
) -> NDArray[np.bool_]:
    """Which stations pass the bbox, the datetime, the property filters and the filter."""
    reg = search.registry
    mask = np.ones(len(reg), dtype=bool)
    if query.bbox is not None:
        mask &= bbox_mask(reg, query.bbox)
    table = StationTable(search, flags, ts, timezone)
    ev = Evaluator(table, STATION_QUERYABLES, timezone)
    pf = property_filter_ast(query.properties, STATION_QUERYABLES)
    if pf is not None:
        mask &= ev.mask(pf)
    if query.filter is not None:
        mask &= ev.mask(query.filter)
    if query.datetime is not None:
        # A station exists from created_at (unknown: always) until it was removed.
        created = table.column("created_at")
        updated = table.column("updated_at")
        status = table.column("status")
        removed = np.fromiter((s == "removed" for s in status.tolist()), dtype=bool, count=len(reg))
        start = np.where(np.isnan(created), -np.inf, created)
        end = np.where(removed & ~np.isnan(updated), updated, np.inf)
        lo = -np.inf if query.datetime.start is None else query.datetime.start
        hi = np.inf if query.datetime.end is None else query.datetime.end
        mask &= (start <= hi) & (end >= lo)
    return mask


def station_items(search: StationSearch, flags: Flags, query: ItemsQuery, timezone: str) -> Page:
    """A page of stations, ordered by id, with their computed properties."""
    ts = time.time()
    reg = search.registry
    matched = np.flatnonzero(station_mask(search, flags, query, ts, timezone))
    matched = matched[np.argsort(reg.id_rank[matched], kind="stable")]
    page = matched[query.offset : query.offset + query.limit].tolist()
    return Page(len(matched), [station_feature(search, i, ts, "wgs84", flags) for i in page])


def station_item(search: StationSearch, flags: Flags, feature_id: str) -> dict[str, Any]:
    """One station with its computed properties; :class:`NotFoundError` when unknown."""
    i = station_index(search.registry, feature_id)
    return station_feature(search, i, time.time(), "wgs84", flags)


# ---------------------------------------------------------------------------------------
# Cooling buses where they stand
# ---------------------------------------------------------------------------------------
def buses_info(search: StationSearch) -> CollectionInfo:
    fleet = search.fleet
    pts = [s["location"] for b in fleet.buses for s in b["properties"].get("stops") or []]
    bbox = None
    if pts:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        bbox = (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))
    return CollectionInfo(
        BUSES,
        "Cooling buses where they stand",
        "Cooling buses (纳凉公交) in service, as points where they stand at the time of the "
        "request, or at `datetime` (an instant; an interval: its start).",
        BUS_QUERYABLES,
        bbox,
        (None, None),
    )


def bus_features(search: StationSearch, flags: Flags, ts: float) -> list[dict[str, Any]]:
    """Every bus in service at *ts* as a Point where it stands, ordered by id."""
    fleet = search.fleet
    out = []
    for pos in fleet.positions(ts):
        bus = fleet.buses[pos.bus_index]
        props = {k: v for k, v in bus["properties"].items() if k != "stops"}
        props.update(pos.properties())
        props.pop("location", None)
        props["open_now"] = True
        props["next_change"] = props["leaves_at"]
        props.update(flags(bus))
        out.append(
            {
                "type": "Feature",
                "id": pos.bus_id,
                "geometry": {"type": "Point", "coordinates": [pos.lon, pos.lat]},
                "properties": props,
            }
        )
    out.sort(key=lambda f: str(f["id"]))
    return out


def bus_items(search: StationSearch, flags: Flags, query: ItemsQuery, timezone: str) -> Page:
    ts = query.datetime.at(time.time()) if query.datetime is not None else time.time()
    feats = bus_features(search, flags, ts)
    return filter_list(feats, BUS_QUERYABLES, query, timezone, point_geometries(feats))


def point_geometries(features: list[dict[str, Any]]) -> Callable[[], NDArray[np.object_]]:
    def build() -> NDArray[np.object_]:
        xy = np.array([f["geometry"]["coordinates"][:2] for f in features], dtype=np.float64)
        return np.asarray(shapely.points(xy.reshape(len(features), 2)), dtype=object)

    return build


# ---------------------------------------------------------------------------------------
# Small lists: filtering and paging
# ---------------------------------------------------------------------------------------
def filter_list(
    features: list[dict[str, Any]],
    queryables: Mapping[str, Queryable],
    query: ItemsQuery,
    timezone: str,
    geometries: Callable[[], NDArray[np.object_]] | None = None,
) -> Page:
    """Filter a list of features (bbox, property filters, filter) and cut the page."""
    table = FeatureListTable(features, queryables, timezone, geometries)
    mask = np.ones(len(features), dtype=bool)
    if query.bbox is not None and features:
        minlon, minlat, maxlon, maxlat = query.bbox
        if minlon <= maxlon:
            box = shapely.box(minlon, minlat, maxlon, maxlat)
        else:
            box = shapely.union(
                shapely.box(minlon, minlat, 180, maxlat), shapely.box(-180, minlat, maxlon, maxlat)
            )
        mask &= table.spatial("intersects", box)
    ev = Evaluator(table, queryables, timezone)
    pf = property_filter_ast(query.properties, queryables)
    if pf is not None:
        mask &= ev.mask(pf)
    if query.filter is not None:
        mask &= ev.mask(query.filter)
    matched = np.flatnonzero(mask).tolist()
    page = matched[query.offset : query.offset + query.limit]
    return Page(len(matched), [features[i] for i in page])


def find_in_list(features: list[dict[str, Any]], feature_id: str, what: str) -> dict[str, Any]:
    """The feature whose id (as text) is *feature_id*; :class:`NotFoundError` otherwise."""
    for f in features:
        if str(f.get("id")) == feature_id:
            return f
    raise NotFoundError(f"no {what} with id {feature_id!r}")


# ---------------------------------------------------------------------------------------
# Districts and gaps of the configured study
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyLayers:
    """Districts with their coverage share and the gap polygons, for one registry snapshot."""

    districts: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    district_geoms: NDArray[np.object_]
    gap_geoms: NDArray[np.object_]


def build_study_layers(search: StationSearch, study: Study) -> StudyLayers:
    """Coverage per district (operational stations within :data:`STUDY_RADIUS_M`) and
    the gaps, cut along the districts and ranked by demand."""
    reg = search.registry
    flt = StationFilter.make()
    districts = district_features(reg, study, STUDY_RADIUS_M, flt)
    gaps = gap_features(reg, study, STUDY_RADIUS_M, flt)
    dgeoms = list(study.districts.geometries) if study.districts is not None else []
    ggeoms = [shapely.geometry.shape(f["geometry"]) for f in gaps]
    return StudyLayers(
        districts,
        gaps,
        np.array(dgeoms, dtype=object).reshape(len(dgeoms)),
        np.array(ggeoms, dtype=object).reshape(len(ggeoms)),
    )


class StudyLayerCache:
    """:class:`StudyLayers` of the current snapshot, computed once per snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ref: Any = None
        self._study: Study | None = None
        self._layers: StudyLayers | None = None

    def get(self, search: StationSearch, study: Study) -> StudyLayers:
        with self._lock:
            reg = search.registry
            if (
                self._layers is None
                or self._ref is None
                or self._ref() is not reg
                or self._study is not study
            ):
                self._layers = build_study_layers(search, study)
                self._ref = weakref.ref(reg)
                self._study = study
            return self._layers


def study_bbox(study: Study) -> tuple[float, float, float, float] | None:
    """The bounds of the study area (lon/lat), ``None`` without districts."""
    area = study.area
    if area is None or shapely.is_empty(area):
        return None
    b = shapely.bounds(area).tolist()
    return (b[0], b[1], b[2], b[3])


def districts_info(study: Study) -> CollectionInfo:
    return CollectionInfo(
        DISTRICTS,
        "Districts with coverage",
        f"Each district with the share of its demand ({study.description}) within "
        f"{STUDY_RADIUS_M:g} m of an operational station.",
        DISTRICT_QUERYABLES,
        study_bbox(study),
        None,
        "polygon",
    )


def gaps_info(study: Study) -> CollectionInfo:
    return CollectionInfo(
        GAPS,
        "Coverage gaps",
        f"Parts of the study area farther than {STUDY_RADIUS_M:g} m from every operational "
        "station, cut along the districts and ranked by the demand inside.",
        GAP_QUERYABLES,
        study_bbox(study),
        None,
        "polygon",
    )


def study_items(layers: StudyLayers, collection: str, query: ItemsQuery, timezone: str) -> Page:
    if collection == DISTRICTS:
        geoms = layers.district_geoms
        return filter_list(layers.districts, DISTRICT_QUERYABLES, query, timezone, lambda: geoms)
    ggeoms = layers.gap_geoms
    return filter_list(layers.gaps, GAP_QUERYABLES, query, timezone, lambda: ggeoms)


__all__ = [
    "BUSES",
    "DISTRICTS",
    "GAPS",
    "STATIONS",
    "Page",
    "StudyLayerCache",
    "StudyLayers",
    "bus_features",
    "bus_items",
    "buses_info",
    "districts_info",
    "filter_list",
    "find_in_list",
    "gaps_info",
    "iso_utc",
    "spatial_points",
    "station_item",
    "station_items",
    "stations_info",
    "study_bbox",
    "study_items",
]
