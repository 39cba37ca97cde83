"""``yizhan coverage``, ``yizhan gaps``, ``yizhan site`` and ``yizhan map``: tools for planners.

Each takes a registry and a study (demand and districts: files, or a bundled study with
``--study zhengzhou|seoul``). ``yizhan map`` on a registry without demand draws the
stations alone and says how to add demand; the others need demand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from yizhan.cli.registry_cmds import (
    add_filter_arguments,
    filter_from_args,
    positive_int,
    walking_from_args,
)
from yizhan.cli.steps import Steps
from yizhan.errors import InvalidInputError
from yizhan.geo.access import two_step_fca
from yizhan.geo.coverage import (
    CoverageResult,
    coverage,
    gap_polygons,
    gaps_geojson,
    select_stations,
)
from yizhan.geo.crs import CRS_NAMES
from yizhan.geo.siting import site_mclp
from yizhan.maps.study_map import coverage_map, station_flags
from yizhan.query.demand_files import load_points
from yizhan.query.features import flags_today
from yizhan.query.proposals import proposals_geojson
from yizhan.query.search import search_from_settings, service_points
from yizhan.query.studies import (
    BUNDLED_STUDIES,
    HOW_TO_ADD_DEMAND,
    BundledStudy,
    Study,
    StudySpec,
    bundled_study,
    bundled_study_for,
    load_study,
)
from yizhan.query.walk_studies import (
    side_by_side,
    walk_coverage,
    walk_gap_polygons,
    walk_layers,
    walk_members,
    walk_siting_inputs,
)
from yizhan.query.walking import METRICS, Walking, require
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.jsonio import write_json_atomic
from yizhan.stations.registry import Registry, load_registry
from yizhan.stations.reports import ReportStore
from yizhan.storage import opened_proposals


def positive_number(kind: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"Expected a number of {kind}, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"Expected a number of {kind} > 0, got {text!r}")
        return value

    return parse


def _study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "registry", nargs="?", help="registry GeoJSON (default with --study: the study's own)"
    )
    g = p.add_argument_group("demand and study area")
    g.add_argument(
        "--study",
        choices=sorted(BUNDLED_STUDIES),
        help="a bundled study: its registry, demand, districts and radius (zhengzhou: union "
        "stations over a grid of land area; seoul: heat shelters and the people aged 65+ "
        "of each neighbourhood, within 500 m)",
    )
    g.add_argument("--demand", type=Path, help="demand points (CSV/GeoJSON) or polygons (GeoJSON)")
    g.add_argument(
        "--weight", help="weight column of the demand (workers, population …); default 1 per point"
    )
    g.add_argument(
        "--districts",
        type=Path,
        help="district polygons (GeoJSON) for per-district results; without --demand, a hexagon grid over "
        "them is the demand. Default for the bundled registry: the bundled Zhengzhou districts",
    )
    g.add_argument(
        "--district-field", default="name", help="property with the district name (default: name)"
    )
    g.add_argument(
        "--crs",
        choices=CRS_NAMES,
        default="wgs84",
        help="coordinate system of the demand and district files",
    )
    g.add_argument(
        "--hex-size-m",
        type=positive_number("metres"),
        default=500.0,
        help="hexagon size for grid demand (default 500)",
    )
    p.add_argument(
        "--radius-m",
        type=positive_number("metres"),
        default=None,
        help="coverage radius (default 1000, or the bundled study's own: seoul 500)",
    )
    add_filter_arguments(p)
    t = p.add_argument_group("time (stations open then, cooling buses where they stand then)")
    t.add_argument(
        "--open-at", metavar="TIME", help="now or ISO 8601 (naive = the registry's zone)"
    )
    t.add_argument(
        "--open-for-min", type=positive_int, metavar="N", help="and staying open N more minutes"
    )
    w = p.add_argument_group("walking (docs/walking.md)")
    w.add_argument(
        "--metric",
        choices=METRICS,
        default="great_circle",
        help="great_circle (default: within --radius-m) or walk: within --minutes on foot "
        "along the street network of --network",
    )
    w.add_argument(
        "--minutes",
        type=positive_number("minutes"),
        default=15.0,
        help="with --metric walk: the walk that counts as covered (default 15)",
    )
    w.add_argument("--network", metavar="FILE", help="walking network (default YIZHAN_NETWORK)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _walking(args: argparse.Namespace) -> Walking | None:
    """The walking network when ``--metric walk`` (an error naming --metric without one)."""
    if args.metric != "walk":
        return None
    try:
        return require(walking_from_args(args, Settings()), "walk")
    except InvalidInputError as exc:
        raise InvalidInputError("--metric", exc.message) from None


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "coverage",
        help="share of demand within reach of a station, per district",
        description="Weighted share of demand with a station within --radius-m, per district, "
        "with the distance-to-nearest distribution.",
    )
    _study_arguments(p)
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a summary")
    p.add_argument(
        "--access",
        action="store_true",
        help="also two-step floating catchment (2SFCA) accessibility per district, using station "
        "capacity where known (10 places where not)",
    )
    p.set_defaults(func=cmd_coverage)

    p = sub.add_parser(
        "gaps",
        help="write gap polygons and uncovered demand as GeoJSON",
        description="Gap polygons (study area farther than --radius-m from every station) and the "
        "uncovered demand points, as one GeoJSON FeatureCollection.",
    )
    _study_arguments(p)
    p.add_argument("-o", "--output", required=True, type=Path, help="GeoJSON file to write")
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser(
        "site",
        help="suggest where N new stations cover the most uncovered demand",
        description="Maximal covering location problem, solved exactly (HiGHS) with the greedy "
        "answer and its gap reported. Existing stations are kept.",
    )
    _study_arguments(p)
    p.add_argument("--new", type=positive_int, required=True, help="how many new stations")
    p.add_argument(
        "--candidates",
        type=Path,
        help="candidate sites (CSV/GeoJSON points); default: uncovered demand",
    )
    p.add_argument(
        "--time-limit-s",
        type=positive_number("seconds"),
        default=60.0,
        help="solver time limit (default 60)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="GeoJSON file to write the suggested sites to",
    )
    p.set_defaults(func=cmd_site)

    p = sub.add_parser(
        "map",
        help="write the planner map (HTML) with coverage, gaps and suggested sites",
        description="One HTML map with toggleable layers: stations, coverage circles, uncovered "
        "demand (heat map), gap polygons, suggested sites, district coverage share, cooling buses.",
    )
    _study_arguments(p)
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


@dataclass(frozen=True)
class Inputs:
    """What a planning command runs on, resolved from its arguments before any loading."""

    registry: Path
    spec: StudySpec | None
    bundled: BundledStudy | None
    radius_m: float

    @property
    def timezone(self) -> str:
        """The zone times are shown in: the bundled study's, else the settings'."""
        return self.bundled.timezone if self.bundled is not None else Settings().timezone


def resolve_inputs(args: argparse.Namespace) -> Inputs:
    """The registry, study and radius the arguments name.

    ``--study NAME`` gives a bundled study (its registry unless one is given); a bundled
    registry brings its own study; ``--demand``/``--districts`` replace the demand. Without
    any of them the study is ``None`` (a registry of one's own, no demand). The radius is
    ``--radius-m``, else the bundled study's (when its demand is used), else 1000 m.

    Raises
    ------
    InvalidInputError
        Neither a registry nor ``--study``.
    """
    bundled = bundled_study(args.study) if args.study else None
    if args.registry is not None:
        registry = Path(args.registry)
    elif bundled is not None:
        registry = bundled.registry
    else:
        raise InvalidInputError("registry", "Expected a registry file or --study NAME, got neither")
    if bundled is None:
        bundled = bundled_study_for(registry)
    spec: StudySpec | None = None
    radius = 1000.0
    if args.demand is not None or args.districts is not None:
        spec = StudySpec(
            demand=args.demand,
            weight=args.weight,
            districts=args.districts,
            district_field=args.district_field,
            crs=args.crs,
            hex_size_m=args.hex_size_m,
        )
    elif bundled is not None:
        spec = dataclasses.replace(bundled.spec, hex_size_m=args.hex_size_m)
        radius = bundled.radius_m
    if args.radius_m is not None:
        radius = args.radius_m
    return Inputs(registry, spec, bundled, float(radius))


def _prepare(args: argparse.Namespace, steps: Steps) -> tuple[Registry, Study, Inputs]:
    """Load the registry and the study (which the commands but ``map`` need)."""
    inputs = resolve_inputs(args)
    if inputs.spec is None:
        raise InvalidInputError(
            "--demand",
            "Expected --demand FILE or --districts FILE (for a hexagon grid), or --study NAME, "
            "got none of them",
        )
    with steps.step(f"loading registry {inputs.registry}"):
        registry = load_registry(inputs.registry)
    with steps.step("building demand"):
        study = load_study(inputs.spec)
    args.radius_m = inputs.radius_m
    return registry, study, inputs


def _service(args: argparse.Namespace, registry: Registry) -> tuple[Any, Any, str]:
    """Which stations (and buses) count (see :func:`yizhan.stations.search.service_points`)."""
    settings = Settings()
    at = None
    if args.open_at is not None or args.open_for_min is not None:
        at = parse_time(args.open_at or "now", settings.timezone, field="--open-at")
    return service_points(
        registry,
        filter_from_args(args),
        at,
        args.open_for_min,
        lambda: search_from_settings(settings, registry, read_only=True),
    )


def _coverage(
    args: argparse.Namespace, registry: Registry, study: Study, steps: Steps
) -> tuple[CoverageResult, tuple[Any, Any, str]]:
    service = _service(args, registry)
    with steps.step(f"coverage of {study.demand.n:,} demand points within {args.radius_m:g} m"):
        result = coverage(service[0], study.demand, args.radius_m, service[1])
    walking = _walking(args)
    if walking is not None:
        args.great_circle = result
        with steps.step(f"coverage within {args.minutes:g} min on foot (one multi-source search)"):
            result = walk_coverage(walking, service[0], study.demand, args.minutes, service[1])
    return result, service


def cmd_coverage(args: argparse.Namespace) -> int:
    if args.metric == "walk" and args.access:
        raise InvalidInputError(
            "--access", "2SFCA is by great-circle distance only; drop --metric walk"
        )
    steps = Steps(3 + args.access + (args.metric == "walk"), quiet=args.quiet)
    registry, study, _ = _prepare(args, steps)
    result, (stations, mask, described) = _coverage(args, registry, study, steps)
    access = None
    if args.access:
        with steps.step("two-step floating catchment (2SFCA)"):
            access = two_step_fca(stations, study.demand, args.radius_m, mask)
    if args.json:
        out = result.to_dict()
        out["demand"] = study.description
        out["stations"] = described
        if access is not None:
            out["access"] = access.to_dict()
        if args.metric == "walk":
            out.update(_walk_json(args, result))
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    within = None
    if args.metric == "walk":
        within = f"{args.minutes:g} min on foot ({result.radius_m:,.0f} m along streets)"
    print(summary_text(result, study, described, within))
    if access is not None:
        print(access_text(access))
    if args.metric == "walk":
        print(side_by_side_text(args, result))
    return 0


def _walk_json(args: argparse.Namespace, result: CoverageResult) -> dict[str, Any]:
    """What ``coverage --metric walk --json`` adds (see :func:`walk_members`)."""
    walking = _walking(args)
    assert walking is not None
    return walk_members(walking, args.great_circle, result, args.minutes)


def side_by_side_text(args: argparse.Namespace, result: CoverageResult) -> str:
    """The per-district table: covered within the radius by great circle vs on foot."""
    gc = args.great_circle
    walk_col = f"{args.minutes:g} min walk"
    lines = [
        "",
        f"Covered within {gc.radius_m:g} m (great circle) vs within {args.minutes:g} minutes on "
        f"foot ({result.radius_m:,.0f} m along streets):",
        f"{'district':<14} {'demand':>10} {f'{gc.radius_m:g} m':>9} {walk_col:>12} {'change':>8}",
    ]
    for row in side_by_side(gc, result):
        lines.append(
            f"{_ljust(str(row['district']), 14)} {row['demand']:>10,.1f} "
            f"{row['great_circle_pct']:>8.1f}% {row['walk_pct']:>11.1f}% "
            f"{row['difference_pct']:>+7.1f}"
        )
    return "\n".join(lines)


def access_text(access: Any) -> str:
    """A readable 2SFCA table: places per 1,000 of demand within reach, per district."""
    lines = [
        "",
        f"Accessibility (2SFCA within {access.radius_m:g} m): {access.mean_access * 1000:,.2f} places per "
        f"1,000 {access.weight_name}; {access.no_access_pct:.1f} % of demand has none "
        f"({access.capacity_defaulted} stations without capacity counted as 10 places)",
    ]
    if access.per_district:
        lines.append(f"{'district':<14} {'places/1000':>12} {'no access':>10}")
        for row in access.per_district:
            per = row.get("access_per_1000")
            lines.append(
                f"{_ljust(str(row['district'] or '(outside)'), 14)} "
                f"{('-' if per is None else f'{per:,.2f}'):>12} {row['no_access_pct']:>9.1f}%"
            )
    return "\n".join(lines)


def summary_text(
    result: CoverageResult, study: Study, stations: str, within: str | None = None
) -> str:
    """A readable coverage report (*within* names the reach, default the radius)."""
    lines = [
        f"Demand: {study.description}",
        f"Counted: {stations}",
        f"Covered within {within or f'{result.radius_m:g} m'}: {result.covered_weight_pct:.1f} % "
        f"({_of(result.covered_weight, result.total_weight, study)})",
        f"{'Walk' if within else 'Distance'} to nearest station: p50 {_m(result.distance_p50_m)}, p90 {_m(result.distance_p90_m)}, "
        f"max {_m(result.distance_max_m)}",
    ]
    if result.per_district:
        lines.append("")
        lines.append(
            f"{'district':<14} {'demand':>10} {'covered':>10} {'share':>7} {'stations':>8} {'demand/station':>15}"
        )
        for row in result.per_district:
            dps = row.get("demand_per_station")
            lines.append(
                f"{_ljust(str(row['district'] or '(outside)'), 14)} {row['demand']:>10,.1f} {row['covered']:>10,.1f} "
                f"{row['share_pct']:>6.1f}% {row['stations']:>8} {('-' if dps is None else f'{dps:,.1f}'):>15}"
            )
    return "\n".join(lines)


def _ljust(text: str, width: int) -> str:
    """Left-justify counting East Asian wide characters as two columns."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


def _m(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v / 1000:.2f} km" if v >= 1000 else f"{v:.0f} m"


def cmd_gaps(args: argparse.Namespace) -> int:
    steps = Steps(5, quiet=args.quiet)
    registry, study, _ = _prepare(args, steps)
    result, (stations, mask, _) = _coverage(args, registry, study, steps)
    counted = select_stations(stations, mask)
    feats: list[dict[str, Any]] = []
    with steps.step("gap polygons"):
        if study.area is not None:
            walking = _walking(args)
            gaps = (
                gap_polygons(study.area, counted.lon, counted.lat, args.radius_m)
                if walking is None
                else walk_gap_polygons(walking, study.area, counted.lon, counted.lat, args.minutes)
            )
            for f in gaps_geojson(gaps, study.demand, districts=study.districts)["features"]:
                f["properties"] = {"layer": "gap", **f["properties"]}
                feats.append(f)
    with steps.step(f"writing {args.output}"):
        unc = result.uncovered_demand()
        labels = unc.district_labels()
        for i in np.argsort(-unc.weight, kind="stable").tolist():
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "Point",
                        "coordinates": [round(float(unc.lon[i]), 7), round(float(unc.lat[i]), 7)],
                    },
                    "properties": {
                        "layer": "uncovered_demand",
                        "weight": float(unc.weight[i]),
                        "district": labels[i],
                    },
                }
            )
        write_json_atomic(
            args.output,
            {
                "type": "FeatureCollection",
                "radius_m": result.radius_m,
                **({"metric": "walk", "minutes": args.minutes} if args.metric == "walk" else {}),
                "covered_weight_pct": result.covered_weight_pct,
                "demand": study.description,
                "features": feats,
            },
        )
    n_gaps = sum(1 for f in feats if f["properties"]["layer"] == "gap")
    print(
        f"{args.output}: {n_gaps} gap polygons, {len(feats) - n_gaps} uncovered demand points "
        f"({_amount(result.uncovered_weight, study)})"
    )
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    steps = Steps(4, quiet=args.quiet)
    registry, study, _ = _prepare(args, steps)
    stations, mask, described = _service(args, registry)
    counted = select_stations(stations, mask)
    print(f"Counted: {described}")
    cand_lon = cand_lat = None
    if args.candidates is not None:
        if not args.candidates.exists():
            raise InvalidInputError("--candidates", f"no such file: {args.candidates}")
        cands = load_points(args.candidates, None, crs=args.crs)
        cand_lon, cand_lat = cands.lon, cands.lat
    walking = _walking(args)
    seam: dict[str, Any] = {}
    if walking is not None:
        radius, cover, covered = walk_siting_inputs(
            walking, counted.lon, counted.lat, study.demand, args.minutes
        )
        args.radius_m, seam = radius, {"cover": cover, "covered": covered}
    with steps.step(f"siting {args.new} new stations (exact MCLP, HiGHS)"):
        result = site_mclp(
            study.demand,
            counted.lon,
            counted.lat,
            cand_lon,
            cand_lat,
            n_new=args.new,
            radius_m=args.radius_m,
            time_limit_s=args.time_limit_s,
            **seam,
        )
    with steps.step(f"writing {args.output}"):
        write_json_atomic(args.output, result.to_geojson())
    d = result.to_dict()
    within = f"{args.minutes:g} min on foot" if walking is not None else f"{args.radius_m:g} m"
    print(
        f"Covered within {within}: {d['covered_before_pct']:.1f} % now, "
        f"{d['covered_after_pct']:.1f} % with {len(result.chosen)} new stations ({d['status']})"
    )
    print(f"Greedy answer: {d['greedy_gap_pct']:.2f} % below the optimum")
    for rank, (lon, lat, gain) in enumerate(
        zip(result.lon, result.lat, result.gains, strict=True), 1
    ):
        print(f"{rank:>3}. {float(lon):.6f}, {float(lat):.6f}  +{float(gain):,.1f}")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


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
    if args.metric == "walk":
        raise InvalidInputError(
            "--metric",
            "the map's coverage, gaps and sites are by great circle; give --network FILE "
            "(without --metric walk) to add the layer of areas within --minutes on foot",
        )
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
    steps = Steps(3 + extra + bool(args.network or Settings().network), quiet=args.quiet)
    with steps.step(f"loading registry {inputs.registry}"):
        registry = load_registry(inputs.registry)
    study = None
    if spec is not None:
        with steps.step("building demand"):
            study = load_study(spec)
    args.radius_m = inputs.radius_m
    stations, mask, _ = _service(args, registry)
    counted = select_stations(stations, mask)
    flags, stale_after_days = registry_flags(registry)
    zone = ZoneInfo(inputs.timezone)
    now = datetime.now(zone)
    open_at = _open_at(args)
    walking = walking_from_args(args, Settings())
    walk = None
    if walking is not None:
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
    print(
        f"{args.output}: planner map, {int(counted.lon.size):,} stations counted, "
        f"{result.covered_weight_pct:.1f} % of demand covered within {inputs.radius_m:g} m "
        f"({_of(result.covered_weight, result.total_weight, study)}; {size})"
    )
    return 0


def _open_at(args: argparse.Namespace) -> datetime | None:
    if args.open_at is None and args.open_for_min is None:
        return None
    return parse_time(args.open_at or "now", Settings().timezone, field="--open-at")


def _amount(value: float, study: Study) -> str:
    return f"{value:,.{study.meaning.digits}f} {study.meaning.unit('en')}"


def _of(part: float, total: float, study: Study) -> str:
    """``1,837,230 of 1,948,544 people aged 65+``."""
    return f"{part:,.{study.meaning.digits}f} of {_amount(total, study)}"
