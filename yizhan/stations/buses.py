"""Cooling buses (纳凉公交): where each bus stands at a time, and through a day.

A bus is a registry Feature of ``kind: cooling_bus`` whose ``stops`` each say when the
bus stands there (``opening_hours``, optionally only between ``valid_from`` and
``valid_to``). An operator's placement (:mod:`yizhan.stations.placements`) overrides the
schedule for its window. At a given time a bus is at most at one place: the placement
in force, else the stop whose hours are open then (validation rejects stops whose hours
overlap, see :func:`stop_overlaps`), else nowhere (not in service).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.geo.distance import haversine_m
from yizhan.stations.hours import (
    NEVER,
    OPEN,
    HoursCache,
    day_bounds,
    hours_key,
    iso_or_none,
    merged_intervals,
    zone,
)
from yizhan.stations.models import check_lon_lat
from yizhan.stations.placements import MAX_PLACEMENT, Placement, PlacementStore
from yizhan.stations.vocab import Status, amenity_mask

#: A placement farther than this from every stop of its bus is refused (swapped lon/lat?).
MAX_PLACEMENT_DISTANCE_M = 200_000.0

#: How many years around the current one stop overlaps are checked in (plus any year
#: an expression or a validity date names).
_YEARS_AHEAD = 1
_YEAR = re.compile(r"(?<![\d:])((?:19|20)\d\d)(?![\d:])")


@dataclass(frozen=True)
class Overlap:
    """Two stops of one bus whose hours are open at the same time."""

    a: tuple[str, str]
    b: tuple[str, str]
    start: datetime
    end: datetime

    def message(self) -> str:
        """``stops 's1' (…) and 's2' (…) overlap: … from … to …``"""
        return (
            f"stops {self.a[0]!r} ({self.a[1]}) and {self.b[0]!r} ({self.b[1]}) overlap: "
            f"the bus cannot stand at both from {self.start.isoformat(timespec='minutes')} "
            f"to {self.end.isoformat(timespec='minutes')}"
        )


def _validity(stop: dict[str, Any], tz: str) -> tuple[float, float]:
    """``[from, to)`` POSIX times a stop is served (its valid_from/valid_to days, local)."""
    lo, hi = -NEVER, NEVER
    vf, vt = stop.get("valid_from"), stop.get("valid_to")
    if vf:
        lo = day_bounds(_as_date(vf), tz)[0].timestamp()
    if vt:
        hi = day_bounds(_as_date(vt), tz)[1].timestamp()
    return lo, hi


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def stop_overlaps(
    stops: Sequence[dict[str, Any]],
    tz: str,
    holiday_country: str | None,
    today: date | None = None,
) -> list[Overlap]:
    """Pairs of stops whose open hours overlap (the first overlap of each pair).

    Checked over the current and next year, and every year an expression or a
    ``valid_from``/``valid_to`` date names (at most 8 years), in zone *tz*, each stop
    limited to the days it is valid.

    Parameters
    ----------
    stops : sequence of dict
        ``stop_id``, ``name``, ``location``, ``opening_hours``, optional ``valid_from``/``valid_to``.
    tz : str
        IANA zone of the hours.
    holiday_country : str or None
        Country of ``PH``.
    today : date, optional
        Reference day (default today).

    Returns
    -------
    list of Overlap
    """
    if len(stops) < 2:
        return []
    ref = (today or date.today()).year
    years = {ref + d for d in range(_YEARS_AHEAD + 1)}
    for s in stops:
        years.update(int(y) for y in _YEAR.findall(str(s["opening_hours"])))
        for k in ("valid_from", "valid_to"):
            if s.get(k):
                years.add(_as_date(s[k]).year)
    spans: list[list[tuple[float, float]]] = []
    years_sorted = sorted(years)[:8]
    for s in stops:
        lon, lat = s["location"][:2]
        key = hours_key(str(s["opening_hours"]), tz, holiday_country, lon, lat)
        lo, hi = _validity(s, tz)
        out: list[tuple[float, float]] = []
        for y in years_sorted:
            start = day_bounds(date(y, 1, 1), tz)[0]
            end = day_bounds(date(y, 12, 31), tz)[1]
            if end.timestamp() <= lo or start.timestamp() >= hi:
                continue
            for a, b, st in merged_intervals(key, start, end):
                if st == OPEN:
                    x, z = max(a.timestamp(), lo), min(b.timestamp(), hi)
                    if x < z:
                        out.append((x, z))
        spans.append(out)
    found: list[Overlap] = []
    for i in range(len(stops)):
        for j in range(i + 1, len(stops)):
            hit = _first_overlap(spans[i], spans[j])
            if hit is not None:
                sa, sb = stops[i], stops[j]
                found.append(
                    Overlap(
                        (str(sa["stop_id"]), str(sa["name"])),
                        (str(sb["stop_id"]), str(sb["name"])),
                        datetime.fromtimestamp(hit[0], zone(tz)),
                        datetime.fromtimestamp(hit[1], zone(tz)),
                    )
                )
    return found


def _first_overlap(
    x: list[tuple[float, float]], y: list[tuple[float, float]]
) -> tuple[float, float] | None:
    i = j = 0
    while i < len(x) and j < len(y):
        lo, hi = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if lo < hi:
            return lo, hi
        if x[i][1] <= y[j][1]:
            i += 1
        else:
            j += 1
    return None


@dataclass(frozen=True)
class BusPosition:
    """Where a bus stands at a time: a stop of its schedule or a placement."""

    bus_index: int
    bus_id: str
    lon: float
    lat: float
    name: str
    leaves_at: float
    tz: str
    stop_id: str | None = None
    placement_id: str | None = None
    note: str | None = None

    def properties(self) -> dict[str, Any]:
        """``stop_id`` or ``placement_id``, ``stop_name``, ``leaves_at`` (ISO) and ``note``."""
        out: dict[str, Any] = {}
        if self.stop_id is not None:
            out["stop_id"] = self.stop_id
        if self.placement_id is not None:
            out["placement_id"] = self.placement_id
        out["stop_name"] = self.name
        out["location"] = [self.lon, self.lat]
        out["leaves_at"] = iso_or_none(self.leaves_at, self.tz)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Segment:
    """Part of a bus's day: ``[start, end)`` at one place."""

    start: datetime
    end: datetime
    lon: float
    lat: float
    name: str
    stop_id: str | None = None
    placement_id: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.start.isoformat(timespec="minutes"),
            "until": self.end.isoformat(timespec="minutes"),
            "source": "placement" if self.placement_id else "schedule",
        }
        if self.stop_id is not None:
            out["stop_id"] = self.stop_id
        if self.placement_id is not None:
            out["placement_id"] = self.placement_id
        out["name"] = self.name
        out["location"] = [self.lon, self.lat]
        if self.note:
            out["note"] = self.note
        return out


