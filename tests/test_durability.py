"""Reliability of edits: concurrent editors across threads and server processes, a writer
killed with SIGKILL at random moments and at each step of a commit; one audit line per
change throughout. Bounded in time (about 30 s in all)."""

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
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.conftest import make_doc, make_feature, run_together
from yizhan.errors import StorageUnavailableError
from yizhan.stations.audit import AuditLog
from yizhan.stations.editing import feature_etag
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.registry import check_file, load_registry
from yizhan.stations.tokens import Principal

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
    # one line per change: neither process logged the other's edits again (as external)
    assert [e for e in audit.entries() if e["action"] != "update"] == []
    for w in range(4):
        assert len(audit.entries(f"own{w}")) == 6
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
    # every change is in the audit log exactly once (a change logged by a writer killed
    # before its rename is completed by the next start), and nothing else is
    audit = AuditLog(path.with_name(path.name + ".audit.jsonl"))
    RegistryStore(load_registry(path), lambda r: SimpleNamespace(registry=r))  # a restart
    logged = [e["after"]["properties"]["capacity"] for e in audit.entries("shared")]
    final = load_capacity(path)
    assert logged == list(range(1, final + 1))
    assert {e["action"] for e in audit.entries()} <= {"update", "create"}
    stored = {f["id"] for f in json.loads(path.read_text())["features"]}
    assert {e["id"] for e in audit.entries() if e["action"] == "create"} == {
        f for f in stored if f.startswith("c")
    }


def load_capacity(path: Path) -> int:
    doc = json.loads(path.read_text())
    return int(next(f for f in doc["features"] if f["id"] == "shared")["properties"]["capacity"])


# -- one audit line per change ---------------------------------------------------------------

EDITOR = r"""
import logging, sys, time
from pathlib import Path
from types import SimpleNamespace
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.registry import load_registry
from yizhan.stations.tokens import Principal

path, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
loads = []

class Loads(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("reloaded"):
            loads.append(record)

logging.getLogger("yizhan").addHandler(Loads())
logging.getLogger("yizhan").setLevel(logging.INFO)
store = RegistryStore(load_registry(path), lambda r: SimpleNamespace(registry=r))
who = Principal(name, "admin")
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
for i in range(15):
    fid = "shared" if i % 2 else f"own{name}"
    store.update(fid, {"properties": {"capacity": ord(name) * 100 + i + 1}}, "*", who)
store.create({"type": "Feature", "id": f"new{name}",
              "geometry": {"type": "Point", "coordinates": [113.7, 34.7]},
              "properties": {"name": f"new {name}", "kind": "station"}}, who)
print(16, len(loads), flush=True)
"""


def test_two_processes_log_every_change_once(tmp_path: Path) -> None:
    """Two processes edit one file at once (their own stations and a shared one): each
    change has one audit line, neither logs the other's as ``external``, the versions of
    each station form one chain, and each process took the other's changes from the log
    without loading the file."""
    path = tmp_path / "reg.geojson"
    feats = [make_feature(f, 113.6, 34.75, capacity=0) for f in ("shared", "ownp", "ownq")]
    path.write_text(json.dumps(make_doc(feats)))
    first = {f["id"]: feature_etag(f) for f in load_registry(path).features}
    outputs = run_together(EDITOR, str(path), str(tmp_path / "go"))
    assert [o.split() for o in outputs] == [["16", "0"], ["16", "0"]]  # 16 changes, 0 loads

    entries = AuditLog(path.with_name(path.name + ".audit.jsonl")).entries()
    assert len(entries) == 32
    assert [e for e in entries if e["action"] not in ("update", "create")] == []
    stored = {f["id"]: f for f in load_registry(path).features}
    for fid, n in (("shared", 14), ("ownp", 8), ("ownq", 8)):
        mine = [e for e in entries if e["id"] == fid]
        assert len(mine) == n
        assert mine[0]["etag_before"] == first[fid]
        for prev, nxt in itertools.pairwise(mine):
            assert nxt["etag_before"] == prev["etag_after"]
        assert mine[-1]["etag_after"] == feature_etag(stored[fid])
    assert {"newp", "newq"} <= set(stored)


