"""Real ``yizhan serve`` processes (replicas, workers) on loopback ports, for the scenario
tests and the storage benchmark."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """``yizhan serve [--workers N] [--database-url URL]`` in its own process group."""

    def __init__(
        self,
        *args: str,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "yizhan", "serve", "--port", str(self.port), *args]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self._log = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 60.0) -> Replica:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"yizhan serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"yizhan serve on {self.url} not ready after {timeout_s} s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send *sig* to the whole process group (the server and its workers)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> Replica:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Replica", "free_port"]
