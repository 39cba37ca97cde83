"""Usage benchmarks: check-ins over HTTP on one worker, durability under SIGKILL, and
utilization and ranking over 100,000 stations × a year of daily counts beside pandas.

1. **Check-ins per second**: ``python -m yizhan serve`` (one uvicorn worker, the worktree's
   code) on the bundled registry, ``wrk`` posting check-ins from distinct clients
   (``X-Forwarded-For``, trusted) with a Lua script that counts the 201s. Afterwards the
   server is stopped and the check-in files are counted: every acknowledged check-in must
   be on disk (a 201 is sent only after the group-commit ``fsync``).
   The same on PostgreSQL (``--database-url`` on a throwaway cluster with durable commits,
   ``bench_storage.durable_cluster``): the check-ins are then rows of the ``checkins``
   table, each batch one transaction under an advisory lock, counted afterwards.
2. **SIGKILL**: an asyncio client (httpx, 64 at once) posts check-ins and records every
   acknowledged id; the server is killed with SIGKILL in mid-load; every acknowledged id
   must be in the files.
3. **100,000 stations × 365 days (36.5 M rows)**: seeded Poisson daily counts for every
   station of the benchmark registry (``common.ensure_registry()``), kept in the columnar
   month files (``visits-YYYY-MM.npz``). Timed: Yizhan's usage (visits, open hours from the
   opening hours, per open hour, utilization, weekly, monthly, days with data) on the
   in-memory columns, beside the obvious pandas group-by of the same table; and the whole
   ranking end to end (read the month files, usage, every component, scores, ranks in the
   network and in each of the 291 districts), beside pandas doing the group-bys and the
   ranks.

    .venv/bin/python bench/bench_usage.py            # everything
    .venv/bin/python bench/bench_usage.py --no-http  # only the 36.5 M rows part
    .venv/bin/python bench/bench_usage.py --checkins # only check-ins: files and PostgreSQL
    .venv/bin/python bench/bench_usage.py --pg-year  # only part 4 (--pg-rows N: fewer days)

4. **The network's year on PostgreSQL**: the same 36.5 M rows in ``visit_rows`` of a
   throwaway cluster (binary ``COPY`` of the integer columns into a staging table, joined to
   the unit names; indexes built afterwards), read beside the month files: every unit's rows
   from ``visit_rows``, the first whole-network read (packs the months into
   ``visit_months``), later ones, and :func:`network_usage` (``/analysis/usage``) on both
   backends, answers compared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench_storage  # noqa: E402
import common  # noqa: E402
import pgcluster  # noqa: E402

from yizhan.query.ranking import Period, rank_stations, score_stations  # noqa: E402
from yizhan.query.search import build_search  # noqa: E402
from yizhan.query.usage import compute_usage, open_time, units_of  # noqa: E402
from yizhan.query.usage_service import network_usage, usage_stores  # noqa: E402
from yizhan.settings import DEFAULT_REGISTRY, Settings  # noqa: E402
from yizhan.stations.registry import load_registry  # noqa: E402
from yizhan.stations.usage_files import (  # noqa: E402
    SOURCE_CHECKINS,
    VisitRows,
    add_days,
    load_months,
    month_files,
)
from yizhan.storage.migrate import upgrade  # noqa: E402
from yizhan.storage.pg_transfer import import_registry  # noqa: E402
from yizhan.storage.pg_usage import PgVisitMonths  # noqa: E402
from yizhan.storage.postgres import Database  # noqa: E402

TITLE = "Usage: check-ins, utilization and ranking (bench_usage.py)"
OUT = common.OUT / "usage"
HTTP_SECONDS = 10
HTTP_CONNECTIONS = 64
KILL_AFTER_S = 3.0
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
SEED = 13


def timed(fn: Any, repeat: int = 3) -> tuple[float, float, Any]:
    """Median wall and process CPU seconds of *repeat* calls (after one warm-up), and the
    last result. CPU time is what the work costs when other processes share the cores."""
    out = fn()
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2], out


def load_note() -> str:
    """The machine's load (other processes share its cores)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


