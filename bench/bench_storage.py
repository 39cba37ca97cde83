"""Benchmark: the PostgreSQL backend behind replicas and workers (issue 11).

On a throwaway PostgreSQL 15 + PostGIS cluster (``tests/pgcluster.py``, restarted here with
``fsync``, ``synchronous_commit`` and ``full_page_writes`` on: commits are durable, as in
production) and the 100,000-station benchmark registry (:func:`common.ensure_registry`):

1. **import**: ``yizhan db import`` of the 100,000 stations (validated, then ``COPY``);
2. **edit latency at 100,000 stations**, end to end: a client's ``PATCH`` with ``If-Match``
   on ``yizhan serve --database-url`` (one worker), 200 edits one after another; beside the
   same on the files backend (which rewrites the 78 MB file per edit; 15 edits). Target:
   median ≤ 20 ms on PostgreSQL;
3. **reads under 5 edits/s**: wrk on ``/nearest`` (random points near the stations, k=5)
   for 10 s alone, then 10 s with an editor at 5 edits/s. Target: ≥ 90 % of the rate;
4. **read throughput with 1, 2 and 4 workers** (``yizhan serve --workers N``) and **with two
   replicas** (two servers, one worker each, one wrk on each at once) on one database;
5. **propagation delay**: an edit acknowledged by replica A, then replica B polled until
   it serves the new ETag; p50 and p99 over 100 edits;
6. **/nearest by a PostGIS KNN query per request** (``ORDER BY geog <-> point LIMIT k``
   through psycopg) beside Yizhan's in-memory search, per query, with the two answers
   checked equal (ids and distances, 1 mm) on 1,000 random points;
7. **drivers**: psycopg 3 (pool) and asyncpg on our access pattern — a point read, the KNN
   query and the write transaction of an edit — asyncpg both on its own event loop and
   called from a worker thread (how the stores are called).

The machine is shared (2 cores): read each number with the load average printed beside it.
Run ``.venv/bin/python bench/bench_storage.py`` (about ten minutes); :func:`run` returns the
rows, :func:`markdown` renders them as the section of docs/benchmarks.md and docs/database.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg
import psycopg_pool
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench_nearest  # noqa: E402
import common  # noqa: E402
import pgcluster  # noqa: E402
from common import OUT, log, row  # noqa: E402
from storage_servers import Replica  # noqa: E402

from yizhan.geo.distance import EARTH_RADIUS_M  # noqa: E402
from yizhan.settings import Settings  # noqa: E402
from yizhan.stations.registry import load_registry  # noqa: E402
from yizhan.stations.search import StationSearch  # noqa: E402
from yizhan.storage.migrate import upgrade  # noqa: E402
from yizhan.storage.pg_transfer import import_registry  # noqa: E402

TITLE = "Storage: PostgreSQL behind replicas and workers (issue 11)"
N = 100_000
K = 5
ADMIN = "bench-storage-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
READ_SECONDS = 10
#: Rounds of (reads alone, reads with edits) and their length (s).
ROUNDS = 4
MIXED_SECONDS = 6
#: PostGIS measures geography on a sphere of the WGS-84 mean radius (2a + b) / 3.
POSTGIS_RADIUS_M = (2 * 6378137.0 + 6356752.314245179) / 3


# -- the cluster and servers --------------------------------------------------------------
def durable_cluster() -> pgcluster.Cluster:
    """A throwaway cluster restarted with durable commits (the test fixture relaxes them)."""
    c = pgcluster.start_cluster()
    c.stop()
    opts = (
        f"-p {c.port} -k {c.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=on "
        "-c synchronous_commit=on -c full_page_writes=on -c max_connections=200 "
        "-c shared_buffers=256MB"
    )
    c._run(
        str(c.bin_dir / "pg_ctl"), "-D", str(c.data_dir), "-o", opts,
        "-l", str(c.root / "server.log"), "-w", "-t", "60", "start",
    )  # fmt: skip
    return c


def serve(
    url: str | None, registry: Path | None = None, workers: int = 1, name: str = "a"
) -> Replica:
    args = ["--database-url", url] if url else ["--registry", str(registry)]
    env = {"YIZHAN_ADMIN_TOKEN": ADMIN, "YIZHAN_RELOAD_INTERVAL_S": "0" if url is None else "2"}
    if url is None:
        env["YIZHAN_STATE_DIR"] = str(OUT / "bench_storage_state")
    rep = Replica(*args, workers=workers, env=env, log=OUT / f"bench_storage_{name}.log")
    return rep.wait_ready(timeout_s=600)


def load_avg() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


# -- wrk -----------------------------------------------------------------------------------
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk(
    base: str, seconds: int, script: Path, threads: int = 1, connections: int = 8
) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
         "--latency", "-s", str(script), base + "/nearest"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    res: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        res[f"p{pct}"] = float(m.group(1)) * _UNIT[m.group(2)] if m else math.nan
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    res["errors"] = (int(m.group(1)) if m else 0) + (1 if "Socket errors" in out else 0)
    return res


# -- editing -------------------------------------------------------------------------------
def edit_once(c: httpx.Client, fid: str, value: str) -> tuple[float, str]:
    """GET the ETag, PATCH with If-Match: the PATCH's round trip (s) and the new ETag."""
    tag = c.get(f"/stations/{fid}").headers["etag"]
    t0 = time.perf_counter()
    r = c.patch(
        f"/stations/{fid}", json={"properties": {"phone": value}}, headers={**AUTH, "If-Match": tag}
    )
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"PATCH {fid}: {r.status_code} {r.text[:200]}")
    return dt, r.headers["etag"]


