"""Which column of a table feeds which field, and in which coordinate system.

:func:`resolve_columns` applies the mapping (``--map FIELD=COLUMN``) and detects the
other fields by column name; :func:`drop_unfit_auto_columns` un-maps detected columns
whose values do not fit their field; :func:`decide_crs` takes ``--crs`` or the system
the coordinate column names announce.
"""

from __future__ import annotations

from collections.abc import Mapping

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import CRS_NAMES
from yizhan.stations.importing.headers import SYNONYMS, crs_hint, match_level
from yizhan.stations.importing.readers import Table
from yizhan.stations.importing.report import Note
from yizhan.stations.importing.spec import FIELDS, ImportSpec
from yizhan.stations.importing.values import DATE_FIELDS, ENUMS, fits, is_empty, raw_text


def resolve_columns(table: Table, spec: ImportSpec) -> tuple[dict[str, str], list[str], list[Note]]:
    """The column of each field: mapped ones first, the others detected by name.

    Returns
    -------
    columns_used : dict
        Field -> column (``"geometry"`` for GeoJSON positions), in the order of
        :data:`~yizhan.stations.importing.spec.FIELDS`.
    auto_detected : list of str
        Fields whose column was found by its name.
    notes : list of Note
        Fields that several columns could hold.

    Raises
    ------
    InvalidInputError
        A mapped column is not in the source, several columns could hold lon or lat, or
        no column holds name, lon or lat (the message lists the columns).
    """
    columns = table.columns
    notes: list[Note] = []
    used: dict[str, str] = {}
    for fld, col in spec.mapping.items():
        if col is None:
            continue
        if fld in ("lon", "lat") and table.format == "geojson" and col == "geometry":
            used[fld] = "geometry"
            continue
        if col not in columns:
            raise InvalidInputError(
                f"map {fld}",
                f"no column {col!r} in the source; columns: {', '.join(map(repr, columns))}",
            )
        used[fld] = col
    if table.format == "geojson" and ("lon" in used) != ("lat" in used):
        raise InvalidInputError(
            "map", "map both lon and lat to properties, or neither (the geometry is used)"
        )
    taken = set(used.values())
    auto: list[str] = []
    if table.format == "geojson":
        for fld in ("lon", "lat"):
            if fld not in spec.mapping:
                used[fld] = "geometry"
    candidates = [f for f in FIELDS if f not in spec.mapping and f not in used]
    for fld in candidates:
        if fld == "guessed" or (fld in ("lon", "lat") and table.format == "geojson"):
            continue
        levels = [(c, match_level(fld, c)) for c in columns if c not in taken]
        best = max((lv for _, lv in levels), default=0)
        if best == 0:
            continue
        hits = [c for c, lv in levels if lv == best]
        if len(hits) > 1:
            if fld in ("lon", "lat"):
                raise InvalidInputError(
                    "columns",
                    f"several columns could hold {fld}: {', '.join(map(repr, hits))}; "
                    f"choose one with --map {fld}=COLUMN",
                )
            notes.append(
                Note(
                    None,
                    fld,
                    "source",
                    None,
                    f"several columns could hold {fld} ({', '.join(map(repr, hits))}); "
                    f"used {hits[0]!r}",
                )
            )
        used[fld] = hits[0]
        taken.add(hits[0])
        auto.append(fld)
    # Columns named exactly ``external_ids.KEY`` (as `yizhan export` writes them).
    for col in columns:
        if col.startswith("external_ids.") and col not in taken and col not in spec.mapping:
            used[col] = col
            taken.add(col)
            auto.append(col)
    missing = [f for f in ("name", "lon", "lat") if f not in used]
    if missing:
        hints = "; ".join(f"{f}: {', '.join(SYNONYMS[f][:8])}, ..." for f in missing)
        enc = f" (read as {table.encoding})" if table.encoding else ""
        raise InvalidInputError(
            "columns",
            f"no column found for {', '.join(missing)}. Columns in the file{enc}: "
            f"{', '.join(map(repr, columns)) or '(none)'}. Looked for {hints}. "
            f"Map them with --map FIELD=COLUMN.",
        )
    # Keep the order of FIELDS for a stable report.
    ordered = {f: used[f] for f in sorted(used, key=_field_order)}
    return ordered, [f for f in FIELDS if f in auto], notes


def _field_order(name: str) -> tuple[int, str]:
    head = name.split(".", 1)[0]
    return (FIELDS.index(head) if head in FIELDS else len(FIELDS), name)


def drop_unfit_auto_columns(
    table: Table, spec: ImportSpec, used: dict[str, str], auto: list[str], notes: list[Note]
) -> None:
    """Un-map auto-detected columns whose values do not fit their field.

    A column found by its name ("status", "capacity") may hold another vocabulary
    ("Active"); rather than reject every row, it is left out with a note saying how to
    map and recode it. Explicitly mapped columns are never dropped: bad values there
    reject their rows.
    """
    for fld in list(auto):
        if fld not in ENUMS and fld != "capacity" and fld not in DATE_FIELDS:
            continue
        col = used[fld]
        recode = spec.recode.get(fld, {})
        bad = [
            v
            for v in (r.values.get(col) for r in table.rows)
            if not is_empty(v) and not fits(fld, v, recode)
        ]
        if bad:
            examples = ", ".join(repr(raw_text(v)) for v in list(dict.fromkeys(map(str, bad)))[:3])
            notes.append(
                Note(
                    None,
                    fld,
                    "source",
                    col,
                    f"column {col!r} looks like {fld} but {len(bad)} values do not fit "
                    f"(e.g. {examples}); not imported. Map it with --map {fld}={col} and "
                    f"--recode {fld}:VALUE=...",
                )
            )
            del used[fld]
            auto.remove(fld)


def decide_crs(spec: ImportSpec, used: Mapping[str, str], notes: list[Note]) -> str:
    """The coordinate system of the source: ``--crs``, else the one the lon/lat column names
    announce (noted), else WGS-84.

    Raises
    ------
    InvalidInputError
        The lon and lat column names announce different systems.
    """
    hints = {
        h
        for f in ("lon", "lat")
        if used.get(f) not in (None, "geometry")
        for h in [crs_hint(used[f])]
        if h is not None
    }
    if len(hints) > 1:
        raise InvalidInputError(
            "crs",
            f"the lon and lat columns name different coordinate systems ({', '.join(sorted(hints))}); "
            "pass --crs",
        )
    hint = next(iter(hints), None)
    if spec.crs is not None:
        if hint is not None and hint != spec.crs:
            notes.append(
                Note(
                    None,
                    "crs",
                    "source",
                    hint,
                    f"the coordinate columns say {hint} but --crs {spec.crs} was given; using {spec.crs}",
                )
            )
        return spec.crs
    if hint is not None:
        notes.append(
            Note(
                None,
                "crs",
                "source",
                hint,
                f"coordinates read as {hint} (named by columns {used['lon']!r}/{used['lat']!r})",
            )
        )
        return hint
    return CRS_NAMES[0]
