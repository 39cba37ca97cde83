"""``yizhan history ID``: the changes to a station, from the registry's audit log (or the
database's audit table with ``YIZHAN_DATABASE_URL``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.settings import Settings
from yizhan.storage import opened_history

#: Members of an audit line that say how the file was written, not what changed.
_INTERNAL = ("file",)


def _fmt(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(value: str, name: str, least: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInputError(name, f"Expected a whole number, got {value!r}") from None
    if n < least:
        raise InvalidInputError(name, f"Expected {least} or more, got {n}")
    return n


def cmd_history(args: argparse.Namespace) -> int:
    settings = Settings()
    registry = Path(args.registry) if args.registry else settings.registry
    limit = _count(args.limit, "--limit", 1) if args.limit is not None else None
    cursor = _count(args.cursor, "--cursor", 0)
    with opened_history(settings, registry) as log:
        page = log.page(args.id, limit, cursor, args.newest)
        path = log.where
        if not page.total:
            if not log.exists:
                raise NotFoundError(f"no audit log for {registry} (expected {path})")
            raise NotFoundError(f"no changes to {args.id!r} in {path}")
    if args.json:
        for row in page.entries:
            drop = _INTERNAL if args.full else (*_INTERNAL, "before", "after")
            print(json.dumps({k: v for k, v in row.items() if k not in drop}, ensure_ascii=False))
    else:
        for row in page.entries:
            actor = row.get("actor") or {}
            who = f"{actor.get('name')} ({actor.get('role')})"
            reason = f" — {row['reason']}" if row.get("reason") else ""
            print(f"{row.get('at')}  {row.get('action'):<8} by {who}{reason}")
            for c in row.get("changes") or []:
                print(f"    {c['path']}: {_fmt(c['before'])} -> {_fmt(c['after'])}")
    shown = len(page.entries)
    more = (
        f"; {page.total - (page.next_cursor or 0)} more: --cursor {page.next_cursor}"
        if page.next_cursor is not None
        else ""
    )
    print(f"{shown} of {page.total} changes to {args.id} ({path}){more}", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "history",
        help="the changes to a station (from the audit log)",
        description="Print the changes to a station or bus, oldest first: when, what, who, "
        "and each changed field before and after. Only that station's lines of the log "
        "are read.",
    )
    p.add_argument("id", help="station or bus id")
    p.add_argument(
        "--registry", default=None, help="registry GeoJSON (default: YIZHAN_REGISTRY or bundled)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per change")
    p.add_argument("--full", action="store_true", help="with --json: each version before and after")
    p.add_argument("--limit", default=None, help="at most this many changes (default: all)")
    p.add_argument("--newest", action="store_true", help="newest first")
    p.add_argument(
        "--cursor",
        default="0",
        help="skip this many changes (from the oldest, or with --newest the newest): "
        "the number printed after a page",
    )
    p.set_defaults(func=cmd_history)
