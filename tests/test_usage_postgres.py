"""Usage on PostgreSQL: replicas sharing check-ins and usage answers, the salts table, the
usage CLI on a database.

Every test runs on a fresh database of the session's throwaway cluster (``pg_cluster``);
the storage contract (``test_storage_contract.py``) checks the rest on both backends.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from tests.helpers import visit_records
from tests.pgcluster import Cluster
from tests.storage_env import eventually, fresh_database
from tests.storage_servers import Replica
from yizhan.api import create_app
from yizhan.cli import main
from yizhan.errors import StorageUnavailableError
from yizhan.query.usage_service import busy_now
from yizhan.settings import Settings
from yizhan.stations.usage_files import SOURCE_CHECKINS, VisitRows, concat
from yizhan.storage import open_backend
from yizhan.storage.pg_transfer import import_registry
from yizhan.storage.pg_usage import PgCheckinLog, PgVisitMonths
from yizhan.storage.postgres import Database


@pytest.fixture
def url(pg_cluster: Cluster, tmp_path: Path) -> str:
    u = fresh_database(pg_cluster)
    doc = make_doc(
        [
            make_feature("s1", 113.65, 34.75, opening_hours="24/7", district="东区"),
            make_feature("s2", 113.651, 34.75, district="西区"),
            make_bus("bus-1", [make_stop("a", 113.70, 34.76, "Mo-Su 00:00-24:00")]),
        ]
    )
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    import_registry(u, path, Settings(database_url=u))
    return u


def replica(url: str, **settings: object) -> TestClient:
    return TestClient(
        create_app(
            Settings(database_url=url, trust_forwarded_for=True, reload_interval_s=0, **settings)
        )
    )


def check_in(c: TestClient, sid: str, ip: str) -> int:
    r = c.post(f"/stations/{sid}/checkins", json={}, headers={"X-Forwarded-For": ip})
    return r.status_code


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def test_two_replicas_share_check_ins_rules_and_usage(url: str) -> None:
    with replica(url) as a, replica(url) as b:
        assert check_in(a, "s1", "198.51.100.1") == 201
        assert check_in(b, "s1", "198.51.100.1") == 429  # the same worker, through the other
        for ip in ("198.51.100.2", "198.51.100.3"):
            assert check_in(a, "s1", ip) == 201
        assert check_in(b, "s1", "198.51.100.4") == 201
        for c in (a, b):
            usage = c.get("/stations/s1/usage").json()
            assert usage["visits"] == 4  # today's check-ins, whichever replica took them
            # "busy now" follows the others' check-ins within REFRESH_S
            eventually(
                lambda c=c: (
                    c.get("/stations/s1/usage").json()["busy_now"]["checkins_last_hour"] == 4
                )
            )
    stored = rows(url, "SELECT client FROM checkins")
    assert len(stored) == 4 and not any("198.51.100" in str(r[0]) for r in stored)
    assert len(rows(url, "SELECT day FROM salts")) == 1  # one salt, shared


def test_the_salts_table_forgets_old_days(url: str) -> None:
    old = date.today() - timedelta(days=40)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO salts (day, salt) VALUES (%s, %s)", (old, b"x" * 16))
    one = open_backend(Settings(database_url=url))
    two = open_backend(Settings(database_url=url))
    try:
        now = datetime.now(UTC)
        assert one.salts.hash("c", "reports", now) == two.salts.hash("c", "reports", now)
        assert one.reports.client_hash("c") == two.reports.client_hash("c")
        assert [r[0] for r in rows(url, "SELECT day FROM salts")] == [
            one.salts.day_of(now)
        ]  # the 40-day-old salt is gone: its hashes can no longer be linked
    finally:
        one.close()
        two.close()


def test_a_salt_file_takes_the_place_of_the_table(url: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret" / "salts.json"
    backend = open_backend(Settings(database_url=url, salt_file=secret))
    try:
        backend.checkins.add("s2", client="203.0.113.1")
    finally:
        backend.close()
    assert rows(url, "SELECT day FROM salts") == []
    assert secret.exists()


def test_usage_cli_on_the_database(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    end = (date.today() - timedelta(days=1)).isoformat()
    args = ["--database-url", url]
    assert main(["usage", "generate", "--days", "3", "--end", end, "--json", *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["days_written"] == 3 and summary["visits"] > 0
    assert "visit rows in postgresql://" in summary["directory"]
    stored = rows(url, "SELECT sum(count), count(DISTINCT day) FROM visit_rows")
    assert stored == [(summary["visits"], 3)]
    monkeypatch.setenv("YIZHAN_DATABASE_URL", url)
    assert main(["usage", "report", "--from", end, "--to", end, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["synthetic_share"] == 1.0
    assert sum(d["visits"] for d in report["districts"]) > 0
    assert main(["usage", "report", "--database-url", "mysql://x"]) != 0
    assert "--database-url" in capsys.readouterr().err


def test_busy_now_without_the_history_keeps_answering(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the visit rows unreadable (the database down), "busy now" still says how many
    checked in (level unknown) instead of failing the workers' page."""
    app = create_app(
        Settings(
            database_url=url, trust_forwarded_for=True, reload_interval_s=0, busy_min_checkins=1
        )
    )
    with TestClient(app) as a:
        assert check_in(a, "s2", "198.51.100.7") == 201
        stores = app.state.usage
        assert stores.visits is not None

        def down(*args: object, **kwargs: object) -> None:
            raise StorageUnavailableError("the visit rows are unavailable for now")

        monkeypatch.setattr(stores.visits, "load_parts", down)
        busy = busy_now(app.state.backend.stations.search, stores, "s2")
        assert busy is not None and busy["checkins_last_hour"] == 1
        assert busy["level"] == "unknown"
        assert a.get("/stations/s2/usage").status_code == 503  # the period's rows: 503


