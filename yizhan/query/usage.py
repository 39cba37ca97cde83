"""Utilization: visits, visits per open hour and visits per seat-hour, per station, bus stop,
district, week and month, with trends.

Definitions (``docs/evaluation.md``):

* **visits** of a unit (a station, or one stop of a cooling bus) on a day: the count its
  manager or operator recorded for that day if there is one, else the check-ins (real or,
  for the demo, synthetic) of that day;
* **open hours**: the hours its ``opening_hours`` (a stop's own hours) say it is open in
  the period (:mod:`yizhan.stations.hours`, holidays included); unknown hours give no
  open hours, and nothing per open hour;
* **visits per open hour** = visits / open hours;
* **utilization** = visits / (capacity × open hours), where the capacity (people at once)
  is known: visits per seat-hour;
* **trend**: the least-squares slope of the weekly visits per open hour (per week), and
  the change of the last four weeks' visits per open hour against the four before.

Everything is columnar (``numpy.bincount`` over the rows of
:class:`~yizhan.stations.usage_files.VisitRows`), so 100,000 stations × a year of daily counts
take seconds (``bench/bench_usage.py``, beside the same group-by in pandas).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from yizhan.stations.hours import OPEN, HoursKey, merged_intervals, zone
from yizhan.stations.search import StationSearch
from yizhan.stations.usage_files import (
    SOURCE_COUNT,
    SOURCE_SYNTHETIC,
    SOURCES,
    TRADES,
    VisitRows,
    unit_key,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
#: Weeks compared by ``change_pct``.
TREND_WEEKS = 4


@dataclass(frozen=True, eq=False)
class Units:
    """What visits are counted at: every station, then every stop of every cooling bus.

    Attributes
    ----------
    keys : list of str
        Unit keys (:func:`~yizhan.stations.usage_files.unit_key`).
    station_id, stop_id, name : list
        The station (or bus) id, the stop id (``None`` for a station), a name.
    district : numpy.ndarray of str
        ``""`` when not known.
    capacity : numpy.ndarray of float
        People at once; NaN when not known.
    kid : numpy.ndarray of int
        Hours key (index into ``hour_keys``); -1: no hours.
    valid : numpy.ndarray of int, shape (n, 2)
        First and last day (ordinals) a bus stop is served; stations: the widest range.
    is_bus : numpy.ndarray of bool
    lon, lat : numpy.ndarray of float
    hour_keys : list
        The hours keys.
    """

    keys: list[str]
    station_id: list[str]
    stop_id: list[str | None]
    name: list[str]
    district: NDArray[np.object_]
    capacity: F64
    kid: I64
    valid: I64
    is_bus: NDArray[np.bool_]
    lon: F64
    lat: F64
    hour_keys: list[HoursKey]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def of_station(self, station_id: str) -> list[int]:
        """The units of a station (one) or of a bus (its stops)."""
        return [i for i, s in enumerate(self.station_id) if s == station_id]

    def subset(self, idx: Sequence[int]) -> Units:
        """Only units *idx*, with only the hours keys they use."""
        sel = np.asarray(idx, dtype=np.int64)
        used = sorted({int(k) for k in self.kid[sel].tolist() if k >= 0})
        remap = {k: j for j, k in enumerate(used)}
        return Units(
            keys=[self.keys[i] for i in idx],
            station_id=[self.station_id[i] for i in idx],
            stop_id=[self.stop_id[i] for i in idx],
            name=[self.name[i] for i in idx],
            district=self.district[sel],
            capacity=self.capacity[sel],
            kid=np.asarray([remap.get(int(k), -1) for k in self.kid[sel].tolist()], np.int64),
            valid=self.valid[sel],
            is_bus=self.is_bus[sel],
            lon=self.lon[sel],
            lat=self.lat[sel],
            hour_keys=[self.hour_keys[k] for k in used],
        )


def units_of(search: StationSearch) -> Units:
    """The units of a search's registry: its stations, then each stop of each bus."""
    reg = search.registry
    hours = search.hours
    fleet = search.fleet
    n = len(reg)
    props = [f["properties"] for f in reg.features]
    keys = list(reg.ids)
    station_id = list(reg.ids)
    stop_id: list[str | None] = [None] * n
    name = [str(p.get("name", "")) for p in props]
    district = [str(p.get("district") or "") for p in props]
    capacity = [float(p["capacity"]) if p.get("capacity") is not None else math.nan for p in props]
    kid = hours.kid_arr.tolist()
    lon, lat = reg.lon.tolist(), reg.lat.tolist()
    valid = [(0, 10**7)] * n
    is_bus = [False] * n
    for i, bus in enumerate(fleet.buses):
        p = bus["properties"]
        for j, stop in enumerate(p.get("stops") or []):
            keys.append(unit_key(str(bus["id"]), str(stop["stop_id"])))
            station_id.append(str(bus["id"]))
            stop_id.append(str(stop["stop_id"]))
            name.append(f"{p.get('name', bus['id'])} · {stop.get('name', stop['stop_id'])}")
            district.append(str(stop.get("district") or p.get("district") or ""))
            capacity.append(float(p["capacity"]) if p.get("capacity") is not None else math.nan)
            kid.append(fleet.stop_kid[i][j])
            lo, hi = fleet.stop_valid[i][j]
            valid.append(
                (
                    datetime.fromtimestamp(lo, zone(fleet.tz[i])).date().toordinal()
                    if math.isfinite(lo)
                    else 0,
                    (datetime.fromtimestamp(hi, zone(fleet.tz[i])) - timedelta(seconds=1))
                    .date()
                    .toordinal()
                    if math.isfinite(hi)
                    else 10**7,
                )
            )
            lon.append(float(stop["location"][0]))
            lat.append(float(stop["location"][1]))
            is_bus.append(True)
        # Check-ins while the bus stood where an operator placed it (not at a stop).
        keys.append(str(bus["id"]))
        station_id.append(str(bus["id"]))
        stop_id.append(None)
        name.append(f"{p.get('name', bus['id'])} · placements")
        district.append(str(p.get("district") or ""))
        capacity.append(float(p["capacity"]) if p.get("capacity") is not None else math.nan)
        kid.append(-1)
        valid.append((0, 10**7))
        first_stop = (p.get("stops") or [{"location": bus["geometry"]["coordinates"][0]}])[0]
        lon.append(float(first_stop["location"][0]))
        lat.append(float(first_stop["location"][1]))
        is_bus.append(True)
    return Units(
        keys=keys,
        station_id=station_id,
        stop_id=stop_id,
        name=name,
        district=np.asarray(district, dtype=object),
        capacity=np.asarray(capacity, dtype=np.float64),
        kid=np.asarray(kid, dtype=np.int64),
        valid=np.asarray(valid, dtype=np.int64).reshape(len(keys), 2),
        is_bus=np.asarray(is_bus, dtype=bool),
        lon=np.asarray(lon, dtype=np.float64),
        lat=np.asarray(lat, dtype=np.float64),
        hour_keys=list(hours.cache.keys),
    )


