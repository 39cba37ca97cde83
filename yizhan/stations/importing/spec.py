"""How to read one source: :class:`ImportSpec` and the TOML mapping file (:func:`load_spec`).

:data:`FIELDS` are the fields a column can be mapped to; :class:`GuessedWhen` and
:class:`Rule` mark values guessed or infer them from a provenance column. See
``docs/import.md`` for the mapping file format.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import parse_crs
from yizhan.stations.importing.hours_spec import (
    HOURS_FORMATS,
    WEEKDAY_WEEKEND_COLUMNS,
    HoursSpec,
)
from yizhan.stations.importing.values import ENUMS, scalar_text
from yizhan.stations.models import KNOWN_PROPERTIES
from yizhan.stations.vocab import Amenity

#: Fields a column can be mapped to: the registry properties plus ``id``, ``lon`` and
#: ``lat``. ``external_ids.KEY`` (a string per row) and ``amenities.AMENITY`` (a yes/no
#: flag column) are accepted as well.
FIELDS: Final[tuple[str, ...]] = ("id", "lon", "lat", *KNOWN_PROPERTIES)

#: Properties that ``guessed`` may name.
GUESSABLE: Final[tuple[str, ...]] = tuple(
    p for p in KNOWN_PROPERTIES if p not in ("name", "kind", "guessed")
)


@dataclass(frozen=True)
class GuessedWhen:
    """Mark ``field`` guessed on the rows whose ``column`` holds one of ``values``."""

    field: str
    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """Infer values from a column: when ``column`` contains ``contains`` (or equals
    ``equals``), set each field of ``assign``. Values set by a rule are marked guessed;
    a non-empty mapped column for the same field wins over the rule."""

    column: str
    assign: Mapping[str, Any]
    contains: str | None = None
    equals: str | None = None

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.equals is not None:
            return value == self.equals
        return self.contains is not None and self.contains in value


@dataclass
class ImportSpec:
    """Everything that says how to read one source (see ``docs/import.md``).

    Attributes
    ----------
    mapping : dict
        Field -> column. A column of ``None`` (``--map phone=``) turns auto-detection of
        that field off.
    crs : str or None
        ``wgs84``, ``gcj02`` or ``bd09``; ``None``: from the coordinate column names
        (``lng_gcj02``, ``위도(EPSG4326)``), else ``wgs84``.
    defaults : dict
        Field -> value for rows whose column is empty or unmapped (``--set``).
    id_prefix : str
        Put before every id, mapped or generated.
    amenity_words : dict
        Extra words -> amenity; ``None`` ignores a word on purpose.
    guessed : list of str
        Properties marked guessed on every row.
    guessed_when : list of GuessedWhen
        Per-row guessed marks driven by a provenance column.
    rules : list of Rule
        Values inferred from a column's text (marked guessed).
    recode : dict
        Field -> {source value -> registry value}, applied before checking values.
    meta : dict
        Top-level members of the output document.
    sheet, encoding, delimiter, header_row
        How to read the source (XLSX sheet name or 1-based number; CSV encoding and
        delimiter; the row holding the column names).
    reject_outliers : bool
        Reject rows more than 1,000 km from the median position (``far_outlier``).
    hours : HoursSpec or None
        Build ``opening_hours`` from several columns (``[hours]``) instead of one.
    """

    mapping: dict[str, str | None] = field(default_factory=dict)
    crs: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    id_prefix: str = ""
    amenity_words: dict[str, str | None] = field(default_factory=dict)
    guessed: list[str] = field(default_factory=list)
    guessed_when: list[GuessedWhen] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    recode: dict[str, dict[str, str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    header_row: int = 1
    reject_outliers: bool = True
    hours: HoursSpec | None = None

    def check(self) -> None:
        """Check names and values that do not depend on the source.

        Raises
        ------
        InvalidInputError
            Naming the option (``map``, ``set``, ``guessed``, ``crs``...) and what is wrong.
        """
        for f in self.mapping:
            _check_field_name(f, "map")
        for f, v in self.defaults.items():
            _check_field_name(f, "set")
            if f in ("id", "lon", "lat") or f.startswith("amenities."):
                raise InvalidInputError("set", f"{f} cannot have a default value")
            if f == "guessed":
                raise InvalidInputError("set", "use guessed (--guessed FIELD), not set")
            if f in ENUMS:
                _check_enum_default(f, v, self.recode.get(f, {}))
        for f in self.guessed:
            _check_guessable(f, "guessed")
        for g in self.guessed_when:
            _check_guessable(g.field, "guessed_when")
        for r in self.rules:
            for f, v in r.assign.items():
                _check_field_name(f, "rule")
                if f in ("id", "lon", "lat", "name", "kind", "guessed"):
                    raise InvalidInputError("rule", f"a rule cannot set {f}")
                if f in ENUMS:
                    _check_enum_default(f, v, self.recode.get(f, {}))
            if (r.contains is None) == (r.equals is None):
                raise InvalidInputError("rule", "give exactly one of contains or equals")
        for f in self.recode:
            _check_field_name(f, "recode")
        for word, amenity in self.amenity_words.items():
            if not word.strip():
                raise InvalidInputError("amenity_word", "empty word")
            if amenity is not None and amenity not in {a.value for a in Amenity}:
                raise InvalidInputError(
                    "amenity_word",
                    f"Expected one of {', '.join(a.value for a in Amenity)} (or - to ignore "
                    f"the word), got {amenity!r} for {word!r}",
                )
        if self.crs is not None:
            try:
                self.crs = parse_crs(self.crs)
            except ValueError as exc:
                raise InvalidInputError("crs", str(exc)) from None
        for k in self.meta:
            if k in ("type", "features", "crs", "bbox"):
                raise InvalidInputError("meta", f"{k!r} cannot be set as a top-level member")
        if self.header_row < 1:
            raise InvalidInputError(
                "header_row", f"Expected a row number >= 1, got {self.header_row}"
            )
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise InvalidInputError("delimiter", f"Expected one character, got {self.delimiter!r}")
        if self.hours is not None:
            self.hours.check()
            self._check_hours_conflicts()

    def _check_hours_conflicts(self) -> None:
        """``[hours]`` builds opening_hours and opening_hours_text: nothing else may."""
        for fld in ("opening_hours", "opening_hours_text"):
            if self.mapping.get(fld):
                raise InvalidInputError(
                    "hours",
                    f"[hours] / --hours-format builds {fld}, but {fld} is also mapped to the "
                    f"column {self.mapping[fld]!r} (map {fld}); use one or the other",
                )
            if fld in self.defaults:
                raise InvalidInputError(
                    "hours", f"[hours] / --hours-format builds {fld}; it cannot also be set"
                )
            if any(fld in r.assign for r in self.rules):
                raise InvalidInputError(
                    "hours", f"[hours] / --hours-format builds {fld}; a rule cannot set it"
                )


def _check_field_name(name: str, option: str) -> None:
    if name in FIELDS:
        return
    head, dot, tail = name.partition(".")
    if dot and head == "external_ids" and tail:
        return
    if dot and head == "amenities" and tail in {a.value for a in Amenity}:
        return
    raise InvalidInputError(
        option,
        f"Expected one of {', '.join(FIELDS)}, external_ids.KEY or amenities.AMENITY, got {name!r}",
    )


def _check_guessable(name: str, option: str) -> None:
    if name not in GUESSABLE:
        raise InvalidInputError(option, f"Expected one of {', '.join(GUESSABLE)}, got {name!r}")


def _check_enum_default(name: str, value: Any, recode: Mapping[str, str]) -> None:
    text = scalar_text(value)
    if text is None:
        return
    text = recode.get(text, text)
    if text not in ENUMS[name]:
        raise InvalidInputError(name, f"Expected one of {', '.join(ENUMS[name])}, got {text!r}")


_SPEC_KEYS: Final = frozenset(
    {
        "map",
        "crs",
        "set",
        "id_prefix",
        "amenity_words",
        "guessed",
        "guessed_when",
        "rules",
        "recode",
        "meta",
        "sheet",
        "encoding",
        "delimiter",
        "header_row",
        "reject_outliers",
        "hours",
    }
)

_HOURS_KEYS: Final = frozenset(
    {"format", "open", "close", "days", "blank", "table", *WEEKDAY_WEEKEND_COLUMNS}
)


def load_spec(path: str | Path) -> ImportSpec:
    """Read an import mapping file (TOML).

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file. Top-level keys: ``crs``, ``id_prefix``, ``guessed``,
        ``sheet``, ``encoding``, ``delimiter``, ``header_row``, ``reject_outliers``;
        tables ``[map]``, ``[set]``, ``[amenity_words]``, ``[recode.FIELD]``,
        ``[meta]``, ``[hours]`` (``format``; ``open``, ``close``, ``days``, ``blank``
        or the weekday_weekend column roles, or the period_table ``table``);
        arrays of tables ``[[guessed_when]]`` (``field``, ``column``,
        ``value`` or ``values``) and ``[[rules]]`` (``column``, ``contains`` or
        ``equals``, ``set``).

    Returns
    -------
    ImportSpec
        Checked with :meth:`ImportSpec.check`.

    Raises
    ------
    InvalidInputError
        The file cannot be read, is not TOML, or holds an unknown key or a bad value.
    """
    p = Path(path)
    where = str(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InvalidInputError(
            where, f"cannot read the mapping file: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(where, f"the mapping file is not UTF-8: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(where, f"not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise InvalidInputError(
            where, f"unknown key {unknown[0]!r}; expected one of {', '.join(sorted(_SPEC_KEYS))}"
        )

    def table(key: str) -> dict[str, Any]:
        v = data.get(key, {})
        if not isinstance(v, dict):
            raise InvalidInputError(where, f"{key} must be a table, got {type(v).__name__}")
        return v

    def text(key: str, v: Any) -> str:
        if not isinstance(v, str):
            raise InvalidInputError(where, f"{key} must be a string, got {v!r}")
        return v

    def str_list(key: str, v: Any) -> list[str]:
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise InvalidInputError(
                where, f"{key} must be a string or a list of strings, got {v!r}"
            )
        return list(v)

    spec = ImportSpec()
    spec.mapping = {
        text(f"map.{k}", k): (text(f"map.{k}", v) or None) for k, v in table("map").items()
    }
    spec.defaults = dict(table("set"))
    spec.meta = dict(table("meta"))
    spec.amenity_words = {
        k: (None if text(f"amenity_words.{k}", v) in ("", "-") else v)
        for k, v in table("amenity_words").items()
    }
    for fld, values in table("recode").items():
        if not isinstance(values, dict):
            raise InvalidInputError(where, f"recode.{fld} must be a table of source = value")
        spec.recode[fld] = {str(k): text(f"recode.{fld}.{k}", v) for k, v in values.items()}
    if "crs" in data:
        spec.crs = text("crs", data["crs"])
    if "id_prefix" in data:
        spec.id_prefix = text("id_prefix", data["id_prefix"])
    if "guessed" in data:
        spec.guessed = str_list("guessed", data["guessed"])
    for key in ("sheet", "encoding", "delimiter"):
        if key in data:
            v = data[key]
            setattr(spec, key, str(v) if isinstance(v, int) and key == "sheet" else text(key, v))
    if "header_row" in data:
        if not isinstance(data["header_row"], int):
            raise InvalidInputError(
                where, f"header_row must be a number, got {data['header_row']!r}"
            )
        spec.header_row = data["header_row"]
    if "reject_outliers" in data:
        if not isinstance(data["reject_outliers"], bool):
            raise InvalidInputError(where, "reject_outliers must be true or false")
        spec.reject_outliers = data["reject_outliers"]
    if "hours" in data:
        spec.hours = _hours_from_toml(table("hours"), where)
    gw = data.get("guessed_when", [])
    if not isinstance(gw, list):
        raise InvalidInputError(where, "guessed_when must be an array of tables [[guessed_when]]")
    for i, item in enumerate(gw):
        if not isinstance(item, dict) or set(item) - {"field", "column", "value", "values"}:
            raise InvalidInputError(
                where, f"guessed_when[{i}]: expected keys field, column and value (or values)"
            )
        vals = str_list(f"guessed_when[{i}].value", item.get("values", item.get("value")))
        spec.guessed_when.append(
            GuessedWhen(
                text(f"guessed_when[{i}].field", item.get("field")),
                text(f"guessed_when[{i}].column", item.get("column")),
                tuple(vals),
            )
        )
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise InvalidInputError(where, "rules must be an array of tables [[rules]]")
    for i, item in enumerate(rules):
        if not isinstance(item, dict) or set(item) - {"column", "contains", "equals", "set"}:
            raise InvalidInputError(
                where, f"rules[{i}]: expected keys column, contains or equals, set"
            )
        assign = item.get("set")
        if not isinstance(assign, dict) or not assign:
            raise InvalidInputError(where, f"rules[{i}].set must be a table of FIELD = value")
        spec.rules.append(
            Rule(
                column=text(f"rules[{i}].column", item.get("column")),
                assign=dict(assign),
                contains=text(f"rules[{i}].contains", item["contains"])
                if "contains" in item
                else None,
                equals=text(f"rules[{i}].equals", item["equals"]) if "equals" in item else None,
            )
        )
    try:
        spec.check()
    except InvalidInputError as exc:
        raise InvalidInputError(where, str(exc)) from None
    return spec


def _hours_from_toml(data: Mapping[str, Any], where: str) -> HoursSpec:
    unknown = sorted(set(data) - _HOURS_KEYS)
    if unknown:
        raise InvalidInputError(
            where,
            f"hours: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(_HOURS_KEYS))}",
        )
    for k, v in data.items():
        if k != "days" and not isinstance(v, str):
            raise InvalidInputError(where, f"hours.{k} must be a string, got {v!r}")
    if "format" not in data:
        raise InvalidInputError(
            where, f"hours.format is required: one of {', '.join(HOURS_FORMATS)}"
        )
    hours = HoursSpec(format=data["format"])
    for k in ("open", "close", "blank"):
        if k in data:
            setattr(hours, k, data[k])
    if "days" in data:
        days = data["days"]
        if isinstance(days, str):
            days = days.split(",")
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise InvalidInputError(
                where, f'hours.days must be a list of 7 names or "mon,tue,...", got {days!r}'
            )
        hours.days = tuple(days)
    hours.columns = {k: v for k, v in data.items() if k in WEEKDAY_WEEKEND_COLUMNS or k == "table"}
    return hours
