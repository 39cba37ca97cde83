"""The storage contract for station proposals and station photos: every backend (files,
PostgreSQL) keeps them for every process.

Each test runs once per backend; two backends opened on the same storage are two processes
(two API replicas): each sees the other's proposals and photos, a proposal is decided once
whichever decides it, the per-client rate limit holds across both, and a photo added or
removed through one is served (or gone) through the other. Then two apps on one database.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_doc, make_feature
from tests.helpers import SetClock
from tests.pgcluster import Cluster
from tests.storage_env import StorageEnv, eventually, fresh_database, make_env
from tests.storage_servers import Replica
from yizhan.api import create_app
from yizhan.errors import ConflictError, InvalidInputError, NotFoundError, RateLimitedError
from yizhan.settings import Settings
from yizhan.stations.photos import PhotoStore
from yizhan.stations.proposals import ProposalStore
from yizhan.stations.tokens import Principal
from yizhan.storage import Backend, opened_proposals
from yizhan.storage.pg_records import PROPOSALS_LOCK, PgProposalLog
from yizhan.storage.pg_transfer import import_registry

ADMIN = Principal("admin", "admin")
MANAGER = Principal("Li", "manager", stations=frozenset({"a1"}))
T0 = datetime(2026, 7, 15, 8, 0, tzinfo=UTC)
HERE = [113.601, 34.751]


def registry_doc() -> dict[str, Any]:
    return make_doc(
        [
            make_feature("a1", 113.60, 34.75, district="中原区", opening_hours="24/7"),
            make_feature("b1", 113.70, 34.78, district="金水区", opening_hours="24/7"),
        ]
    )


def jpeg(size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(params=["files", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageEnv]:
    e = make_env(
        request.param,
        tmp_path,
        registry_doc(),
        lambda: request.getfixturevalue("pg_cluster"),
        state_dir=tmp_path / "state",
        report_rate_per_hour=3,
    )
    try:
        yield e
    finally:
        e.close()


@pytest.fixture
def two(env: StorageEnv) -> tuple[Backend, Backend]:
    """Two processes on one storage."""
    return env.open(start=True), env.open(start=True)


# -- proposals -----------------------------------------------------------------------------


def test_each_process_sees_the_others_proposals_and_decisions(
    two: tuple[Backend, Backend],
) -> None:
    a, b = two
    p = a.proposals.add(
        "建设路休息室", HERE, client="10.0.0.1", amenities=["toilet"], district="中原区"
    )
    q = b.proposals.add("桥下驿站", HERE, client="10.0.0.2")
    # Read at once by the other (no waiting for a follower), newest first in both.
    assert [x.id for x in a.proposals.list()] == [q.id, p.id]
    assert [x.id for x in b.proposals.list()] == [q.id, p.id]
    assert b.proposals.get(p.id) == p and b.proposals.get(p.id).amenities == ("toilet",)
    # One salt for every process: one client, one hash.
    assert a.proposals.client_hash("10.0.0.9") == b.proposals.client_hash("10.0.0.9")
    assert b.proposals.get(p.id).client == a.proposals.client_hash("10.0.0.1")
    done = b.proposals.decide(p.id, "rejected", ADMIN, reason="已有驿站")
    assert done.status == "rejected"
    with pytest.raises(ConflictError, match="already rejected"):
        a.proposals.decide(p.id, "accepted", ADMIN)
    assert a.proposals.get(p.id).decision == done.decision
    assert [x.id for x in a.proposals.list("pending")] == [q.id]
    assert [x.id for x in a.proposals.list("rejected", {"中原区"})] == [p.id]
    with pytest.raises(NotFoundError):
        a.proposals.get("prop_0000000000000000")


def test_an_accepted_proposal_is_one_station_whoever_accepts(
    two: tuple[Backend, Backend],
) -> None:
    a, b = two
    p = a.proposals.add("新驿站", HERE, client="c")
    made: list[str] = []

    def create(proposal: Any) -> str:
        f = make_feature(f"yz-{proposal.id}", *proposal.location, district="中原区")
        made.append(a.stations.create(f, ADMIN).feature["id"])
        return made[-1]

    got = b.proposals.decide(p.id, "accepted", ADMIN, create=create)
    assert got.status == "accepted" and got.decision is not None
    assert got.decision.station_id == made[0]
    with pytest.raises(ConflictError, match="already accepted"):
        a.proposals.decide(p.id, "accepted", ADMIN, create=create)
    with pytest.raises(ConflictError):
        b.proposals.decide(p.id, "rejected", ADMIN, reason="x")
    assert len(made) == 1  # the second acceptance created nothing
    assert a.proposals.get(p.id).decision == got.decision


def test_a_failed_acceptance_leaves_the_proposal_pending_everywhere(
    two: tuple[Backend, Backend],
) -> None:
    a, b = two
    p = a.proposals.add("新驿站", HERE, client="c")

    def invalid(proposal: Any) -> str:
        raise InvalidInputError("properties.phone", "Expected a phone number")

    with pytest.raises(InvalidInputError):
        b.proposals.decide(p.id, "accepted", ADMIN, create=invalid)
    assert a.proposals.get(p.id).status == b.proposals.get(p.id).status == "pending"
    assert a.proposals.decide(p.id, "rejected", ADMIN, reason="x").status == "rejected"
    assert b.proposals.get(p.id).status == "rejected"


def test_racing_deciders_decide_once(two: tuple[Backend, Backend]) -> None:
    a, b = two
    ids = [a.proposals.add(f"p{i}", HERE, client=f"c{i}").id for i in range(3)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def decide(store: ProposalStore, pid: str, status: str) -> None:
        try:
            store.decide(pid, status, ADMIN, reason="r")
            result = status
        except ConflictError:
            result = "409"
        with lock:
            outcomes.append(result)

    threads = [
        threading.Thread(target=decide, args=(s.proposals, pid, st))
        for pid in ids
        for s, st in ((a, "accepted"), (b, "rejected"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("409") == 3 and len(outcomes) == 6
    for pid in ids:
        assert a.proposals.get(pid).decision == b.proposals.get(pid).decision
        assert a.proposals.get(pid).status in ("accepted", "rejected")


def twin(env: StorageEnv, clock: SetClock) -> ProposalStore:
    """A proposal store on *env*'s storage with a set clock, as another process opens it."""
    if env.kind == "files":
        return ProposalStore(
            env.settings.state_file(env.path, "proposals", ".jsonl"), rate_per_hour=3, clock=clock
        )
    log = env.open().proposals.source
    assert isinstance(log, PgProposalLog)
    return ProposalStore(rate_per_hour=3, clock=clock, source=PgProposalLog(log.db))


