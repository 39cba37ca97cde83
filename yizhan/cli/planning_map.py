"""``yizhan map``: the planner map (HTML) of a registry and its study.

With ``--metric walk --minutes 15 --network FILE`` its headline, district table,
uncovered demand, gaps and suggested sites are on foot (the answers of ``yizhan
coverage|gaps|site --metric walk``), the ``--radius-m`` circles kept as a layer to compare;
with only ``--network`` the great-circle map gains the layer of areas within ``--minutes``
on foot. (Split from :mod:`yizhan.cli.planning`, whose study arguments it shares.)
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from yizhan.cli.planning import (
    amount_of,
    resolve_inputs,
    service_points_for,
    study_arguments,
    walking_for,
)
from yizhan.cli.registry_cmds import filter_from_args, walking_from_args
from yizhan.cli.steps import Steps
from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import select_stations
from yizhan.maps.study_map import coverage_map, station_flags
from yizhan.query.features import flags_today
from yizhan.query.proposals import proposals_geojson
from yizhan.query.studies import HOW_TO_ADD_DEMAND, load_study
from yizhan.query.walk_studies import walk_layers
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import Registry, load_registry
from yizhan.stations.reports import ReportStore
from yizhan.storage import opened_proposals


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "map",
        help="write the planner map (HTML) with coverage, gaps and suggested sites",
        description="One HTML map with toggleable layers: stations, coverage circles, uncovered "
        "demand (heat map), gap polygons, suggested sites, district coverage share, cooling buses.",
    )
    study_arguments(p)
    p.add_argument("-o", "--output", required=True, type=Path, help="HTML file to write")
    p.add_argument("--lang", choices=["zh", "en"], default="zh", help="label language (default zh)")
    p.add_argument(
        "--sites", type=int, default=0, metavar="N", help="also suggest N new sites (default 0)"
    )
    p.add_argument(
        "--assets",
        choices=["inline", "local", "cdn"],
        default="inline",
        help="inline: one file that opens offline (default); local: links /static/vendor/ "
        "as served by `yizhan serve`; cdn: public CDNs",
    )
    p.set_defaults(func=cmd_map)


def registry_flags(registry: Registry) -> tuple[dict[str, dict[str, Any]], int]:
    """Stale and needs-check stations of a registry file (its reports file, if any, is read),
    as the API computes them; and the staleness threshold in days."""
    settings = Settings()
    path = settings.state_file(registry.path, "reports", ".jsonl")
    if path is None or not path.exists():
        flags = flags_today(settings)
        return station_flags(registry, flags.stale_before), settings.stale_after_days
    reports = ReportStore(
        path,
        window_days=settings.report_window_days,
        threshold=settings.report_threshold,
    )
    flags = flags_today(settings, reports)
    marked = station_flags(registry, flags.stale_before, flags, reports.station_ids())
    return marked, settings.stale_after_days


def pending_proposals(registry: Registry) -> dict[str, Any] | None:
    """Stations suggested by workers and not yet decided, for the planner map: from the
    database (``YIZHAN_DATABASE_URL``) or the proposals file kept beside the registry
    (``None`` when there is none)."""
    with opened_proposals(Settings(), registry.path) as proposals:
        return None if proposals is None else proposals_geojson(proposals)


def cmd_map(args: argparse.Namespace) -> int:
    on_foot = walking_for(args)  # --metric walk without a network: an error naming --metric
    if args.sites < 0:
        raise InvalidInputError("--sites", f"Expected a whole number >= 0, got {args.sites}")
    inputs = resolve_inputs(args)
    spec = inputs.spec
    if spec is None and args.sites:
        raise InvalidInputError(
            "--sites", "siting needs demand: add --demand FILE or --districts FILE"
        )
    # registry, [demand, coverage, [gaps], [sites]], map, write
    extra = 0 if spec is None else 2 + (spec.districts is not None) + (args.sites > 0)
    # on foot: [areas within, coverage on foot]; else with a network: [areas within]
    walk_steps = (
        bool(args.network or Settings().network) if on_foot is None else 1 + (spec is not None)
    )
    steps = Steps(3 + extra + walk_steps, quiet=args.quiet)
    with steps.step(f"loading registry {inputs.registry}"):
        registry = load_registry(inputs.registry)
    study = None
    if spec is not None:
        with steps.step("building demand"):
            study = load_study(spec)
    args.radius_m = inputs.radius_m
    stations, mask, _ = service_points_for(args, registry)
    counted = select_stations(stations, mask)
    flags, stale_after_days = registry_flags(registry)
    zone = ZoneInfo(inputs.timezone)
    now = datetime.now(zone)
    open_at = _open_at(args)
    walking = on_foot or walking_from_args(args, Settings())
    walk = None
    if walking is not None and on_foot is None:
        with steps.step(f"areas within {args.minutes:g} min on foot"):
            walk = walk_layers(walking, registry, filter_from_args(args), args.minutes)
    fmap, result, _ = coverage_map(
        registry,
        study,
        radius_m=inputs.radius_m,
        flt=filter_from_args(args),
        n_sites=args.sites,
        lang=args.lang,
        assets=args.assets,
        step=steps.step,
        service=(counted.lon, counted.lat),
        flags=flags,
        stale_after_days=stale_after_days,
        when=now,
        open_at=open_at,
        # Cooling buses where their stops' hours put them today (placements are the
        # server's: /maps/coverage shows them).
        buses=registry.buses or None,
        timeline_date=(open_at or now).date(),
        tianditu_key=Settings().tianditu_key,
        add_demand=HOW_TO_ADD_DEMAND,
        proposals=pending_proposals(registry),
        walk=walk,
        walking=walking,
        metric=args.metric,
        minutes=args.minutes,
    )
    with steps.step(f"writing {args.output}"):
        html = fmap.get_root().render()
        tmp = args.output.with_name(f".{args.output.name}.tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(args.output)
    size = f"{len(html) / 1e6:.1f} MB"
    if result is None or study is None:
        print(
            f"{args.output}: planner map of {int(counted.lon.size):,} stations only, no demand "
            f"for this registry ({size}). To add demand: {HOW_TO_ADD_DEMAND}"
        )
        return 0
    within = f"{inputs.radius_m:g} m"
    if on_foot is not None:
        within = (
            f"{args.minutes:g} min on foot ({on_foot.speed_kmh:g} km/h, network {on_foot.source})"
        )
    print(
        f"{args.output}: planner map, {int(counted.lon.size):,} stations counted, "
        f"{result.covered_weight_pct:.1f} % of demand covered within {within} "
        f"({amount_of(result.covered_weight, result.total_weight, study)}; {size})"
    )
    return 0


def _open_at(args: argparse.Namespace) -> datetime | None:
    if args.open_at is None and args.open_for_min is None:
        return None
    return parse_time(args.open_at or "now", Settings().timezone, field="--open-at")
