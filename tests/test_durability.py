"""Reliability of edits: concurrent editors across threads and server processes, and a
writer killed with SIGKILL at random moments. Bounded in time (about 20 s in all)."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_doc, make_feature
from yizhan.stations.audit import AuditLog
from yizhan.stations.editing import feature_etag
from yizhan.stations.registry import check_file

ADMIN = "durability-admin-token"
REPO = Path(__file__).resolve().parents[1]


def _doc(n_own: int) -> dict[str, Any]:
    feats = [make_feature("shared", 113.60, 34.75, capacity=0)]
    feats += [make_feature(f"own{i}", 113.61 + i * 0.01, 34.75, capacity=0) for i in range(n_own)]
    return make_doc(feats)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(path: Path, port: int, state: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "YIZHAN_ADMIN_TOKEN": ADMIN,
        "YIZHAN_STATE_DIR": str(state),
        "YIZHAN_RELOAD_INTERVAL_S": "0.2",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "yizhan", "serve", "--registry", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Path, list[int]]]:
    """Two server processes over one registry file (as two workers would be)."""
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(_doc(4)))
    ports = [_free_port(), _free_port()]
    procs = [_serve(path, p, tmp_path / "state") for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_up(port, proc)
        yield path, ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def test_concurrent_editors_lose_nothing(
    two_servers: tuple[Path, list[int]], tmp_path: Path
) -> None:
    path, ports = two_servers
    auth = {"Authorization": f"Bearer {ADMIN}"}
    results: list[tuple[str, int, int, str | None, str | None]] = []
    lock = threading.Lock()

    def editor(w: int) -> None:
        rng = random.Random(w)
        with httpx.Client(timeout=30) as client:
            for n in range(12):
                port = ports[(w + n) % 2]  # alternate between the two processes
                fid = "shared" if n % 2 == 0 else f"own{w}"
                base = f"http://127.0.0.1:{port}/stations/{fid}"
                tag = client.get(base).headers["etag"]
                if rng.random() < 0.3:
                    time.sleep(rng.random() * 0.05)  # widen the race window now and then
                value = w * 1000 + n + 1  # never the initial 0: a no-op is not audited
                r = client.patch(
                    base,
                    json={"properties": {"capacity": value}},
                    headers={**auth, "If-Match": tag},
                )
                with lock:
                    results.append((fid, value, r.status_code, tag, r.headers.get("etag")))

    threads = [threading.Thread(target=editor, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 48
    assert {r[2] for r in results} <= {200, 412}

    report, doc = check_file(path)
    assert report.ok, report.summary()
    stored = {f["id"]: f for f in doc["features"]}
    audit = AuditLog(tmp_path / "state" / "reg.geojson.audit.jsonl")

    # Own stations: one editor each, so every edit succeeds and the last one is stored.
    for w in range(4):
        own = [r for r in results if r[0] == f"own{w}"]
        assert all(r[2] == 200 for r in own), own
        assert stored[f"own{w}"]["properties"]["capacity"] == own[-1][1]

    # The shared station: the accepted edits form one unbroken chain of versions in the
    # audit log (no edit was applied over a version its author had not seen), conflicts
    # got 412, and the file holds the last accepted edit.
    shared = [r for r in results if r[0] == "shared"]
    accepted = [r for r in shared if r[2] == 200]
    assert accepted and len(accepted) + sum(r[2] == 412 for r in shared) == len(shared)
    entries = [e for e in audit.entries("shared") if e["action"] == "update"]
    assert len(entries) == len(accepted)
    for prev, nxt in itertools.pairwise(entries):
        assert nxt["etag_before"] == prev["etag_after"]
    by_before = {(r[3], r[1]) for r in accepted}
    assert {(e["etag_before"], e["after"]["properties"]["capacity"]) for e in entries} == by_before
    assert feature_etag(stored["shared"]) == entries[-1]["etag_after"]
    assert (
        stored["shared"]["properties"]["capacity"] == entries[-1]["after"]["properties"]["capacity"]
    )


WRITER = r"""
import sys
from types import SimpleNamespace
from pathlib import Path
from yizhan.stations.registry import load_registry
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.tokens import Principal

path = Path(sys.argv[1])
store = RegistryStore(load_registry(path), lambda r: SimpleNamespace(registry=r))
who = Principal("writer", "admin")
n = int(store.find("shared").feature["properties"].get("capacity", 0))
while True:
    n += 1
    store.update("shared", {"properties": {"capacity": n}}, "*", who)
    if n % 3 == 0:  # the file grows too
        store.create({"type": "Feature", "id": f"c{n}",
                      "geometry": {"type": "Point", "coordinates": [113.7, 34.7 + n * 1e-4]},
                      "properties": {"name": f"new {n}", "kind": "station"}}, who)
    print(n, flush=True)
"""


def test_a_killed_writer_never_corrupts_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(_doc(200)))  # a file large enough to be caught mid-write
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    acked_total = 0
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)], env=env, stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the writer is up and has written once
        assert first, "the writer did not start"
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        kills += 1
        acked = [int(x) for x in (first + rest).split()]
        last_acked = acked[-1]
        acked_total += len(acked)

        report, doc = check_file(path)
        assert report.ok, report.summary()  # never half-written
        stored = {f["id"]: f for f in doc["features"]}
        n = stored["shared"]["properties"]["capacity"]
        # every acknowledged change is there; at most the one in flight is there too
        assert n in (last_acked, last_acked + 1), (n, last_acked)
        for m in acked:
            if m % 3 == 0:
                assert f"c{m}" in stored
        assert not [f for f in stored if f.startswith("c") and int(f[1:]) > n]
    assert kills == 12 and acked_total > 12
    # every acknowledged update is in the audit log, which reads back line by line
    audit = AuditLog(path.with_name(path.name + ".audit.jsonl"))
    logged = {e["after"]["properties"]["capacity"] for e in audit.entries("shared") if e["after"]}
    final = load_capacity(path)
    assert set(range(1, final)) <= logged | {final}


def load_capacity(path: Path) -> int:
    doc = json.loads(path.read_text())
    return int(next(f for f in doc["features"] if f["id"] == "shared")["properties"]["capacity"])
