"""``yizhan network build|info``: walking networks from OpenStreetMap files.

``yizhan network build city.osm.pbf -o city.network`` reads the walkable ways (rules in
``docs/walking.md``), keeps the largest connected piece and writes the network file;
``yizhan network info city.network`` describes one.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from yizhan.network import build_network, load_network, save_network


def add_parsers(sub: Any) -> None:
    """Register ``yizhan network`` and its sub-commands."""
    p = sub.add_parser(
        "network",
        help="build and inspect walking networks from OpenStreetMap",
        description="Walking networks: build one from an OpenStreetMap extract "
        "(.osm.pbf, .osm or .osm.bz2), or describe a network file.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    b = actions.add_parser(
        "build",
        help="build a network file from an OpenStreetMap extract",
        description="Read the walkable ways of an OpenStreetMap extract, keep the largest "
        "connected piece and write a network file (see docs/walking.md).",
    )
    b.add_argument("input", type=Path, help="OpenStreetMap file: .osm.pbf, .osm or .osm.bz2")
    b.add_argument(
        "-o", "--output", type=Path, required=True, help="network file to write (e.g. city.network)"
    )
    b.add_argument("--progress", action="store_true", help="report progress on stderr")
    b.add_argument("--json", action="store_true", help="print the build report as JSON")
    b.set_defaults(func=cmd_build)

    i = actions.add_parser(
        "info",
        help="describe a network file",
        description="Print what a network file holds: its source, size, tag rules and the "
        "pieces left out when it was built.",
    )
    i.add_argument("file", type=Path, help="network file")
    i.add_argument("--json", action="store_true", help="print the metadata as JSON")
    i.set_defaults(func=cmd_info)


def _progress_printer() -> Any:
    last = {"t": 0.0}

    def report(stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - last["t"] < 0.5 and done:
            return
        last["t"] = now
        if stage == "reading":
            what = f"{done:,} OSM objects read" + (" (done)" if final else "")
        else:
            what = "done" if final else "…"
        print(f"yizhan network build: {stage}: {what}", file=sys.stderr, flush=True)

    return report


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cmd_build(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    data, report = build_network(args.input, _progress_printer() if args.progress else None)
    t_write = time.perf_counter()
    out = save_network(args.output, data)
    elapsed = time.perf_counter() - start
    summary = report.as_dict()
    summary["seconds"]["write"] = round(time.perf_counter() - t_write, 3)
    summary["seconds"]["total"] = round(elapsed, 3)
    summary["output"] = str(out)
    summary["output_bytes"] = out.stat().st_size
    summary["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    c = report.counts
    print(
        f"{out}: {report.nodes:,} nodes, {report.edges:,} edges, "
        f"{report.length_m / 1000:,.1f} km of walkable way"
    )
    print(
        f"  read {c['ways_walkable']:,} walkable of {c['ways_tagged']:,} highway ways; "
        f"{c['areas']} squares ({c['area_links']} links across), "
        f"{c['blocking_nodes']} blocking barriers, {c['missing_nodes']:,} nodes outside the extract"
    )
    print(
        f"  left out {report.dropped_components:,} pieces not connected to the rest: "
        f"{report.dropped_nodes:,} nodes, {report.dropped_length_m / 1000:,.2f} km"
    )
    print(
        f"  {elapsed:.2f} s, peak memory {summary['peak_rss_mb']:,.0f} MB, "
        f"file {summary['output_bytes'] / 1e6:,.2f} MB"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    data = load_network(args.file)
    net, meta = data.network, data.meta
    info: dict[str, Any] = {
        "file": str(args.file),
        "file_bytes": Path(args.file).stat().st_size,
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "length_m": round(net.total_length_m, 1),
        "bounds": [round(x, 7) for x in net.bounds()],
        **{k: v for k, v in meta.items() if k not in ("nodes", "edges", "length_m", "bounds")},
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    w, s, e, n = info["bounds"]
    print(f"{args.file}: walking network, format {meta.get('format_version')}")
    print(
        f"  source {meta.get('source_name')} ({meta.get('source_bytes', 0):,} bytes, "
        f"sha256 {str(meta.get('source_sha256', ''))[:16]}…), built {meta.get('created_at')}, "
        f"tag rules v{meta.get('tag_rules_version')}"
    )
    print(
        f"  {net.n_nodes:,} nodes, {net.n_edges:,} edges, {net.total_length_m / 1000:,.1f} km; "
        f"lon {w}…{e}, lat {s}…{n}"
    )
    print(
        f"  left out when built: {meta.get('dropped_components', 0):,} pieces, "
        f"{meta.get('dropped_nodes', 0):,} nodes, {meta.get('dropped_length_m', 0) / 1000:,.2f} km"
    )
    return 0
