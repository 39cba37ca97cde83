"""Where to put new stations (or stand cooling buses): maximal covering location.

Problem (MCLP, Church & ReVelle 1974) with existing stations kept: choose at most
``n_new`` candidate sites so that the demand weight within ``radius_m`` of a *new* site,
among demand not already within ``radius_m`` of an existing station, is as large as
possible. Demand already covered by existing stations is left out of the model, as is
demand that no candidate can reach.

Model (solved exactly by HiGHS through :func:`scipy.optimize.milp`)::

    maximise    Σ_i w_i y_i
    subject to  y_i ≤ Σ_j a_ij x_j     for each demand row i
                Σ_j x_j ≤ n_new
                x_j ∈ {0, 1},  0 ≤ y_i ≤ 1

``a_ij = 1`` when candidate *j* is within ``radius_m`` of demand *i* (great-circle, the
same distance as ``/nearest``). The coverage matrix is sparse: it comes from a KD-tree
radius query (:meth:`scipy.spatial.cKDTree.sparse_distance_matrix` over unit vectors),
each pair then checked with the exact distance. Before solving, demand rows with exactly
the same set of candidates are merged (their weights added) and candidates with exactly
the same coverage are merged, which shrinks the model a lot without changing its optimum
(:mod:`yizhan.geo.siting_model`).

The greedy heuristic (repeatedly add the site with the largest extra coverage) is also
run and reported with its gap to the optimum; it is what is returned if the solver hits
its time limit with nothing better. The chosen sites are listed in the order of their
contribution: each one is the site among the chosen that adds the most to the ones
before it, and these marginal gains add up to the improvement.

Ties are broken deterministically and the same way by both answers: among candidates
adding equal demand, the one standing on more demand wins, then the one nearer an
existing station, then the one listed first (see :mod:`yizhan.geo.siting_model` for the
rule and why).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import (
    StationMask,
    Stations,
    check_points,
    check_radius,
    select_stations,
)
from yizhan.geo.demand import Demand
from yizhan.geo.distance import chord_to_m, m_to_chord
from yizhan.geo.nearest import PointIndex
from yizhan.geo.projection import LocalProjection
from yizhan.geo.siting_model import best_column, prefer_ranked, reduce_model, tie_order

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Default cap on candidates taken from uncovered demand.
DEFAULT_MAX_CANDIDATES = 2000


# -- coverage matrix ---------------------------------------------------------------------
#: ``cover(demand_lon, demand_lat, site_lon, site_lat, radius_m)`` -> 0/1 sparse matrix.
CoverMatrix = Callable[[FloatArray, FloatArray, FloatArray, FloatArray, float], sp.csr_matrix]


def pairs_within(
    lon1: ArrayLike,
    lat1: ArrayLike,
    lon2: ArrayLike,
    lat2: ArrayLike,
    radius_m: float,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Every pair of points (one from each set) at most *radius_m* apart.

    A KD-tree radius query over unit vectors finds the pairs; each is kept only if its
    exact great-circle distance (as in ``/nearest``) is ``<= radius_m``.

    Returns
    -------
    i, j : numpy.ndarray of int
        Positions in the first and second set.
    distance_m : numpy.ndarray of float
        Their distances, metres.
    """
    r = check_radius(radius_m)
    a = PointIndex(lon1, lat1)
    b = PointIndex(lon2, lat2)
    if a.n == 0 or b.n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    pairs = a.ball_tree.sparse_distance_matrix(
        b.ball_tree, max_distance=m_to_chord(r) + 1e-9, output_type="ndarray"
    )
    dist = chord_to_m(pairs["v"])
    ok = dist <= r
    return pairs["i"][ok].astype(np.int64), pairs["j"][ok].astype(np.int64), dist[ok]


