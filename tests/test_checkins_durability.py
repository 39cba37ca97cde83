"""Every acknowledged check-in survives SIGKILL: a real server (``python -m yizhan serve``,
one uvicorn worker) under concurrent check-ins is killed in mid-load; every check-in it
answered 201 to is in the check-in files afterwards, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from yizhan.settings import DEFAULT_REGISTRY

pytestmark = pytest.mark.slow  # starts a server process (about 10 s)

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_acknowledged_check_ins_survive_sigkill(tmp_path: Path) -> None:
    reg = tmp_path / "reg.geojson"
    reg.write_bytes(DEFAULT_REGISTRY.read_bytes())
    ids = [f["id"] for f in json.loads(reg.read_text())["features"] if f["id"].startswith("zz-")]
    port = _port()
    env = {
        **os.environ,
        "YIZHAN_STATE_DIR": str(tmp_path / "state"),
        "YIZHAN_TRUST_FORWARDED_FOR": "true",
        "YIZHAN_CHECKIN_RATE_PER_HOUR": "1000000",
        "YIZHAN_RELOAD_INTERVAL_S": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "yizhan", "serve", "--registry", str(reg), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.1)

        async def load() -> None:
            n = 0

            async def worker(k: int, client: httpx.AsyncClient) -> None:
                nonlocal n
                while True:
                    n += 1
                    ip = f"10.{k}.{(n // 250) % 250}.{n % 250 + 1}"
                    try:
                        r = await client.post(
                            f"/stations/{ids[n % len(ids)]}/checkins",
                            json={"trade": "builder"},
                            headers={"X-Forwarded-For": ip},
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    assert r.status_code == 201, r.text
                    acked.append(r.json()["id"])

            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                tasks = [asyncio.create_task(worker(k, client)) for k in range(32)]
                await asyncio.sleep(1.5)
                proc.send_signal(signal.SIGKILL)
                await asyncio.gather(*tasks)

        asyncio.run(load())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    stored: list[str] = []
    for path in (tmp_path / "state").glob("*.usage/checkins-*.jsonl"):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError):  # a line torn by the kill (never acknowledged)
                stored.append(json.loads(line)["id"])
    assert len(acked) > 20
    assert set(acked) <= set(stored)
    assert len(stored) == len(set(stored))  # each once
