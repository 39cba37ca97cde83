"""``yizhan awards --period 2026-07 [--district NAME]``: the best stations and station
managers of a month (or a year), as CSV, XLSX and a printable HTML report.

Writes ``awards-<period>[-<district>]-stations.csv``, ``…-managers.csv``, ``….xlsx`` and
``….html`` into ``--output-dir`` (default: the current directory). The rules of the ranking
and the weights (``yizhan/data/score-weights.toml``, or ``YIZHAN_SCORE_WEIGHTS``) are
printed in the report; see docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from yizhan.cli.usage import opened_usage
from yizhan.errors import InvalidInputError
from yizhan.query.awards import build_awards, manager_table, station_table, to_csv, to_html, to_xlsx
from yizhan.query.ranking import AuditEntries, StoreHistory, parse_award_period
from yizhan.stations.audit import AuditLog
from yizhan.stations.reports import ReportStore
from yizhan.stations.tokens import TokenStore

FORMATS = ("csv", "xlsx", "html")


def _formats(text: str) -> list[str]:
    wanted = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise InvalidInputError(
            "--format", f"Expected a comma-separated list of {', '.join(FORMATS)}, got {text!r}"
        )
    return wanted


def cmd_awards(args: argparse.Namespace) -> int:
    formats = _formats(args.format)
    with opened_usage(args) as (settings, search, stores, backend):
        period = parse_award_period(args.period, stores.today())
        reports: ReportStore | None
        audit: AuditEntries | None
        if backend is not None:  # a database: its reports, history and tokens
            reports, audit = backend.reports, StoreHistory(backend.stations)
            tokens = backend.tokens.records()
        else:
            registry = search.registry
            reports_path = settings.state_file(registry.path, "reports", ".jsonl")
            reports = (
                ReportStore(
                    reports_path, window_days=settings.report_window_days, salts=stores.salts
                )
                if reports_path is not None and reports_path.exists()
                else None
            )
            audit_path = settings.state_file(registry.path, "audit", ".jsonl")
            audit = AuditLog(audit_path) if audit_path is not None else None
            tokens = TokenStore(settings.state_file(registry.path, "tokens")).records()
        awards = build_awards(search, stores, reports, audit, tokens, period, args.district)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "awards-" + period.label
    if args.district:
        stem += "-" + re.sub(r"[^\w.-]+", "_", args.district)
    written = []
    if "csv" in formats:
        for kind, (head, rows) in (
            ("stations", station_table(awards)),
            ("managers", manager_table(awards)),
        ):
            p = out_dir / f"{stem}-{kind}.csv"
            p.write_text(to_csv(head, rows), encoding="utf-8")
            written.append(p)
    if "xlsx" in formats:
        p = out_dir / f"{stem}.xlsx"
        p.write_bytes(to_xlsx(awards))
        written.append(p)
    if "html" in formats:
        p = out_dir / f"{stem}.html"
        p.write_text(to_html(awards), encoding="utf-8")
        written.append(p)
    ranked = [r for r in awards.stations if r["ranked"]]
    print(
        f"{period.label} ({awards.district or 'network'}): {len(ranked)} stations ranked, "
        f"{len(awards.stations) - len(ranked)} not ranked; "
        f"{sum(1 for m in awards.managers if m['ranked'])} managers ranked"
        + (
            f"; {100 * awards.synthetic_share:.0f}% of visits SYNTHETIC"
            if awards.synthetic_share
            else ""
        )
    )
    for name, ranked_rows in awards.districts.items():
        if ranked_rows and ranked_rows[0]["ranked"]:
            top = ranked_rows[0]
            print(f"  {name or '(no district)'}: {top['name']} ({top['id']}) {top['score']}")
    for p in written:
        print(f"wrote {p}", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``yizhan awards``."""
    p = sub.add_parser(
        "awards",
        help="best stations and station managers of a period (CSV, XLSX, printable HTML)",
        description="Rank the stations by score within each district (or one) and the "
        "network, and the station managers; write CSV, XLSX and a printable HTML report.",
    )
    p.add_argument("--period", default=None, help="YYYY-MM or YYYY (default: this month)")
    p.add_argument("--district", default=None, help="only this district")
    p.add_argument("--registry", default=None, help="registry GeoJSON (default: YIZHAN_REGISTRY)")
    p.add_argument(
        "--database-url",
        default=None,
        help="the PostgreSQL database instead of the registry file (default: YIZHAN_DATABASE_URL)",
    )
    p.add_argument("--output-dir", "-o", default=".", help="where to write (default: here)")
    p.add_argument("--format", default="csv,xlsx,html", help="what to write (default: all three)")
    p.set_defaults(func=cmd_awards)


__all__ = ["add_parsers"]
