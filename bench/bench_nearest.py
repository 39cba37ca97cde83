"""Benchmark: nearest-station search over 100,000 stations, in process.

Data: the 100,000-station registry of :mod:`common` (17,083 real Korean civil-defence
shelters, replicated with a seeded ±200 m jitter). Queries are where workers are: a random
shelter moved by up to ±2 km (seeded). Searches use Yizhan's default filter (operational
stations, about 90 %); every peer is given exactly the same operational stations.

Measured, each beside its peers:

1. exactness: the k=5 ids of ``StationSearch.nearest`` for 1,000 random queries equal a
   brute-force numpy haversine (sorted by distance, then id);
2. single query, k=5: median (and p99) in-process latency of ``StationSearch.nearest``
   (target ≤ 20 µs) vs brute-force numpy haversine, scikit-learn
   ``BallTree(metric="haversine").query`` on one point and geopandas ``sjoin_nearest`` on
   a one-row GeoDataFrame;
3. 100,000 queries in one batch, k=5 (target ≤ 0.5 s): ``StationSearch.nearest_many`` vs
   BallTree, brute force (run on a subsample and scaled) and ``sjoin_nearest``;
4. load and validate the registry file (target ≤ 5 s): ``load_registry`` vs a read
   without validation by ``geopandas.read_file``/``pyogrio``.

``GET /nearest`` over HTTP beside ``GET /health`` is :mod:`bench_http`'s; the server
helpers it and :mod:`bench_edits` use (:func:`serving`, :func:`_wrk`) are here.

geopandas works in a projected CRS, EPSG:5179 (Korea 2000 / Unified CS, metres): its
distances are planar, not great-circle, and ``sjoin_nearest`` has no ``k``: it returns
only the nearest station (all of them on a tie), so it does less work than the others.

Run ``.venv/bin/python bench/bench_nearest.py``; :func:`run` returns the rows (name, yizhan_s, peer, peer_s, ratio, note, target, pass).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import EARTH_RADIUS_M, OUT, fmt_seconds, log, row

from yizhan.stations.jsonio import read_document
from yizhan.stations.registry import Registry, load_registry
from yizhan.stations.search import DEFAULT_FILTER, StationSearch
from yizhan.stations.validate import validate_document

K = 5
N_BATCH = 100_000
N_EXACT = 1_000
N_SINGLE = 20_000  # single queries per timing round (Yizhan, BallTree)
TARGET_SINGLE_S = 20e-6
TARGET_BATCH_S = 0.5
TARGET_LOAD_S = 5.0
HTTP_CONNECTIONS = 8
EPSG_KOREA = 5179


# -- peers ----------------------------------------------------------------------------------
def haversine(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> np.ndarray:
    """Great-circle metres (numpy, broadcasting): the brute-force reference."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlam = np.radians(lon2) - np.radians(lon1)
    h = np.sin(dphi * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam * 0.5) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


