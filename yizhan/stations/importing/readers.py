"""Read a source file into a :class:`Table` of rows of cells.

CSV (UTF-8, else GB18030 or CP949 -- whichever gives known column names -- or the
given encoding; the delimiter sniffed from the header line), an XLSX sheet, GeoJSON
Point features (positions stay in the row's geometry), plain JSON lists of records, and
GeoPackage, Shapefile (or a zip of one) and FlatGeobuf layers read by GDAL (pyogrio;
``--sheet`` names the layer), whose positions stay in the row's geometry like GeoJSON's.
Row numbers are the ones the user sees: header = row 1 in CSV/XLSX, the 0-based
feature index in GeoJSON, the 1-based record index in a JSON list of records.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from yizhan.errors import InvalidInputError
from yizhan.stations.importing.headers import SYNONYMS, match_level
from yizhan.stations.importing.report import Note, Problem
from yizhan.stations.importing.spec import ImportSpec


@dataclass
class Row:
    """One row of a source: its number as the user sees it, its cells by column, where
    its CSV record starts (when that differs), its GeoJSON geometry, and why it is
    unusable as read (``problem``)."""

    number: int
    values: dict[str, Any]
    line: int | None = None
    geometry: Any = None
    problem: Problem | None = None


@dataclass
class Table:
    """A source as read: its format, column names and rows (blank rows only counted),
    the encoding a text file was read in, and notes about the source."""

    format: Literal["csv", "xlsx", "geojson", "json"]
    columns: list[str]
    rows: list[Row]
    encoding: str | None = None
    n_blank: int = 0
    notes: list[Note] = field(default_factory=list)


def _unique_columns(raw: Sequence[Any]) -> tuple[list[str], list[Note]]:
    cols: list[str] = []
    notes: list[Note] = []
    seen: Counter[str] = Counter()
    for i, c in enumerate(raw):
        name = "" if c is None else str(c).strip()
        if not name:
            name = f"column_{i + 1}"
        seen[name] += 1
        if seen[name] > 1:
            new = f"{name}.{seen[name]}"
            notes.append(
                Note(
                    None, None, "source", name, f"column name {name!r} repeats; the copy is {new!r}"
                )
            )
            name = new
        cols.append(name)
    return cols, notes


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise InvalidInputError("encoding", f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                "encoding", f"the file is not valid {encoding} (byte {exc.start}: {exc.reason})"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: GB18030 (a superset of GBK) unless the file is valid CP949 (Korean
    # Windows) and only that reading gives a header with known column names.
    decoded: dict[str, str] = {}
    for enc in ("gb18030", "cp949"):
        try:
            decoded[enc] = data.decode(enc)
        except UnicodeDecodeError:
            continue
    if "gb18030" in decoded and "cp949" in decoded:
        hits = {enc: _known_header_words(text) for enc, text in decoded.items()}
        if hits["cp949"] > hits["gb18030"]:
            return decoded["cp949"], "cp949"
    for enc, text in decoded.items():
        return text, enc
    raise InvalidInputError(
        "encoding", "the file is neither UTF-8 nor GB18030; pass --encoding (e.g. cp949, big5)"
    )


def _known_header_words(text: str) -> int:
    """How many names in the first line of *text* are known column names."""
    first = text.split("\n", 1)[0]
    names = re.split(r"[,\t;|]", first)
    return sum(1 for n in names if any(match_level(f, n.strip().strip('"')) for f in SYNONYMS))


def _sniff_delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, encoding: str | None, delimiter: str | None, header_row: int) -> Table:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    try:
        text, used = _decode(data, encoding)
    except UnicodeDecodeError as exc:
        raise InvalidInputError("encoding", f"cannot decode the file: {exc.reason}") from None
    notes: list[Note] = []
    if used in ("gb18030", "cp949") and not encoding:
        notes.append(
            Note(
                None,
                None,
                "source",
                used,
                f"the file is not UTF-8; read it as {used.upper()} "
                "(pass --encoding if the text looks wrong)",
            )
        )
    text = text.removeprefix("\ufeff")  # a BOM left by an explicit --encoding utf-8
    delim = delimiter or _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header: list[str] | None = None
    rows: list[Row] = []
    n_blank = 0
    prev_line = 0
    record = 0
    try:
        for values in reader:
            record += 1
            start_line = prev_line + 1
            prev_line = reader.line_num
            if record < header_row:
                continue
            if header is None:
                header, col_notes = _unique_columns(values)
                notes.extend(col_notes)
                continue
            if not any(v.strip() for v in values):
                n_blank += 1
                continue
            row = Row(
                record,
                dict(zip(header, values, strict=False)),
                line=start_line if start_line != record else None,
            )
            extra = [v for v in values[len(header) :] if v.strip()]
            if extra:
                row.problem = Problem(
                    "field_count",
                    None,
                    f"the row has {len(values)} values but the header has {len(header)} columns "
                    "(a delimiter inside an unquoted value?)",
                    delim.join(values),
                )
            rows.append(row)
    except csv.Error as exc:
        raise InvalidInputError(str(path), f"CSV error on line {reader.line_num}: {exc}") from None
    if header is None:
        raise InvalidInputError(str(path), f"no header row (row {header_row}) in the file")
    return Table("csv", header, rows, encoding=used, n_blank=n_blank, notes=notes)


def _read_xlsx(path: Path, sheet: str | None, header_row: int) -> Table:
    # Imported here, not at the top: openpyxl takes ~0.1 s to import and only .xlsx sources
    # need it, while every `yizhan` command imports this package when it builds its parser.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
        raise InvalidInputError(str(path), f"cannot read as XLSX: {exc}") from None
    try:
        names = list(wb.sheetnames)
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in names:
            ws = wb[sheet]
        elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
            ws = wb.worksheets[int(sheet) - 1]
        else:
            raise InvalidInputError(
                "sheet", f"no sheet {sheet!r}; the workbook has {', '.join(map(repr, names))}"
            )
        header: list[str] | None = None
        notes: list[Note] = []
        rows: list[Row] = []
        n_blank = 0
        for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if r < header_row:
                continue
            if header is None:
                header, notes = _unique_columns(list(values))
                continue
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                n_blank += 1
                continue
            rows.append(Row(r, dict(zip(header, values, strict=False))))
    except InvalidInputError:
        raise
    except Exception as exc:  # malformed sheet XML surfaces from several libraries
        raise InvalidInputError(str(path), f"cannot read as XLSX: {exc}") from None
    finally:
        wb.close()
    if header is None:
        raise InvalidInputError(
            str(path), f"sheet {ws.title!r} has no header row (row {header_row})"
        )
    return Table("xlsx", header, rows, n_blank=n_blank, notes=notes)


def _read_geojson(path: Path) -> Table:
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidInputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(str(path), f"not valid JSON: {exc}") from None
    notes: list[Note] = []
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise InvalidInputError(str(path), "the FeatureCollection has no features list")
        if "crs" in doc:
            notes.append(
                Note(
                    None,
                    "crs",
                    "source",
                    str(doc["crs"])[:80],
                    "the source has a (pre-RFC 7946) crs member; it is ignored: use --crs",
                )
            )
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    elif isinstance(doc, list):
        return _json_records(doc)
    else:
        raise InvalidInputError(
            str(path), "Expected a GeoJSON FeatureCollection or Feature, or a JSON list of records"
        )
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            row = Row(i, {})
            row.problem = Problem(
                "invalid_feature", None, "the feature is not a JSON object", str(f)[:80]
            )
            rows.append(row)
            continue
        props = f.get("properties") or {}
        values: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        if f.get("id") is not None:
            values["id"] = f["id"]
        for k in values:
            columns.setdefault(k, None)
        rows.append(Row(i, values, geometry=f.get("geometry")))
    return Table("geojson", list(columns), rows, notes=notes)


def _record_value(value: Any) -> Any:
    """A JSON record's value as a cell: lists and objects kept, other scalars as text."""
    if value is None or isinstance(value, str | list | dict):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_records(records: list[Any]) -> Table:
    """A plain JSON list of objects: keys are columns, row = 1-based record index."""
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            row = Row(i, {})
            row.problem = Problem(
                "invalid_feature", None, "the record is not a JSON object", str(rec)[:80]
            )
            rows.append(row)
            continue
        values = {str(k): _record_value(v) for k, v in rec.items()}
        for k in values:
            columns.setdefault(k, None)
        rows.append(Row(i, values))
    return Table("json", list(columns), rows)


