"""Exports: stations (and study layers) as GeoJSON, CSV, GeoPackage, Shapefile, XLSX or
FlatGeobuf, for ``yizhan export`` and ``GET /export/{layer}.{ext}``.

GeoJSON carries the features exactly as stored. The other formats carry a flat table:
one column per registry property a table can hold, lists (``amenities``, ``guessed``)
joined with ``;``, ``external_ids`` as ``external_ids.KEY`` columns; CSV and XLSX add
``lon``/``lat`` and the geometry as WKT. Column names are the registry's, so that
``yizhan import`` reads every one of them back (``--map guessed=guessed``; ``guessed`` is
never auto-detected); Shapefile names are cut to 10 characters, so a Shapefile export
comes with ``<name>.import.toml``, the mapping that reads it back
(``yizhan import x.shp --mapping x.import.toml``). Text is UTF-8 everywhere: CSV with a
byte-order mark (Excel), Shapefile with a ``.cpg``. A DBF text field holds at most 254
bytes (84 Chinese characters): longer values are cut by GDAL, with a warning.

GeoJSON and CSV are produced in chunks (streamed over HTTP); GeoPackage, Shapefile,
FlatGeobuf and XLSX are written by GDAL (pyogrio) and openpyxl to a file first.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import pyogrio
import shapely
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError
from yizhan.stations.jsonio import gc_paused

FORMATS: Final = ("geojson", "csv", "gpkg", "shp", "xlsx", "fgb")
#: Media type and file suffix of each format over HTTP (a Shapefile travels zipped).
MEDIA: Final = {
    "geojson": ("application/geo+json", ".geojson"),
    "csv": ("text/csv; charset=utf-8", ".csv"),
    "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
    "shp": ("application/zip", ".zip"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    "fgb": ("application/flatgeobuf", ".fgb"),
}
_DRIVERS: Final = {"gpkg": "GPKG", "shp": "ESRI Shapefile", "fgb": "FlatGeobuf"}

#: Registry properties of a station a table holds, in column order.
STATION_COLUMNS: Final = (
    "id",
    "name",
    "kind",
    "name_en",
    "category",
    "operator",
    "network",
    "address",
    "district",
    "phone",
    "amenities",
    "opening_hours",
    "opening_hours_text",
    "status",
    "status_reason",
    "capacity",
    "last_verified_at",
    "last_verified_by",
    "source",
    "coord_origin",
    "guessed",
    "created_at",
    "updated_at",
    "timezone",
)
LIST_COLUMNS: Final = frozenset({"amenities", "guessed"})
LIST_SEP: Final = ";"
#: Shapefile (DBF) names of the columns longer than 10 characters.
SHP_NAMES: Final = {
    "opening_hours": "hours",
    "opening_hours_text": "hours_text",
    "status_reason": "st_reason",
    "last_verified_at": "verified",
    "last_verified_by": "verif_by",
    "coord_origin": "coord_orig",
}
CHUNK: Final = 2000


@dataclass
class FlatLayer:
    """Features as a table, by column: attribute columns (with a type each: ``str``,
    ``int`` or ``float``; ``None`` for a missing value) and the geometries."""

    name: str
    columns: list[str]
    types: dict[str, str]
    data: dict[str, list[Any]]
    geometries: list[dict[str, Any] | None]

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def points(self) -> bool:
        """Whether every geometry is a Point (then CSV and XLSX get lon/lat columns)."""
        return all(g is not None and g.get("type") == "Point" for g in self.geometries)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The values of each feature, in column order."""
        return zip(*(self.data[c] for c in self.columns), strict=True)