# -- open time -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OpenTime:
    """Seconds each hours key is open on each day of a period, in total and within the
    outdoor working hours; ``work_len``/``day_len``: the length of each day's windows."""

    first: date
    total: F64
    work: F64
    work_len: F64
    day_len: F64

    @property
    def days(self) -> int:
        return int(self.day_len.size)


def _local(day: date, seconds: int, tz: str) -> float:
    extra, rest = divmod(seconds, 86400)
    t = time(rest // 3600, (rest % 3600) // 60)
    return datetime.combine(day + timedelta(days=extra), t, zone(tz)).timestamp()


def _grid(days: list[date], tz: str, work_s: tuple[int, int]) -> tuple[F64, F64, F64]:
    """Local midnights (one more than days), and each day's working-hours start and end."""
    return (
        np.asarray([_local(d, 0, tz) for d in days]),
        np.asarray([_local(d, work_s[0], tz) for d in days[:-1]]),
        np.asarray([_local(d, work_s[1], tz) for d in days[:-1]]),
    )


def _measure(a: F64, b: F64, t: F64) -> F64:
    """Seconds of the sorted disjoint spans ``[a, b)`` before each time *t*."""
    cum = np.concatenate([[0.0], np.cumsum(b - a)])
    j = np.searchsorted(a, t, side="right") - 1
    jj = np.maximum(j, 0)
    inside = np.clip(t - a[jj], 0.0, b[jj] - a[jj])
    return np.where(j < 0, 0.0, cum[jj] + inside)


def open_spans(key: HoursKey, start: float, end: float) -> tuple[F64, F64]:
    """The open stretches ``[a, b)`` (POSIX seconds) of a key between two times."""
    z = zone(key[1])
    spans = [
        (a.timestamp(), b.timestamp())
        for a, b, st in merged_intervals(
            key, datetime.fromtimestamp(start, z), datetime.fromtimestamp(end, z)
        )
        if st == OPEN
    ]
    return np.asarray([x for x, _ in spans]), np.asarray([y for _, y in spans])


def open_between(key: HoursKey, bounds: F64) -> F64:
    """Open seconds of a key between each two consecutive times of *bounds* (sorted)."""
    a, b = open_spans(key, float(bounds[0]), float(bounds[-1]))
    if not a.size:
        return np.zeros(bounds.size - 1)
    return np.diff(_measure(a, b, bounds))


def open_time(
    keys: Sequence[HoursKey], first: date, last: date, work_s: tuple[int, int] = (21600, 72000)
) -> OpenTime:
    """Open seconds per hours key and local day from *first* to *last* (both included).

    A key's state is taken from :func:`~yizhan.stations.hours.merged_intervals` over the
    whole period; ``UNKNOWN`` stretches count as closed.
    """
    n_days = last.toordinal() - first.toordinal() + 1
    days = [first + timedelta(days=i) for i in range(n_days + 1)]
    grids: dict[str, tuple[F64, F64, F64]] = {}
    total = np.zeros((len(keys), n_days))
    work = np.zeros((len(keys), n_days))
    for k, key in enumerate(keys):
        tz = key[1]
        if tz not in grids:
            grids[tz] = _grid(days, tz, work_s)
        mids, w0, w1 = grids[tz]
        a, b = open_spans(key, float(mids[0]), float(mids[-1]))
        if a.size:
            total[k] = np.diff(_measure(a, b, mids))
            work[k] = _measure(a, b, w1) - _measure(a, b, w0)
    ref = keys[0][1] if len(keys) else "UTC"
    mids, w0, w1 = grids.get(ref) or _grid(days, ref, work_s)
    return OpenTime(first, total, work, w1 - w0, np.diff(mids))


# -- usage ---------------------------------------------------------------------------------------


def week_index(first: date, n_days: int) -> tuple[I64, list[date]]:
    """Index of each day's ISO week (Monday first) and the Monday of each week."""
    start = first - timedelta(days=first.weekday())
    off = first.toordinal() - start.toordinal()
    idx = (np.arange(n_days) + off) // 7
    return idx.astype(np.int64), [start + timedelta(weeks=w) for w in range(int(idx[-1]) + 1)]


def month_index(first: date, n_days: int) -> tuple[I64, list[date]]:
    """Index of each day's calendar month and the first day of each month."""
    out = np.empty(n_days, dtype=np.int64)
    months: list[date] = []
    d = first
    for i in range(n_days):
        m = date(d.year, d.month, 1)
        if not months or months[-1] != m:
            months.append(m)
        out[i] = len(months) - 1
        d += timedelta(days=1)
    return out, months


@dataclass(frozen=True, eq=False)
class Usage:
    """Visits and open hours of every unit over a period (see the module docstring)."""

    units: Units
    first: date
    last: date
    visits: F64
    days_with_data: NDArray[np.int64]
    open_hours: F64
    week_starts: list[date]
    weekly: F64
    weekly_open_hours: F64
    month_starts: list[date]
    monthly: F64
    monthly_open_hours: F64
    hourly: F64
    trades: F64
    by_source: F64

    @property
    def per_open_hour(self) -> F64:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.open_hours > 0, self.visits / self.open_hours, np.nan)

    @property
    def utilization(self) -> F64:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.open_hours > 0, self.visits / (self.units.capacity * self.open_hours), np.nan
            )

    def trend(self) -> tuple[F64, F64]:
        """``(slope, change_pct)`` of each unit's weekly visits per open hour (NaN: too
        little data): slope in visits per open hour per week (least squares over the weeks
        with open hours), change: last :data:`TREND_WEEKS` weeks against the ones before."""
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(self.weekly_open_hours > 0, self.weekly / self.weekly_open_hours, np.nan)
            ok = ~np.isnan(y)
            x = np.broadcast_to(np.arange(y.shape[1], dtype=np.float64), y.shape)
            n = ok.sum(axis=1)
            xm = np.where(ok, x, 0).sum(axis=1) / n
            ym = np.where(ok, y, 0).sum(axis=1) / n
            dx = np.where(ok, x - xm[:, None], 0.0)
            slope = (dx * np.where(ok, y - ym[:, None], 0.0)).sum(axis=1) / (dx * dx).sum(axis=1)
            slope = np.where(n >= 3, slope, np.nan)
            w = TREND_WEEKS
            if y.shape[1] >= 2 * w:
                rv, ro = self.weekly[:, -w:].sum(1), self.weekly_open_hours[:, -w:].sum(1)
                pv = self.weekly[:, -2 * w : -w].sum(1)
                po = self.weekly_open_hours[:, -2 * w : -w].sum(1)
                recent, before = rv / ro, pv / po
                change = np.where(before > 0, 100.0 * (recent - before) / before, np.nan)
            else:
                change = np.full(y.shape[0], np.nan)
        return slope, change


