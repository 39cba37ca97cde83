"""Run an import: read the source, map its columns, import each row, check across rows.

:func:`run_import` (and :func:`import_file`, the same with keyword options) reads the
table, resolves the columns and the coordinate system, turns every row into a
candidate or a rejection, converts positions to WGS-84, rejects swapped positions, far
outliers and repeated ids, and validates the result as a registry: what is returned
passes :func:`~yizhan.stations.validate.validate_document` with no error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import transform
from yizhan.geo.distance import haversine_m
from yizhan.stations.importing.columns import (
    decide_crs,
    drop_unfit_auto_columns,
    resolve_columns,
)
from yizhan.stations.importing.readers import read_table
from yizhan.stations.importing.report import ImportResult, Note, Rejected
from yizhan.stations.importing.rows import Candidate, RowImporter
from yizhan.stations.importing.spec import GuessedWhen, ImportSpec, Rule
from yizhan.stations.validate import swapped_positions, validate_document

#: Coordinates converted from GCJ-02/BD-09 are rounded to this many decimals (~1 cm).
COORD_DECIMALS: Final = 7
#: A row is a far outlier when it is farther than this from the median position ...
OUTLIER_MIN_M: Final = 1_000_000.0
#: ... and more than this many times the median distance of all rows to that position.
OUTLIER_FACTOR: Final = 5.0


def import_file(
    path: str | Path,
    *,
    mapping: Mapping[str, str | None] | None = None,
    crs: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    id_prefix: str = "",
    amenity_words: Mapping[str, str | None] | None = None,
    guessed: Iterable[str] = (),
    guessed_when: Iterable[GuessedWhen] = (),
    rules: Iterable[Rule] = (),
    recode: Mapping[str, Mapping[str, str]] | None = None,
    meta: Mapping[str, Any] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int = 1,
    reject_outliers: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import stations from a CSV, XLSX, GeoJSON or JSON-records file.

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.tsv``/``.txt``, ``.xlsx`` or ``.geojson``/``.json`` (a GeoJSON
        FeatureCollection or Feature, or a plain JSON list of objects).
    mapping : mapping, optional
        Field -> column (``{"lon": "lng_gcj02"}``); unmapped fields are auto-detected
        from common column names. A column of ``None`` turns detection of a field off.
    crs : str, optional
        Coordinate system of the source (``wgs84``, ``gcj02``, ``bd09``). Default: named
        by the coordinate columns (``lng_gcj02``), else ``wgs84``.
    defaults : mapping, optional
        Field -> value for rows where the column is empty or unmapped.
    id_prefix : str
        Put before every id. Without an id column, ids are the prefix plus 10 hex digits
        of a hash of the normalised name and address (``-2``, ``-3``... on repeats).
    amenity_words : mapping, optional
        Extra source word -> amenity (``None`` to ignore a word on purpose).
    guessed : iterable of str
        Properties marked guessed on every row.
    guessed_when : iterable of GuessedWhen
        Properties marked guessed on rows whose provenance column holds given values.
    rules : iterable of Rule
        Values inferred from a column's text; they are marked guessed.
    recode : mapping, optional
        Field -> {source value -> registry value}.
    meta : mapping, optional
        Top-level members of :meth:`ImportResult.document`.
    sheet, encoding, delimiter, header_row
        How to read the source; see :class:`ImportSpec`.
    reject_outliers : bool
        Reject rows far from all the others (``far_outlier``).
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` every 5,000 rows.

    Returns
    -------
    ImportResult

    Raises
    ------
    InvalidInputError
        The source is unusable: missing, unreadable, or without a name/lon/lat column
        (the message lists the columns it has); or an option is invalid.
    """
    spec = ImportSpec(
        mapping=dict(mapping or {}),
        crs=crs,
        defaults=dict(defaults or {}),
        id_prefix=id_prefix,
        amenity_words=dict(amenity_words or {}),
        guessed=list(guessed),
        guessed_when=list(guessed_when),
        rules=list(rules),
        recode={k: dict(v) for k, v in (recode or {}).items()},
        meta=dict(meta or {}),
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        reject_outliers=reject_outliers,
    )
    return run_import(path, spec, progress=progress)


