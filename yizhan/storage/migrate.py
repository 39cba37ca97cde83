"""Versioned database migrations: ordered SQL files in ``yizhan/storage/migrations/``.

Each file ``NNNN_name.sql`` is one version, applied once, in order, each in its own
transaction, and recorded in ``yizhan_migrations`` with its SHA-256 (a file changed after it
was applied is refused: write a new migration instead). ``yizhan db upgrade`` applies the
pending ones; concurrent upgrades (two replicas started at once) are serialised with an
advisory lock. A server refuses to start on a database whose schema is not the one it was
built for, and says to run the upgrade.

Plain SQL files rather than alembic: the schema is a few tables written in PostgreSQL's own
dialect (PostGIS types, generated columns, an exclusion constraint) that an ORM's model
would not describe; alembic would bring SQLAlchemy, used nowhere else, to run what psycopg
runs directly. The files ship with the package (package data) so an installed wheel
can upgrade a database.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

import psycopg

from yizhan.errors import InvalidInputError

#: Key of the advisory lock held while migrations run.
MIGRATION_LOCK = 0x59_5A_4D_49  # "YZMI"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations() -> list[Migration]:
    """Every migration shipped with this Yizhan, in order."""
    out = []
    for entry in files("yizhan.storage").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    if [m.version for m in out] != list(range(1, len(out) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n, got {[m.version for m in out]}")
    return out


def applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, tuple[str, str]]:
    """The migrations recorded in the database: version → (name, sha256)."""
    exists = conn.execute("SELECT to_regclass('yizhan_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, name, sha256 FROM yizhan_migrations").fetchall()
    return {int(str(v)): (str(n), str(h)) for v, n, h in rows}


def _check_recorded(done: dict[int, tuple[str, str]], known: list[Migration]) -> None:
    by_version = {m.version: m for m in known}
    for version, (name, digest) in sorted(done.items()):
        m = by_version.get(version)
        if m is None:
            raise InvalidInputError(
                "database",
                f"the schema is at version {max(done)}, newer than this Yizhan knows "
                f"({len(known)}): upgrade Yizhan",
            )
        if digest != m.sha256:
            raise InvalidInputError(
                "database",
                f"migration {version:04d}_{name} was changed after it was applied "
                "(its SHA-256 differs): add a new migration instead of editing one",
            )


def upgrade(url: str, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Apply the pending migrations to the database at *url*; the names applied.

    Raises
    ------
    InvalidInputError
        The database is newer than this Yizhan, or an applied migration was changed.
    psycopg.OperationalError
        The database cannot be reached.
    """
    known = migrations()
    done_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS yizhan_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = applied(conn)
            _check_recorded(done, known)
            for m in known:
                if m.version in done:
                    continue
                label = f"{m.version:04d}_{m.name}"
                progress(f"applying {label}")
                with conn.transaction():
                    conn.execute(m.sql.encode("utf-8"))
                    conn.execute(
                        "INSERT INTO yizhan_migrations (version, name, sha256) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.sha256),
                    )
                done_now.append(label)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return done_now


def check_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Refuse a database whose schema is not exactly the one this Yizhan was built for.

    Raises
    ------
    InvalidInputError
        Naming what to do (``yizhan db upgrade``, or upgrade Yizhan).
    """
    known = migrations()
    done = applied(conn)
    _check_recorded(done, known)
    missing = [f"{m.version:04d}_{m.name}" for m in known if m.version not in done]
    if missing:
        raise InvalidInputError(
            "database",
            f"the schema lacks {len(missing)} migration(s) ({', '.join(missing)}): "
            "run `yizhan db upgrade` first",
        )


__all__ = ["MIGRATION_LOCK", "Migration", "applied", "check_schema", "migrations", "upgrade"]
