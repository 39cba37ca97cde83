"""Analyses cannot take the server down (issue 15, item 15): they run in processes of their
own, bounded (503 + Retry-After when full), killed at a hard time limit, memory-limited,
limited per client (429 + Retry-After), optionally for token holders only; edits and
reads answer while analyses run."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.realserver import yizhan_serve
from yizhan.api import create_app
from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import StationSet
from yizhan.geo.demand import Demand
from yizhan.query.analysis import AnalysisRunner, AnalysisUnavailableError, coverage_analysis
from yizhan.settings import DEFAULT_DISTRICTS, DEFAULT_REGISTRY, Settings

ADMIN = "analysis-admin-token"


def sleep_and_tell(path: str, seconds: float) -> None:
    """Run in an analysis process: write its pid, then sleep."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers; look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- the runner --------------------------------------------------------------------------------


def test_hard_time_limit_kills_the_process(tmp_path: Path) -> None:
    # 8 s: the process first imports this test module (and with it the app) to find
    # sleep_and_tell.
    runner = AnalysisRunner(workers=1, queue=0, timeout_s=8.0, memory_mb=0)
    pid_file = tmp_path / "pid"
    t0 = time.monotonic()
    with pytest.raises(AnalysisUnavailableError, match="did not finish within") as info:
        asyncio.run(runner.run(sleep_and_tell, str(pid_file), 120.0))
    assert info.value.retry_after_s is None
    assert time.monotonic() - t0 < 40  # liveness bound: the limit is 8 s, the sleep 120 s
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the analysis process was not killed"
        time.sleep(0.05)
    assert runner.running == 0 and runner.pending == 0
    runner.close()


def test_memory_limit_stops_the_analysis() -> None:
    runner = AnalysisRunner(workers=1, queue=0, timeout_s=60, memory_mb=200)
    with pytest.raises(AnalysisUnavailableError, match="more memory"):
        asyncio.run(runner.run(bytearray, 2_000_000_000))
    assert asyncio.run(runner.run(bytearray, 1000)) == bytearray(1000)
    runner.close()


def test_queue_is_bounded() -> None:
    runner = AnalysisRunner(workers=1, queue=1, timeout_s=30, memory_mb=0)

    async def scenario() -> None:
        running = [asyncio.create_task(runner.run(time.sleep, 20)) for _ in range(2)]
        await asyncio.sleep(0.2)
        assert runner.pending == 2
        with pytest.raises(AnalysisUnavailableError, match="busy") as info:
            await runner.run(time.sleep, 0)
        assert info.value.retry_after_s is not None and info.value.retry_after_s >= 1
        runner.close()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    asyncio.run(scenario())


def test_input_errors_come_back_as_they_were_raised() -> None:
    runner = AnalysisRunner(workers=1, queue=0, timeout_s=30, memory_mb=512)
    demand = Demand.from_arrays([113.65], [34.75], [1.0])
    stations = StationSet(*(x for x in _one_station()))
    with pytest.raises(InvalidInputError) as info:
        asyncio.run(runner.run(coverage_analysis, stations, demand, -1.0, False))
    assert info.value.field == "radius_m"
    out = asyncio.run(runner.run(coverage_analysis, stations, demand, 1000.0, True))
    assert out["covered_weight_pct"] == 100.0 and "access" in out
    runner.close()


def _one_station() -> tuple[Any, ...]:
    import numpy as np

    return (np.array([113.651]), np.array([34.75]), np.array([0]), np.array([np.nan]))


# -- the routes --------------------------------------------------------------------------------


def _app(tmp: Path, **overrides: Any) -> Any:
    shutil.copy(DEFAULT_REGISTRY, tmp / "reg.geojson")
    return create_app(
        Settings(
            registry=tmp / "reg.geojson",
            state_dir=tmp / "state",
            districts=DEFAULT_DISTRICTS,
            admin_token=ADMIN,
            reload_interval_s=0,
            **overrides,
        )
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path, analysis_rate_per_hour=3)) as c:
        yield c


def test_per_client_quota(client: TestClient) -> None:
    codes = [client.get("/coverage").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = client.post("/analysis/site", json={"n_new": 1})
    assert r.status_code == 429
    assert "YIZHAN_ANALYSIS_RATE_PER_HOUR" in r.json()["detail"]
    assert 3000 < int(r.headers["Retry-After"]) <= 3600
    with TestClient(client.app, client=("198.51.100.8", 5000)) as other:
        assert other.get("/coverage").status_code == 200


def test_the_quota_is_counted_by_every_process(tmp_path: Path) -> None:
    """Two servers on one storage (two workers, or two replicas): one quota, not one each."""
    a = _app(tmp_path, analysis_rate_per_hour=3)
    b = create_app(a.state.settings)
    with TestClient(a) as ca, TestClient(b) as cb:
        codes = [c.get("/coverage").status_code for c in (ca, cb, ca)]
        assert codes == [200, 200, 200]
        r = cb.get("/coverage")
        assert r.status_code == 429
        assert "YIZHAN_ANALYSIS_RATE_PER_HOUR" in r.json()["detail"]


def test_radius_is_capped(client: TestClient) -> None:
    r = client.get("/coverage", params={"radius_m": 50_000})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "radius_m"]
    assert "YIZHAN_ANALYSIS_MAX_RADIUS_M" in r.json()["detail"][0]["msg"]
    r = client.post("/analysis/site", json={"n_new": 1, "radius_m": 50_000})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "radius_m"]
    assert client.get("/maps/coverage", params={"radius_m": 50_000}).status_code == 422