def coverage_matrix(
    demand_lon: ArrayLike,
    demand_lat: ArrayLike,
    site_lon: ArrayLike,
    site_lat: ArrayLike,
    radius_m: float,
) -> sp.csr_matrix:
    """Sparse 0/1 matrix: ``A[i, j] = 1`` when site *j* is within *radius_m* of demand *i*.

    Parameters
    ----------
    demand_lon, demand_lat : array_like
        Demand points, degrees.
    site_lon, site_lat : array_like
        Candidate sites, degrees.
    radius_m : float
        Radius, metres (great-circle; a pair at exactly *radius_m* counts).

    Returns
    -------
    scipy.sparse.csr_matrix of int8, shape (n_demand, n_sites)
    """
    n = int(np.size(demand_lon))
    m = int(np.size(site_lon))
    rows, cols, _ = pairs_within(demand_lon, demand_lat, site_lon, site_lat, radius_m)
    mat = sp.csr_matrix(
        (np.ones(rows.shape[0], dtype=np.int8), (rows, cols)), shape=(n, m), dtype=np.int8
    )
    mat.sum_duplicates()
    mat.sort_indices()
    return mat


# -- greedy and exact solvers on a reduced model -----------------------------------------
def _greedy(
    a_csr: sp.csr_matrix,
    a_csc: sp.csc_matrix,
    w: FloatArray,
    n: int,
    allowed: BoolArray | None = None,
    covered: BoolArray | None = None,
) -> tuple[list[int], list[float]]:
    """Greedy maximal covering: up to *n* columns, each adding the most uncovered weight.

    Gains equal within ``TIE_RTOL`` go to the lowest (best-ranked) column. Stops early
    when nothing adds weight.
    """
    covered = np.zeros(a_csr.shape[0], dtype=bool) if covered is None else covered.copy()
    free_w = np.where(covered, 0.0, w)
    gains = np.asarray(a_csc.T @ free_w, dtype=np.float64).ravel()
    if allowed is not None:
        gains[~allowed] = -np.inf
    chosen: list[int] = []
    got: list[float] = []
    for _ in range(n):
        if gains.size == 0:
            break
        j = best_column(gains)
        if j < 0:
            break
        rows = a_csc.indices[a_csc.indptr[j] : a_csc.indptr[j + 1]]
        new = rows[~covered[rows]]
        g = float(w[new].sum())
        if not g > 0:
            break
        chosen.append(j)
        got.append(g)
        covered[new] = True
        sub = a_csr[new]
        gains -= np.bincount(
            sub.indices, weights=np.repeat(w[new], np.diff(sub.indptr)), minlength=gains.size
        )
        gains[j] = -np.inf
    return chosen, got


def _order_by_contribution(
    a_csr: sp.csr_matrix, a_csc: sp.csc_matrix, w: FloatArray, cols: Sequence[int]
) -> tuple[list[int], list[float]]:
    """Order chosen columns greedily among themselves; drop those adding nothing."""
    allowed = np.zeros(a_csr.shape[1], dtype=bool)
    allowed[list(cols)] = True
    return _greedy(a_csr, a_csc, w, len(cols), allowed)


@dataclass(frozen=True)
class _Solve:
    cols: list[int]
    status: str
    message: str
    bound: float
    seconds: float


def _solve_milp(
    a: sp.csr_matrix, w: FloatArray, n: int, time_limit_s: float, mip_rel_gap: float
) -> _Solve:
    rows, m = a.shape
    scale = 1.0 / float(w.mean()) if rows and w.mean() > 0 else 1.0
    c = np.concatenate([np.zeros(m), -w * scale])
    cover = sp.hstack([-a.astype(np.float64), sp.identity(rows, format="csr")], format="csr")
    budget = sp.csr_matrix(
        (np.ones(m), (np.zeros(m, dtype=np.int64), np.arange(m))), shape=(1, m + rows)
    )
    t0 = time.perf_counter()
    res = milp(
        c,
        integrality=np.concatenate([np.ones(m), np.zeros(rows)]),
        bounds=Bounds(0.0, 1.0),
        constraints=[
            LinearConstraint(cover, -np.inf, 0.0),
            LinearConstraint(budget, -np.inf, float(n)),
        ],
        options={
            "time_limit": float(time_limit_s),
            "mip_rel_gap": float(mip_rel_gap),
            "disp": False,
        },
    )
    secs = time.perf_counter() - t0
    status = {0: "optimal", 1: "time_limit"}.get(int(res.status), "error")
    bound = math.nan
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and math.isfinite(float(dual)):
        bound = -float(dual) / scale
    if res.x is None:
        return _Solve([], status, str(res.message), bound, secs)
    cols = np.flatnonzero(np.asarray(res.x[:m]) > 0.5).tolist()
    return _Solve(cols, status, str(res.message), bound, secs)


