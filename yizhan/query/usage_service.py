"""The usage stores of a registry and the answers built on them: check in, a station's
usage (with "busy now"), the usage of a district or the network.

:func:`usage_stores` takes the check-ins, the recorded counts, the visit rows and the
daily salts from the storage backend (:class:`~yizhan.storage.Backend`: files beside the
registry, or PostgreSQL, so that every replica answers alike), or without one opens them
in the files beside the registry (``YIZHAN_STATE_DIR``; the salts in ``YIZHAN_SALT_FILE``,
or memory); photos are files beside the registry. The API keeps one :class:`UsageStores`
for its lifetime; the CLI opens one per command.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from yizhan.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageUnavailableError,
)
from yizhan.geo.distance import haversine_m
from yizhan.query.usage import (
    OpenTime,
    Units,
    Usage,
    compute_usage,
    district_rows,
    open_time,
    synthetic_share,
    unit_summary,
    units_of,
)
from yizhan.settings import Settings
from yizhan.stations.checkins import Checkin, CheckinStore
from yizhan.stations.clock import Clock, iso, utc_now
from yizhan.stations.photos import PhotoStore
from yizhan.stations.salts import DailySalts
from yizhan.stations.scoring import ScoreRules, load_rules
from yizhan.stations.search import StationSearch
from yizhan.stations.usage_files import (
    SOURCE_CHECKINS,
    VisitMonths,
    VisitRows,
    concat,
    split_unit,
    unit_key,
)
from yizhan.stations.visits import VisitCountStore
from yizhan.storage import Backend
from yizhan.storage.files import open_usage_files

#: Longest period a usage question may cover, in days.
MAX_PERIOD_DAYS = 731
#: Default period: this many days up to today.
DEFAULT_PERIOD_DAYS = 28
#: "Busy now" compares the last hour with the station's check-ins per open hour over this many days.
TYPICAL_DAYS = 28


@dataclass
class UsageStores:
    """Everything usage keeps for one registry (``directory``: the usage directory of the
    files, ``None`` with a database or a registry in memory; ``visits``: the visit rows of
    finished days, ``None`` for a registry in memory)."""

    directory: Path | None
    salts: DailySalts
    checkins: CheckinStore
    counts: VisitCountStore
    photos: PhotoStore
    rules: ScoreRules
    timezone: str
    settings: Settings
    visits: VisitMonths | None = None
    #: Whether :meth:`close` closes the check-ins (not a backend's: the backend does).
    owns_checkins: bool = True
    _units: tuple[Any, Units] | None = field(default=None, repr=False)
    _open: dict[tuple[int, date, date, tuple[int, int]], OpenTime] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def today(self, now: datetime | None = None) -> date:
        return (now or self.checkins.clock()).astimezone(ZoneInfo(self.timezone)).date()

    def close(self) -> None:
        if self.owns_checkins:
            self.checkins.close()

    # -- cached building blocks -----------------------------------------------------------------
    def units(self, search: StationSearch) -> Units:
        """The units of *search*'s registry (built once per registry snapshot)."""
        with self._lock:
            if self._units is None or self._units[0] is not search.registry:
                self._units = (search.registry, units_of(search))
                self._open.clear()
            return self._units[1]

    def open_time(self, units: Units, first: date, last: date) -> OpenTime:
        """Open seconds of *units*' hours keys over a period (cached for the network)."""
        work = self.rules.work_hours_s
        key = (id(units), first, last, work)
        with self._lock:
            found = self._open.get(key)
        if found is None:
            found = open_time(units.hour_keys, first, last, work)
            if self._units is not None and units is self._units[1]:
                with self._lock:
                    if len(self._open) > 16:
                        self._open.clear()
                    self._open[key] = found
        return found

    def row_parts(
        self, first: date, last: date, units: Collection[str] | None = None
    ) -> tuple[list[VisitRows], dict[str, Any]]:
        """Every visit row of the days ``first``–``last`` (of *units* only, if given: a
        database reads only theirs; parts may hold others), in parts: the finished days
        (one per month file, memory-mapped; or the table's), the days not yet aggregated
        (check-ins) and the recorded counts; and the months' meta."""
        parts: list[VisitRows] = []
        meta: dict[str, Any] = {}
        held: set[int] = set()
        if self.visits is not None:
            parts, month = self.visits.load_parts(first, last, units)
            meta, held = month.meta, month.days
        stations = None if units is None else {split_unit(k)[0] for k in units}
        for day in self.checkins.open_days():
            if first <= day <= last and day.toordinal() not in held:
                parts.append(self.checkins.day_rows(day, stations))
        parts.append(self.counts.rows(first, last))
        return parts, meta

    def rows(self, first: date, last: date) -> tuple[VisitRows, dict[str, Any]]:
        """:meth:`row_parts` in one table."""
        parts, meta = self.row_parts(first, last)
        return concat(parts), meta


