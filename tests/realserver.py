"""`yizhan serve` as a real process on 127.0.0.1, for tests of what only a real server shows
(uvicorn's proxy-header handling, slow connections, descriptor limits)."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from yizhan.settings import DEFAULT_DISTRICTS, DEFAULT_REGISTRY

REPO = Path(__file__).resolve().parents[1]


@dataclass
class RealServer:
    url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    registry: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def yizhan_serve(
    tmp: Path,
    env: dict[str, str] | None = None,
    nofile: int | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[RealServer]:
    """`python -m yizhan serve` over a copy of the bundled registry (with the bundled
    districts as its study), its state in *tmp*; *env* adds ``YIZHAN_*`` settings,
    *nofile* caps the process's open files and *args* are more options (``--workers``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    registry = tmp / "reg.geojson"
    shutil.copy(DEFAULT_REGISTRY, registry)
    port = free_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")},
        "PYTHONPATH": str(REPO),
        "YIZHAN_STATE_DIR": str(tmp / "state"),
        "YIZHAN_DISTRICTS": str(DEFAULT_DISTRICTS),
        "YIZHAN_RELOAD_INTERVAL_S": "0",
        **(env or {}),
    }

    def limits() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log_path = tmp / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yizhan",
                "serve",
                "--registry",
                str(registry),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=REPO,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limits,
        )
    url = f"http://127.0.0.1:{port}"
    server = RealServer(url, "127.0.0.1", port, proc, log_path, registry)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"server exited:\n{server.log()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server did not start:\n{server.log()}"
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