#: Vector formats read through GDAL (pyogrio): rows keep their geometry, like GeoJSON.
VECTOR_SUFFIXES = (".gpkg", ".shp", ".fgb", ".zip")


def _read_vector(path: Path, layer: str | None) -> Table:
    """A GeoPackage, Shapefile (or a zip of one) or FlatGeobuf layer: attributes as
    columns, geometries (reprojected to WGS-84 from the declared CRS) kept per row."""
    # Imported here, not at the top, like openpyxl: pyogrio and pyproj take ~0.3 s to
    # import and only these sources need them.
    import pyogrio
    import pyogrio.errors
    import shapely
    from pyproj import CRS, Transformer

    try:
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer, datetime_as_string=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InvalidInputError(str(path), f"cannot read as a vector layer: {exc}") from None
    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if wkb is not None and len(wkb) else []
    declared = meta.get("crs")
    if declared and len(geoms) and CRS.from_user_input(declared) != CRS.from_epsg(4326):
        tf = Transformer.from_crs(declared, "EPSG:4326", always_xy=True)
        geoms = shapely.transform(
            geoms, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))
        )
    names = [str(f) for f in meta["fields"]]
    values = [c.tolist() for c in columns]
    rows: list[Row] = []
    for i, g in enumerate(geoms):
        cells = {
            n: (None if isinstance(v[i], float) and v[i] != v[i] else v[i])
            for n, v in zip(names, values, strict=True)
        }
        geometry = None if g is None else orjson.loads(shapely.to_geojson(g))
        rows.append(Row(i, cells, geometry=geometry))
    return Table("geojson", names, rows)


def read_table(path: Path, spec: ImportSpec) -> Table:
    """Read *path* by its suffix, with the sheet, encoding, delimiter and header row of *spec*.

    Raises
    ------
    InvalidInputError
        The file is missing, a directory, of an unknown type or unreadable as its type.
    """
    if not path.exists():
        raise InvalidInputError(str(path), "no such file")
    if path.is_dir():
        raise InvalidInputError(str(path), "is a directory, not a file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, spec.sheet, spec.header_row)
    if suffix == ".xls":
        raise InvalidInputError(str(path), "old .xls workbooks are not supported; save it as .xlsx")
    if suffix in (".geojson", ".json"):
        return _read_geojson(path)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, spec.sheet)
    if suffix in (".csv", ".tsv", ".txt", ""):
        delim = spec.delimiter or ("\t" if suffix == ".tsv" else None)
        return _read_csv(path, spec.encoding, delim, spec.header_row)
    raise InvalidInputError(
        str(path),
        f"unknown file type {suffix!r}; expected .csv, .tsv, .txt, .xlsx, .geojson, .json, "
        ".gpkg, .shp, .zip (a zipped Shapefile) or .fgb",
    )
