"""The planner map's headline: what is covered, of what, by how many stations, when.

Every planner map opens with one box at the top: the covered share within the radius,
how much demand (in its unit: "people aged 65+", "km² of land") is within reach of how
much, how many stations were counted, the radius, and the time the stations were counted
at; then what the demand is. A map without demand says so and how to add some.
The text is composed here, in the map's language; the runtime only shows it
(``yz.headline``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yizhan.maps.i18n import Lang, format_distance, label


def format_amount(value: float, digits: int) -> str:
    """*value* with thousands separators and *digits* decimals: ``1,948,544``, ``197.3``."""
    return f"{value:,.{max(0, int(digits))}f}"


def format_time(when: datetime) -> str:
    """``2026-07-15 13:05 UTC+08:00`` (an aware time; a naive one is shown as it is)."""
    text = when.strftime("%Y-%m-%d %H:%M")
    offset = when.utcoffset()
    if offset is None:
        return text
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{text} UTC{sign}{h:02d}:{m:02d}"


def coverage_headline(
    lang: Lang,
    *,
    stations: int,
    when: datetime,
    radius_m: float | None = None,
    covered_pct: float | None = None,
    covered: float | None = None,
    total: float | None = None,
    what: str | None = None,
    unit: str | None = None,
    digits: int = 0,
    open_at: datetime | None = None,
    add_demand: str | None = None,
    walk: tuple[float, float, str] | None = None,
    circles_pct: float | None = None,
) -> dict[str, Any]:
    """The headline of a planner map.

    Parameters
    ----------
    lang : {"zh", "en"}
        Language.
    stations : int
        Stations (and buses) counted as service.
    when : datetime
        When the map was made (the stations' states and flags are of then).
    radius_m : float, optional
        Coverage radius; with *covered_pct*, *covered*, *total*, *what* and *unit*, the
        coverage figures. Without them the map shows stations only.
    open_at : datetime, optional
        Only stations open then were counted (``--open-at``).
    add_demand : str, optional
        How to add demand, shown on a map without any.
    walk : (minutes, speed_kmh, network), optional
        Coverage is on foot: the title says "within 15 min on foot (4.5 km/h, network
        X)" and, with *circles_pct*, the share within *radius_m* by great circle follows
        for comparison.

    Returns
    -------
    dict
        ``{"title": str, "lines": [str, …], "note": str or None}``.
    """
    time_text = (
        label("hl_open_at", lang, time=format_time(open_at))
        if open_at is not None
        else label("hl_as_of", lang, time=format_time(when))
    )
    n = f"{stations:,}"
    if radius_m is None or covered_pct is None or total is None or covered is None:
        return {
            "title": label("hl_stations_only", lang, n=n),
            "lines": [time_text],
            "note": label("hl_add_demand", lang, how=add_demand) if add_demand else None,
        }
    radius = format_distance(float(radius_m), lang)
    within, reach = radius, label("hl_radius", lang, radius=radius)
    if walk is not None:
        minutes, speed, network = walk
        within = label("hl_walk", lang, minutes=f"{minutes:g}", speed=f"{speed:g}", network=network)
        reach = label("hl_circles", lang, radius=radius, pct=f"{circles_pct or 0.0:.1f}%")
    sep = " · "
    lines = [
        label(
            "hl_reach",
            lang,
            covered=format_amount(covered, digits),
            total=format_amount(total, digits),
            unit=unit or "",
        ),
        sep.join(
            [
                label("hl_stations", lang, n=n),
                reach,
                time_text,
            ]
        ),
    ]
    if what:
        lines.append(label("hl_demand", lang, what=what))
    return {
        "title": label("hl_share", lang, radius=within, pct=f"{covered_pct:.1f}%"),
        "lines": lines,
        "note": None,
    }