def edit_latency(base: str, ids: list[str], n: int) -> list[float]:
    with httpx.Client(base_url=base, timeout=120) as c:
        edit_once(c, ids[0], "warm-up")
        return [edit_once(c, ids[i % len(ids)], f"0371-{i:07d}")[0] for i in range(n)]


class Editor(threading.Thread):
    """Edits at most *rate* times a second until stopped."""

    def __init__(self, base: str, ids: list[str], rate: float) -> None:
        super().__init__(daemon=True)
        self.base, self.ids, self.rate = base, ids, rate
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as c:
            i = 0
            while not self.stop.is_set():
                t0 = time.perf_counter()
                self.latencies.append(edit_once(c, self.ids[i % len(self.ids)], f"e{i}")[0])
                i += 1
                self.stop.wait(max(0.0, 1.0 / self.rate - (time.perf_counter() - t0)))


# -- measurements --------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def propagation(a: str, b: str, ids: list[str], n: int = 100) -> list[float]:
    """Seconds from A's answer to an edit until B serves the new version."""
    out = []
    with httpx.Client(base_url=a, timeout=60) as ca, httpx.Client(base_url=b, timeout=60) as cb:
        for i in range(n):
            fid = ids[i % len(ids)]
            _, tag = edit_once(ca, fid, f"p{i}")
            t_ack = time.perf_counter()
            while cb.get(f"/stations/{fid}").headers["etag"] != tag:
                if time.perf_counter() - t_ack > 10:
                    raise RuntimeError(f"replica B never served {fid} {tag}")
            out.append(time.perf_counter() - t_ack)
            time.sleep(0.02)
    return out


KNN_SQL = (
    "SELECT id, ST_Distance(geog, %(q)s::geography, false) FROM features "
    "WHERE geog IS NOT NULL AND coalesce(properties->>'status', 'operational') = 'operational' "
    "ORDER BY geog <-> %(q)s::geography LIMIT %(k)s"
)


def same_answer(mine: list[tuple[str, float]], theirs: list[tuple[str, float]]) -> bool:
    """The same k nearest: distances pairwise within 1 mm, and the same ids except among
    stations tied with the k-th (either may be returned)."""
    if len(mine) != len(theirs):
        return False
    if any(abs(a[1] - b[1]) > 1e-3 for a, b in zip(mine, theirs, strict=True)):
        return False
    if not mine:
        return True
    last = mine[-1][1] - 1e-3
    return {i for i, d in mine if d < last} == {i for i, d in theirs if d < last}


