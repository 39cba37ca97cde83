"""``yizhan export``: the registry's stations (filtered like ``GET /stations``) or a coverage
study's layers (districts with shares, gaps, suggested sites) as GeoJSON, CSV,
GeoPackage, Shapefile, XLSX or FlatGeobuf."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from yizhan.cli.planning import positive_number, resolve_inputs
from yizhan.cli.registry_cmds import positive_int
from yizhan.cli.steps import Steps
from yizhan.errors import InvalidInputError
from yizhan.geo.crs import CRS_NAMES
from yizhan.query.export import FORMATS, FlatLayer, flatten_features, flatten_stations, write_file
from yizhan.query.export_study import STUDY_LAYERS, study_layer
from yizhan.query.features import flags_today
from yizhan.query.listing import StationQuery, matching
from yizhan.query.studies import load_study
from yizhan.settings import Settings
from yizhan.stations.registry import StationFilter, load_registry
from yizhan.stations.vocab import Amenity, Category, Kind, Status

EXAMPLES = """\
examples:
  yizhan export yizhan/data/zhengzhou.geojson --format gpkg -o stations.gpkg
  yizhan export REGISTRY --format csv -o 金水区.csv --district 金水区 --status operational
  yizhan export REGISTRY --format shp -o stations.zip        # .shp .shx .dbf .prj .cpg + mapping
  yizhan export REGISTRY --format gpkg -o study.gpkg --layer all --new 10
  yizhan import stations.gpkg --map guessed=guessed -o again.geojson   # the round trip
"""


def add_parsers(sub: Any) -> None:
    """Register ``yizhan export`` on the sub-parsers action *sub*."""
    p = sub.add_parser(
        "export",
        help="write stations or a coverage study as GeoJSON, CSV, GeoPackage, Shapefile, XLSX or FlatGeobuf",
        description="Export the registry's stations (every status unless --status is given), or "
        "a coverage study's districts, gaps and suggested sites. `yizhan import` reads every "
        "format back (see docs/gis.md).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("registry", help="registry GeoJSON")
    p.add_argument("--format", "-f", required=True, choices=FORMATS, help="output format")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="file to write (shp: NAME.shp, or NAME.zip for the files zipped)",
    )
    p.add_argument(
        "--layer",
        choices=("stations", *STUDY_LAYERS, "all"),
        default="stations",
        help="what to export (default stations; all: every layer, gpkg and xlsx only)",
    )
    s = p.add_argument_group("which stations (as GET /stations)")
    s.add_argument("--bbox", help="minlon,minlat,maxlon,maxlat (WGS-84)")
    s.add_argument("--kind", action="append", choices=[k.value for k in Kind])
    s.add_argument("--category", action="append", choices=[c.value for c in Category])
    s.add_argument(
        "--amenity", action="append", choices=[a.value for a in Amenity], metavar="AMENITY"
    )
    s.add_argument(
        "--status",
        action="append",
        choices=[st.value for st in Status],
        help="default: every status (study layers: operational stations count)",
    )
    s.add_argument("--district", action="append", help="district name; repeatable")
    s.add_argument("-q", "--text", help="text in name, English name, address or operator")
    fresh = s.add_mutually_exclusive_group()
    fresh.add_argument("--stale", dest="stale", action="store_const", const=True, default=None)
    fresh.add_argument("--fresh", dest="stale", action="store_const", const=False)
    g = p.add_argument_group("coverage study (districts, gaps, sites)")
    g.add_argument("--demand", type=Path, help="demand points or polygons (any vector file, CSV)")
    g.add_argument("--weight", help="weight column of the demand")
    g.add_argument("--districts", type=Path, help="district polygons (any vector file)")
    g.add_argument("--district-field", default="name", help="district name property (default name)")
    g.add_argument("--crs", choices=CRS_NAMES, default="wgs84", help="system of the study files")
    g.add_argument("--hex-size-m", type=positive_number("metres"), default=500.0)
    g.add_argument("--radius-m", type=positive_number("metres"), default=1000.0)
    g.add_argument("--new", type=positive_int, default=10, help="suggested sites (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    steps = Steps(3, quiet=args.quiet)
    with steps.step(f"loading registry {args.registry}"):
        registry = load_registry(args.registry)
    settings = Settings()
    wanted = list(STUDY_LAYERS) if args.layer == "all" else [args.layer]
    if args.layer == "all":
        wanted.insert(0, "stations")
        if args.format not in ("gpkg", "xlsx"):
            raise InvalidInputError("--layer", "all needs a format with layers: gpkg or xlsx")
    layers: list[FlatLayer] = []
    features: list[list[dict[str, Any]]] = []
    with steps.step(f"selecting {', '.join(wanted)}"):
        if "stations" in wanted:
            flags = flags_today(settings)
            query = StationQuery.make(
                args.amenity,
                args.kind,
                args.category,
                args.status,
                args.district,
                args.stale,
                flags.stale_before,
                args.bbox,
                args.text,
            )
            idx = matching(registry, query, flags).tolist()
            features.append([registry.features[i] for i in idx])
            layers.append(flatten_stations(features[-1]))
        study_names = [w for w in wanted if w != "stations"]
        if study_names:
            inputs = resolve_inputs(argparse.Namespace(**{**vars(args), "study": None}))
            if inputs.spec is None:
                raise InvalidInputError(
                    "--districts",
                    "Expected --demand or --districts for the study layers of a registry of "
                    "one's own, got neither",
                )
            study = load_study(inputs.spec)
            flt = StationFilter.make(
                amenities=args.amenity,
                kinds=args.kind,
                categories=args.category,
                statuses=args.status or ("operational",),
            )
            for name in study_names:
                feats = study_layer(
                    name, registry, study, radius_m=args.radius_m, flt=flt, n_new=args.new
                )
                features.append(feats)
                layers.append(flatten_features(feats, name))
    with steps.step(f"writing {args.output} ({args.format})"):
        files = write_file(
            layers,
            args.format,
            args.output,
            features=features[0],
            meta=registry.meta if wanted[0] == "stations" else None,
        )
    counts = ", ".join(f"{len(layer)} {layer.name}" for layer in layers)
    print(f"yizhan export: wrote {counts} to {', '.join(map(str, files))}", file=sys.stderr)
    return 0
