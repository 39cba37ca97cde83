"""Scale-out scenarios on real processes and a real PostgreSQL (``pytest -m slow``).

- 8 editors spread over 2 replicas x 2 workers (``yizhan serve --workers 2``) on one
  database for 30 s: every acknowledged edit is in the database and in the audit table
  exactly once, conflicts are answered 412 (and nothing else goes wrong), and every replica
  serves the final state;
- a replica SIGKILLed in the middle of edits loses no acknowledged edit;
- PostgreSQL restarted during a read load fails zero reads (writes meanwhile: 503).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.pgcluster import Cluster
from tests.storage_env import eventually, fresh_database
from tests.storage_servers import Replica
from yizhan.settings import DEFAULT_REGISTRY, Settings
from yizhan.storage.pg_transfer import import_registry

pytestmark = pytest.mark.slow

TOKEN = "admin-token-for-the-scenario-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"YIZHAN_ADMIN_TOKEN": TOKEN}


@pytest.fixture
def url(pg_cluster: Cluster) -> str:
    u = fresh_database(pg_cluster)
    import_registry(u, DEFAULT_REGISTRY, Settings(database_url=u))
    return u


def stored(url: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Each feature's stored ETag, and every audit row (version, id, etag_before/after)."""
    with psycopg.connect(url) as conn:
        etags = {
            str(i): str(e) for i, e in conn.execute("SELECT id, etag FROM features").fetchall()
        }
        rows = conn.execute(
            "SELECT registry_version, feature_id, entry->>'etag_before', entry->>'etag_after' "
            "FROM audit ORDER BY registry_version"
        ).fetchall()
    return etags, [{"version": v, "id": i, "before": b, "after": a} for v, i, b, a in rows]


class Editors:
    """Editors in threads, each on its replica: GET the ETag, PATCH with If-Match; every
    answer is recorded."""

    def __init__(self, replicas: list[str], ids: list[str], n: int) -> None:
        self.replicas, self.ids, self.n = replicas, ids, n
        self.acked: list[tuple[str, str]] = []  # (id, new ETag) of every 200
        self.status: Counter[Any] = Counter()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]

    def _run(self, i: int) -> None:
        base = self.replicas[i % len(self.replicas)]
        rng = random.Random(i)
        with httpx.Client(base_url=base, timeout=10.0) as c:
            k = 0
            while not self.stop.is_set():
                fid = rng.choice(self.ids)
                try:
                    tag = c.get(f"/stations/{fid}").headers["etag"]
                    r = c.patch(
                        f"/stations/{fid}",
                        json={"properties": {"phone": f"e{i}-{k}"}},
                        headers={**AUTH, "If-Match": tag},
                    )
                except httpx.HTTPError as exc:  # the replica is gone: not acknowledged
                    with self._lock:
                        self.status[type(exc).__name__] += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.status[r.status_code] += 1
                    if r.status_code == 200:
                        self.acked.append((fid, r.headers["etag"]))
                k += 1

    def __enter__(self) -> Editors:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def check_every_acknowledged_edit_once(url: str, acked: list[tuple[str, str]]) -> dict[str, str]:
    etags, rows = stored(url)
    after = Counter((r["id"], r["after"]) for r in rows)
    assert all(after[a] == 1 for a in acked), "an acknowledged edit is missing or logged twice"
    # Each feature's rows chain from its imported version to the stored one, unbroken.
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)
    for fid, chain in by_id.items():
        assert all(a["after"] == b["before"] for a, b in itertools.pairwise(chain))
        assert chain[-1]["after"] == etags[fid]
    return etags