def run_import(
    path: str | Path,
    spec: ImportSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = 5000,
) -> ImportResult:
    """Import stations from *path* as described by *spec*.

    Parameters
    ----------
    path : str or Path
        The source file.
    spec : ImportSpec
        How to read it (e.g. from :func:`load_spec`).
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` every ``progress_every`` rows and
        once at the end.
    progress_every : int
        Rows between two progress calls.

    Returns
    -------
    ImportResult
        Accepted features (they pass :func:`~yizhan.stations.validate.validate_document`
        with no error), rejected rows and notes.

    Raises
    ------
    InvalidInputError
        The source or the spec is unusable.
    """
    spec.check()
    p = Path(path)
    table = read_table(p, spec)
    hours = spec.hours.resolve(table.columns) if spec.hours is not None else None
    col_spec = spec
    if hours is not None:  # the [hours] columns build opening_hours: detect no other column
        col_spec = replace(
            spec, mapping={"opening_hours": None, "opening_hours_text": None, **spec.mapping}
        )
    columns_used, auto, col_notes = resolve_columns(table, col_spec)
    notes: list[Note] = [*table.notes, *col_notes]
    for g in spec.guessed_when:
        if g.column not in table.columns:
            raise InvalidInputError(
                "guessed_when",
                f"no column {g.column!r}; columns: {', '.join(map(repr, table.columns))}",
            )
    for r in spec.rules:
        if r.column not in table.columns:
            raise InvalidInputError(
                "rule", f"no column {r.column!r}; columns: {', '.join(map(repr, table.columns))}"
            )

    drop_unfit_auto_columns(table, spec, columns_used, auto, notes)
    crs = decide_crs(spec, columns_used, notes)
    importer = RowImporter(spec, columns_used, table.format, hours)
    rejected: list[Rejected] = []
    candidates: list[Candidate] = []
    total = len(table.rows)
    for done, row in enumerate(table.rows, start=1):
        out = importer.row(row, notes)
        if isinstance(out, Rejected):
            rejected.append(out)
        else:
            candidates.append(out)
        if progress is not None and done % progress_every == 0:
            progress(done, total)
    if progress is not None and (total == 0 or total % progress_every):
        progress(total, total)

    candidates = _convert_positions(candidates, crs)
    candidates = _region_checks(candidates, rejected, spec.reject_outliers)
    candidates = _drop_duplicate_ids(candidates, rejected)
    features = _validated(candidates, rejected, notes, table.format)

    rejected.sort(key=lambda r: r.row)
    notes.sort(key=lambda n: -1 if n.row is None else n.row)
    return ImportResult(
        source=str(p),
        format=table.format,
        features=features,
        rejected=rejected,
        notes=notes,
        columns_used=columns_used,
        auto_detected=auto,
        columns=table.columns,
        crs=crs,
        encoding=table.encoding,
        n_rows=len(table.rows),
        n_blank=table.n_blank,
        meta=dict(spec.meta),
        provenance_columns=list(
            dict.fromkeys([*(g.column for g in spec.guessed_when), *(r.column for r in spec.rules)])
        ),
        hours_columns=[] if hours is None else hours.columns,
        hours_format=None if hours is None else hours.spec.format,
    )


def _convert_positions(cands: list[Candidate], crs: str) -> list[Candidate]:
    if crs == "wgs84" or not cands:
        return cands
    lon, lat = transform([c.lon for c in cands], [c.lat for c in cands], crs, "wgs84")
    for c, x, y in zip(cands, lon.tolist(), lat.tolist(), strict=True):
        c.lon = round(float(x), COORD_DECIMALS)
        c.lat = round(float(y), COORD_DECIMALS)
    return cands


