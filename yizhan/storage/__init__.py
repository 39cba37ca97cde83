"""Persistence behind one seam: every kind of state Yizhan keeps, in files or in PostgreSQL.

Holds the interfaces (:mod:`~yizhan.storage.base`), the embedded files backend
(:mod:`~yizhan.storage.files`), the PostgreSQL + PostGIS backend (:mod:`~yizhan.storage.postgres`
and its ``pg_*`` modules — :mod:`~yizhan.storage.pg_usage` for check-ins, visit rows and
counts and the daily salts —, migrations in ``migrations/``), and :func:`open_backend`, the
one place a backend is opened (by ``api.create_app`` and the CLI).

May import ``stations/`` (models, editing rules, the services and read model), ``errors``
and ``settings``; ``query/`` and everything above it may import this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from yizhan.settings import Settings
from yizhan.stations.audit import AuditLog, HistoryPage
from yizhan.stations.proposals import ProposalStore
from yizhan.stations.registry import Registry, load_registry
from yizhan.stations.tokens import TokenStore
from yizhan.storage.base import (
    Alerts,
    Backend,
    Photos,
    Placements,
    Proposals,
    RateLimits,
    Reports,
    Stations,
    Tokens,
    new_search,
    patch_search,
)
from yizhan.storage.files import open_files
from yizhan.storage.pg_open import open_postgres
from yizhan.storage.pg_records import PgProposalLog
from yizhan.storage.pg_state import PgEntrySource
from yizhan.storage.pg_stations import history_page
from yizhan.storage.postgres import Database, redact


def open_backend(
    settings: Settings, registry: Registry | None = None, *, read_only: bool = False
) -> Backend:
    """Open every kind of state: PostgreSQL when ``settings.database_url`` is set, else the
    files beside the registry (*registry*, or ``settings.registry`` loaded and validated).

    Raises
    ------
    InvalidInputError, RegistryInvalidError
        The registry or a state file is unreadable or invalid; the database's schema is
        not current.
    StorageUnavailableError
        The database cannot be reached.
    """
    if settings.database_url:
        return open_postgres(settings)
    return open_files(settings, registry, read_only=read_only)


def describe(settings: Settings, registry_path: Path | None = None) -> str:
    """Where state is kept, for messages (a database URL without its password)."""
    if settings.database_url:
        return redact(settings.database_url)
    return str(registry_path or settings.registry)


@contextmanager
def opened_tokens(settings: Settings, registry_path: Path) -> Iterator[TokenStore]:
    """The stored tokens only (``yizhan token``), from the database or the token file."""
    if settings.database_url:
        db = Database(settings.database_url, pool_size=1)
        db.open()
        try:
            yield TokenStore(source=PgEntrySource(db, "tokens"))
        finally:
            db.close()
        return
    path = settings.state_file(registry_path, "tokens")
    assert path is not None  # a registry path is always given
    yield TokenStore(path)


@contextmanager
def opened_proposals(
    settings: Settings, registry_path: Path | None
) -> Iterator[ProposalStore | None]:
    """The stored proposals only (the CLI's planner map): from the database, or the
    proposals file beside the registry (``None`` when there is none)."""
    if settings.database_url:
        db = Database(settings.database_url, pool_size=1)
        db.open()
        try:
            yield ProposalStore(source=PgProposalLog(db))
        finally:
            db.close()
        return
    path = settings.state_file(registry_path, "proposals", ".jsonl")
    yield ProposalStore(path) if path is not None and path.exists() else None


def feature_scopes(
    settings: Settings, registry_path: Path
) -> tuple[str, list[tuple[str, str | None]]]:
    """Every station and bus as ``(id, operator)``, and where they are kept (for checking
    a token's scope: ``yizhan token create``)."""
    if settings.database_url:
        db = Database(settings.database_url, pool_size=1)
        db.open()
        try:
            with db.connection() as conn:
                rows = conn.execute(
                    "SELECT id, feature -> 'properties' ->> 'operator' FROM features"
                ).fetchall()
        finally:
            db.close()
        return db.where, [(str(i), None if o is None else str(o)) for i, o in rows]
    registry = load_registry(
        registry_path, timezone=settings.timezone, holiday_country=settings.holiday_country
    )
    return str(registry_path), [
        (str(f["id"]), f["properties"].get("operator")) for f in registry.features + registry.buses
    ]


@dataclass
class History:
    """The audit history only (``yizhan history``)."""

    where: str
    exists: bool
    _page: object

    def page(
        self, feature_id: str, limit: int | None, cursor: int, newest_first: bool
    ) -> HistoryPage:
        page = self._page
        assert callable(page)
        result: HistoryPage = page(feature_id, limit, cursor, newest_first)
        return result


@contextmanager
def opened_history(settings: Settings, registry_path: Path) -> Iterator[History]:
    """The audit history of the registry: the ``audit`` table, or the audit log file."""
    if settings.database_url:
        db = Database(settings.database_url, pool_size=1)
        db.open()
        try:
            yield History(
                db.where,
                True,
                lambda fid, limit, cursor, newest: history_page(db, fid, limit, cursor, newest),
            )
        finally:
            db.close()
        return
    path = settings.state_file(registry_path, "audit", ".jsonl")
    assert path is not None
    yield History(str(path), path.exists(), AuditLog(path).page)


__all__ = [
    "Alerts",
    "Backend",
    "History",
    "Photos",
    "Placements",
    "Proposals",
    "RateLimits",
    "Reports",
    "Stations",
    "Tokens",
    "describe",
    "feature_scopes",
    "new_search",
    "open_backend",
    "opened_history",
    "opened_proposals",
    "opened_tokens",
    "patch_search",
]
