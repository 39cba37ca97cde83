"""Synthetic check-ins for demos and tests — **not real data**.

``yizhan usage generate --days 30 --seed 1`` fills the usage files of a registry with
made-up, reproducible visit counts, so that the usage answers, the maps and the awards
show something meaningful before any worker has checked in. Every generated day is
marked: its rows have the source ``synthetic`` and the month file's meta lists the day
with the generator's parameters; the usage answers report ``synthetic_share``.

The model, per unit (a station, or a stop of a cooling bus) and day, all drawn from a
``numpy.random.default_rng(seed)``:

* the unit's base rate ``r`` (visits per open hour) is log-normal: median
  ``base_per_open_hour`` (× ``bus_factor`` at a bus stop, × the category factor), spread
  ``sigma``; each unit has a daily growth ``g`` ~ Normal(0, ``trend_sd``);
* the expected visits of a day: ``r`` × open hours that day (``assumed_hours`` when the
  hours are unknown) × ``weekend_factor`` on Saturdays and Sundays × the month's heat
  factor (``heat``: more in summer) × ``exp(g · t)`` (t: days from the start);
* the visits are Poisson; they are spread over the open hours by an outdoor-work profile
  (``HOUR_PROFILE``: breaks at 07–08, 11–14 and 17–18) and given a trade with
  probability ``trade_share`` (``TRADE_MIX``).

Days already holding real rows (check-ins or counts) are never overwritten.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from yizhan.errors import InvalidInputError
from yizhan.query.usage import Units, open_between
from yizhan.stations.hours import zone
from yizhan.stations.usage_files import (
    SOURCE_SYNTHETIC,
    TRADES,
    MonthFiles,
    VisitMonths,
    VisitRows,
    load_months,
)

#: Relative visits in each local hour (outdoor workers' breaks).
HOUR_PROFILE: tuple[float, ...] = (
    0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 1.4, 1.0, 1.2, 2.0,
    2.4, 2.2, 1.8, 1.3, 1.2, 1.6, 1.4, 1.0, 0.7, 0.5, 0.3, 0.2,
)  # fmt: skip
#: Share of each trade among check-ins that give one (same order as TRADES).
TRADE_MIX: tuple[float, ...] = (0.22, 0.38, 0.10, 0.10, 0.15, 0.05)
#: Heat factor by month (January first).
HEAT: tuple[float, ...] = (0.8, 0.8, 0.9, 1.0, 1.1, 1.3, 1.5, 1.5, 1.2, 1.0, 0.9, 0.8)
CATEGORY_FACTOR = {
    "union_station": 1.0,
    "bank_outlet": 0.5,
    "cooling_center": 1.3,
    "hydration_point": 0.8,
    "smart_station": 0.9,
    "other": 0.7,
}


@dataclass(frozen=True)
class SynthParams:
    """The generator's parameters (stored with every generated day)."""

    seed: int = 1
    days: int = 30
    base_per_open_hour: float = 1.2
    sigma: float = 0.8
    bus_factor: float = 3.0
    trend_sd: float = 0.01
    weekend_factor: float = 0.75
    assumed_hours: float = 10.0
    trade_share: float = 0.6
    heat: tuple[float, ...] = field(default=HEAT)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heat"] = list(self.heat)
        d["model"] = "yizhan.query.usage_synth (synthetic, not real data)"
        return d


