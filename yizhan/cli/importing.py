"""``yizhan import``: build a registry from a CSV, XLSX or GeoJSON file.

Everything is reported on stderr: the columns used, one line per rejected row and per
note, and counts per reason at the end. Exit status: 0 when the registry was written
(even with rejected rows), 1 with ``--strict`` and any rejected row, 1 when the input
is unusable (missing file, no name/lon/lat column, nothing accepted), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from yizhan.errors import InvalidInputError, YizhanError
from yizhan.geo.crs import CRS_NAMES, parse_crs
from yizhan.stations.importing import (
    HOURS_FORMATS,
    WEEKDAY_WEEKEND_COLUMNS,
    GuessedWhen,
    HoursSpec,
    ImportResult,
    ImportSpec,
    Rule,
    load_spec,
    run_import,
)
from yizhan.stations.jsonio import read_document, write_json_atomic
from yizhan.stations.validate import validate_document

#: Show progress when stderr is not a terminal only for files at least this large.
PROGRESS_MIN_BYTES = 20_000_000
PROGRESS_EVERY = 5000

EXAMPLES = """\
examples:
  yizhan import stations.csv -o registry.geojson --crs gcj02 --id-prefix zz- \\
      --set category=union_station --set source="my list (2024)"
  yizhan import shelters.xlsx --sheet 2 --map name=시설명 -o registry.geojson --report rejected.csv
  yizhan import list.csv --mapping yizhan/data/zhengzhou-import.toml -o yizhan/data/zhengzhou.geojson
  yizhan import tests/data/import/mois_heat_shelters_sample_2025.csv --header-row 2 \
      --hours-format weekday_weekend --dry-run
  yizhan import toronto.csv --hours-format day_columns \
      --hours-open '{day}Open' --hours-close '{day}Close' -o registry.geojson
  yizhan import tests/data/import/barcelona_shelters_sample.json \\
      --hours-format period_table --dry-run

