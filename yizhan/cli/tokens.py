"""``yizhan token create|list|revoke``: the bearer tokens of managers, operators and admins.

Tokens live in ``<registry>.tokens.json`` (or under ``YIZHAN_STATE_DIR``), or with
``YIZHAN_DATABASE_URL`` in the database; a running server notices a change within a request
(files) or within a second (PostgreSQL), so there is no need to restart it.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from yizhan.errors import InvalidInputError
from yizhan.settings import Settings
from yizhan.stations.tokens import TOKEN_ROLES, TokenRecord, TokenStore
from yizhan.storage import feature_scopes, opened_tokens

REGISTRY_HELP = (
    "registry GeoJSON whose tokens to manage (default: YIZHAN_REGISTRY or the bundled one)"
)


def add_parsers(sub: Any) -> None:
    """Register ``yizhan token`` and its sub-commands."""
    p = sub.add_parser(
        "token",
        help="create, list and revoke bearer tokens (managers, operators, admins)",
        description="Manage the bearer tokens kept beside a registry. A running server picks "
        "up changes without a restart.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    c = actions.add_parser(
        "create",
        help="create a token and print it (once)",
        description="Create a token. The token is printed once, alone on stdout; it is not "
        "stored and cannot be shown again.",
    )
    c.add_argument("--role", required=True, choices=TOKEN_ROLES)
    c.add_argument("--name", required=True, help="who holds the token (shown in the audit trail)")
    c.add_argument(
        "--station",
        action="append",
        default=[],
        metavar="ID",
        help="a station a manager may edit and verify; repeat for several",
    )
    c.add_argument(
        "--operator", metavar="NAME", help="operator name, as in the registry's `operator`"
    )
    c.add_argument("--registry", default=None, help=REGISTRY_HELP)
    c.set_defaults(func=cmd_create)

    ls = actions.add_parser(
        "list", help="list tokens (never the tokens themselves)", description="List tokens."
    )
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.add_argument("--registry", default=None, help=REGISTRY_HELP)
    ls.set_defaults(func=cmd_list)

    r = actions.add_parser(
        "revoke",
        help="revoke a token by its id",
        description="Revoke a token: from the next request on it is refused.",
    )
    r.add_argument("token_id", metavar="TOKEN_ID", help="the id shown by `yizhan token list`")
    r.add_argument("--registry", default=None, help=REGISTRY_HELP)
    r.set_defaults(func=cmd_revoke)


def _registry_path(args: argparse.Namespace, settings: Any) -> Path:
    return Path(args.registry) if args.registry else Path(settings.registry)


def _store(args: argparse.Namespace) -> AbstractContextManager[TokenStore]:
    """The token store: the database's (YIZHAN_DATABASE_URL) or the registry's token file."""
    settings = Settings()
    return opened_tokens(settings, _registry_path(args, settings))


def _check_scope(args: argparse.Namespace) -> None:
    """Refuse station ids the registry does not have; warn about an unknown operator."""
    if args.role not in ("manager", "operator"):
        return
    settings = Settings()
    path, features = feature_scopes(settings, _registry_path(args, settings))
    if args.role == "manager":
        known = {fid for fid, _ in features}
        unknown = [s for s in dict.fromkeys(args.station) if s not in known]
        if unknown:
            hints = [
                f"{s!r} (did you mean {m[0]!r}?)" if m else repr(s)
                for s in unknown
                for m in [difflib.get_close_matches(s, known, n=1)]
            ]
            raise InvalidInputError(
                "--station",
                f"Expected ids of stations in {path}, got unknown {', '.join(hints)}",
            )
    elif args.operator is not None:
        operators = {str(op) for _, op in features if op}
        if args.operator.strip() not in operators:
            close = difflib.get_close_matches(args.operator, operators, n=3)
            hint = f" (similar: {', '.join(repr(o) for o in close)})" if close else ""
            print(
                f"yizhan token: warning: no station or bus in {path} has operator "
                f"{args.operator!r}{hint}; the token will only be able to add new stations",
                file=sys.stderr,
            )


def cmd_create(args: argparse.Namespace) -> int:
    _check_scope(args)
    with _store(args) as store:
        token, record = store.create(
            args.role, name=args.name, stations=args.station, operator=args.operator
        )
    print(token, flush=True)
    print(
        f"Token {record.token_id} ({record.role} {record.name!r}) may {record.scope()}.\n"
        "It is shown only this once and cannot be shown again: give it to its holder now. "
        f"Revoke it with: yizhan token revoke {record.token_id}",
        file=sys.stderr,
    )
    return 0


def _row(r: TokenRecord) -> list[str]:
    scope = ", ".join(r.stations) if r.role == "manager" else (r.operator or "*")
    return [
        r.token_id,
        r.role,
        r.name,
        scope,
        r.created_at.isoformat(timespec="seconds") if r.created_at else "",
        r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-",
    ]


def cmd_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        records = store.records()
    if args.json:
        print(json.dumps([r.as_dict() for r in records], ensure_ascii=False, indent=2))
        return 0
    rows = [["ID", "ROLE", "NAME", "STATIONS/OPERATOR", "CREATED", "REVOKED"]]
    rows += [_row(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    settings = Settings()
    n_env = len(settings.admin_tokens) + len(settings.operator_tokens)
    if n_env:
        print(
            f"(and {n_env} tokens from YIZHAN_ADMIN_TOKENS / YIZHAN_OPERATOR_TOKENS, not listed)",
            file=sys.stderr,
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _store(args) as store:
        before = {r.token_id: r.revoked_at for r in store.records()}
        record = store.revoke(args.token_id)
    assert record.revoked_at is not None
    when = record.revoked_at.isoformat(timespec="seconds")
    if before.get(record.token_id) is not None:
        print(f"{record.token_id} ({record.role} {record.name!r}) was already revoked at {when}")
    else:
        print(f"revoked {record.token_id} ({record.role} {record.name!r}) at {when}")
    return 0