def check_format(fmt: str) -> str:
    """*fmt* if it is one of :data:`FORMATS`; :class:`InvalidInputError` naming ``format``."""
    if fmt not in FORMATS:
        raise InvalidInputError("format", f"Expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def _station_value(column: str, v: Any) -> Any:
    if v is None:
        return None
    if column in LIST_COLUMNS:
        return LIST_SEP.join(str(x) for x in v) if v else None
    if column == "capacity":
        return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    return v if isinstance(v, str) else _text(v)


def flatten_stations(features: Sequence[Mapping[str, Any]], name: str = "stations") -> FlatLayer:
    """Station features as a :class:`FlatLayer` (see the module docstring). Properties a
    table cannot hold as a value (``activation``, other objects) are left out; other
    unknown scalar properties follow the registry's columns.

    The collector is paused meanwhile: the table's millions of new objects all survive,
    and each full collection would walk the registry too (as when loading it).
    """
    with gc_paused():
        return _flatten_stations(features, name)


def _flatten_stations(features: Sequence[Mapping[str, Any]], name: str) -> FlatLayer:
    props = [f["properties"] for f in features]
    ext_keys: dict[str, None] = {}
    extra: dict[str, None] = {}
    for p in props:
        ext = p.get("external_ids")
        if ext:
            ext_keys.update(dict.fromkeys(str(k) for k in ext))
        rest = p.keys() - _STATION_SET  # usually empty: registry properties only
        if rest:
            extra.update(dict.fromkeys(k for k in p if k in rest and _scalar(p[k])))
    data: dict[str, list[Any]] = {"id": [str(f["id"]) for f in features]}
    for c in STATION_COLUMNS[1:]:
        values = [p.get(c) for p in props]
        # A validated registry holds text in every other column (docs/registry.md).
        if c in LIST_COLUMNS or c == "capacity":
            values = [_station_value(c, v) for v in values]
        data[c] = values
    for k in ext_keys:
        data[f"external_ids.{k}"] = [_text((p.get("external_ids") or {}).get(k)) for p in props]
    for k in extra:
        data[k] = [_text(p.get(k)) for p in props]
    columns = list(data)
    types = dict.fromkeys(columns, "str")
    types["capacity"] = "int"
    return FlatLayer(name, columns, types, data, [f.get("geometry") for f in features])


#: Properties that are columns of their own (or ``external_ids``, spread over several).
_STATION_SET: Final = frozenset({*STATION_COLUMNS, "external_ids"})


def flatten_features(features: Sequence[Mapping[str, Any]], name: str) -> FlatLayer:
    """Any features with scalar properties (study layers) as a :class:`FlatLayer`: an
    ``id`` column, then every property, typed ``int``/``float`` when all values are."""
    keys: dict[str, None] = {}
    for f in features:
        keys.update(dict.fromkeys(k for k, v in f["properties"].items() if _scalar(v) or v is None))
    data: dict[str, list[Any]] = {"id": [f.get("id") for f in features]}
    for k in keys:
        data[k] = [f["properties"].get(k) for f in features]
    types: dict[str, str] = {}
    for c, values in data.items():
        vals = [v for v in values if v is not None]
        if vals and all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            types[c] = "int"
        elif vals and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            types[c] = "float"
        else:
            types[c] = "str"
            data[c] = [_text(v) for v in values]
    return FlatLayer(name, list(data), types, data, [f.get("geometry") for f in features])


def _scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ---------------------------------------------------------------------------------------
# GeoJSON and CSV, in chunks
# ---------------------------------------------------------------------------------------
def geojson_chunks(
    features: Sequence[Mapping[str, Any]], meta: Mapping[str, Any] | None = None
) -> Iterator[bytes]:
    """A FeatureCollection (with *meta*'s top-level members) in pieces of bytes."""
    head = orjson.dumps({"type": "FeatureCollection", **(meta or {})})[:-1]
    yield head + b',"features":['
    for start in range(0, len(features), CHUNK):
        part = b",".join(orjson.dumps(f) for f in features[start : start + CHUNK])
        yield (b"," if start else b"") + part
    yield b"]}\n"


def wkt_column(layer: FlatLayer) -> list[str | None]:
    """The geometries as WKT (shortest round-trip decimals), vectorised by shapely."""
    geoms = layer.geometries
    if geoms and layer.points:
        x, y = point_xy(layer)
        out: list[str | None] = shapely.to_wkt(shapely.points(x, y), rounding_precision=-1).tolist()
        return out
    shapes = [None if g is None else shapely.geometry.shape(g) for g in geoms]
    return [None if g is None else str(shapely.to_wkt(g, rounding_precision=-1)) for g in shapes]


def table_header(layer: FlatLayer) -> list[str]:
    """The columns of a CSV or XLSX table: the attributes, ``lon``/``lat`` for points, ``wkt``."""
    return [*layer.columns, *(["lon", "lat"] if layer.points else []), "wkt"]


def table_rows(layer: FlatLayer) -> Iterator[list[Any]]:
    """The rows of :func:`table_header`."""
    extra: list[list[Any]] = []
    if layer.points:
        x, y = point_xy(layer)
        extra += [x.tolist(), y.tolist()]
    extra.append(wkt_column(layer))
    for row, *more in zip(layer.rows(), *extra, strict=True):
        yield [*row, *more]


def csv_chunks(layer: FlatLayer) -> Iterator[bytes]:
    """The layer as UTF-8 CSV with a byte-order mark, in pieces of bytes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(table_header(layer))
    yield b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")
    buf.seek(0)
    buf.truncate()
    for k, row in enumerate(table_rows(layer), start=1):
        writer.writerow(
            ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row]
        )
        if k % CHUNK == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------
def point_xy(layer: FlatLayer) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Longitudes and latitudes of a layer of Points."""
    coords = [g["coordinates"] for g in layer.geometries if g is not None]
    n = len(coords)
    x = np.fromiter((c[0] for c in coords), dtype=np.float64, count=n)
    y = np.fromiter((c[1] for c in coords), dtype=np.float64, count=n)
    return x, y


def _geometries(layer: FlatLayer) -> NDArray[np.object_]:
    geoms = layer.geometries
    if geoms and layer.points:
        x, y = point_xy(layer)
        return np.asarray(shapely.to_wkb(shapely.points(x, y)), dtype=object)
    return np.array(
        [None if g is None else shapely.to_wkb(shapely.geometry.shape(g)) for g in geoms],
        dtype=object,
    ).reshape(len(geoms))


def shapefile_names(columns: Sequence[str]) -> dict[str, str]:
    """Column → DBF field name (at most 10 characters, unique)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for c in columns:
        name = SHP_NAMES.get(c) or (
            "x_" + c.removeprefix("external_ids.") if c.startswith("external_ids.") else c
        )
        name = name[:10]
        k = 1
        while name.lower() in used:
            k += 1
            name = f"{name[: 10 - len(str(k))]}{k}"
        used.add(name.lower())
        out[c] = name
    return out


def write_ogr(layer: FlatLayer, path: Path, fmt: str, *, append: bool = False) -> dict[str, str]:
    """Write *layer* with GDAL (``gpkg``, ``shp`` or ``fgb``); returns column → field name."""
    names = shapefile_names(layer.columns) if fmt == "shp" else {c: c for c in layer.columns}
    data: list[NDArray[Any]] = []
    masks: list[NDArray[np.bool_] | None] = []
    n = len(layer)
    for c in layer.columns:
        vals = layer.data[c]
        if layer.types[c] == "int":
            missing = np.array([v is None for v in vals], dtype=bool).reshape(n)
            data.append(np.array([0 if v is None else int(v) for v in vals], dtype=np.int64))
            masks.append(missing if missing.any() else None)
        elif layer.types[c] == "float":
            data.append(
                np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
            )
            masks.append(None)
        else:
            data.append(np.array(vals, dtype=object).reshape(n))
            masks.append(None)
    geom_types = {g.get("type") for g in layer.geometries if g is not None}
    gtype = geom_types.pop() if len(geom_types) == 1 else "Unknown"
    if fmt == "shp" and gtype == "Polygon" and not append:
        gtype = "MultiPolygon" if any(g == "MultiPolygon" for g in geom_types) else gtype
    field_mask = masks if any(m is not None for m in masks) else None
    options: dict[str, Any] = {}
    if fmt == "fgb":
        options["SPATIAL_INDEX"] = "YES"
    pyogrio.raw.write(
        path,
        _geometries(layer),
        data,
        [names[c] for c in layer.columns],
        field_mask=field_mask,
        layer=layer.name,
        driver=_DRIVERS[fmt],
        geometry_type=gtype,
        crs="EPSG:4326",
        encoding="UTF-8" if fmt == "shp" else None,
        promote_to_multi=fmt == "shp" and gtype in ("Polygon", "MultiPolygon"),
        append=append,
        layer_options=options or None,
    )
    return names


def write_xlsx(layers: Sequence[FlatLayer], path: Path) -> None:
    """One sheet per layer: the attributes, ``lon``/``lat`` for points and ``wkt``."""
    import openpyxl  # ~0.1 s to import; only XLSX exports need it (as in the importer)

    wb = openpyxl.Workbook(write_only=True)
    for layer in layers:
        ws = wb.create_sheet(layer.name[:31])
        ws.append(table_header(layer))
        for row in table_rows(layer):
            ws.append(row)
    wb.save(path)


def import_mapping(layer: FlatLayer, names: Mapping[str, str], meta: Mapping[str, Any]) -> str:
    """The ``yizhan import --mapping`` TOML that reads an export of *layer* back."""
    lines = [
        "# Written by `yizhan export`: read the export back with",
        "#   yizhan import FILE --mapping THIS_FILE -o registry.geojson",
        "",
    ]
    scalars = {k: v for k, v in meta.items() if isinstance(v, str)}
    lines.append("[map]")
    lines += [
        f"{json.dumps(c)} = {json.dumps(names.get(c, c), ensure_ascii=False)}"
        for c in layer.columns
    ]
    if scalars:
        lines += ["", "[meta]"]
        lines += [
            f"{json.dumps(k)} = {json.dumps(v, ensure_ascii=False)}" for k, v in scalars.items()
        ]
    return "\n".join(lines) + "\n"


def write_file(
    layers: Sequence[FlatLayer],
    fmt: str,
    path: str | os.PathLike[str],
    *,
    features: Sequence[Mapping[str, Any]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write *layers* to *path* in *fmt*; returns the files written.

    GeoJSON writes *features* as given (the first layer's, exactly as stored) with
    *meta*'s top-level members; CSV writes the first layer. GeoPackage and XLSX hold
    every layer; Shapefile and FlatGeobuf the first (a ``.zip`` *path* zips the
    Shapefile's files with its mapping). Stations exports in Shapefile also write
    ``<stem>.import.toml``.
    """
    check_format(fmt)
    with gc_paused():  # see flatten_stations
        return _write_file(layers, fmt, Path(path), features, meta)


def _write_file(
    layers: Sequence[FlatLayer],
    fmt: str,
    p: Path,
    features: Sequence[Mapping[str, Any]] | None,
    meta: Mapping[str, Any] | None,
) -> list[Path]:
    first = layers[0]
    if fmt == "geojson":
        with p.open("wb") as fh:
            for chunk in geojson_chunks(
                features if features is not None else _features_of(first), meta
            ):
                fh.write(chunk)
        return [p]
    if fmt == "csv":
        with p.open("wb") as fh:
            for chunk in csv_chunks(first):
                fh.write(chunk)
        return [p]
    if fmt == "xlsx":
        write_xlsx(layers, p)
        return [p]
    if fmt == "gpkg":
        if p.exists():
            p.unlink()
        for k, layer in enumerate(layers):
            write_ogr(layer, p, fmt, append=k > 0)
        return [p]
    if fmt == "fgb":
        write_ogr(first, p, fmt)
        return [p]
    zipped = p.suffix.lower() == ".zip"
    shp = p.with_suffix(".shp")
    names = write_ogr(first, shp, fmt)
    files = [shp.with_suffix(s) for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
    files = [f for f in files if f.exists()]
    mapping = shp.with_name(shp.stem + ".import.toml")
    mapping.write_text(import_mapping(first, names, meta or {}), encoding="utf-8")
    files.append(mapping)
    if not zipped:
        return files
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.name)
            f.unlink()
    return [p]


def _features_of(layer: FlatLayer) -> list[dict[str, Any]]:
    out = []
    for row, geom in zip(layer.rows(), layer.geometries, strict=True):
        props = {c: v for c, v in zip(layer.columns, row, strict=True) if c != "id"}
        out.append({"type": "Feature", "id": row[0], "geometry": geom, "properties": props})
    return out


def chunks_of_file(path: Path, size: int = 1 << 16) -> Iterable[bytes]:
    """The bytes of *path* in pieces (for a streamed response)."""
    with path.open("rb") as fh:
        while True:
            block = fh.read(size)
            if not block:
                return
            yield block
