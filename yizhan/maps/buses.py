"""Cooling buses on the planner map: where each bus stands through a day, and its payload.

A bus (纳凉公交) moves between stops on a schedule; :func:`derive_bus_timeline` works out
from its stops' opening hours where it stands during a day, and :func:`bus_payload` packs
buses, stops and timeline for the map's ``yz.buses`` layer and time slider.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import opening_hours

from yizhan.errors import InvalidInputError
from yizhan.maps._core import BUS_COLORS
from yizhan.maps.basemaps import gcj_point

#: Where Yizhan's stations are: opening hours and bus timelines are local time here.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

BusInterval = tuple[datetime, datetime, float, float, str]


def _bus_id(bus: Mapping[str, Any], i: int) -> str:
    bid = bus.get("id")
    if bid is None:
        bid = (bus.get("properties") or {}).get("name")
    return str(bid) if bid is not None else f"bus-{i}"


def _local_naive(t: datetime) -> datetime:
    return t.astimezone(LOCAL_TZ).replace(tzinfo=None) if t.tzinfo is not None else t


def derive_bus_timeline(
    buses: Sequence[Mapping[str, Any]], day: date
) -> dict[str, list[BusInterval]]:
    """Where each cooling bus stands during *day*, from its stops' opening hours.

    Each stop's ``opening_hours`` (OSM syntax) is evaluated with opening-hours-py over
    the day (local time, Asia/Shanghai); every open interval puts the bus at that stop.
    Stops with ``valid_from``/``valid_to`` dates count only on days inside them. When
    two stops of one bus are open at the same time, the later-starting stop wins and the
    earlier interval is cut where it starts (a bus is in one place at a time). Operator
    placements are not known here: pass ``bus_timeline`` to :func:`planner_map` for them.

    Parameters
    ----------
    buses : sequence of dict
        Bus Features; ``properties.stops`` is a list of ``{stop_id, name, location:
        [lon, lat], opening_hours}``.
    day : datetime.date
        The day to evaluate.

    Returns
    -------
    dict
        Bus id (Feature ``id``, else its name) -> ``[(start, end, lon, lat, stop_name)]``
        sorted by start, naive local datetimes.

    Raises
    ------
    InvalidInputError
        A stop has no valid location or unparseable opening hours (the message names it).
    """
    start = datetime.combine(day, time())
    end = start + timedelta(days=1)
    out: dict[str, list[BusInterval]] = {}
    for i, bus in enumerate(buses):
        props = bus.get("properties") or {}
        spans: list[BusInterval] = []
        for j, stop in enumerate(props.get("stops") or []):
            where = f"buses[{i}].properties.stops[{j}]"
            lon, lat = _stop_lon_lat(stop, where)
            expr = stop.get("opening_hours")
            if not expr or not _valid_on(stop, day, where):
                continue
            try:
                oh = opening_hours.OpeningHours(str(expr))
                intervals = list(oh.intervals(start, end))
            except Exception as exc:
                raise InvalidInputError(
                    f"{where}.opening_hours", f"cannot evaluate {expr!r}: {exc}"
                ) from exc
            for a, b, state, _comment in intervals:
                if str(state).rsplit(".", 1)[-1].upper() != "OPEN":
                    continue
                a, b = max(_local_naive(a), start), min(_local_naive(b), end)
                if a < b:
                    spans.append(
                        (a, b, lon, lat, str(stop.get("name") or stop.get("stop_id") or ""))
                    )
        spans.sort(key=lambda s: s[0])
        clean: list[BusInterval] = []
        for s in spans:
            if clean and clean[-1][1] > s[0]:
                prev = clean.pop()
                if prev[0] < s[0]:
                    clean.append((prev[0], s[0], *prev[2:]))
            clean.append(s)
        out[_bus_id(bus, i)] = clean
    return out


def _valid_on(stop: Mapping[str, Any], day: date, where: str) -> bool:
    """Whether *day* is inside the stop's optional ``valid_from``/``valid_to`` dates."""
    bounds: dict[str, date] = {}
    for key in ("valid_from", "valid_to"):
        value = stop.get(key)
        if value is None:
            continue
        try:
            bounds[key] = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        except ValueError as exc:
            raise InvalidInputError(f"{where}.{key}", f"Expected a date, got {value!r}") from exc
    return bounds.get("valid_from", day) <= day <= bounds.get("valid_to", day)


def _stop_lon_lat(stop: Mapping[str, Any], where: str) -> tuple[float, float]:
    loc = stop.get("location")
    try:
        lon, lat = float(loc[0]), float(loc[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise InvalidInputError(f"{where}.location", f"Expected [lon, lat], got {loc!r}") from exc
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInputError(f"{where}.location", f"Expected [lon, lat] in degrees, got {loc!r}")
    return lon, lat


def bus_payload(
    buses: Sequence[Mapping[str, Any]],
    timeline: Mapping[str, Sequence[BusInterval]],
    day: date,
    *,
    gcj: bool = False,
) -> dict[str, Any]:
    """The ``yz.buses`` payload: each bus with its stops and where it stands through *day*
    (minutes after midnight); with *gcj*, every position also in GCJ-02 (``glat``/``glon``
    of stops, items 5 and 6 of a timeline interval) for the GCJ-02 base maps."""
    midnight = datetime.combine(day, time())
    items = []
    first = 1440.0
    for i, bus in enumerate(buses):
        props = bus.get("properties") or {}
        stops = []
        for j, stop in enumerate(props.get("stops") or []):
            lon, lat = _stop_lon_lat(stop, f"buses[{i}].properties.stops[{j}]")
            item: dict[str, Any] = {
                "name": str(stop.get("name") or stop.get("stop_id") or ""),
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "hours": stop.get("opening_hours"),
            }
            if gcj:
                item["glat"], item["glon"] = gcj_point(lat, lon)
            stops.append(item)
        spans = []
        for a, b, lon, lat, stop_name in timeline.get(_bus_id(bus, i), ()):
            s = (_local_naive(a) - midnight).total_seconds() / 60.0
            e = (_local_naive(b) - midnight).total_seconds() / 60.0
            s, e = max(s, 0.0), min(e, 1440.0)
            if s < e:
                span: list[Any] = [
                    round(s, 1),
                    round(e, 1),
                    round(float(lat), 6),
                    round(float(lon), 6),
                    str(stop_name),
                ]
                if gcj:
                    span.extend(gcj_point(float(lat), float(lon)))
                spans.append(span)
                first = min(first, s)
        items.append(
            {
                "name": str(props.get("name") or _bus_id(bus, i)),
                "id": _bus_id(bus, i),
                "plate": props.get("plate"),
                "operator": props.get("operator"),
                "color": BUS_COLORS[i % len(BUS_COLORS)],
                "stops": stops,
                "timeline": spans,
            }
        )
    start = int(first // 5 * 5) if first < 1440 else 12 * 60
    return {"buses": items, "start": start, "date": day.isoformat()}


def first_day(timeline: Mapping[str, Sequence[BusInterval]] | None) -> date | None:
    """The first day a timeline covers (local time), or ``None``."""
    if not timeline:
        return None
    starts = [_local_naive(s[0]) for spans in timeline.values() for s in spans]
    return min(starts).date() if starts else None