FIELD is one of id, lon, lat, name, kind, name_en, category, operator, network,
address, district, phone, amenities, opening_hours, opening_hours_text, status, capacity,
last_verified_at, source, coord_origin, guessed, external_ids.KEY, amenities.AMENITY.
See docs/import.md.
"""


def add_parsers(sub: Any) -> None:
    """Register ``yizhan import`` on the sub-parsers action *sub*."""
    p = sub.add_parser(
        "import",
        help="build a registry from a CSV, XLSX or GeoJSON file",
        description=(
            "Import stations from CSV (UTF-8 or GB18030), XLSX or GeoJSON Points into a "
            "registry. Columns are mapped with --map/--mapping or detected by name; every "
            "rejected row is reported with its row number (header = row 1) and reason."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="SOURCE", help=".csv, .tsv, .txt, .xlsx or .geojson file")
    p.add_argument("-o", "--output", metavar="FILE", help="registry GeoJSON to write")
    p.add_argument("--mapping", metavar="FILE", help="TOML mapping file (see docs/import.md)")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="read FIELD from COLUMN (repeatable); FIELD= turns auto-detection of FIELD off",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="value for rows whose column is empty or unmapped, e.g. category=union_station",
    )
    p.add_argument(
        "--crs",
        choices=CRS_NAMES,
        type=_crs,
        help="coordinate system of the source (default: named by the lon/lat columns, else wgs84)",
    )
    p.add_argument("--id-prefix", metavar="PREFIX", help="put before every id, e.g. zz-")
    p.add_argument(
        "--amenity-word",
        action="append",
        default=[],
        metavar="WORD=AMENITY",
        help="map a source word to an amenity (WORD=- ignores the word on purpose)",
    )
    p.add_argument(
        "--guessed",
        action="append",
        default=[],
        metavar="FIELD",
        help="mark FIELD as guessed on every row",
    )
    p.add_argument(
        "--guessed-column",
        action="append",
        default=[],
        metavar="FIELD=COLUMN:VALUE",
        help="mark FIELD as guessed on rows where COLUMN holds VALUE",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="COLUMN~TEXT:FIELD=VALUE",
        help="set FIELD=VALUE (marked guessed) on rows whose COLUMN contains TEXT",
    )
    p.add_argument(
        "--recode",
        action="append",
        default=[],
        metavar="FIELD:SOURCE=VALUE",
        help="replace a source value, e.g. coord_origin:amap_poi=poi",
    )
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="top-level member of the registry, e.g. name=..., license=MIT",
    )
    p.add_argument(
        "--hours-format",
        choices=HOURS_FORMATS,
        help="build opening_hours from several columns: day_columns (an open and a close "
        "column per day), weekday_weekend (weekday and weekend/holiday begin/end HHMM, "
        "e.g. Korea MOIS) or period_table (one column of [period, days, hours] rows in "
        "Catalan/Spanish, e.g. Barcelona climate shelters)",
    )
    p.add_argument(
        "--hours-open",
        metavar="PATTERN",
        help="day_columns: opening time columns, {day} = each day name (default {day}_open)",
    )
    p.add_argument(
        "--hours-close",
        metavar="PATTERN",
        help="day_columns: closing time columns (default {day}_close)",
    )
    p.add_argument(
        "--hours-days",
        metavar="NAMES",
        help="day_columns: the 7 names put into {day}, Monday first "
        "(default mon,tue,wed,thu,fri,sat,sun)",
    )
    p.add_argument(
        "--hours-blank",
        choices=("unknown", "closed"),
        help="day_columns: what a day with both cells blank means (default unknown)",
    )
    p.add_argument(
        "--hours-column",
        action="append",
        default=[],
        metavar="ROLE=COLUMN",
        help="weekday_weekend: the column of ROLE, one of "
        + ", ".join(WEEKDAY_WEEKEND_COLUMNS)
        + " (default: the MOIS names or their Korean labels); period_table: "
        "table=COLUMN (default opening_hours_raw)",
    )
    p.add_argument("--sheet", metavar="SHEET", help="XLSX sheet name or number (default: first)")
    p.add_argument("--encoding", metavar="ENC", help="CSV encoding (default: UTF-8, else GB18030)")
    p.add_argument("--delimiter", metavar="CHAR", help="CSV delimiter (default: sniffed)")
    p.add_argument(
        "--header-row", type=_row_number, metavar="N", help="row holding the column names (1)"
    )
    p.add_argument(
        "--keep-outliers",
        action="store_true",
        help="do not reject rows more than 1,000 km from the others (far_outlier)",
    )
    p.add_argument(
        "--report", metavar="FILE", help="also write the report as JSON (.json) or CSV (.csv)"
    )
    p.add_argument(
        "--strict", action="store_true", help="write nothing and exit 1 if any row is rejected"
    )
    p.add_argument("--dry-run", action="store_true", help="read and report only; write no registry")
    p.add_argument(
        "--append",
        metavar="REGISTRY",
        action="append",
        help="add the features of this registry file after the imported ones (e.g. "
        "yizhan/data/sample-buses.geojson); repeatable; the result is validated as a whole",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only the summary, not one line per row"
    )
    p.set_defaults(func=run)


def _crs(text: str) -> str:
    try:
        return parse_crs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _row_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"Expected a row number >= 1, got {text!r}")
    return int(text)


def _split(text: str, sep: str, option: str, form: str) -> tuple[str, str]:
    key, found, value = text.partition(sep)
    if not found or not key.strip():
        raise InvalidInputError(option, f"Expected {form}, got {text!r}")
    return key.strip(), value


_RULE = re.compile(r"^(?P<column>[^~]+)~(?P<text>.+):(?P<field>[A-Za-z_.]+)=(?P<value>.*)$", re.S)


def spec_from_args(args: argparse.Namespace) -> ImportSpec:
    """The import spec: the ``--mapping`` file (if any) with the options applied on top.

    Raises
    ------
    InvalidInputError
        An option is malformed or names an unknown field.
    """
    spec = load_spec(args.mapping) if args.mapping else ImportSpec()
    for item in args.map:
        fld, col = _split(item, "=", "--map", "FIELD=COLUMN")
        spec.mapping[fld] = col.strip() or None
    for item in args.set:
        fld, value = _split(item, "=", "--set", "FIELD=VALUE")
        spec.defaults[fld] = value
    for item in args.amenity_word:
        word, amenity = _split(item, "=", "--amenity-word", "WORD=AMENITY")
        amenity = amenity.strip()
        spec.amenity_words[word] = None if amenity in ("", "-") else amenity
    spec.guessed.extend(args.guessed)
    for item in args.guessed_column:
        fld, rest = _split(item, "=", "--guessed-column", "FIELD=COLUMN:VALUE")
        column, found, value = rest.rpartition(":")
        if not found or not column:
            raise InvalidInputError(
                "--guessed-column", f"Expected FIELD=COLUMN:VALUE, got {item!r}"
            )
        spec.guessed_when.append(GuessedWhen(fld, column, (value,)))
    for item in args.rule:
        m = _RULE.match(item)
        if m is None:
            raise InvalidInputError("--rule", f"Expected COLUMN~TEXT:FIELD=VALUE, got {item!r}")
        spec.rules.append(
            Rule(column=m["column"], assign={m["field"]: m["value"]}, contains=m["text"])
        )
    for item in args.recode:
        fld, rest = _split(item, ":", "--recode", "FIELD:SOURCE=VALUE")
        source, found, value = rest.partition("=")
        if not found:
            raise InvalidInputError("--recode", f"Expected FIELD:SOURCE=VALUE, got {item!r}")
        spec.recode.setdefault(fld, {})[source] = value
    for item in args.meta:
        key, value = _split(item, "=", "--meta", "KEY=VALUE")
        spec.meta[key] = value
    if args.crs is not None:
        spec.crs = args.crs
    if args.id_prefix is not None:
        spec.id_prefix = args.id_prefix
    for key in ("sheet", "encoding", "delimiter", "header_row"):
        value = getattr(args, key)
        if value is not None:
            setattr(spec, key, value)
    if args.delimiter == "\\t":
        spec.delimiter = "\t"
    if args.keep_outliers:
        spec.reject_outliers = False
    _apply_hours_options(spec, args)
    spec.check()
    return spec


def _apply_hours_options(spec: ImportSpec, args: argparse.Namespace) -> None:
    """Put the ``--hours-*`` options over the mapping file's ``[hours]``."""
    given = {
        "--hours-open": args.hours_open,
        "--hours-close": args.hours_close,
        "--hours-days": args.hours_days,
        "--hours-blank": args.hours_blank,
        "--hours-column": args.hours_column or None,
    }
    if args.hours_format is not None:
        if spec.hours is None or spec.hours.format != args.hours_format:
            spec.hours = HoursSpec(format=args.hours_format)
    elif spec.hours is None:
        used = [k for k, v in given.items() if v is not None]
        if used:
            raise InvalidInputError(used[0], "needs --hours-format (or [hours] in --mapping)")
        return
    hours = spec.hours
    assert hours is not None
    if args.hours_open is not None:
        hours.open = args.hours_open
    if args.hours_close is not None:
        hours.close = args.hours_close
    if args.hours_days is not None:
        hours.days = tuple(args.hours_days.split(","))
    if args.hours_blank is not None:
        hours.blank = args.hours_blank
    for item in args.hours_column:
        role, column = _split(item, "=", "--hours-column", "ROLE=COLUMN")
        hours.columns[role] = column.strip()


