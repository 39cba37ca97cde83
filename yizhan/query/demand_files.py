"""Demand and district files: readers that make a :class:`~yizhan.geo.demand.Demand` or
:class:`~yizhan.geo.demand.Districts`.

Layers are read through pyogrio (GDAL): Shapefile (``.shp``, or zipped: ``.zip``),
GeoPackage (``.gpkg``), FlatGeobuf (``.fgb``), GeoJSON, and any other vector format GDAL
reads. Geometries are reprojected to WGS-84 from the CRS the file declares (pyproj), and
then, on request (``crs="gcj02"``/``"bd09"``), converted from the Chinese map systems,
which no file can declare. CSV point files stay on Python's ``csv`` module, because the
behaviour users rely on is ours: the coordinate columns found by name (``lon/lng/经度``),
thousands separators in weights, and errors naming the line.

``geo/`` is pure math; reading files lives here, in the query layer, beside the studies
that use it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.errors
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import CRS_NAMES
from yizhan.geo.demand import Demand, Districts, parse_crs_name, to_wgs84_geometry
from yizhan.geo.hexgrid import spread_polygons

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
GeomArray = NDArray[np.object_]

#: Suffixes of point tables read as CSV (with our column detection).
CSV_SUFFIXES = (".csv", ".txt", ".tsv")

LON_FIELDS = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_FIELDS = ("lat", "latitude", "y", "纬度")


# ---------------------------------------------------------------------------------------
# Layers (any vector format GDAL reads)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """A vector layer as read: WGS-84 geometries (``None`` where a feature has none), one
    dict of attributes per feature, the attribute names, and the CRS the file declared."""

    geometries: GeomArray
    records: list[dict[str, Any]]
    fields: list[str]
    declared_crs: str | None

    def __len__(self) -> int:
        return len(self.records)


def split_crs(crs: str | None) -> tuple[str, CRS | None]:
    """``(chinese, override)`` of a ``crs`` option: one of ``wgs84``/``gcj02``/``bd09``
    (applied after reprojecting to WGS-84; ``wgs84`` changes nothing), or any CRS pyproj
    knows (``EPSG:32650``), which overrides the one a file declares.

    Raises
    ------
    InvalidInputError
        Naming ``crs``.
    """
    if crs is None:
        return "wgs84", None
    text = str(crs).strip()
    if text.lower() in CRS_NAMES or text.lower() in ("wgs-84", "gcj-02", "bd-09", "gcj", "bd"):
        return parse_crs_name(text), None
    try:
        return "wgs84", CRS.from_user_input(text)
    except CRSError:
        raise InvalidInputError(
            "crs", f"Expected wgs84, gcj02, bd09 or a CRS such as EPSG:32650, got {crs!r}"
        ) from None


def reproject_to_wgs84(geoms: GeomArray, src: CRS | str | None) -> GeomArray:
    """Geometries from *src* to WGS-84 longitude/latitude (``None``: already there)."""
    if src is None:
        return geoms
    src_crs = src if isinstance(src, CRS) else CRS.from_user_input(src)
    wgs84 = CRS.from_epsg(4326)
    if src_crs == wgs84 or src_crs.equals(CRS.from_user_input("OGC:CRS84")):
        return geoms
    tf = Transformer.from_crs(src_crs, wgs84, always_xy=True)

    def conv(xy: FloatArray) -> FloatArray:
        x, y = tf.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geoms, conv), dtype=object)


def _python_values(values: NDArray[Any], dtype: str) -> list[Any]:
    """A column from pyogrio as plain Python values (``None`` for nulls and NaN)."""
    out: list[Any] = values.tolist()
    integral = dtype.startswith(("int", "uint"))
    for k, v in enumerate(out):
        if isinstance(v, float):
            if math.isnan(v):
                out[k] = None
            elif integral and v.is_integer():
                out[k] = int(v)
    return out


def read_layer(
    path: str | os.PathLike[str], crs: str | None = "wgs84", layer: str | int | None = None
) -> Layer:
    """Read a vector layer through pyogrio, in WGS-84.

    Parameters
    ----------
    path : path-like
        Shapefile (``.shp`` or a ``.zip`` holding one), GeoPackage, FlatGeobuf, GeoJSON, …
    crs : str
        ``wgs84`` (default: the file's declared CRS is used), ``gcj02``/``bd09`` (the file's
        longitude/latitude are in that Chinese system), or a CRS for a file that declares
        none or a wrong one (``EPSG:32650``).
    layer : str or int, optional
        The layer of a multi-layer file (GeoPackage); default the first.

    Raises
    ------
    InvalidInputError
        The file is missing or unreadable, or *crs* is unknown.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(str(p), "no such file")
    chinese, override = split_crs(crs)
    try:
        meta, _, wkb, columns = pyogrio.raw.read(p, layer=layer, datetime_as_string=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InvalidInputError(str(p), f"cannot read as a vector layer: {exc}") from None
    except (pyogrio.errors.GeometryError, pyogrio.errors.FieldError) as exc:
        raise InvalidInputError(str(p), f"cannot read: {exc}") from None
    n = 0 if wkb is None else len(wkb)
    geoms: GeomArray = (
        np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
        if n
        else np.empty(0, dtype=object)
    )
    declared = meta.get("crs")
    geoms = reproject_to_wgs84(geoms, override if override is not None else declared)
    if chinese != "wgs84" and n:
        geoms = np.asarray(to_wgs84_geometry(geoms, chinese), dtype=object)
    fields = [str(f) for f in meta["fields"]]
    cols = [_python_values(c, str(t)) for c, t in zip(columns, meta["dtypes"], strict=True)]
    records = (
        [dict(zip(fields, row, strict=True)) for row in zip(*cols, strict=True)]
        if cols
        else [{} for _ in range(n)]
    )
    return Layer(geoms, records, fields, declared)


def is_polygon_file(path: str | os.PathLike[str]) -> bool:
    """Whether a (non-CSV) file holds polygons (its first geometry is an area)."""
    p = Path(path)
    if p.suffix.lower() in CSV_SUFFIXES or not p.exists():
        return False
    try:
        info = pyogrio.read_info(p)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        return False  # the point loader reports the problem with the file's name
    kind = str(info.get("geometry_type") or "")
    if "Polygon" in kind:
        return True
    if kind not in ("Unknown", "Geometry", ""):
        return False
    layer = read_layer(p)
    first = next((g for g in layer.geometries if g is not None), None)
    return first is not None and shapely.get_dimensions(first) == 2


# ---------------------------------------------------------------------------------------
# Districts
# ---------------------------------------------------------------------------------------
def load_districts(
    path: str | os.PathLike[str],
    name_field: str | Sequence[str] | None = "name",
    crs: str = "wgs84",
    layer: str | int | None = None,
) -> Districts:
    """Read district polygons from any vector file (see :func:`read_layer`).

    Parameters
    ----------
    path : path-like
        Polygon/MultiPolygon features: GeoJSON, Shapefile (or a zip of one), GeoPackage,
        FlatGeobuf, …
    name_field : str, sequence of str, or None
        Property holding the district name. Several properties are joined with a space
        (e.g. ``("SIDONM", "SGGNM")`` → ``"부산광역시 중구"``), which keeps districts of
        the same name in different cities apart: features with equal names are merged.
        ``None`` numbers the features ``"1"``, ``"2"``...
    crs : str
        ``wgs84`` (the file's declared CRS), ``gcj02``, ``bd09``, or a CRS such as
        ``EPSG:32650`` for a file that declares none (see :func:`read_layer`).
    layer : str or int, optional
        The layer of a multi-layer file.

    Returns
    -------
    Districts

    Raises
    ------
    InvalidInputError
        The file cannot be read, is not polygons, or lacks *name_field*.
    """
    data = read_layer(path, crs, layer)
    names: list[str] = []
    geoms: list[Any] = []
    for i, (p, g) in enumerate(zip(data.records, data.geometries, strict=True)):
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
        if g is None:
            raise InvalidInputError("geometry", f"Expected a geometry on feature {i}, got none")
        names.append(name)
        geoms.append(g)
    if not names:
        raise InvalidInputError(str(path), "Expected at least one polygon feature, got none")
    return Districts.from_geometries(names, geoms, data.records)


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
    """Read demand points from a CSV file or a vector file of Points.

    Parameters
    ----------
    path : path-like
        ``.csv``/``.tsv`` (UTF-8, header row), or any point layer GDAL reads: GeoJSON,
        Shapefile (or a zip of one), GeoPackage, FlatGeobuf (see :func:`read_layer`).
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
    crs : str
        ``wgs84`` (a vector file: its declared CRS), ``gcj02``, ``bd09``, or a CRS such as
        ``EPSG:32650`` (CSV coordinates in it, or a file that declares none).
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
    chinese, override = split_crs(crs)
    if suffix in CSV_SUFFIXES:
        rows, fields = _csv_rows(p, delimiter="\t" if suffix == ".tsv" else ",")
        lon_col = _pick_field(fields, lon_field, LON_FIELDS, "lon_field")
        lat_col = _pick_field(fields, lat_field, LAT_FIELDS, "lat_field")
        convert = chinese
    else:
        rows, fields = _layer_point_rows(p, crs)
        lon_col, lat_col = "__lon__", "__lat__"
        convert, override = "wgs84", None  # read_layer converted the geometries
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
            if override is not None:
                pt = reproject_to_wgs84(np.array([shapely.points(x, y)], dtype=object), override)[0]
                x, y = float(shapely.get_x(pt)), float(shapely.get_y(pt))
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
        crs=convert,
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


def _layer_point_rows(
    path: Path, crs: str | None
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    data = read_layer(path, crs)
    rows: list[tuple[str, dict[str, Any]]] = []
    for i, (g, props) in enumerate(zip(data.geometries, data.records, strict=True)):
        row = dict(props)
        if g is not None and shapely.get_type_id(g) != 0:
            raise InvalidInputError(
                "geometry",
                f"Expected Point features (use load_polygons for polygons), got "
                f"{g.geom_type!r} on feature {i}",
            )
        if g is None or shapely.is_empty(g):
            row["__lon__"] = row["__lat__"] = None
        else:
            row["__lon__"], row["__lat__"] = float(shapely.get_x(g)), float(shapely.get_y(g))
        rows.append((f"feature {i}", row))
    return rows, ["__lon__", "__lat__", *data.fields]


def load_polygons(
    path: str | os.PathLike[str],
    weight: str,
    cell_size_m: float = 250.0,
    *,
    district_field: str | None = None,
    districts: Districts | None = None,
    crs: str = "wgs84",
) -> Demand:
    """Read weighted polygons and spread each weight over its area.

    Parameters
    ----------
    path : path-like
        Polygon/MultiPolygon features in any vector format GDAL reads (see
        :func:`read_layer`).
    weight : str
        Property with each polygon's weight.
    cell_size_m : float
        Hexagon size used to spread the weight (see :func:`spread_polygons`).
    district_field : str, optional
        Property naming each polygon's district, carried to its points.
    districts : Districts, optional
        Label points by the district polygon they fall in instead.
    crs : str
        As for :func:`read_layer`.

    Returns
    -------
    Demand
    """
    data = read_layer(path, crs)
    geoms: list[Any] = []
    ws: list[float] = []
    labels: list[str | None] = []
    for i, (props, g) in enumerate(zip(data.records, data.geometries, strict=True)):
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
        if g is None:
            raise InvalidInputError("geometry", f"Expected a geometry on feature {i}, got none")
        geoms.append(g)
    demand = spread_polygons(
        geoms,
        np.asarray(ws, dtype=np.float64),
        cell_size_m,
        labels=labels if district_field is not None else None,
        crs="wgs84",  # read_layer converted the geometries
        weight_name=weight,
    )
    if districts is not None:
        demand = demand.with_districts(districts)
    demand.meta["source"] = str(path)
    return demand
