"""The ``[hours]`` options: build ``opening_hours`` from several columns of a source.

:class:`HoursSpec` holds the options (``[hours]`` in a mapping file, ``--hours-*`` on
the command line) and checks them; :meth:`HoursSpec.resolve` binds them to one
source's columns as an :class:`HoursReader`, which converts each row with the
converters of :mod:`~yizhan.stations.importing.hours_columns` and
:mod:`~yizhan.stations.importing.hours_periods` and shows the cells it read as one
text (kept as ``opening_hours_text``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from yizhan.errors import InvalidInputError
from yizhan.stations.importing.hours_columns import (
    MOIS_COLUMNS,
    DayColumns,
    hours_from_day_columns,
    hours_from_weekday_weekend,
)
from yizhan.stations.importing.hours_periods import hours_from_period_table
from yizhan.stations.importing.hours_result import HoursResult
from yizhan.stations.importing.values import WHITESPACE, scalar_text

#: Shapes of hours spread over several columns (``[hours] format`` / ``--hours-format``).
HOURS_FORMATS: Final = ("day_columns", "weekday_weekend", "period_table")

#: Column of the ``period_table`` format unless ``table`` names another (the Barcelona
#: climate-shelter records' ``[[period, days, hours], ...]`` field).
PERIOD_TABLE_COLUMN: Final = "opening_hours_raw"

#: Day names put into ``{day}`` of the ``day_columns`` patterns unless ``days`` is given.
DEFAULT_DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Columns of the ``weekday_weekend`` format: role -> default columns, the first one the
#: source has is used (the MOIS heat-shelter column names, then their Korean labels).
WEEKDAY_WEEKEND_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "weekday_begin": (MOIS_COLUMNS["weekday_begin"], "평일운영시작시간"),
    "weekday_end": (MOIS_COLUMNS["weekday_end"], "평일운영종료시간"),
    "weekend_begin": (MOIS_COLUMNS["weekend_begin"], "주말휴일운영시작시간"),
    "weekend_end": (MOIS_COLUMNS["weekend_end"], "주말휴일운영종료시간"),
    "weekend_open": (MOIS_COLUMNS["weekend_open"], "점검사항주말휴일개방여부"),
    "night_open": (MOIS_COLUMNS["night_open"], "점검사항야간개방여부"),
}
#: Roles that may be absent from the source (the converter takes them as optional).
_OPTIONAL_ROLES: Final = frozenset({"weekend_open", "night_open"})


@dataclass
class HoursSpec:
    """How ``opening_hours`` is built from several columns (``[hours]``, ``--hours-*``).

    Attributes
    ----------
    format : {"day_columns", "weekday_weekend", "period_table"}
        ``day_columns``: an open and a close column per weekday (``mon_open``,
        ``mon_close``, ...); ``weekday_weekend``: weekday and weekend/holiday begin and
        end times written ``HHMM`` (Korea's MOIS heat-shelter schema); ``period_table``:
        one column holding a list of ``[period, days, hours]`` rows in Catalan or Spanish
        (Barcelona's climate shelters, read by
        :func:`~yizhan.stations.importing.hours_periods.hours_from_period_table`).
    open, close : str
        ``day_columns``: column name patterns in which ``{day}`` is replaced by each
        of ``days`` (``"{day}Open"`` reads ``monOpen``).
    days : tuple of str
        ``day_columns``: the seven names put into ``{day}``, Monday first.
    blank : {"unknown", "closed"}
        ``day_columns``: what a day whose two cells are blank means.
    columns : dict
        ``weekday_weekend``: role (``weekday_begin``, ``weekday_end``,
        ``weekend_begin``, ``weekend_end``, ``weekend_open``, ``night_open``) -> column;
        a role not given uses the first of :data:`WEEKDAY_WEEKEND_COLUMNS` the source has.
        ``period_table``: ``{"table": COLUMN}`` (default :data:`PERIOD_TABLE_COLUMN`).
    """

    format: str
    open: str = "{day}_open"
    close: str = "{day}_close"
    days: tuple[str, ...] = DEFAULT_DAY_NAMES
    blank: str = "unknown"
    columns: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Check the options that do not depend on the source.

        Raises
        ------
        InvalidInputError
            Naming the option (``hours.format``, ``hours.days``, ...) and what is wrong.
        """
        if self.format not in HOURS_FORMATS:
            raise InvalidInputError(
                "hours.format",
                f"Expected one of {', '.join(HOURS_FORMATS)}, got {self.format!r}",
            )
        if self.blank not in ("unknown", "closed"):
            raise InvalidInputError(
                "hours.blank", f"Expected unknown or closed, got {self.blank!r}"
            )
        if self.format == "day_columns":
            if self.columns:
                raise InvalidInputError(
                    "hours.columns",
                    f"{', '.join(self.columns)}: only for format weekday_weekend; "
                    "day_columns takes open, close, days and blank",
                )
            for key, pattern in (("open", self.open), ("close", self.close)):
                if "{day}" not in pattern:
                    raise InvalidInputError(
                        f"hours.{key}", f"Expected a pattern with {{day}}, got {pattern!r}"
                    )
                try:
                    pattern.format(day="mon")
                except (IndexError, KeyError, ValueError):
                    raise InvalidInputError(
                        f"hours.{key}", f"Expected a pattern with only {{day}}, got {pattern!r}"
                    ) from None
            names = [d.strip() for d in self.days]
            if len(names) != 7 or not all(names) or len(set(names)) != 7:
                raise InvalidInputError(
                    "hours.days",
                    f"Expected 7 different day names, Monday first, got {list(self.days)!r}",
                )
            self.days = tuple(names)
        else:
            other = "weekday_weekend" if self.format == "weekday_weekend" else "period_table"
            roles = tuple(WEEKDAY_WEEKEND_COLUMNS) if other == "weekday_weekend" else ("table",)
            changed = [
                k
                for k, default in (
                    ("open", "{day}_open"),
                    ("close", "{day}_close"),
                    ("days", DEFAULT_DAY_NAMES),
                    ("blank", "unknown"),
                )
                if getattr(self, k) != default
            ]
            if changed:
                raise InvalidInputError(
                    f"hours.{changed[0]}",
                    f"only for format day_columns; {other} takes the columns " + ", ".join(roles),
                )
            for role, column in self.columns.items():
                if role not in roles:
                    raise InvalidInputError(
                        "hours.columns",
                        f"Expected one of {', '.join(roles)}, got {role!r}",
                    )
                if not column.strip():
                    raise InvalidInputError(f"hours.{role}", "empty column name")

    def resolve(self, columns: Sequence[str]) -> HoursReader:
        """The reader of one source's rows.

        Raises
        ------
        InvalidInputError
            A column the options name (or, for weekday_weekend, a required role's
            default) is not in the source; the message lists the source's columns.
        """
        have = f"columns: {', '.join(map(repr, columns))}"
        if self.format == "day_columns":
            spec = DayColumns.pattern(
                self.open, self.close, self.days, "closed" if self.blank == "closed" else "unknown"
            )
            missing = [c for pair in spec.columns.values() for c in pair if c not in columns]
            if missing:
                raise InvalidInputError(
                    "hours.open/close",
                    f"no column {', '.join(map(repr, missing))} in the source "
                    f"(patterns {self.open!r}/{self.close!r}, days {','.join(self.days)}); {have}",
                )
            return HoursReader(self, spec, {})
        if self.format == "period_table":
            col = self.columns.get("table", PERIOD_TABLE_COLUMN)
            if col not in columns:
                raise InvalidInputError(
                    "hours.table",
                    f"no column {col!r} in the source; name it with --hours-column "
                    f"table=COLUMN; {have}",
                )
            return HoursReader(self, None, {"table": col})
        chosen: dict[str, str] = {}
        for role, defaults in WEEKDAY_WEEKEND_COLUMNS.items():
            if role in self.columns:
                col = self.columns[role]
                if col not in columns:
                    raise InvalidInputError(
                        f"hours.{role}", f"no column {col!r} in the source; {have}"
                    )
                chosen[role] = col
                continue
            found = next((c for c in defaults if c in columns), None)
            if found is not None:
                chosen[role] = found
            elif role not in _OPTIONAL_ROLES:
                raise InvalidInputError(
                    f"hours.{role}",
                    f"no column given and none of {', '.join(map(repr, defaults))} in the "
                    f"source; name it with --hours-column {role}=COLUMN; {have}",
                )
        return HoursReader(self, None, chosen)


_WW_LABELS: Final = {
    "weekday": ("weekday_begin", "weekday_end"),
    "weekend/holiday": ("weekend_begin", "weekend_end"),
}


@dataclass
class HoursReader:
    """:class:`HoursSpec` bound to the columns of one source."""

    spec: HoursSpec
    days: DayColumns | None
    roles: dict[str, str]

    @property
    def columns(self) -> list[str]:
        if self.days is not None:
            return [c for pair in self.days.columns.values() for c in pair]
        return list(self.roles.values())

    def convert(self, values: Mapping[str, Any]) -> tuple[HoursResult, str | None]:
        """The converted hours of a row and its cells as one readable text (``None``: all blank)."""

        def cell(col: str | None) -> str:
            return "" if col is None else (scalar_text(values.get(col)) or "")

        if self.spec.format == "period_table":
            return _period_table(self.roles["table"], values.get(self.roles["table"]))
        if self.days is not None:
            parts = []
            for name, (o_col, c_col) in zip(
                self.spec.days, self.days.columns.values(), strict=True
            ):
                o, c = cell(o_col), cell(c_col)
                if not o and not c:
                    parts.append(f"{name} blank")
                elif o.casefold() == c.casefold():
                    parts.append(f"{name} {o}")
                else:
                    parts.append(f"{name} {o or 'blank'}-{c or 'blank'}")
            texts = {cell(c) for c in self.columns}
            text = "; ".join(parts) if texts - {""} else None
            row = {c: cell(c) for c in self.columns}
            return hours_from_day_columns(row, self.days), text
        got = {role: cell(self.roles.get(role)) for role in WEEKDAY_WEEKEND_COLUMNS}
        parts = []
        for label, (b, e) in _WW_LABELS.items():
            if got[b] or got[e]:
                parts.append(f"{label} {got[b] or 'blank'}-{got[e] or 'blank'}")
            else:
                parts.append(f"{label} blank")
        if got["weekend_open"]:
            parts.append(f"weekend/holiday open {got['weekend_open']}")
        if got["night_open"]:
            parts.append(f"night open {got['night_open']}")
        result = hours_from_weekday_weekend(
            got["weekday_begin"],
            got["weekday_end"],
            got["weekend_begin"],
            got["weekend_end"],
            got["weekend_open"],
            got["night_open"],
        )
        return result, ("; ".join(parts) if any(got.values()) else None)


def _period_table(column: str, value: Any) -> tuple[HoursResult, str | None]:
    """``period_table``: a cell holding ``[[period, days, hours], ...]`` (a list, or its
    JSON text), converted and shown as ``period | days | hours; ...``."""
    if isinstance(value, str) and value.strip().startswith("["):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(value)
    if value is None or value == [] or (isinstance(value, str) and scalar_text(value) is None):
        return HoursResult(None, "unknown", [], [f"{column} is empty: hours unknown"]), None
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        text = scalar_text(value if isinstance(value, str) else str(value), collapse=False)
        problem = f"{column}: Expected a list of [period, days, hours] rows, got {text!r}"
        return HoursResult(None, "unknown", [problem], []), text
    rows = [["" if c is None else WHITESPACE.sub(" ", str(c)).strip() for c in r] for r in value]
    text = "; ".join(" | ".join(r) for r in rows)
    if not text.replace("|", "").replace(";", "").strip():
        return HoursResult(None, "unknown", [], [f"{column} is empty: hours unknown"]), None
    return hours_from_period_table(rows), text