def test_eight_editors_two_replicas_two_workers(url: str, tmp_path: Path) -> None:
    with (
        Replica("--database-url", url, workers=2, env=ENV, log=tmp_path / "a.log") as a,
        Replica("--database-url", url, workers=2, env=ENV, log=tmp_path / "b.log") as b,
    ):
        ids = [f["id"] for f in httpx.get(f"{a.url}/stations?limit=6").json()["features"]]
        with Editors([a.url, b.url], ids, 8) as editors:
            time.sleep(30)
        assert editors.acked, editors.status
        assert set(editors.status) <= {200, 412}, editors.status
        assert editors.status[412] > 0  # they did collide
        etags = check_every_acknowledged_edit_once(url, editors.acked)
        for replica in (a, b):
            for fid in ids:  # several requests: both workers of the replica answer
                for _ in range(4):
                    eventually(
                        lambda r=replica, f=fid: (
                            httpx.get(f"{r.url}/stations/{f}").headers["etag"] == etags[f]
                        ),
                        1.0,
                        0.01,
                    )
    print(f"\n8 editors, 30 s: {dict(editors.status)}")


def test_a_replica_killed_mid_edit_loses_no_acknowledged_edit(url: str, tmp_path: Path) -> None:
    with Replica("--database-url", url, workers=2, env=ENV, log=tmp_path / "b.log") as b:
        a = Replica("--database-url", url, workers=2, env=ENV, log=tmp_path / "a.log").wait_ready()
        ids = [f["id"] for f in httpx.get(f"{a.url}/stations?limit=4").json()["features"]]
        try:
            with Editors([a.url, a.url, b.url], ids, 6) as editors:
                time.sleep(4)
                a.kill()  # SIGKILL, the server and both workers, edits in flight
                time.sleep(2)
        finally:
            a.stop()
        assert editors.status[200] > 0 and editors.status["ConnectError"] > 0, editors.status
        assert set(editors.status) <= {200, 412, "ConnectError", "RemoteProtocolError", "ReadError"}
        etags = check_every_acknowledged_edit_once(url, editors.acked)
        for fid in ids:
            eventually(
                lambda f=fid: httpx.get(f"{b.url}/stations/{f}").headers["etag"] == etags[f], 2.0
            )
        # A restarted replica serves the same.
        with Replica("--database-url", url, env=ENV, log=tmp_path / "a2.log") as again:
            for fid in ids:
                assert httpx.get(f"{again.url}/stations/{fid}").headers["etag"] == etags[fid]


def test_postgres_restart_during_a_read_load_fails_no_read(
    pg_cluster: Cluster, url: str, tmp_path: Path
) -> None:
    with Replica("--database-url", url, workers=2, env=ENV, log=tmp_path / "a.log") as a:
        fid = httpx.get(f"{a.url}/stations?limit=1").json()["features"][0]["id"]
        reads: Counter[Any] = Counter()
        writes: Counter[Any] = Counter()
        stop = threading.Event()

        def read() -> None:
            with httpx.Client(base_url=a.url, timeout=10.0) as c:
                while not stop.is_set():
                    for path in (
                        "/nearest?lon=113.65&lat=34.76&k=5",
                        f"/stations/{fid}",
                        "/stations?limit=20",
                    ):
                        reads[c.get(path).status_code] += 1

        def write() -> None:
            with httpx.Client(base_url=a.url, timeout=10.0) as c:
                while not stop.is_set():
                    tag = c.get(f"/stations/{fid}").headers["etag"]
                    r = c.patch(
                        f"/stations/{fid}",
                        json={"properties": {"phone": str(time.time())}},
                        headers={**AUTH, "If-Match": tag},
                    )
                    writes[r.status_code] += 1
                    time.sleep(0.05)

        threads = [threading.Thread(target=read) for _ in range(4)] + [
            threading.Thread(target=write)
        ]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            pg_cluster.restart(down_s=3)
            time.sleep(4)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert set(reads) == {200} and reads[200] > 100, reads
        assert set(writes) <= {200, 503} and writes[503] > 0 and writes[200] > 0, writes
        # Writes came back by themselves, and the replica serves the last of them.
        etags, _ = stored(url)
        eventually(lambda: httpx.get(f"{a.url}/stations/{fid}").headers["etag"] == etags[fid], 2.0)
    print(f"\nreads {dict(reads)}, writes {dict(writes)}")