def usage_stores(
    settings: Settings,
    registry_path: Path | None,
    *,
    clock: Clock = utc_now,
    keep_days: int | None = None,
    backend: Backend | None = None,
) -> UsageStores:
    """The usage stores of a registry: the backend's (*clock* and *keep_days* are then
    the backend's), or without one opened in the files beside *registry_path*.

    Raises
    ------
    InvalidInputError
        ``salt_file`` in the data directory, or an unreadable weights file.
    """
    usage = backend or open_usage_files(settings, registry_path, clock=clock, keep_days=keep_days)
    files = backend is None or backend.kind == "files"
    directory = settings.state_file(registry_path, "usage", "") if files else None
    photos_dir = settings.state_file(registry_path, "photos", "")
    return UsageStores(
        directory=directory,
        salts=usage.salts,
        checkins=usage.checkins,
        counts=usage.visit_counts,
        photos=backend.photos
        if backend is not None
        else PhotoStore(
            photos_dir, max_px=settings.photo_max_px, timezone=settings.timezone, clock=clock
        ),
        rules=load_rules(settings.score_weights),
        timezone=settings.timezone,
        settings=settings,
        visits=usage.visits,
        owns_checkins=backend is None,
    )


def parse_period(
    first: str | date | None, last: str | date | None, today: date
) -> tuple[date, date]:
    """The period ``from``–``to`` (ISO dates; defaults: the 28 days up to today).

    Raises
    ------
    InvalidInputError
        Naming ``from`` or ``to``.
    """

    def day(value: str | date | None, name: str) -> date | None:
        if value is None or isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInputError(name, f"Expected a date YYYY-MM-DD, got {value!r}") from None

    b = day(last, "to") or today
    a = day(first, "from") or b - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if a > b:
        raise InvalidInputError("from", f"Expected a day not after to ({b}), got {a}")
    if (b - a).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInputError(
            "to", f"Expected a period of at most {MAX_PERIOD_DAYS} days, got {(b - a).days + 1}"
        )
    return a, b


# -- check in ------------------------------------------------------------------------------------