def test_the_rate_limit_holds_across_processes(env: StorageEnv) -> None:
    clock = SetClock(T0)
    pa, pb = (twin(env, clock) for _ in range(2))
    pa.add("A", HERE, client="10.0.0.1")
    clock.now = T0 + timedelta(minutes=10)
    pb.add("B", HERE, client="10.0.0.1")
    pa.add("C", HERE, client="10.0.0.1")
    with pytest.raises(RateLimitedError) as exc:
        pb.add("D", HERE, client="10.0.0.1")
    assert exc.value.retry_after_s == 50 * 60  # when the first one is an hour old
    pb.add("D", HERE, client="10.0.0.2")  # another client
    clock.now = T0 + timedelta(hours=1, seconds=1)
    pb.add("E", HERE, client="10.0.0.1")
    assert len(pa.list()) == 5


def test_concurrent_proposals_from_one_client_stop_at_the_limit(
    two: tuple[Backend, Backend],
) -> None:
    a, b = two  # report_rate_per_hour=3: the proposals' limit too
    ok: list[str] = []
    refused: list[int] = []
    lock = threading.Lock()

    def propose(store: ProposalStore, i: int) -> None:
        try:
            p = store.add(f"p{i}", HERE, client="10.9.9.9")
            with lock:
                ok.append(p.id)
        except RateLimitedError as exc:
            with lock:
                refused.append(exc.retry_after_s)

    threads = [
        threading.Thread(target=propose, args=((a if i % 2 else b).proposals, i)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 3 and len(refused) == 5
    assert sorted(x.id for x in a.proposals.list()) == sorted(ok)


# -- photos -------------------------------------------------------------------------------


def test_a_photo_added_by_one_process_is_served_by_the_other(
    two: tuple[Backend, Backend],
) -> None:
    a, b = two
    first = a.photos.add("a1", jpeg(), MANAGER, taken_on=date(2026, 7, 1))
    second = b.photos.add("a1", jpeg(colour=(0, 90, 200)), MANAGER, taken_on=date(2026, 7, 9))
    other = b.photos.add("b1", jpeg((300, 200)), ADMIN)
    for s in (a, b):
        assert [p.id for p in s.photos.for_station("a1")] == [second.id, first.id]
        assert s.photos.get(first.id) == first
        assert s.photos.latest_by_station() == {"a1": date(2026, 7, 9), "b1": other.taken_on}
    bytes_a = [_content(a.photos, second.id, thumb) for thumb in (False, True)]
    bytes_b = [_content(b.photos, second.id, thumb) for thumb in (False, True)]
    assert bytes_a == bytes_b and bytes_a[0] != bytes_a[1]
    assert Image.open(io.BytesIO(bytes_b[0])).size == (640, 480)
    assert max(Image.open(io.BytesIO(bytes_b[1])).size) == 400
    # Removed through one: gone from both.
    with pytest.raises(NotFoundError):
        b.photos.remove("b1", first.id, MANAGER)  # not a photo of b1
    a.photos.remove("a1", first.id, MANAGER)
    for s in (a, b):
        assert [p.id for p in s.photos.for_station("a1")] == [second.id]
        with pytest.raises(NotFoundError):
            s.photos.get(first.id)
        with pytest.raises(NotFoundError):
            s.photos.content(first.id)
    with pytest.raises(NotFoundError):
        b.photos.remove("a1", first.id, MANAGER)  # removed once
    b.photos.remove("a1", second.id, MANAGER)
    assert a.photos.latest_by_station() == {"b1": other.taken_on}


def _content(photos: PhotoStore, photo_id: str, thumb: bool) -> bytes:
    found, media = photos.content(photo_id, thumb)
    assert media == "image/jpeg"
    return found.read_bytes() if isinstance(found, Path) else found


# -- PostgreSQL: what is stored -----------------------------------------------------------


@pytest.fixture
def pg_env(pg_cluster: Cluster, tmp_path: Path) -> Iterator[StorageEnv]:
    e = make_env("postgres", tmp_path, registry_doc(), lambda: pg_cluster)
    try:
        yield e
    finally:
        e.close()


def test_postgres_keeps_one_row_per_proposal_and_photo(pg_env: StorageEnv) -> None:
    b = pg_env.open()
    p = b.proposals.add("X", HERE, client="10.0.0.1", district="中原区")
    b.proposals.decide(p.id, "rejected", ADMIN, reason="dup")
    ph = b.photos.add("a1", jpeg(), MANAGER)
    b.photos.remove("a1", ph.id, MANAGER)
    url = pg_env.settings.database_url
    assert url is not None
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status, client, district, decision->>'reason', station_id FROM proposals"
        ).fetchall()
        assert row == [("rejected", b.proposals.client_hash("10.0.0.1"), "中原区", "dup", None)]
        photo = conn.execute(
            "SELECT station_id, data IS NULL, removed_by->>'role' FROM photos"
        ).fetchall()
        assert photo == [("a1", True, "manager")]  # removed: the bytes dropped, the row kept
        versions = dict(conn.execute("SELECT kind, version FROM state_versions").fetchall())
        assert versions["proposals"] == 2 and versions["photos"] == 2
        assert "10.0.0.1" not in json.dumps(conn.execute("SELECT entry FROM proposals").fetchall())


def test_postgres_proposals_waiting_for_the_lock_hold_one_connection(
    pg_env: StorageEnv,
) -> None:
    b = pg_env.open()
    url = pg_env.settings.database_url
    assert url is not None
    done: list[str] = []
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (PROPOSALS_LOCK,))  # a replica mid-change
        threads = [
            threading.Thread(
                target=lambda i=i: done.append(b.proposals.add(f"p{i}", HERE, client=f"c{i}").id)
            )
            for i in range(12)  # more than the pool's 8 connections
        ]
        for t in threads:
            t.start()
        # One waiter holds a pooled connection, the others none: an edit (an acceptance's
        # station) still gets one at once.
        a1 = b.stations.find("a1")
        b.stations.update("a1", {"properties": {"phone": "1"}}, a1.etag, ADMIN)

        def waiting() -> int:
            row = other.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            return int(row[0]) if row else 0

        eventually(lambda: waiting() == 1)
        time.sleep(0.2)  # the other threads queue in the process, not in the database
        assert waiting() == 1 and done == []
        other.execute("SELECT pg_advisory_unlock(%s)", (PROPOSALS_LOCK,))
        for t in threads:
            t.join()
    assert len(done) == 12 and len(b.proposals.list()) == 12