# -- result ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SitingResult:
    """Outcome of :func:`site_mclp` / :func:`site_buses`.

    Attributes
    ----------
    radius_m : float
        Coverage radius.
    n_new : int
        Sites asked for (fewer are returned when no further candidate adds coverage).
    weight_name : str
        What the weight is.
    total_weight : float
        All demand.
    covered_before, covered_after : float
        Demand within the radius of an existing station; and of an existing station or a
        chosen site.
    covered_before_pct, covered_after_pct : float
        The same as percentages of ``total_weight``.
    chosen : list of int
        Chosen candidate positions, in order of contribution (equal gains in the tie
        rank of :mod:`yizhan.geo.siting_model`).
    lon, lat : list of float
        Their coordinates.
    gains : list of float
        Marginal gain of each chosen site given the ones before it (sums to
        ``objective``).
    cumulative_covered : list of float
        Covered demand (existing + chosen so far) after each site.
    objective : float
        Demand newly covered by the chosen sites (the MCLP objective).
    upper_bound : float
        Solver's proven upper bound on the objective (``= objective`` when optimal;
        ``nan`` when unknown).
    status : str
        ``"optimal"``; ``"time_limit"`` (best found when time ran out; see
        ``upper_bound``); ``"trivial"`` (every useful candidate fits in ``n_new``);
        ``"greedy"`` (the solver found nothing better than greedy).
    greedy_chosen, greedy_gains : list
        The greedy answer, in order of choice, with its gains.
    greedy_objective : float
        Demand newly covered by the greedy answer.
    greedy_gap_pct : float
        ``100 · (objective − greedy_objective) / objective`` (0 when objective is 0).
    candidates_lon, candidates_lat : numpy.ndarray
        All candidates (useful when they were taken from uncovered demand).
    model : dict
        Model size and timings: ``demand_rows`` (uncovered demand that some candidate
        reaches), ``rows`` and ``cols`` after merging duplicates, ``nnz``,
        ``build_s``, ``greedy_s``, ``solve_s``, ``message``.
    """

    radius_m: float
    n_new: int
    weight_name: str
    total_weight: float
    covered_before: float
    covered_after: float
    covered_before_pct: float
    covered_after_pct: float
    chosen: list[int]
    lon: list[float]
    lat: list[float]
    gains: list[float]
    cumulative_covered: list[float]
    objective: float
    upper_bound: float
    status: str
    greedy_chosen: list[int]
    greedy_gains: list[float]
    greedy_objective: float
    greedy_gap_pct: float
    candidates_lon: FloatArray = field(repr=False)
    candidates_lat: FloatArray = field(repr=False)
    model: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (plain Python types; ``nan`` becomes ``None``)."""
        return {
            "radius_m": self.radius_m,
            "n_new": self.n_new,
            "weight_name": self.weight_name,
            "total_weight": self.total_weight,
            "covered_before": self.covered_before,
            "covered_after": self.covered_after,
            "covered_before_pct": self.covered_before_pct,
            "covered_after_pct": self.covered_after_pct,
            "chosen": list(self.chosen),
            "lon": list(self.lon),
            "lat": list(self.lat),
            "gains": list(self.gains),
            "cumulative_covered": list(self.cumulative_covered),
            "objective": self.objective,
            "upper_bound": None if math.isnan(self.upper_bound) else self.upper_bound,
            "status": self.status,
            "greedy_chosen": list(self.greedy_chosen),
            "greedy_gains": list(self.greedy_gains),
            "greedy_objective": self.greedy_objective,
            "greedy_gap_pct": self.greedy_gap_pct,
            "model": {
                k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in self.model.items()
            },
        }

    def to_geojson(self) -> dict[str, Any]:
        """The suggested sites as a GeoJSON FeatureCollection of Points, best first.

        Properties: ``rank`` (1 = first), ``candidate`` (position in the candidates),
        ``gain``, ``cumulative_covered`` and ``cumulative_covered_pct``.
        """
        feats = []
        for k, j in enumerate(self.chosen):
            cum = self.cumulative_covered[k]
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [self.lon[k], self.lat[k]]},
                    "properties": {
                        "rank": k + 1,
                        "candidate": j,
                        "gain": self.gains[k],
                        "cumulative_covered": cum,
                        "cumulative_covered_pct": 100.0 * cum / self.total_weight
                        if self.total_weight > 0
                        else 0.0,
                    },
                }
            )
        return {"type": "FeatureCollection", "features": feats}


# -- candidates from demand --------------------------------------------------------------
def candidates_from_demand(
    demand: Demand,
    existing_lon: ArrayLike,
    existing_lat: ArrayLike,
    radius_m: float = 1000.0,
    *,
    spacing_m: float | None = None,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    covered: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Candidate sites taken from uncovered demand points.

    Every uncovered demand point with positive weight is a candidate if there are at
    most *max_candidates* of them; otherwise they are thinned on a square grid (in the
    local projection) keeping the heaviest point per cell, with cells of *spacing_m*
    (default ``radius_m / 2``) grown by half until few enough remain. *covered* says
    which points are covered under another metric (e.g. on foot); default: those within
    great-circle *radius_m* of an existing station.

    Returns
    -------
    lon, lat : numpy.ndarray
        Candidate coordinates.
    source : numpy.ndarray of int
        Position of each candidate in *demand*.
    """
    r = check_radius(radius_m)
    if max_candidates < 1:
        raise InvalidInputError("max_candidates", f"Expected at least 1, got {max_candidates}")
    ex_lon, ex_lat = check_points(existing_lon, existing_lat, "existing")
    if covered is not None:
        open_ = ~_covered_mask(covered, demand)
    elif ex_lon.size:
        open_ = PointIndex(ex_lon, ex_lat).nearest_distance_m(demand.lon, demand.lat) > r
    else:
        open_ = np.ones(len(demand), dtype=bool)
    idx = np.flatnonzero(open_ & (demand.weight > 0)).astype(np.int64)
    if idx.size > max_candidates:
        proj = LocalProjection.for_points(demand.lon[idx], demand.lat[idx])
        x, y = proj.to_xy(demand.lon[idx], demand.lat[idx])
        s = float(spacing_m) if spacing_m else r / 2.0
        w = demand.weight[idx]
        while True:
            cx = np.floor(x / s).astype(np.int64)
            cy = np.floor(y / s).astype(np.int64)
            order = np.lexsort((-w, cy, cx))  # heaviest first within a cell
            key = np.stack([cx[order], cy[order]], axis=1)
            first = np.ones(order.size, dtype=bool)
            first[1:] = (key[1:] != key[:-1]).any(axis=1)
            pick = np.sort(order[first])
            if pick.size <= max_candidates:
                idx = idx[pick]
                break
            s *= 1.5
    return demand.lon[idx].copy(), demand.lat[idx].copy(), idx


