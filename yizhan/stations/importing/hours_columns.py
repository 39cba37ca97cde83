"""Hours spread over columns: one open/close pair per day, or weekday and weekend times.

Pure functions over one row's cells, each returning a
:class:`~yizhan.stations.importing.hours_result.HoursResult`. Nothing unreadable is
guessed: a value such as ``CALL`` or a blank cell stays *unknown* (an ``unknown``
rule, or no hours at all), and ``CLOSED`` stays closed (``off``).

* :func:`hours_from_day_columns` -- one open and one close column per weekday
  (``mon_open``/``mon_close``, Toronto's ``monOpen``/``monClose``), times ``HHMM``,
  ``HH:MM``, ``2400``, words ``CALL``, ``CLOSED``, ``ALL_DAY``, blanks.
* :func:`hours_from_weekday_weekend` -- weekday and weekend/holiday begin and end times
  written ``HHMM`` (Korea's MOIS heat-shelter schema, :func:`hours_from_mois_row`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from yizhan.stations.importing.hours_result import (
    DAYS,
    HoursResult,
    day_groups,
    fmt_clock,
    parse_clock,
    result_from_rules,
)

#: Cell words for a closed day, an unknown day and a day open around the clock.
CLOSED_WORDS = frozenset(
    {
        "closed",
        "close",
        "off",
        "休息",
        "闭馆",
        "不开放",
        "휴무",
        "휴관",
        "tancat",
        "tancada",
        "cerrado",
        "cerrada",
    }
)
UNKNOWN_WORDS = frozenset(
    {"call", "tbd", "tba", "unknown", "varies", "by appointment", "电话咨询", "문의"}
)
ALL_DAY_WORDS = frozenset({"all_day", "all day", "24h", "24 hours", "24小时", "全天"})


def _span(start: int, end: int, notes: list[str], where: str) -> str:
    """``HH:MM-HH:MM``; an end at 00:00 is midnight (24:00); an end before the start crosses it."""
    if end == 0 and start > 0:
        end = 1440
    if end < start:
        notes.append(f"{where}: {fmt_clock(start)}-{fmt_clock(end)} read as crossing midnight")
    return f"{fmt_clock(start)}-{fmt_clock(end)}"


@dataclass(frozen=True)
class DayColumns:
    """Which columns hold each day's opening and closing time.

    Attributes
    ----------
    columns : mapping
        Day code (``Mo`` .. ``Su``, optionally ``PH``) -> (open column, close column).
    blank : {"unknown", "closed"}
        What an empty pair means. Default ``unknown`` (never assume); a row whose every
        day is blank is unknown whatever this says.
    """

    columns: Mapping[str, tuple[str, str]]
    blank: Literal["unknown", "closed"] = "unknown"

    @classmethod
    def pattern(
        cls,
        open_format: str = "{day}_open",
        close_format: str = "{day}_close",
        names: Sequence[str] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
        blank: Literal["unknown", "closed"] = "unknown",
    ) -> DayColumns:
        """Columns named by a pattern, e.g. ``pattern("{day}Open", "{day}Close")`` (Toronto)."""
        if len(names) != 7:
            raise ValueError(f"Expected 7 day names Monday..Sunday, got {list(names)!r}")
        return cls(
            {
                d: (open_format.format(day=n), close_format.format(day=n))
                for d, n in zip(DAYS, names, strict=True)
            },
            blank,
        )


def _word(text: str) -> str:
    return " ".join(text.strip().casefold().replace("-", " ").split()) if text else ""


def _day_value(
    day: str, o_raw: str, c_raw: str, blank: str, problems: list[str], notes: list[str]
) -> str:
    """``HH:MM-HH:MM``, ``off`` or ``unknown`` for one day's pair of cells."""
    o, c = _word(o_raw), _word(c_raw)
    where = f"{day} {o_raw!r}-{c_raw!r}"
    if not o and not c:
        return "off" if blank == "closed" else "unknown"
    words = {o, c} - {""}
    if words <= CLOSED_WORDS:
        return "off"
    if words <= UNKNOWN_WORDS:
        return "unknown"
    if words <= ALL_DAY_WORDS:
        return "00:00-24:00"
    start, end = parse_clock(o), parse_clock(c)
    if start is None or end is None:
        problems.append(f"{where}: not two clock times, CLOSED, CALL or ALL_DAY")
        return "unknown"
    if start == end:
        problems.append(f"{where}: opens and closes at the same time")
        return "unknown"
    return _span(start, end, notes, day)