#: Per bus in service: position, unit vector (x, y, z), lon in radians, sin and cos of
#: lat, then status, amenity bits, category and district (what searches filter on).
BusRow = tuple[
    BusPosition, float, float, float, float, float, float, str, int, str | None, str | None
]


@dataclass
class _Snapshot:
    lo: float = NEVER
    hi: float = -NEVER
    version: int = -1
    positions: list[BusPosition] = field(default_factory=list)
    rows: list[BusRow] = field(default_factory=list)


class BusFleet:
    """Every cooling bus of a registry, with its schedule and placements.

    Parameters
    ----------
    buses : list of dict
        Validated bus Features (``Registry.buses``).
    placements : PlacementStore
        Where operators have put buses.
    timezone : str
        Zone of stop hours without the bus's own ``timezone``.
    holiday_country : str or None
        Country of ``PH``.
    cache : HoursCache, optional
        Shared with the stations' hours, so equal expressions are evaluated once.
    """

    def __init__(
        self,
        buses: list[dict[str, Any]],
        placements: PlacementStore | None = None,
        timezone: str = "Asia/Shanghai",
        holiday_country: str | None = "CN",
        cache: HoursCache | None = None,
    ) -> None:
        self.buses = buses
        self.placements = placements if placements is not None else PlacementStore()
        self.cache = cache if cache is not None else HoursCache()
        self.index_of = {str(b["id"]): i for i, b in enumerate(buses)}
        self.tz: list[str] = []
        self.stop_kid: list[list[int]] = []
        self.stop_valid: list[list[tuple[float, float]]] = []
        self.amenity_bits: list[int] = []
        for b in buses:
            p = b["properties"]
            tz = str(p.get("timezone") or timezone)
            self.tz.append(tz)
            kids, valid = [], []
            for s in p["stops"]:
                lon, lat = s["location"][:2]
                kids.append(
                    self.cache.key_id(
                        hours_key(str(s["opening_hours"]), tz, holiday_country, lon, lat)
                    )
                )
                valid.append(_validity(s, tz))
            self.stop_kid.append(kids)
            self.stop_valid.append(valid)
            self.amenity_bits.append(amenity_mask(p.get("amenities")))
        self._snap = _Snapshot()

    def __len__(self) -> int:
        return len(self.buses)

    def index(self, bus_id: str) -> int:
        """Position of bus *bus_id* (``NotFoundError`` naming it if there is none)."""
        i = self.index_of.get(bus_id)
        if i is None:
            raise NotFoundError(f"no cooling bus with id {bus_id!r}")
        return i

    def operator(self, i: int) -> str:
        return str(self.buses[i]["properties"]["operator"])

    def status(self, i: int) -> str:
        return str(self.buses[i]["properties"].get("status") or Status.operational.value)

    # -- where a bus stands -------------------------------------------------------------
    def position(self, i: int, ts: float) -> tuple[BusPosition | None, float]:
        """Where bus *i* stands at POSIX time *ts*, and until when that answer holds."""
        bus = self.buses[i]
        bus_id = str(bus["id"])
        tz = self.tz[i]
        pl = self.placements.active(bus_id, ts)
        if pl is not None:
            pos = BusPosition(
                i,
                bus_id,
                pl.lon,
                pl.lat,
                pl.note or "placement",
                pl.until_ts,
                tz,
                placement_id=pl.placement_id,
                note=pl.note,
            )
            return pos, pl.until_ts
        nxt = self.placements.next_start(bus_id, ts)
        cut = NEVER if nxt is None else nxt  # a placement starting later ends a stop early
        horizon = cut
        stops = bus["properties"]["stops"]
        found: BusPosition | None = None
        for j, kid in enumerate(self.stop_kid[i]):
            lo, hi = self.stop_valid[i][j]
            if ts < lo:
                horizon = min(horizon, lo)
                continue
            if ts >= hi:
                continue
            st, end = self.cache.state(kid, ts)
            end = min(end, hi)
            horizon = min(horizon, end)
            if st == OPEN and found is None:
                s = stops[j]
                lon, lat = s["location"][:2]
                found = BusPosition(
                    i,
                    bus_id,
                    float(lon),
                    float(lat),
                    str(s["name"]),
                    min(end, cut),
                    tz,
                    stop_id=str(s["stop_id"]),
                )
        return found, horizon

    def positions(self, ts: float) -> list[BusPosition]:
        """Every bus in service at POSIX time *ts* (cached until the next change)."""
        return self._snapshot(ts).positions

    def rows(self, ts: float) -> list[BusRow]:
        """:meth:`positions` with what a search needs precomputed (see :data:`BusRow`)."""
        return self._snapshot(ts).rows

    def _snapshot(self, ts: float) -> _Snapshot:
        snap = self._snap
        version = self.placements.version
        if snap.version == version and snap.lo <= ts < snap.hi:
            return snap
        out: list[BusPosition] = []
        rows: list[BusRow] = []
        hi = NEVER
        for i in range(len(self.buses)):
            pos, until = self.position(i, ts)
            hi = min(hi, until)
            if pos is None:
                continue
            out.append(pos)
            p = self.buses[i]["properties"]
            lam, phi = math.radians(pos.lon), math.radians(pos.lat)
            c = math.cos(phi)
            rows.append(
                (
                    pos,
                    c * math.cos(lam),
                    c * math.sin(lam),
                    math.sin(phi),
                    lam,
                    math.sin(phi),
                    c,
                    self.status(i),
                    self.amenity_bits[i],
                    p.get("category"),
                    p.get("district"),
                )
            )
        self._snap = _Snapshot(ts, hi, version, out, rows)
        return self._snap

    def timeline(self, i: int, day: date) -> list[Segment]:
        """Where bus *i* stands through *day* (local midnight to midnight), in time order."""
        bus = self.buses[i]
        tz = self.tz[i]
        start, end = day_bounds(day, tz)
        s_ts, e_ts = start.timestamp(), end.timestamp()
        pls = self.placements.overlapping(str(bus["id"]), s_ts, e_ts)
        z = zone(tz)
        segs: list[Segment] = []
        for j, s in enumerate(bus["properties"]["stops"]):
            lo, hi = self.stop_valid[i][j]
            key = self.cache.keys[self.stop_kid[i][j]]
            for a, b, st in merged_intervals(key, start, end):
                if st != OPEN:
                    continue
                x, y = max(a.timestamp(), lo, s_ts), min(b.timestamp(), hi, e_ts)
                for u, v in _subtract((x, y), [(p.start_ts, p.until_ts) for p in pls]):
                    lon, lat = s["location"][:2]
                    segs.append(
                        Segment(
                            datetime.fromtimestamp(u, z),
                            datetime.fromtimestamp(v, z),
                            float(lon),
                            float(lat),
                            str(s["name"]),
                            stop_id=str(s["stop_id"]),
                        )
                    )
        for p in pls:
            u, v = max(p.start_ts, s_ts), min(p.until_ts, e_ts)
            segs.append(
                Segment(
                    datetime.fromtimestamp(u, z),
                    datetime.fromtimestamp(v, z),
                    p.lon,
                    p.lat,
                    p.note or "placement",
                    placement_id=p.placement_id,
                    note=p.note,
                )
            )
        segs.sort(key=lambda g: (g.start, g.end))
        return segs

    # -- moving a bus -------------------------------------------------------------------
    def place(
        self,
        bus_id: str,
        location: Any,
        start: datetime,
        until: datetime,
        operator: str,
        note: str | None = None,
        maximum: timedelta = MAX_PLACEMENT,
    ) -> Placement:
        """Put bus *bus_id* at *location* ``[lon, lat]`` for ``[start, until)``.

        Raises
        ------
        NotFoundError
            No such bus.
        InvalidInputError
            Bad ``location`` (not ``[lon, lat]``, or more than 200 km from every stop of
            the bus) or a bad window (``until``).
        ConflictError
            The window overlaps another placement of the bus.
        """
        i = self.index(bus_id)
        try:
            lon, lat = check_lon_lat(location)
        except ValueError as exc:
            raise InvalidInputError("location", str(exc)) from None
        stops = self.buses[i]["properties"]["stops"]
        nearest = min(
            float(haversine_m(lon, lat, s["location"][0], s["location"][1])) for s in stops
        )
        if nearest > MAX_PLACEMENT_DISTANCE_M:
            raise InvalidInputError(
                "location",
                f"Expected a place within {MAX_PLACEMENT_DISTANCE_M / 1000:.0f} km of one of the "
                f"bus's stops, got [{lon}, {lat}], {nearest / 1000:.0f} km away "
                "(are lon and lat swapped?)",
            )
        return self.placements.add(bus_id, lon, lat, start, until, operator, note, maximum)


def _subtract(
    span: tuple[float, float], cuts: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Parts of *span* outside every window in *cuts*."""
    parts = [span] if span[0] < span[1] else []
    for c0, c1 in cuts:
        nxt: list[tuple[float, float]] = []
        for a, b in parts:
            if c1 <= a or c0 >= b:
                nxt.append((a, b))
                continue
            if a < c0:
                nxt.append((a, c0))
            if c1 < b:
                nxt.append((c1, b))
        parts = nxt
    return parts