def test_postgres_reads_answer_from_memory_while_the_database_is_down(
    pg_env: StorageEnv,
) -> None:
    b = pg_env.open()
    p = b.proposals.add("X", HERE, client="c")
    assert b.proposals.source is not None
    b.close()  # the pool is closed: every query now fails as if the database were gone
    assert [x.id for x in b.proposals.list()] == [p.id]


def test_the_cli_reads_proposals_from_the_database(pg_env: StorageEnv) -> None:
    b = pg_env.open()
    p = b.proposals.add("X", HERE, client="c")
    with opened_proposals(pg_env.settings, pg_env.path) as found:
        assert found is not None and [x.id for x in found.list()] == [p.id]


# -- two API replicas on one database -----------------------------------------------------

TOKEN = "admin-token-for-the-records-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_two_replicas_share_proposals_and_photos(pg_cluster: Cluster, tmp_path: Path) -> None:
    url = fresh_database(pg_cluster)
    src = tmp_path / "reg.geojson"
    src.write_text(json.dumps(registry_doc()), encoding="utf-8")
    import_registry(url, src, Settings(database_url=url))
    settings = Settings(database_url=url, admin_token=TOKEN, report_rate_per_hour=5)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        r = one.post("/proposals", json={"name": "桥下驿站", "location": HERE})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        listed = two.get("/proposals", headers=AUTH).json()
        assert [p["id"] for p in listed["proposals"]] == [pid]
        accepted = two.post(f"/proposals/{pid}/accept", headers=AUTH)
        assert accepted.status_code == 200, accepted.text
        station = accepted.headers["location"]
        assert one.post(f"/proposals/{pid}/accept", headers=AUTH).status_code == 409
        assert (
            one.post(f"/proposals/{pid}/reject", json={"reason": "x"}, headers=AUTH).status_code
            == 409
        )
        (seen,) = one.get("/proposals", headers=AUTH).json()["proposals"]
        assert seen["status"] == "accepted" and seen["decision"]["station_id"] in station
        assert two.get(station).status_code == 200
        # The rate limit (5 an hour per client) holds across the two.
        codes = [
            (one if i % 2 else two).post("/proposals", json={"name": f"p{i}", "location": HERE})
            for i in range(6)
        ]
        assert [c.status_code for c in codes] == [201] * 4 + [429] * 2
        # A photo uploaded through one is served by the other, and removed through it.
        up = one.post(
            "/stations/a1/photos",
            content=jpeg(),
            headers={**AUTH, "Content-Type": "image/jpeg"},
        )
        assert up.status_code == 201, up.text
        photo = up.json()
        assert [p["id"] for p in two.get("/stations/a1/photos").json()["photos"]] == [photo["id"]]
        assert two.get(photo["url"]).content == one.get(photo["url"]).content
        assert Image.open(io.BytesIO(two.get(photo["thumbnail_url"]).content)).size[0] == 400
        assert two.delete(f"/stations/a1/photos/{photo['id']}", headers=AUTH).status_code == 204
        assert one.get(photo["url"]).status_code == 404
        assert one.get("/stations/a1/photos").json()["photos"] == []


