"""Demand and district files: CSV and GeoJSON readers that make a :class:`~yizhan.geo.demand.Demand`.

``geo/`` is pure math; reading files lives here, in the query layer, beside the studies
that use it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from shapely.geometry import shape

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import Demand, Districts, parse_crs_name, to_wgs84_geometry
from yizhan.geo.hexgrid import spread_polygons

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
GeomArray = NDArray[np.object_]

LON_FIELDS = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_FIELDS = ("lat", "latitude", "y", "纬度")


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
    src = parse_crs_name(crs)
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
        geoms.append(to_wgs84_geometry(_feature_geometry(feat, i), src))
        props.append(p)
    if not names:
        raise InvalidInputError(str(path), "Expected at least one polygon feature, got none")
    return Districts.from_geometries(names, geoms, props)


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
