"""``yizhan assets fetch|check|list|path``: the maps' vendored JavaScript and CSS.

``make venv`` runs ``yizhan assets fetch`` once; maps and the workers' page then work
without internet access. The files, their pins and the fetcher are :mod:`yizhan.assets`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from yizhan import assets


def add_parsers(sub: Any) -> None:
    """Register ``yizhan assets`` and its sub-commands."""
    p = sub.add_parser(
        "assets",
        help="fetch the maps' JavaScript/CSS from the npm registry (once, at set-up)",
        description="Fetch, check or list the maps' JavaScript/CSS, pinned and verified "
        "(sha512), so that maps and pages work offline.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    f = actions.add_parser(
        "fetch",
        help="download what is missing (quiet when all is present)",
        description="Download, verify and unpack every package that is missing; packages "
        "already present are skipped without network access.",
    )
    f.add_argument("--dest", type=Path, help="target directory (default: `yizhan assets path`)")
    f.add_argument("--registry", help="npm registry URL (default: $YIZHAN_NPM_REGISTRY or npmjs)")
    f.add_argument("--force", action="store_true", help="fetch again even when present")
    f.set_defaults(func=cmd_fetch)

    c = actions.add_parser(
        "check", help="exit 1 if anything is missing", description="List what is missing."
    )
    c.add_argument("--dest", type=Path, help="directory to check (default: `yizhan assets path`)")
    c.set_defaults(func=cmd_check)

    ls = actions.add_parser(
        "list", help="packages, versions and licences", description="List the packages."
    )
    ls.set_defaults(func=cmd_list)

    path = actions.add_parser(
        "path", help="print the vendor directory", description="Print the vendor directory."
    )
    path.set_defaults(func=cmd_path)


def cmd_fetch(args: argparse.Namespace) -> int:
    assets.fetch(
        args.dest,
        registry=args.registry,
        force=args.force,
        log=lambda line: print(line, file=sys.stderr),
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    lost = assets.missing(args.dest)
    for src in lost:
        print(f"missing: {assets.describe(src)}", file=sys.stderr)
    if lost:
        print(f"run: {assets.FETCH_COMMAND}", file=sys.stderr)
        return 1
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for src in assets.PACKAGES:
        print(assets.describe(src))
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    print(assets.vendor_dir())
    return 0
