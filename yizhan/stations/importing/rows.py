"""One source row -> a candidate feature (properties, id, position) or a rejection.

:class:`RowImporter` reads the mapped cells of a row, applies rules, defaults and
recodes, converts hours and amenities, marks guessed values and gives the row its id;
notes (unknown amenity words, unconverted hours, masked phones ...) are appended as it
goes. Checks across rows (swapped positions, outliers, duplicate ids) come later, in
:mod:`~yizhan.stations.importing.run`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yizhan.stations.importing.amenity_words import AMENITY_SPLIT, parse_amenity_cell
from yizhan.stations.importing.hours_spec import HoursReader
from yizhan.stations.importing.hours_text import convert_hours
from yizhan.stations.importing.readers import Row
from yizhan.stations.importing.report import Note, Problem, Rejected
from yizhan.stations.importing.spec import GUESSABLE, ImportSpec
from yizhan.stations.importing.values import (
    DATE_FIELDS,
    ENUMS,
    TEXT_FIELDS,
    as_int,
    check_position,
    geometry_position,
    is_empty,
    is_masked_phone,
    parse_flag,
    raw_text,
    scalar_text,
    stable_id,
)
from yizhan.stations.models import KNOWN_PROPERTIES
from yizhan.stations.vocab import Amenity, Kind


@dataclass
class Candidate:
    """An accepted row before the checks across rows: its position, id and properties."""

    row: Row
    lon: float
    lat: float
    fid: str
    props: dict[str, Any]
    raw: str = ""  # the position as the source wrote it


class RowImporter:
    """Turns one source row into a candidate feature or a rejection."""

    def __init__(
        self,
        spec: ImportSpec,
        used: Mapping[str, str],
        fmt: str,
        hours: HoursReader | None = None,
    ) -> None:
        self.spec = spec
        self.hours = hours
        self.used = used
        self.fmt = fmt
        self.id_counts: Counter[str] = Counter()
        self.words = spec.amenity_words

    def reject(self, row: Row, problem: Problem) -> Rejected:
        return Rejected(
            row.number, problem.field, problem.reason, problem.value, problem.message, line=row.line
        )

    def invalid(self, row: Row, fld: str, message: str, value: Any) -> Rejected:
        shown = None if value is None else raw_text(value)
        return self.reject(row, Problem("invalid_value", fld, message, shown))

    def cell(self, row: Row, fld: str) -> Any:
        col = self.used.get(fld)
        return None if col is None else row.values.get(col)

    def hours_props(self, row: Row, props: dict[str, Any], notes: list[Note]) -> None:
        """``opening_hours`` and ``opening_hours_text`` from the ``[hours]`` columns."""
        assert self.hours is not None
        result, text = self.hours.convert(row.values)
        if result.opening_hours is not None:
            props["opening_hours"] = result.opening_hours
        if text is not None:
            props["opening_hours_text"] = text
        for problem in result.problems:
            notes.append(
                Note(
                    row.number,
                    "opening_hours",
                    "unconverted_hours",
                    text,
                    f"{problem}; hours unknown, kept in opening_hours_text only",
                )
            )
        for note in result.notes:
            notes.append(Note(row.number, "opening_hours", "hours_interpreted", text, note))

    def row(self, row: Row, notes: list[Note]) -> Candidate | Rejected:
        """The candidate feature of *row*, or its rejection; appends notes."""
        spec = self.spec
        if row.problem is not None:
            return self.reject(row, row.problem)

        # Position.
        if self.fmt == "geojson" and self.used.get("lon") == "geometry":
            raw_pos = geometry_position(row.geometry)
            if isinstance(raw_pos, Problem):
                return self.reject(row, raw_pos)
            lon_raw, lat_raw = raw_pos
        else:
            lon_raw, lat_raw = self.cell(row, "lon"), self.cell(row, "lat")
        pos = check_position(lon_raw, lat_raw)
        if isinstance(pos, Problem):
            return self.reject(row, pos)
        lon, lat = pos

        # Per-row inputs: column values win, then rules (guessed), then defaults.
        inferred: dict[str, Any] = {}
        for rule in spec.rules:
            if rule.matches(scalar_text(row.values.get(rule.column))):
                for f, v in rule.assign.items():
                    inferred.setdefault(f, v)

        props: dict[str, Any] = {}
        guessed: set[str] = set(spec.guessed)
        from_rule: set[str] = set()

        def raw_for(fld: str) -> Any:
            v = self.cell(row, fld)
            if is_empty(v):
                if fld in inferred:
                    from_rule.add(fld)
                    return inferred[fld]
                return spec.defaults.get(fld)
            return v

        fields = [f for f in KNOWN_PROPERTIES if f != "guessed"]
        if self.hours is not None:
            fields = [f for f in fields if f not in ("opening_hours", "opening_hours_text")]
            self.hours_props(row, props, notes)
        for fld in fields:
            raw = raw_for(fld)
            if fld in spec.recode and not isinstance(raw, list | dict):
                t = scalar_text(raw)
                if t is not None and t in spec.recode[fld]:
                    raw = spec.recode[fld][t]
            if is_empty(raw):
                continue
            if fld in TEXT_FIELDS or fld in ENUMS or fld in DATE_FIELDS:
                props[fld] = scalar_text(raw)
            elif fld == "phone":
                text = scalar_text(raw)
                if text is not None and is_masked_phone(text):
                    notes.append(
                        Note(
                            row.number,
                            "phone",
                            "masked_phone",
                            text,
                            f"phone {text!r} is masked; dropped",
                        )
                    )
                    continue
                props[fld] = text
            elif fld == "amenities":
                found, unknown = parse_amenity_cell(raw, self.words)
                for w in unknown:
                    notes.append(
                        Note(
                            row.number,
                            "amenities",
                            "unknown_amenity",
                            w,
                            f"unknown amenity word {w!r}; map it with --amenity-word "
                            f"{w}=AMENITY (or {w}=- to ignore it)",
                        )
                    )
                if found:
                    props[fld] = found
            elif fld == "opening_hours":
                text = scalar_text(raw, collapse=False)
                if text is None:
                    continue
                converted = convert_hours(text)
                if converted is not None:
                    props[fld] = converted
                if converted != text:
                    props["opening_hours_text"] = text
                if converted is None:
                    notes.append(
                        Note(
                            row.number,
                            "opening_hours",
                            "unconverted_hours",
                            text,
                            f"cannot convert {text!r} to OSM opening_hours; "
                            "kept in opening_hours_text only",
                        )
                    )
            elif fld == "opening_hours_text":
                text = scalar_text(raw, collapse=False)
                if text is not None:
                    props[fld] = text
            elif fld == "capacity":
                cap = as_int(raw)
                if cap is None:
                    return self.invalid(
                        row,
                        "capacity",
                        f"Expected a whole number >= 0, got {raw_text(raw)!r}",
                        raw,
                    )
                props[fld] = cap
            elif fld == "external_ids":
                if not isinstance(raw, dict):
                    return self.invalid(
                        row,
                        "external_ids",
                        f"Expected an object of strings, got {raw_text(raw)!r}",
                        raw,
                    )
                props[fld] = {str(k): str(v) for k, v in raw.items() if v is not None}
            if fld in from_rule and fld in props:
                guessed.add(fld)

        # Dotted fields: external_ids.KEY and amenities.AMENITY.
        for fld in self.used:
            head, dot, tail = fld.partition(".")
            if not dot:
                continue
            raw = self.cell(row, fld)
            if head == "external_ids":
                text = scalar_text(raw)
                if text is not None:
                    props.setdefault("external_ids", {})[tail] = text
            elif head == "amenities":
                flag = parse_flag(raw)
                if flag is None:
                    notes.append(
                        Note(
                            row.number,
                            fld,
                            "unknown_flag",
                            raw_text(raw),
                            f"Expected yes/no (1/0, 是/否...), got {raw_text(raw)!r}; "
                            f"{tail} not added",
                        )
                    )
                elif flag and tail not in props.get("amenities", []):
                    props.setdefault("amenities", []).append(tail)
        if "guessed" in self.used:
            gv = self.cell(row, "guessed")
            items = gv if isinstance(gv, list) else AMENITY_SPLIT.split(scalar_text(gv) or "")
            for g in (str(x).strip() for x in items):
                if not g:
                    continue
                if g not in GUESSABLE:
                    return self.invalid(
                        row, "guessed", f"Expected one of {', '.join(GUESSABLE)}, got {g!r}", g
                    )
                guessed.add(g)

        if "amenities" in props:
            order = {a.value: i for i, a in enumerate(Amenity)}
            props["amenities"] = sorted(set(props["amenities"]), key=order.__getitem__)
        props.setdefault("kind", Kind.station.value)

        name = props.get("name")
        if not name:
            return self.reject(
                row,
                Problem(
                    "missing_name", "name", "the name is empty", raw_text(self.cell(row, "name"))
                ),
            )
        for fld in ENUMS:
            v = props.get(fld)
            if v is not None and v not in ENUMS[fld]:
                hint = (
                    f"; recode source values with --recode {fld}:{v}=VALUE" if fld != "kind" else ""
                )
                return self.invalid(
                    row, fld, f"Expected one of {', '.join(ENUMS[fld])}, got {v!r}{hint}", v
                )

        for when in spec.guessed_when:
            if scalar_text(row.values.get(when.column)) in when.values:
                guessed.add(when.field)
        if guessed:
            marks: set[str] = set()
            for g in guessed:
                marks.add(g)
                if g in ("opening_hours", "opening_hours_text"):
                    marks.update(("opening_hours", "opening_hours_text"))
            present = [g for g in GUESSABLE if g in marks and g in props]
            if present:
                props["guessed"] = present

        # Id: the mapped column, else a hash of name and address. An auto-detected id
        # column may have gaps (GeoJSON features without id): those rows get a hash id.
        raw_id = scalar_text(self.cell(row, "id")) if "id" in self.used else None
        if raw_id is not None:
            fid = spec.id_prefix + raw_id
        elif spec.mapping.get("id"):
            return self.reject(
                row,
                Problem("missing_id", "id", "the id is empty", raw_text(self.cell(row, "id"))),
            )
        else:
            base = stable_id(spec.id_prefix, str(name), props.get("address"))
            self.id_counts[base] += 1
            k = self.id_counts[base]
            fid = base if k == 1 else f"{base}-{k}"

        ordered = {k: props[k] for k in KNOWN_PROPERTIES if k in props}
        return Candidate(row, lon, lat, fid, ordered, f"{raw_text(lon_raw)}, {raw_text(lat_raw)}")