@pytest.mark.slow
def test_two_served_replicas_share_proposals_and_photos(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    """The same through two ``yizhan serve --database-url`` processes."""
    url = fresh_database(pg_cluster)
    src = tmp_path / "reg.geojson"
    src.write_text(json.dumps(registry_doc()), encoding="utf-8")
    import_registry(url, src, Settings(database_url=url))
    env = {"YIZHAN_ADMIN_TOKEN": TOKEN}
    with (
        Replica("--database-url", url, env=env) as one,
        Replica("--database-url", url, env=env) as two,
        httpx.Client(base_url=one.url, timeout=10) as a,
        httpx.Client(base_url=two.url, timeout=10) as b,
    ):
        pid = a.post("/proposals", json={"name": "桥下驿站", "location": HERE}).json()["id"]
        assert [p["id"] for p in b.get("/proposals", headers=AUTH).json()["proposals"]] == [pid]
        assert b.post(f"/proposals/{pid}/reject", json={"reason": "dup"}, headers=AUTH).is_success
        assert a.post(f"/proposals/{pid}/accept", headers=AUTH).status_code == 409
        up = a.post(
            "/stations/b1/photos", content=jpeg(), headers={**AUTH, "Content-Type": "image/jpeg"}
        )
        assert up.status_code == 201, up.text
        assert b.get(up.json()["url"]).content == a.get(up.json()["url"]).content
