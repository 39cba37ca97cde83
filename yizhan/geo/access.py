"""Accessibility: the two-step floating catchment area method (2SFCA).

Coverage says whether a station is near; 2SFCA also says whether it is big enough for
the people around it (Luo & Wang 2003). With demand points *i* (weight ``w_i``), stations
*j* (capacity ``S_j``), distance ``d_ij`` (great-circle, or on foot:
:func:`two_step_fca_from_costs` takes the costs of any metric) and catchment radius ``r``:

1. For each station, the supply-to-demand ratio of its catchment::

       R_j = S_j / Σ_{i: d_ij ≤ r} f(d_ij) · w_i

2. For each demand point, the sum of the ratios of the stations it can reach::

       A_i = Σ_{j: d_ij ≤ r} f(d_ij) · R_j

``A_i`` is capacity per unit of demand (e.g. places per worker; ×1,000 gives places per
1,000 workers). Summed over all demand, ``Σ w_i A_i`` equals the total capacity of the
stations that have any demand in their catchment: capacity is shared out, never created.

Distance decay ``f``:

``"none"`` (default)
    ``f = 1`` inside the catchment: the classic 2SFCA.
``"gaussian"``
    ``f(d) = (exp(-½ (d/r)²) − exp(-½)) / (1 − exp(-½))`` for ``d ≤ r``, 0 beyond: 1 at the
    station, falling smoothly to 0 at the catchment edge (Dai 2010, "Gaussian 2SFCA").

Capacity is the station's ``capacity`` property (places / seats). Where it is unknown,
:data:`DEFAULT_CAPACITY` (or the ``default_capacity`` argument) is assumed, and the
number of stations for which that happened is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import (
    StationMask,
    Stations,
    check_radius,
    select_stations,
    station_district_counts,
)
from yizhan.geo.demand import Demand
from yizhan.geo.siting import pairs_within

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Places assumed at a station whose capacity is unknown: a small union station room
#: with about ten seats. An assumption, not a measured value; pass your own.
DEFAULT_CAPACITY = 10.0

Decay = Literal["none", "gaussian"]
_EXP_HALF = math.exp(-0.5)


def decay_weight(distance_m: ArrayLike, radius_m: float, decay: Decay = "none") -> FloatArray:
    """Distance-decay factor ``f(d)`` (see the module notes); 0 beyond *radius_m*."""
    d = np.asarray(distance_m, dtype=np.float64)
    inside = d <= radius_m
    if decay == "none":
        return np.where(inside, 1.0, 0.0)
    if decay == "gaussian":
        g = (np.exp(-0.5 * (d / radius_m) ** 2) - _EXP_HALF) / (1.0 - _EXP_HALF)
        return np.where(inside, np.clip(g, 0.0, 1.0), 0.0)
    raise InvalidInputError("decay", f"Expected 'none' or 'gaussian', got {decay!r}")


@dataclass(frozen=True, eq=False)
class AccessResult:
    """Outcome of :func:`two_step_fca`.

    Attributes
    ----------
    radius_m : float
        Catchment radius.
    decay : str
        ``"none"`` or ``"gaussian"``.
    weight_name : str
        What the demand weight is.
    total_weight : float
        All demand.
    total_capacity : float
        Capacity of the selected stations (defaults included).
    capacity_defaulted : int
        Selected stations whose capacity was unknown and assumed.
    mean_access : float
        Demand-weighted mean of ``access`` (capacity per unit of demand).
    no_access_weight : float
        Demand with no station in reach (``access == 0``).
    no_access_pct : float
        The same as a percentage of all demand.
    per_district : list of dict
        Rows ``{"district", "demand", "mean_access", "access_per_1000", "no_access_pct",
        "stations", "capacity"}``; ``stations``/``capacity`` count selected stations
        located in the district (``None`` when unknown). Empty without districts.
    access : numpy.ndarray
        ``A_i`` per demand point.
    station_index : numpy.ndarray of int
        Position of each selected station in the input.
    station_capacity : numpy.ndarray
        ``S_j`` used for each selected station.
    station_demand : numpy.ndarray
        Distance-weighted demand in each station's catchment.
    station_ratio : numpy.ndarray
        ``R_j`` per selected station (``nan`` when its catchment holds no demand).
    """

    radius_m: float
    decay: str
    weight_name: str
    total_weight: float
    total_capacity: float
    capacity_defaulted: int
    mean_access: float
    no_access_weight: float
    no_access_pct: float
    per_district: list[dict[str, Any]]
    access: FloatArray = field(repr=False)
    station_index: IntArray = field(repr=False)
    station_capacity: FloatArray = field(repr=False)
    station_demand: FloatArray = field(repr=False)
    station_ratio: FloatArray = field(repr=False)
    station_ids: list[str] | None = field(default=None, repr=False)

    def to_dict(
        self, include_points: bool = False, include_stations: bool = False
    ) -> dict[str, Any]:
        """JSON-ready summary (plain Python types; ``nan`` becomes ``None``).

        Parameters
        ----------
        include_points : bool
            Add ``access`` per demand point.
        include_stations : bool
            Add a ``stations`` list: ``index`` (and ``id``), ``capacity``, ``demand``,
            ``ratio`` per selected station.
        """
        out: dict[str, Any] = {
            "radius_m": self.radius_m,
            "decay": self.decay,
            "weight_name": self.weight_name,
            "total_weight": self.total_weight,
            "total_capacity": self.total_capacity,
            "capacity_defaulted": self.capacity_defaulted,
            "mean_access": self.mean_access,
            "mean_access_per_1000": self.mean_access * 1000.0,
            "no_access_weight": self.no_access_weight,
            "no_access_pct": self.no_access_pct,
            "per_district": [dict(r) for r in self.per_district],
        }
        if include_points:
            out["access"] = self.access.tolist()
        if include_stations:
            rows = []
            for k, j in enumerate(self.station_index.tolist()):
                ratio = float(self.station_ratio[k])
                row: dict[str, Any] = {
                    "index": j,
                    "capacity": float(self.station_capacity[k]),
                    "demand": float(self.station_demand[k]),
                    "ratio": None if math.isnan(ratio) else ratio,
                }
                if self.station_ids is not None:
                    row["id"] = self.station_ids[k]
                rows.append(row)
            out["stations"] = rows
        return out


def two_step_fca(
    stations: Stations,
    demand: Demand,
    radius_m: float = 1000.0,
    station_mask: StationMask = None,
    *,
    capacity: ArrayLike | None = None,
    default_capacity: float = DEFAULT_CAPACITY,
    decay: Decay = "none",
) -> AccessResult:
    """Two-step floating catchment accessibility of each demand point and district.

    The catchments are the demand points within great-circle *radius_m* of each station;
    :func:`two_step_fca_from_costs` is the same method on costs of any metric (e.g. on
    foot).

    Parameters
    ----------
    stations : Registry or (lon, lat)
        Stations (WGS-84).
    demand : Demand
        Weighted demand points, optionally with districts.
    radius_m : float
        Catchment radius, metres (great-circle). Default 1,000 m.
    station_mask : StationFilter, array_like of bool, or None
        Which stations count (``None`` = all).
    capacity : array_like, optional
        Capacity of every station in *stations* (before masking); ``nan`` = unknown.
        Overrides the registry's ``capacity`` property.
    default_capacity : float
        Capacity assumed where unknown (default :data:`DEFAULT_CAPACITY`).
    decay : {"none", "gaussian"}
        Distance decay inside the catchment.

    Returns
    -------
    AccessResult

    Examples
    --------
    >>> d = Demand.from_arrays([113.650, 113.655], [34.75, 34.75], [100, 100])
    >>> res = two_step_fca(([113.6525], [34.75]), d, capacity=[10])
    >>> res.access.tolist()
    [0.05, 0.05]
    """
    r = check_radius(radius_m)
    if not isinstance(demand, Demand):
        raise InvalidInputError("demand", f"Expected a Demand, got {type(demand).__name__}")
    st = select_stations(stations, station_mask)
    pairs = pairs_within(demand.lon, demand.lat, st.lon, st.lat, r)
    return two_step_fca_from_costs(
        stations,
        demand,
        pairs,
        r,
        station_mask,
        capacity=capacity,
        default_capacity=default_capacity,
        decay=decay,
    )


def two_step_fca_from_costs(
    stations: Stations,
    demand: Demand,
    costs: tuple[ArrayLike, ArrayLike, ArrayLike],
    radius_m: float,
    station_mask: StationMask = None,
    *,
    capacity: ArrayLike | None = None,
    default_capacity: float = DEFAULT_CAPACITY,
    decay: Decay = "none",
) -> AccessResult:
    """2SFCA from a sparse demand × station cost matrix: the core every metric shares.

    Like spopt's ``from_cost_matrix`` constructors, the metric is left to the caller:
    :func:`two_step_fca` gives great-circle metres, walking gives metres on foot (bounded
    searches from the stations, :meth:`yizhan.geo.network.WalkNetwork.cover_pairs`).

    Parameters
    ----------
    stations : Registry or (lon, lat)
        Stations (WGS-84), as for :func:`two_step_fca`.
    demand : Demand
        Weighted demand points.
    costs : (demand_index, station_index, cost_m)
        The pairs within reach, in COO form: positions in *demand* and in the *selected*
        stations (after *station_mask*), and the cost of each pair in metres (>= 0). Pairs
        costing more than *radius_m* are outside the catchment; pairs not listed are
        unreachable.
    radius_m : float
        The catchment, in the costs' metres (the decay is scaled by it).
    station_mask, capacity, default_capacity, decay
        As for :func:`two_step_fca`.

    Returns
    -------
    AccessResult
    """
    r = check_radius(radius_m)
    if not (math.isfinite(default_capacity) and default_capacity >= 0):
        raise InvalidInputError(
            "default_capacity", f"Expected a finite capacity >= 0, got {default_capacity!r}"
        )
    if decay not in ("none", "gaussian"):
        raise InvalidInputError("decay", f"Expected 'none' or 'gaussian', got {decay!r}")
    if not isinstance(demand, Demand):
        raise InvalidInputError("demand", f"Expected a Demand, got {type(demand).__name__}")
    st = select_stations(stations, station_mask)
    cap = st.capacity
    if capacity is not None:
        full = np.asarray(capacity, dtype=np.float64).ravel()
        n_all = len(stations) if not isinstance(stations, tuple) else int(np.size(stations[0]))
        if full.shape[0] != n_all:
            raise InvalidInputError(
                "capacity", f"Expected one capacity per station ({n_all}), got {full.shape[0]}"
            )
        cap = full[st.index]
    bad = (np.isfinite(cap) & (cap < 0)) | np.isinf(cap)
    if bad.any():
        raise InvalidInputError("capacity", f"Expected capacities >= 0, got {float(cap[bad][0])!r}")
    unknown = np.isnan(cap)
    supply = np.where(unknown, default_capacity, cap)
    ns = len(st)
    i, j, d = _check_costs(costs, len(demand), ns)

    w = demand.weight
    f = decay_weight(d, r, decay)
    catch = np.asarray(np.bincount(j, weights=f * w[i], minlength=ns), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(catch > 0, supply / np.where(catch > 0, catch, 1.0), np.nan)
    contrib = f * np.nan_to_num(ratio[j], nan=0.0)
    access = np.asarray(np.bincount(i, weights=contrib, minlength=len(demand)), dtype=np.float64)

    total = float(w.sum())
    no = access <= 0
    no_w = float(w[no].sum())
    rows = _district_rows(demand, st, access, supply)
    return AccessResult(
        radius_m=r,
        decay=decay,
        weight_name=demand.weight_name,
        total_weight=total,
        total_capacity=float(supply.sum()),
        capacity_defaulted=int(unknown.sum()),
        mean_access=float((w * access).sum() / total) if total > 0 else 0.0,
        no_access_weight=no_w,
        no_access_pct=100.0 * no_w / total if total > 0 else 0.0,
        per_district=rows,
        access=access,
        station_index=st.index,
        station_capacity=supply,
        station_demand=catch,
        station_ratio=ratio,
        station_ids=st.ids,
    )


def _check_costs(
    costs: tuple[ArrayLike, ArrayLike, ArrayLike], n_demand: int, n_stations: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The cost pairs as arrays, or an error naming ``costs``."""
    try:
        a, b, c = costs
    except (TypeError, ValueError):
        raise InvalidInputError(
            "costs", "Expected (demand_index, station_index, cost_m) arrays"
        ) from None
    i = np.asarray(a, dtype=np.int64).ravel()
    j = np.asarray(b, dtype=np.int64).ravel()
    d = np.asarray(c, dtype=np.float64).ravel()
    if not i.shape == j.shape == d.shape:
        raise InvalidInputError("costs", "Expected three arrays of one length")
    if i.size and not (
        i.min() >= 0 and i.max() < n_demand and j.min() >= 0 and j.max() < n_stations
    ):
        raise InvalidInputError("costs", "an index is outside the demand or the stations")
    if not (np.isfinite(d).all() and (d >= 0).all()):
        raise InvalidInputError("costs", "Expected finite costs >= 0")
    return i, j, d