def effective_rows(
    rows: VisitRows, unit_of_row: I64, n_units: int, first: date, n_days: int
) -> NDArray[np.bool_]:
    """Which rows count: on a (unit, day) with a recorded count, only the count's rows."""
    day = rows.day.astype(np.int64) - first.toordinal()
    is_count = rows.source == SOURCE_COUNT
    if not is_count.any():
        return np.ones(len(rows), dtype=bool)
    key = unit_of_row * n_days + day
    counted = np.zeros(n_units * n_days, dtype=bool)
    counted[key[is_count]] = True
    keep: NDArray[np.bool_] = is_count | ~counted[key]
    return keep


def _mapped(part: VisitRows, units: Units, index: dict[str, int]) -> tuple[VisitRows, I64]:
    """*part* without rows of unknown units, and each row's unit position in *index*."""
    if part.units == units.keys[: len(part.units)]:
        return part, part.unit.astype(np.int64)  # the same order: no lookup needed
    table = np.fromiter((index.get(k, -1) for k in part.units), np.int64, len(part.units))
    u = table[part.unit] if len(part) else np.zeros(0, np.int64)
    known = u >= 0
    if not known.all():
        part, u = part.take(known), u[known]
    return part, u


def compute_usage(
    rows: VisitRows | Sequence[VisitRows],
    units: Units,
    first: date,
    last: date,
    opened: OpenTime | None,
) -> Usage:
    """Usage of every unit from *first* to *last* (both included).

    *rows* may come in parts (one per month file, say): they are summed part by part into
    a dense ``(units, days)`` table, never concatenated. Rows of units that are not in
    *units* (a removed station, say) or outside the period are left out. *opened* gives
    the open hours (``None``: none known).
    """
    n, n_days = len(units), last.toordinal() - first.toordinal() + 1
    f0 = first.toordinal()
    index = units.index
    parts = [
        _mapped(p.between(first, last), units, index)
        for p in ([rows] if isinstance(rows, VisitRows) else rows)
    ]
    parts = [(p, u) for p, u in parts if len(p)]
    counted: NDArray[np.bool_] | None = None
    for p, u in parts:
        is_count = p.source == SOURCE_COUNT
        if is_count.any():
            if counted is None:
                counted = np.zeros(n * n_days, dtype=bool)
            counted[u[is_count] * n_days + (p.day[is_count].astype(np.int64) - f0)] = True
    daily = np.zeros((n, n_days))
    has_row = np.zeros((n, n_days), dtype=bool)
    n_t, n_s = len(TRADES), len(SOURCES)
    hourly, trades, by_source = np.zeros((n, 24)), np.zeros((n, n_t)), np.zeros((n, n_s))
    for p, u in parts:
        if counted is not None:
            keep = (p.source == SOURCE_COUNT) | ~counted[u * n_days + (p.day.astype(np.int64) - f0)]
            if not keep.all():
                p, u = p.take(keep), u[keep]
        lo, hi = int(p.day.min()) - f0, int(p.day.max()) - f0 + 1
        span = hi - lo
        key = u * span
        key += p.day
        key -= f0 + lo
        w = p.count.astype(np.float64)
        daily[:, lo:hi] += np.bincount(key, weights=w, minlength=n * span).reshape(n, span)
        has_row[:, lo:hi] |= np.bincount(key, minlength=n * span).reshape(n, span) > 0
        hm = p.hour >= 0
        if hm.any():
            hourly += _sums(u[hm] * 24 + p.hour[hm], w[hm], n, 24)
        tm = p.trade >= 0
        if tm.any():
            trades += _sums(u[tm] * n_t + p.trade[tm], w[tm], n, n_t)
        s0 = int(p.source[0])
        if bool((p.source == s0).all()):
            by_source[:, s0] += np.bincount(u, weights=w, minlength=n)
        else:
            by_source += _sums(u * n_s + p.source, w, n, n_s)
    wk, week_starts = week_index(first, n_days)
    mo, month_starts = month_index(first, n_days)
    w_starts, m_starts = _starts(wk), _starts(mo)
    open_hours, weekly_open, monthly_open = _open_hours(
        units, first, n_days, opened, w_starts, m_starts
    )
    return Usage(
        units=units,
        first=first,
        last=last,
        visits=daily.sum(axis=1),
        days_with_data=has_row.sum(axis=1),
        open_hours=open_hours,
        week_starts=week_starts,
        weekly=np.add.reduceat(daily, w_starts, axis=1),
        weekly_open_hours=weekly_open,
        month_starts=month_starts,
        monthly=np.add.reduceat(daily, m_starts, axis=1),
        monthly_open_hours=monthly_open,
        hourly=hourly,
        trades=trades,
        by_source=by_source,
    )


