"""Demand for coverage analysis: weighted points, with optional district labels.

Every analysis in :mod:`yizhan.geo.coverage`, :mod:`yizhan.geo.siting` and
:mod:`yizhan.geo.access` takes a :class:`Demand`: WGS-84 points, a non-negative weight per
point (workers, residents, people aged 65+, ...) and, optionally, the district each point
lies in. Three ways to make one:

* **Points** from a CSV or GeoJSON file with a weight column (:func:`load_points`), or
  from arrays (:meth:`Demand.from_arrays`).
* **Polygons** with a weight each, spread evenly over their area
  (:func:`load_polygons`, :func:`spread_polygons`): each polygon is cut by a hexagon
  lattice, every piece becomes one point (at its centroid, or a point on its surface when
  the centroid falls outside) carrying the polygon's weight times the piece's share of the
  polygon's area. The weights of a polygon's points add up to the polygon's weight.
* A **hexagon grid** over a study area (:func:`hex_grid`), with weight proportional to
  area; when the study area is a set of districts, cells are cut along district
  boundaries so that every point belongs to exactly one district.

Inputs may be in WGS-84, GCJ-02 or BD-09 (``crs=``); everything is converted to WGS-84
on load with :func:`yizhan.geo.crs.transform`.

Hexagons are "flat-topped" and ``size_m`` is the distance from a hexagon's centre to a
corner, which is also its edge length (as in H3); a hexagon's area is
``3 √3 / 2 · size_m²`` (``size_m = 500`` gives 0.65 km²). The lattice is laid out in the
local projection of :mod:`yizhan.geo.projection`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import orjson
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import shape

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import parse_crs, transform
from yizhan.geo.projection import LocalProjection

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
GeomArray = NDArray[np.object_]

#: Most hexagons a grid may have (the lattice over the bounding box is checked first).
MAX_HEX_CELLS = 5_000_000

LON_FIELDS = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_FIELDS = ("lat", "latitude", "y", "纬度")


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


def load_districts(
    path: str | os.PathLike[str],
    name_field: str | Sequence[str] | None = "name",
    crs: str = "wgs84",
) -> Districts:
    """Read district polygons from a GeoJSON file.

    Parameters
    ----------
    path : path-like
        GeoJSON FeatureCollection of Polygon/MultiPolygon features.
    name_field : str, sequence of str, or None
        Property holding the district name. Several properties are joined with a space
        (e.g. ``("SIDONM", "SGGNM")`` → ``"부산광역시 중구"``), which keeps districts of
        the same name in different cities apart: features with equal names are merged.
        ``None`` numbers the features ``"1"``, ``"2"``...
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of the file.

    Returns
    -------
    Districts

    Raises
    ------
    InvalidInputError
        The file cannot be read, is not GeoJSON polygons, or lacks *name_field*.
    """
    features = _read_features(path)
    src = _parse_crs(crs)
    names: list[str] = []
    geoms: list[Any] = []
    props: list[dict[str, Any]] = []
    for i, feat in enumerate(features):
        p = feat.get("properties") or {}
        if name_field is None:
            name = str(i + 1)
        else:
            parts = []
            for fld in [name_field] if isinstance(name_field, str) else list(name_field):
                if p.get(fld) in (None, ""):
                    raise InvalidInputError(
                        "name_field",
                        f"Expected a property {fld!r} on feature {i}, got properties {sorted(p)}",
                    )
                parts.append(str(p[fld]))
            name = " ".join(parts)
        names.append(name)
        geoms.append(_to_wgs84_geometry(_feature_geometry(feat, i), src))
        props.append(p)
    if not names:
        raise InvalidInputError(str(path), "Expected at least one polygon feature, got none")
    return Districts.from_geometries(names, geoms, props)


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
        _check_lonlat(lon, lat, "demand")
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
        src = _parse_crs(crs)
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
            code, names = _encode_labels(district)
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


def _check_lonlat(lon: FloatArray, lat: FloatArray, name: str) -> None:
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            name,
            f"Expected lon in -180..180 and lat in -90..90, got ({float(lon[i])!r}, "
            f"{float(lat[i])!r}) at position {i}",
        )


def _encode_labels(labels: Iterable[str | None]) -> tuple[IntArray, tuple[str, ...]]:
    index: dict[str, int] = {}
    codes: list[int] = []
    for lab in labels:
        if lab is None or lab == "":
            codes.append(-1)
        else:
            codes.append(index.setdefault(str(lab), len(index)))
    return np.asarray(codes, dtype=np.int64), tuple(index)


def _parse_crs(crs: str) -> str:
    try:
        return parse_crs(crs)
    except ValueError as exc:
        raise InvalidInputError("crs", str(exc)) from exc


# ---------------------------------------------------------------------------------------
# Point files
# ---------------------------------------------------------------------------------------
def load_points(
    path: str | os.PathLike[str],
    weight: str | None = None,
    *,
    lon_field: str | None = None,
    lat_field: str | None = None,
    district_field: str | None = None,
    districts: Districts | None = None,
    crs: str = "wgs84",
    skip_invalid: bool = False,
) -> Demand:
    """Read demand points from a CSV or a GeoJSON file of Points.

    Parameters
    ----------
    path : path-like
        ``.csv`` (UTF-8, header row) or ``.geojson``/``.json``.
    weight : str, optional
        Column (CSV) or property (GeoJSON) holding the weight; every point weighs 1 when
        omitted. Thousands separators (``1,234``) are accepted.
    lon_field, lat_field : str, optional
        CSV coordinate columns; by default the first of ``lon/lng/longitude/x/经度`` and
        ``lat/latitude/y/纬度`` (case-insensitive).
    district_field : str, optional
        Column/property with a district name for each point.
    districts : Districts, optional
        Label points by the polygon they fall in (overrides *district_field*).
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of the file.
    skip_invalid : bool
        Skip rows whose coordinates or weight are missing or invalid (their number is in
        :attr:`Demand.skipped`) instead of raising.

    Returns
    -------
    Demand

    Raises
    ------
    InvalidInputError
        Missing columns, unparsable or negative values (naming the row), unknown *crs*.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".geojson", ".json"):
        rows, fields = _geojson_point_rows(p)
        lon_col, lat_col = "__lon__", "__lat__"
    elif suffix in (".csv", ".txt", ".tsv"):
        rows, fields = _csv_rows(p, delimiter="\t" if suffix == ".tsv" else ",")
        lon_col = _pick_field(fields, lon_field, LON_FIELDS, "lon_field")
        lat_col = _pick_field(fields, lat_field, LAT_FIELDS, "lat_field")
    else:
        raise InvalidInputError(
            str(path), f"Expected a .csv or .geojson file, got {p.suffix or 'no extension'!r}"
        )
    shown = [f for f in fields if not f.startswith("__")]
    if weight is not None and weight not in fields:
        raise InvalidInputError(
            "weight", f"Expected a weight column {weight!r}, got columns {shown}"
        )
    if district_field is not None and district_field not in fields:
        raise InvalidInputError(
            "district_field", f"Expected a district column {district_field!r}, got columns {shown}"
        )
    lon: list[float] = []
    lat: list[float] = []
    w: list[float] = []
    labels: list[str | None] = []
    skipped = 0
    for line, row in rows:
        try:
            x = _number(row.get(lon_col), "lon", line)
            y = _number(row.get(lat_col), "lat", line)
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise InvalidInputError(
                    "lon/lat", f"Expected lon -180..180 and lat -90..90, got ({x}, {y}) on {line}"
                )
            v = 1.0 if weight is None else _number(row.get(weight), weight, line)
            if v < 0:
                raise InvalidInputError(
                    weight or "weight", f"Expected a weight >= 0, got {v} on {line}"
                )
        except InvalidInputError:
            if skip_invalid:
                skipped += 1
                continue
            raise
        lon.append(x)
        lat.append(y)
        w.append(v)
        if district_field is not None:
            d = row.get(district_field)
            labels.append(None if d in (None, "") else str(d))
    demand = Demand.from_arrays(
        np.asarray(lon, dtype=np.float64),
        np.asarray(lat, dtype=np.float64),
        np.asarray(w, dtype=np.float64),
        labels if district_field is not None else None,
        crs=crs,
        weight_name=weight or "count",
    )
    if districts is not None:
        demand = demand.with_districts(districts)
    demand.meta["source"] = str(p)
    return replace(demand, skipped=skipped)


