"""``yizhan usage``: synthetic check-ins for demos, a usage report, the usage map.

* ``yizhan usage generate --days 30 --seed 1`` writes **synthetic** visit counts (marked
  as such, with their parameters; :mod:`yizhan.query.usage_synth`) beside the registry;
* ``yizhan usage report [--from D] [--to D] [--district NAME] [--json]`` prints visits,
  visits per open hour and utilization per district (and the busiest stations);
* ``yizhan usage map -o usage.html`` writes the planner map with the usage layers
  (:mod:`yizhan.maps.usage_layers`).

With ``--database-url`` (or ``YIZHAN_DATABASE_URL``) the registry and the usage are the
database's (:func:`opened_usage`), as every API replica on it sees them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from yizhan.cli.db import url_settings
from yizhan.errors import InvalidInputError
from yizhan.maps import planner_map
from yizhan.maps.i18n import LANGS
from yizhan.maps.usage_layers import add_usage_layers
from yizhan.query.bus_moves import bus_moves
from yizhan.query.search import search_from_settings
from yizhan.query.studies import StudySpec, default_districts, load_study
from yizhan.query.usage_service import (
    UsageStores,
    analysis_usage,
    network_usage,
    parse_period,
    usage_stores,
)
from yizhan.query.usage_synth import SynthParams, write_synthetic
from yizhan.settings import Settings
from yizhan.stations.registry import load_registry
from yizhan.stations.search import StationSearch
from yizhan.storage import Backend, open_backend


@contextmanager
def opened_usage(
    args: argparse.Namespace,
) -> Iterator[tuple[Settings, StationSearch, UsageStores, Backend | None]]:
    """The settings, the search and the usage stores of ``--registry`` (files), or of the
    database of ``--database-url`` / ``YIZHAN_DATABASE_URL`` (and its backend); closed
    on exit.

    Raises
    ------
    InvalidInputError
        Naming ``--database-url``, or the registry or database that cannot be opened.
    StorageUnavailableError
        The database cannot be reached.
    """
    settings = Settings()
    if getattr(args, "database_url", None):
        _, settings = url_settings(settings, args.database_url)
    if settings.database_url:
        backend = open_backend(settings, read_only=True)
        try:
            yield (
                settings,
                backend.stations.search,
                usage_stores(settings, None, backend=backend),
                backend,
            )
        finally:
            backend.close()
        return
    path = Path(args.registry) if args.registry else settings.registry
    registry = load_registry(
        path, timezone=settings.timezone, holiday_country=settings.holiday_country
    )
    search = search_from_settings(settings, registry, read_only=True)
    stores = usage_stores(settings, registry.path)
    try:
        yield settings, search, stores, None
    finally:
        stores.close()


def _whole(value: str, name: str, least: int, most: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInputError(name, f"Expected a whole number, got {value!r}") from None
    if not least <= n <= most:
        raise InvalidInputError(name, f"Expected {least} to {most}, got {n}")
    return n


def cmd_generate(args: argparse.Namespace) -> int:
    with opened_usage(args) as (_, search, stores, _backend):
        if stores.visits is None:
            raise InvalidInputError("--registry", "Expected a registry file to write beside")
        today = stores.today()
        last = parse_period(args.end, args.end, today)[1] if args.end else today - timedelta(days=1)
        params = SynthParams(
            seed=_whole(args.seed, "--seed", 0, 2**32 - 1),
            days=_whole(args.days, "--days", 1, 731),
        )
        units = stores.units(search)
        cats: list[str | None] = [f["properties"].get("category") for f in search.registry.features]
        for bus in search.fleet.buses:
            cats += [bus["properties"].get("category")] * (len(bus["properties"]["stops"]) + 1)
        summary = write_synthetic(
            stores.visits, units, cats, last, params, exclude=set(stores.checkins.open_days())
        )
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(
            f"wrote {summary['days_written']} days of SYNTHETIC visits ({summary['visits']:,} "
            f"visits at {summary['units']} stations and bus stops, {summary['from']} to "
            f"{summary['to']}, seed {params.seed}) to {summary['directory']}"
        )
        if summary["days_with_real_data_kept"]:
            print("kept (real data): " + ", ".join(summary["days_with_real_data_kept"]))
    return 0


def _fmt(x: Any, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def cmd_report(args: argparse.Namespace) -> int:
    with opened_usage(args) as (_, search, stores, _backend):
        first, last = parse_period(args.from_, args.to, stores.today())
        out = analysis_usage(
            search, stores, first, last, args.district, _whole(args.limit, "--limit", 1, 100_000)
        )
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    share = out["synthetic_share"]
    note = f"  ({100 * share:.0f}% SYNTHETIC)" if share else ""
    print(f"usage {out['from']} to {out['to']}{note}")
    print(f"{'district':<14} {'units':>5} {'visits':>8} {'open h':>9} {'/open h':>8} {'util.':>7}")
    for d in out["districts"]:
        print(
            f"{(d['district'] or '(none)'):<14} {d['units']:>5} {d['visits']:>8,} "
            f"{_fmt(d['open_hours'], '9,.0f')} {_fmt(d['visits_per_open_hour'], '8.2f')} "
            f"{_fmt(d['utilization'], '7.3f')}"
        )
    print(f"\nbusiest ({len(out['units'])} of {out['units_matched']}):")
    for u in out["units"]:
        trend = _fmt(u["change_pct"], "+.0f") + "%" if u["change_pct"] is not None else ""
        print(
            f"  {u['visits']:>7,}  {_fmt(u['visits_per_open_hour'], '6.2f')}/h  "
            f"{u['name']} [{u['id']}{'/' + u['stop_id'] if u['stop_id'] else ''}] {trend}"
        )
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    with opened_usage(args) as (settings, search, stores, _backend):
        first, last = parse_period(args.from_, args.to, stores.today())
        usage = network_usage(search, stores, first, last)
        moves: list[dict[str, Any]] = []
        districts = settings.districts or default_districts(search.registry.path)
        if settings.demand is not None or districts is not None:
            study = load_study(
                StudySpec(
                    demand=settings.demand,
                    weight=settings.demand_weight,
                    districts=districts,
                    district_field=settings.district_field,
                    crs=settings.demand_crs,
                    hex_size_m=settings.hex_size_m,
                )
            )
            moves = bus_moves(search, usage, study.demand, last, radius_m=args.radius_m)
        reg = search.registry
        m = planner_map(reg, lang=args.lang, buses=reg.buses, assets="inline")
        add_usage_layers(m, usage, moves, lang=args.lang)
    m.save(args.output)
    print(f"wrote {args.output} ({len(moves)} bus move suggestions)", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``yizhan usage``."""
    p = sub.add_parser(
        "usage",
        help="visits and utilization: synthetic data for demos, reports, the usage map",
        description="Station usage (check-ins and recorded counts): generate synthetic "
        "visits for a demo, print a report per district, write the usage map.",
    )
    s = p.add_subparsers(dest="usage_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--registry", default=None, help="registry GeoJSON (default: YIZHAN_REGISTRY)"
        )
        q.add_argument(
            "--database-url",
            default=None,
            help="the PostgreSQL database instead of the registry file "
            "(default: YIZHAN_DATABASE_URL)",
        )

    g = s.add_parser(
        "generate",
        help="write SYNTHETIC visit counts (seeded, reproducible) for demos and tests",
        description="Write made-up visit counts for the registry's stations and bus stops, "
        "marked as synthetic with their parameters. Days holding real data are kept.",
    )
    common(g)
    g.add_argument("--days", default="30", help="how many days, ending --end (default 30)")
    g.add_argument("--seed", default="1", help="random seed (default 1)")
    g.add_argument("--end", default=None, help="last day, YYYY-MM-DD (default: yesterday)")
    g.add_argument("--json", action="store_true", help="print the summary as JSON")
    g.set_defaults(func=cmd_generate)

    r = s.add_parser("report", help="visits, per open hour and utilization per district")
    common(r)
    r.add_argument("--from", dest="from_", default=None, help="first day (default: 28 days ago)")
    r.add_argument("--to", default=None, help="last day (default: today)")
    r.add_argument("--district", default=None, help="only this district")
    r.add_argument("--limit", default="10", help="how many of the busiest to list (default 10)")
    r.add_argument("--json", action="store_true", help="the answer of GET /analysis/usage")
    r.set_defaults(func=cmd_report)

    m = s.add_parser("map", help="the planner map with the usage layers (one offline HTML file)")
    common(m)
    m.add_argument("-o", "--output", required=True, help="HTML file to write")
    m.add_argument("--from", dest="from_", default=None, help="first day (default: 28 days ago)")
    m.add_argument("--to", default=None, help="last day (default: today)")
    m.add_argument("--lang", choices=LANGS, default="zh", help="map language (default zh)")
    m.add_argument("--radius-m", type=float, default=1000.0, help="service radius for bus moves")
    m.set_defaults(func=cmd_map)


__all__ = ["add_parsers"]
