"""Folium maps for planners and workers, usable offline.

What it holds:

* :func:`planner_map` — every station (clustered, canvas-rendered, 100,000 stay usable),
  coverage circles, uncovered demand, gaps, suggested sites, district coverage share with a
  sortable table, and cooling buses with a time slider (:mod:`~yizhan.maps.planner`;
  buses in :mod:`~yizhan.maps.buses`); base maps OpenStreetMap, Amap (GCJ-02: overlays are
  shipped in both systems) and Tianditu (:mod:`~yizhan.maps.basemaps`);
  :func:`~yizhan.maps.study_map.coverage_map` runs a coverage study and draws it, with its
  headline (:mod:`~yizhan.maps.headline`);
* :func:`worker_map` — a worker's position and the nearest stations with distances
  (:mod:`~yizhan.maps.worker`);
* the building blocks both use (:mod:`~yizhan.maps._core`), the labels in Chinese
  (``lang="zh"``) or English (``lang="en"``) (:mod:`~yizhan.maps.i18n`);
* how the JavaScript/CSS reach the browser: the maps' own runtime, real files under
  ``static/yizhan-map/`` (:mod:`~yizhan.maps.runtime`), and the vendored packages, linked
  under a local base URL, embedded in a standalone page or left on their CDN
  (:mod:`~yizhan.maps.asset_refs`, :mod:`~yizhan.maps.header`, :mod:`~yizhan.maps.inline`).
  The vendored files are fetched at set-up by ``yizhan assets fetch`` (:mod:`yizhan.assets`).

What it may import: :mod:`yizhan.errors`, :mod:`yizhan.assets`, ``geo/`` and ``stations/``,
folium, branca and numpy/shapely — never FastAPI, ``routes/``, ``web/`` or ``cli/``.
Coordinates are ``lat``/``lon`` (Leaflet's order) inside this package only.
"""

from __future__ import annotations

from yizhan.assets import AssetError, vendor_dir
from yizhan.maps.asset_refs import AssetMode, static_dir
from yizhan.maps.planner import derive_bus_timeline, planner_map, station_columns
from yizhan.maps.worker import worker_map

__all__ = [
    "AssetError",
    "AssetMode",
    "derive_bus_timeline",
    "planner_map",
    "static_dir",
    "station_columns",
    "vendor_dir",
    "worker_map",
]
