"""Benchmark: reads at full rate with edits mixed in (issue 5, "Keeping the registry true").

For two registries -- the bundled Zhengzhou one (82 stations and 3 cooling buses) and a
synthetic 10,000-station one (:func:`common.ensure_registry`, the Korean-shelter generator
of the 100k benchmark registry) -- a copy is served by ``yizhan serve`` (one uvicorn
worker on 127.0.0.1, a fresh temporary state directory, ``YIZHAN_ADMIN_TOKEN``, no reload
watcher) and measured in two phases:

A. baseline: wrk asks ``GET /nearest?lon=…&lat=…&k=5`` at random points near the
   registry's stations for 10 s (the settings of bench_nearest: ``-t1 -c8``, ``--latency``);
B. mixed: the same wrk run while one editor (a thread with httpx) loops
   ``GET /stations/{id}`` then ``PATCH`` with ``If-Match`` (a JSON merge patch of
   ``properties.phone`` and ``capacity``), every few edits a ``POST …/verify`` (admin) and,
   kept under the public rate limit, a ``POST …/reports``, at most 5 edits per second.
   Every edit rewrites the whole registry file atomically with fsync, appends to the audit
   log and rebuilds the in-memory snapshot, so its cost grows with the registry.

Reported per registry and phase: reads req/s, p50/p99 and errors (non-2xx and socket
errors), edits done, edit (PATCH) p50/p99 and errors (any non-2xx, any 412 included, and
any failed request; a report refused with 429 is counted apart). Target: zero errors.
Afterwards, with the server stopped, the file must validate (``check_file``), hold every
acknowledged edit (each edited feature's version equals the last ``ETag`` the server sent
for it, and its phone and capacity the last values sent), and the audit log must have
exactly one line per acknowledged change.

Run ``.venv/bin/python bench/bench_edits.py`` (about a minute); :func:`run` returns the
rows, :func:`markdown` renders them as the section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_nearest
import common
from bench_nearest import HTTP_CONNECTIONS, _wrk
from common import OUT, log, row

#: Title of this module's section in docs/benchmarks.md (used by run.py).
TITLE = "Reads with edits mixed in (issue 5)"

ZHENGZHOU = common.ROOT / "yizhan" / "data" / "zhengzhou.geojson"
N_SYNTHETIC = 10_000
K = 5
READ_SECONDS = 10
WARMUP_SECONDS = 2
MAX_EDITS_PER_S = 5.0
VERIFY_EVERY = 4  # a POST …/verify after every 4th edit
REPORT_EVERY = 6  # a public POST …/reports after every 6th edit …
MAX_REPORTS = 8  # … at most this many per server: the limit is 10 per client and hour
ADMIN_TOKEN = "bench-edits-admin-token"


@dataclass
class Editor:
    """What the editor thread did; ``acked`` maps station id -> last acknowledged write."""

    base: str
    ids: list[str]
    patch_s: list[float] = field(default_factory=list)
    verify_s: list[float] = field(default_factory=list)
    patches: int = 0
    verifies: int = 0
    reports: int = 0
    reports_429: int = 0
    errors: list[str] = field(default_factory=list)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0  # acknowledged registry changes (patches + verifies): audit lines
    last_etag: str | None = None
    n: int = 0

    def cycle(self, admin: Any, public: Any, timed: bool = True) -> None:
        """One edit: GET, PATCH with If-Match; sometimes a verify and a report."""
        sid = self.ids[self.n % len(self.ids)]
        self.n += 1
        i = self.n
        r = admin.get(f"/stations/{sid}")
        if r.status_code != 200:
            self.errors.append(f"GET /stations/{sid}: {r.status_code} {r.text[:200]}")
            return
        phone, capacity = f"0371-6{i:07d}", 10 + i
        t0 = time.perf_counter()
        r = admin.patch(
            f"/stations/{sid}",
            json={"properties": {"phone": phone, "capacity": capacity}},
            headers={"If-Match": r.headers["etag"], "Content-Type": "application/merge-patch+json"},
        )
        dt = time.perf_counter() - t0
        if r.status_code != 200:
            self.errors.append(f"PATCH /stations/{sid}: {r.status_code} {r.text[:200]}")
            return
        if timed:
            self.patch_s.append(dt)
            self.patches += 1
        self._ack(sid, r.headers["etag"], phone=phone, capacity=capacity)
        if timed and i % VERIFY_EVERY == 0:
            t0 = time.perf_counter()
            r = admin.post(f"/stations/{sid}/verify", json={"note": "bench_edits"})
            dt = time.perf_counter() - t0
            if r.status_code != 200:
                self.errors.append(f"POST /stations/{sid}/verify: {r.status_code} {r.text[:200]}")
            else:
                self.verify_s.append(dt)
                self.verifies += 1
                self._ack(sid, r.headers["etag"])
        if timed and i % REPORT_EVERY == 0 and self.reports + self.reports_429 < MAX_REPORTS:
            # a different station each time: at most 3 reports per client, station and day
            rid = self.ids[-1 - (self.reports + self.reports_429) % len(self.ids)]
            r = public.post(
                f"/stations/{rid}/reports", json={"code": "all_good", "comment": "bench_edits"}
            )
            if r.status_code == 201:
                self.reports += 1
            elif r.status_code == 429:
                self.reports_429 += 1
            else:
                self.errors.append(f"POST /stations/{rid}/reports: {r.status_code} {r.text[:200]}")

    def _ack(self, sid: str, etag: str, **values: Any) -> None:
        self.acked.setdefault(sid, {}).update(values, etag=etag)
        self.writes += 1
        self.last_etag = etag

    def loop(self, stop: threading.Event) -> None:
        """Edit until *stop*, at most :data:`MAX_EDITS_PER_S` cycles per second."""
        import httpx

        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with (
            httpx.Client(base_url=self.base, headers=auth, timeout=30) as admin,
            httpx.Client(base_url=self.base, timeout=30) as public,
        ):
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    self.cycle(admin, public)
                except Exception as exc:  # a dropped connection, a timeout: an error
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                stop.wait(max(0.0, 1.0 / MAX_EDITS_PER_S - (time.perf_counter() - t0)))

    def warm_up(self) -> None:
        """One untimed edit (its write is still acknowledged and checked)."""
        import httpx

        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=self.base, headers=auth, timeout=30) as admin:
            self.cycle(admin, admin, timed=False)


# -- server --------------------------------------------------------------------------------
def serving(
    path: Path, state: Path, log_path: Path
) -> contextlib.AbstractContextManager[tuple[str, float, int]]:
    """``yizhan serve`` of *path* (bench_nearest's), with the admin token, state in *state*
    and the file watcher off."""
    env = dict(os.environ)
    env.update(
        YIZHAN_ADMIN_TOKEN=ADMIN_TOKEN,
        YIZHAN_STATE_DIR=str(state),
        YIZHAN_RELOAD_INTERVAL_S="0",
        OMP_NUM_THREADS="1",
    )
    state.mkdir(parents=True, exist_ok=True)
    return bench_nearest.serving(path, 120.0, env=env, log_path=log_path)


def _lua_script(doc: dict[str, Any], out: Path, n: int = 2000) -> Path:
    """A wrk script asking /nearest at random points within ±2 km of the stations (seeded)."""
    xy = np.array(
        [
            f["geometry"]["coordinates"][:2]
            for f in doc["features"]
            if f["properties"].get("kind") == "station"
        ]
    )
    rng = np.random.default_rng(505)
    pick = rng.integers(0, len(xy), n)
    qx, qy = common.jitter_uniform(rng, xy[pick, 0], xy[pick, 1], 2000.0)
    pts = ",".join(f"{{{x:.6f},{y:.6f}}}" for x, y in zip(qx.tolist(), qy.tolist(), strict=True))
    out.write_text(
        "-- generated by bench/bench_edits.py: random query points near the stations\n"
        f"local pts = {{{pts}}}\n"
        "local n = #pts\n"
        "math.randomseed(42)\n"
        "request = function()\n"
        "  local p = pts[math.random(n)]\n"
        f"  return wrk.format('GET', string.format('/nearest?lon=%.6f&lat=%.6f&k={K}', p[1], p[2]))\n"
        "end\n"
    )
    return out


def _read_errors(res: dict[str, Any]) -> int:
    """Non-2xx responses plus socket errors (connect, read, write, timeout) of a wrk run."""
    return res["non2xx"] + sum(int(x) for x in re.findall(r"\d+", res["socket_errors"]))


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else math.nan


# -- one registry --------------------------------------------------------------------------
def measure(label: str, source: Path) -> dict[str, Any]:
    """Both phases on a copy of *source*, then the checks of the file and the audit log."""
    import orjson

    from yizhan.stations.editing import feature_etag
    from yizhan.stations.registry import check_file

    doc = orjson.loads(source.read_bytes())
    stations = [f for f in doc["features"] if f["properties"].get("kind") == "station"]
    rng = np.random.default_rng(606)
    ids = [stations[i]["id"] for i in rng.permutation(len(stations))[:200]]
    tag = re.sub(r"\W+", "", label)
    OUT.mkdir(parents=True, exist_ok=True)
    script = _lua_script(doc, OUT / f"bench_edits_wrk_{tag}.lua")
    del doc, stations
    with tempfile.TemporaryDirectory(prefix="bench-edits-", dir=OUT) as tmp:
        path = Path(tmp) / source.name
        shutil.copyfile(source, path)
        state = Path(tmp) / "state"
        ed = Editor("", ids)
        with serving(path, state, OUT / f"bench_edits_server_{tag}.log") as (base, up_s, _pid):
            log(f"edits: {label}: server up in {up_s:.1f} s at {base}")
            ed.base = base
            ed.warm_up()
            _wrk(base + "/nearest", WARMUP_SECONDS, script, latency=False)
            log(f"edits: {label}: phase A (reads only) …")
            a = _wrk(base + "/nearest", READ_SECONDS, script)
            log(f"edits: {label}: phase B (reads + edits) …")
            stop = threading.Event()
            th = threading.Thread(target=ed.loop, args=(stop,), daemon=True)
            th.start()
            try:
                b = _wrk(base + "/nearest", READ_SECONDS, script)
            finally:
                stop.set()
                th.join(60)
            for ph, res in (("A", a), ("B", b)):
                (OUT / f"bench_edits_wrk_{tag}_{ph}.txt").write_text(res["raw"])
        # The server is stopped: check what it left on disk.
        report, stored = check_file(path)
        by_id = {f["id"]: f for f in stored["features"]}
        missing = []
        for sid, want in ed.acked.items():
            f = by_id.get(sid)
            if f is None or feature_etag(f) != want["etag"]:
                missing.append(sid)
                continue
            props = f["properties"]
            if "phone" in want and (props.get("phone"), props.get("capacity")) != (
                want["phone"],
                want["capacity"],
            ):
                missing.append(sid)
        audit_path = state / f"{path.name}.audit.jsonl"
        audit = [orjson.loads(x) for x in audit_path.read_bytes().splitlines() if x.strip()]
        last_ok = bool(audit) and audit[-1].get("etag_after") == ed.last_etag
        actions = [e.get("action") for e in audit]
        audit_ok = (
            len(audit) == ed.writes
            and actions.count("update") == ed.patches + 1  # + the warm-up edit
            and actions.count("verify") == ed.verifies
            and last_ok
        )
    file_ok = report.ok and not missing and audit_ok
    check = (
        f"{'PASS' if file_ok else 'FAIL'}  file valid, every acknowledged edit present "
        f"({label}): check_file {'ok' if report.ok else f'{len(report.errors)} errors'}; "
        f"{len(ed.acked) - len(missing)}/{len(ed.acked)} edited features at their last "
        f"acknowledged version; audit log {len(audit)} lines for {ed.writes} acknowledged "
        f"changes{'' if last_ok else ', last line is not the last edit'}"
    )
    return {
        "label": label,
        "startup_s": up_s,
        "a": a,
        "b": b,
        "editor": ed,
        "file_ok": file_ok,
        "check": check,
    }


def _rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    a, b, ed = m["a"], m["b"], m["editor"]
    label = m["label"]
    err_a, err_b = _read_errors(a), _read_errors(b)
    errors = err_a + err_b + len(ed.errors)
    ratio = b["rps"] / a["rps"]
    setting = (
        f"one uvicorn worker, wrk -t1 -c{HTTP_CONNECTIONS} {READ_SECONDS} s per phase; "
        f"server start {m['startup_s']:.1f} s"
    )
    edits = (
        f"{ed.patches} PATCH (p50 {common.fmt_seconds(_pct(ed.patch_s, 50))}, p99 "
        f"{common.fmt_seconds(_pct(ed.patch_s, 99))}), {ed.verifies} verify (p50 "
        f"{common.fmt_seconds(_pct(ed.verify_s, 50))}), {ed.reports} reports"
        f"{f' (+{ed.reports_429} refused with 429)' if ed.reports_429 else ''}"
    )
    first = row(
        f"reads with edits, {label}: /nearest throughput (as 1 / req/s)",
        1.0 / b["rps"],
        "the same reads without edits",
        1.0 / a["rps"],
        f"{b['rps']:,.0f} req/s with edits vs {a['rps']:,.0f} alone = {ratio:.0%}; read p50/p99 "
        f"{common.fmt_seconds(b['p50'])} / {common.fmt_seconds(b['p99'])} with edits, "
        f"{common.fmt_seconds(a['p50'])} / {common.fmt_seconds(a['p99'])} alone; {edits}; {setting}",
    )
    first["measure"] = m
    rows = [
        first,
        row(
            f"reads with edits, {label}: edit (PATCH) p50 latency",
            _pct(ed.patch_s, 50),
            "",
            None,
            f"p99 {common.fmt_seconds(_pct(ed.patch_s, 99))} over {ed.patches} edits "
            f"(GET, then PATCH with If-Match; whole file rewritten with fsync, snapshot rebuilt)",
        ),
    ]
    err_note = f"{errors} errors; reads {err_a} alone, {err_b} with edits; edits {len(ed.errors)}"
    if ed.errors:
        err_note += f"; first: {ed.errors[0]}"
    err_row = row(
        f"reads with edits, {label}: errors", None, "", None, err_note, "0 errors", errors == 0
    )
    err_row["check"] = m["check"]
    rows.append(err_row)
    return rows


def run() -> list[dict[str, Any]]:
    """Both registries; one table row per figure (``measure`` keeps the raw results)."""
    if shutil.which("wrk") is None:
        return [row("reads with edits", None, "", None, "skipped: wrk not installed")]
    import httpx  # noqa: F401  (fail early, as a skip, when it is missing)

    load0 = os.getloadavg()[0]
    started = datetime.now(UTC)
    synthetic = common.ensure_registry(N_SYNTHETIC)
    rows = []
    for label, src in (("82 stations", ZHENGZHOU), (f"{N_SYNTHETIC:,} stations", synthetic)):
        rows += _rows(measure(label, src))
    load1 = os.getloadavg()[0]
    rows[0]["run_info"] = {"load": (load0, load1), "started": started}
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """This module's section of docs/benchmarks.md (without its heading)."""
    ms = [r["measure"] for r in rows if "measure" in r]
    if not ms:
        return common.table(rows)
    info = next((r["run_info"] for r in rows if "run_info" in r), None)
    out = [
        f"`GET /nearest?lon=…&lat=…&k={K}` under wrk (`-t1 -c{HTTP_CONNECTIONS}`, "
        f"{READ_SECONDS} s, random points near the stations) on one `yizhan serve` process, "
        "first alone (A), then while one editor (B) loops `GET /stations/{id}` → `PATCH` with "
        f"`If-Match` (phone and capacity), with a `POST …/verify` every {VERIFY_EVERY} edits "
        f"and a public `POST …/reports` every {REPORT_EVERY} (at most {MAX_REPORTS}, under the "
        f"rate limit), at most {MAX_EDITS_PER_S:g} edits/s. Every edit rewrites the whole "
        "registry file atomically with fsync, appends to the audit log and rebuilds the "
        "in-memory snapshot. Errors: non-2xx and socket errors of the reads; any non-2xx or "
        "failed request of the editor (a 429 on a report would be counted apart). Target: "
        "zero errors.",
        "",
    ]
    if info:
        out += [
            f"Measured {info['started']:%Y-%m-%d %H:%M} UTC; load average (1 min) at start / end "
            f"of this module: {info['load'][0]:.1f} / {info['load'][1]:.1f} on "
            f"{os.cpu_count()} cores — the machine is shared, so numbers taken under load are "
            "pessimistic and noisy.",
            "",
        ]
    out += [
        "| registry size | phase | reads req/s | read p50 / p99 ms | read errors | edits "
        "| edit p50 / p99 ms | edit errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def ms_(s: float) -> str:
        return "–" if not math.isfinite(s) else f"{s * 1e3:.3g}"

    for m in ms:
        ed = m["editor"]
        for ph, res in (("A: reads only", m["a"]), ("B: reads + edits", m["b"])):
            mixed = ph.startswith("B")
            cells = [
                m["label"],
                ph,
                f"{res['rps']:,.0f}",
                f"{ms_(res['p50'])} / {ms_(res['p99'])}",
                str(_read_errors(res)),
                (
                    f"{ed.patches} (+{ed.verifies} verify, {ed.reports} reports"
                    f"{f', {ed.reports_429} × 429' if ed.reports_429 else ''})"
                    if mixed
                    else "–"
                ),
                (f"{ms_(_pct(ed.patch_s, 50))} / {ms_(_pct(ed.patch_s, 99))}" if mixed else "–"),
                str(len(ed.errors)) if mixed else "–",
            ]
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append(
        "Read throughput with edits / without: "
        + "; ".join(f"{m['label']}: {m['b']['rps'] / m['a']['rps']:.0%}" for m in ms)
        + "."
    )
    out.append("")
    errors = sum(_read_errors(m["a"]) + _read_errors(m["b"]) + len(m["editor"].errors) for m in ms)
    out.append(f"- {'PASS' if errors == 0 else 'FAIL'}  zero errors ({errors} seen)")
    for m in ms:
        out.append(f"- {m['check']}")
        for e in m["editor"].errors[:3]:
            out.append(f"- editor error ({m['label']}): `{e}`")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.parse_args()
    rows = run()
    print(common.table(rows))
    print()
    print("\n".join(common.target_lines(rows) + common.check_lines(rows)))
    print()
    print(f"### {TITLE}\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
