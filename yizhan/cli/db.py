"""``yizhan db upgrade | import | export``: the PostgreSQL database of a deployment.

The database is ``--database-url`` or ``YIZHAN_DATABASE_URL`` (docs/database.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from pydantic import ValidationError

from yizhan.errors import InvalidInputError, RegistryInvalidError, StorageUnavailableError
from yizhan.settings import Settings
from yizhan.storage.migrate import upgrade
from yizhan.storage.pg_transfer import export_registry, import_registry
from yizhan.storage.postgres import redact


def _url(args: argparse.Namespace) -> tuple[str, Settings]:
    settings = Settings()
    url = args.database_url or settings.database_url
    if not url:
        raise InvalidInputError(
            "--database-url", "Expected a PostgreSQL URL (or set YIZHAN_DATABASE_URL)"
        )
    return url_settings(settings, url)


def url_settings(settings: Settings, url: str) -> tuple[str, Settings]:
    """*settings* with the database *url*, checked like ``YIZHAN_DATABASE_URL``.

    Raises
    ------
    InvalidInputError
        Naming ``--database-url``.
    """
    try:
        checked = type(settings).model_validate({**settings.model_dump(), "database_url": url})
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidInputError("--database-url", msg) from None
    assert checked.database_url is not None
    return checked.database_url, checked


def _progress(quiet: bool) -> Any:
    start = time.monotonic()

    def say(text: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - start:6.1f} s] {text}", file=sys.stderr, flush=True)

    return say


def _unreachable(url: str, exc: psycopg.Error) -> StorageUnavailableError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageUnavailableError(f"database {redact(url)}: {first}")


def cmd_upgrade(args: argparse.Namespace) -> int:
    url, _ = _url(args)
    try:
        done = upgrade(url, _progress(args.quiet))
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from None
    print(
        f"{redact(url)}: " + (f"applied {', '.join(done)}" if done else "the schema is up to date")
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    url, settings = _url(args)
    try:
        result = import_registry(url, Path(args.registry), settings, _progress(args.quiet))
    except RegistryInvalidError as exc:
        for p in [*exc.report.errors, *exc.report.warnings]:
            print(p.format(), file=sys.stderr)
        print(f"{args.registry}: {exc.report.summary()}; nothing imported", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from None
    print(f"{args.registry} -> {redact(url)}: {result.summary()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    url, _ = _url(args)
    try:
        n = export_registry(url, Path(args.output))
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from None
    print(f"{redact(url)} -> {args.output}: {n} features")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "db",
        help="the PostgreSQL database: migrations, import and export of the registry",
        description="Manage the PostgreSQL (+PostGIS) database named by --database-url or "
        "YIZHAN_DATABASE_URL.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--database-url",
            default=None,
            help="postgresql://user@host/dbname (default: YIZHAN_DATABASE_URL)",
        )
        q.add_argument("-q", "--quiet", action="store_true", help="no progress messages")

    u = actions.add_parser(
        "upgrade",
        help="apply the pending migrations",
        description="Create or upgrade the schema (the ordered SQL files shipped with "
        "Yizhan); safe to run again and from several hosts at once.",
    )
    common(u)
    u.set_defaults(func=cmd_upgrade)

    i = actions.add_parser(
        "import",
        help="validate a registry file and write it to the database",
        description="Validate REGISTRY exactly as loading it would, then write it in one "
        "transaction (all or nothing). Into a database with a registry, each feature that "
        "differs is written with an audit entry (action external).",
    )
    i.add_argument("registry", metavar="REGISTRY.geojson")
    common(i)
    i.set_defaults(func=cmd_import)

    e = actions.add_parser(
        "export",
        help="write the database's registry to a GeoJSON file",
        description="Write the registry as a GeoJSON file: the imported document's own "
        "members and every feature as stored, in their order.",
    )
    e.add_argument("-o", "--output", required=True, metavar="FILE.geojson")
    common(e)
    e.set_defaults(func=cmd_export)
