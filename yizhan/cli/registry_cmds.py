"""``yizhan validate``, ``yizhan nearest`` and ``yizhan serve`` (files or PostgreSQL, one or
several worker processes)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import datetime
from typing import Any

import psycopg
import uvicorn
from pydantic import ValidationError

from yizhan.api import create_app
from yizhan.cli.serving import WorkerGuardedHttpTools, install_log_limits, uvicorn_options
from yizhan.errors import RegistryInvalidError, StorageUnavailableError
from yizhan.geo.crs import CRS_NAMES, parse_crs
from yizhan.query.nearest import nearest_collection
from yizhan.query.search import search_from_settings
from yizhan.query.walk_studies import far_from_network
from yizhan.query.walking import METRICS, Walking, require
from yizhan.settings import Settings
from yizhan.stations.hours import parse_time
from yizhan.stations.registry import StationFilter, check_file, load_registry
from yizhan.stations.vocab import Amenity, Category, Kind, Status
from yizhan.storage.migrate import check_schema
from yizhan.storage.postgres import redact


def _finite(kind: str, lo: float, hi: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"Expected a number, got {text!r}") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"Expected a {kind} in {lo:g}..{hi:g}, got {text!r}")
        return value

    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"Expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"Expected a whole number >= 1, got {text!r}")
    return value


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Expected a whole number of minutes 0..1440, got {text!r}"
        ) from None
    if not 0 <= value <= 1440:
        raise argparse.ArgumentTypeError(
            f"Expected a whole number of minutes 0..1440, got {text!r}"
        )
    return value


def _crs(text: str) -> str:
    try:
        return parse_crs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    """--amenity/--kind/--category/--status, shared by commands that select stations."""
    p.add_argument(
        "--amenity",
        action="append",
        choices=[a.value for a in Amenity],
        metavar="AMENITY",
        help="required amenity; repeat for several (all must be offered)",
    )
    p.add_argument("--kind", action="append", choices=[k.value for k in Kind])
    p.add_argument("--category", action="append", choices=[c.value for c in Category])
    p.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in Status],
        help="default: operational only",
    )


def filter_from_args(args: argparse.Namespace) -> StationFilter:
    return StationFilter.make(
        amenities=args.amenity,
        kinds=args.kind,
        categories=args.category,
        statuses=args.status or ("operational",),
    )


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="validate a registry and list every error and warning",
        description="Validate a GeoJSON registry. Exit 0 if valid (warnings are printed), 1 if not.",
    )
    p.add_argument("path", help="registry GeoJSON file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--network",
        metavar="FILE",
        help="walking network (yizhan network build): also flag, as warnings, the stations "
        "farther than --max-snap-m from any walkable way (they do not change the exit code)",
    )
    p.add_argument(
        "--max-snap-m",
        type=_finite("distance in metres", 0, 1e5),
        default=None,
        help="with --network: the largest distance to a walkable way (default "
        "YIZHAN_WALK_MAX_SNAP_M, 300)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "nearest",
        help="nearest stations to a point",
        description="Exact nearest stations to a point, by great-circle distance or "
        "(--metric walk) on foot along a street network.",
    )
    p.add_argument(
        "--registry",
        default=None,
        help="registry GeoJSON (default: YIZHAN_REGISTRY or the bundled one)",
    )
    p.add_argument("--lon", required=True, type=_finite("longitude", -180, 180))
    p.add_argument("--lat", required=True, type=_finite("latitude", -90, 90))
    p.add_argument(
        "-k",
        type=positive_int,
        default=None,
        help="how many stations (default: YIZHAN_DEFAULT_K, 5; at most YIZHAN_MAX_K)",
    )
    p.add_argument(
        "--radius-m",
        type=_finite("radius in metres", 0, 2.1e7),
        help="only stations within this many metres",
    )
    p.add_argument(
        "--crs", type=_crs, default="wgs84", help=f"system of --lon/--lat: {', '.join(CRS_NAMES)}"
    )
    p.add_argument("--out-crs", type=_crs, default="wgs84", help="system of output coordinates")
    add_filter_arguments(p)
    p.add_argument(
        "--open-at",
        metavar="TIME",
        help="only stations open then: 'now' or ISO 8601 (2026-07-15T13:00; without offset "
        "in the registry's time zone); buses where they stand then",
    )
    p.add_argument(
        "--open-for-min",
        type=_minutes,
        metavar="N",
        help="each result must stay open at least N minutes more (implies --open-at now)",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="great_circle",
        help="great_circle (default) or walk: the k nearest on foot (needs --network or "
        "YIZHAN_NETWORK; --radius-m is then a walking distance)",
    )
    p.add_argument("--network", metavar="FILE", help="walking network (default YIZHAN_NETWORK)")
    p.add_argument("--json", action="store_true", help="print a GeoJSON FeatureCollection")
    p.set_defaults(func=cmd_nearest)

    p = sub.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Validate the registry, then serve the API (OpenAPI docs at /docs).",
    )
    p.add_argument(
        "--registry",
        default=None,
        help="registry GeoJSON (default: YIZHAN_REGISTRY or the bundled one)",
    )
    p.add_argument("--host", default=None, help="default 127.0.0.1 (YIZHAN_HOST)")
    p.add_argument("--port", type=positive_int, default=None, help="default 8000 (YIZHAN_PORT)")
    p.add_argument(
        "--network",
        metavar="FILE",
        default=None,
        help="walking network to load (yizhan network build; default YIZHAN_NETWORK): "
        "enables /nearest?metric=walk and the isochrones",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes on the one port (default 1); each keeps its own copy of the "
        "registry in memory and follows the others' changes",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="serve the registry kept in PostgreSQL (default: YIZHAN_DATABASE_URL; unset: "
        "the registry file and the files beside it); see `yizhan db`",
    )
    p.set_defaults(func=cmd_serve)


def walking_from_args(args: argparse.Namespace, settings: Settings) -> Walking | None:
    """The network of ``--network`` (else ``YIZHAN_NETWORK``), or ``None``."""
    path = getattr(args, "network", None) or settings.network
    return None if path is None else Walking.load(path, settings)


def cmd_validate(args: argparse.Namespace) -> int:
    settings = Settings()
    report, _ = check_file(
        args.path, timezone=settings.timezone, holiday_country=settings.holiday_country
    )
    far: list[str] = []
    far_rows: list[dict[str, Any]] = []
    far_summary = ""
    if args.network and report.ok:
        far_rows, limit = _far_rows(args, settings)
        far = [
            f"warning: station {r['id']!r} ({r['name']}): {r['snap_m']:.0f} m from the nearest "
            f"walkable way of {args.network}, more than {limit:.0f} m"
            for r in far_rows
        ]
        far_summary = f"; {len(far_rows)} stations farther than {limit:.0f} m from the network"
    if args.json:
        print(
            json.dumps(
                {
                    "path": args.path,
                    "valid": report.ok,
                    "features": report.n_features,
                    "errors": [p.as_dict() for p in report.errors],
                    "warnings": [p.as_dict() for p in report.warnings],
                    **({"far_from_network": far_rows} if args.network else {}),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for p in report.errors + report.warnings:
            print(p.format(), file=sys.stderr if p.severity == "error" else sys.stdout)
        for line in far:
            print(line)
        print(f"{args.path}: {report.summary()}{far_summary}")
    return 0 if report.ok else 1


def _far_rows(args: argparse.Namespace, settings: Settings) -> tuple[list[dict[str, Any]], float]:
    """The stations of ``args.path`` farther than the largest snap distance from the network
    ``args.network``: ``[{id, name, snap_m, lon, lat}]`` and that distance."""
    if args.max_snap_m is not None:
        settings = type(settings).model_validate(
            {**settings.model_dump(), "walk_max_snap_m": args.max_snap_m}
        )
    walking = Walking.load(args.network, settings)
    registry = load_registry(
        args.path, timezone=settings.timezone, holiday_country=settings.holiday_country
    )
    rows = [
        {
            **f["properties"],
            "lon": f["geometry"]["coordinates"][0],
            "lat": f["geometry"]["coordinates"][1],
        }
        for f in far_from_network(walking, registry)["features"]
    ]
    return rows, walking.max_snap_m


def _clock(iso: str, at: datetime) -> str:
    """``HH:MM`` of an ISO time on the day of *at* (in its zone), else ``MM-DD HH:MM``."""
    t = datetime.fromisoformat(iso)
    same_day = t.tzinfo is None or t.date() == at.astimezone(t.tzinfo).date()
    return f"{t:%H:%M}" if same_day else f"{t:%m-%d %H:%M}"


def _state_text(props: dict[str, Any], at: datetime) -> str:
    """``open until 20:00``, ``closed, opens 07-16 08:00``, ``hours unknown``, or for a bus
    ``cooling bus at s2 (name), leaves 16:00``."""
    if props.get("kind") == "cooling_bus":
        place = props.get("stop_id") or props.get("placement_id")
        leaves = props.get("leaves_at")
        when = f", leaves {_clock(leaves, at)}" if leaves else ""
        return f"cooling bus at {place} ({props.get('stop_name')}){when}"
    is_open, change = props.get("open_now"), props.get("next_change")
    if is_open is None:
        return "hours unknown"
    if change is None:
        return "open, no change within a year" if is_open else "closed"
    return f"open until {_clock(change, at)}" if is_open else f"closed, opens {_clock(change, at)}"


def cmd_nearest(args: argparse.Namespace) -> int:
    settings = Settings()
    registry = load_registry(
        args.registry or settings.registry,
        timezone=settings.timezone,
        holiday_country=settings.holiday_country,
    )
    filtered = args.open_at is not None or args.open_for_min is not None
    at = parse_time(args.open_at or "now", settings.timezone, field="--open-at")
    walking = require(walking_from_args(args, settings), args.metric)
    fc = nearest_collection(
        search_from_settings(settings, registry, read_only=True),
        settings,
        args.lon,
        args.lat,
        args.k,
        filter_from_args(args),
        args.radius_m,
        args.open_at,
        args.open_for_min,
        args.crs,
        args.out_crs,
        walking=walking,
    )
    features = fc["features"]
    if args.json:
        print(
            json.dumps(
                {"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=2
            )
        )
        return 0
    if not features:
        what = f"open at {at.isoformat(timespec='minutes')}" if filtered else "matches"
        print(f"no station {what}", file=sys.stderr)
        return 0
    for rank, f in enumerate(features, 1):
        props = f["properties"]
        walk = (
            f"{props['walk_m']:>7.0f} m on foot ({props['walk_min']:.0f} min)  "
            if "walk_m" in props
            else ""
        )
        print(
            f"{rank:>2}. {walk}{props['distance_m']:>9.0f} m  {props['bearing_deg']:5.1f}°  "
            f"{f['id']}  {props['name']}  [{_state_text(props, at)}]"
        )
    return 0


def _settings_errors(exc: ValidationError) -> list[str]:
    """One line per invalid setting, naming its environment variable."""
    lines = []
    for e in exc.errors():
        name = f"YIZHAN_{str(e['loc'][0]).upper()}" if e["loc"] else "settings"
        msg = str(e["msg"]).removeprefix("Value error, ")
        lines.append(msg if msg.startswith(name) else f"{name}: {msg}")
    return lines


def cmd_serve(args: argparse.Namespace) -> int:
    updates: dict[str, Any] = {}
    if args.registry:
        updates["registry"] = args.registry
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    if args.network:
        updates["network"] = args.network
    if args.database_url:
        updates["database_url"] = args.database_url
    try:
        settings = Settings()
        # Validate the overrides like the environment (model_copy would not: a str path stays str).
        settings = type(settings).model_validate({**settings.model_dump(), **updates})
    except ValidationError as exc:
        for line in _settings_errors(exc):
            print(f"yizhan serve: {line}", file=sys.stderr)
        return 1
    if settings.network is not None and not settings.network.is_file():
        # checked here, so that the server does not start only to stop with a traceback
        # (the file itself is read once, in the app's start-up)
        print(
            f"yizhan serve: --network: no such file: {settings.network} "
            "(build one with `yizhan network build city.osm.pbf -o city.network`)",
            file=sys.stderr,
        )
        return 2
    registry = None
    if settings.database_url:
        where = _check_database(settings.database_url)
    else:
        try:
            registry = load_registry(
                settings.registry,
                timezone=settings.timezone,
                holiday_country=settings.holiday_country,
            )
        except RegistryInvalidError as exc:
            for p in [*exc.report.errors, *exc.report.warnings]:
                print(p.format(), file=sys.stderr)
            print(f"{settings.registry}: {exc.report.summary()}; not serving", file=sys.stderr)
            return 1
        for w in registry.warnings:
            print(w.format(), file=sys.stderr)
        buses = f" and {len(registry.buses)} cooling buses" if registry.buses else ""
        where = f"{len(registry)} stations{buses} from {settings.registry}"
    if settings.network is not None:
        where += f", walking network {settings.network}"
    workers = f" with {args.workers} workers" if args.workers > 1 else ""
    print(
        f"yizhan: serving {where} on http://{settings.host}:{settings.port}{workers} "
        "(docs at /docs)",
        file=sys.stderr,
    )
    # Proxy headers off, timeouts and a connection limit: see yizhan.cli.serving. httptools
    # parses HTTP in C (h11 is pure Python) and uvloop, where it exists, runs the event loop
    # in C; no access log: a log line per request cost more than the nearest search itself.
    # Errors are still logged (uvicorn.error, and the app's own logger).
    options = uvicorn_options(settings, http="httptools")
    install_log_limits(settings.overload_log_interval_s)
    app: Any
    if args.workers > 1:
        # Each worker process builds its own app from the environment: pass the overrides
        # on. The workers are started from a pickled configuration, which the header guard's
        # class made at run time cannot be: they get the guard by name, configured in each
        # worker from the same environment (yizhan.cli.serving.WorkerGuardedHttpTools).
        for key in updates:
            os.environ[f"YIZHAN_{key.upper()}"] = str(getattr(settings, key))
        options["http"] = WorkerGuardedHttpTools
        app = "yizhan.api:app_from_env"
    else:
        app = create_app(settings, registry=registry)
    uvicorn.run(
        app,
        factory=args.workers > 1,
        workers=args.workers if args.workers > 1 else None,
        log_level="info",
        loop="auto",
        access_log=False,
        **options,
    )
    return 0


def _check_database(url: str) -> str:
    """Connect and check the schema before serving (a clear message instead of a failed
    start-up in every worker); what is served, in words."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            check_schema(conn)
            row = conn.execute("SELECT count(*) FROM features").fetchone()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageUnavailableError(f"database {redact(url)}: {first}") from None
    return f"{row[0] if row else 0} features from {redact(url)}"