def _pick_field(
    fields: Sequence[str], wanted: str | None, defaults: Sequence[str], param: str
) -> str:
    if wanted is not None:
        if wanted not in fields:
            raise InvalidInputError(
                param, f"Expected a column {wanted!r}, got columns {list(fields)}"
            )
        return wanted
    lower = {f.strip().lower(): f for f in fields}
    for cand in defaults:
        if cand in lower:
            return lower[cand]
    raise InvalidInputError(
        param, f"Expected one of the columns {list(defaults)}, got columns {list(fields)}"
    )


def _number(value: Any, name: str, line: str) -> float:
    if isinstance(value, bool):
        raise InvalidInputError(name, f"Expected a number, got {value!r} on {line}")
    if isinstance(value, int | float):
        f = float(value)
    else:
        text = "" if value is None else str(value).strip().replace(",", "").replace("_", "")
        try:
            f = float(text)
        except ValueError:
            raise InvalidInputError(name, f"Expected a number, got {value!r} on {line}") from None
    if not math.isfinite(f):
        raise InvalidInputError(name, f"Expected a finite number, got {value!r} on {line}")
    return f


def _csv_rows(
    path: Path, delimiter: str = ","
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            fields = list(reader.fieldnames or [])
            rows = [(f"line {i + 2}", dict(r)) for i, r in enumerate(reader)]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(str(path), f"cannot read as UTF-8 CSV: {exc}") from exc
    if not fields:
        raise InvalidInputError(str(path), "Expected a header row, got an empty file")
    return rows, fields


def _read_features(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        doc = orjson.loads(p.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except OSError as exc:
        raise InvalidInputError(str(p), f"cannot read: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(str(p), f"not valid JSON: {exc}") from exc
    return features_of(doc, str(p))


def features_of(doc: Any, source: str = "geojson") -> list[dict[str, Any]]:
    """The features of a GeoJSON FeatureCollection, Feature or bare geometry."""
    if isinstance(doc, Mapping):
        kind = doc.get("type")
        if kind == "FeatureCollection" and isinstance(doc.get("features"), list):
            return [f for f in doc["features"] if isinstance(f, dict)]
        if kind == "Feature":
            return [dict(doc)]
        if (isinstance(kind, str) and "coordinates" in doc) or kind == "GeometryCollection":
            return [{"type": "Feature", "properties": {}, "geometry": dict(doc)}]
    got = doc.get("type") if isinstance(doc, Mapping) else type(doc).__name__
    raise InvalidInputError(source, f"Expected a GeoJSON FeatureCollection, got {got!r}")


def _feature_geometry(feat: Mapping[str, Any], i: int) -> Any:
    g = feat.get("geometry")
    if not isinstance(g, Mapping):
        raise InvalidInputError("geometry", f"Expected a geometry on feature {i}, got {g!r}")
    try:
        return shape(g)
    except Exception as exc:  # shapely raises several types for bad GeoJSON
        raise InvalidInputError(
            "geometry", f"Expected a valid GeoJSON geometry on feature {i}: {exc}"
        ) from exc


def _geojson_point_rows(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    fields: dict[str, None] = {"__lon__": None, "__lat__": None}
    for i, feat in enumerate(_read_features(path)):
        g = feat.get("geometry") or {}
        if g.get("type") != "Point":
            raise InvalidInputError(
                "geometry",
                f"Expected Point features (use load_polygons for polygons), got "
                f"{g.get('type')!r} on feature {i}",
            )
        coords = g.get("coordinates") or [None, None]
        props = dict(feat.get("properties") or {})
        for k in props:
            fields.setdefault(k, None)
        props["__lon__"], props["__lat__"] = [*list(coords), None, None][:2]
        rows.append((f"feature {i}", props))
    return rows, list(fields)


def _to_wgs84_geometry(geom: Any, src: str) -> Any:
    if src == "wgs84":
        return geom

    def conv(coords: FloatArray) -> FloatArray:
        x, y = transform(coords[:, 0], coords[:, 1], src, "wgs84")
        return np.column_stack([x, y])

    return shapely.transform(geom, conv)


# ---------------------------------------------------------------------------------------
# Hexagons and polygons
# ---------------------------------------------------------------------------------------
def hex_cells(
    bounds: tuple[float, float, float, float], size_m: float, max_cells: int = MAX_HEX_CELLS
) -> GeomArray:
    """Flat-topped hexagons (in projected metres) of a fixed lattice covering *bounds*.

    The lattice is anchored at the projection origin: hexagon centres are at
    ``x = 1.5 s i``, ``y = √3 s (j + i/2 mod 1)``, so the same cells come out for any
    bounds on the same projection.
    """
    if not (size_m > 0 and math.isfinite(size_m)):
        raise InvalidInputError("size_m", f"Expected a hexagon size > 0 metres, got {size_m!r}")
    s = float(size_m)
    h = math.sqrt(3.0) * s
    minx, miny, maxx, maxy = bounds
    i0, i1 = math.floor((minx - s) / (1.5 * s)), math.ceil((maxx + s) / (1.5 * s))
    j0, j1 = math.floor((miny - h) / h), math.ceil((maxy + h) / h)
    count = (i1 - i0 + 1) * (j1 - j0 + 1)
    if count > max_cells:
        raise InvalidInputError(
            "size_m",
            f"Expected at most {max_cells:,} hexagons, got about {count:,} for size_m={size_m}; "
            "use a larger size",
        )
    gi, gj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
    ii, jj = gi.ravel(), gj.ravel()
    cx = 1.5 * s * ii
    cy = h * (jj + 0.5 * (ii % 2))
    keep = (cx + s >= minx) & (cx - s <= maxx) & (cy + h / 2 >= miny) & (cy - h / 2 <= maxy)
    cx, cy = cx[keep], cy[keep]
    ang = np.radians(np.arange(0, 360, 60, dtype=np.float64))
    coords = np.stack(
        [cx[:, None] + s * np.cos(ang)[None, :], cy[:, None] + s * np.sin(ang)[None, :]], axis=-1
    )
    return np.asarray(shapely.polygons(coords), dtype=object)


def _pieces(area_xy: Any, size_m: float) -> tuple[GeomArray, FloatArray, FloatArray, FloatArray]:
    """Hexagon cells cut to *area_xy*: pieces, areas (m²) and representative x, y."""
    if shapely.is_empty(area_xy) or shapely.area(area_xy) <= 0:
        empty = np.empty(0)
        return np.empty(0, dtype=object), empty, empty, empty
    cells = hex_cells(tuple(float(v) for v in shapely.bounds(area_xy)), size_m)  # type: ignore[arg-type]
    shapely.prepare(area_xy)
    hit = shapely.intersects(area_xy, cells)
    cells = cells[hit]
    inside = shapely.contains_properly(area_xy, cells)
    pieces = cells.copy()
    edge = ~inside
    if edge.any():
        pieces[edge] = shapely.intersection(cells[edge], area_xy)
    shapely.destroy_prepared(area_xy)
    areas = np.asarray(shapely.area(pieces), dtype=np.float64)
    ok = areas > 0
    pieces, areas = pieces[ok], areas[ok]
    c = shapely.centroid(pieces)
    cx, cy = shapely.get_x(c), shapely.get_y(c)
    off = ~shapely.contains_xy(pieces, cx, cy)
    if off.any():
        ps = shapely.point_on_surface(pieces[off])
        cx[off], cy[off] = shapely.get_x(ps), shapely.get_y(ps)
    return pieces, areas, np.asarray(cx, np.float64), np.asarray(cy, np.float64)


@overload
def hex_grid(
    area: Any,
    size_m: float,
    *,
    total_weight: float | None = ...,
    density_per_km2: float | None = ...,
    crs: str = ...,
    weight_name: str = ...,
    return_cells: Literal[False] = ...,
) -> Demand: ...


@overload
def hex_grid(
    area: Any,
    size_m: float,
    *,
    total_weight: float | None = ...,
    density_per_km2: float | None = ...,
    crs: str = ...,
    weight_name: str = ...,
    return_cells: Literal[True],
) -> tuple[Demand, GeomArray]: ...


def hex_grid(
    area: Any,
    size_m: float,
    *,
    total_weight: float | None = None,
    density_per_km2: float | None = None,
    crs: str = "wgs84",
    weight_name: str = "area_km2",
    return_cells: bool = False,
) -> Demand | tuple[Demand, GeomArray]:
    """A hexagon grid over a study area, as demand points weighted by area.

    Parameters
    ----------
    area : shapely geometry or Districts
        Study area (WGS-84 unless *crs* says otherwise). With :class:`Districts`, cells
        are cut along district boundaries and each point is labelled with its district.
    size_m : float
        Hexagon size: centre-to-corner distance (= edge length), metres.
    total_weight : float, optional
        Spread this total over the area (weights then sum to it exactly).
    density_per_km2 : float, optional
        Weight per km² instead. With neither, the weight of a point is its cell's area
        in km².
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of *area* (ignored for Districts, which are WGS-84).
    weight_name : str
        Name of the weight, for reports.
    return_cells : bool
        Also return the clipped hexagons (WGS-84 shapely polygons, one per point).

    Returns
    -------
    Demand, or (Demand, numpy.ndarray of polygons)
        One point per (clipped) hexagon, at its centroid.
    """
    if total_weight is not None and density_per_km2 is not None:
        raise InvalidInputError(
            "total_weight", "Expected total_weight or density_per_km2, got both"
        )
    if total_weight is not None and not (math.isfinite(total_weight) and total_weight >= 0):
        raise InvalidInputError(
            "total_weight", f"Expected a finite total >= 0, got {total_weight!r}"
        )
    if density_per_km2 is not None and not (
        math.isfinite(density_per_km2) and density_per_km2 >= 0
    ):
        raise InvalidInputError(
            "density_per_km2", f"Expected a finite density >= 0, got {density_per_km2!r}"
        )
    if isinstance(area, Districts):
        districts: Districts | None = area
        geoms = list(area.geometries)
    else:
        districts = None
        geoms = [_to_wgs84_geometry(area, _parse_crs(crs))]
    whole = shapely.union_all(geoms)
    if whole is None or shapely.is_empty(whole) or shapely.get_dimensions(whole) != 2:
        raise InvalidInputError("area", "Expected a non-empty polygon study area, got none")
    proj = LocalProjection.for_geometry(whole)
    all_pieces: list[GeomArray] = []
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    ars: list[FloatArray] = []
    codes: list[IntArray] = []
    for k, g in enumerate(geoms):
        pieces, areas, cx, cy = _pieces(proj.geometry_to_xy(g), size_m)
        all_pieces.append(pieces)
        xs.append(cx)
        ys.append(cy)
        ars.append(areas)
        codes.append(np.full(areas.shape[0], k, dtype=np.int64))
    areas_m2 = np.concatenate(ars)
    if total_weight is not None:
        tot = float(areas_m2.sum())
        w = areas_m2 * (total_weight / tot) if tot > 0 else areas_m2 * 0.0
    else:
        w = areas_m2 / 1e6 * (1.0 if density_per_km2 is None else density_per_km2)
    lon, lat = proj.to_lonlat(np.concatenate(xs), np.concatenate(ys))
    demand = Demand(
        lon,
        lat,
        w,
        np.concatenate(codes) if districts is not None else None,
        districts.names if districts is not None else (),
        districts,
        weight_name,
    )
    demand.meta.update({"hex_size_m": float(size_m), "projection": proj.proj4})
    if return_cells:
        cells = np.asarray(proj.geometry_to_lonlat(np.concatenate(all_pieces)), dtype=object)
        return demand, cells
    return demand


def spread_polygons(
    polygons: Sequence[Any] | GeomArray,
    weights: ArrayLike,
    cell_size_m: float = 250.0,
    *,
    labels: Sequence[str | None] | None = None,
    crs: str = "wgs84",
    weight_name: str = "weight",
) -> Demand:
    """Spread each polygon's weight evenly over its area as demand points.

    Each polygon is cut by a hexagon lattice of *cell_size_m*; each piece becomes a point
    with the polygon's weight times the piece's share of the polygon's area, so the
    points of a polygon add up to its weight. A polygon with less area than one cell
    becomes a single point (on its surface).

    Parameters
    ----------
    polygons : sequence of shapely (multi)polygons
        In *crs*.
    weights : array_like
        One non-negative weight per polygon.
    cell_size_m : float
        Hexagon size (centre to corner), metres.
    labels : sequence of str, optional
        A district label per polygon, carried to its points.
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of the polygons.
    weight_name : str
        Name of the weight, for reports.

    Returns
    -------
    Demand
    """
    w_in = np.atleast_1d(np.asarray(weights, dtype=np.float64))
    polys = list(polygons)
    if w_in.shape[0] != len(polys):
        raise InvalidInputError(
            "weights", f"Expected one weight per polygon ({len(polys)}), got {w_in.shape[0]}"
        )
    check_weights(w_in, weight_name)
    if not (cell_size_m > 0 and math.isfinite(cell_size_m)):
        raise InvalidInputError("cell_size_m", f"Expected a size > 0 metres, got {cell_size_m!r}")
    if not polys:
        raise InvalidInputError("polygons", "Expected at least one polygon, got none")
    src = _parse_crs(crs)
    geoms = [_to_wgs84_geometry(shapely.make_valid(g), src) for g in polys]
    for i, g in enumerate(geoms):
        if g is None or shapely.get_dimensions(g) != 2:
            raise InvalidInputError(
                "polygons", f"Expected a Polygon or MultiPolygon at {i}, got {g!r}"
            )
    proj = LocalProjection.for_geometry(shapely.union_all(geoms))
    cell_area = 1.5 * math.sqrt(3.0) * cell_size_m**2
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    ws: list[FloatArray] = []
    owner: list[IntArray] = []
    for i, g in enumerate(geoms):
        gx = proj.geometry_to_xy(g)
        if shapely.area(gx) < cell_area:
            areas = np.empty(0)
        else:
            _, areas, cx, cy = _pieces(gx, cell_size_m)
        if areas.size == 0 or areas.sum() <= 0:
            rp = shapely.point_on_surface(gx)
            cx, cy, areas = np.array([shapely.get_x(rp)]), np.array([shapely.get_y(rp)]), np.ones(1)
        xs.append(cx)
        ys.append(cy)
        ws.append(w_in[i] * areas / areas.sum())
        owner.append(np.full(areas.shape[0], i, dtype=np.int64))
    lon, lat = proj.to_lonlat(np.concatenate(xs), np.concatenate(ys))
    code: IntArray | None = None
    names: tuple[str, ...] = ()
    if labels is not None:
        if len(labels) != len(polys):
            raise InvalidInputError(
                "labels", f"Expected one label per polygon ({len(polys)}), got {len(labels)}"
            )
        poly_code, names = _encode_labels(labels)
        code = poly_code[np.concatenate(owner)]
    demand = Demand(lon, lat, np.concatenate(ws), code, names, None, weight_name)
    demand.meta.update({"cell_size_m": float(cell_size_m), "polygon": np.concatenate(owner)})
    return demand


def load_polygons(
    path: str | os.PathLike[str],
    weight: str,
    cell_size_m: float = 250.0,
    *,
    district_field: str | None = None,
    districts: Districts | None = None,
    crs: str = "wgs84",
) -> Demand:
    """Read weighted polygons from GeoJSON and spread each weight over its area.

    Parameters
    ----------
    path : path-like
        GeoJSON FeatureCollection of Polygon/MultiPolygon features.
    weight : str
        Property with each polygon's weight.
    cell_size_m : float
        Hexagon size used to spread the weight (see :func:`spread_polygons`).
    district_field : str, optional
        Property naming each polygon's district, carried to its points.
    districts : Districts, optional
        Label points by the district polygon they fall in instead.
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of the file.

    Returns
    -------
    Demand
    """
    feats = _read_features(path)
    geoms: list[Any] = []
    ws: list[float] = []
    labels: list[str | None] = []
    for i, feat in enumerate(feats):
        props = feat.get("properties") or {}
        if weight not in props:
            raise InvalidInputError(
                "weight",
                f"Expected a weight property {weight!r} on feature {i}, got {sorted(props)}",
            )
        ws.append(_number(props[weight], weight, f"feature {i}"))
        if district_field is not None:
            if district_field not in props:
                raise InvalidInputError(
                    "district_field",
                    f"Expected a property {district_field!r} on feature {i}, got {sorted(props)}",
                )
            labels.append(
                None if props[district_field] in (None, "") else str(props[district_field])
            )
        geoms.append(_feature_geometry(feat, i))
    demand = spread_polygons(
        geoms,
        np.asarray(ws, dtype=np.float64),
        cell_size_m,
        labels=labels if district_field is not None else None,
        crs=crs,
        weight_name=weight,
    )
    if districts is not None:
        demand = demand.with_districts(districts)
    demand.meta["source"] = str(path)
    return demand