CRASHER = r"""
import os, signal, sys
from pathlib import Path
from types import SimpleNamespace
from yizhan.stations import filestore
from yizhan.stations.registry import load_registry
from yizhan.stations.tokens import Principal

path, point, action = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
store = filestore.RegistryStore(load_registry(path), lambda r: SimpleNamespace(registry=r))

def crash(at):
    if at == point:
        os.kill(os.getpid(), signal.SIGKILL)

filestore.fault_hook = crash  # test-only
who = Principal("crasher", "admin")
if action == "update":  # the station's first-ever edit
    store.update("own0", {"properties": {"capacity": 7}}, "*", who)
else:
    store.create({"type": "Feature", "id": "own0",
                  "geometry": {"type": "Point", "coordinates": [113.7, 34.7]},
                  "properties": {"name": "new", "kind": "station", "capacity": 7}}, who)
print("not killed", flush=True)
"""


@pytest.mark.parametrize("action", ["update", "create"])
@pytest.mark.parametrize("recovery", ["restart", "peer"])
@pytest.mark.parametrize("point", ["audit-appended", "registry-renamed"])
def test_a_writer_killed_mid_commit_leaves_exactly_one_line(
    tmp_path: Path, point: str, recovery: str, action: str
) -> None:
    """SIGKILL between the audit line and the rename, or between the rename and serving:
    the change ends up applied and logged once, whether the writer is restarted or a
    second process carries on; the next change chains onto it."""
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(_doc(1 if action == "update" else 0)))
    audit = AuditLog(path.with_name(path.name + ".audit.jsonl"))

    def build(r: Any) -> Any:
        return SimpleNamespace(registry=r)

    peer = RegistryStore(load_registry(path), build) if recovery == "peer" else None
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(path), point, action],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    (line,) = audit.entries()  # the commit point: logged before the rename
    assert line["action"] == action and line["after"]["properties"]["capacity"] == 7
    on_disk = {f["id"]: f for f in json.loads(path.read_text())["features"]}
    renamed = point == "registry-renamed"
    assert (on_disk.get("own0", {}).get("properties", {}).get("capacity") == 7) == renamed

    if peer is not None:
        assert peer.changed_on_disk() is True
        assert peer.reload_if_changed() is True  # followed, or completed
        store = peer
    else:
        store = RegistryStore(load_registry(path), build)
    assert store.find("own0").feature["properties"]["capacity"] == 7
    on_disk = {f["id"]: f for f in json.loads(path.read_text())["features"]}
    assert on_disk["own0"]["properties"]["capacity"] == 7
    (again,) = audit.entries()
    assert again == line and again["etag_after"] == feature_etag(on_disk["own0"])

    store.update("own0", {"properties": {"capacity": 8}}, "*", Principal("next", "admin"))
    RegistryStore(load_registry(path), build)  # a restart finds nothing to log
    entries = audit.entries()
    assert [e["action"] for e in entries] == [action, "update"]
    assert entries[1]["etag_before"] == entries[0]["etag_after"]
    assert not list(tmp_path.glob(".reg.geojson.commit-*"))  # no temporary file left


def test_a_failed_rename_leaves_no_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails after its audit line (the rename refused) takes the line back
    and answers 503: no line for a change that was not made."""
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(_doc(1)))
    store = RegistryStore(load_registry(path), lambda r: SimpleNamespace(registry=r))
    who = Principal("w", "admin")
    store.update("own0", {"properties": {"capacity": 1}}, "*", who)

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageUnavailableError, match="not saved"):
        store.update("own0", {"properties": {"capacity": 2}}, "*", who)
    monkeypatch.undo()
    assert [e["after"]["properties"]["capacity"] for e in store.audit.entries()] == [1]
    assert store.find("own0").feature["properties"]["capacity"] == 1
    store.update("own0", {"properties": {"capacity": 3}}, "*", who)
    restarted = RegistryStore(load_registry(path), lambda r: SimpleNamespace(registry=r))
    assert [e["after"]["properties"]["capacity"] for e in restarted.audit.entries()] == [1, 3]