def check_in(
    search: StationSearch,
    stores: UsageStores,
    station_id: str,
    *,
    client: str,
    location: list[float] | tuple[float, float] | None = None,
    trade: str | None = None,
    now: datetime | None = None,
) -> Future[Checkin]:
    """Check a worker in at a station or cooling bus; resolves once durable.

    A station must be operational; a bus must stand somewhere now (the check-in counts for
    the stop it stands at). A position, when given, must lie within ``checkin_radius_m``
    of the station or of where the bus stands.

    Raises
    ------
    NotFoundError
        No station or bus *station_id*.
    ConflictError
        The station is not operational, or the bus is not in service now.
    InvalidInputError
        Naming ``location`` (too far, or not ``[lon, lat]``) or ``trade``.
    """
    when = now or stores.checkins.clock()
    radius = stores.settings.checkin_radius_m
    reg = search.registry
    i = reg.index_of.get(station_id)
    stop: str | None = None
    if i is not None:
        status = reg.features[i]["properties"].get("status") or "operational"
        if status != "operational":
            raise ConflictError(f"station {station_id!r} is {status}: it takes no check-ins")
        where = (float(reg.lon[i]), float(reg.lat[i]))
        what = "the station"
    else:
        fleet = search.fleet
        try:
            b = fleet.index(station_id)
        except (KeyError, NotFoundError):
            raise NotFoundError(f"no station or bus with id {station_id!r}") from None
        if fleet.status(b) != "operational":
            raise ConflictError(f"bus {station_id!r} is {fleet.status(b)}: it takes no check-ins")
        pos, _ = fleet.position(b, when.timestamp())
        if pos is None:
            raise ConflictError(
                f"bus {station_id!r} is not in service now (it stands at no stop): no check-ins"
            )
        where, stop, what = (pos.lon, pos.lat), pos.stop_id, "where the bus stands now"
    located = False
    if location is not None:
        if (
            not isinstance(location, list | tuple)
            or len(location) != 2
            or not all(isinstance(x, int | float) and math.isfinite(x) for x in location)
            or not (-180 <= location[0] <= 180 and -90 <= location[1] <= 90)
        ):
            raise InvalidInputError("location", f"Expected [lon, lat] in degrees, got {location!r}")
        d = float(haversine_m(location[0], location[1], where[0], where[1]))
        if d > radius:
            raise InvalidInputError(
                "location",
                f"Expected a position within {radius:g} m of {what}, got one {d:,.0f} m away",
            )
        located = True
    return stores.checkins.submit(
        station_id, client=client, stop_id=stop, trade=trade, located=located, now=when
    )


# -- a station's usage ------------------------------------------------------------------------------


def _station_units(search: StationSearch, stores: UsageStores, station_id: str) -> Units:
    units = stores.units(search)
    idx = units.of_station(station_id)
    if not idx:
        raise NotFoundError(f"no station or bus with id {station_id!r}")
    return units.subset(idx)


def _rows_of(parts: list[VisitRows], units: Units) -> VisitRows:
    """The rows of *units* only, from every part (each filtered before they are joined)."""
    wanted = set(units.keys)
    out = []
    for rows in parts:
        table = np.asarray([k in wanted for k in rows.units], dtype=bool)
        if len(rows) and table.any():
            out.append(rows.take(table[rows.unit]))
    return concat(out)


