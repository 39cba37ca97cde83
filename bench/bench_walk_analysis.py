"""Benchmark: walking analyses in analysis processes (issue 12) -- what opening the network costs.

``GET /coverage?metric=walk``, ``POST /analysis/site`` with ``metric=walk`` and the planner
map on foot run in processes forked for each analysis (:mod:`yizhan.query.analysis`). The
server hands each one the network file; the process maps it (``load_network(mmap=True)``)
and builds the snapping index its first snap needs. Measured on the Helsinki extract
(tests/data/network/helsinki.osm.pbf) and on the synthetic city of a million nodes of
:mod:`bench_network`:

* *open in the analysis process*: :meth:`Walking.open` (mapped), beside reading the same
  file into memory (``np.load``, what the process would do without the map);
* *snapping index*: the first snap in a process that is not given the snaps (segments,
  KD-tree): what every walking analysis built before the server sent the snaps; the server
  built it once at start (``load + prepare``, also shown);
* *the server's snaps*: what :meth:`Walking.spec` costs the server: the first time for a
  study's demand (once per demand object, then kept), and then per analysis (the kept
  demand and stations, the counted stations looked up);
* *an analysis that does nothing*: what starting any analysis process costs;
* *coverage on foot*: one whole ``/coverage?metric=walk`` analysis through an
  :class:`~yizhan.query.analysis.AnalysisRunner` (fork, open, one multi-source search,
  pickling both ways) with the snaps from the server (now), beside the same analysis
  snapping in the process (before: it builds the snapping index) and the same answer
  computed in the server process with its prepared network; the answers are checked
  equal. On the synthetic city also with 1,000,000 demand points (the issue's target:
  ≤ 3 s).

Run ``.venv/bin/python bench/bench_walk_analysis.py`` (about a minute; ``--quick`` skips the
synthetic city).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_network
import common

from yizhan.geo.coverage import StationSet, select_stations
from yizhan.geo.demand import Demand
from yizhan.network import build_network, load_network, save_network
from yizhan.network.store import NetworkFile
from yizhan.query.analysis import AnalysisRunner
from yizhan.query.studies import StudySpec, load_study
from yizhan.query.walk_analysis import walk_coverage_analysis, walk_coverage_answer
from yizhan.query.walking import Walking
from yizhan.settings import BUNDLED_DATA, Settings
from yizhan.stations.registry import load_registry

TITLE = "Walking analyses in analysis processes (issue 12)"
OUT = Path(__file__).resolve().parent / "out"
EXTRACTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "network"
N_DEMAND_CITY = 100_000
N_DEMAND_TARGET = 1_000_000


def _median(fn: Any, repeat: int = 5) -> tuple[float, Any]:
    times, got = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), got


def _networks(quick: bool) -> list[tuple[str, Path, StationSet, Demand]]:
    OUT.mkdir(exist_ok=True)
    helsinki = OUT / "helsinki.network"
    save_network(helsinki, build_network(EXTRACTS / "helsinki.osm.pbf")[0])
    reg = load_registry(BUNDLED_DATA / "helsinki-amenities.geojson")
    demand = load_study(
        StudySpec(districts=EXTRACTS / "helsinki-quarters.geojson", hex_size_m=15.0)
    ).demand
    out = [("Helsinki extract", helsinki, select_stations(reg, None), demand)]
    if not quick:
        city = OUT / "synthetic-city.network"
        if not city.exists():
            net = bench_network.synthetic_city()
            save_network(city, NetworkFile(net, np.arange(net.n_nodes, dtype=np.int64), {}))
        net = load_network(city, check=False).network
        for n_demand in (N_DEMAND_CITY, N_DEMAND_TARGET):
            s_lon, s_lat, d_lon, d_lat = bench_network.stations_and_demand(
                net, bench_network.N_STATIONS, n_demand
            )
            out.append(
                (
                    f"synthetic city ({net.n_nodes:,} nodes)",
                    city,
                    select_stations((s_lon, s_lat), None),
                    Demand.from_arrays(d_lon, d_lat, np.ones(d_lon.size)),
                )
            )
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """:func:`measure` in a fresh ``python -c`` process: an analysis process imports the
    main script of the process that started it (multiprocessing's start-up), and this
    script's imports would be counted in every analysis; a server's main is the small
    ``yizhan`` entry point."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import bench_walk_analysis as b; "
        f"print('ROWS=' + json.dumps(b.measure({quick!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=1800
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("ROWS=")][-1]
    rows: list[dict[str, Any]] = json.loads(line[5:])
    return rows