def _rules_by_value(values: Mapping[str, str]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for d in (*DAYS, "PH"):
        if d in values:
            groups.setdefault(values[d], []).append(d)
    rules = []
    for value, days in groups.items():
        sel = day_groups(days)
        rules.append(f"{sel} {value}")
    # PH last, so that it overrides the weekday rules on holidays.
    rules.sort(key=lambda r: r.split(" ", 1)[0].endswith("PH"))
    return rules


def hours_from_day_columns(row: Mapping[str, str | None], spec: DayColumns) -> HoursResult:
    """Hours from one open and one close column per day.

    Parameters
    ----------
    row : mapping
        Column -> cell text.
    spec : DayColumns
        Which columns, and what a blank pair means.

    Returns
    -------
    HoursResult
        E.g. ``Mo-Th 09:00-20:30; Fr,Sa 09:00-17:00; Su off``. ``CALL`` days become
        ``unknown`` rules; all days ``CALL`` or blank gives ``state="unknown"``; all
        ``CLOSED`` gives ``"off"`` and ``state="closed"``.

    Examples
    --------
    >>> spec = DayColumns.pattern()
    >>> row = {f"{d}_open": "0900" for d in ("mon", "tue", "wed", "thu", "fri")}
    >>> row |= {f"{d}_close": "1700" for d in ("mon", "tue", "wed", "thu", "fri")}
    >>> row |= {"sat_open": "CLOSED", "sat_close": "CLOSED", "sun_open": "", "sun_close": ""}
    >>> hours_from_day_columns(row, spec).opening_hours
    'Mo-Fr 09:00-17:00; Sa off; Su unknown'
    """
    problems: list[str] = []
    notes: list[str] = []
    cells = {
        d: (str(row.get(o) or ""), str(row.get(c) or "")) for d, (o, c) in spec.columns.items()
    }
    if all(not a.strip() and not b.strip() for a, b in cells.values()):
        return HoursResult(None, "unknown", [], ["every day is blank: hours unknown"])
    values = {d: _day_value(d, a, b, spec.blank, problems, notes) for d, (a, b) in cells.items()}
    unknown = [d for d, v in values.items() if v == "unknown"]
    if unknown:
        said = sorted({(cells[d][0].strip() or "blank") for d in unknown})
        notes.append(f"{day_groups(unknown)}: {', '.join(said)} read as unknown")
    return result_from_rules(_rules_by_value(values), problems, notes)


def _flag(text: str | None) -> str:
    return (text or "").strip().upper()


def hours_from_weekday_weekend(
    weekday_begin: str | None,
    weekday_end: str | None,
    weekend_begin: str | None,
    weekend_end: str | None,
    weekend_open: str | None = None,
    night_open: str | None = None,
) -> HoursResult:
    """Hours from weekday and weekend/holiday begin/end times (``HHMM``, ``2400`` = midnight).

    Weekday times apply ``Mo-Fr``; weekend/holiday times apply ``Sa,Su,PH`` (the later
    rule, so a weekday holiday follows the holiday hours).

    Parameters
    ----------
    weekday_begin, weekday_end, weekend_begin, weekend_end : str or None
        ``"0900"``, ``"1800"``, ``"2400"`` or blank.
    weekend_open : str, optional
        ``Y``/``N``: does it open at weekends and on holidays. With blank weekend
        times, ``N`` makes them ``off`` and ``Y`` or blank ``unknown``. Weekend times,
        when given, win over the flag (a conflict is noted).
    night_open : str, optional
        ``Y`` is noted: the source gives no night times.

    Returns
    -------
    HoursResult
        E.g. ``Mo-Fr 09:00-18:00; Sa,Su,PH off``.

    Examples
    --------
    >>> hours_from_weekday_weekend("0900", "1800", "", "", "N").opening_hours
    'Mo-Fr 09:00-18:00; Sa,Su,PH off'
    """
    problems: list[str] = []
    notes: list[str] = []

    def part(label: str, sel: str, b: str | None, e: str | None, flag: str) -> str:
        b, e = (b or "").strip(), (e or "").strip()
        if not b and not e:
            if flag == "N":
                return f"{sel} off"
            if flag == "Y":
                notes.append(f"{label}: open flag Y but no times: hours unknown")
            return f"{sel} unknown"
        start, end = parse_clock(b), parse_clock(e)
        if start is None or end is None or start == end:
            problems.append(f"{label} {b!r}-{e!r}: not two different HHMM times")
            return f"{sel} unknown"
        if flag == "N":
            notes.append(f"{label}: open flag N but times {b}-{e} given: the times are used")
        return f"{sel} {_span(start, end, notes, label)}"

    rules = [
        part("weekday", "Mo-Fr", weekday_begin, weekday_end, ""),
        part("weekend/holiday", "Sa,Su,PH", weekend_begin, weekend_end, _flag(weekend_open)),
    ]
    if _flag(night_open) == "Y":
        notes.append("night opening flag Y: not expressed (the source gives no night times)")
    return result_from_rules(rules, problems, notes)


#: Column names of the MOIS 무더위쉼터 schema.
MOIS_COLUMNS = {
    "weekday_begin": "WKDAY_OPER_BEGIN_TIME",
    "weekday_end": "WKDAY_OPER_END_TIME",
    "weekend_begin": "WKEND_HDAY_OPER_BEGIN_TIME",
    "weekend_end": "WKEND_HDAY_OPER_END_TIME",
    "weekend_open": "CHCK_MATTER_WKEND_HDAY_OPN_AT",
    "night_open": "CHCK_MATTER_NIGHT_OPN_AT",
}


def hours_from_mois_row(row: Mapping[str, str | None]) -> HoursResult:
    """:func:`hours_from_weekday_weekend` on a row of Korea's MOIS heat-shelter table."""
    return hours_from_weekday_weekend(**{k: row.get(c) for k, c in MOIS_COLUMNS.items()})