def test_solver_gets_a_share_of_the_hard_limit(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, analysis_timeout_s=8)) as c:
        r = c.post("/analysis/site", json={"n_new": 2, "time_limit_s": 300})
        assert r.status_code == 200
        assert r.json()["time_limit_s"] == 6.0


def test_an_analysis_over_the_hard_limit_is_stopped(tmp_path: Path) -> None:
    """A planner map with 50 sites at 5 km took 34 s on a thread nobody could stop."""
    with TestClient(_app(tmp_path, analysis_timeout_s=2)) as c:
        t0 = time.monotonic()
        r = c.get("/maps/coverage", params={"sites": 50, "radius_m": 5000})
        assert r.status_code == 503
        assert "YIZHAN_ANALYSIS_TIMEOUT_S" in r.json()["detail"]
        assert time.monotonic() - t0 < 30  # liveness bound, the limit is 2 s
        assert c.get("/health").status_code == 200


def test_token_access(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, analysis_access="token")) as c:
        for method, url, body in [
            ("GET", "/coverage", None),
            ("POST", "/analysis/site", {"n_new": 1}),
            ("GET", "/maps/coverage", None),
        ]:
            r = c.request(method, url, json=body)
            assert r.status_code == 401, url
            assert "YIZHAN_ANALYSIS_ACCESS" in r.json()["detail"]
            assert r.headers["WWW-Authenticate"] == "Bearer"
            bad = c.request(method, url, json=body, headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401
        ok = c.get("/coverage", headers={"Authorization": f"Bearer {ADMIN}"})
        assert ok.status_code == 200


def test_public_access_ignores_tokens(client: TestClient) -> None:
    r = client.get("/coverage", headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 200


def test_limits_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/coverage", "get"),
        ("/analysis/site", "post"),
        ("/maps/coverage", "get"),
    ]:
        responses = paths[path][method]["responses"]
        assert {"401", "429", "503"} <= set(responses), path
        assert "security" not in paths[path][method]  # no token needed by default


# -- a real server: edits and reads stay fast --------------------------------------------------


def test_edits_and_reads_answer_while_analyses_run(tmp_path: Path) -> None:
    """Before: analyses ran on the threads edits use (8 analyses made a PATCH take 16.8 s).
    Eight long analyses are started: two run, four wait, two are refused (503); a PATCH
    and a /nearest must complete while those analyses are still running."""
    env = {
        "YIZHAN_ADMIN_TOKEN": ADMIN,
        "YIZHAN_ANALYSIS_WORKERS": "2",
        "YIZHAN_ANALYSIS_QUEUE": "4",
        "YIZHAN_ANALYSIS_PER_CLIENT": "50",
        "YIZHAN_ANALYSIS_TIMEOUT_S": "120",
    }
    slow = {"n_new": 10, "radius_m": 20_000, "time_limit_s": 60}
    with yizhan_serve(tmp_path, env) as srv, ThreadPoolExecutor(8) as pool:

        def analysis() -> httpx.Response:
            return httpx.post(f"{srv.url}/analysis/site", json=slow, timeout=300)

        started = [pool.submit(analysis) for _ in range(8)]
        deadline = time.monotonic() + 30
        while sum(f.done() for f in started) < 2:  # the two beyond the queue
            assert time.monotonic() < deadline, "no analysis was refused"
            time.sleep(0.1)
        refused = [f.result() for f in started if f.done()]
        assert [r.status_code for r in refused] == [503, 503]
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        running = [f for f in started if not f.done()]

        with httpx.Client(base_url=srv.url, timeout=60) as c:
            t0 = time.monotonic()
            near = c.get("/nearest", params={"lon": 113.65, "lat": 34.76, "k": 3})
            fid = near.json()["features"][0]["id"]
            etag = c.get(f"/stations/{fid}").headers["etag"]
            patch = c.patch(
                f"/stations/{fid}",
                json={"properties": {"phone": "0371-12345678"}},
                headers={"Authorization": f"Bearer {ADMIN}", "If-Match": etag},
            )
            took = time.monotonic() - t0
        assert near.status_code == 200 and patch.status_code == 200
        # The point: they answered while every accepted analysis was still going.
        assert not any(f.done() for f in running), "an analysis finished first: inconclusive"
        assert took < 15, took  # a liveness bound, not a benchmark (alone: ~0.05 s)
        srv.process.terminate()  # ends the analyses (and the requests waiting for them)


def test_an_app_started_again_runs_analyses(tmp_path: Path) -> None:
    """The lifespan's end kills running analyses; a new start gets a new runner."""
    app = _app(tmp_path)
    for _ in range(2):
        with TestClient(app) as c:
            assert c.get("/coverage").status_code == 200


def test_study_exports_are_analyses_too(tmp_path: Path) -> None:
    """`/export/sites.geojson` runs the same siting: same limits (it ran on the server's
    threads with up to 200 sites at 100 km)."""
    with TestClient(_app(tmp_path, analysis_rate_per_hour=1)) as c:
        r = c.get("/export/sites.geojson", params={"n_new": 2, "radius_m": 50_000})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["query", "radius_m"]
        r = c.get("/export/sites.geojson", params={"n_new": 2})
        assert r.status_code == 200
        assert len(r.json()["features"]) == 2
        r = c.get("/export/gaps.geojson")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