def measure(quick: bool = False) -> list[dict[str, Any]]:
    """The rows (see the module notes), measured in this process."""
    rows: list[dict[str, Any]] = []
    runner = AnalysisRunner(
        workers=1,
        queue=0,
        timeout_s=600,
        memory_mb=4096,
        preload=("yizhan.query.walk_analysis",),
    )
    runner.warm_up()
    try:
        t_start, _ = _median(lambda: asyncio.run(runner.run(abs, -1)), 5)
        rows.append(
            common.row(
                "an analysis that does nothing (fork, start, answer)",
                t_start,
                "",
                None,
                note="paid by every analysis, great-circle ones too",
            )
        )
        opened: set[Path] = set()
        for name, path, stations, demand in _networks(quick):
            size_mb = path.stat().st_size / 1e6
            t_server, walking = _median(lambda p=path: Walking.load(p, Settings()), 1)
            bare = walking.spec()
            if path not in opened:  # once per network
                opened.add(path)
                t_open, _ = _median(lambda s=bare: Walking.open(s))
                t_read, _ = _median(lambda p=path: load_network(p, check=False))
                rows.append(
                    common.row(
                        f"{name}: open the network in the analysis process "
                        f"(mapped, {size_mb:.1f} MB)",
                        t_open,
                        "read into memory (np.load)",
                        t_read,
                        note=f"the server loads and checks it once at start: {t_server:.2f} s",
                    )
                )

                def first_snap(s: Any = bare) -> None:
                    w = Walking.open(s)
                    w.network.snap([float(w.network.lon[0])], [float(w.network.lat[0])])

                t_index, _ = _median(first_snap, 3)
                rows.append(
                    common.row(
                        f"{name}: open + snapping index in the analysis process",
                        t_index,
                        "",
                        None,
                        note="before: built per analysis; now only for a point the server "
                        "did not snap",
                    )
                )
            points = [(stations.lon, stations.lat)]
            t_first, _ = _median(lambda w=walking, d=demand: w.demand_table(d), 1)
            t_spec, spec = _median(lambda w=walking, d=demand, p=points: w.spec(None, d, p), 3)
            rows.append(
                common.row(
                    f"{name}: the server snaps {len(demand):,} demand points for the "
                    "analysis processes (on a thread), the first time",
                    t_first,
                    "then per analysis (kept demand, stations looked up)",
                    t_spec,
                    note="once per study's demand",
                )
            )
            args = (stations, demand, 1000.0, 15.0, False)
            t_thread, here = _median(lambda a=args, w=walking: walk_coverage_answer(w, *a), 3)
            t_proc, there = _median(
                lambda a=args, s=spec: asyncio.run(runner.run(walk_coverage_analysis, s, *a)), 3
            )
            t_before, before = _median(
                lambda a=args, s=bare: asyncio.run(runner.run(walk_coverage_analysis, s, *a)), 3
            )
            assert here == there == before, "the analysis process answered differently"
            rows.append(
                common.row(
                    f"{name}: /coverage?metric=walk, {len(stations):,} stations, "
                    f"{len(demand):,} demand points, in an analysis process given the snaps",
                    t_proc,
                    "snapping in the process (before)",
                    t_before,
                    note=f"answers equal; in the server process (prepared network) "
                    f"{common.fmt_seconds(t_thread)}",
                )
            )
    finally:
        runner.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| what | Yizhan | beside | that | note |",
        "|---|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {common.fmt_seconds(r['yizhan_s'])} | {r['peer']} | "
            f"{common.fmt_seconds(r['peer_s'])} | {r['note']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run(quick="--quick" in sys.argv)))
