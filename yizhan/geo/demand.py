"""Demand for coverage analysis: weighted points, with optional district labels.

Every analysis in :mod:`yizhan.geo.coverage`, :mod:`yizhan.geo.siting` and
:mod:`yizhan.geo.access` takes a :class:`Demand`: WGS-84 points, a non-negative weight per
point (workers, residents, people aged 65+, ...) and, optionally, the district each point
lies in. Three ways to make one:

* **Points** from arrays (:meth:`Demand.from_arrays`), or from a CSV or GeoJSON file
  with a weight column (:func:`yizhan.query.demand_files.load_points`).
* **Polygons** with a weight each, spread evenly over their area
  (:func:`yizhan.geo.hexgrid.spread_polygons`, or from a file with
  :func:`yizhan.query.demand_files.load_polygons`): each polygon is cut by a hexagon
  lattice, every piece becomes one point (at its centroid, or a point on its surface when
  the centroid falls outside) carrying the polygon's weight times the piece's share of the
  polygon's area. The weights of a polygon's points add up to the polygon's weight.
* A **hexagon grid** over a study area (:func:`yizhan.geo.hexgrid.hex_grid`), with weight proportional to
  area; when the study area is a set of districts, cells are cut along district
  boundaries so that every point belongs to exactly one district.

Inputs may be in WGS-84, GCJ-02 or BD-09 (``crs=``); everything is converted to WGS-84
on load with :func:`yizhan.geo.crs.transform`.

This module holds the model (:class:`Demand`, :class:`Districts`) and pure conversions;
the hexagon lattice is in :mod:`yizhan.geo.hexgrid`, file readers in
:mod:`yizhan.query.demand_files` (``geo/`` does no file I/O).

Hexagons are "flat-topped" and ``size_m`` is the distance from a hexagon's centre to a
corner, which is also its edge length (as in H3); a hexagon's area is
``3 √3 / 2 · size_m²`` (``size_m = 500`` gives 0.65 km²). The lattice is laid out in the
local projection of :mod:`yizhan.geo.projection`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import parse_crs, transform

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
GeomArray = NDArray[np.object_]


# ---------------------------------------------------------------------------------------
# Districts
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Districts:
    """Named polygons in WGS-84 (districts, wards, a study area).

    Features with the same name are merged into one (multi)polygon.

    Attributes
    ----------
    names : tuple of str
        District names, in file order (first appearance).
    geometries : numpy.ndarray of shapely geometries
        One (Multi)Polygon per name, WGS-84.
    properties : tuple of dict
        The properties of the first feature of each name.
    """

    names: tuple[str, ...]
    geometries: GeomArray
    properties: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if len(self.names) != len(self.geometries):
            raise ValueError(
                f"Expected one geometry per name, got {len(self.names)} names and "
                f"{len(self.geometries)} geometries"
            )
        for g in self.geometries:
            shapely.prepare(g)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_geometries(
        cls,
        names: Sequence[str],
        geometries: Sequence[Any] | GeomArray,
        properties: Sequence[dict[str, Any]] | None = None,
    ) -> Districts:
        """Build from names and WGS-84 shapely (multi)polygons; equal names are merged."""
        merged: dict[str, list[Any]] = {}
        props: dict[str, dict[str, Any]] = {}
        for i, (name, geom) in enumerate(zip(names, geometries, strict=True)):
            if geom is None or shapely.get_dimensions(geom) != 2:
                raise InvalidInputError(
                    "districts", f"Expected a Polygon or MultiPolygon for {name!r}, got {geom!r}"
                )
            merged.setdefault(str(name), []).append(shapely.make_valid(geom))
            props.setdefault(str(name), dict(properties[i]) if properties else {})
        geoms = np.empty(len(merged), dtype=object)
        for k, parts in enumerate(merged.values()):
            geoms[k] = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        return cls(tuple(merged), geoms, tuple(props[n] for n in merged))

    def union(self) -> Any:
        """All districts as one WGS-84 geometry (the study area)."""
        return shapely.union_all(self.geometries)

    def assign(self, lon: ArrayLike, lat: ArrayLike) -> IntArray:
        """District of each point: the position in :attr:`names`, ``-1`` when outside all.

        A point on a shared boundary goes to the district listed first.

        Points are sorted by longitude once; each district then tests only the points in
        its bounding box, with shapely's vectorised (prepared) ``intersects_xy``. A
        million points against 250 districts takes about half a second.
        """
        x = np.asarray(lon, dtype=np.float64).ravel()
        y = np.asarray(lat, dtype=np.float64).ravel()
        codes = np.full(x.shape[0], -1, dtype=np.int64)
        if x.size == 0 or len(self) == 0:
            return codes
        order = np.argsort(x, kind="stable")
        xs = x[order]
        bounds = shapely.bounds(self.geometries)
        for k, geom in enumerate(self.geometries):
            minx, miny, maxx, maxy = bounds[k]
            lo = int(np.searchsorted(xs, minx, side="left"))
            hi = int(np.searchsorted(xs, maxx, side="right"))
            cand = order[lo:hi]
            cand = cand[(y[cand] >= miny) & (y[cand] <= maxy) & (codes[cand] < 0)]
            if cand.size:
                hit = shapely.intersects_xy(geom, x[cand], y[cand])
                codes[cand[hit]] = k
        return codes


# ---------------------------------------------------------------------------------------
# Demand
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Demand:
    """Weighted demand points in WGS-84.

    Attributes
    ----------
    lon, lat : numpy.ndarray of float
        Degrees.
    weight : numpy.ndarray of float
        Non-negative, finite demand of each point (workers, residents, ...).
    district_code : numpy.ndarray of int or None
        Position of each point's district in :attr:`district_names`, ``-1`` for none.
    district_names : tuple of str
        District names (empty when there are no districts).
    districts : Districts or None
        The polygons the labels came from, when they came from polygons (lets coverage
        count stations per district by location).
    weight_name : str
        What the weight is (the column name), for reports.
    skipped : int
        Input rows skipped on load (``skip_invalid=True``).
    """

    lon: FloatArray
    lat: FloatArray
    weight: FloatArray
    district_code: IntArray | None = None
    district_names: tuple[str, ...] = ()
    districts: Districts | None = None
    weight_name: str = "weight"
    skipped: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lon = np.ascontiguousarray(self.lon, dtype=np.float64)
        lat = np.ascontiguousarray(self.lat, dtype=np.float64)
        w = np.ascontiguousarray(self.weight, dtype=np.float64)
        if lon.ndim != 1 or lon.shape != lat.shape or lon.shape != w.shape:
            raise InvalidInputError(
                "demand",
                f"Expected 1-D lon, lat and weight of equal length, got shapes "
                f"{lon.shape}, {lat.shape} and {w.shape}",
            )
        check_lonlat(lon, lat, "demand")
        check_weights(w, "weight")
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "weight", w)
        if self.district_code is not None:
            code = np.ascontiguousarray(self.district_code, dtype=np.int64)
            if code.shape != lon.shape:
                raise InvalidInputError(
                    "district", f"Expected one district code per point, got shape {code.shape}"
                )
            if code.size and (code.min() < -1 or code.max() >= len(self.district_names)):
                raise InvalidInputError(
                    "district",
                    f"Expected codes in -1..{len(self.district_names) - 1}, got "
                    f"{int(code.min())}..{int(code.max())}",
                )
            object.__setattr__(self, "district_code", code)

    # -- basics --------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.lon.shape[0])

    @property
    def n(self) -> int:
        """Number of demand points."""
        return len(self)

    @property
    def total_weight(self) -> float:
        """Sum of the weights."""
        return float(self.weight.sum())

    @property
    def has_districts(self) -> bool:
        """Whether points carry district labels."""
        return self.district_code is not None

    def district_labels(self) -> list[str | None]:
        """District name of each point (``None`` outside every district or without labels)."""
        if self.district_code is None:
            return [None] * len(self)
        names: list[str | None] = [*self.district_names, None]
        return [names[c] for c in self.district_code.tolist()]

    def subset(self, mask: ArrayLike) -> Demand:
        """The points selected by a boolean mask or an index array (labels kept)."""
        sel = np.asarray(mask)
        return Demand(
            self.lon[sel],
            self.lat[sel],
            self.weight[sel],
            None if self.district_code is None else self.district_code[sel],
            self.district_names,
            self.districts,
            self.weight_name,
            0,
            dict(self.meta),
        )

    def with_districts(self, districts: Districts) -> Demand:
        """A copy labelled with the district each point falls in (point-in-polygon)."""
        return Demand(
            self.lon,
            self.lat,
            self.weight,
            districts.assign(self.lon, self.lat),
            districts.names,
            districts,
            self.weight_name,
            self.skipped,
            dict(self.meta),
        )

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        lon: ArrayLike,
        lat: ArrayLike,
        weight: ArrayLike | None = None,
        district: Sequence[str | None] | None = None,
        crs: str = "wgs84",
        weight_name: str = "weight",
    ) -> Demand:
        """Demand from coordinate arrays.

        Parameters
        ----------
        lon, lat : array_like
            Coordinates in *crs*, degrees.
        weight : array_like, optional
            Non-negative weights; 1 per point when omitted.
        district : sequence of str or None, optional
            District label of each point (``None``/``""`` for none); names are ordered
            by first appearance.
        crs : {"wgs84", "gcj02", "bd09"}
            Coordinate system of *lon*/*lat*.
        weight_name : str
            What the weight is, for reports.
        """
        x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        src = parse_crs_name(crs)
        if src != "wgs84":
            x, y = transform(x, y, src, "wgs84")
        w = (
            np.ones_like(x)
            if weight is None
            else np.atleast_1d(np.asarray(weight, dtype=np.float64))
        )
        code: IntArray | None = None
        names: tuple[str, ...] = ()
        if district is not None:
            code, names = encode_labels(district)
        return cls(x, y, w, code, names, None, weight_name)


def check_weights(weight: FloatArray, name: str = "weight") -> None:
    """Raise :class:`InvalidInputError` unless every weight is finite and >= 0."""
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            name,
            f"Expected finite weights >= 0, got {float(weight[i])!r} at position {i} "
            f"({int(bad.sum())} bad in all)",
        )


def check_lonlat(lon: FloatArray, lat: FloatArray, name: str) -> None:
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            name,
            f"Expected lon in -180..180 and lat in -90..90, got ({float(lon[i])!r}, "
            f"{float(lat[i])!r}) at position {i}",
        )


def encode_labels(labels: Iterable[str | None]) -> tuple[IntArray, tuple[str, ...]]:
    index: dict[str, int] = {}
    codes: list[int] = []
    for lab in labels:
        if lab is None or lab == "":
            codes.append(-1)
        else:
            codes.append(index.setdefault(str(lab), len(index)))
    return np.asarray(codes, dtype=np.int64), tuple(index)


def parse_crs_name(crs: str) -> str:
    try:
        return parse_crs(crs)
    except ValueError as exc:
        raise InvalidInputError("crs", str(exc)) from exc


def to_wgs84_geometry(geom: Any, src: str) -> Any:
    if src == "wgs84":
        return geom

    def conv(coords: FloatArray) -> FloatArray:
        x, y = transform(coords[:, 0], coords[:, 1], src, "wgs84")
        return np.column_stack([x, y])

    return shapely.transform(geom, conv)
