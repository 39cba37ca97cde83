"""Benchmark: ``GET /nearest`` beside ``GET /health`` on one uvicorn worker (issue 10).

The server is ``yizhan serve`` (one uvicorn worker on 127.0.0.1) over the 100,000-station
registry of :mod:`common` (the 17,083 Korean civil-defence shelters and jittered copies).
wrk (``-t1 -c8``) asks, in turn and on the same server:

* ``/nearest?lon=…&lat=…&k=5&amenity=toilet`` at 2,000 random points where workers are
  (a generated Lua script): the target, at least 70 % of /health's requests per second;
* ``/nearest?lon=…&lat=…&k=5`` (the default filter, operational stations);
* ``/health``.

Each is run ``HTTP_ROUNDS`` × ``HTTP_SECONDS`` after a warm-up, servers and endpoints taken
in turn so that drift on the shared machine hits them alike; medians are reported. The
server's CPU per request is the growth of its ``utime + stime`` (``/proc/<pid>/stat``, all
threads) during a wrk run divided by the requests wrk completed.

With ``--baseline REF`` the same is measured, in the same run, on the package of another
commit (``git archive REF yizhan``) served the way that commit serves it: without httptools
and uvloop (they were not its dependencies; uvicorn picks them by itself when importable,
so they are made unimportable for that server), and once more with them, which separates
the server options from the code. Both servers are up together for a comparison of
answers: the same requests (varied parameters and invalid ones) must get the same status,
content type and body bytes from both (``time`` masked; ``open_at`` too when derived from
the clock).

Beside the throughput, exactness: for 300 random points the ``k=5&amenity=toilet`` answers
over HTTP must be the brute-force k nearest operational stations offering a toilet (numpy
haversine, ties by id), with the same distances to the centimetre.

Run ``.venv/bin/python bench/bench_http.py [--baseline REF]`` (about 2 minutes per server);
``bench/run.py http --update`` writes this section into docs/benchmarks.md and leaves the
other sections as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from bench_nearest import HTTP_CONNECTIONS, Brute, _wrk, load_quietly, serving
from common import OUT, ROOT, fmt_seconds, log, row

from yizhan.stations.registry import StationFilter

#: Title of this module's section in docs/benchmarks.md (used by run.py).
TITLE = "/nearest vs /health over HTTP (one uvicorn worker)"
#: Benchmark names this section owns: ``run.py --update`` removes rows and target lines
#: starting so from the other sections (bench_nearest measured HTTP before this module).
CLAIMS = ("HTTP /nearest",)

K = 5
TARGET_QUERY = "k=5&amenity=toilet"
PLAIN_QUERY = "k=5"
TARGET_RATIO = 0.70
HTTP_SECONDS = 10
HTTP_WARMUP_SECONDS = 3
HTTP_ROUNDS = 3
N_EXACT = 300
N_SAME = 400
#: What the baseline's own dependencies did not install, hidden from its first server.
SERVER_EXTRAS = ("httptools", "uvloop")

TARGET_NAME = f"HTTP /nearest {TARGET_QUERY.replace('&', ' ')} throughput (as 1 / req/s)"
PLAIN_NAME = f"HTTP /nearest {PLAIN_QUERY} throughput (as 1 / req/s)"


@dataclass
class Server:
    """One ``yizhan serve`` process and what it was measured at."""

    label: str
    how: str
    code: Path
    hide: tuple[str, ...] = ()
    mine: bool = False
    base: str = ""
    pid: int = 0
    startup_s: float = math.nan
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


# -- the servers ------------------------------------------------------------------------------
def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def checkout(ref: str) -> tuple[Path, str]:
    """The ``yizhan`` package of commit *ref*, extracted under ``bench/out`` (once)."""
    sha = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    dest = OUT / f"baseline-{sha}"
    if not (dest / "yizhan" / "__init__.py").exists():
        tar = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", sha, "yizhan"],
            capture_output=True,
            check=True,
        ).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(dest, filter="data")
    return dest, sha


def servers(baseline: str | None) -> list[Server]:
    """This checkout's server, then (with *baseline*) the baseline's, without and with the
    server extras."""
    here = _git("rev-parse", "--short", "HEAD")
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "--", "yizhan") else ""
    out = [
        Server(
            f"after: {here}{dirty}",
            "this checkout's `yizhan serve`: httptools, uvloop, no access log",
            ROOT,
            mine=True,
        )
    ]
    if baseline:
        code, sha = checkout(baseline)
        out += [
            Server(
                f"before: {sha}",
                "that commit's `yizhan serve` with its dependencies: uvicorn's h11 and "
                "asyncio (httptools and uvloop not importable), access log",
                code,
                hide=SERVER_EXTRAS,
            ),
            Server(
                f"before: {sha} + httptools, uvloop",
                "the same code, httptools and uvloop importable (uvicorn then picks them), "
                "access log",
                code,
            ),
        ]
    return out


@contextlib.contextmanager
def started(srvs: list[Server], path: Path) -> Iterator[None]:
    """Every server of *srvs* up at once (each on its own port), stopped on exit."""
    with contextlib.ExitStack() as stack:
        for i, s in enumerate(srvs):
            base, startup_s, pid = stack.enter_context(
                serving(
                    path,
                    code=s.code,
                    hide=s.hide,
                    log_path=OUT / f"bench_http_server_{i}.log",
                )
            )
            s.base, s.startup_s, s.pid = base, startup_s, pid
            log(f"  {s.label}: up in {startup_s:.1f} s at {base}")
        yield


# -- wrk ------------------------------------------------------------------------------------
def lua_script(query: str, name: str, n: int = 2000) -> Path:
    """A wrk script asking ``/nearest?lon=…&lat=…&<query>`` at *n* random points (seeded)."""
    qx, qy = common.query_points(n, seed=404)
    pts = ",".join(f"{{{x:.6f},{y:.6f}}}" for x, y in zip(qx.tolist(), qy.tolist(), strict=True))
    script = OUT / f"bench_http_{name}.lua"
    OUT.mkdir(parents=True, exist_ok=True)
    script.write_text(
        "-- generated by bench/bench_http.py: random query points in Korea\n"
        f"local pts = {{{pts}}}\n"
        "local n = #pts\n"
        "math.randomseed(42)\n"
        "request = function()\n"
        "  local p = pts[math.random(n)]\n"
        "  return wrk.format('GET', "
        f"string.format('/nearest?lon=%.6f&lat=%.6f&{query}', p[1], p[2]))\n"
        "end\n"
    )
    return script


def measure(srvs: list[Server]) -> None:
    """wrk on every server and endpoint, in turn, ``HTTP_ROUNDS`` times (results in ``runs``)."""
    endpoints: list[tuple[str, str, Path | None]] = [
        ("target", "/nearest", lua_script(TARGET_QUERY, "target")),
        ("health", "/health", None),
        ("plain", "/nearest", lua_script(PLAIN_QUERY, "plain")),
    ]
    for old in OUT.glob("bench_http_wrk_*.txt"):  # only this run's raw output stays
        old.unlink()
    for s in srvs:  # warm-up: imports, indexes, per-station caches
        for _, url, script in endpoints:
            _wrk(s.base + url, HTTP_WARMUP_SECONDS, script, latency=False)
    for i in range(HTTP_ROUNDS):
        for s in srvs:
            for key, url, script in endpoints:
                res = _wrk(s.base + url, HTTP_SECONDS, script, pid=s.pid)
                s.runs.setdefault(key, []).append(res)
                (OUT / f"bench_http_wrk_{s.pid}_{key}_{i + 1}.txt").write_text(res["raw"])
                if res["non2xx"] or res["socket_errors"]:
                    log(
                        f"  warning: {s.label} {key}: non-2xx {res['non2xx']}, "
                        f"socket errors {res['socket_errors']!r}"
                    )
            log(f"  round {i + 1}: {s.label}: {summary(s)}")


def med(s: Server, key: str, what: str) -> float:
    return float(statistics.median(r[what] for r in s.runs[key]))


def share(s: Server, key: str) -> tuple[float, float]:
    """*key* beside /health on *s*: the median over rounds of its req/s over /health's in the
    same round, and of /health's CPU per request over its own (paired, so that drift
    between rounds cancels)."""
    pairs = list(zip(s.runs[key], s.runs["health"], strict=True))
    return (
        float(statistics.median(r["rps"] / h["rps"] for r, h in pairs)),
        float(statistics.median(h["cpu_per_req"] / r["cpu_per_req"] for r, h in pairs)),
    )


def summary(s: Server) -> str:
    """The last round on *s*: req/s and CPU per request of /health and the target."""
    h, t = s.runs["health"][-1], s.runs["target"][-1]
    return (
        f"/health {h['rps']:,.0f} req/s {fmt_seconds(h['cpu_per_req'])} CPU, "
        f"/nearest ({TARGET_QUERY}) {t['rps']:,.0f} req/s "
        f"{fmt_seconds(t['cpu_per_req'])} CPU: {t['rps'] / h['rps']:.0%}"
    )


# -- answers --------------------------------------------------------------------------------
def fetch(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET (4xx/5xx included)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


def expected_answers(path: Path) -> list[tuple[float, float, list[str], list[float]]]:
    """Brute force: the k nearest operational stations with a toilet for N_EXACT points."""
    reg = load_quietly(path)
    sel = np.flatnonzero(reg.mask(StationFilter.make(amenities=["toilet"])))
    brute = Brute(reg.lon[sel], reg.lat[sel], reg.id_rank[sel])
    qx, qy = common.query_points(N_EXACT, seed=707)
    out = []
    for x, y in zip(qx.tolist(), qy.tolist(), strict=True):
        x, y = round(x, 6), round(y, 6)  # what the URL carries
        pos = brute.knn(x, y, K)
        d = brute.dist(x, y)[pos]
        out.append((x, y, [reg.ids[int(sel[p])] for p in pos], d.tolist()))
    del reg, brute
    gc.collect()
    return out


def check_exact(base: str, expected: list[tuple[float, float, list[str], list[float]]]) -> str:
    """How many HTTP answers are the brute-force ones (ids in order, distances to 1 cm)."""
    same = 0
    first_bad = ""
    for x, y, ids, dist in expected:
        status, _, body = fetch(f"{base}/nearest?lon={x:.6f}&lat={y:.6f}&{TARGET_QUERY}")
        feats = orjson.loads(body)["features"] if status == 200 else []
        got_ids = [f["id"] for f in feats]
        got_d = [f["properties"]["distance_m"] for f in feats]
        ok = got_ids == ids and all(
            abs(g - w) <= 0.005 + 1e-6 for g, w in zip(got_d, dist, strict=True)
        )
        same += ok
        if not ok and not first_bad:
            first_bad = f"; first difference at ({x}, {y}): {got_ids} vs {ids}"
    return (
        f"HTTP /nearest exactness: {same}/{len(expected)} answers to `{TARGET_QUERY}` are the "
        "brute-force k nearest operational stations with a toilet (ids in distance-then-id "
        f"order, distances to 1 cm){first_bad}"
    )


#: Queries of the answer comparison: every parameter, repeats, escapes and invalid values.
VARIANTS = (
    TARGET_QUERY,
    PLAIN_QUERY,
    "",
    "k=1",
    "k=20&amenity=wifi&amenity=toilet",
    "k=500",
    "k=5&status=temporarily_closed&status=planned",
    "k=5&category=bank_outlet&kind=station",
    "k=5&stale=false",
    "k=5&stale=true&amenity=aed",
    "k=5&radius_m=300",
    "k=3&open_at=2026-07-15T13:00",
    "k=3&open_at=2026-07-15T03:00&open_for_min=60",
    "k=5&open_for_min=30",
    "k=5&crs=gcj02&out_crs=bd09",
    "k=5&out_crs=gcj02&amenity=toilet",
    "k=3&k=4",
    "k=5&amenity=%74oilet&unknown=1",
    "k=2&open_at=2026-07-15T13:00%2B09:00",
    "k=0",
    "k=5&amenity=coffee",
    "k=5&open_at=tomorrow",
    "k=5&lat=91",
    "k=5&radius_m=nan",
    "k=five",
)
_TIME = re.compile(rb'"time":"[^"]*"')
_OPEN_AT = re.compile(rb'"open_at":"[^"]*"')


def _masked(body: bytes, query: str) -> bytes:
    body = _TIME.sub(b'"time":"-"', body)
    return body if "open_at=" in query else _OPEN_AT.sub(b'"open_at":"-"', body)


def check_same(new: Server, old: Server) -> str:
    """Do both servers give the same answers (status, type, body) to N_SAME requests?"""
    qx, qy = common.query_points(N_SAME, seed=808)
    same = 0
    first_bad = ""
    for i, (x, y) in enumerate(zip(qx.tolist(), qy.tolist(), strict=True)):
        variant = VARIANTS[i % len(VARIANTS)]
        query = f"lon={x:.6f}&lat={y:.6f}" + (f"&{variant}" if variant else "")
        for _ in range(2):  # once more if the clock moved past a change between the two
            a, b = fetch(f"{new.base}/nearest?{query}"), fetch(f"{old.base}/nearest?{query}")
            ok = a[:2] == b[:2] and _masked(a[2], query) == _masked(b[2], query)
            if ok:
                break
        same += ok
        if not ok and not first_bad:
            first_bad = f"; first difference: `/nearest?{query}`"
    return (
        f"HTTP /nearest answers of {new.label.split(':')[1].strip()} and "
        f"{old.label.split(':')[1].strip()}: {same}/{N_SAME} identical (status, content type "
        f"and body bytes; {len(VARIANTS)} kinds of query, invalid ones included; `time` "
        f"masked){first_bad}"
    )


# -- driver ---------------------------------------------------------------------------------
def run(baseline: str | None = None) -> list[dict[str, Any]]:
    """Measure this checkout (and *baseline*); the rows of this module's section."""
    if shutil.which("wrk") is None:
        return [row(TARGET_NAME, None, "/health", None, "skipped: wrk not installed")]
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    start = datetime.now(UTC)
    path = common.ensure_registry()
    log("http: brute-force answers …")
    expected = expected_answers(path)
    srvs = servers(baseline)
    checks: list[str] = []
    with started(srvs, path):
        mine = srvs[0]
        checks.append(check_exact(mine.base, expected))
        log(f"  {checks[-1]}")
        if len(srvs) > 1:
            checks.append(check_same(mine, srvs[1]))
            log(f"  {checks[-1]}")
        measure(srvs)
    info = {
        "started": start,
        "load": (load0, os.getloadavg()[0]),
        "took_s": time.perf_counter() - t0,
        "servers": srvs,
        "checks": checks,
    }
    return rows_of(srvs, checks, info)


