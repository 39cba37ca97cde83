"""A throwaway PostgreSQL (+PostGIS) cluster for the tests: no mocks, no shared server.

:func:`start_cluster` runs ``initdb`` in a new temporary directory (as the ``postgres``
user when the tests run as root, since PostgreSQL refuses to run as root), starts the
server on a free loopback port with a private socket directory, creates a database with
the PostGIS extension available, and returns a :class:`Cluster` that can be stopped,
restarted (for degraded-mode tests) and removed. Durability settings are relaxed
(``fsync=off``): these clusters hold test data only.

When PostgreSQL or PostGIS is not installed the fixture skips with a reason starting
"needs " — which fails the run under ``CI=true`` (tests/ci_skips.py); ``.ci/run``
installs Debian's ``postgresql`` and ``postgresql-15-postgis-3`` when missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NEEDS = "needs PostgreSQL with PostGIS (apt-get install postgresql postgresql-15-postgis-3)"


class ClusterUnavailableError(RuntimeError):
    """PostgreSQL or PostGIS is not installed, or the cluster could not start."""


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _postgis_available(bin_dir: Path) -> bool:
    out = subprocess.run(
        [str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    )
    share = out.stdout.strip() if out.returncode == 0 else ""
    return bool(share) and Path(share, "extension", "postgis.control").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``url`` is a libpq URL for its database ``yizhan``."""

    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://yizhan@127.0.0.1:{self.port}/yizhan"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, *args], capture_output=True, text=True, check=check)

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        out = self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            opts,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if out.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise ClusterUnavailableError(f"pg_ctl start failed: {out.stderr.strip()} {log}")

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-w",
            "stop",
            check=False,
        )

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server, stay down *down_s* seconds, start it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def psql(self, sql: str, database: str = "yizhan") -> str:
        out = self._run(
            str(self.bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "yizhan",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        )
        return out.stdout

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """Create and start a cluster with a database ``yizhan`` (owner ``yizhan``, superuser,
    trust authentication on loopback) where ``CREATE EXTENSION postgis`` works."""
    bin_dir = _bin_dir()
    if bin_dir is None or not _postgis_available(bin_dir):
        raise ClusterUnavailableError(NEEDS)
    root = Path(tempfile.mkdtemp(prefix="yizhan-pg-", dir="/tmp"))
    data_dir, socket_dir = root / "data", root / "sock"
    socket_dir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        for path in (root, socket_dir):
            shutil.chown(path, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(bin_dir, data_dir, socket_dir, root, _free_port(), as_user)
    out = cluster._run(
        str(bin_dir / "initdb"),
        "-D",
        str(data_dir),
        "-U",
        "yizhan",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        check=False,
    )
    if out.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailableError(f"initdb failed: {out.stderr.strip()}")
    try:
        cluster.start()
        cluster.psql("CREATE DATABASE yizhan", database="postgres")
    except (ClusterUnavailableError, subprocess.CalledProcessError) as exc:
        cluster.remove()
        raise ClusterUnavailableError(str(exc)) from exc
    return cluster
