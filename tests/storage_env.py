"""Storage backends for the tests: a registry in files, or in a fresh PostgreSQL database.

A database per test is copied from a migrated template (``CREATE DATABASE … TEMPLATE``,
a fraction of a second) on the session's throwaway cluster (``pg_cluster``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.pgcluster import Cluster
from yizhan.settings import Settings
from yizhan.storage import Backend, open_backend
from yizhan.storage.migrate import upgrade
from yizhan.storage.pg_transfer import import_registry

T = TypeVar("T")
_TEMPLATE = "yizhan_template"
_made: set[int] = set()
_count = itertools.count()


def database_url(cluster: Cluster, name: str) -> str:
    return f"postgresql://yizhan@127.0.0.1:{cluster.port}/{name}"


def fresh_database(cluster: Cluster) -> str:
    """The URL of a new, migrated, empty database on *cluster*."""
    if cluster.port not in _made:
        cluster.psql(f"DROP DATABASE IF EXISTS {_TEMPLATE}", database="postgres")
        cluster.psql(f"CREATE DATABASE {_TEMPLATE}", database="postgres")
        upgrade(database_url(cluster, _TEMPLATE))
        _made.add(cluster.port)
    name = f"yz_{int(time.time() * 1000) % 10**9}_{next(_count)}"
    cluster.psql(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}", database="postgres")
    return database_url(cluster, name)


@dataclass
class StorageEnv:
    """One registry's storage, and the backends opened on it (each one "process")."""

    kind: str
    path: Path
    settings: Settings
    opened: list[Backend] = field(default_factory=list)

    def open(self, start: bool = False, **overrides: Any) -> Backend:
        """Another backend over the same storage, as another process would open it."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        backend = open_backend(settings)
        self.opened.append(backend)
        if start:
            backend.start()
        return backend

    def close(self) -> None:
        for b in self.opened:
            b.close()
        self.opened.clear()


def make_env(
    kind: str,
    tmp_path: Path,
    doc: dict[str, Any],
    cluster: Callable[[], Cluster],
    **settings: Any,
) -> StorageEnv:
    """Write *doc* as the registry file; for ``postgres``, import it into a fresh database."""
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    base: dict[str, Any] = {"registry": path, "reload_interval_s": 0, **settings}
    if kind == "postgres":
        url = fresh_database(cluster())
        s = Settings(database_url=url, **base)
        import_registry(url, path, s)
        return StorageEnv(kind, path, s)
    return StorageEnv(kind, path, Settings(**base))


def eventually(check: Callable[[], T], timeout_s: float = 5.0, every_s: float = 0.02) -> T:
    """Call *check* until it returns a true value (or raises nothing falsy) within the time."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout_s} s")
        time.sleep(every_s)
