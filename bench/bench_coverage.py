"""Benchmark: coverage of 1,000,000 demand points against 100,000 stations.

Data (real, then replicated):

* stations: the 17,083 valid Korean civil-defence shelters of
  ``korea-civil-defense-shelters-national`` (6 rows with broken coordinates skipped),
  replicated with a small jitter (Gaussian, σ = 150 m) to 100,000;
* demand: the 3,282 neighbourhood (행정동) centroids with population of
  ``korea-demand-population/korea_dong_demand_points_wgs84.csv``, each split into points in
  proportion to its population (1,000,000 in all, jitter σ = 800 m), each point carrying an
  equal share of its neighbourhood's population; districts are the 250 si-gun-gu polygons
  of the same folder.

Peers, each checked against Yizhan's distances on the points it ran on:

* brute-force numpy haversine over all stations in chunks (run on a subsample, scaled);
* scikit-learn ``BallTree(metric="haversine")`` nearest query (if installed);
* geopandas ``sjoin_nearest`` in UTM-K (EPSG:5179, planar distance; if installed).

Run ``.venv/bin/python bench/bench_coverage.py``; :func:`run` returns the rows.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from yizhan.geo.coverage import coverage
from yizhan.geo.demand import Demand
from yizhan.geo.distance import EARTH_RADIUS_M, haversine_m
from yizhan.query.demand_files import load_districts

DATA = Path(os.environ.get("YIZHAN_SHARED_DATA", "/work/shared/data"))
SHELTERS = DATA / "korea-civil-defense-shelters-national" / "korea_civil_defense_shelters_2023.csv"
DONGS = DATA / "korea-demand-population" / "korea_dong_demand_points_wgs84.csv"
SIGUNGU = DATA / "korea-demand-population" / "korea_sigungu_20220309_simple_wgs84.geojson"

N_STATIONS = 100_000
N_DEMAND = 1_000_000
RADIUS_M = 1000.0
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0


def load_shelters() -> tuple[np.ndarray, np.ndarray]:
    """The valid shelters (lon, lat); rows with unparsable or out-of-Korea coordinates skipped."""
    lon: list[float] = []
    lat: list[float] = []
    with SHELTERS.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                y = float(row["위도(EPSG4326)"])
                x = float(row["경도(EPSG4326)"])
            except (TypeError, ValueError):
                continue
            if 32.5 < y < 39.0 and 124.0 < x < 132.0:
                lon.append(x)
                lat.append(y)
    return np.array(lon), np.array(lat)


def load_dongs(sido: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbourhood centroids with population (lon, lat, pop_total); optionally one province."""
    lon: list[float] = []
    lat: list[float] = []
    pop: list[float] = []
    with DONGS.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["lon"] or (sido is not None and row["sido"] != sido):
                continue
            lon.append(float(row["lon"]))
            lat.append(float(row["lat"]))
            pop.append(float(row["pop_total"]))
    return np.array(lon), np.array(lat), np.array(pop)


def jitter(
    rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, sigma_m: float
) -> tuple[np.ndarray, np.ndarray]:
    dy = rng.normal(0.0, sigma_m, lon.shape) / M_PER_DEG
    dx = rng.normal(0.0, sigma_m, lon.shape) / (M_PER_DEG * np.cos(np.radians(lat)))
    return lon + dx, lat + dy


def make_stations(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """*n* stations: every real shelter once, then jittered copies (σ = 150 m)."""
    lon, lat = load_shelters()
    rng = np.random.default_rng(seed)
    extra = rng.integers(0, lon.size, n - lon.size)
    jl, ja = jitter(rng, lon[extra], lat[extra], 150.0)
    return np.concatenate([lon, jl]), np.concatenate([lat, ja])


def make_demand(n: int, sido: str | None = None, sigma_m: float = 800.0, seed: int = 11) -> Demand:
    """*n* demand points spread around neighbourhood centroids in proportion to population."""
    lon, lat, pop = load_dongs(sido)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n - lon.size, pop / pop.sum()) + 1  # at least one per dong
    idx = np.repeat(np.arange(lon.size), counts)
    dl, da = jitter(rng, lon[idx], lat[idx], sigma_m)
    return Demand.from_arrays(dl, da, (pop / counts)[idx], weight_name="population")


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median wall time of *repeat* calls, and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def brute_nearest(
    dl: np.ndarray, da: np.ndarray, sl: np.ndarray, sa: np.ndarray, chunk: int = 50
) -> np.ndarray:
    """Nearest-station distance by haversine to every station, *chunk* demand points at a time."""
    out = np.empty(dl.size)
    for s in range(0, dl.size, chunk):
        d = haversine_m(dl[s : s + chunk, None], da[s : s + chunk, None], sl[None, :], sa[None, :])
        out[s : s + chunk] = d.min(axis=1)
    return out


