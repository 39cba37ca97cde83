"""Coverage and siting by walking along streets (``--metric walk --minutes 15``).

Coverage is one multi-source search from every station that counts
(:meth:`~yizhan.geo.network.WalkNetwork.multi_source`; its cost grows with the graph, not
stations × demand), the demand points snapped onto the network, and the result built by
the same code as great-circle coverage (:func:`yizhan.geo.coverage.coverage_from_distance`),
so every table has the same columns. :func:`side_by_side` puts the two metrics next to
each other per district: covered within the great-circle radius vs within the walk.
:func:`walk_access` is 2SFCA on foot: catchments from bounded searches from the stations
(:meth:`~yizhan.geo.network.WalkNetwork.cover_pairs`) given to the core great-circle
2SFCA uses too (:func:`yizhan.geo.access.two_step_fca_from_costs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import shapely

from yizhan.errors import InvalidInputError
from yizhan.geo.access import DEFAULT_CAPACITY, AccessResult, Decay, two_step_fca_from_costs
from yizhan.geo.coverage import (
    DEFAULT_BANDS_M,
    CoverageResult,
    StationMask,
    Stations,
    coverage_from_distance,
    select_stations,
)
from yizhan.geo.demand import Demand
from yizhan.query.walking import Walking
from yizhan.stations.registry import Registry, StationFilter


def check_minutes(minutes: float, name: str = "minutes") -> float:
    """A walking time in minutes (above 0, at most 120), or an error naming *name*."""
    m = float(minutes)
    if not math.isfinite(m) or not 0 < m <= 120:
        raise InvalidInputError(name, f"must be above 0 and at most 120 minutes, got {minutes}")
    return m


def walk_coverage(
    walking: Walking,
    stations: Stations,
    demand: Demand,
    minutes: float = 15.0,
    station_mask: StationMask = None,
    *,
    bands_m: Sequence[float] = DEFAULT_BANDS_M,
) -> CoverageResult:
    """Share of demand within *minutes* on foot of a station, overall and per district.

    The result's ``radius_m`` is the walk in metres (minutes × speed) and
    ``nearest_distance_m`` each point's walk to its nearest station (``inf`` beyond the
    largest of the radius and the bands).
    """
    limit = check_minutes(minutes) * walking.metres_per_min
    st = select_stations(stations, station_mask)
    if len(st) == 0 or len(demand) == 0:
        dist = np.full(len(demand), np.inf)
    else:
        net = walking.network
        field = net.multi_source(
            net.snap(st.lon, st.lat, "stations"), max([limit, *(float(b) for b in bands_m)])
        )
        dist, _ = field.at(net.snap(demand.lon, demand.lat, "demand"))
    return coverage_from_distance(st, demand, dist, limit, bands_m=bands_m)


def walk_access(
    walking: Walking,
    stations: Stations,
    demand: Demand,
    minutes: float = 15.0,
    station_mask: StationMask = None,
    *,
    capacity: Any = None,
    default_capacity: float = DEFAULT_CAPACITY,
    decay: Decay = "none",
) -> AccessResult:
    """Two-step floating catchment accessibility on foot.

    Each station's catchment is the demand within *minutes* on foot of it (bounded
    searches from the stations, grouped by area); the ratios and sums are those of
    :func:`yizhan.geo.access.two_step_fca` (decay scaled by the walk). The result's
    ``radius_m`` is the walk in metres (minutes × speed).
    """
    limit = check_minutes(minutes) * walking.metres_per_min
    st = select_stations(stations, station_mask)
    empty = np.empty(0, np.int64)
    pairs: tuple[Any, Any, Any] = (empty, empty, np.empty(0))
    if len(st) and len(demand):
        net = walking.network
        src, tgt, walk_m = net.cover_pairs(
            net.snap(st.lon, st.lat, "stations"), net.snap(demand.lon, demand.lat, "demand"), limit
        )
        pairs = (tgt, src, walk_m)
    return two_step_fca_from_costs(
        stations,
        demand,
        pairs,
        limit,
        station_mask,
        capacity=capacity,
        default_capacity=default_capacity,
        decay=decay,
    )


def side_by_side(great_circle: CoverageResult, walk: CoverageResult) -> list[dict[str, Any]]:
    """Per district (``(all)`` first, for the whole area; ``(outside)`` for demand outside
    every district): the demand, the share covered by great circle and the share covered on
    foot, and the difference in percentage points."""
    rows: list[dict[str, Any]] = [
        {
            "district": "(all)",
            "demand": great_circle.total_weight,
            "great_circle_pct": great_circle.covered_weight_pct,
            "walk_pct": walk.covered_weight_pct,
            "difference_pct": walk.covered_weight_pct - great_circle.covered_weight_pct,
        }
    ]
    for g, w in zip(great_circle.per_district, walk.per_district, strict=True):
        rows.append(
            {
                "district": g["district"] if g["district"] is not None else "(outside)",
                "demand": g["demand"],
                "great_circle_pct": g["share_pct"],
                "walk_pct": w["share_pct"],
                "difference_pct": w["share_pct"] - g["share_pct"],
            }
        )
    return rows


def walk_siting_inputs(
    walking: Walking, existing_lon: Any, existing_lat: Any, demand: Demand, minutes: float
) -> tuple[float, Any, Any]:
    """What :func:`yizhan.geo.siting.site_mclp` needs to site by walking.

    Returns ``(radius_m, cover, covered)``: the walk in metres, the cover-set builder
    (bounded searches from the candidates, :meth:`WalkNetwork.cover_matrix`) and which
    demand points the existing stations already cover on foot (one multi-source search).
    """
    limit = check_minutes(minutes) * walking.metres_per_min
    net = walking.network
    if np.size(existing_lon) and len(demand):
        field = net.multi_source(net.snap(existing_lon, existing_lat, "stations"), limit)
        dist, _ = field.at(net.snap(demand.lon, demand.lat, "demand"))
        covered = dist <= limit
    else:
        covered = np.zeros(len(demand), dtype=bool)

    def cover(d_lon: Any, d_lat: Any, s_lon: Any, s_lat: Any, radius_m: float) -> Any:
        if np.size(d_lon) == 0 or np.size(s_lon) == 0:
            return sp.csr_matrix((int(np.size(d_lon)), int(np.size(s_lon))), dtype=np.int8)
        return net.cover_matrix(
            net.snap(s_lon, s_lat, "candidates"), net.snap(d_lon, d_lat, "demand"), radius_m
        )

    return limit, cover, covered


def walk_reach(walking: Walking, lon: Any, lat: Any, minutes: float) -> Any:
    """The union of the areas within *minutes* on foot of each point (lon/lat geometry).

    One isochrone per point (:meth:`WalkNetwork.isochrones`), unioned.
    """
    m = check_minutes(minutes)
    polys = [
        walking.network.isochrones(float(x), float(y), [m], speed_kmh=walking.speed_kmh)[0]
        for x, y in zip(np.asarray(lon).tolist(), np.asarray(lat).tolist(), strict=True)
    ]
    return shapely.union_all([p for p in polys if not p.is_empty])


def walk_gap_polygons(
    walking: Walking,
    study_area: Any,
    station_lon: Any,
    station_lat: Any,
    minutes: float,
    reach: Any = None,
) -> Any:
    """The parts of a study area not within *minutes* on foot of any station (lon/lat);
    *reach*: the stations' :func:`walk_reach`, when already computed."""
    if study_area is None or shapely.is_empty(study_area):
        raise InvalidInputError("study_area", "Expected a non-empty (Multi)Polygon")
    area = shapely.make_valid(study_area)
    if reach is None:
        reach = walk_reach(walking, station_lon, station_lat, minutes)
    return area if shapely.is_empty(reach) else shapely.difference(area, reach)


