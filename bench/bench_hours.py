"""Benchmark: ``/nearest`` with an opening-hours filter over 100,000 stations, in process.

Instance (synthetic, reproducible): 100,000 stations at random points across mainland
China's populated east (lon 100-122, lat 21-42, denser around 30 city centres), with a
realistic mix of opening hours -- 24/7, office hours with ``PH off``, daily hours with
varied start and end, seasonal (summer/winter) hours, summer-only cooling hours, evening
hours across midnight -- and 5 % without hours (unknown, never counted open). Three
cooling buses are added. Queries: 2,000 random points near the stations, ``k = 5``,
``open_at`` a fixed time (Wednesday 2026-07-15 13:00 local) unless the row says otherwise.
Each row runs the 2,000 queries once to warm up, then three times timed.

Yizhan: :meth:`StationSearch.nearest_at` (the code behind ``/nearest?open_at=...``),
timed per query with ``time.perf_counter``; the median is reported (microseconds in the
note). Peer: the naive way -- evaluate every station's hours with opening-hours-py
(parsed expressions cached, evaluation not), then brute-force numpy haversine over the
open ones; run on a few queries only (it takes about a second each). Both must return
the same stations (checked on every peer query).

Run ``.venv/bin/python bench/bench_hours.py``; :func:`run` returns the rows.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import opening_hours

from yizhan.geo.distance import haversine_m
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import BusHit, StationSearch

N_STATIONS = 100_000
N_QUERIES = 2_000
N_PEER = 5
ROUNDS = 3
K = 5
TZ = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 7, 15, 13, 0, tzinfo=TZ)


def make_hours(rng: np.random.Generator, n: int) -> list[str | None]:
    """A realistic mix of hours, with a few hundred distinct strings."""
    out: list[str | None] = []
    kinds = rng.choice(7, size=n, p=[0.18, 0.27, 0.25, 0.12, 0.05, 0.08, 0.05])
    starts = rng.choice([6, 7, 7, 8, 8, 8, 9, 9, 10], size=n)
    ends = rng.choice([17, 18, 18, 19, 20, 20, 21, 22], size=n)
    halves = rng.choice(["00", "30"], size=n)
    for kind, a, b, h in zip(
        kinds.tolist(), starts.tolist(), ends.tolist(), halves.tolist(), strict=True
    ):
        if kind == 0:
            out.append("24/7")
        elif kind == 1:
            out.append(f"Mo-Fr {a:02d}:{h}-{b:02d}:00; PH off")
        elif kind == 2:
            out.append(f"{a:02d}:{h}-{b:02d}:00")
        elif kind == 3:
            out.append(f"Jun-Sep {a - 1:02d}:00-{b + 1:02d}:00; Oct-May {a:02d}:00-{b - 1:02d}:00")
        elif kind == 4:
            out.append("Jul-Sep Mo-Su 10:00-16:00")
        elif kind == 5:
            out.append(f"Mo-Su {b - 2:02d}:00-02:00")
        else:
            out.append(None)
    return out


def make_registry(n: int = N_STATIONS, seed: int = 7) -> Registry:
    """*n* stations (and 3 buses) built directly (no validation pass: the data is generated)."""
    rng = np.random.default_rng(seed)
    centres = np.column_stack([rng.uniform(102, 121, 30), rng.uniform(22, 41, 30)])
    near = rng.random(n) < 0.7
    c = centres[rng.integers(0, 30, n)]
    lon = np.where(near, c[:, 0] + rng.normal(0, 0.25, n), rng.uniform(100, 122, n))
    lat = np.where(near, c[:, 1] + rng.normal(0, 0.2, n), rng.uniform(21, 42, n))
    hours = make_hours(rng, n)
    feats = []
    for i in range(n):
        props: dict[str, Any] = {"name": f"Station {i}", "kind": "station"}
        if hours[i] is not None:
            props["opening_hours"] = hours[i]
        feats.append(
            {
                "type": "Feature",
                "id": f"s{i:06d}",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(lon[i]), 6), round(float(lat[i]), 6)],
                },
                "properties": props,
            }
        )
    buses = []
    for b in range(3):
        x, y = float(centres[b, 0]), float(centres[b, 1])
        stops = [
            {"stop_id": "s1", "name": "A", "location": [x, y], "opening_hours": "Jul-Sep Mo-Su 10:00-12:30"},
            {"stop_id": "s2", "name": "B", "location": [x + 0.02, y], "opening_hours": "Jul-Sep Mo-Su 13:00-16:00"},
        ]  # fmt: skip
        buses.append(
            {
                "type": "Feature",
                "id": f"bus-{b}",
                "geometry": {"type": "MultiPoint", "coordinates": [s["location"] for s in stops]},
                "properties": {"name": f"Bus {b}", "kind": "cooling_bus", "operator": "op", "stops": stops},
            }
        )  # fmt: skip
    return Registry(features=feats, buses=buses)


def query_points(reg: Registry, m: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """*m* points within ~2 km of random stations."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(reg), m)
    return reg.lon[pick] + rng.normal(0, 0.02, m), reg.lat[pick] + rng.normal(0, 0.015, m)