def synthesize(
    units: Units, categories: list[str | None], first: date, params: SynthParams
) -> VisitRows:
    """Synthetic visit rows for *units* over ``params.days`` days from *first*."""
    rng = np.random.default_rng(params.seed)
    n, n_days = len(units), params.days
    if n_days < 1:
        raise InvalidInputError("days", f"Expected 1 or more days, got {n_days}")
    cat = np.asarray([CATEGORY_FACTOR.get(c or "", 0.8) for c in categories])
    base = params.base_per_open_hour * cat * np.where(units.is_bus, params.bus_factor, 1.0)
    rate = base * np.exp(rng.normal(0.0, params.sigma, n))
    growth = rng.normal(0.0, params.trend_sd, n)
    days = [first + timedelta(days=i) for i in range(n_days)]
    prof = np.asarray(HOUR_PROFILE)
    mix = np.asarray(TRADE_MIX) / sum(TRADE_MIX)
    # open seconds per hours key, day and hour
    hourly: dict[int, np.ndarray] = {}
    for k, key in enumerate(units.hour_keys):
        z = zone(key[1])
        bounds = np.asarray(
            [
                datetime(d.year, d.month, d.day, tzinfo=z).timestamp() + 3600 * h
                for d in days
                for h in range(24)
            ]
            + [datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), z).timestamp()]
        )
        hourly[k] = open_between(key, bounds).reshape(n_days, 24) / 3600.0
    assumed = np.zeros(24)
    assumed[8 : 8 + int(params.assumed_hours)] = 1.0
    records: list[tuple[int, str, int, int, int, int]] = []
    for u in range(n):
        kid = int(units.kid[u])
        if units.stop_id[u] is None and units.is_bus[u]:
            continue  # placements: nothing to model
        for t, d in enumerate(days):
            o = hourly[kid][t] if kid >= 0 else assumed
            lo, hi = units.valid[u]
            if not lo <= d.toordinal() <= hi:
                continue
            hours_open = float(o.sum())
            if hours_open <= 0:
                continue
            factor = params.weekend_factor if d.weekday() >= 5 else 1.0
            lam = rate[u] * hours_open * factor * params.heat[d.month - 1] * math.exp(growth[u] * t)
            count = int(rng.poisson(lam))
            if not count:
                continue
            w = prof * o
            by_hour = rng.multinomial(count, w / w.sum())
            for h in np.flatnonzero(by_hour).tolist():
                c = int(by_hour[h])
                with_trade = int(rng.binomial(c, params.trade_share))
                by_trade = rng.multinomial(with_trade, mix)
                for tr in np.flatnonzero(by_trade).tolist():
                    records.append(
                        (d.toordinal(), units.keys[u], h, tr, SOURCE_SYNTHETIC, int(by_trade[tr]))
                    )
                if c - with_trade:
                    records.append(
                        (d.toordinal(), units.keys[u], h, -1, SOURCE_SYNTHETIC, c - with_trade)
                    )
    return VisitRows.from_records(records)


def write_synthetic(
    directory: Path | VisitMonths,
    units: Units,
    categories: list[str | None],
    last: date,
    params: SynthParams,
    exclude: set[date] | frozenset[date] = frozenset(),
) -> dict[str, Any]:
    """Generate ``params.days`` days ending with *last* and write them, replacing earlier
    synthetic days but never a day of real data: one a month file holds that was not
    generated, or one in *exclude* (days whose check-ins are not aggregated yet).
    *directory* is the usage directory (its month files) or any
    :class:`~yizhan.stations.usage_files.VisitMonths` (the database's visit rows).
    Returns a summary."""
    months = MonthFiles(directory) if isinstance(directory, Path) else directory
    first = last - timedelta(days=params.days - 1)
    held = load_months(months, first, last)
    generated = {int(k) for k in held.meta.get("synthetic", {})}
    real = held.rows.take(held.rows.source != SOURCE_SYNTHETIC) if len(held.rows) else held.rows
    real_days = (real.days() | (held.days - generated) | {d.toordinal() for d in exclude}) & set(
        range(first.toordinal(), last.toordinal() + 1)
    )
    rows = synthesize(units, categories, first, params)
    todo = [d for d in range(first.toordinal(), last.toordinal() + 1) if d not in real_days]
    meta = {"synthetic": {str(d): params.as_dict() for d in todo}}
    months.add_days(rows.take(np.isin(rows.day, todo)), todo, replace=True, meta=meta)
    kept = sorted(date.fromordinal(d).isoformat() for d in real_days)
    return {
        "directory": months.where,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days_written": len(todo),
        "days_with_real_data_kept": kept,
        "visits": int(rows.take(np.isin(rows.day, todo)).count.sum()),
        "units": len(units),
        "parameters": params.as_dict(),
        "trades": list(TRADES),
    }


__all__ = ["HOUR_PROFILE", "TRADE_MIX", "SynthParams", "synthesize", "write_synthetic"]