def knn_compare(url: str, path: Path, n: int = 1000) -> dict[str, Any]:
    """Yizhan's in-memory k nearest vs PostGIS KNN per query, and whether they agree."""
    threadpool_limits(limits=1, user_api="openmp")  # one point per query, as the server does
    search = StationSearch(load_registry(path))
    ids = search.registry.ids
    qx, qy = common.query_points(n, seed=1111)
    pts = list(zip(qx.tolist(), qy.tolist(), strict=True))
    scale = EARTH_RADIUS_M / POSTGIS_RADIUS_M
    mismatches, worst = 0, 0.0
    t_mem: list[float] = []
    t_sql: list[float] = []
    with psycopg.connect(url) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN " + KNN_SQL, {"q": f"SRID=4326;POINT({pts[0][0]} {pts[0][1]})", "k": K}
            ).fetchall()
        )
        for lon, lat in pts[:50]:  # warm-up
            conn.execute(KNN_SQL, {"q": f"SRID=4326;POINT({lon} {lat})", "k": K}, prepare=True)
        for lon, lat in pts:
            t0 = time.perf_counter()
            hits = search.nearest(lon, lat, K)
            t_mem.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows = conn.execute(
                KNN_SQL, {"q": f"SRID=4326;POINT({lon} {lat})", "k": K}, prepare=True
            ).fetchall()
            t_sql.append(time.perf_counter() - t0)
            mine = [(ids[h.index], h.distance_m) for h in hits]
            theirs = [(str(i), float(d) * scale) for i, d in rows]
            mismatches += not same_answer(mine, theirs)
            worst = max([worst, *(abs(a[1] - b[1]) for a, b in zip(mine, theirs, strict=False))])
    return {
        "mem_p50": pct(t_mem, 50),
        "sql_p50": pct(t_sql, 50),
        "mem_p99": pct(t_mem, 99),
        "sql_p99": pct(t_sql, 99),
        "n": n,
        "mismatches": mismatches,
        "worst_m": worst,
        "index": "Index Scan using features_geog" in plan,
    }


# -- drivers -------------------------------------------------------------------------------
WRITE_SETUP = (
    "CREATE TABLE IF NOT EXISTS bench_counter (k int PRIMARY KEY, v bigint);"
    "INSERT INTO bench_counter VALUES (1, 0) ON CONFLICT DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS bench_rows (id text PRIMARY KEY, doc json, version bigint);"
    "INSERT INTO bench_rows VALUES ('r', '{}', 0) ON CONFLICT DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS bench_audit (v bigint PRIMARY KEY, id text, entry json);"
)