def peer_nearest_open(
    reg: Registry, lon: float, lat: float, k: int, at: datetime, open_for_s: float = 0.0
) -> list[str]:
    """Naive: evaluate every station's hours (parsed once), brute-force haversine over the open."""
    parsed: dict[str, Any] = peer_nearest_open.__dict__.setdefault("parsed", {})
    ok = np.zeros(len(reg), dtype=bool)
    need = at.timestamp() + open_for_s
    for i, f in enumerate(reg.features):
        expr = f["properties"].get("opening_hours")
        if not expr:
            continue
        oh = parsed.get(expr)
        if oh is None:
            oh = parsed[expr] = opening_hours.OpeningHours(expr, timezone=TZ, country="CN")
        if oh.is_open(at):
            if open_for_s:
                nc = oh.next_change(at)
                ok[i] = nc is None or nc.timestamp() >= need
            else:
                ok[i] = True
    idx = np.flatnonzero(ok)
    d = haversine_m(lon, lat, reg.lon[idx], reg.lat[idx])
    order = np.lexsort((reg.id_rank[idx], np.round(d, 6)))[:k]
    return [reg.ids[int(idx[o])] for o in order]


def time_queries(
    search: StationSearch,
    qlon: np.ndarray,
    qlat: np.ndarray,
    times: list[float],
    open_for_s: float = 0.0,
    only_open: bool = True,
    flt: StationFilter | None = None,
) -> float:
    """Median seconds per ``nearest_at`` query."""
    f = flt or StationFilter()
    samples = []
    clock = time.perf_counter
    for rnd in range(ROUNDS + 1):  # round 0 warms up (index builds, caches, evaluations)
        for j in range(len(qlon)):
            lo, la, ts = float(qlon[j]), float(qlat[j]), times[j % len(times)]
            t0 = clock()
            search.nearest_at(lo, la, K, f, ts, open_for_s, None, only_open)
            if rnd:
                samples.append(clock() - t0)
    return statistics.median(samples)


def station_ids(search: StationSearch, hits: list[Any]) -> list[str]:
    return [search.registry.ids[h.index] for h in hits if not isinstance(h, BusHit)]


def run() -> list[dict[str, Any]]:
    """Run the benchmark; rows: name, yizhan_s, peer, peer_s, ratio, note."""
    t0 = time.perf_counter()
    reg = make_registry()
    search = StationSearch(reg)
    _ = search.hours, search.fleet
    build_s = time.perf_counter() - t0
    qlon, qlat = query_points(reg, N_QUERIES)
    print(
        f"data: {len(reg):,} stations, {len(search.hours.cache)} distinct hours keys, "
        f"{len(reg.buses)} buses; built in {build_s:.1f} s",
        file=sys.stderr,
    )
    ts13 = AT.timestamp()
    rows: list[dict[str, Any]] = []
    setting = f"{len(reg):,} stations, k={K}, {N_QUERIES:,} queries"

    def row(name: str, med: float, at: datetime, open_for_s: float, note: str) -> None:
        peer_t = []
        for j in range(N_PEER):
            lo, la = float(qlon[j]), float(qlat[j])
            t1 = time.perf_counter()
            want = peer_nearest_open(reg, lo, la, K, at, open_for_s)
            peer_t.append(time.perf_counter() - t1)
            hits = search.nearest_open(lo, la, K, StationFilter(), at.timestamp(), open_for_s)
            got = station_ids(search, list(hits))
            if got != want:
                raise AssertionError(f"{name}: query {j}: yizhan {got} != peer {want}")
        peer_s = statistics.median(peer_t)
        rows.append(
            {
                "name": name,
                "yizhan_s": med,
                "peer": "opening-hours-py on every station + numpy haversine",
                "peer_s": peer_s,
                "ratio": peer_s / med,
                "note": f"median {med * 1e6:.1f} µs/query; {setting}; {note}; same results on {N_PEER} peer queries",
            }
        )

    med = time_queries(search, qlon, qlat, [ts13])
    row("nearest open_at 13:00", med, AT, 0.0, "open_at Wed 13:00")
    med = time_queries(search, qlon, qlat, [ts13], open_for_s=3600.0)
    row("nearest open_at 13:00, open_for_min=60", med, AT, 3600.0, "must stay open 60 min")
    night = datetime(2026, 7, 15, 3, 0, tzinfo=TZ)
    med = time_queries(search, qlon, qlat, [night.timestamp()])
    row(
        "nearest open_at 03:00 (few open)",
        med,
        night,
        0.0,
        "night: mostly 24/7 and overnight hours open",
    )
    rng = np.random.default_rng(5)
    week = [AT.timestamp() + float(s) for s in rng.uniform(-3 * 86400, 4 * 86400, 500)]
    med = time_queries(search, qlon, qlat, week)
    rows.append(
        {
            "name": "nearest open_at random times in a week",
            "yizhan_s": med,
            "peer": "–",
            "peer_s": None,
            "ratio": None,
            "note": f"median {med * 1e6:.1f} µs/query; {setting}; 500 distinct times (cached runs often stale)",
        }
    )
    med = time_queries(search, qlon, qlat, [ts13], only_open=False)
    rows.append(
        {
            "name": "nearest without hours filter (buses merged)",
            "yizhan_s": med,
            "peer": "–",
            "peer_s": None,
            "ratio": None,
            "note": f"median {med * 1e6:.1f} µs/query; {setting}; baseline",
        }
    )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print rows as a Markdown table (times per query)."""
    print("| benchmark | yizhan (µs) | peer | peer (ms) | ratio | note |")
    print("|---|---:|---|---:|---:|---|")
    for r in rows:
        peer_s = "–" if r["peer_s"] is None else f"{r['peer_s'] * 1e3:.0f}"
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:,.0f}×"
        print(
            f"| {r['name']} | {r['yizhan_s'] * 1e6:.1f} | {r['peer']} | {peer_s} | {ratio} | {r['note']} |"
        )


if __name__ == "__main__":
    print_table(run())
