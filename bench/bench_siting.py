"""Benchmark: siting (MCLP) with 20,000 demand points and 1,000 candidates, beside spopt.

Instance (real data, replicated): Seoul's 425 neighbourhood (행정동) centroids with
population from ``korea-demand-population/korea_dong_demand_points_wgs84.csv``, split into
20,000 points in proportion to population (jitter σ = 300 m, each point an equal share of
its neighbourhood's population); candidates are 1,000 of Seoul's real civil-defence
shelters (``korea-civil-defense-shelters-national``, drawn at random). No existing
stations; choose ``P`` sites covering the most population within 1,000 m.

Peer: PySAL spopt's ``MCLP.from_cost_matrix`` + ``solve(PULP_CBC_CMD)`` on the same
instance and objective (its documented workflow: a dense cost matrix, here great-circle
metres from Yizhan's ``haversine_m``, then the PuLP model). Both are timed end to end,
from coordinates to chosen sites; both objective values are computed from the chosen
sites with brute-force haversine and must agree.

Run ``.venv/bin/python bench/bench_siting.py`` (about 6 minutes, nearly all of it spopt
building its models; ``YIZHAN_BENCH_QUICK=1`` runs P=10 only); :func:`run` returns the rows.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_coverage import load_shelters, make_demand, print_table

from yizhan.geo.demand import Demand
from yizhan.geo.distance import haversine_m
from yizhan.geo.siting import site_mclp

N_DEMAND = 20_000
N_CANDIDATES = 1_000
#: Sites to choose; set YIZHAN_BENCH_QUICK=1 to run only the first (spopt takes minutes).
P_SITES = (10,) if os.environ.get("YIZHAN_BENCH_QUICK") else (10, 50)
RADIUS_M = 1000.0
SEOUL = (126.76, 37.41, 127.19, 37.72)  # lon/lat box around Seoul


def make_candidates(n: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """*n* real shelters in Seoul, drawn at random."""
    lon, lat = load_shelters()
    inside = (lon > SEOUL[0]) & (lon < SEOUL[2]) & (lat > SEOUL[1]) & (lat < SEOUL[3])
    idx = np.flatnonzero(inside)
    pick = np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))
    return lon[pick], lat[pick]


def covered_weight(demand: Demand, lon: np.ndarray, lat: np.ndarray, chosen: list[int]) -> float:
    """Demand within RADIUS_M of any chosen site, by brute-force haversine."""
    if not chosen:
        return 0.0
    d = haversine_m(
        demand.lon[:, None], demand.lat[:, None], lon[chosen][None, :], lat[chosen][None, :]
    )
    return float(demand.weight[(d <= RADIUS_M).any(axis=1)].sum())


def run_spopt(demand: Demand, lon: np.ndarray, lat: np.ndarray, p: int) -> dict[str, Any]:
    """spopt MCLP end to end: cost matrix, model, CBC solve."""
    import pulp
    from spopt.locate import MCLP

    t0 = time.perf_counter()
    cost = haversine_m(demand.lon[:, None], demand.lat[:, None], lon[None, :], lat[None, :])
    t1 = time.perf_counter()
    model = MCLP.from_cost_matrix(cost, demand.weight, service_radius=RADIUS_M, p_facilities=p)
    t2 = time.perf_counter()
    model = model.solve(pulp.PULP_CBC_CMD(msg=False), results=False)
    t3 = time.perf_counter()
    chosen = [j for j, v in enumerate(model.fac_vars) if v.value() is not None and v.value() > 0.5]
    return {
        "chosen": chosen,
        "cost_s": t1 - t0,
        "build_s": t2 - t1,
        "solve_s": t3 - t2,
        "total_s": t3 - t0,
        "status": pulp.LpStatus[model.problem.status],
    }


def run() -> list[dict[str, Any]]:
    """Run the benchmark; one row per P: name, yizhan_s, peer, peer_s, ratio, note."""
    try:
        import spopt
    except ImportError:
        spopt = None
    demand = make_demand(N_DEMAND, sido="서울특별시", sigma_m=300.0, seed=21)
    cl, ca = make_candidates(N_CANDIDATES)
    print(
        f"data: {len(demand):,} demand points (population {demand.total_weight:,.0f}), "
        f"{cl.size:,} candidate shelters, r = {RADIUS_M:.0f} m",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    for p in P_SITES:
        t0 = time.perf_counter()
        res = site_mclp(demand, [], [], cl, ca, n_new=p, radius_m=RADIUS_M, time_limit_s=300.0)
        t_y = time.perf_counter() - t0
        obj_y = covered_weight(demand, cl, ca, res.chosen)
        m = res.model
        print(
            f"P={p}: yizhan {t_y:.2f} s ({res.status}; build {m['build_s']:.2f} s, greedy "
            f"{m['greedy_s']:.3f} s, MILP {m['solve_s']:.2f} s on {m['rows']:,} rows x "
            f"{m['cols']:,} cols, {m['nnz']:,} nnz); objective {obj_y:,.1f}; greedy "
            f"{res.greedy_objective:,.1f} (gap {res.greedy_gap_pct:.3f} %)",
            file=sys.stderr,
        )
        note = (
            f"{len(demand):,} demand x {cl.size:,} candidates, P={p}, r={RADIUS_M:.0f} m; "
            f"yizhan {res.status}, MILP {m['rows']:,}x{m['cols']:,} after merging; "
            f"greedy gap {res.greedy_gap_pct:.3f} %"
        )
        if spopt is None:
            rows.append(
                {
                    "name": f"MCLP P={p}",
                    "yizhan_s": t_y,
                    "peer": "spopt MCLP (CBC)",
                    "peer_s": None,
                    "ratio": None,
                    "note": note + "; spopt not installed",
                }
            )
            continue
        sp = run_spopt(demand, cl, ca, p)
        obj_s = covered_weight(demand, cl, ca, sp["chosen"])
        same = abs(obj_s - obj_y) <= 1e-9 * max(1.0, obj_y)
        print(
            f"P={p}: spopt {sp['total_s']:.2f} s ({sp['status']}; cost matrix {sp['cost_s']:.2f} s, "
            f"model {sp['build_s']:.2f} s, CBC {sp['solve_s']:.2f} s); objective {obj_s:,.1f}; "
            f"same objective: {same}",
            file=sys.stderr,
        )
        rows.append(
            {
                "name": f"MCLP P={p}",
                "yizhan_s": t_y,
                "peer": f"spopt {spopt.__version__} MCLP (CBC)",
                "peer_s": sp["total_s"],
                "ratio": sp["total_s"] / t_y,
                "note": note
                + f"; spopt: cost matrix {sp['cost_s']:.1f} s + model {sp['build_s']:.1f} s + "
                f"CBC {sp['solve_s']:.1f} s; objective {obj_y:,.0f} vs {obj_s:,.0f} "
                f"({'same' if same else 'DIFFERENT'})",
            }
        )
    return rows


if __name__ == "__main__":
    print_table(run())
