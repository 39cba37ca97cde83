"""Hours from seasonal period tables in Catalan or Spanish (Barcelona's climate shelters).

:func:`hours_from_period_table` reads rows ``[period, days, hours]`` with seasonal
periods, weekday phrases, dates, exceptions and closures and returns a
:class:`~yizhan.stations.importing.hours_result.HoursResult`; any cell it cannot read
makes the whole result unknown and is named in ``problems``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from yizhan.stations.importing.hours_result import (
    DAYS,
    HoursResult,
    day_groups,
    fmt_clock,
    result_from_rules,
)

_MONTHS = {
    "gener": 1,
    "enero": 1,
    "febrer": 2,
    "febrero": 2,
    "marc": 3,
    "marzo": 3,
    "abril": 4,
    "maig": 5,
    "mayo": 5,
    "juny": 6,
    "junio": 6,
    "juliol": 7,
    "juliiol": 7,
    "julio": 7,
    "agost": 8,
    "agosto": 8,
    "setembre": 9,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "novembre": 11,
    "noviembre": 11,
    "desembre": 12,
    "diciembre": 12,
}
_MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = {
    "dilluns": "Mo",
    "lunes": "Mo",
    "dimarts": "Tu",
    "martes": "Tu",
    "dimecres": "We",
    "miercoles": "We",
    "dijous": "Th",
    "jueves": "Th",
    "divendres": "Fr",
    "viernes": "Fr",
    "dissabte": "Sa",
    "dissabtes": "Sa",
    "sabado": "Sa",
    "sabados": "Sa",
    "diumenge": "Su",
    "diumenges": "Su",
    "domingo": "Su",
    "domingos": "Su",
}
_HOLIDAY_WORDS = {"festius", "festiu", "festivos", "festivo"}
_EVERY_DAY = (
    "tots els dies",
    "tots el dies",
    "tots es dies",
    "tors els dies",
    "cada dia",
    "todos los dias",
    "tot els dies",
)
_CLOSED_CELL = {
    "tancat",
    "tancada",
    "cerrado",
    "cerrada",
    "tots els dies tancat",
    "tancat tots els dies",
}
_ALL_YEAR = (
    "horari al llarg de l'any",
    "horari habitual al llarg de l'any",
    "horari habitual",
    "tot l'any",
    "tot l any",
    "todo el ano",
)

_M = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_DM = r"(?:l')?(\d{1,2})\s*(?:de\s+|d')?" + _M
_RANGE_DAYS = re.compile(
    r"^(?:de|del|des de)\s*" + _DM + r"\s+(?:al|a|fins al|fins a)\s*" + _DM + "$"
)
_RANGE_MONTHS = re.compile(r"^(?:de\s+|d')" + _M + r"\s+(?:a|al|fins al|fins a)\s+" + _M + "$")
_MONTH_TO_DAY = re.compile(
    r"^(?:de\s+|d')"
    + _M
    + r"\s+(?:a|al|fins al|fins a)\s+(?:l')?(\d{1,2})\s*(?:de\s+|d')?"
    + _M
    + "$"
)
_ONE_MONTH = re.compile("^" + _M + "$")
_TWO_MONTHS = re.compile("^" + _M + r"\s+(?:i|y)\s+" + _M + "$")
_SEASON = re.compile(r"^(?:estiu|verano|summer)\s+(20\d\d)\s*:?\s*(.*)$")
_SEASON_LABEL = re.compile(r"^horari\s+d'(?:estiu|hivern)\s*:?\s*")
_DATE = re.compile(r"(?:el\s+)?(\d{1,2})\s*(?:de\s+|d')?" + _M)
_TIME_SPAN = re.compile(
    r"(?:de\s+|d')?(\d{1,2})[.:](\d{2})\s*h?\s*a\s+(?:les\s+)?(\d{1,2})[.:](\d{2})\s*h?"
)


def _norm(text: str) -> str:
    """Case- and accent-folded text with one space between words (NBSP, BOM, ZWSP removed)."""
    s = unicodedata.normalize("NFKD", text.replace("\ufeff", " ").replace("\u200b", " "))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = s.replace("\u2019", "'").replace("´", "'").casefold()
    s = re.sub(r"\b([dl])'\s+", r"\1'", s)  # "d' abril" -> "d'abril"
    return " ".join(s.replace("\xa0", " ").split())


def _month_day(month: str, day: str) -> str:
    return f"{_MON[_MONTHS[month] - 1]} {int(day):02d}"


def _period(text: str) -> tuple[str | None, str | None]:
    """``(selector, year)`` of a period cell; selector ``""`` is all year; ``None``: unreadable."""
    s = _norm(text).rstrip(".")
    year: str | None = None
    m = _SEASON.match(s)
    if m:
        year, s = m.group(1), m.group(2).strip()
        if not s:
            return None, year
    s = _SEASON_LABEL.sub("", s).strip()
    if any(s == a for a in _ALL_YEAR) or s.startswith("horari al llarg de l'any"):
        return ("" if year is None else f"{year}"), year
    m = _RANGE_DAYS.match(s)
    if m:
        d1, m1, d2, m2 = m.groups()
        a, b = _month_day(m1, d1), _month_day(m2, d2)
        if year is None:
            return f"{a}-{b}", None
        wraps = (_MONTHS[m2], int(d2)) < (_MONTHS[m1], int(d1))
        return (f"{year} {a}-{int(year) + 1} {b}" if wraps else f"{year} {a}-{b}"), year
    m = _MONTH_TO_DAY.match(s)
    if m:
        m1, d2, m2 = m.groups()
        a, b = f"{_MON[_MONTHS[m1] - 1]} 01", _month_day(m2, d2)
        return (f"{year} {a}-{b}" if year else f"{a}-{b}"), year
    m = _RANGE_MONTHS.match(s)
    if m:
        a, b = (_MON[_MONTHS[x] - 1] for x in m.groups())
        return (f"{year} {a}-{b}" if year else f"{a}-{b}"), year
    m = _ONE_MONTH.match(s)
    if m:
        a = _MON[_MONTHS[m.group(1)] - 1]
        return (f"{year} {a}" if year else a), year
    m = _TWO_MONTHS.match(s)
    if m:
        i, j = (_MONTHS[x] for x in m.groups())
        sel = f"{_MON[i - 1]}-{_MON[j - 1]}" if j == i + 1 else f"{_MON[i - 1]},{_MON[j - 1]}"
        return (f"{year} {sel}" if year else sel), year
    return None, year


def _dates(text: str, year: str | None) -> list[str] | None:
    """``["Jun 23", ...]`` for a list of dates such as ``dimarts 23 de juny`` or
    ``24 y el 31 de diciembre``; ``None`` if *text* is not only dates."""
    s = text
    for w in _WEEKDAYS:
        s = re.sub(rf"\b{w}\b", " ", s)
    out: list[str] = []
    pending: list[str] = []  # day numbers waiting for their month ("6, 13 i 20 de juny")
    rest = s
    for tok in re.finditer(r"(\d{1,2})(?:\s*(?:de\s+|d')?" + _M + ")?", s):
        day, month = tok.group(1), tok.group(2)
        if month is None:
            pending.append(day)
            continue
        for d in (*pending, day):
            out.append(_month_day(month, d))
        pending = []
    if pending or not out:
        return None
    rest = re.sub(r"(\d{1,2})(?:\s*(?:de\s+|d')?" + _M + ")?", " ", rest)
    if re.sub(r"\b(i|y|el|and)\b|[,;:.]", " ", rest).strip():
        return None
    if year:
        out = [f"{year} {d}" for d in out]
    return out


def _weekdays(text: str) -> list[str] | None:
    """Day codes (``Mo``..``Su``, ``PH``) of a weekday phrase; ``None`` if not only that."""
    s = text.strip(" .,:")
    if not s:
        return None
    for every in _EVERY_DAY:
        if s.startswith(every):
            rest = s[len(every) :].strip()
            if rest in ("", "i festius", "y festivos"):
                return [*DAYS, "PH"] if rest else list(DAYS)
            return None
    m = re.match(r"^(?:de\s+)?(\w+)\s+a\s+(\w+)(.*)$", s)
    if m and m.group(1) in _WEEKDAYS and m.group(2) in _WEEKDAYS:
        a, b = DAYS.index(_WEEKDAYS[m.group(1)]), DAYS.index(_WEEKDAYS[m.group(2)])
        days = [DAYS[i] for i in range(a, b + 1)] if a <= b else None
        if days is None:
            return None
        tail = m.group(3).strip(" ,")
        if tail:
            extra = _weekdays(tail.removeprefix("i ").removeprefix("y "))
            if extra is None:
                return None
            days += [d for d in extra if d not in days]
        return days
    days = []
    for tok in re.split(r"\s*,\s*|\s+i\s+|\s+y\s+|\s+", s):
        if not tok:
            continue
        if tok in _WEEKDAYS:
            days.append(_WEEKDAYS[tok])
        elif tok in _HOLIDAY_WORDS:
            days.append("PH")
        else:
            return None
    return days or None


_DUSK = re.compile(
    r"^(?:de\s+|d')(\d{1,2})[.:](\d{2})\s*(?:h|hores|horas)?\s*(?:del mati|de la manana)?\s*"
    r"(?:fins al|hasta el|fins a la)\s+(capvespre|vespre|anochecer|atardecer|posta de sol)$"
)


def _hours_cell(text: str) -> str | None:
    """``09:30-13:30,15:30-20:00``, ``off``, ``00:00-24:00`` or ``08:00-sunset``; ``None`` if unreadable."""
    s = _norm(text)
    if s in _CLOSED_CELL or re.match(r"^(tancat|tancada|cerrado|cerrada)\b", s):
        return "off"
    if s in ("24 hores", "24 horas", "obert 24 hores", "abierto 24 horas", "24 h", "24h"):
        return "00:00-24:00"
    m = _DUSK.match(s)
    if m:
        return f"{int(m.group(1)):02d}:{m.group(2)}-sunset"
    spans = []
    pos = 0
    for m in _TIME_SPAN.finditer(s):
        if re.sub(r"\b(i|y)\b|[,;]", "", s[pos : m.start()]).strip():
            return None
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
            return None
        a, b = h1 * 60 + m1, h2 * 60 + m2
        if b == 0:
            b = 1440
        spans.append(f"{fmt_clock(a)}-{fmt_clock(b)}")
        pos = m.end()
    if not spans or re.sub(r"[,;.]", "", s[pos:]).strip():
        return None
    return ",".join(spans)


_EXCEPT = re.compile(r"\s*\b(excepte|excepto|tancat|cerrado|tancada)\b\s*:?\s*")


def _days_cell(text: str, year: str | None) -> tuple[list[str], list[str], bool, list[str]] | None:
    """``(weekday selectors, off-date selectors, closed, notes)`` of a days cell, ``None`` if unreadable.

    Selectors are OSM weekday/date selectors to which the row's hours apply; the off
    selectors are dates the row's days are closed (``excepte ...``, ``Tancat ...``).
    """
    notes: list[str] = []
    s = _norm(text)
    paren = re.findall(r"\(([^)]*)\)", s)
    if paren:
        notes.append(f"ignored the remark {'; '.join(paren)!r}")
        s = re.sub(r"\([^)]*\)", " ", s)
        s = " ".join(s.split())
    if s in _CLOSED_CELL:
        return [], [], True, notes
    # "Domingo Festivos cerrado": closed on holidays.
    s = re.sub(r"\b(?:i |y )?(festius|festivos)\s+(cerrado|tancat)$", " excepte festius", s)
    if ":" in s and _DATE.search(s.split(":", 1)[1]):  # "La Nit dels Museus 2026: 16 de maig"
        label, s = s.split(":", 1)
        y = re.search(r"\b(20\d\d)\b", label)
        year = y.group(1) if y else year
        notes.append(f"special day {label.strip()!r}")
        s = s.strip()
    pieces = _EXCEPT.split(s)
    main, offs = pieces[0].strip(" .,"), []
    for k in range(1, len(pieces) - 1, 2):
        what = pieces[k + 1].strip(" .,")
        if what in _HOLIDAY_WORDS:
            offs.append("PH")
            continue
        dates = _dates(what, year)
        if dates is None:
            return None
        offs.append(",".join(dates))
    if not main:
        return None
    days = _weekdays(main)
    if days is not None:
        return [day_groups(days)], offs, False, notes
    # Weekdays then extra dates: "de dilluns a dijous, 20 diciembre, 2 enero i 3 enero"
    head, _, tail = main.partition(",")
    days = _weekdays(head)
    dates = _dates(tail, year) if tail else None
    if days is not None and dates is not None:
        return [day_groups(days), ",".join(dates)], offs, False, notes
    dates = _dates(main, year)
    if dates is not None:
        return [",".join(dates)], offs, False, notes
    span, span_year = _period(main)  # a date range in the days column: "Del 25 juny al 30 de juny"
    if span and span_year is None and span[:3] in _MON:
        return [f"{year} {span}" if year else span], offs, False, notes
    return None


def _is_dated(selector: str) -> bool:
    """Whether an OSM selector starts with a year or a month (not a weekday)."""
    return selector[:1].isdigit() or selector[:3] in _MON


def hours_from_period_table(rows: Sequence[Sequence[str]]) -> HoursResult:
    """Hours from a table of ``[period, days, hours]`` rows in Catalan or Spanish.

    Each period (``De l'1 Agosto al 31 Agosto``, ``De setembre a juliol``, ``Estiu 2026
    Del 24 juny al 31 juliol``, ``Horari al llarg de l'any``; blank: the period above)
    becomes a date selector; within it, the listed days get their hours and every other
    day is closed (``<period> off`` comes first). Days are weekday phrases (``De dilluns
    a divendres``, ``Diumenge i festius``), dates (``Dimarts 23 de juny``), or ``Tancat``;
    ``excepte`` / ``Tancat`` dates close the row's days on those dates. Blank days repeat
    the row above. Later rows override earlier ones, as in the source tables.

    Parameters
    ----------
    rows : sequence of sequence of str
        ``[period, days, hours]`` (more cells are ignored).

    Returns
    -------
    HoursResult
        ``None`` hours and every unreadable cell in ``problems`` when any cell cannot be
        read.

    Examples
    --------
    >>> hours_from_period_table([
    ...     ["De setembre a juliol", "De dilluns a divendres", "de 09.00 h a 14.00 h"],
    ...     ["Agost", "Tots els dies tancat", ""],
    ... ]).opening_hours
    'Sep-Jul off; Sep-Jul Mo-Fr 09:00-14:00; Aug off'
    """
    problems: list[str] = []
    notes: list[str] = []
    rules: list[str] = []
    period_sel = ""
    period_year: str | None = None
    last_days: list[str] | None = None
    for n, row in enumerate(rows, 1):
        cells = [str(c or "") for c in row[:3]] + [""] * (3 - len(row[:3]))
        period_text, days_text, hours_text = cells
        if _norm(period_text):
            sel, year = _period(period_text)
            if sel is None:
                problems.append(f"row {n}: period {period_text!r}: not understood")
                continue
            period_sel, period_year = sel, year
            if sel:
                rules.append(f"{sel} off")
        if not _norm(days_text):
            if last_days is None:
                problems.append(f"row {n}: no days given and none above")
                continue
            notes.append(f"row {n}: blank days read as the row above's days")
            parsed: tuple[list[str], list[str], bool, list[str]] | None = (last_days, [], False, [])
        else:
            parsed = _days_cell(days_text, period_year)
        if parsed is None:
            problems.append(f"row {n}: days {days_text!r}: not understood")
            continue
        selectors, offs, closed, row_notes = parsed
        notes.extend(f"row {n}: {x}" for x in row_notes)
        if closed:
            if not period_sel:
                rules.append("off")
            # the period's "off" rule already closes it
            last_days = None
            continue
        hours = _hours_cell(hours_text) if _norm(hours_text) else None
        if hours is None:
            what = "no hours given" if not _norm(hours_text) else "not understood"
            problems.append(f"row {n}: hours {hours_text!r}: {what}")
            continue
        last_days = selectors
        for sel in selectors:
            if _is_dated(sel):
                rules.append(f"{sel} {hours}")  # dated selectors carry their own year
            else:
                rules.append(" ".join(x for x in (period_sel, sel, hours) if x))
        for off in offs:
            for sel in selectors:
                if off == "PH":
                    rules.append("PH off")
                elif _is_dated(sel):
                    rules.append(f"{off} off")
                else:
                    rules.append(f"{off} {sel} off")
    if not rules and not problems:
        return HoursResult(None, "unknown", [], ["no rows"])
    return result_from_rules(rules, problems, notes)