def walk_members(
    walking: Walking, great_circle: CoverageResult, walk: CoverageResult, minutes: float
) -> dict[str, Any]:
    """What a walking coverage answer adds to :meth:`CoverageResult.to_dict` (API and CLI):
    ``metric``, ``minutes``, ``speed_kmh``, ``network``, the great-circle summary and the
    per-district ``side_by_side`` table."""
    return {
        "metric": "walk",
        "minutes": minutes,
        "speed_kmh": walking.speed_kmh,
        "network": walking.source,
        "great_circle": {k: v for k, v in great_circle.to_dict().items() if k != "per_district"},
        "side_by_side": side_by_side(great_circle, walk),
    }


def walk_area_features(walking: Walking, lon: Any, lat: Any, minutes: float) -> dict[str, Any]:
    """The planner map's walking layer: one Feature, the union of the areas within
    *minutes* on foot of the points (see :func:`walk_reach`), coordinates to 1e-6°."""
    return reach_features(walking, walk_reach(walking, lon, lat, minutes), minutes)


def reach_features(walking: Walking, reach: Any, minutes: float) -> dict[str, Any]:
    """:func:`walk_area_features` of an area already computed by :func:`walk_reach`."""
    features = []
    if not shapely.is_empty(reach):
        geom = shapely.set_precision(reach, 1e-6)
        features.append(
            {
                "type": "Feature",
                "properties": {"minutes": float(minutes), "speed_kmh": walking.speed_kmh},
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def far_from_network(walking: Walking, registry: Registry) -> dict[str, Any]:
    """The stations farther than ``walking.max_snap_m`` from every walkable way, as GeoJSON
    Points with ``id``, ``name`` and ``snap_m`` (``yizhan validate --network`` and the
    planner map's marks)."""
    snapped = walking.stations(registry)
    features = [
        {
            "type": "Feature",
            "id": registry.ids[i],
            "geometry": {
                "type": "Point",
                "coordinates": [float(registry.lon[i]), float(registry.lat[i])],
            },
            "properties": {
                "id": registry.ids[i],
                "name": registry.features[i]["properties"].get("name"),
                "snap_m": round(float(snapped.snap_m[i]), 1),
            },
        }
        for i in snapped.too_far(walking.max_snap_m).tolist()
    ]
    return {"type": "FeatureCollection", "features": features, "max_snap_m": walking.max_snap_m}


def walk_layers(
    walking: Walking, registry: Registry, flt: StationFilter, minutes: float
) -> dict[str, Any]:
    """The planner map's walking members (``walk_areas``, ``walk_minutes``,
    ``far_from_network``) for the stations of *registry* passing *flt*."""
    mask = registry.mask(flt)
    return {
        "walk_areas": walk_area_features(walking, registry.lon[mask], registry.lat[mask], minutes),
        "walk_minutes": float(minutes),
        "far_from_network": far_from_network(walking, registry),
    }