def drivers(url: str, fid: str, n: int = 400) -> dict[str, float]:
    """Median seconds of the three operations, per driver and calling style."""
    import asyncpg  # the peer: only the benchmark needs it

    doc = orjson.dumps({"properties": {"phone": "x" * 40}, "pad": "y" * 1500}).decode()
    q = "SRID=4326;POINT(127.0 37.5)"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WRITE_SETUP)
    out: dict[str, float] = {}
    pool = psycopg_pool.ConnectionPool(url, min_size=2, max_size=4, open=True)

    def pg_read() -> None:
        with pool.connection() as c:
            c.execute("SELECT feature::text FROM features WHERE id = %s", (fid,)).fetchone()

    def pg_knn() -> None:
        with pool.connection() as c:
            c.execute(KNN_SQL, {"q": q, "k": K}).fetchall()

    def pg_write() -> None:
        with pool.connection() as c:
            v = c.execute("UPDATE bench_counter SET v = v + 1 WHERE k = 1 RETURNING v").fetchone()[
                0
            ]  # type: ignore[index]
            c.execute("UPDATE bench_rows SET doc = %s::json, version = %s WHERE id = 'r'", (doc, v))
            c.execute("INSERT INTO bench_audit VALUES (%s, 'r', %s::json)", (v, doc))
            c.execute("SELECT pg_notify('bench', %s)", (str(v),))

    for name, fn in (
        ("psycopg read", pg_read),
        ("psycopg knn", pg_knn),
        ("psycopg write", pg_write),
    ):
        for _ in range(30):
            fn()
        out[name] = statistics.median(_times(fn, n))
    pool.close()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def make_pool() -> Any:
        return await asyncpg.create_pool(url, min_size=2, max_size=4)

    apool = asyncio.run_coroutine_threadsafe(make_pool(), loop).result()

    async def a_read() -> None:
        async with apool.acquire() as c:
            await c.fetchrow("SELECT feature::text FROM features WHERE id = $1", fid)

    async def a_knn() -> None:
        async with apool.acquire() as c:
            await c.fetch(
                "SELECT id, ST_Distance(geog, $1::geography, false) FROM features WHERE geog IS NOT NULL "
                "AND coalesce(properties->>'status', 'operational') = 'operational' "
                "ORDER BY geog <-> $1::geography LIMIT $2",
                q,
                K,
            )

    async def a_write() -> None:
        async with apool.acquire() as c, c.transaction():
            v = await c.fetchval("UPDATE bench_counter SET v = v + 1 WHERE k = 1 RETURNING v")
            await c.execute(
                "UPDATE bench_rows SET doc = $1::json, version = $2 WHERE id = 'r'", doc, v
            )
            await c.execute("INSERT INTO bench_audit VALUES ($1, 'r', $2::json)", v, doc)
            await c.execute("SELECT pg_notify('bench', $1)", str(v))

    async def native(fn: Callable[[], Any]) -> list[float]:
        for _ in range(30):
            await fn()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            await fn()
            ts.append(time.perf_counter() - t0)
        return ts

    for name, afn in (("asyncpg read", a_read), ("asyncpg knn", a_knn), ("asyncpg write", a_write)):
        out[name + " (own loop)"] = statistics.median(
            asyncio.run_coroutine_threadsafe(native(afn), loop).result()
        )
        out[name + " (from a thread)"] = statistics.median(
            _times(lambda f=afn: asyncio.run_coroutine_threadsafe(f(), loop).result(), n)
        )
    asyncio.run_coroutine_threadsafe(apool.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    return out


def _times(fn: Callable[[], Any], n: int) -> list[float]:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


# -- the run -------------------------------------------------------------------------------
def run(quick: bool = False) -> list[dict[str, Any]]:
    if shutil.which("wrk") is None:
        return [row("storage", None, "", None, "skipped: wrk not installed (apt-get install wrk)")]
    try:
        cluster = durable_cluster()
    except pgcluster.ClusterUnavailableError as exc:
        return [row("storage", None, "", None, f"skipped: {exc}")]
    rows: list[dict[str, Any]] = []
    reps: list[Replica] = []
    try:
        path = common.ensure_registry(N)
        url = f"postgresql://yizhan@127.0.0.1:{cluster.port}/yizhan"
        upgrade(url)
        t0 = time.perf_counter()
        import_registry(url, path, Settings(database_url=url))
        rows.append(
            row(
                f"yizhan db import, {N:,} stations (validate + COPY)",
                time.perf_counter() - t0,
                "",
                None,
                load_avg(),
            )
        )
        log(f"imported in {rows[-1]['yizhan_s']:.1f} s")
        ids = _some_ids(url, 50)
        script = bench_nearest._lua_script()

        a = serve(url, name="a")
        reps.append(a)
        n_edits = 60 if quick else 200
        lat = edit_latency(a.url, ids, n_edits)
        rows.append(row(
            f"edit at {N:,} stations, PostgreSQL: PATCH median (p99 {pct(lat, 99) * 1e3:.1f} ms)",
            pct(lat, 50), "", None, f"{n_edits} edits, one worker; {load_avg()}",
            target="≤ 20 ms", passed=pct(lat, 50) <= 0.020,
        ))  # fmt: skip
        log(f"edit p50 {pct(lat, 50) * 1e3:.1f} ms")

        rows.extend(reads_under_edits(a, ids, script, 2 if quick else ROUNDS))

        b = serve(url, name="b")
        reps.append(b)
        delays = propagation(a.url, b.url, ids, 40 if quick else 100)
        rows.append(row(
            f"propagation A → B: p50 (p99 {pct(delays, 99) * 1e3:.1f} ms)", pct(delays, 50), "", None,
            f"{len(delays)} edits; LISTEN/NOTIFY; {load_avg()}", target="< 1 s", passed=pct(delays, 99) < 1.0,
        ))  # fmt: skip
        # One replica, then two at once (one wrk each).
        one = wrk(a.url, READ_SECONDS, script)["rps"]
        res: dict[str, dict[str, Any]] = {}
        ts = [
            threading.Thread(
                target=lambda r=r: res.__setitem__(r.url, wrk(r.url, READ_SECONDS, script))
            )
            for r in (a, b)
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        two = sum(r["rps"] for r in res.values())
        rows.append(row(
            f"reads, two replicas on one database: {two:,.0f} req/s", 1 / two, "one replica", 1 / one,
            f"two servers × 1 worker, a wrk -t1 -c8 on each; {load_avg()}",
        ))  # fmt: skip
        for r in (a, b):
            r.stop()
        reps.clear()

        rps_1 = wrk_workers(url, 1, script)
        for w in (2, 4):
            rps = wrk_workers(url, w, script)
            rows.append(row(
                f"reads, {w} workers (one port): {rps:,.0f} req/s", 1 / rps, "1 worker", 1 / rps_1,
                f"yizhan serve --workers {w}, wrk -t2 -c16; 2 cores; {load_avg()}",
            ))  # fmt: skip
        rows.append(
            row(f"reads, 1 worker: {rps_1:,.0f} req/s", 1 / rps_1, "", None, "wrk -t2 -c16")
        )

        knn = knn_compare(url, path, 300 if quick else 1000)
        rows.append(row(
            f"/nearest k=5 per query: in memory vs PostGIS KNN (p99 {knn['mem_p99'] * 1e6:.0f} µs vs {knn['sql_p99'] * 1e3:.2f} ms)",
            knn["mem_p50"], "PostGIS ORDER BY geog <-> point LIMIT 5 (psycopg)", knn["sql_p50"],
            f"{knn['n']} points: {knn['n'] - knn['mismatches']} equal (ids, distances ≤ 1 mm; worst {knn['worst_m'] * 1e3:.3f} mm); index used: {knn['index']}",
            target="answers equal", passed=knn["mismatches"] == 0,
        ))  # fmt: skip

        d = drivers(url, ids[0], 200 if quick else 400)
        for op in ("read", "knn", "write"):
            rows.append(row(
                f"driver, {op}: psycopg 3 + pool", d[f"psycopg {op}"],
                "asyncpg from a worker thread", d[f"asyncpg {op} (from a thread)"],
                f"asyncpg on its own loop: {d[f'asyncpg {op} (own loop)'] * 1e6:.0f} µs",
            ))  # fmt: skip

        files = serve(None, registry=_copy(path), name="files")
        reps.append(files)
        flat = edit_latency(files.url, ids, 5 if quick else 15)
        files.stop()
        reps.clear()
        rows.insert(2, row(
            f"edit at {N:,} stations, files backend: PATCH median", pct(flat, 50), "", None,
            f"{len(flat)} edits: the whole file rewritten per edit; {load_avg()}",
        ))  # fmt: skip
    finally:
        for r in reps:
            r.stop()
        cluster.remove()
    return rows


def reads_under_edits(
    a: Replica, ids: list[str], script: Path, rounds: int
) -> list[dict[str, Any]]:
    """Reads alone and reads with 5 edits/s, alternated *rounds* times (so that a change in
    the machine's other load hits both alike); the ratio of the medians. Also the server's
    CPU time per edit, measured alone."""
    wrk(a.url, 3, script)  # warm-up
    alone, mixed, lat = [], [], []
    errors = 0
    for _ in range(rounds):
        r = wrk(a.url, MIXED_SECONDS, script)
        alone.append(r["rps"])
        ed = Editor(a.url, ids, 5.0)
        ed.start()
        m = wrk(a.url, MIXED_SECONDS, script)
        ed.stop.set()
        ed.join()
        mixed.append(m["rps"])
        lat += ed.latencies
        errors += r["errors"] + m["errors"]
    base, with_edits = statistics.median(alone), statistics.median(mixed)
    share = with_edits / base
    c0 = bench_nearest._cpu_s(a.proc.pid)
    n = len(edit_latency(a.url, ids, 50)) + 1
    cpu = (bench_nearest._cpu_s(a.proc.pid) - c0) / n
    return [
        row(
            f"reads under 5 edits/s: {with_edits:,.0f} of {base:,.0f} req/s ({share:.0%})",
            1 / with_edits, "reads alone", 1 / base,
            f"/nearest k=5, wrk -t1 -c8, {rounds} × {MIXED_SECONDS} s alternated (medians; rounds "
            f"{', '.join(f'{m / b:.0%}' for m, b in zip(mixed, alone, strict=True))}); "
            f"{len(lat)} edits, PATCH p50 {pct(lat, 50) * 1e3:.1f} ms under the read load; "
            f"errors {errors}; {load_avg()}",
            target="≥ 90 %", passed=share >= 0.90,
        ),
        row(
            "server CPU per edit (GET + PATCH with If-Match)", cpu, "", None,
            f"{n} edits alone; at 5 edits/s: {5 * cpu:.1%} of one core",
        ),
    ]  # fmt: skip


def wrk_workers(url: str, workers: int, script: Path) -> float:
    r = serve(url, workers=workers, name=f"w{workers}")
    try:
        wrk(r.url, 3, script, threads=2, connections=16)  # warm every worker
        return float(wrk(r.url, READ_SECONDS, script, threads=2, connections=16)["rps"])
    finally:
        r.stop()


def _some_ids(url: str, n: int) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            str(r[0]) for r in conn.execute("SELECT id FROM features ORDER BY pos LIMIT %s", (n,))
        ]


def _copy(path: Path) -> Path:
    dest = OUT / "bench_storage_files.geojson"
    shutil.copyfile(path, dest)
    state = OUT / "bench_storage_state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    return dest


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "PostgreSQL 15 + PostGIS 3.3 on this machine (fsync and synchronous_commit on), the "
        f"{N:,}-station benchmark registry, `yizhan serve` processes on 127.0.0.1, wrk for "
        "reads (`bench/bench_storage.py`). The machine is shared: the load average is given "
        "with each row.\n\n"
    )
    return head + common.table(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer edits and points")
    args = p.parse_args()
    rows = run(quick=args.quick)
    print(markdown(rows))


if __name__ == "__main__":
    main()
