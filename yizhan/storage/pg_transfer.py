"""Moving a registry between a GeoJSON file and the database: ``yizhan db import/export``.

**Import** validates the file exactly as loading it would (every error listed; nothing is
written unless it is valid), then writes it in one transaction: all or nothing. Into an
empty database the features are copied in (``COPY``) without audit rows, like a registry
file that has no audit log yet; the registry version moves on once, and running servers
load the registry again. Into a database that holds a registry, each feature that differs
is written with an audit row of its own (action ``external``, actor the file), as the files
backend logs a registry file changed outside Yizhan, and running servers patch those in.

**Export** writes the document back as it was imported and edited since: its own members
(name, licence, foreign members) in their order, the features in their order (new ones
last), each feature exactly as stored (unknown properties and members kept), in the
format Yizhan writes registry files in (orjson, two-space indent, final newline). A
registry imported from such a file and exported unchanged is the same file, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from yizhan.settings import Settings
from yizhan.stations.audit import audit_entry
from yizhan.stations.editing import feature_etag
from yizhan.stations.jsonio import gc_paused, read_document, write_json_atomic
from yizhan.stations.registry import from_document
from yizhan.storage.migrate import check_schema
from yizhan.storage.pg_stations import dumps, load_document
from yizhan.storage.postgres import CHANNEL, redact

#: Progress is reported every this many features.
PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    features: int
    added: int
    changed: int
    removed: int
    version: int

    def summary(self) -> str:
        return (
            f"{self.features} features: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed (registry version {self.version})"
        )


def import_registry(
    url: str,
    path: Path,
    settings: Settings,
    progress: Callable[[str], None] = lambda _: None,
) -> ImportResult:
    """Validate the registry file at *path* and write it to the database (see the module
    docstring).

    Raises
    ------
    InvalidInputError
        The file cannot be read, or the database's schema is not current.
    RegistryInvalidError
        The file is invalid (every problem in the report); nothing was written.
    psycopg.OperationalError
        The database cannot be reached.
    """
    progress(f"reading {path}")
    doc = read_document(path)
    progress("validating")
    with gc_paused():
        from_document(
            doc,
            path=path,
            source=str(path),
            timezone=settings.timezone,
            holiday_country=settings.holiday_country,
        )
    features: list[dict[str, Any]] = doc["features"]
    progress(f"valid: {len(features)} features")
    meta = {k: (None if k == "features" else v) for k, v in doc.items()}
    with psycopg.connect(url) as conn:
        check_schema(conn)
        row = conn.execute(
            "SELECT version FROM state_versions WHERE kind = 'stations' FOR UPDATE"
        ).fetchone()
        assert row is not None
        version = int(row[0])
        existing = {
            str(fid): (str(etag), int(pos))
            for fid, etag, pos in conn.execute("SELECT id, etag, pos FROM features").fetchall()
        }
        if not existing:
            version += 1
            added = _copy_in(conn, features, version, progress)
            changed = removed = 0
        else:
            version, added, changed, removed = _merge(
                conn, path, features, existing, version, progress
            )
        conn.execute(
            "SELECT setval('features_pos_seq', (SELECT coalesce(max(pos), 0) + 1 FROM features), "
            "false)"
        )
        conn.execute(
            "INSERT INTO registry_meta (singleton, document) VALUES (true, %s::json) "
            "ON CONFLICT (singleton) DO UPDATE SET document = excluded.document",
            (dumps(meta),),
        )
        conn.execute("UPDATE state_versions SET version = %s WHERE kind = 'stations'", (version,))
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"stations {version}"))
        progress("committing")
    return ImportResult(len(features), added, changed, removed, version)


def _copy_in(
    conn: psycopg.Connection[tuple[Any, ...]],
    features: list[dict[str, Any]],
    version: int,
    progress: Callable[[str], None],
) -> int:
    with conn.cursor().copy("COPY features (id, pos, feature, etag, version) FROM STDIN") as cp:
        for pos, f in enumerate(features):
            cp.write_row((f["id"], pos, dumps(f), feature_etag(f), version))
            if (pos + 1) % PROGRESS_EVERY == 0:
                progress(f"written {pos + 1}/{len(features)}")
    progress(f"written {len(features)}/{len(features)}")
    return len(features)


def _merge(
    conn: psycopg.Connection[tuple[Any, ...]],
    path: Path,
    features: list[dict[str, Any]],
    existing: dict[str, tuple[str, int]],
    version: int,
    progress: Callable[[str], None],
) -> tuple[int, int, int, int]:
    """Write what differs from the stored registry, one audit row per feature."""
    at = datetime.now(UTC)
    new_ids = [str(f["id"]) for f in features]
    wanted = {fid: pos for pos, fid in enumerate(new_ids)}
    if any(existing[fid][1] != pos for fid, pos in wanted.items() if fid in existing):
        # Positions change (features reordered or removed): move every row out of the way.
        conn.execute("UPDATE features SET pos = -pos - 1")
        reorder = True
    else:
        reorder = False
    added = changed = removed = 0
    for n, (pos, f) in enumerate(enumerate(features), 1):
        fid = str(f["id"])
        tag = feature_etag(f)
        old = existing.get(fid)
        if old is not None and old[0] == tag:
            if reorder:
                conn.execute("UPDATE features SET pos = %s WHERE id = %s", (pos, fid))
            continue
        before_doc = None
        if old is not None:
            text = conn.execute(
                "SELECT feature::text FROM features WHERE id = %s", (fid,)
            ).fetchone()
            before_doc = orjson.loads(text[0]) if text else None
        version += 1
        entry = audit_entry("external", fid, before_doc, f, None, at, source=str(path))
        if old is None:
            conn.execute(
                "INSERT INTO features (id, pos, feature, etag, version) VALUES (%s, %s, %s::json, %s, %s)",
                (fid, pos, dumps(f), tag, version),
            )
            added += 1
        else:
            conn.execute(
                "UPDATE features SET pos = %s, feature = %s::json, etag = %s, version = %s WHERE id = %s",
                (pos, dumps(f), tag, version, fid),
            )
            changed += 1
        _audit(conn, version, fid, at, entry)
        if n % PROGRESS_EVERY == 0:
            progress(f"compared {n}/{len(features)}")
    for fid in sorted(set(existing) - set(wanted)):
        text = conn.execute("SELECT feature::text FROM features WHERE id = %s", (fid,)).fetchone()
        version += 1
        entry = audit_entry(
            "external",
            fid,
            orjson.loads(text[0]) if text else None,
            None,
            None,
            at,
            source=str(path),
        )
        conn.execute("DELETE FROM features WHERE id = %s", (fid,))
        _audit(conn, version, fid, at, entry)
        removed += 1
    return version, added, changed, removed


def _audit(
    conn: psycopg.Connection[tuple[Any, ...]],
    version: int,
    fid: str,
    at: datetime,
    entry: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO audit (registry_version, feature_id, at, action, entry) "
        "VALUES (%s, %s, %s, 'external', %s::json)",
        (version, fid, at, dumps(entry)),
    )


def export_registry(url: str, out: Path) -> int:
    """Write the database's registry to *out* (atomically); how many features.

    Raises
    ------
    InvalidInputError
        The database's schema is not current.
    psycopg.OperationalError
        The database cannot be reached.
    """
    with psycopg.connect(url) as conn:
        check_schema(conn)
        doc, rows, _ = load_document(conn, redact(url))
    write_json_atomic(out, doc)
    return len(rows)


__all__ = ["PROGRESS_EVERY", "ImportResult", "export_registry", "import_registry"]
