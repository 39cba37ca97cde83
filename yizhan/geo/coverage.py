"""Coverage: what share of demand has a station within a radius, and where the gaps are.

A demand point is *covered* when its great-circle distance to the nearest selected
station is at most ``radius_m`` (default 1,000 m, the national target). Distances are the
exact ones ``/nearest`` returns (:class:`yizhan.geo.nearest.PointIndex`), so a worker the
API sends to a station 990 m away is counted as covered here too.

Shares are weighted by demand (workers, residents, ...). The distance percentiles are
weighted too: ``distance_p50_m`` is the distance within which half of the demand weight
has a station.

Gap polygons are the study area minus the union of the station circles. The circles are
geodesic (their vertices are exactly ``radius_m`` from the station on the sphere) and are
united and subtracted in a local azimuthal equidistant projection
(:mod:`yizhan.geo.projection`); vertices lie on the circle, so a gap never claims a point
that is covered, and with the default 64 segments a circle's area is 0.16 % short of
π r² and its edge at most 0.12 % of r (1.2 m at 1 km) inside the true circle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np
import orjson
import shapely
from numpy.typing import ArrayLike, NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import Demand, Districts, check_weights
from yizhan.geo.nearest import PointIndex
from yizhan.geo.projection import LocalProjection, destination

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class StationTable(Protocol):
    """A table of stations that selects its own rows: what a
    :class:`~yizhan.stations.registry.Registry` offers (``geo/`` does not import it)."""

    def __len__(self) -> int: ...

    def station_set(self, station_mask: Any = None) -> StationSet:
        """The stations *station_mask* keeps (``None``: all; a boolean mask; or a filter
        the table understands, such as a ``StationFilter``), as a :class:`StationSet`."""
        ...


#: Stations: a station table (a registry), or ``(lon, lat)`` arrays in WGS-84 degrees.
Stations = StationTable | tuple[ArrayLike, ArrayLike]
#: Which stations count: ``None`` (all), a boolean mask over them, or (station table
#: only) a filter it understands, such as a ``StationFilter``.
StationMask = Any

#: Default distance bands (metres) of the cumulative distance table.
DEFAULT_BANDS_M: tuple[float, ...] = (250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0)


# ---------------------------------------------------------------------------------------
# Stations
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StationSet:
    """The selected stations as arrays.

    Attributes
    ----------
    lon, lat : numpy.ndarray
        Degrees, WGS-84.
    index : numpy.ndarray of int
        Position of each selected station in the input (registry order).
    capacity : numpy.ndarray of float
        ``capacity`` property, ``nan`` where unknown (always unknown for bare arrays).
    district : list of (str or None), or None
        ``district`` property of each selected station (registry input only).
    ids : list of str, or None
        Station ids (registry input only).
    """

    lon: FloatArray
    lat: FloatArray
    index: IntArray
    capacity: FloatArray
    district: list[str | None] | None = None
    ids: list[str] | None = None

    def __len__(self) -> int:
        return int(self.lon.shape[0])


def check_radius(radius_m: float, name: str = "radius_m") -> float:
    """Return *radius_m* as float, or raise :class:`InvalidInputError` unless finite and > 0."""
    try:
        r = float(radius_m)
    except (TypeError, ValueError):
        raise InvalidInputError(
            name, f"Expected a radius in metres > 0, got {radius_m!r}"
        ) from None
    if not (math.isfinite(r) and r > 0):
        raise InvalidInputError(name, f"Expected a radius in metres > 0, got {radius_m!r}")
    return r


def check_points(lon: ArrayLike, lat: ArrayLike, name: str) -> tuple[FloatArray, FloatArray]:
    """Validate WGS-84 point arrays (1-D, equal length, finite, in range)."""
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    if x.shape != y.shape:
        raise InvalidInputError(
            name, f"Expected lon and lat of equal length, got {x.shape[0]} and {y.shape[0]}"
        )
    bad = ~(np.isfinite(x) & np.isfinite(y)) | (np.abs(x) > 180) | (np.abs(y) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            name,
            f"Expected lon in -180..180 and lat in -90..90, got ({float(x[i])!r}, "
            f"{float(y[i])!r}) at position {i}",
        )
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def select_stations(stations: Stations, station_mask: StationMask = None) -> StationSet:
    """Resolve stations and a mask/filter to the arrays of the stations that count.

    Parameters
    ----------
    stations : Registry or (lon, lat)
        All stations: a station table (anything with ``station_set``, such as a
        :class:`~yizhan.stations.registry.Registry`) or WGS-84 arrays.
    station_mask : StationFilter, array_like of bool, or None
        ``None`` keeps every station (note: a registry's non-operational stations too;
        pass ``StationFilter.make()`` for operational ones only). A
        ``StationFilter`` needs a registry.

    Returns
    -------
    StationSet
    """
    if hasattr(stations, "station_set"):
        return cast(StationTable, stations).station_set(station_mask)
    if not (isinstance(stations, tuple) and len(stations) == 2):
        raise InvalidInputError(
            "stations", f"Expected a Registry or a (lon, lat) pair, got {type(stations).__name__}"
        )
    lon, lat = check_points(stations[0], stations[1], "stations")
    keep = check_mask(station_mask, int(lon.shape[0]))
    idx = np.flatnonzero(keep).astype(np.int64)
    return StationSet(
        np.ascontiguousarray(lon[idx]),
        np.ascontiguousarray(lat[idx]),
        idx,
        np.full(idx.shape[0], np.nan),
    )


def check_mask(station_mask: Any, n: int) -> BoolArray:
    """*station_mask* (``None`` or a boolean array of *n*) as a boolean array of *n*."""
    if station_mask is None:
        return np.ones(n, dtype=bool)
    if not isinstance(station_mask, np.ndarray | list | tuple):
        raise InvalidInputError(
            "station_mask",
            f"Expected a boolean mask for (lon, lat) stations, got a {type(station_mask).__name__}",
        )
    keep = np.asarray(station_mask)
    if keep.dtype != np.bool_ or keep.shape != (n,):
        raise InvalidInputError(
            "station_mask",
            f"Expected a boolean mask of {n} stations, got dtype {keep.dtype} shape {keep.shape}",
        )
    return keep


# ---------------------------------------------------------------------------------------
# Coverage
# ---------------------------------------------------------------------------------------
def weighted_quantile(values: FloatArray, weights: FloatArray, q: Sequence[float]) -> list[float]:
    """Weighted quantiles (inverted CDF): the smallest value whose cumulative weight ≥ q·total.

    Returns ``nan`` for each *q* when the total weight is 0.
    """
    total = float(weights.sum())
    if values.size == 0 or total <= 0:
        return [math.nan for _ in q]
    order = np.argsort(values, kind="stable")
    v = values[order]
    cw = np.cumsum(weights[order])
    out: list[float] = []
    for qq in q:
        k = int(np.searchsorted(cw, qq * total * (1 - 1e-12), side="left"))
        out.append(float(v[min(k, v.size - 1)]))
    return out


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """Outcome of :func:`coverage`.

    Attributes
    ----------
    radius_m : float
        Coverage radius.
    n_demand, n_stations : int
        Demand points, and stations that counted.
    weight_name : str
        What the weight is (e.g. ``"workers"``).
    total_weight, covered_weight, uncovered_weight : float
        Demand in all, within *radius_m* of a station, and beyond it.
    covered_weight_pct : float
        ``100 · covered / total`` (0 when there is no demand).
    distance_p50_m, distance_p90_m, distance_max_m : float
        Demand-weighted median and 90th percentile of the distance to the nearest
        station, and the largest distance of any point with positive weight (``inf``
        when there are no stations, ``nan`` when there is no demand).
    distance_bands : list of dict
        Rows ``{"within_m", "weight", "share_pct"}``: demand with a station within each
        band distance (cumulative).
    per_district : list of dict
        Rows ``{"district", "demand", "covered", "uncovered", "share_pct", "stations",
        "demand_per_station"}`` in district order; ``district`` is ``None`` for demand
        outside every district (a row only present when there is such demand).
        ``stations`` counts selected stations inside the district polygon (or, without
        polygons, whose registry ``district`` equals the name); it and
        ``demand_per_station`` are ``None`` when unknown, and ``demand_per_station`` is
        ``None`` for a district without stations. Empty when the demand has no districts.
    nearest_distance_m : numpy.ndarray
        Distance of each demand point to its nearest selected station.
    covered : numpy.ndarray of bool
        Whether each demand point is covered.
    """

    radius_m: float
    n_demand: int
    n_stations: int
    weight_name: str
    total_weight: float
    covered_weight: float
    uncovered_weight: float
    covered_weight_pct: float
    distance_p50_m: float
    distance_p90_m: float
    distance_max_m: float
    distance_bands: list[dict[str, Any]]
    per_district: list[dict[str, Any]]
    nearest_distance_m: FloatArray = field(repr=False)
    covered: BoolArray = field(repr=False)
    demand: Demand = field(repr=False)

    def uncovered_demand(self) -> Demand:
        """The demand points that have no station within the radius."""
        return self.demand.subset(~self.covered)

    def to_dict(self, include_points: bool = False) -> dict[str, Any]:
        """JSON-ready summary (plain Python types; ``inf``/``nan`` become ``None``).

        Parameters
        ----------
        include_points : bool
            Also include ``nearest_distance_m`` and ``covered`` per demand point.
        """
        out: dict[str, Any] = {
            "radius_m": self.radius_m,
            "n_demand": self.n_demand,
            "n_stations": self.n_stations,
            "weight_name": self.weight_name,
            "total_weight": self.total_weight,
            "covered_weight": self.covered_weight,
            "uncovered_weight": self.uncovered_weight,
            "covered_weight_pct": self.covered_weight_pct,
            "distance_p50_m": _json_float(self.distance_p50_m),
            "distance_p90_m": _json_float(self.distance_p90_m),
            "distance_max_m": _json_float(self.distance_max_m),
            "distance_bands": [dict(r) for r in self.distance_bands],
            "per_district": [dict(r) for r in self.per_district],
        }
        if include_points:
            d = self.nearest_distance_m
            out["nearest_distance_m"] = [None if not math.isfinite(v) else v for v in d.tolist()]
            out["covered"] = self.covered.tolist()
        return out


def _json_float(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def coverage(
    stations: Stations,
    demand: Demand,
    radius_m: float = 1000.0,
    station_mask: StationMask = None,
    *,
    bands_m: Sequence[float] = DEFAULT_BANDS_M,
) -> CoverageResult:
    """Share of demand with a station within *radius_m*, overall and per district.

    Parameters
    ----------
    stations : Registry or (lon, lat)
        Stations (WGS-84).
    demand : Demand
        Weighted demand points, optionally labelled with districts.
    radius_m : float
        Coverage radius, metres (great-circle). Default 1,000 m.
    station_mask : StationFilter, array_like of bool, or None
        Which stations count (see :func:`select_stations`; ``None`` = all).
    bands_m : sequence of float
        Distances for the cumulative :attr:`CoverageResult.distance_bands` table.

    Returns
    -------
    CoverageResult

    Raises
    ------
    InvalidInputError
        ``radius_m`` not > 0, bad stations or mask.

    Examples
    --------
    >>> d = Demand.from_arrays([113.65, 113.70], [34.75, 34.75], [3, 1])
    >>> r = coverage(([113.651], [34.75]), d, radius_m=1000)
    >>> r.covered_weight_pct
    75.0
    """
    r = check_radius(radius_m)
    if not isinstance(demand, Demand):
        raise InvalidInputError("demand", f"Expected a Demand, got {type(demand).__name__}")
    st = select_stations(stations, station_mask)
    if len(st):
        dist = PointIndex(st.lon, st.lat).nearest_distance_m(demand.lon, demand.lat)
    else:
        dist = np.full(len(demand), np.inf)
    return coverage_from_distance(st, demand, dist, r, bands_m=bands_m)


def coverage_from_distance(
    st: StationSet,
    demand: Demand,
    distance_m: ArrayLike,
    radius_m: float,
    *,
    bands_m: Sequence[float] = DEFAULT_BANDS_M,
) -> CoverageResult:
    """:func:`coverage` from a precomputed distance of each demand point to its nearest
    station (the seam for other metrics, e.g. walking along streets).

    Parameters
    ----------
    st : StationSet
        The stations that counted (for the counts per district).
    demand : Demand
        Weighted demand points.
    distance_m : array_like of float
        Distance of each demand point to its nearest station, metres (``inf``: none).
    radius_m : float
        A point is covered when its distance is at most this.
    bands_m : sequence of float
        Distances for the cumulative :attr:`CoverageResult.distance_bands` table.

    Returns
    -------
    CoverageResult
    """
    r = check_radius(radius_m)
    dist = np.asarray(distance_m, dtype=np.float64)
    if dist.shape != (len(demand),):
        raise InvalidInputError(
            "distance_m", f"must have one entry per demand point ({len(demand)})"
        )
    w = demand.weight
    covered = dist <= r
    total = float(w.sum())
    cov_w = float(w[covered].sum())
    p50, p90 = weighted_quantile(dist, w, (0.5, 0.9))
    pos = w > 0
    dmax = float(dist[pos].max()) if pos.any() else math.nan
    bands = []
    for b in sorted(float(x) for x in bands_m):
        bw = float(w[dist <= b].sum())
        bands.append({"within_m": b, "weight": bw, "share_pct": _pct(bw, total)})
    rows = _district_rows(demand, st, covered)
    return CoverageResult(
        radius_m=r,
        n_demand=len(demand),
        n_stations=len(st),
        weight_name=demand.weight_name,
        total_weight=total,
        covered_weight=cov_w,
        uncovered_weight=total - cov_w,
        covered_weight_pct=_pct(cov_w, total),
        distance_p50_m=p50 if len(st) else math.inf,
        distance_p90_m=p90 if len(st) else math.inf,
        distance_max_m=dmax,
        distance_bands=bands,
        per_district=rows,
        nearest_distance_m=dist,
        covered=covered,
        demand=demand,
    )


def station_district_counts(demand: Demand, st: StationSet) -> IntArray | None:
    """Selected stations per district of *demand* (``None`` when it cannot be known).

    By location when the demand carries district polygons, otherwise by the registry's
    ``district`` property matched to the district names.
    """
    k = len(demand.district_names)
    if demand.districts is not None:
        codes = demand.districts.assign(st.lon, st.lat)
        return np.bincount(codes[codes >= 0], minlength=k).astype(np.int64)
    if st.district is not None and k:
        pos = {name: i for i, name in enumerate(demand.district_names)}
        counts = np.zeros(k, dtype=np.int64)
        for d in st.district:
            if d is not None and d in pos:
                counts[pos[d]] += 1
        return counts
    return None


def _district_rows(demand: Demand, st: StationSet, covered: BoolArray) -> list[dict[str, Any]]:
    if demand.district_code is None:
        return []
    k = len(demand.district_names)
    code = demand.district_code + 1  # 0 = outside every district
    dem = np.bincount(code, weights=demand.weight, minlength=k + 1)
    cov = np.bincount(code, weights=np.where(covered, demand.weight, 0.0), minlength=k + 1)
    npts = np.bincount(code, minlength=k + 1)
    counts = station_district_counts(demand, st)
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(demand.district_names):
        n_st = None if counts is None else int(counts[i])
        rows.append(
            {
                "district": name,
                "demand": float(dem[i + 1]),
                "covered": float(cov[i + 1]),
                "uncovered": float(dem[i + 1] - cov[i + 1]),
                "share_pct": _pct(float(cov[i + 1]), float(dem[i + 1])),
                "stations": n_st,
                "demand_per_station": (float(dem[i + 1]) / n_st) if n_st else None,
            }
        )
    if npts[0] > 0:
        rows.append(
            {
                "district": None,
                "demand": float(dem[0]),
                "covered": float(cov[0]),
                "uncovered": float(dem[0] - cov[0]),
                "share_pct": _pct(float(cov[0]), float(dem[0])),
                "stations": None,
                "demand_per_station": None,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------
# Circles and gaps
# ---------------------------------------------------------------------------------------
def station_circles(
    lon: ArrayLike,
    lat: ArrayLike,
    radius_m: float,
    projection: LocalProjection | None = None,
    segments: int = 64,
) -> tuple[NDArray[np.object_], LocalProjection]:
    """Geodesic circles around stations, as polygons in a local metric projection.

    Every vertex is exactly *radius_m* (great-circle) from its station, so each polygon
    lies inside its true circle.

    Parameters
    ----------
    lon, lat : array_like
        Station coordinates, degrees.
    radius_m : float
        Circle radius, metres.
    projection : LocalProjection, optional
        Projection to build them in; by default one centred on the stations.
    segments : int
        Vertices per circle (>= 8).

    Returns
    -------
    circles : numpy.ndarray of shapely Polygons
        In *projection* metres.
    projection : LocalProjection
    """
    r = check_radius(radius_m)
    x, y = check_points(lon, lat, "stations")
    if segments < 8:
        raise InvalidInputError("segments", f"Expected at least 8 segments, got {segments}")
    proj = projection or LocalProjection.for_points(x, y)
    if x.size == 0:
        return np.empty(0, dtype=object), proj
    bearings = np.linspace(0.0, 360.0, segments, endpoint=False)
    vlon, vlat = destination(x[:, None], y[:, None], bearings[None, :], r)
    vx, vy = proj.to_xy(vlon, vlat)
    return np.asarray(shapely.polygons(np.stack([vx, vy], axis=-1)), dtype=object), proj


def gap_polygons(
    study_area: Any,
    station_lon: ArrayLike,
    station_lat: ArrayLike,
    radius_m: float = 1000.0,
    *,
    segments: int = 64,
    projection: LocalProjection | None = None,
) -> Any:
    """The parts of a study area farther than *radius_m* from every station.

    Parameters
    ----------
    study_area : shapely geometry
        (Multi)Polygon in WGS-84 (e.g. ``Districts.union()``).
    station_lon, station_lat : array_like
        Stations (already filtered), degrees.
    radius_m : float
        Coverage radius, metres.
    segments : int
        Vertices per circle (see :func:`station_circles`).
    projection : LocalProjection, optional
        Local projection; by default one centred on the study area.

    Returns
    -------
    shapely geometry
        The gaps in WGS-84 (a (Multi)Polygon, possibly empty).
    """
    r = check_radius(radius_m)
    if (
        study_area is None
        or shapely.is_empty(study_area)
        or shapely.get_dimensions(study_area) != 2
    ):
        raise InvalidInputError(
            "study_area", f"Expected a non-empty (Multi)Polygon, got {study_area!r}"
        )
    x, y = check_points(station_lon, station_lat, "stations")
    proj = projection or LocalProjection.for_geometry(study_area)
    area_xy = shapely.make_valid(proj.geometry_to_xy(study_area))
    if x.size:
        sx, sy = proj.to_xy(x, y)
        shapely.prepare(area_xy)
        near = shapely.dwithin(area_xy, shapely.points(sx, sy), r * 1.01 + 1.0)
        shapely.destroy_prepared(area_xy)
        x, y = x[near], y[near]
    if x.size == 0:
        return proj.geometry_to_lonlat(area_xy)
    circles, _ = station_circles(x, y, r, proj, segments)
    covered = shapely.union_all(circles)
    gaps = shapely.difference(area_xy, covered)
    return proj.geometry_to_lonlat(gaps)


def gaps_geojson(
    gaps: Any,
    demand: Demand | None = None,
    *,
    districts: Districts | None = None,
    min_area_m2: float = 0.0,
    precision: int = 6,
) -> dict[str, Any]:
    """Gap polygons as a GeoJSON FeatureCollection, one Feature per separate gap.

    Parameters
    ----------
    gaps : shapely geometry
        WGS-84 output of :func:`gap_polygons`.
    demand : Demand, optional
        When given, each gap gets the demand weight and number of points inside it, and
        gaps are sorted by that weight (largest first); otherwise by area.
    districts : Districts, optional
        Cut the gaps along district boundaries; each piece gets a ``district`` property.
        (Over a whole city the gaps are often one large connected polygon; per district
        they can be ranked.)
    min_area_m2 : float
        Leave out slivers smaller than this.
    precision : int
        Decimal places kept in coordinates (6 ≈ 0.1 m).

    Returns
    -------
    dict
        FeatureCollection; properties ``rank``, ``area_m2``, with *demand* ``demand`` and
        ``demand_points``, with *districts* ``district``.
    """
    feats: list[dict[str, Any]] = []
    if gaps is None or shapely.is_empty(gaps):
        return {"type": "FeatureCollection", "features": feats}
    if districts is not None:
        pieces = [shapely.intersection(gaps, g) for g in districts.geometries]
        chunks = [_polygon_parts(p) for p in pieces]
        parts = np.concatenate(chunks) if chunks else np.empty(0, dtype=object)
        label = np.concatenate([np.full(c.size, k, dtype=np.int64) for k, c in enumerate(chunks)])
    else:
        parts = _polygon_parts(gaps)
        label = np.full(parts.size, -1, dtype=np.int64)
    if parts.size == 0:
        return {"type": "FeatureCollection", "features": feats}
    proj = LocalProjection.for_geometry(gaps)
    areas = np.asarray(shapely.area(proj.geometry_to_xy(parts)), dtype=np.float64)
    keep = areas >= min_area_m2
    parts, areas, label = parts[keep], areas[keep], label[keep]
    dem = np.zeros(parts.size)
    npts = np.zeros(parts.size, dtype=np.int64)
    if demand is not None and parts.size and len(demand):
        where = Districts(tuple(str(i) for i in range(parts.size)), parts).assign(
            demand.lon, demand.lat
        )
        inside = where >= 0
        dem = np.asarray(
            np.bincount(where[inside], weights=demand.weight[inside], minlength=parts.size),
            dtype=np.float64,
        )
        npts = np.bincount(where[inside], minlength=parts.size)
        order = np.lexsort((-areas, -dem))
    else:
        order = np.argsort(-areas, kind="stable")
    rounded = shapely.set_precision(parts, 10.0**-precision)
    for rank, i in enumerate(order.tolist(), start=1):
        props: dict[str, Any] = {"rank": rank, "area_m2": float(areas[i])}
        if districts is not None:
            props["district"] = districts.names[int(label[i])]
        if demand is not None:
            props["demand"] = float(dem[i])
            props["demand_points"] = int(npts[i])
        geom = orjson.loads(shapely.to_geojson(rounded[i]))
        feats.append({"type": "Feature", "properties": props, "geometry": geom})
    return {"type": "FeatureCollection", "features": feats}


def _polygon_parts(geom: Any) -> NDArray[np.object_]:
    """The separate polygons of a geometry (collections flattened, non-areas dropped)."""
    if geom is None or shapely.is_empty(geom):
        return np.empty(0, dtype=object)
    parts = shapely.get_parts(shapely.get_parts(geom))
    parts = parts[shapely.get_dimensions(parts) == 2]
    parts = shapely.get_parts(parts)
    return np.asarray(parts[~shapely.is_empty(parts)], dtype=object)


__all__ = [
    "DEFAULT_BANDS_M",
    "CoverageResult",
    "StationMask",
    "StationSet",
    "Stations",
    "check_points",
    "check_radius",
    "check_weights",
    "coverage",
    "coverage_from_distance",
    "gap_polygons",
    "gaps_geojson",
    "select_stations",
    "station_circles",
    "station_district_counts",
    "weighted_quantile",
]