def _open_hours(
    units: Units, first: date, n_days: int, opened: OpenTime | None, w_starts: I64, m_starts: I64
) -> tuple[F64, F64, F64]:
    """Open hours of each unit in the period, per week and per month (NaN: unknown hours).

    Summed per hours key, then looked up per unit; a unit served only part of the period
    (a bus stop's ``valid_from``/``valid_to``) gets its own days.
    """
    n = len(units)
    if opened is None or not units.hour_keys:
        nan = np.full(n, np.nan)
        return nan, np.full((n, w_starts.size), np.nan), np.full((n, m_starts.size), np.nan)
    per_key = opened.total / 3600.0
    kid = units.kid
    k = np.maximum(kid, 0)
    unknown = kid < 0
    total = np.where(unknown, np.nan, per_key.sum(axis=1)[k])
    weekly = np.where(unknown[:, None], np.nan, np.add.reduceat(per_key, w_starts, axis=1)[k])
    monthly = np.where(unknown[:, None], np.nan, np.add.reduceat(per_key, m_starts, axis=1)[k])
    f0 = first.toordinal()
    partial = np.flatnonzero(
        ~unknown & ((units.valid[:, 0] > f0) | (units.valid[:, 1] < f0 + n_days - 1))
    )
    days = f0 + np.arange(n_days)
    for i in partial.tolist():
        row = np.where(
            (days >= units.valid[i, 0]) & (days <= units.valid[i, 1]), per_key[k[i]], 0.0
        )
        total[i] = row.sum()
        weekly[i] = np.add.reduceat(row, w_starts)
        monthly[i] = np.add.reduceat(row, m_starts)
    return total, weekly, monthly


