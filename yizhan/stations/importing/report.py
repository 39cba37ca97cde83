"""What an import produced: accepted features, rejected rows and notes.

:class:`Rejected` is one rejected row (a code from :data:`REASONS`), :class:`Note`
something the user must know that did not reject a row (a kind from
:data:`NOTE_KINDS`), :class:`Problem` why a row is rejected before the row's number is
attached, and :class:`ImportResult` the whole outcome with its summary and the report
``--report`` writes (JSON or flat CSV rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

#: Why a row is rejected (code -> explanation).
REASONS: Final[dict[str, str]] = {
    "missing_coordinate": "lon or lat is empty",
    "non_numeric_coordinate": "lon or lat is not a number (e.g. '-1.#IND', text)",
    "not_finite": "lon or lat is NaN or infinite",
    "null_island": "lon and lat are both 0 (a common placeholder for 'unknown')",
    "out_of_range": "lon outside -180..180 or lat outside -90..90",
    "looks_swapped": "the position looks like [lat, lon] instead of [lon, lat]",
    "far_outlier": "more than 1,000 km and five times the typical distance from the median position",
    "not_a_point": "the GeoJSON geometry is not a Point (or a MultiPoint of one position)",
    "invalid_feature": "the GeoJSON feature (or JSON record) is not an object",
    "field_count": "the CSV row has more values than the header has columns",
    "missing_name": "the name is empty",
    "missing_id": "the mapped id column is empty",
    "duplicate_id": "the id was already used by an earlier row",
    "invalid_value": "a value is not allowed for its property (e.g. an unknown category)",
}


#: Kinds of notes: things that did not reject the row but that the user must know.
NOTE_KINDS: Final[dict[str, str]] = {
    "unknown_amenity": "a word in the amenities column maps to no amenity; it was left out",
    "unconverted_hours": "the hours could not be converted to OSM syntax; kept in opening_hours_text",
    "hours_interpreted": "how hours columns were read ([hours]): CALL or blank as unknown, a midnight crossing, ...",
    "masked_phone": "a phone number masked with '*' was dropped",
    "unknown_flag": "an amenity flag column holds neither yes nor no",
    "likely_duplicate": "same normalised name within 10 m of another accepted row",
    "source": "about the source as a whole (encoding, crs, columns)",
}


class Problem(NamedTuple):
    """Why a row is rejected, before it becomes a :class:`Rejected`."""

    reason: str
    field: str | None
    message: str
    value: str | None


@dataclass(frozen=True)
class Rejected:
    """One rejected row.

    Attributes
    ----------
    row : int
        Row number as a spreadsheet shows it (header = row 1) for CSV/XLSX; the 0-based
        feature index for GeoJSON; the 1-based record index for a JSON list of records.
    field : str or None
        The field at fault (``"lon"``, ``"lat"``, ``"lon,lat"``, ``"name"``, ...).
    reason : str
        A code from :data:`REASONS`.
    value : str or None
        The offending value as it appears in the source.
    message : str
        A sentence for humans.
    line : int or None
        For CSV, the line where the record starts when it differs from ``row`` (quoted
        values with line breaks).
    """

    row: int
    field: str | None
    reason: str
    value: str | None
    message: str
    line: int | None = None

    def format(self, unit: str = "row") -> str:
        """``row 20: lon,lat: non_numeric_coordinate: lon '-1.#IND' and lat ... are not numbers``"""
        where = f"{unit} {self.row}" + (f" (line {self.line})" if self.line else "")
        return ": ".join(p for p in (where, self.field, self.reason, self.message) if p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class Note:
    """Something the user must know that did not reject a row (``row`` None: whole file)."""

    row: int | None
    field: str | None
    kind: str
    value: str | None
    message: str

    def format(self, unit: str = "row") -> str:
        """``note: row 46: opening_hours: unconverted_hours: ...``"""
        where = f"{unit} {self.row}" if self.row is not None else None
        return "note: " + ": ".join(p for p in (where, self.field, self.kind, self.message) if p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "field": self.field,
            "kind": self.kind,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class ImportResult:
    """What :func:`run_import` produced.

    Attributes
    ----------
    features : list of dict
        Accepted stations as GeoJSON Features (WGS-84), in source order.
    rejected : list of Rejected
        One entry per rejected row, in row order.
    notes : list of Note
        Unknown amenity words, unconverted hours, dropped masked phones, likely
        duplicates and facts about the source (encoding, detected crs).
    columns_used : dict
        Field -> source column (``"geometry"`` for GeoJSON positions).
    auto_detected : list of str
        Fields whose column was found by its name rather than mapped.
    columns : list of str
        Every column of the source.
    crs : str
        The coordinate system the source was read in.
    provenance_columns : list of str
        Columns read by ``guessed_when`` and ``rules`` (not imported as properties).
    hours_columns : list of str
        Columns read by ``[hours]`` to build ``opening_hours``.
    hours_format : str or None
        The ``[hours]`` format, ``None`` without ``[hours]``.
    """

    source: str
    format: str
    features: list[dict[str, Any]]
    rejected: list[Rejected]
    notes: list[Note]
    columns_used: dict[str, str]
    auto_detected: list[str]
    columns: list[str]
    crs: str
    encoding: str | None = None
    provenance_columns: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_blank: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    hours_columns: list[str] = field(default_factory=list)
    hours_format: str | None = None

    @property
    def row_unit(self) -> str:
        """``"feature"`` for GeoJSON sources, ``"row"`` otherwise."""
        return "feature" if self.format == "geojson" else "row"

    def document(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The registry: a FeatureCollection with the foreign members of ``meta``.

        Parameters
        ----------
        meta : mapping, optional
            Top-level members (``name``, ``attribution``, ``license``...). Defaults to the
            ``meta`` of the import spec.
        """
        members = dict(self.meta if meta is None else meta)
        return {"type": "FeatureCollection", **members, "features": self.features}

    def rejected_counts(self) -> dict[str, int]:
        """Rejected rows per reason, most frequent first."""
        return dict(Counter(r.reason for r in self.rejected).most_common())

    def note_counts(self) -> dict[str, int]:
        """Notes per kind, most frequent first."""
        return dict(Counter(n.kind for n in self.notes).most_common())

    def unknown_words(self) -> dict[str, int]:
        """Unknown amenity words and on how many rows each appeared, most frequent first."""
        return dict(
            Counter(n.value or "" for n in self.notes if n.kind == "unknown_amenity").most_common()
        )

    def guessed_counts(self) -> dict[str, int]:
        """How many accepted features list each property in ``guessed``."""
        c: Counter[str] = Counter()
        for f in self.features:
            c.update(f["properties"].get("guessed", []))
        return dict(sorted(c.items()))

    def summary(self) -> str:
        """One line: rows read, accepted, rejected (per reason) and notes (per kind)."""

        def counts(d: Mapping[str, int]) -> str:
            return " (" + ", ".join(f"{k} {v}" for k, v in d.items()) + ")" if d else ""

        unit = self.row_unit + "s"
        return (
            f"{self.n_rows} {unit} read, {len(self.features)} accepted, "
            f"{len(self.rejected)} rejected{counts(self.rejected_counts())}; "
            f"{len(self.notes)} notes{counts(self.note_counts())}"
        )

    def report(self) -> dict[str, Any]:
        """The full report as a JSON-ready dict (what ``--report FILE.json`` writes)."""
        return {
            "source": self.source,
            "format": self.format,
            "encoding": self.encoding,
            "crs": self.crs,
            "row_unit": self.row_unit,
            "rows": self.n_rows,
            "blank_rows": self.n_blank,
            "accepted": len(self.features),
            "columns": self.columns,
            "columns_used": self.columns_used,
            "auto_detected": self.auto_detected,
            "provenance_columns": self.provenance_columns,
            "hours_format": self.hours_format,
            "hours_columns": self.hours_columns,
            "counts": {"rejected": self.rejected_counts(), "notes": self.note_counts()},
            "rejected": [r.as_dict() for r in self.rejected],
            "notes": [n.as_dict() for n in self.notes],
        }

    def report_rows(self) -> list[dict[str, Any]]:
        """The report as flat rows (what ``--report FILE.csv`` writes)."""
        rows: list[dict[str, Any]] = []
        for r in self.rejected:
            rows.append({"type": "rejected", **r.as_dict()})
        for n in self.notes:
            d = n.as_dict()
            rows.append(
                {
                    "type": "note",
                    "row": d["row"],
                    "line": None,
                    "field": d["field"],
                    "reason": d["kind"],
                    "value": d["value"],
                    "message": d["message"],
                }
            )
        return rows