# -- the server -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(
    state: Path, database_url: str | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One ``yizhan serve`` worker (this checkout's code) on the bundled registry, or on
    the database at *database_url* (the registry imported there)."""
    OUT.mkdir(parents=True, exist_ok=True)
    reg = OUT / "zhengzhou.geojson"
    shutil.copyfile(DEFAULT_REGISTRY, reg)
    port = _free_port()
    env = {
        **os.environ,
        "YIZHAN_STATE_DIR": str(state),
        "YIZHAN_TRUST_FORWARDED_FOR": "true",
        "YIZHAN_CHECKIN_RATE_PER_HOUR": "1000000",
        "YIZHAN_RELOAD_INTERVAL_S": "0",
    }
    cmd = [sys.executable, "-m", "yizhan", "serve", "--registry", str(reg), "--port", str(port)]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    logf = (OUT / "server.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {proc.returncode}; see {OUT / 'server.log'}"
                )
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server not ready") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        logf.close()


def _station_ids() -> list[str]:
    doc = json.loads(DEFAULT_REGISTRY.read_text())
    return [f["id"] for f in doc["features"] if f["properties"]["kind"] == "station"]


def _on_disk(state: Path, database_url: str | None = None) -> list[str]:
    if database_url is not None:
        with psycopg.connect(database_url) as conn:
            return [str(r[0]) for r in conn.execute("SELECT id FROM checkins").fetchall()]
    ids = []
    for p in sorted(state.glob("*.usage/checkins-*.jsonl")):
        for line in p.read_bytes().splitlines():
            with contextlib.suppress(ValueError):
                ids.append(json.loads(line)["id"])
    return ids


LUA = """-- generated by bench/bench_usage.py: check-ins from distinct clients
local ids = {%s}
local trades = {"sanitation", "courier", "taxi", "truck_driver", "builder", "other"}
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function init(args) n = 0; created = 0; other = 0 end
function request()
  n = n + 1
  local ip = string.format("10.%%d.%%d.%%d", tid * 16 + math.floor(n / 62500) %% 16,
    math.floor(n / 250) %% 250, n %% 250 + 1)
  local body = string.format('{"trade": "%%s"}', trades[n %% 6 + 1])
  return wrk.format("POST", "/stations/" .. ids[n %% #ids + 1] .. "/checkins",
    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("created"); o = o + t:get("other") end
  io.write(string.format("created=%%d other=%%d\\n", c, o))
end
"""


def bench_http(database_url: str | None = None) -> list[dict[str, Any]]:
    if shutil.which("wrk") is None:
        return [common.row("check-ins per second", None, "", None, "skipped: wrk not installed")]
    state = OUT / f"state-http-{int(time.time())}"
    script = OUT / "checkins.lua"
    OUT.mkdir(parents=True, exist_ok=True)
    script.write_text(LUA % ",".join(f'"{i}"' for i in _station_ids()))
    with serving(state, database_url) as (base, proc):
        cmd = [
            "wrk",
            "-t1",
            f"-c{HTTP_CONNECTIONS}",
            f"-d{HTTP_SECONDS}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base,
        ]
        load = load_note()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        (OUT / "wrk.txt").write_text(out)
        health_cmd = [*cmd[:-3], base + "/health"]
        health = subprocess.run(health_cmd, capture_output=True, text=True, check=True).stdout
        health_rps = float(re.search(r"Requests/sec:\s*([\d.]+)", health).group(1))  # type: ignore[union-attr]
        proc.terminate()  # a clean stop: the writer thread finishes what was queued
        proc.wait(30)
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    created = int(re.search(r"created=(\d+)", out).group(1))  # type: ignore[union-attr]
    other = int(re.search(r"other=(\d+)", out).group(1))  # type: ignore[union-attr]
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        lat[pct] = float(m.group(1)) * unit[m.group(2)] if m else math.nan
    on_disk = len(_on_disk(state, database_url))
    accepted = created / HTTP_SECONDS
    ok = accepted >= 1000 and on_disk >= created and other == 0
    note = (
        f"{accepted:,.0f} check-ins/s acknowledged (201), {rps:,.0f} requests/s; "
        f"p50 {lat['50'] * 1e3:.1f} ms, p99 {lat['99'] * 1e3:.1f} ms; {other} other answers; "
        f"{on_disk:,} on disk for {created:,} acknowledged (the rest were answered after wrk stopped "
        f"counting); wrk -t1 -c{HTTP_CONNECTIONS} -d{HTTP_SECONDS}s, one uvicorn worker; {load}"
    )
    shutil.rmtree(state, ignore_errors=True)
    where = "PostgreSQL" if database_url else "files"
    return [
        common.row(
            f"check-ins over HTTP, one worker, {where} (s per check-in)",
            1 / accepted if accepted else None,
            "GET /health, same server",
            1 / health_rps,
            note + f"; /health: {health_rps:,.0f} requests/s",
            "1,000/s or more, none lost",
            ok,
        )
    ]


async def _hammer(base: str, seconds: float, acked: list[str], ids: list[str]) -> None:
    import httpx  # the bench's client; not a Yizhan dependency

    stop = time.monotonic() + seconds
    counter = 0

    async def worker(k: int, client: httpx.AsyncClient) -> None:
        nonlocal counter
        while time.monotonic() < stop:
            counter += 1
            n = counter
            try:
                r = await client.post(
                    f"/stations/{ids[n % len(ids)]}/checkins",
                    json={"trade": "courier"},
                    headers={"X-Forwarded-For": f"10.{k}.{(n // 250) % 250}.{n % 250 + 1}"},
                )
            except httpx.HTTPError:
                return  # the server is gone
            if r.status_code == 201:
                acked.append(r.json()["id"])

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await asyncio.gather(*(worker(k, client) for k in range(HTTP_CONNECTIONS)))


def bench_kill(database_url: str | None = None) -> list[dict[str, Any]]:
    state = OUT / f"state-kill-{int(time.time())}"
    ids = _station_ids()
    acked: list[str] = []
    with serving(state, database_url) as (base, proc):

        async def run() -> None:
            load = asyncio.create_task(_hammer(base, 60, acked, ids))
            await asyncio.sleep(KILL_AFTER_S)
            proc.send_signal(signal.SIGKILL)
            await load

        asyncio.run(run())
        proc.wait(10)
    stored = set(_on_disk(state, database_url))
    lost = [a for a in acked if a not in stored]
    shutil.rmtree(state, ignore_errors=True)
    where = "PostgreSQL" if database_url else "files"
    return [
        common.row(
            f"acknowledged check-ins lost to SIGKILL, {where}",
            None,
            "",
            None,
            f"{len(lost)} lost of {len(acked):,} acknowledged in {KILL_AFTER_S:g} s before the "
            f"kill ({len(stored):,} on disk); httpx asyncio client, {HTTP_CONNECTIONS} at once",
            "0",
            not lost and len(acked) > 0,
        )
    ]


# -- 100,000 stations × a year ---------------------------------------------------------------------
def _year_rows(n: int) -> VisitRows:
    rng = np.random.default_rng(SEED)
    first = YEAR[0].toordinal()
    days = YEAR[1].toordinal() - first + 1
    lam = rng.lognormal(2.5, 0.8, n)  # visits a day, per station
    count = rng.poisson(np.repeat(lam, days)).astype(np.int32)
    return VisitRows(
        [],  # filled by the caller (the registry's ids)
        np.tile(np.arange(first, first + days, dtype=np.int32), n),
        np.repeat(np.arange(n, dtype=np.int32), days),
        np.full(n * days, -1, np.int8),
        np.full(n * days, -1, np.int8),
        np.full(n * days, SOURCE_CHECKINS, np.int8),
        count,
    )


def _ensure_year_files(directory: Path, ids: list[str]) -> None:
    if len(month_files(directory)) == 12:
        return
    shutil.rmtree(directory, ignore_errors=True)
    t0 = time.perf_counter()
    rows = _year_rows(len(ids))
    rows = VisitRows(ids, rows.day, rows.unit, rows.hour, rows.trade, rows.source, rows.count)
    days = range(YEAR[0].toordinal(), YEAR[1].toordinal() + 1)
    for month in range(1, 13):
        sel = [d for d in days if date.fromordinal(d).month == month]
        add_days(directory, rows.take(np.isin(rows.day, sel)), sel)
    common.log(f"wrote 12 month files ({len(rows):,} rows) in {time.perf_counter() - t0:.1f} s")


def _pandas_usage(df: Any, open_hours: Any, district: Any) -> Any:
    import pandas as pd  # bench-only peer

    first = pd.Timestamp(YEAR[0])
    dates = first + pd.to_timedelta(df["day"] - YEAR[0].toordinal(), unit="D")
    df = df.assign(week=dates.dt.to_period("W-SUN"), month=dates.dt.to_period("M"))
    g = df.groupby("unit")
    total = g["count"].sum()
    days_with_data = g["day"].nunique()
    weekly = df.groupby(["unit", "week"])["count"].sum()
    monthly = df.groupby(["unit", "month"])["count"].sum()
    per = pd.DataFrame(
        {"visits": total, "days": days_with_data, "open_hours": open_hours, "district": district}
    )
    per["per_open_hour"] = per["visits"] / per["open_hours"]
    by_district = per.groupby("district")[["visits", "open_hours"]].sum()
    return per, weekly, monthly, by_district


def bench_year() -> list[dict[str, Any]]:
    path = common.ensure_registry()
    settings = Settings(registry=path, state_dir=OUT / "year-state")
    t0 = time.perf_counter()
    reg = load_registry(path, timezone=settings.timezone)
    search = build_search(settings, reg)
    load_s = time.perf_counter() - t0
    common.log(f"registry loaded and indexed in {load_s:.1f} s")
    directory = settings.state_file(path, "usage", "")
    assert directory is not None
    _ensure_year_files(directory, list(reg.ids))
    stores = usage_stores(settings, path)
    period = Period("2025", *YEAR)
    n = len(reg)

    # 1. usage on the in-memory columns, beside pandas on the same table
    rows = load_months(directory, *YEAR).rows
    n_rows = len(rows)

    def yz_usage() -> Any:
        units = units_of(search)
        return compute_usage(rows, units, *YEAR, open_time(units.hour_keys, *YEAR))

    yz_s, yz_cpu, usage = timed(yz_usage)
    common.log(f"yizhan usage: {yz_s:.2f} s (CPU {yz_cpu:.2f} s)")
    rows_s = yz_s
    peer_s = None
    note = f"{n_rows / 1e6:.1f} M rows, {n:,} stations; open hours from opening_hours included"
    try:
        import pandas as pd

        df = pd.DataFrame({"unit": rows.unit, "day": rows.day, "count": rows.count})
        units = usage.units
        oh = pd.Series(usage.open_hours[:n], index=np.arange(n))
        dist = pd.Series(units.district[:n], index=np.arange(n))
        peer_s, peer_cpu, per = timed(functools.partial(_pandas_usage, df, oh, dist))
        del df
        common.log(f"pandas usage: {peer_s:.2f} s (CPU {peer_cpu:.2f} s)")
        assert np.allclose(per[0]["visits"].to_numpy(), usage.visits[:n])
        assert (
            per[0]["days"].reindex(range(n), fill_value=0).to_numpy() == usage.days_with_data[:n]
        ).all()
        note += (
            "; pandas: groupby sum/nunique per station, week, month, district (same totals, "
            f"checked); CPU time: Yizhan {yz_cpu:.2f} s, pandas {peer_cpu:.2f} s"
        )
    except ImportError:
        note += "; pandas not installed (pip install -e '.[bench]')"
    out = [
        common.row(
            "usage over 100k stations × 365 days (in memory)",
            rows_s,
            "pandas group-by",
            peer_s,
            note,
        )
    ]
    gc.collect()

    # 2. end to end: read the month files, usage, scores, ranks (network and per district)
    def yz_rank() -> Any:
        table = score_stations(search, stores, None, None, period)
        network = rank_stations(table)
        per_district = {
            d: rank_stations(table, d) for d in sorted({x for x in table.districts if x})
        }
        return table, network, per_district

    stores.units(search)  # the registry's units, built once per snapshot (as in the server)
    e2e_s, e2e_cpu, (table, _, per_district) = timed(yz_rank)
    common.log(f"yizhan ranking end to end: {e2e_s:.2f} s (CPU {e2e_cpu:.2f} s)")
    ranked = int(table.ranked.sum())
    peer2 = None
    note2 = (
        f"read {len(month_files(directory))} month files + usage + 7 components + scores + ranks in "
        f"the network and {len(per_district)} districts; {ranked:,} stations ranked"
    )
    try:
        import pandas as pd

        def pd_rank() -> Any:
            parts = [np.load(p) for _, _, p in month_files(directory)]
            df = pd.concat(
                [
                    pd.DataFrame({"unit": z["unit"], "day": z["day"], "count": z["count"]})
                    for z in parts
                ]
            )
            per, _, _, _ = _pandas_usage(df, oh, dist)
            per["score"] = per["per_open_hour"]
            per["rank"] = per.groupby("district")["score"].rank(ascending=False, method="min")
            return per

        peer2, peer2_cpu, _ = timed(pd_rank)
        note2 += (
            "; pandas: read + the same group-bys + rank within districts (no scoring); "
            f"CPU time: Yizhan {e2e_cpu:.2f} s, pandas {peer2_cpu:.2f} s"
        )
    except ImportError:
        pass
    note2 += f"; {load_note()}"
    out.append(
        common.row(
            "usage + ranking end to end, 100k × 365",
            e2e_s,
            "pandas group-by + rank",
            peer2,
            note2,
            "≤ 5 s",
            e2e_s <= 5.0,
        )
    )
    out.append(
        common.row(
            "registry load + search build (not in the above)", load_s, "", None, f"{n:,} stations"
        )
    )
    return out


def bench_postgres() -> list[dict[str, Any]]:
    """:func:`bench_http` and :func:`bench_kill` on a throwaway PostgreSQL cluster."""
    try:
        cluster = bench_storage.durable_cluster()
    except pgcluster.ClusterUnavailableError as exc:
        return [common.row("check-ins on PostgreSQL", None, "", None, f"skipped: {exc}")]
    try:
        url = f"postgresql://yizhan@127.0.0.1:{cluster.port}/yizhan"
        upgrade(url)
        import_registry(url, DEFAULT_REGISTRY, Settings(database_url=url))
        rows = bench_http(url)
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM checkins")
        return rows + bench_kill(url)
    finally:
        cluster.remove()


# -- a network's year on PostgreSQL ---------------------------------------------------------------
_STAGE_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"), ("day", ">i4"),
        ("l1", ">i4"), ("unit", ">i4"),
        ("l2", ">i4"), ("count", ">i4"),
    ]
)  # fmt: skip
_PGCOPY = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def _fill_visit_rows(url: str, rows: VisitRows, first: date, last: date) -> None:
    """``visit_rows`` and ``visit_days`` holding *rows* (all of source check-ins, hour and
    trade not known): binary ``COPY`` of the integer columns into a staging table, joined
    to the unit names in one ``INSERT``, the indexes built afterwards."""
    assert (rows.hour == -1).all() and (rows.trade == -1).all()
    assert (rows.source == SOURCE_CHECKINS).all()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX visit_rows_by_day")
        conn.execute("DROP INDEX visit_rows_by_unit")
        conn.execute("CREATE UNLOGGED TABLE stage (day int4, unit int4, count int4)")
        conn.execute("CREATE UNLOGGED TABLE stage_units (i int4 PRIMARY KEY, unit text)")
        with conn.cursor().copy("COPY stage_units (i, unit) FROM STDIN") as copy:
            for i, u in enumerate(rows.units):
                copy.write_row((i, u))
        with conn.cursor().copy("COPY stage (day, unit, count) FROM STDIN (FORMAT binary)") as copy:
            copy.write(_PGCOPY)
            step = 2_000_000
            for a in range(0, len(rows), step):
                rec = np.empty(min(step, len(rows) - a), _STAGE_ROW)
                rec["n"], rec["l0"], rec["l1"], rec["l2"] = 3, 4, 4, 4
                rec["day"] = rows.day[a : a + step]
                rec["unit"] = rows.unit[a : a + step]
                rec["count"] = rows.count[a : a + step]
                copy.write(rec.tobytes())
            copy.write(b"\xff\xff")
        conn.execute(
            "INSERT INTO visit_rows (day, unit, hour, trade, source, count) "
            f"SELECT DATE '0001-01-01' + (s.day - 1), u.unit, -1, -1, {SOURCE_CHECKINS}, s.count "
            "FROM stage s JOIN stage_units u ON u.i = s.unit"
        )
        conn.execute("DROP TABLE stage, stage_units")
        conn.execute("CREATE INDEX visit_rows_by_day ON visit_rows (day)")
        conn.execute("CREATE INDEX visit_rows_by_unit ON visit_rows (unit, day)")
        conn.execute(
            "INSERT INTO visit_days (day) SELECT generate_series(%s::date, %s::date, '1 day')",
            (first, last),
        )
        conn.execute("UPDATE state_versions SET version = version + 1 WHERE kind = 'visits'")
        conn.execute("VACUUM ANALYZE visit_rows")


def bench_pg_year(max_rows: int | None = None) -> list[dict[str, Any]]:
    """The network's year (``load_parts`` of every unit, and :func:`network_usage`) from
    ``visit_rows`` on a throwaway cluster beside the month files, on the same rows."""
    path = common.ensure_registry()
    settings = Settings(registry=path, state_dir=OUT / "year-state")
    reg = load_registry(path, timezone=settings.timezone)
    search = build_search(settings, reg)
    directory = settings.state_file(path, "usage", "")
    assert directory is not None
    _ensure_year_files(directory, list(reg.ids))
    stores = usage_stores(settings, path)
    assert stores.visits is not None
    files = stores.visits
    first, last = YEAR
    if max_rows is not None:  # fewer days of every station
        last = date.fromordinal(first.toordinal() + max_rows // len(reg) - 1)
    rows = load_months(directory, first, last).rows
    n_rows = len(rows)
    try:
        cluster = pgcluster.start_cluster()
    except pgcluster.ClusterUnavailableError as exc:
        return [common.row("network year on PostgreSQL", None, "", None, f"skipped: {exc}")]
    try:
        url = cluster.url
        upgrade(url)
        t0 = time.perf_counter()
        _fill_visit_rows(url, rows, first, last)
        fill_s = time.perf_counter() - t0
        del rows
        gc.collect()
        with psycopg.connect(url) as conn:
            got = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('visit_rows'))"
            ).fetchone()
        size = got[0] if got else "?"
        common.log(f"filled visit_rows ({n_rows:,} rows, {size}) in {fill_s:.0f} s")
        db = Database(url)
        db.open()
        try:
            stores.units(search)

            def pg_read() -> Any:
                return PgVisitMonths(db).load_parts(first, last)  # not the period cache

            def pg_usage() -> Any:
                return network_usage(search, replace(stores, visits=PgVisitMonths(db)), first, last)

            files_read_s, _, (fparts, _) = timed(lambda: files.load_parts(first, last))
            del fparts
            # visit_rows alone (every unit named: the per-station path, the read before
            # visit_months), then the first network read (packs the months), then later ones
            keys = sorted(set(reg.ids))
            t0, c0 = time.perf_counter(), time.process_time()
            rows_parts, _ = PgVisitMonths(db).load_parts(first, last, keys)
            rows_s, rows_cpu = time.perf_counter() - t0, time.process_time() - c0
            del rows_parts
            gc.collect()
            t0 = time.perf_counter()
            pparts, _ = pg_read()
            cold_s = time.perf_counter() - t0
            assert sum(len(p) for p in pparts) == n_rows
            del pparts
            gc.collect()
            pg_read_s, pg_read_cpu, (pparts, _) = timed(pg_read)
            assert sum(len(p) for p in pparts) == n_rows
            del pparts
            gc.collect()
            files_use_s, _, fuse = timed(lambda: network_usage(search, stores, first, last))
            pg_use_s, _, puse = timed(pg_usage)
            same = bool(
                (fuse.visits == puse.visits).all()
                and (fuse.days_with_data == puse.days_with_data).all()
            )
            pg_stores = replace(stores, visits=PgVisitMonths(db))
            network_usage(search, pg_stores, first, last)
            cached_s, _, _ = timed(lambda: network_usage(search, pg_stores, first, last))
        finally:
            db.close()
    finally:
        cluster.remove()
    days = last.toordinal() - first.toordinal() + 1
    what = f"{len(reg):,} stations × {days} days = {n_rows / 1e6:.1f} M rows"
    common.log(
        f"PostgreSQL {what}: visit_rows by COPY {rows_s:.2f} s (CPU {rows_cpu:.2f} s); first "
        f"network read (packs the months) {cold_s:.2f} s; later reads {pg_read_s:.2f} s "
        f"(CPU {pg_read_cpu:.2f} s) vs files {files_read_s:.3f} s; network usage "
        f"{pg_use_s:.2f} s vs files {files_use_s:.2f} s (cached period {cached_s:.2f} s); "
        f"answers equal: {same}"
    )
    note = f"{what} ({size}, filled in {fill_s:.0f} s); {load_note()}"
    return [
        common.row(
            f"network year read from visit_rows (every unit, one bytea a column), {what}",
            rows_s,
            "month files (memory-mapped)",
            files_read_s,
            f"the read before visit_months; CPU {rows_cpu:.2f} s; {note}",
        ),
        common.row(
            f"first network read of the period: visit_rows, then packs 12 months, {what}",
            cold_s,
            "month files (memory-mapped)",
            files_read_s,
            "once per change to a month (any process)",
        ),
        common.row(
            f"network year read on PostgreSQL from visit_months (packed columns), {what}",
            pg_read_s,
            "month files (memory-mapped)",
            files_read_s,
            f"CPU {pg_read_cpu:.2f} s; PostgreSQL / files = {pg_read_s / files_read_s:.0f}×",
        ),
        common.row(
            f"network usage (/analysis/usage) on PostgreSQL, {what}",
            pg_use_s,
            "month files",
            files_use_s,
            f"answers equal: {same}; PostgreSQL / files = {pg_use_s / files_use_s:.2f}×; "
            f"the same period again in the process (cached): {cached_s:.2f} s",
            "answers equal",
            same,
        ),
    ]


def run(http: bool = True, year: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if http:
        rows += bench_http()
        rows += bench_kill()
        rows += bench_postgres()
    if year:
        rows += bench_year()
        rows += bench_pg_year()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [common.table(rows), ""]
    lines += common.target_lines(rows)
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-http", action="store_true", help="only the 36.5 M rows part")
    ap.add_argument("--checkins", action="store_true", help="only check-ins (files, PostgreSQL)")
    ap.add_argument(
        "--pg-year", action="store_true", help="only the network's year on PostgreSQL vs files"
    )
    ap.add_argument("--pg-rows", type=int, default=None, help="fewer rows for --pg-year")
    args = ap.parse_args()
    if args.pg_year:
        print(markdown(bench_pg_year(args.pg_rows)))
        sys.exit(0)
    result = run(http=not args.no_http, year=not args.checkins)
    print(markdown(result))