def _sums(key: I64, weights: F64, n: int, m: int) -> F64:
    """``(n, m)`` sums of *weights* by ``key = row * m + column``."""
    out: F64 = np.bincount(key, weights=weights, minlength=n * m).astype(np.float64)
    return out.reshape(n, m)


def _starts(idx: I64) -> I64:
    """Positions where a sorted group index changes (for ``numpy.add.reduceat``)."""
    return np.flatnonzero(np.concatenate([[True], idx[1:] != idx[:-1]])).astype(np.int64)


def _num(x: float, digits: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


# -- answers -------------------------------------------------------------------------------------


def unit_summary(usage: Usage, i: int) -> dict[str, Any]:
    """The usage of unit *i* as JSON: totals, per week and month, hours, trades, trend."""
    units = usage.units
    slope, change = usage.trend()
    cap = units.capacity[i]
    return {
        "unit": units.keys[i],
        "stop_id": units.stop_id[i],
        "name": units.name[i],
        "district": units.district[i] or None,
        "capacity": None if math.isnan(cap) else int(cap),
        "visits": int(usage.visits[i]),
        "days_with_data": int(usage.days_with_data[i]),
        "open_hours": _num(usage.open_hours[i], 2),
        "visits_per_open_hour": _num(usage.per_open_hour[i]),
        "utilization": _num(usage.utilization[i], 4),
        "trend": {
            "slope_per_week": _num(slope[i], 4),
            "change_pct": _num(change[i], 1),
        },
        "weekly": [
            {
                "week": ws.isoformat(),
                "visits": int(usage.weekly[i, k]),
                "open_hours": _num(usage.weekly_open_hours[i, k], 2),
            }
            for k, ws in enumerate(usage.week_starts)
        ],
        "monthly": [
            {
                "month": ms.isoformat()[:7],
                "visits": int(usage.monthly[i, k]),
                "open_hours": _num(usage.monthly_open_hours[i, k], 2),
            }
            for k, ms in enumerate(usage.month_starts)
        ],
        "by_hour": [int(x) for x in usage.hourly[i]],
        "trades": {t: int(usage.trades[i, k]) for k, t in enumerate(TRADES)},
        "sources": {s: int(usage.by_source[i, k]) for k, s in enumerate(SOURCES)},
    }


def district_rows(usage: Usage, district: str | None = None) -> list[dict[str, Any]]:
    """Per district (or the one asked for): units, visits, open hours, visits per open hour
    and utilization over the units that have a capacity and known hours."""
    units = usage.units
    names = sorted({str(d) for d in units.district.tolist()} if district is None else {district})
    out = []
    for name in names:
        m = units.district == name
        oh = usage.open_hours[m]
        v = usage.visits[m]
        known = oh > 0
        cap = units.capacity[m]
        with_cap = known & ~np.isnan(cap)
        seat_hours = float((cap[with_cap] * oh[with_cap]).sum())
        out.append(
            {
                "district": name or None,
                "units": int(m.sum()),
                "units_with_data": int((usage.days_with_data[m] > 0).sum()),
                "visits": int(v.sum()),
                "open_hours": _num(float(oh[known].sum()), 1),
                "visits_per_open_hour": _num(float(v[known].sum() / oh[known].sum()))
                if known.any() and oh[known].sum() > 0
                else None,
                "utilization": _num(float(v[with_cap].sum()) / seat_hours, 4)
                if seat_hours > 0
                else None,
                "weekly": [int(x) for x in usage.weekly[m].sum(axis=0)],
                "monthly": [int(x) for x in usage.monthly[m].sum(axis=0)],
                "trades": {t: int(usage.trades[m, k].sum()) for k, t in enumerate(TRADES)},
            }
        )
    return out


def synthetic_share(usage: Usage) -> float:
    """Share of the visits that come from the synthetic generator."""
    total = float(usage.by_source.sum())
    return float(usage.by_source[:, SOURCE_SYNTHETIC].sum()) / total if total else 0.0


__all__ = [
    "TREND_WEEKS",
    "OpenTime",
    "Units",
    "Usage",
    "compute_usage",
    "district_rows",
    "effective_rows",
    "month_index",
    "open_between",
    "open_spans",
    "open_time",
    "synthetic_share",
    "unit_summary",
    "units_of",
    "week_index",
]