def _region_checks(
    cands: list[Candidate], rejected: list[Rejected], outliers: bool
) -> list[Candidate]:
    if len(cands) < 3:
        return cands
    lon = np.array([c.lon for c in cands], dtype=np.float64)
    lat = np.array([c.lat for c in cands], dtype=np.float64)
    bad: dict[int, Rejected] = {}
    for j in swapped_positions(lon, lat).tolist():
        c = cands[j]
        bad[j] = Rejected(
            c.row.number,
            "lon,lat",
            "looks_swapped",
            c.raw,
            f"[{c.lon:g}, {c.lat:g}] is far from the other rows but [{c.lat:g}, {c.lon:g}] is "
            "among them: the lon and lat values look swapped",
            line=c.row.line,
        )
    if outliers:
        keep = np.array([j not in bad for j in range(len(cands))])
        if keep.sum() >= 3:
            c_lon, c_lat = float(np.median(lon[keep])), float(np.median(lat[keep]))
            d = haversine_m(lon, lat, c_lon, c_lat)
            typical = float(np.median(d[keep]))
            limit = max(OUTLIER_FACTOR * typical, OUTLIER_MIN_M)
            for j in np.flatnonzero(keep & (d > limit)).tolist():
                c = cands[j]
                bad[j] = Rejected(
                    c.row.number,
                    "lon,lat",
                    "far_outlier",
                    c.raw,
                    f"[{c.lon:g}, {c.lat:g}] is {d[j] / 1000:,.0f} km from the median position of "
                    f"the rows (typically {typical / 1000:,.0f} km): wrong coordinates?",
                    line=c.row.line,
                )
    rejected.extend(bad.values())
    return [c for j, c in enumerate(cands) if j not in bad]


def _drop_duplicate_ids(cands: list[Candidate], rejected: list[Rejected]) -> list[Candidate]:
    first: dict[str, int] = {}
    out: list[Candidate] = []
    for c in cands:
        if c.fid in first:
            rejected.append(
                Rejected(
                    c.row.number,
                    "id",
                    "duplicate_id",
                    c.fid,
                    f"id {c.fid!r} was already used by row {first[c.fid]}",
                    line=c.row.line,
                )
            )
            continue
        first[c.fid] = c.row.number
        out.append(c)
    return out


def _feature(c: Candidate) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": c.fid,
        "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
        "properties": c.props,
    }


def _validated(
    cands: list[Candidate], rejected: list[Rejected], notes: list[Note], fmt: str
) -> list[dict[str, Any]]:
    """Validate the candidates as a registry; reject rows with errors, note warnings."""
    for _ in range(3):
        features = [_feature(c) for c in cands]
        report = validate_document({"type": "FeatureCollection", "features": features})
        bad: set[int] = set()
        for p in report.errors:
            if p.index is None:
                raise InvalidInputError("import", f"the result does not validate: {p.format()}")
            if p.index in bad:
                continue
            bad.add(p.index)
            fld = (p.field or "").removeprefix("properties.") or None
            c = cands[p.index]
            value = c.props.get(fld.split(".")[0]) if fld else None
            rejected.append(
                Rejected(
                    c.row.number,
                    fld,
                    "invalid_value",
                    None if value is None else str(value),
                    p.message,
                    line=c.row.line,
                )
            )
        if not bad:
            break
        cands = [c for j, c in enumerate(cands) if j not in bad]
    else:
        raise InvalidInputError("import", "the result does not validate after removing bad rows")
    unit = "feature" if fmt == "geojson" else "row"
    rows = [c.row.number for c in cands]
    for w in report.warnings:
        if w.index is None:
            continue
        msg = re.sub(
            r"feature (\d+) \(id '[^']*'\)", lambda m: f"{unit} {rows[int(m.group(1))]}", w.message
        )
        kind = "likely_duplicate" if "duplicate" in w.message else "source"
        notes.append(Note(rows[w.index], w.field, kind, None, msg))
    return features
