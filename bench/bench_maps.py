"""Benchmark: the planner map with 100,000 stations, Yizhan vs a naive folium map.

The registry is the shared benchmark registry of ``bench/common.py``: the 17,083 valid
Korean civil-defence shelters (WGS-84; the 6 rows with broken coordinates are skipped)
at their real positions, replicated with a seeded jitter up to 100,000 stations, with
their real (Korean) names and realistic properties.

Targets (issue): the HTML of the planner map with 100,000 stations is at most 10 MB and
is built in at most 10 s (build + render to HTML, ``assets="local"``).

The peer is the usual folium approach: one ``folium.CircleMarker`` with a popup per
station inside a ``MarkerCluster``. It is built for a 10,000-station subsample and its
time and size are scaled ×10 (folium's cost is about linear in the markers; a full run
takes minutes: ``--full-peer``).

Run standalone (``python bench/bench_maps.py``) or call :func:`run`, which returns rows
``{name, yizhan_s, peer, peer_s, ratio, note, target, pass}`` (``ratio`` = peer / Yizhan).
"""

from __future__ import annotations

import argparse
import gc
import html
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import folium
from folium import plugins

from yizhan.maps import planner_map
from yizhan.maps._core import CATEGORY_COLORS, UNCATEGORISED_COLOR
from yizhan.stations.registry import Registry, load_registry

PEER_SAMPLE = 10_000
TARGET_S = 10.0
TARGET_BYTES = 10_000_000


def naive_map(reg: Registry, idx: np.ndarray) -> folium.Map:
    """One folium CircleMarker with a popup per station, in a MarkerCluster."""
    m = folium.Map(location=[36.5, 127.8], zoom_start=7, prefer_canvas=True)
    cluster = plugins.MarkerCluster().add_to(m)
    for i in idx.tolist():
        p = reg.features[i]["properties"]
        text = f"<b>{html.escape(p['name'])}</b><br>{html.escape(p.get('opening_hours') or '')}"
        folium.CircleMarker(
            [float(reg.lat[i]), float(reg.lon[i])],
            radius=6,
            color="#ffffff",
            weight=1,
            fill=True,
            fill_color=CATEGORY_COLORS.get(str(p.get("category")), UNCATEGORISED_COLOR),
            fill_opacity=0.9,
            popup=folium.Popup(text, max_width=300),
        ).add_to(cluster)
    return m


def _build_and_render(build: Any) -> tuple[float, int]:
    """Wall time of building a map and rendering its HTML, and the HTML's size in bytes."""
    gc.collect()
    t0 = time.perf_counter()
    page = build().get_root().render()
    elapsed = time.perf_counter() - t0
    return elapsed, len(page.encode("utf-8"))


def run(peer_sample: int | None = PEER_SAMPLE) -> list[dict[str, Any]]:
    """Build both maps and return the result rows.

    Parameters
    ----------
    peer_sample : int or None
        Stations the naive folium map is built with (time and size scaled to the whole
        registry); ``None``: all of them (takes minutes).

    Returns
    -------
    list of dict
        Rows as made by ``common.row``.
    """
    path = common.ensure_registry()
    reg = load_registry(path)
    n = len(reg)
    common.log(f"maps: registry {path.relative_to(common.ROOT)} ({n:,} stations)")
    # open_now as the API would pass it (here: a fixed pattern, not evaluated hours).
    open_now = {fid: (None if i % 7 == 0 else bool(i % 3)) for i, fid in enumerate(reg.ids)}

    def yizhan(assets: str) -> Any:
        return lambda: planner_map(reg, radius_m=500, open_now=open_now, assets=assets)

    planner_map(reg, assets="local")  # warm-up: imports, template compilation
    runs = [_build_and_render(yizhan("local")) for _ in range(3)]
    yz_s = float(np.median([r[0] for r in runs]))
    yz_bytes = runs[0][1]
    in_s, in_bytes = _build_and_render(yizhan("inline"))

    k = n if peer_sample is None else min(peer_sample, n)
    order = np.random.default_rng(0).permutation(n)
    common.log(f"maps: naive folium map with {k:,} markers …")
    peer_s, peer_bytes = _build_and_render(lambda: naive_map(reg, order[:k]))
    scale = n / k
    peer = "folium CircleMarker+Popup each, in MarkerCluster"
    if scale != 1:
        peer_s, peer_bytes = peer_s * scale, int(peer_bytes * scale)
        peer += f" ({k:,} ×{scale:g})"
    mb = 1e6
    return [
        common.row(
            f"planner_map, {n:,} stations: build + render HTML",
            yz_s,
            peer,
            peer_s,
            note=(
                f"assets=local, coverage radius 500 m, open_now; HTML {yz_bytes / mb:.2f} MB "
                f"vs peer {peer_bytes / mb:.1f} MB"
            ),
            target=f"≤ {TARGET_S:g} s",
            passed=yz_s <= TARGET_S,
        ),
        common.row(
            f"planner_map, {n:,} stations: HTML size",
            None,
            peer,
            None,
            note=(
                f"{yz_bytes / mb:.2f} MB vs peer {peer_bytes / mb:.1f} MB "
                f"({peer_bytes / yz_bytes:.0f}× larger); sizes, not times"
            ),
            target=f"≤ {TARGET_BYTES / mb:g} MB",
            passed=yz_bytes <= TARGET_BYTES,
        ),
        common.row(
            f"planner_map, {n:,} stations: assets=inline (standalone file)",
            in_s,
            "",
            None,
            note=f"every JS/CSS embedded: {in_bytes / mb:.2f} MB, opens offline",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--full-peer", action="store_true", help="build the naive map with every station"
    )
    args = parser.parse_args(argv)
    rows = run(None if args.full_peer else PEER_SAMPLE)
    print(common.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
