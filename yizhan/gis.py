"""GeoPandas in and out: the registry, demand and districts as GeoDataFrames, and coverage,
gaps and siting that take and return GeoDataFrames.

For analysts in Jupyter::

    from yizhan.gis import read_registry, read_districts, district_coverage

    stations = read_registry()                       # the bundled Zhengzhou registry
    districts = read_districts("districts.shp")      # any CRS the file declares
    shares = district_coverage(stations, "workers.gpkg", districts, weight="workers")
    shares.explore(column="share_pct")

This module is imported on its own (``from yizhan.gis import …``), not by ``import
yizhan``: GeoPandas takes about 0.3 s to import, and the server and the CLI do not need it.
Files are read by :mod:`yizhan.query.demand_files` (pyogrio), so a demand file gives the
same numbers here, in ``yizhan coverage`` and in the API. Every frame returned is in
WGS-84 (EPSG:4326); frames given in another CRS are reprojected first. The computations
are those of :mod:`yizhan.geo.coverage` and :mod:`yizhan.geo.siting` (exact great-circle
distances, as ``/nearest``).

Sits beside ``cli/`` at the top of the layers: imports ``query/``, ``stations/``, ``geo/``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import coverage as _coverage
from yizhan.geo.coverage import gap_polygons, gaps_geojson, select_stations
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.hexgrid import spread_polygons
from yizhan.geo.siting import site_mclp
from yizhan.query.demand_files import load_points, read_layer
from yizhan.settings import DEFAULT_REGISTRY
from yizhan.stations.models import KNOWN_PROPERTIES
from yizhan.stations.registry import Registry, StationFilter, load_registry

WGS84 = "EPSG:4326"

#: What stations may be: a GeoDataFrame of points, a Registry, or a registry file.
StationsLike = Any
#: What demand may be: a GeoDataFrame (points or polygons), a Demand, or a file.
DemandLike = Any


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------
def registry_frame(registry: Registry) -> gpd.GeoDataFrame:
    """The stations of a loaded registry as a GeoDataFrame (one row per station: ``id``,
    every property, Point geometry in WGS-84). Lists stay lists (``amenities``)."""
    known = [p for p in KNOWN_PROPERTIES if any(p in f["properties"] for f in registry.features)]
    extra: dict[str, None] = {}
    for f in registry.features:
        extra.update(dict.fromkeys(k for k in f["properties"] if k not in KNOWN_PROPERTIES))
    columns = ["id", *known, *extra]
    rows = [{"id": f["id"], **f["properties"]} for f in registry.features]
    frame = pd.DataFrame(rows, columns=columns)
    return gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(registry.lon, registry.lat), crs=WGS84
    )


def read_registry(path: str | os.PathLike[str] | None = None) -> gpd.GeoDataFrame:
    """Load and validate a registry; its stations as a GeoDataFrame.

    Parameters
    ----------
    path : path-like, optional
        A registry GeoJSON; default the bundled Zhengzhou registry.

    Returns
    -------
    geopandas.GeoDataFrame
        ``id``, the properties, Point geometry (EPSG:4326). Cooling buses are left out.

    Raises
    ------
    RegistryInvalidError
        The registry has validation errors.

    Examples
    --------
    >>> from yizhan.gis import read_registry
    >>> stations = read_registry()
    >>> len(stations), stations.crs.to_epsg()
    (82, 4326)
    >>> stations[["id", "district"]].head(2).to_dict("records")
    [{'id': 'zz-de87a44ab3', 'district': '高新区'}, {'id': 'zz-5f5bd2c398', 'district': '高新区'}]
    """
    return registry_frame(load_registry(path if path is not None else DEFAULT_REGISTRY))


def read_layer_frame(
    path: str | os.PathLike[str], crs: str = "wgs84", layer: str | int | None = None
) -> gpd.GeoDataFrame:
    """Any vector file (Shapefile, zipped or not, GeoPackage, FlatGeobuf, GeoJSON, …) as a
    GeoDataFrame in WGS-84, reprojected from the CRS the file declares; ``crs`` as for
    :func:`yizhan.query.demand_files.read_layer` (``gcj02``, ``bd09``, ``EPSG:32650``)."""
    data = read_layer(path, crs, layer)
    return gpd.GeoDataFrame(
        pd.DataFrame(data.records, columns=data.fields),
        geometry=gpd.GeoSeries(list(data.geometries), crs=WGS84),
        crs=WGS84,
    )


def read_districts(
    path: str | os.PathLike[str], crs: str = "wgs84", layer: str | int | None = None
) -> gpd.GeoDataFrame:
    """District polygons from any vector file, in WGS-84 (see :func:`read_layer_frame`).

    Examples
    --------
    >>> from yizhan.gis import read_districts
    >>> from yizhan.settings import DEFAULT_DISTRICTS
    >>> districts = read_districts(DEFAULT_DISTRICTS)
    >>> len(districts), districts.loc[0, "name"]
    (12, '中原区')
    """
    return read_layer_frame(path, crs, layer)


def read_demand(
    path: str | os.PathLike[str],
    weight: str | None = None,
    *,
    crs: str = "wgs84",
    skip_invalid: bool = False,
) -> gpd.GeoDataFrame:
    """Demand from a file: points (CSV with ``lon``/``lat`` columns found by name, or any
    point layer) or polygons (any polygon layer), in WGS-84.

    CSV rows are read as ``yizhan coverage --demand`` reads them (thousands separators,
    errors naming the line, ``skip_invalid``); a CSV frame has the columns ``weight``
    (1 when *weight* is ``None``) and ``geometry``. Other files keep all their columns.
    """
    p = Path(path)
    if p.suffix.lower() in (".csv", ".tsv", ".txt"):
        d = load_points(p, weight, crs=crs, skip_invalid=skip_invalid)
        return gpd.GeoDataFrame(
            {weight or "weight": d.weight}, geometry=gpd.points_from_xy(d.lon, d.lat), crs=WGS84
        )
    frame = read_layer_frame(p, crs)
    if weight is not None and weight not in frame.columns:
        raise InvalidInputError(
            "weight", f"Expected a weight column {weight!r}, got columns {list(frame.columns)}"
        )
    return frame


# ---------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------
def _frame(value: Any, what: str) -> gpd.GeoDataFrame:
    if isinstance(value, str | os.PathLike):
        return read_layer_frame(value)
    if not isinstance(value, gpd.GeoDataFrame):
        raise InvalidInputError(
            what, f"Expected a GeoDataFrame or a file, got {type(value).__name__}"
        )
    if value.crs is None:
        return value  # taken as lon/lat (WGS-84)
    return value if value.crs.to_epsg() == 4326 else value.to_crs(WGS84)


def _stations(stations: StationsLike, operational_only: bool) -> tuple[NDArray[Any], NDArray[Any]]:
    """WGS-84 ``(lon, lat)`` of the stations that count."""
    if isinstance(stations, Registry):
        st = select_stations(stations, StationFilter.make() if operational_only else None)
        return st.lon, st.lat
    if isinstance(stations, str | os.PathLike) and Path(stations).suffix.lower() in (
        ".geojson",
        ".json",
    ):
        return _stations(load_registry(stations), operational_only)
    frame = _frame(stations, "stations")
    if operational_only and "status" in frame.columns:
        status = frame["status"]
        frame = frame[status.isna() | (status == "operational")]
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
        raise InvalidInputError("stations", "Expected Point geometries for stations")
    return (
        np.asarray(shapely.get_x(geoms), dtype=np.float64),
        np.asarray(shapely.get_y(geoms), dtype=np.float64),
    )


def _districts(districts: Any, name_field: str | Sequence[str] | None) -> Districts:
    frame = _frame(districts, "districts")
    if name_field is None:
        names = [str(i + 1) for i in range(len(frame))]
    else:
        fields = [name_field] if isinstance(name_field, str) else list(name_field)
        missing = [f for f in fields if f not in frame.columns]
        if missing:
            raise InvalidInputError(
                "name_field",
                f"Expected a column {missing[0]!r}, got columns {list(frame.columns)}",
            )
        names = [" ".join(str(v) for v in row) for row in frame[fields].itertuples(index=False)]
    props = frame.drop(columns=frame.geometry.name).to_dict("records")
    return Districts.from_geometries(names, list(frame.geometry.values), props)


def _demand(
    demand: DemandLike,
    weight: str | None,
    districts: Districts | None = None,
    cell_size_m: float = 250.0,
) -> Demand:
    if isinstance(demand, Demand):
        out = demand
    else:
        if isinstance(demand, str | os.PathLike) and Path(demand).suffix.lower() in (
            ".csv",
            ".tsv",
            ".txt",
        ):
            return load_points(demand, weight, districts=districts)
        frame = _frame(demand, "demand")
        if weight is not None and weight not in frame.columns:
            raise InvalidInputError(
                "weight", f"Expected a weight column {weight!r}, got columns {list(frame.columns)}"
            )
        w = (
            None
            if weight is None
            else pd.to_numeric(frame[weight], errors="coerce").to_numpy(dtype=np.float64)
        )
        geoms = np.asarray(frame.geometry.values, dtype=object)
        dims = shapely.get_dimensions(geoms) if len(geoms) else np.empty(0)
        if len(geoms) and (dims == 2).all():
            if w is None:
                raise InvalidInputError("weight", "polygon demand needs a weight column")
            out = spread_polygons(list(geoms), w, cell_size_m, weight_name=weight or "weight")
        elif len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
            raise InvalidInputError("demand", "Expected Point or (Multi)Polygon geometries")
        else:
            out = Demand.from_arrays(
                shapely.get_x(geoms), shapely.get_y(geoms), w, weight_name=weight or "weight"
            )
    return out.with_districts(districts) if districts is not None else out


# ---------------------------------------------------------------------------------------
# Analyses
# ---------------------------------------------------------------------------------------
def coverage(
    stations: StationsLike,
    demand: DemandLike,
    radius_m: float = 1000.0,
    *,
    weight: str | None = None,
    districts: Any = None,
    name_field: str | Sequence[str] | None = "name",
    operational_only: bool = True,
) -> gpd.GeoDataFrame:
    """Which demand has a station within *radius_m*: the demand points with their distance.

    Parameters
    ----------
    stations : GeoDataFrame, Registry or path
        Station points (any CRS). With a ``status`` column, only ``operational`` (or
        empty) rows count unless *operational_only* is false.
    demand : GeoDataFrame, Demand or path
        Points (one weight each) or polygons (their weight spread over their area).
    radius_m : float
        Coverage radius, metres (great-circle).
    weight : str, optional
        Column with the demand weight; 1 per point when omitted.
    districts : GeoDataFrame or path, optional
        Label each point with its district (column ``district``).
    name_field : str or sequence of str
        The district name column(s).
    operational_only : bool
        Count only operational stations.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per demand point: ``weight``, ``district`` (with *districts*),
        ``distance_m`` to the nearest station and ``covered``; ``attrs["summary"]`` holds
        the totals (``covered_weight_pct``, percentiles, per-district rows).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> from yizhan.gis import coverage
    >>> demand = gpd.GeoDataFrame(
    ...     {"workers": [3, 1]}, geometry=[Point(113.65, 34.75), Point(113.70, 34.75)],
    ...     crs="EPSG:4326")
    >>> stations = gpd.GeoDataFrame(geometry=[Point(113.651, 34.75)], crs="EPSG:4326")
    >>> result = coverage(stations, demand, radius_m=1000, weight="workers")
    >>> result[["weight", "covered"]].to_dict("records")
    [{'weight': 3.0, 'covered': True}, {'weight': 1.0, 'covered': False}]
    >>> result.attrs["summary"]["covered_weight_pct"]
    75.0
    """
    dist = _districts(districts, name_field) if districts is not None else None
    d = _demand(demand, weight, dist)
    result = _coverage(_stations(stations, operational_only), d, radius_m)
    data: dict[str, Any] = {"weight": d.weight}
    if d.has_districts:
        data["district"] = d.district_labels()
    data["distance_m"] = result.nearest_distance_m
    data["covered"] = result.covered
    out = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(d.lon, d.lat), crs=WGS84)
    out.attrs["summary"] = result.to_dict()
    return out


def district_coverage(
    stations: StationsLike,
    demand: DemandLike,
    districts: Any,
    radius_m: float = 1000.0,
    *,
    weight: str | None = None,
    name_field: str | Sequence[str] | None = "name",
    operational_only: bool = True,
) -> gpd.GeoDataFrame:
    """The share of each district's demand with a station within *radius_m*.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per district: ``name``, ``demand``, ``covered``, ``uncovered``,
        ``share_pct``, ``stations`` (inside the polygon) and ``demand_per_station``,
        with the district polygons; ``attrs["summary"]`` the totals.

    Examples
    --------
    >>> from yizhan.gis import district_coverage, read_districts, read_registry
    >>> from yizhan.geo.hexgrid import hex_grid
    >>> from yizhan.query.demand_files import load_districts
    >>> from yizhan.settings import DEFAULT_DISTRICTS
    >>> demand = hex_grid(load_districts(DEFAULT_DISTRICTS), 2000)  # land, by area
    >>> shares = district_coverage(read_registry(), demand, read_districts(DEFAULT_DISTRICTS))
    >>> top = shares.sort_values("share_pct", ascending=False).iloc[0]
    >>> top["name"], int(top["stations"]), round(float(top["share_pct"]), 1)
    ('上街区', 4, 22.2)
    """
    dist = _districts(districts, name_field)
    d = _demand(demand, weight, dist)
    result = _coverage(_stations(stations, operational_only), d, radius_m)
    rows = {r["district"]: r for r in result.per_district if r["district"] is not None}
    cols = ("demand", "covered", "uncovered", "share_pct", "stations", "demand_per_station")
    data: dict[str, Any] = {"name": list(dist.names)}
    for c in cols:
        data[c] = [rows.get(n, {}).get(c) for n in dist.names]
    out = gpd.GeoDataFrame(data, geometry=list(dist.geometries), crs=WGS84)
    out.attrs["summary"] = result.to_dict()
    return out


def gaps(
    stations: StationsLike,
    area: Any,
    radius_m: float = 1000.0,
    *,
    demand: DemandLike = None,
    weight: str | None = None,
    name_field: str | Sequence[str] | None = "name",
    operational_only: bool = True,
    min_area_m2: float = 1.0,
) -> gpd.GeoDataFrame:
    """The parts of *area* farther than *radius_m* from every station.

    Parameters
    ----------
    area : GeoDataFrame, path or shapely geometry
        The study area: districts (the gaps are cut along them and named by
        *name_field*) or any polygon(s).
    demand : GeoDataFrame, Demand or path, optional
        Rank the gaps by the demand inside them (else by area).

    Returns
    -------
    geopandas.GeoDataFrame
        ``rank``, ``area_m2``, ``district`` (area given as districts), ``demand`` and
        ``demand_points`` (with *demand*), and the gap polygons.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> import geopandas as gpd
    >>> from yizhan.gis import gaps
    >>> stations = gpd.GeoDataFrame(geometry=[Point(113.65, 34.75)], crs="EPSG:4326")
    >>> g = gaps(stations, box(113.64, 34.74, 113.66, 34.76), radius_m=500)
    >>> len(g), round(float(g.area_m2.sum()) / 1e6, 2)  # 1.83 × 2.22 km less 0.79 km²
    (1, 3.28)
    """
    dist: Districts | None = None
    if isinstance(area, gpd.GeoDataFrame | str | os.PathLike):
        if name_field is not None:
            dist = _districts(area, name_field)
            shape = dist.union()
        else:
            shape = shapely.union_all(np.asarray(_frame(area, "area").geometry.values))
    else:
        shape = area
    lon, lat = _stations(stations, operational_only)
    g = gap_polygons(shape, lon, lat, radius_m)
    d = _demand(demand, weight) if demand is not None else None
    doc = gaps_geojson(g, d, districts=dist, min_area_m2=min_area_m2)
    if not doc["features"]:
        return gpd.GeoDataFrame({"rank": []}, geometry=[], crs=WGS84)
    return gpd.GeoDataFrame.from_features(doc["features"], crs=WGS84)


def site(
    stations: StationsLike,
    demand: DemandLike,
    n_new: int = 10,
    radius_m: float = 1000.0,
    *,
    weight: str | None = None,
    candidates: Any = None,
    operational_only: bool = True,
    time_limit_s: float = 60.0,
) -> gpd.GeoDataFrame:
    """Where *n_new* new stations cover the most demand not yet covered (maximal covering,
    solved exactly by HiGHS; existing stations kept).

    Parameters
    ----------
    candidates : GeoDataFrame or path, optional
        Candidate sites (points); default: uncovered demand points.

    Returns
    -------
    geopandas.GeoDataFrame
        The chosen sites, best first: ``rank``, ``gain`` (demand each adds),
        ``cumulative_covered`` and ``cumulative_covered_pct``; ``attrs["summary"]`` has
        the solver's answer (``covered_before_pct``, ``covered_after_pct``, ``status``).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> from yizhan.gis import site
    >>> demand = gpd.GeoDataFrame(
    ...     {"workers": [5, 5, 1]},
    ...     geometry=[Point(113.60, 34.75), Point(113.601, 34.75), Point(113.70, 34.75)],
    ...     crs="EPSG:4326")
    >>> none = gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    >>> s = site(none, demand, n_new=1, radius_m=500, weight="workers")
    >>> s[["rank", "gain"]].to_dict("records")
    [{'rank': 1, 'gain': 10.0}]
    """
    d = _demand(demand, weight)
    lon, lat = _stations(stations, operational_only)
    c_lon = c_lat = None
    if candidates is not None:
        c_lon, c_lat = _stations(candidates, operational_only=False)
    result = site_mclp(
        d, lon, lat, c_lon, c_lat, n_new=n_new, radius_m=radius_m, time_limit_s=time_limit_s
    )
    feats = result.to_geojson()["features"]
    if feats:
        out = gpd.GeoDataFrame.from_features(feats, crs=WGS84).drop(columns=["candidate"])
    else:
        out = gpd.GeoDataFrame({"rank": []}, geometry=[], crs=WGS84)
    out.attrs["summary"] = result.to_dict()
    return out


__all__ = [
    "coverage",
    "district_coverage",
    "gaps",
    "read_demand",
    "read_districts",
    "read_layer_frame",
    "read_registry",
    "registry_frame",
    "site",
]