class Brute:
    """Brute-force k nearest by haversine to every station, ties by id."""

    def __init__(self, lon: np.ndarray, lat: np.ndarray, rank: np.ndarray) -> None:
        self.lon, self.lat, self.rank = lon, lat, rank
        # Precomputed per station, as a careful brute-force implementation would.
        self.lat_r = np.radians(lat)
        self.lon_r = np.radians(lon)
        self.cos_lat = np.cos(self.lat_r)

    def dist(self, lon: float, lat: float) -> np.ndarray:
        p1 = math.radians(lat)
        h = (
            np.sin((self.lat_r - p1) * 0.5) ** 2
            + math.cos(p1) * self.cos_lat * np.sin((self.lon_r - math.radians(lon)) * 0.5) ** 2
        )
        return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))

    def knn(self, lon: float, lat: float, k: int) -> np.ndarray:
        """Positions of the k nearest, by distance then id rank (exact on ties)."""
        d = self.dist(lon, lat)
        kth = np.partition(d, k - 1)[k - 1]
        cand = np.flatnonzero(d <= kth)
        order = np.lexsort((self.rank[cand], d[cand]))
        return cand[order[:k]]

    def knn_many(self, lon: np.ndarray, lat: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
        """k nearest for many points, *chunk* queries at a time (2-D distance blocks)."""
        out = np.empty((lon.size, k), dtype=np.int64)
        for s in range(0, lon.size, chunk):
            p1 = np.radians(lat[s : s + chunk])[:, None]
            l1 = np.radians(lon[s : s + chunk])[:, None]
            h = (
                np.sin((self.lat_r[None, :] - p1) * 0.5) ** 2
                + np.cos(p1) * self.cos_lat[None, :] * np.sin((self.lon_r[None, :] - l1) * 0.5) ** 2
            )
            d = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
            dk = np.take_along_axis(d, part, axis=1)
            out[s : s + chunk] = np.take_along_axis(part, np.argsort(dk, axis=1), axis=1)
        return out


# -- sections -------------------------------------------------------------------------------
def _timed_fresh(fn: Any, repeat: int) -> tuple[float, Any]:
    """Median time of *repeat* calls, each with the previous result already freed (a large
    live heap makes the cyclic GC slower, which would penalise later calls)."""
    times = []
    info = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        info = len(out)
        del out
    return statistics.median(times), info


def bench_load(path: Path) -> list[dict[str, Any]]:
    """``load_registry`` (parse + full validation + columns) vs a read without validation.

    Runs first, with nothing large alive, as in a fresh server process.
    """
    size_mb = path.stat().st_size / 1e6
    t_load, n = _timed_fresh(lambda: load_registry(path), repeat=3)
    # Where the time goes (one run, cyclic GC paused so that the split is the work itself),
    # and the whole call inside gc.disable(): equal to the plain call when load_registry
    # already keeps the GC out of the way.
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        doc = read_document(path)
        t1 = time.perf_counter()
        report = validate_document(doc)
        t2 = time.perf_counter()
        Registry(features=doc["features"], warnings=report.warnings)
        t3 = time.perf_counter()
        del doc, report
        t_nogc, _ = _timed_fresh(lambda: load_registry(path), repeat=1)
    finally:
        gc.enable()
    gc.collect()
    note = (
        f"{n:,} stations, {size_mb:.0f} MB GeoJSON; median of 3; one run split (GC paused): "
        f"parse {t1 - t0:.2f} s, validate {t2 - t1:.2f} s, columns {t3 - t2:.2f} s; "
        f"whole call inside gc.disable(): {t_nogc:.2f} s"
    )
    target = f"≤ {TARGET_LOAD_S:g} s"
    ok = t_load <= TARGET_LOAD_S
    name = "load + validate 100k registry"
    rows: list[dict[str, Any]] = []
    if common.have("pyogrio"):
        import pyogrio

        t_peer, m = _timed_fresh(lambda: pyogrio.read_dataframe(path), repeat=3)
        rows.append(
            row(
                name,
                t_load,
                "pyogrio.read_dataframe (no validation)",
                t_peer,
                f"{note}; peer (the reader behind geopandas.read_file) read {m:,} rows "
                "into a GeoDataFrame, median of 3, no checks",
                target,
                ok,
            )
        )
    else:
        rows.append(
            row(
                name,
                t_load,
                "pyogrio / geopandas.read_file",
                None,
                f"skipped: pyogrio not installed; {note}",
                target,
                ok,
            )
        )
    import orjson

    def parse_only() -> Any:
        gc.disable()
        try:
            return orjson.loads(path.read_bytes())
        finally:
            gc.enable()

    t_json, _ = _timed_fresh(parse_only, repeat=3)
    rows.append(
        row(
            name,
            t_load,
            "read + orjson.loads only (floor)",
            t_json,
            "read the file and parse it to dicts (GC paused), nothing else; median of 3",
            target,
            ok,
        )
    )
    return rows


def load_quietly(path: Path) -> Registry:
    """The registry for the query benchmarks (not timed)."""
    gc.disable()
    try:
        return load_registry(path)
    finally:
        gc.enable()
        gc.collect()


def check_exactness(search: StationSearch, brute: Brute, sel: np.ndarray) -> tuple[int, int]:
    """For N_EXACT random queries: do the k=5 ids equal brute force (distance, then id)?"""
    qx, qy = common.query_points(N_EXACT, seed=101)
    ids = search.registry.ids
    same = 0
    first_bad: str | None = None
    for lon, lat in zip(qx.tolist(), qy.tolist(), strict=True):
        got = [ids[h.index] for h in search.nearest(lon, lat, K)]
        want = [ids[int(sel[p])] for p in brute.knn(lon, lat, K)]
        if got == want:
            same += 1
        elif first_bad is None:
            first_bad = f"({lon:.6f}, {lat:.6f}): yizhan {got} vs brute {want}"
    print(f"exactness: {same}/{N_EXACT} identical", flush=True)
    if first_bad:
        print(f"  first difference at {first_bad}", flush=True)
    return same, N_EXACT


def bench_single(
    search: StationSearch, brute: Brute, sl: np.ndarray, sa: np.ndarray
) -> list[dict[str, Any]]:
    """One query at a time, k=5: median per-call latency (median of 5 rounds)."""
    qx, qy = common.query_points(N_SINGLE, seed=202)
    pts = list(zip(qx.tolist(), qy.tolist(), strict=True))
    over = common.timer_overhead_ns()
    med, p99 = common.latency(search.nearest, [(x, y, K) for x, y in pts])
    target = f"≤ {TARGET_SINGLE_S * 1e6:g} µs"
    ok = med <= TARGET_SINGLE_S
    base = (
        f"median of per-call times ({len(pts):,} calls × 5 rounds), p99 {fmt_seconds(p99)}; "
        f"includes distances and bearings; timer overhead {over:.0f} ns"
    )
    name = "single query k=5 (median latency)"
    rows = []
    few = [(x, y, K) for x, y in pts[:300]]
    b_med, _ = common.latency(brute.knn, few, rounds=3, warmup=20)
    rows.append(
        row(
            name,
            med,
            "numpy brute-force haversine",
            b_med,
            f"{base}; peer: {len(sl):,} distances + partial sort per query, {len(few)} calls × 3",
            target,
            ok,
        )
    )
    if common.have("sklearn"):
        from sklearn.neighbors import BallTree

        tree = BallTree(np.radians(np.column_stack([sa, sl])), metric="haversine")

        def bt(lon: float, lat: float, k: int) -> Any:
            return tree.query(np.radians([[lat, lon]]), k=k)

        bt_args = [(x, y, K) for x, y in pts[:5000]]
        t_med, _ = common.latency(bt, bt_args, rounds=3)
        rows.append(
            row(
                name,
                med,
                "scikit-learn BallTree(haversine).query",
                t_med,
                f"{base}; peer: one point, {len(bt_args):,} calls × 3",
                target,
                ok,
            )
        )
    else:
        rows.append(
            row(
                name,
                med,
                "scikit-learn BallTree(haversine)",
                None,
                "skipped: scikit-learn not installed",
                target,
                ok,
            )
        )
    if common.have("geopandas"):
        import geopandas as gpd

        st = gpd.GeoDataFrame(geometry=gpd.points_from_xy(sl, sa), crs=4326).to_crs(EPSG_KOREA)
        st.sindex  # noqa: B018  (built once, outside the timing)

        def sj(lon: float, lat: float, k: int) -> Any:
            q = gpd.GeoDataFrame(geometry=gpd.points_from_xy([lon], [lat]), crs=4326).to_crs(
                EPSG_KOREA
            )
            return gpd.sjoin_nearest(q, st, distance_col="d")

        sj_args = [(x, y, K) for x, y in pts[:200]]
        g_med, _ = common.latency(sj, sj_args, rounds=3, warmup=10)
        rows.append(
            row(
                name,
                med,
                f"geopandas sjoin_nearest (EPSG:{EPSG_KOREA}, k=1)",
                g_med,
                f"{base}; peer: one-row GeoDataFrame incl. reprojection, planar distance, "
                f"nearest only; {len(sj_args)} calls × 3",
                target,
                ok,
            )
        )
    else:
        rows.append(
            row(
                name,
                med,
                "geopandas sjoin_nearest",
                None,
                "skipped: geopandas not installed",
                target,
                ok,
            )
        )
    return rows


def bench_batch(
    search: StationSearch, brute: Brute, sl: np.ndarray, sa: np.ndarray, sel: np.ndarray
) -> list[dict[str, Any]]:
    """100,000 queries in one call, k=5."""
    qx, qy = common.query_points(N_BATCH, seed=303)
    t_y, (pos, dist) = common.timed(lambda: search.nearest_many(qx, qy, K), repeat=5)
    target = f"≤ {TARGET_BATCH_S:g} s"
    ok = t_y <= TARGET_BATCH_S
    omp = os.environ.get("OMP_NUM_THREADS", f"unset, {os.cpu_count()} cores")
    base = f"{N_BATCH:,} queries × {len(sl):,} stations; yizhan median of 5 (OpenMP threads: {omp})"
    name = "batch 100k queries k=5"
    rows = []
    # Brute force on a subsample, scaled.
    n_sub = 500
    sub = np.random.default_rng(7).choice(N_BATCH, n_sub, replace=False)
    t_b, bidx = common.timed(lambda: brute.knn_many(qx[sub], qy[sub], K), repeat=3, warmup=0)
    agree = float(np.mean(np.all(sel[bidx] == pos[sub], axis=1)))
    scale = N_BATCH / n_sub
    rows.append(
        row(
            name,
            t_y,
            "numpy brute-force haversine (chunked)",
            t_b * scale,
            f"{base}; peer run on {n_sub:,} queries (median of 3) and scaled ×{scale:.0f}; "
            f"same ids on {100 * agree:.1f} % of them",
            target,
            ok,
        )
    )
    if common.have("sklearn"):
        from sklearn.neighbors import BallTree

        xy = np.radians(np.column_stack([sa, sl]))
        t_build, tree = common.timed(lambda: BallTree(xy, metric="haversine"), repeat=3, warmup=0)
        n_bt = 25_000
        q = np.radians(np.column_stack([qy[:n_bt], qx[:n_bt]]))
        t_q, (bd, bi) = common.timed(lambda: tree.query(q, k=K), repeat=3, warmup=0)
        bd = bd * EARTH_RADIUS_M
        same = float(np.mean(np.all(sel[bi] == pos[:n_bt], axis=1)))
        err = float(np.max(np.abs(bd - dist[:n_bt])))
        scale = N_BATCH / n_bt
        rows.append(
            row(
                name,
                t_y,
                "scikit-learn BallTree(haversine) batch",
                t_build + t_q * scale,
                f"{base}; peer: tree build {t_build:.2f} s + {n_bt:,} queries {t_q:.2f} s "
                f"scaled ×{scale:.0f} (medians of 3); same ids on {100 * same:.2f} % "
                f"(rest: equal-distance ties in another order), max |Δd| {err:.1e} m",
                target,
                ok,
            )
        )
    else:
        rows.append(
            row(
                name,
                t_y,
                "scikit-learn BallTree(haversine)",
                None,
                "skipped: scikit-learn not installed",
                target,
                ok,
            )
        )
    if common.have("geopandas"):
        import geopandas as gpd

        st = gpd.GeoDataFrame(geometry=gpd.points_from_xy(sl, sa), crs=4326).to_crs(EPSG_KOREA)

        def sj() -> Any:
            q = gpd.GeoDataFrame(geometry=gpd.points_from_xy(qx, qy), crs=4326).to_crs(EPSG_KOREA)
            return gpd.sjoin_nearest(q, st, distance_col="d")

        t_g, j = common.timed(sj, repeat=3, warmup=0)
        j = j[~j.index.duplicated()]
        planar = j["d"].to_numpy()
        rel = float(
            np.max(
                np.abs(planar - dist[j.index.to_numpy(), 0])
                / np.maximum(dist[j.index.to_numpy(), 0], 1.0)
            )
        )
        rows.append(
            row(
                name,
                t_y,
                f"geopandas sjoin_nearest (EPSG:{EPSG_KOREA}, k=1) batch",
                t_g,
                f"{base}; peer median of 3 incl. reprojection and spatial index; nearest "
                f"only; planar distances differ from great-circle by up to {100 * rel:.2f} %",
                target,
                ok,
            )
        )
    else:
        rows.append(
            row(
                name,
                t_y,
                "geopandas sjoin_nearest",
                None,
                "skipped: geopandas not installed",
                target,
                ok,
            )
        )
    return rows


# -- HTTP -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the server gets SIGTERM if this process dies, whatever the cause."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _server_cmd(path: Path, port: int) -> list[str]:
    """``python -m yizhan serve --registry PATH --host 127.0.0.1 --port N``: run in the
    checkout being served, whose ``yizhan`` package comes first on ``sys.path``."""
    return [
        sys.executable,
        "-m",
        "yizhan",
        "serve",
        "--registry",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def _hiding(modules: Sequence[str]) -> Path:
    """A folder that, first on ``PYTHONPATH``, makes *modules* unimportable (each a
    package whose import raises ``ImportError``, as if it were not installed)."""
    folder = OUT / ("hide-" + "-".join(sorted(modules)))
    for name in modules:
        pkg = folder / name
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(
            f"raise ImportError('{name} hidden by bench/bench_nearest.py')\n"
        )
    return folder


def _server_env() -> dict[str, str]:
    """The environment, with placements/alerts state files kept in bench/out/state."""
    env = dict(os.environ)
    env["YIZHAN_STATE_DIR"] = str(OUT / "state")
    return env


@contextlib.contextmanager
def serving(
    path: Path,
    timeout_s: float = 240.0,
    *,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    code: Path = common.ROOT,
    hide: Sequence[str] = (),
) -> Iterator[tuple[str, float, int]]:
    """``yizhan serve`` on a free loopback port; stopped on exit, even on failure.

    *env* replaces the default environment (state in ``bench/out/state``); *log_path*
    the default server log. *code* is the checkout whose ``yizhan`` package is served
    (default: this one); *hide* names modules made unimportable for the server.
    """
    env = dict(env if env is not None else _server_env())
    paths = [str(_hiding(hide))] if hide else []
    paths += [str(code), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    port = _free_port()
    log_path = log_path or OUT / "bench_nearest_server.log"
    OUT.mkdir(parents=True, exist_ok=True)
    logf = log_path.open("wb")
    t0 = time.perf_counter()
    (OUT / "state").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        _server_cmd(path, port),
        cwd=code,
        env=env,
        stdout=logf,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    old_term = signal.getsignal(signal.SIGTERM)

    def _term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _term)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
            if time.perf_counter() - t0 > timeout_s:
                raise RuntimeError(f"server not ready after {timeout_s:.0f} s; see {log_path}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        yield base, time.perf_counter() - t0, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        logf.close()
        signal.signal(signal.SIGTERM, old_term)


_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process *pid* (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    url: str, seconds: int, script: Path | None = None, latency: bool = True, pid: int | None = None
) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{HTTP_CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s"]
    if latency:
        cmd.append("--latency")
    if script is not None:
        cmd += ["-s", str(script)]
    cpu0 = _cpu_s(pid) if pid else math.nan
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    cpu1 = _cpu_s(pid) if pid else math.nan
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    res: dict[str, Any] = {"rps": rps, "raw": out}
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        res[f"p{pct}"] = float(m.group(1)) * _UNIT[m.group(2)] if m else math.nan
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:(.*)", out)
    res["socket_errors"] = m.group(1).strip() if m else ""
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    res["cpu_per_req"] = (cpu1 - cpu0) / res["requests"] if res["requests"] else math.nan
    return res


# -- driver ---------------------------------------------------------------------------------
def run() -> list[dict[str, Any]]:
    """Run every in-process measurement; returns the rows (with ``target`` and ``pass``
    where set). ``/nearest`` over HTTP is :mod:`bench_http`'s."""
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    path = common.ensure_registry()
    log(f"nearest: registry {path.relative_to(common.ROOT)}")
    log("nearest: load + validate …")
    rows = bench_load(path)
    reg = load_quietly(path)
    t0 = time.perf_counter()
    search = StationSearch(reg)
    t_index = time.perf_counter() - t0
    _, sel = search.index_for(DEFAULT_FILTER)
    sl, sa = reg.lon[sel], reg.lat[sel]
    brute = Brute(sl, sa, reg.id_rank[sel])
    log(
        f"nearest: {len(sel):,} of {len(reg):,} stations operational; index built in {t_index * 1e3:.0f} ms"
    )
    same, total = check_exactness(search, brute, sel)
    log("nearest: single queries …")
    single = bench_single(search, brute, sl, sa)
    log("nearest: batch …")
    batch = bench_batch(search, brute, sl, sa, sel)
    exact_note = f"exactness: {same}/{total} identical to brute force (k=5 ids, distance then id)"
    single[0]["note"] = f"{exact_note}; " + single[0]["note"]
    single[0]["check"] = f"nearest {exact_note}"
    rows = single + batch + rows
    load1 = os.getloadavg()
    log(
        f"nearest: done in {time.perf_counter() - t_start:.0f} s; load average "
        f"{load0[0]:.1f} → {load1[0]:.1f} on {os.cpu_count()} cores"
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.parse_args()
    rows = run()
    print(common.table(rows))
    print()
    print("\n".join(common.target_lines(rows) + common.check_lines(rows)))


if __name__ == "__main__":
    main()