@pytest.mark.slow
def test_two_serve_processes_share_the_rules_and_the_counts(url: str) -> None:
    """Two `yizhan serve` processes on one database: the same worker (the same address,
    hashed under the salt of the `salts` table by each process) is refused by the second
    after checking in through the first, and each counts the other's check-ins."""
    a = Replica("--database-url", url).wait_ready()
    b = Replica("--database-url", url).wait_ready()
    try:
        assert httpx.post(f"{a.url}/stations/s1/checkins", json={}).status_code == 201
        again = httpx.post(f"{b.url}/stations/s1/checkins", json={})
        assert again.status_code == 429 and "Already checked in" in again.text
        assert httpx.post(f"{b.url}/stations/s2/checkins", json={}).status_code == 201
        for rep in (a, b):
            for sid in ("s1", "s2"):
                assert httpx.get(f"{rep.url}/stations/{sid}/usage").json()["visits"] == 1
    finally:
        a.stop()
        b.stop()
    assert len(rows(url, "SELECT day FROM salts")) == 1


def _records(parts: list[VisitRows]) -> list[tuple[int, str, int, int, int, int]]:
    return visit_records(concat(parts))


def test_network_reads_use_packed_months_kept_in_step_with_the_rows(url: str) -> None:
    jan30, feb2 = date(2025, 1, 30).toordinal(), date(2025, 2, 2).toordinal()
    days = list(range(jan30, feb2 + 1))
    recs = [(d, u, 9, 0, SOURCE_CHECKINS, d - jan30 + k) for d in days for k, u in enumerate("ab")]
    db = Database(url)
    db.open()
    try:
        months = PgVisitMonths(db)
        assert months.add_days(VisitRows.from_records(recs), days) == days
        first, last = date(2025, 1, 31), date(2025, 2, 1)
        want = [r for r in recs if first.toordinal() <= r[0] <= last.toordinal()]
        parts, held = months.load_parts(first, last)
        assert _records(parts) == want and held.days == {first.toordinal(), last.toordinal()}
        assert _records(months.load_parts(first, last, ["a", "b"])[0]) == want  # visit_rows
        packed = "SELECT month FROM visit_months ORDER BY month"
        assert rows(url, packed) == [(date(2025, 1, 1),), (date(2025, 2, 1),)]
        with psycopg.connect(url) as conn:  # behind its back: another process reads the packing
            conn.execute("DELETE FROM visit_rows WHERE day = '2025-01-31'")
        assert _records(PgVisitMonths(db).load_parts(first, last)[0]) == want
        # replacing a day drops its month's packing in the same transaction
        new = [(jan30 + 2, "a", 9, 0, SOURCE_CHECKINS, 100)]
        assert months.add_days(VisitRows.from_records(new), [jan30 + 2], replace=True)
        assert rows(url, packed) == [(date(2025, 1, 1),)]
        again = [r for r in want if r[0] != jan30 + 2] + new
        assert _records(PgVisitMonths(db).load_parts(first, last)[0]) == sorted(again)
        # a compacted day of check-ins too
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO checkins (id, station_id, trade, at, day, hour, client, located) "
                "VALUES ('c1', 'b', 1, '2025-01-15 08:30+00', '2025-01-15', 8, 'h', true)"
            )
        assert PgCheckinLog(db, ZoneInfo("UTC")).compact(date(2025, 1, 16)) == [date(2025, 1, 15)]
        assert rows(url, packed) == [(date(2025, 2, 1),)]
        parts, _ = PgVisitMonths(db).load_parts(date(2025, 1, 1), date(2025, 2, 28))
        assert (date(2025, 1, 15).toordinal(), "b", 8, 1, SOURCE_CHECKINS, 1) in _records(parts)
        assert len(parts) == 2  # one part a month
    finally:
        db.close()
