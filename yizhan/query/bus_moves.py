"""Suggestions for cooling buses: "move bus X from its least-used stop to this uncovered point".

For each operational cooling bus, its least-used stop is the one with the fewest visits per
open hour over the usage period. In that stop's window (the bus's time there on *day*, or
the next day it stands there within a week), the service is every station open at the
window's middle and every other bus standing then; the siting model
(:func:`yizhan.geo.siting.site_buses`, maximal covering with ``k = 1``) picks the point of
that demand which gains most coverage. A suggestion says what the move gains (demand newly
covered) and loses (demand only that stop covered), and is made only when it gains more.
Buses are taken in registry order, each counting the points suggested for the ones before
it as served, so two buses are not sent to the same gap.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np

from yizhan.geo.demand import Demand
from yizhan.geo.distance import haversine_m
from yizhan.geo.nearest import PointIndex
from yizhan.geo.siting import site_buses
from yizhan.query.usage import Usage
from yizhan.stations.registry import StationFilter
from yizhan.stations.search import StationSearch

#: Days looked ahead for a day the bus stands at its least-used stop.
LOOK_AHEAD_DAYS = 7


def bus_moves(
    search: StationSearch,
    usage: Usage,
    demand: Demand,
    day: date,
    radius_m: float = 1000.0,
    time_limit_s: float = 10.0,
) -> list[dict[str, Any]]:
    """One suggestion per bus where moving from its least-used stop gains coverage."""
    units = usage.units
    fleet = search.fleet
    flt = StationFilter()
    vpoh = usage.per_open_hour
    out: list[dict[str, Any]] = []
    moved_to: list[tuple[float, float]] = []  # earlier suggestions count as service
    for b, bus in enumerate(fleet.buses):
        bus_id = str(bus["id"])
        if fleet.status(b) != "operational":
            continue
        stops = [
            i
            for i, s in enumerate(units.station_id)
            if s == bus_id and units.stop_id[i] is not None and usage.open_hours[i] > 0
        ]
        if not stops:
            continue
        worst = min(stops, key=lambda i: (vpoh[i], units.keys[i]))
        stop_id = units.stop_id[worst]
        seg = None
        for ahead in range(LOOK_AHEAD_DAYS):
            seg = next(
                (g for g in fleet.timeline(b, day + timedelta(days=ahead)) if g.stop_id == stop_id),
                None,
            )
            if seg is not None:
                break
        if seg is None:
            continue
        ts = (seg.start.timestamp() + seg.end.timestamp()) / 2
        lon, lat, n_st, _ = search.serving_at(flt, ts)
        others = [h for h in search.buses_near(0.0, 0.0, flt, ts) if h.position.bus_id != bus_id]
        s_lon = np.concatenate(
            [lon[:n_st], [h.position.lon for h in others], [x for x, _ in moved_to]]
        )
        s_lat = np.concatenate(
            [lat[:n_st], [h.position.lat for h in others], [y for _, y in moved_to]]
        )
        result = site_buses(
            demand, (s_lon, s_lat), None, None, k=1, radius_m=radius_m, time_limit_s=time_limit_s
        )
        if not result.chosen:
            continue
        gain = float(result.objective)
        # What only this stop covers, lost when the bus leaves it.
        near_stop = haversine_m(demand.lon, demand.lat, seg.lon, seg.lat) <= radius_m
        if s_lon.size:
            other_d = PointIndex(s_lon, s_lat).nearest_distance_m(demand.lon, demand.lat)
            only = near_stop & (other_d > radius_m)
        else:
            only = near_stop
        loss = float(demand.weight[only].sum())
        if not gain > loss:
            continue
        moved_to.append((float(result.lon[0]), float(result.lat[0])))
        out.append(
            {
                "bus_id": bus_id,
                "bus_name": str(bus["properties"].get("name", bus_id)),
                "from_stop_id": stop_id,
                "from_stop_name": seg.name,
                "from": [seg.lon, seg.lat],
                "to": [float(result.lon[0]), float(result.lat[0])],
                "window": {"from": seg.start.isoformat(), "until": seg.end.isoformat()},
                "from_visits_per_open_hour": None
                if math.isnan(vpoh[worst])
                else round(float(vpoh[worst]), 3),
                "gain": round(gain, 3),
                "loss": round(loss, 3),
                "weight_name": demand.weight_name,
                "radius_m": radius_m,
            }
        )
    return out


__all__ = ["bus_moves"]
