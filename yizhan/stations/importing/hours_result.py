"""What every hours converter returns, and the clock and day helpers they share.

:class:`HoursResult` says what the hours are (``opening_hours``), what that means
overall (``state``: ``ok``, ``unknown`` or ``closed``), what could not be read
(``problems``) and which interpretations were made (``notes``).
:func:`result_from_rules` builds one from OSM rules: when any part could not be read
the whole result is unknown, so that a station is never shown open on the strength of
half a timetable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from yizhan.stations.hours import hours_error

#: OSM day codes, Monday first.
DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")

HoursState = Literal["ok", "unknown", "closed"]


@dataclass(frozen=True)
class HoursResult:
    """Hours converted from a source.

    Attributes
    ----------
    opening_hours : str or None
        OSM syntax; ``None`` when the hours are unknown.
    state : {"ok", "unknown", "closed"}
        ``closed``: the source says never open (``opening_hours`` is ``"off"``).
    problems : list of str
        What could not be read (each names the cell or column and its text).
    notes : list of str
        Interpretations made (a blank read as unknown, a midnight crossing, ...).
    """

    opening_hours: str | None
    state: HoursState
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def result_from_rules(rules: list[str], problems: list[str], notes: list[str]) -> HoursResult:
    """The result of OSM rules: unknown when anything could not be read or every rule is
    ``unknown``, closed when every rule is ``off``, else the rules joined (checked to parse)."""
    if problems:
        return HoursResult(None, "unknown", problems, notes)
    if not rules or all(r.endswith(" unknown") or r == "unknown" for r in rules):
        return HoursResult(None, "unknown", problems, notes)
    if all(r.endswith(" off") or r == "off" for r in rules):
        return HoursResult("off", "closed", problems, notes)
    expr = "; ".join(rules)
    err = hours_error(expr)
    if err:  # a converter bug must not produce an invalid registry
        return HoursResult(None, "unknown", [f"converted hours do not parse: {err}"], notes)
    return HoursResult(expr, "ok", problems, notes)


_CLOCK = re.compile(r"^(\d{1,2})(?:[:.hH]?(\d{2}))?$")
_HHMM = re.compile(r"^(\d{1,2})(\d{2})$")


def parse_clock(text: str) -> int | None:
    """Minutes after midnight of ``0900``, ``900``, ``09:00``, ``9.30``, ``9`` or ``2400``.

    Returns ``None`` when *text* is not a clock time (hours above 24, minutes above 59).
    """
    s = text.strip()
    m = _HHMM.match(s) if ":" not in s and "." not in s else None
    if m is None:
        m = _CLOCK.match(s)
    if m is None:
        return None
    h, mm = int(m.group(1)), int(m.group(2) or 0)
    if h > 24 or mm > 59 or (h == 24 and mm):
        return None
    return h * 60 + mm


def fmt_clock(minutes: int) -> str:
    """``HH:MM`` of minutes after midnight (1440 is ``24:00``)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def day_groups(days: Sequence[str]) -> str:
    """``Mo-Fr``, ``Mo,We``, ``Sa,Su,PH`` for a list of day codes in week order."""
    idx = sorted(DAYS.index(d) for d in days if d in DAYS)
    parts: list[str] = []
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{DAYS[idx[i]]}-{DAYS[idx[j]]}")
        else:
            parts.extend(DAYS[idx[k]] for k in range(i, j + 1))
        i = j + 1
    if "PH" in days:
        parts.append("PH")
    return ",".join(parts)
