"""``yizhan history ID``: every change to a station, from the registry's audit log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from yizhan.errors import NotFoundError
from yizhan.settings import Settings
from yizhan.stations.audit import AuditLog


def _fmt(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def cmd_history(args: argparse.Namespace) -> int:
    settings = Settings()
    registry = Path(args.registry) if args.registry else settings.registry
    path = settings.state_file(registry, "audit", ".jsonl")
    assert path is not None
    rows = AuditLog(path).entries(args.id)
    if not rows:
        if not path.exists():
            raise NotFoundError(f"no audit log for {registry} (expected {path})")
        raise NotFoundError(f"no changes to {args.id!r} in {path}")
    if args.json:
        for row in rows:
            if not args.full:
                row = {k: v for k, v in row.items() if k not in ("before", "after")}
            print(json.dumps(row, ensure_ascii=False))
        return 0
    for row in rows:
        actor = row.get("actor") or {}
        who = f"{actor.get('name')} ({actor.get('role')})"
        reason = f" — {row['reason']}" if row.get("reason") else ""
        print(f"{row.get('at')}  {row.get('action'):<8} by {who}{reason}")
        for c in row.get("changes") or []:
            print(f"    {c['path']}: {_fmt(c['before'])} -> {_fmt(c['after'])}")
    print(f"{len(rows)} changes to {args.id} ({path})", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "history",
        help="every change to a station (from the audit log)",
        description="Print every change to a station or bus, oldest first: when, what, who, "
        "and each changed field before and after.",
    )
    p.add_argument("id", help="station or bus id")
    p.add_argument(
        "--registry", default=None, help="registry GeoJSON (default: YIZHAN_REGISTRY or bundled)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per change")
    p.add_argument("--full", action="store_true", help="with --json: each version before and after")
    p.set_defaults(func=cmd_history)