def rows_of(srvs: list[Server], checks: list[str], info: dict[str, Any]) -> list[dict[str, Any]]:
    """The result rows: this checkout's (with the target), then the baselines'."""
    out: list[dict[str, Any]] = []
    setting = (
        f"one uvicorn worker, wrk -t1 -c{HTTP_CONNECTIONS}, {HTTP_ROUNDS} × {HTTP_SECONDS} s "
        f"after {HTTP_WARMUP_SECONDS} s warm-up, medians"
    )
    for s in srvs:
        h_rps, h_cpu = med(s, "health", "rps"), med(s, "health", "cpu_per_req")
        for key, name in (("target", TARGET_NAME), ("plain", PLAIN_NAME)):
            rps, cpu = med(s, key, "rps"), med(s, key, "cpu_per_req")
            ratio, cpu_ratio = share(s, key)
            label = name if s.mine else f"{name}, {s.label}"
            note = (
                f"{rps:,.0f} vs {h_rps:,.0f} req/s, {ratio:.0%} (median of the rounds' "
                f"ratios); server CPU per request {fmt_seconds(cpu)} vs {fmt_seconds(h_cpu)} "
                f"({cpu_ratio:.0%}); "
                f"{s.label}; {setting}"
            )
            ok = ratio >= TARGET_RATIO
            if s.mine and key == "target":
                r = row(label, 1 / rps, "/health", 1 / h_rps, note, f"≥ {TARGET_RATIO:.0%}", ok)
            else:
                r = row(label, 1 / rps, "/health", 1 / h_rps, note)
            r["ratio"] = ratio  # paired per round, not the ratio of the two medians
            out.append(r)
    out[0]["measure"] = info
    for c in checks:
        out[0].setdefault("checks", []).append(c)
    out[0]["check"] = checks[0] if checks else None
    if len(checks) > 1:
        out[1]["check"] = checks[1]
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """This module's section of docs/benchmarks.md (without its heading)."""
    info = next((r["measure"] for r in rows if "measure" in r), None)
    if info is None:
        return common.table(rows)
    srvs: list[Server] = info["servers"]
    out = [
        f"`GET /nearest?lon=…&lat=…&{TARGET_QUERY}` (the target: at least "
        f"{TARGET_RATIO:.0%} of /health's requests per second) and `…&{PLAIN_QUERY}`, beside "
        "`GET /health` on the same `yizhan serve` process: one uvicorn worker on 127.0.0.1, "
        f"100,000 stations (the 17,083 Korean shelters and jittered copies), 2,000 random "
        f"points, wrk `-t1 -c{HTTP_CONNECTIONS}`, {HTTP_ROUNDS} rounds × {HTTP_SECONDS} s after "
        f"a {HTTP_WARMUP_SECONDS} s warm-up, servers and endpoints in turn; req/s, latencies and CPU "
        "are medians over the rounds, the two ratios medians of each round's ratio. Server CPU "
        "per request: the server's utime + stime during a wrk run over the requests it answered.",
        "",
        f"Measured {info['started']:%Y-%m-%d %H:%M} UTC in {info['took_s'] / 60:.1f} min; load "
        f"average (1 min) at start / end: {info['load'][0]:.1f} / {info['load'][1]:.1f} on "
        f"{os.cpu_count()} cores (wrk and the server share them with other work, so req/s are "
        "noisy; CPU per request is steadier).",
        "",
        "| server | how it serves | endpoint | req/s | p50 / p99 ms | server CPU per request "
        "| /nearest ÷ /health: req/s | CPU |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in srvs:
        for key, what in (
            ("health", "/health"),
            ("target", f"/nearest {TARGET_QUERY}"),
            ("plain", f"/nearest {PLAIN_QUERY}"),
        ):
            rps, cpu = med(s, key, "rps"), med(s, key, "cpu_per_req")
            cells = [
                s.label if key == "health" else "",
                s.how if key == "health" else "",
                what,
                f"{rps:,.0f}",
                f"{med(s, key, 'p50') * 1e3:.3g} / {med(s, key, 'p99') * 1e3:.3g}",
                fmt_seconds(cpu),
                "" if key == "health" else f"{share(s, key)[0]:.0%}",
                "" if key == "health" else f"{share(s, key)[1]:.0%}",
            ]
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    mine = srvs[0]
    ratio = share(mine, "target")[0]
    out.append(
        f"- {'PASS' if ratio >= TARGET_RATIO else 'MISS'}  /nearest {TARGET_QUERY} at "
        f"{ratio:.0%} of /health's req/s on this checkout (median of the rounds' ratios; "
        f"target ≥ {TARGET_RATIO:.0%})"
    )
    out += [f"- {c}" for c in info["checks"]]
    out.append(
        "- raw wrk output: `bench/out/bench_http_wrk_*.txt`; server logs: "
        "`bench/out/bench_http_server_*.log`"
    )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure the yizhan package of this commit (e.g. the one branched from)",
    )
    ap.add_argument("--markdown", action="store_true", help="print the docs section too")
    args = ap.parse_args()
    rows = run(args.baseline)
    print(common.table(rows))
    print()
    print("\n".join(common.target_lines(rows) + common.check_lines(rows)))
    if args.markdown:
        print()
        print(markdown(rows))


if __name__ == "__main__":
    main()
