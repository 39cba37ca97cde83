"""The ``yizhan`` command line.

Each topic lives in its own module with an ``add_parser(subparsers)`` function that
registers its sub-command and sets ``func``; this module only assembles them. Commands
print errors as ``yizhan <command>: <message>`` and exit non-zero, never a traceback.

The top of the layers: may import every other package (``api`` for ``yizhan serve``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from yizhan import __version__
from yizhan.errors import YizhanError

EXIT_INVALID = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yizhan",
        description="Yizhan (驿站): station registry, nearest-station API, coverage analysis and maps.",
    )
    parser.add_argument("--version", action="version", version=f"yizhan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Not a cycle: the commands' modules load numpy and the OpenMP runtime, so they are
    # imported only after main() has set OMP_NUM_THREADS for `serve` (see main).
    from yizhan.cli import (
        assets,
        awards,
        db,
        export,
        history,
        importing,
        network,
        planning,
        planning_map,
        poster,
        registry_cmds,
        tokens,
        usage,
    )

    registry_cmds.add_parsers(sub)
    importing.add_parsers(sub)
    planning.add_parsers(sub)
    planning_map.add_parsers(sub)
    poster.add_parsers(sub)
    tokens.add_parsers(sub)
    history.add_parsers(sub)
    assets.add_parsers(sub)
    export.add_parsers(sub)
    network.add_parsers(sub)
    db.add_parsers(sub)
    usage.add_parsers(sub)
    awards.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["serve"]:
        # A server answers one point per request: with more OpenMP threads, every single-point
        # KD-tree query waits for idle threads to wake (milliseconds on a busy machine). Must be
        # set before the OpenMP runtime loads, i.e. before the commands' modules are imported.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except YizhanError as exc:
        print(f"yizhan {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"yizhan {args.command}: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