def run() -> list[dict[str, Any]]:
    """Run the benchmark; one row per peer: name, yizhan_s, peer, peer_s, ratio, note."""
    t0 = time.perf_counter()
    sl, sa = make_stations(N_STATIONS)
    demand = make_demand(N_DEMAND)
    districts = load_districts(SIGUNGU, name_field=("SIDONM", "SGGNM"))
    prep_s = time.perf_counter() - t0
    t_assign, labelled = timed(lambda: demand.with_districts(districts))
    print(
        f"data: {sl.size:,} stations, {len(demand):,} demand points "
        f"(population {demand.total_weight:,.0f}), {len(districts)} districts; "
        f"built in {prep_s:.1f} s",
        file=sys.stderr,
    )

    t_plain, res = timed(lambda: coverage((sl, sa), demand, RADIUS_M), repeat=3)
    t_dist, res_d = timed(lambda: coverage((sl, sa), labelled, RADIUS_M), repeat=3)
    print(
        f"yizhan: covered {res.covered_weight_pct:.2f} % within {RADIUS_M:.0f} m, "
        f"p50 {res.distance_p50_m:.0f} m, p90 {res.distance_p90_m:.0f} m; "
        f"{len(res_d.per_district)} district rows",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    setting = f"{len(demand):,} demand x {sl.size:,} stations, r={RADIUS_M:.0f} m"

    # Peer 1: brute-force numpy haversine on a subsample, scaled.
    rng = np.random.default_rng(3)
    sub = rng.choice(len(demand), 2000, replace=False)
    t_bf, bf = timed(lambda: brute_nearest(demand.lon[sub], demand.lat[sub], sl, sa))
    err = float(np.max(np.abs(bf - res.nearest_distance_m[sub])))
    scale = len(demand) / sub.size
    rows.append(
        {
            "name": "coverage 1M x 100k",
            "yizhan_s": t_plain,
            "peer": "numpy brute-force haversine (chunked)",
            "peer_s": t_bf * scale,
            "ratio": t_bf * scale / t_plain,
            "note": f"{setting}; peer run on {sub.size:,} points and scaled x{scale:.0f}; "
            f"max |Δd| = {err:.1e} m",
        }
    )

    # Peer 2: scikit-learn BallTree (haversine).
    try:
        from sklearn.neighbors import BallTree
    except ImportError:
        rows.append(
            _skipped("scikit-learn BallTree(haversine)", t_plain, "scikit-learn not installed")
        )
    else:
        n_sub = 200_000
        sub2 = rng.choice(len(demand), n_sub, replace=False)

        def balltree() -> np.ndarray:
            tree = BallTree(np.radians(np.column_stack([sa, sl])), metric="haversine")
            d, _ = tree.query(
                np.radians(np.column_stack([demand.lat[sub2], demand.lon[sub2]])), k=1
            )
            return np.asarray(d[:, 0] * EARTH_RADIUS_M)

        t_bt, bt = timed(balltree)
        err = float(np.max(np.abs(bt - res.nearest_distance_m[sub2])))
        scale = len(demand) / n_sub
        rows.append(
            {
                "name": "coverage 1M x 100k",
                "yizhan_s": t_plain,
                "peer": "scikit-learn BallTree(haversine)",
                "peer_s": t_bt * scale,
                "ratio": t_bt * scale / t_plain,
                "note": f"{setting}; peer run on {n_sub:,} points (tree build once) and scaled "
                f"x{scale:.0f}; max |Δd| = {err:.1e} m",
            }
        )

    # Peer 3: geopandas sjoin_nearest in a projected CRS.
    try:
        import geopandas as gpd
    except ImportError:
        rows.append(
            _skipped("geopandas sjoin_nearest (EPSG:5179)", t_plain, "geopandas not installed")
        )
    else:

        def sjoin() -> np.ndarray:
            dem = gpd.GeoDataFrame(
                {"w": demand.weight}, geometry=gpd.points_from_xy(demand.lon, demand.lat), crs=4326
            ).to_crs(5179)
            st = gpd.GeoDataFrame(geometry=gpd.points_from_xy(sl, sa), crs=4326).to_crs(5179)
            j = gpd.sjoin_nearest(dem, st, how="left", distance_col="d")
            j = j[~j.index.duplicated()]
            return np.asarray(j["d"].to_numpy())

        t_gp, gd = timed(sjoin)
        rel = float(
            np.max(np.abs(gd - res.nearest_distance_m) / np.maximum(res.nearest_distance_m, 1.0))
        )
        share = 100.0 * float(demand.weight[gd <= RADIUS_M].sum()) / demand.total_weight
        rows.append(
            {
                "name": "coverage 1M x 100k",
                "yizhan_s": t_plain,
                "peer": "geopandas sjoin_nearest (EPSG:5179)",
                "peer_s": t_gp,
                "ratio": t_gp / t_plain,
                "note": f"{setting}; full run incl. reprojection; planar distances differ by up to "
                f"{100 * rel:.2f} %; covered {share:.2f} % vs {res.covered_weight_pct:.2f} %",
            }
        )

    rows.append(
        {
            "name": "coverage 1M x 100k + 250-district table",
            "yizhan_s": t_dist,
            "peer": "–",
            "peer_s": None,
            "ratio": None,
            "note": f"same, plus the per-district table (incl. locating the 100k stations in "
            f"250 si-gun-gu polygons); labelling the 1M demand points took {t_assign:.2f} s once",
        }
    )
    return rows


def _skipped(peer: str, yizhan_s: float, why: str) -> dict[str, Any]:
    return {
        "name": "coverage 1M x 100k",
        "yizhan_s": yizhan_s,
        "peer": peer,
        "peer_s": None,
        "ratio": None,
        "note": f"skipped: {why}",
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print rows as a Markdown table."""
    print("| benchmark | yizhan (s) | peer | peer (s) | ratio | note |")
    print("|---|---:|---|---:|---:|---|")
    for r in rows:
        peer_s = "–" if r["peer_s"] is None else f"{r['peer_s']:.2f}"
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.1f}×"
        print(
            f"| {r['name']} | {r['yizhan_s']:.2f} | {r['peer']} | {peer_s} | {ratio} | {r['note']} |"
        )


if __name__ == "__main__":
    print_table(run())
