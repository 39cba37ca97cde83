"""Folium maps for planners and workers, usable offline.

* :func:`planner_map` — every station (clustered, canvas-rendered, 100,000 stay usable),
  coverage circles, uncovered demand, gaps, suggested sites, district coverage share and
  cooling buses with a time slider;
* :func:`worker_map` — a worker's position and the nearest stations with distances;
* :func:`vendor_dir` / :func:`static_dir` — the JS/CSS the maps load, fetched at set-up
  with ``python -m yizhan.maps.assets fetch``.

Labels are in Chinese (``lang="zh"``) or English (``lang="en"``).

Names are imported on first use, so that ``python -m yizhan.maps.assets`` and the API's
static mount do not load folium.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yizhan.maps.assets import AssetError, AssetMode, fetch, static_dir, vendor_dir
    from yizhan.maps.planner import derive_bus_timeline, planner_map, station_columns
    from yizhan.maps.worker import worker_map

_EXPORTS = {
    "AssetError": "yizhan.maps.assets",
    "AssetMode": "yizhan.maps.assets",
    "fetch": "yizhan.maps.assets",
    "static_dir": "yizhan.maps.assets",
    "vendor_dir": "yizhan.maps.assets",
    "derive_bus_timeline": "yizhan.maps.planner",
    "planner_map": "yizhan.maps.planner",
    "station_columns": "yizhan.maps.planner",
    "worker_map": "yizhan.maps.worker",
}

__all__ = [
    "AssetError",
    "AssetMode",
    "derive_bus_timeline",
    "fetch",
    "planner_map",
    "static_dir",
    "station_columns",
    "vendor_dir",
    "worker_map",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'yizhan.maps' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