def busy_now(
    search: StationSearch, stores: UsageStores, station_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """How busy a station is now, from the last hour's check-ins; ``None`` when there were
    fewer than ``busy_min_checkins`` (too few to say anything).

    ``level`` compares them with the station's check-ins per open hour over the previous
    28 days: ``busier_than_usual`` (1.5 times or more), ``quieter_than_usual`` (half or
    less), ``as_usual``; ``unknown`` without that history or without known hours, or while
    the storage (a database) cannot be read: the workers' page keeps answering.
    """
    when = now or stores.checkins.clock()
    n = stores.checkins.recent_count(station_id, when - timedelta(hours=1))
    if n < stores.settings.busy_min_checkins:
        return None
    units = _station_units(search, stores, station_id)
    today = stores.today(when)
    first, last = today - timedelta(days=TYPICAL_DAYS), today - timedelta(days=1)
    try:
        parts, _ = stores.row_parts(first, last, units.keys)
    except StorageUnavailableError:
        parts = []  # the history is not known now: level "unknown"
    rows = _rows_of(parts, units)
    rows = rows.take(rows.source == SOURCE_CHECKINS) if len(rows) else rows
    usage = compute_usage(rows, units, first, last, open_time(units.hour_keys, first, last))
    oh, v = float(np.nansum(usage.open_hours)), float(usage.visits.sum())
    typical = v / oh if oh > 0 and v > 0 else None
    level = "unknown"
    if typical is not None:
        ratio = n / typical
        level = (
            "busier_than_usual"
            if ratio >= 1.5
            else "quieter_than_usual"
            if ratio <= 0.5
            else "as_usual"
        )
    cap = units.capacity[0] if len(units) else math.nan
    return {
        "checkins_last_hour": n,
        "since": iso(when - timedelta(hours=1)),
        "typical_checkins_per_open_hour": None if typical is None else round(typical, 3),
        "level": level,
        "per_capacity": None if math.isnan(cap) or cap <= 0 else round(n / cap, 3),
    }


def station_usage(
    search: StationSearch,
    stores: UsageStores,
    station_id: str,
    first: date,
    last: date,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``GET /stations/{id}/usage``: the station's (or each bus stop's) usage over a
    period, its recorded counts, and ``busy_now``.

    Raises
    ------
    NotFoundError
    """
    units = _station_units(search, stores, station_id)
    row_parts, meta = stores.row_parts(first, last, units.keys)
    rows = _rows_of(row_parts, units)
    usage = compute_usage(
        rows, units, first, last, open_time(units.hour_keys, first, last, stores.rules.work_hours_s)
    )
    bus = bool(units.is_bus.any())
    parts = [unit_summary(usage, i) for i in range(len(units))]
    total_v = int(usage.visits.sum())
    oh = float(np.nansum(usage.open_hours))
    return {
        "id": station_id,
        "kind": "cooling_bus" if bus else "station",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "visits": total_v,
        "open_hours": round(oh, 2),
        "visits_per_open_hour": round(total_v / oh, 3) if oh > 0 else None,
        "synthetic_share": round(synthetic_share(usage), 3),
        "busy_now": busy_now(search, stores, station_id, now),
        **({"stops": parts} if bus else {"usage": parts[0]}),
        "counts": [c.as_dict() for c in stores.counts.for_station(station_id, first, last)],
        "synthetic": bool(meta.get("synthetic")),
    }


def network_usage(search: StationSearch, stores: UsageStores, first: date, last: date) -> Usage:
    """The usage of every unit of the registry over a period."""
    units = stores.units(search)
    parts, _ = stores.row_parts(first, last)
    return compute_usage(parts, units, first, last, stores.open_time(units, first, last))


def analysis_usage(
    search: StationSearch,
    stores: UsageStores,
    first: date,
    last: date,
    district: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """``GET /analysis/usage``: per district, and the most visited units (of the district).

    Raises
    ------
    InvalidInputError
        Naming ``district`` when no station is in it.
    """
    usage = network_usage(search, stores, first, last)
    units = usage.units
    if district is not None and not bool((units.district == district).any()):
        names = sorted({d for d in units.district.tolist() if d})
        raise InvalidInputError(
            "district", f"Expected one of {', '.join(names) or '(none)'}, got {district!r}"
        )
    sel = np.flatnonzero(units.district == district) if district else np.arange(len(units))
    order = sel[np.lexsort((np.asarray(units.keys, dtype=object)[sel], -usage.visits[sel]))]
    slope, change = usage.trend()
    top = []
    for i in order[:limit].tolist():
        top.append(
            {
                "id": units.station_id[i],
                "stop_id": units.stop_id[i],
                "name": units.name[i],
                "district": units.district[i] or None,
                "visits": int(usage.visits[i]),
                "days_with_data": int(usage.days_with_data[i]),
                "open_hours": _round(usage.open_hours[i], 2),
                "visits_per_open_hour": _round(usage.per_open_hour[i], 3),
                "utilization": _round(usage.utilization[i], 4),
                "change_pct": _round(change[i], 1),
                "slope_per_week": _round(slope[i], 4),
            }
        )
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "weeks": [w.isoformat() for w in usage.week_starts],
        "months": [m.isoformat()[:7] for m in usage.month_starts],
        "synthetic_share": round(synthetic_share(usage), 3),
        "districts": district_rows(usage, district),
        "units": top,
        "units_matched": int(sel.size),
    }


def _round(x: float, digits: int) -> float | None:
    return None if not math.isfinite(x) else round(float(x), digits)


__all__ = [
    "DEFAULT_PERIOD_DAYS",
    "MAX_PERIOD_DAYS",
    "UsageStores",
    "analysis_usage",
    "busy_now",
    "check_in",
    "network_usage",
    "parse_period",
    "station_usage",
    "unit_key",
    "usage_stores",
]
