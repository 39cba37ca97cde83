"""A coverage study as layers of features: districts with their coverage share, the gap
polygons, and suggested sites. The OGC collections and the exports (CLI and HTTP) use
these, so a district's share is the same number wherever it is read.
"""

from __future__ import annotations

from typing import Any

import shapely

from yizhan.geo.coverage import coverage, gap_polygons, gaps_geojson, select_stations
from yizhan.geo.siting import site_mclp
from yizhan.query.studies import Study
from yizhan.stations.registry import Registry, StationFilter

#: Properties of a district feature (besides its name).
DISTRICT_COLUMNS = ("demand", "covered", "uncovered", "share_pct", "stations", "demand_per_station")
#: What :func:`study_layer` makes.
STUDY_LAYERS = ("districts", "gaps", "sites")


def district_features(
    registry: Registry, study: Study, radius_m: float, flt: StationFilter
) -> list[dict[str, Any]]:
    """Each district of *study* (ids 1, 2, …) with the demand within *radius_m* of a
    station passing *flt*: ``name``, ``demand``, ``covered``, ``uncovered``,
    ``share_pct``, ``stations``, ``demand_per_station``. Empty without districts."""
    if study.districts is None:
        return []
    result = coverage(registry, study.demand, radius_m, flt)
    rows = {r["district"]: r for r in result.per_district if r["district"] is not None}
    out = []
    for k, (name, geom) in enumerate(
        zip(study.districts.names, study.districts.geometries, strict=True), start=1
    ):
        row = rows.get(name, {})
        out.append(
            {
                "type": "Feature",
                "id": k,
                "geometry": shapely.geometry.mapping(shapely.set_precision(geom, 1e-7)),
                "properties": {"name": name, **{c: row.get(c) for c in DISTRICT_COLUMNS}},
            }
        )
    return out


def gap_features(
    registry: Registry, study: Study, radius_m: float, flt: StationFilter
) -> list[dict[str, Any]]:
    """The parts of the study area farther than *radius_m* from every station passing
    *flt*, cut along the districts, ranked by the demand inside (ids = ranks): ``rank``,
    ``area_m2``, ``district``, ``demand``, ``demand_points``. Empty without districts."""
    area = study.area
    if area is None:
        return []
    st = select_stations(registry, flt)
    gaps = gap_polygons(area, st.lon, st.lat, radius_m)
    doc = gaps_geojson(gaps, study.demand, districts=study.districts, min_area_m2=1.0)
    return [
        {
            "type": "Feature",
            "id": f["properties"]["rank"],
            "geometry": f["geometry"],
            "properties": f["properties"],
        }
        for f in doc["features"]
    ]


def site_features(
    registry: Registry,
    study: Study,
    radius_m: float,
    flt: StationFilter,
    n_new: int = 10,
    time_limit_s: float = 30.0,
) -> list[dict[str, Any]]:
    """*n_new* suggested sites (maximal covering, existing stations kept), best first
    (ids = ranks): ``rank``, ``gain``, ``cumulative_covered``, ``cumulative_covered_pct``."""
    st = select_stations(registry, flt)
    result = site_mclp(
        study.demand, st.lon, st.lat, n_new=n_new, radius_m=radius_m, time_limit_s=time_limit_s
    )
    out = []
    for f in result.to_geojson()["features"]:
        props = {k: v for k, v in f["properties"].items() if k != "candidate"}
        out.append(
            {"type": "Feature", "id": props["rank"], "geometry": f["geometry"], "properties": props}
        )
    return out


def study_layer(
    name: str,
    registry: Registry,
    study: Study,
    *,
    radius_m: float = 1000.0,
    flt: StationFilter | None = None,
    n_new: int = 10,
) -> list[dict[str, Any]]:
    """The features of study layer *name* (``districts``, ``gaps`` or ``sites``); stations
    count when they pass *flt* (default: operational)."""
    flt = flt if flt is not None else StationFilter.make()
    if name == "districts":
        return district_features(registry, study, radius_m, flt)
    if name == "gaps":
        return gap_features(registry, study, radius_m, flt)
    if name == "sites":
        return site_features(registry, study, radius_m, flt, n_new)
    raise ValueError(f"Expected one of {', '.join(STUDY_LAYERS)}, got {name!r}")