class _Progress:
    """``yizhan import: 5000/17089 rows`` on stderr, overwritten in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if done == total and not self.shown:
            return
        end = "" if self.tty else "\n"
        prefix = "\r" if self.tty else ""
        self.stream.write(f"{prefix}yizhan import: {done}/{total} rows{end}")
        if self.tty and done == total:
            self.stream.write("\n")
        self.stream.flush()
        self.shown = True


def _print_report(result: ImportResult, quiet: bool, err: TextIO) -> None:
    unit = result.row_unit
    used = ", ".join(
        f"{fld} <- {col!r}" + (" (auto)" if fld in result.auto_detected else "")
        for fld, col in result.columns_used.items()
    )
    print(f"yizhan import: columns: {used}", file=err)
    if result.provenance_columns:
        cols = ", ".join(map(repr, result.provenance_columns))
        print(f"yizhan import: provenance and rules read from: {cols}", file=err)
    if result.hours_columns:
        cols = ", ".join(map(repr, result.hours_columns))
        print(f"yizhan import: opening_hours ({result.hours_format}) built from: {cols}", file=err)
    seen = {*result.columns_used.values(), *result.provenance_columns, *result.hours_columns}
    ignored = [c for c in result.columns if c not in seen]
    if ignored:
        print(f"yizhan import: not imported: {', '.join(map(repr, ignored))}", file=err)
    if result.crs != "wgs84":
        print(f"yizhan import: coordinates converted from {result.crs} to wgs84", file=err)
    if not quiet:
        for note in result.notes:
            print(note.format(unit), file=err)
        for r in result.rejected:
            print(f"rejected: {r.format(unit)}", file=err)
    words = result.unknown_words()
    if words:
        shown = ", ".join(f"{w!r} ({n})" for w, n in list(words.items())[:20])
        more = f" and {len(words) - 20} more" if len(words) > 20 else ""
        print(
            f"yizhan import: unknown amenity words (rows): {shown}{more}; "
            "map them with --amenity-word WORD=AMENITY",
            file=err,
        )
    print(f"yizhan import: {result.summary()}", file=err)


def _write_report(result: ImportResult, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        write_json_atomic(path, result.report())
        return
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.DictWriter(
                fh, fieldnames=["type", "row", "line", "field", "reason", "value", "message"]
            )
            w.writeheader()
            w.writerows(result.report_rows())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Run ``yizhan import``; returns the exit status (never raises but YizhanError)."""
    try:
        return _run(args)
    except YizhanError:
        raise
    except (OSError, ValueError, csv.Error) as exc:
        print(f"yizhan import: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    err = sys.stderr
    if not args.output and not args.dry_run:
        print("yizhan import: -o/--output FILE is required (or --dry-run)", file=err)
        return 2
    report_path = Path(args.report) if args.report else None
    if report_path is not None and report_path.suffix.lower() not in (".json", ".csv"):
        raise InvalidInputError("--report", f"Expected a .json or .csv file, got {args.report!r}")
    spec = spec_from_args(args)
    source = Path(args.source)
    progress = None
    try:
        large = source.stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        large = False
    if err.isatty() or large:
        progress = _Progress(err)
    result = run_import(source, spec, progress=progress, progress_every=PROGRESS_EVERY)
    _print_report(result, args.quiet, err)

    if report_path is not None:
        try:
            _write_report(result, report_path)
        except OSError as exc:
            print(f"yizhan import: cannot write the report {report_path}: {exc}", file=err)
            return 1
        print(f"yizhan import: report written to {report_path}", file=err)

    n_rej = len(result.rejected)
    if args.strict and n_rej:
        print(
            f"yizhan import: --strict: {n_rej} {result.row_unit}s rejected; nothing written",
            file=err,
        )
        return 1
    if not result.features:
        print("yizhan import: no station accepted; nothing written", file=err)
        return 1
    doc = result.document()
    for extra in args.append or ():
        added = read_document(Path(extra))
        if not isinstance(added, dict) or not isinstance(added.get("features"), list):
            print(
                f"yizhan import: --append {extra}: Expected a GeoJSON FeatureCollection", file=err
            )
            return 1
        doc["features"] = [*doc["features"], *added["features"]]
    report = validate_document(doc)
    if not report.ok and args.append:
        for p in report.errors:
            print(p.format(), file=err)
        print(
            "yizhan import: the result with --append does not validate; nothing written", file=err
        )
        return 1
    if not report.ok:  # pragma: no cover - the importer only returns valid features
        for p in report.errors:
            print(p.format(), file=err)
        print("yizhan import: the result does not validate; nothing written", file=err)
        return 1
    if args.dry_run:
        print(f"yizhan import: dry run: {len(result.features)} stations, nothing written", file=err)
        return 0
    try:
        write_json_atomic(args.output, doc)
    except OSError as exc:
        print(f"yizhan import: cannot write {args.output}: {exc}", file=err)
        return 1
    print(
        f"yizhan import: wrote {len(doc['features'])} features to {args.output} "
        f"({n_rej} {result.row_unit}s rejected)",
        file=err,
    )
    return 0