def _district_rows(
    demand: Demand, st: Any, access: FloatArray, supply: FloatArray
) -> list[dict[str, Any]]:
    if demand.district_code is None:
        return []
    k = len(demand.district_names)
    code = demand.district_code + 1
    w = demand.weight
    dem = np.bincount(code, weights=w, minlength=k + 1)
    wa = np.bincount(code, weights=w * access, minlength=k + 1)
    none = np.bincount(code, weights=np.where(access <= 0, w, 0.0), minlength=k + 1)
    npts = np.bincount(code, minlength=k + 1)
    counts = station_district_counts(demand, st)
    caps: FloatArray | None = None
    if demand.districts is not None:
        sc = demand.districts.assign(st.lon, st.lat)
        caps = np.asarray(
            np.bincount(sc[sc >= 0], weights=supply[sc >= 0], minlength=k), dtype=np.float64
        )
    elif counts is not None and st.district is not None:
        pos = {name: n for n, name in enumerate(demand.district_names)}
        caps = np.zeros(k)
        for s_i, dname in enumerate(st.district):
            if dname in pos:
                caps[pos[dname]] += supply[s_i]

    def row(name: str | None, c: int, n_st: int | None, cap: float | None) -> dict[str, Any]:
        mean = float(wa[c] / dem[c]) if dem[c] > 0 else 0.0
        return {
            "district": name,
            "demand": float(dem[c]),
            "mean_access": mean,
            "access_per_1000": mean * 1000.0,
            "no_access_pct": 100.0 * float(none[c] / dem[c]) if dem[c] > 0 else 0.0,
            "stations": n_st,
            "capacity": cap,
        }

    rows = [
        row(
            name,
            n + 1,
            None if counts is None else int(counts[n]),
            None if caps is None else float(caps[n]),
        )
        for n, name in enumerate(demand.district_names)
    ]
    if npts[0] > 0:
        rows.append(row(None, 0, None, None))
    return rows


__all__ = [
    "DEFAULT_CAPACITY",
    "AccessResult",
    "Decay",
    "decay_weight",
    "two_step_fca",
    "two_step_fca_from_costs",
]