# -- public solvers ----------------------------------------------------------------------
def _covered_mask(covered: ArrayLike, demand: Demand) -> BoolArray:
    done = np.asarray(covered, dtype=bool)
    if done.shape != (len(demand),):
        raise InvalidInputError("covered", f"must have one entry per demand point ({len(demand)})")
    return done


def _check_n(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidInputError(name, f"Expected an integer >= 1, got {n!r}")
    return int(n)


def site_mclp(
    demand: Demand,
    existing_lon: ArrayLike,
    existing_lat: ArrayLike,
    candidates_lon: ArrayLike | None = None,
    candidates_lat: ArrayLike | None = None,
    n_new: int = 10,
    radius_m: float = 1000.0,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 0.0,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    cover: CoverMatrix | None = None,
    covered: ArrayLike | None = None,
) -> SitingResult:
    """Choose up to *n_new* new sites covering the most demand, keeping existing stations.

    Parameters
    ----------
    demand : Demand
        Weighted demand points.
    existing_lon, existing_lat : array_like
        Existing (open) stations, degrees; may be empty.
    candidates_lon, candidates_lat : array_like, optional
        Candidate sites, degrees. When omitted they are taken from uncovered demand
        (:func:`candidates_from_demand` with *max_candidates*).
    n_new : int
        Number of sites to choose (>= 1).
    radius_m : float
        Coverage radius, metres.
    time_limit_s : float
        Solver time limit; on timeout the best solution found (or the greedy one, if
        better) is returned with ``status="time_limit"``.
    mip_rel_gap : float
        Relative optimality gap at which HiGHS may stop (0 = prove optimality).
    max_candidates : int
        Cap on candidates taken from demand.
    cover : callable, optional
        ``cover(demand_lon, demand_lat, site_lon, site_lat, radius_m)`` -> the 0/1 demand ×
        site matrix (the seam for another metric, e.g. walking: cover sets from
        :meth:`yizhan.geo.network.WalkNetwork.cover_matrix`); default
        :func:`coverage_matrix` (great-circle).
    covered : array_like of bool, optional
        Which demand points the existing stations already cover under that metric
        (default: great-circle distance to the nearest existing station <= *radius_m*).

    Returns
    -------
    SitingResult

    Raises
    ------
    InvalidInputError
        ``n_new`` < 1, ``radius_m`` not > 0, bad coordinates, bad time limit.
    """
    t_start = time.perf_counter()
    r = check_radius(radius_m)
    n = _check_n(n_new, "n_new")
    if not (time_limit_s > 0 and math.isfinite(time_limit_s)):
        raise InvalidInputError("time_limit_s", f"Expected seconds > 0, got {time_limit_s!r}")
    if not (0 <= mip_rel_gap < 1):
        raise InvalidInputError("mip_rel_gap", f"Expected 0 <= gap < 1, got {mip_rel_gap!r}")
    if not isinstance(demand, Demand):
        raise InvalidInputError("demand", f"Expected a Demand, got {type(demand).__name__}")
    ex_lon, ex_lat = check_points(existing_lon, existing_lat, "existing")
    if covered is not None:
        done = _covered_mask(covered, demand)
    elif ex_lon.size:
        done = PointIndex(ex_lon, ex_lat).nearest_distance_m(demand.lon, demand.lat) <= r
    else:
        done = np.zeros(len(demand), dtype=bool)
    if candidates_lon is None or candidates_lat is None:
        if (candidates_lon is None) != (candidates_lat is None):
            raise InvalidInputError(
                "candidates", "Expected both candidates_lon and candidates_lat, got one"
            )
        # from the demand not covered under the metric in use (on foot: by walking)
        c_lon, c_lat, src = candidates_from_demand(
            demand, ex_lon, ex_lat, r, max_candidates=max_candidates, covered=done
        )
        own = demand.weight[src]
    else:
        c_lon, c_lat = check_points(candidates_lon, candidates_lat, "candidates")
        own = np.zeros(c_lon.size)
    near = PointIndex(ex_lon, ex_lat).nearest_distance_m(c_lon, c_lat) if ex_lon.size else None
    rank = tie_order(own, near)

    w_all = demand.weight
    total = float(w_all.sum())
    before = float(w_all[done].sum())
    open_idx = np.flatnonzero(~done & (w_all > 0))
    # Columns in tie rank: the lowest column wins a tie (yizhan.geo.siting_model).
    mat = (cover or coverage_matrix)(
        demand.lon[open_idx], demand.lat[open_idx], c_lon[rank], c_lat[rank], r
    )
    demand_rows = int((np.diff(mat.indptr) > 0).sum())
    a, w, keep_cols, _ = reduce_model(mat, w_all[open_idx])
    keep_cols = rank[keep_cols]  # reduced column -> position in the candidates
    a_csc = a.tocsc()
    a_csc.sort_indices()
    t_build = time.perf_counter() - t_start

    t0 = time.perf_counter()
    g_cols, g_gains = _greedy(a, a_csc, w, n)
    t_greedy = time.perf_counter() - t0
    greedy_obj = float(sum(g_gains))

    message = ""
    t_solve = 0.0
    bound = math.nan
    m = a.shape[1]
    if m <= n:
        status, cols = "trivial", list(range(m))
        bound = float(w.sum())
    else:
        sol = _solve_milp(a, w, n, time_limit_s, mip_rel_gap)
        status, message, bound, t_solve, cols = (
            sol.status,
            sol.message,
            sol.bound,
            sol.seconds,
            sol.cols,
        )
        if status == "error":
            raise RuntimeError(f"MILP solver failed: {message}")
        cols = prefer_ranked(a_csc, w, cols)
    order, gains = _order_by_contribution(a, a_csc, w, cols)
    # Fill any unused budget greedily (only matters when the solver stopped early).
    if len(order) < n:
        cov = np.zeros(a.shape[0], dtype=bool)
        for j in order:
            cov[a_csc.indices[a_csc.indptr[j] : a_csc.indptr[j + 1]]] = True
        allowed = np.ones(m, dtype=bool)
        allowed[order] = False
        more, more_g = _greedy(a, a_csc, w, n - len(order), allowed, cov)
        order, gains = order + more, gains + more_g
    shortfall = greedy_obj - float(sum(gains))
    if shortfall > 0:
        # Only possible when the solver stopped early or within its tolerances.
        order, gains = list(g_cols), list(g_gains)
        if status == "optimal" and shortfall > 1e-9 * max(1.0, greedy_obj):
            status = "greedy"
    objective = float(sum(gains))
    if status == "optimal":
        bound = objective

    chosen = [int(keep_cols[j]) for j in order]
    g_chosen = [int(keep_cols[j]) for j in g_cols]
    cum = (before + np.cumsum(gains)).tolist() if gains else []
    after = before + objective
    gap = 100.0 * (objective - greedy_obj) / objective if objective > 0 else 0.0
    return SitingResult(
        radius_m=r,
        n_new=n,
        weight_name=demand.weight_name,
        total_weight=total,
        covered_before=before,
        covered_after=after,
        covered_before_pct=100.0 * before / total if total > 0 else 0.0,
        covered_after_pct=100.0 * after / total if total > 0 else 0.0,
        chosen=chosen,
        lon=[float(c_lon[j]) for j in chosen],
        lat=[float(c_lat[j]) for j in chosen],
        gains=[float(g) for g in gains],
        cumulative_covered=[float(v) for v in cum],
        objective=objective,
        upper_bound=bound,
        status=status,
        greedy_chosen=g_chosen,
        greedy_gains=[float(g) for g in g_gains],
        greedy_objective=greedy_obj,
        greedy_gap_pct=max(gap, 0.0),
        candidates_lon=c_lon,
        candidates_lat=c_lat,
        model={
            "candidates": int(c_lon.size),
            "demand_rows": demand_rows,
            "rows": int(a.shape[0]),
            "cols": int(m),
            "nnz": int(a.nnz),
            "build_s": t_build,
            "greedy_s": t_greedy,
            "solve_s": t_solve,
            "message": message,
        },
    )


def site_buses(
    demand: Demand,
    stations: Stations,
    stand_lon: ArrayLike | None,
    stand_lat: ArrayLike | None,
    k: int,
    radius_m: float = 1000.0,
    station_mask: StationMask = None,
    *,
    time_limit_s: float = 30.0,
    mip_rel_gap: float = 0.0,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> SitingResult:
    """Where to stand *k* cooling buses to cover the most demand left uncovered.

    The same model as :func:`site_mclp`, with the stations that are open during the
    time window as the existing stations and the bus stands as candidates.

    Parameters
    ----------
    demand : Demand
        Weighted demand points (e.g. outdoor workers during the afternoon).
    stations : Registry or (lon, lat)
        All stations.
    stand_lon, stand_lat : array_like or None
        Places where a bus may stand, degrees; ``None`` takes them from uncovered demand.
    k : int
        Number of buses (>= 1).
    radius_m : float
        Coverage radius, metres.
    station_mask : StationFilter, array_like of bool, or None
        Which stations are open in the window (the caller works this out from opening
        hours); ``None`` counts every station.
    time_limit_s, mip_rel_gap, max_candidates
        As for :func:`site_mclp`.

    Returns
    -------
    SitingResult
    """
    _check_n(k, "k")
    st = select_stations(stations, station_mask)
    return site_mclp(
        demand,
        st.lon,
        st.lat,
        stand_lon,
        stand_lat,
        n_new=k,
        radius_m=radius_m,
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap,
        max_candidates=max_candidates,
    )


__all__ = [
    "DEFAULT_MAX_CANDIDATES",
    "SitingResult",
    "candidates_from_demand",
    "coverage_matrix",
    "pairs_within",
    "site_buses",
    "site_mclp",
]
