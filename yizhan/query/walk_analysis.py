"""Analyses on foot as they run in analysis processes (:mod:`yizhan.query.analysis`).

``GET /coverage?metric=walk`` (with ``access``), ``POST /analysis/site`` with
``metric=walk`` and the planner map on foot run in the killable analysis processes like
their great-circle counterparts (time, memory, queue and per-client limits). Each function
takes a :class:`~yizhan.query.walking.WalkSpec` rather than the network: the process maps
the network file (:meth:`Walking.open`, no copy of the arrays) and takes the snaps of its
stations, demand and candidates from the spec (:meth:`Walking.spec`: the server snapped
them), so it builds no snapping index; ``docs/walking.md`` gives the measured cost. The
answers are built by the same functions the CLI calls in its own process, so both give the
same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from yizhan.geo.coverage import StationSet, coverage
from yizhan.geo.demand import Demand
from yizhan.query.analysis import Selected, site_analysis
from yizhan.query.walk_studies import (
    walk_access,
    walk_coverage,
    walk_members,
    walk_siting_inputs,
)
from yizhan.query.walking import Walking, WalkSpec


def access_members(walking: Walking, minutes: float) -> dict[str, Any]:
    """What a 2SFCA answer on foot adds to :meth:`AccessResult.to_dict`."""
    return {"metric": "walk", "minutes": minutes, "speed_kmh": walking.speed_kmh}


def walk_coverage_answer(
    walking: Walking,
    stations: StationSet,
    demand: Demand,
    radius_m: float,
    minutes: float,
    access: bool,
) -> dict[str, Any]:
    """Coverage within *minutes* on foot with the great-circle summary within *radius_m*
    and the per-district side-by-side table (and, with *access*, 2SFCA on foot), as the
    dict ``GET /coverage?metric=walk`` answers (without its ``demand`` and ``stations``)."""
    table = Selected(stations)
    gc = coverage(table, demand, radius_m)
    result = walk_coverage(walking, table, demand, minutes)
    out = result.to_dict()
    out.update(walk_members(walking, gc, result, minutes))
    if access:
        out["access"] = walk_access(walking, table, demand, minutes).to_dict()
        out["access"].update(access_members(walking, minutes))
    return out


def walk_coverage_analysis(
    spec: WalkSpec,
    stations: StationSet,
    demand: Demand,
    radius_m: float,
    minutes: float,
    access: bool,
) -> dict[str, Any]:
    """:func:`walk_coverage_answer` on the network of *spec* (in an analysis process)."""
    return walk_coverage_answer(Walking.open(spec), stations, demand, radius_m, minutes, access)


def walk_site_answer(
    walking: Walking,
    demand: Demand,
    existing_lon: NDArray[np.float64],
    existing_lat: NDArray[np.float64],
    candidates_lon: NDArray[np.float64] | None,
    candidates_lat: NDArray[np.float64] | None,
    n_new: int,
    minutes: float,
    time_limit_s: float,
) -> dict[str, Any]:
    """Maximal-covering siting on foot: cover sets from bounded searches from the
    candidates (default: the demand points not covered on foot), as the dict
    ``POST /analysis/site`` answers with ``metric=walk``."""
    radius_m, cover, covered = walk_siting_inputs(
        walking, existing_lon, existing_lat, demand, minutes
    )
    return site_analysis(
        demand,
        existing_lon,
        existing_lat,
        candidates_lon,
        candidates_lat,
        n_new,
        radius_m,
        time_limit_s,
        cover=cover,
        covered=covered,
        members={"metric": "walk", "minutes": minutes, "speed_kmh": walking.speed_kmh},
    )


def walk_site_analysis(
    spec: WalkSpec,
    demand: Demand,
    existing_lon: NDArray[np.float64],
    existing_lat: NDArray[np.float64],
    candidates_lon: NDArray[np.float64] | None,
    candidates_lat: NDArray[np.float64] | None,
    n_new: int,
    minutes: float,
    time_limit_s: float,
) -> dict[str, Any]:
    """:func:`walk_site_answer` on the network of *spec* (in an analysis process)."""
    return walk_site_answer(
        Walking.open(spec),
        demand,
        existing_lon,
        existing_lat,
        candidates_lon,
        candidates_lat,
        n_new,
        minutes,
        time_limit_s,
    )
