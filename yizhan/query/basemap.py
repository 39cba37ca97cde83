"""A picture of the area drawn from the server's own data, for maps whose tiles cannot load.

The find page's map loads OpenStreetMap tiles; on a weak signal, offline or behind a
firewall they do not come, and a tap on the map would be a tap in a grey box. Under the
tiles the page draws what :func:`basemap` returns: district outlines with their names, and
every station as a dot with its name, so the worker can still see where they are.

District outlines are, in order of preference, the districts the server is configured
with (``YIZHAN_DISTRICTS``; for the bundled registry the bundled Zhengzhou districts), else
the convex hull of each district's stations (three stations or more), else none. They are
simplified to about 100 m and rounded to 4 decimals (about 10 m): a picture, not a survey.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import mapping

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import Districts
from yizhan.query.demand_files import load_districts
from yizhan.query.studies import default_districts
from yizhan.settings import Settings
from yizhan.stations.registry import Registry

__all__ = ["MAX_STATIONS", "basemap", "district_outlines"]

log = logging.getLogger("yizhan")

#: Simplification tolerance (degrees, about 100 m) and coordinate grid (about 10 m).
SIMPLIFY_DEG: Final = 0.001
GRID_DEG: Final = 1e-4
#: Most station dots in one answer (the nearest to the middle of the box asked for).
MAX_STATIONS: Final = 2000


@dataclass(frozen=True)
class _Outlines:
    key: tuple[Any, ...]
    collection: dict[str, Any]


_cache: dict[str, _Outlines] = {}


def _feature(name: str, geom: Any, hull: bool) -> dict[str, Any]:
    label = shapely.point_on_surface(geom)
    return {
        "type": "Feature",
        "properties": {
            "name": name,
            "hull": hull,
            "label": [round(float(label.x), 4), round(float(label.y), 4)],
        },
        "geometry": mapping(geom),
    }


def _simplified(geom: Any) -> Any:
    small = shapely.simplify(geom, SIMPLIFY_DEG, preserve_topology=True)
    return shapely.set_precision(small, GRID_DEG)


def _from_polygons(districts: Districts) -> list[dict[str, Any]]:
    out = []
    for name, geom in zip(districts.names, districts.geometries, strict=True):
        small = _simplified(geom)
        if not small.is_empty:
            out.append(_feature(name, small, hull=False))
    return out


def _from_hulls(registry: Registry) -> list[dict[str, Any]]:
    out = []
    names = registry.district
    for name in sorted({str(d) for d in names.tolist() if d}):
        m = names == name
        pts = shapely.multipoints(np.column_stack([registry.lon[m], registry.lat[m]]))
        hull = shapely.convex_hull(pts)
        if shapely.get_dimensions(hull) == 2:  # three or more points, not on one line
            out.append(_feature(name, _simplified(hull), hull=True))
    return out


def district_outlines(settings: Settings, registry: Registry) -> dict[str, Any]:
    """District outlines as a GeoJSON FeatureCollection (WGS-84, simplified).

    Each Feature has ``name``, ``label`` (a ``[lon, lat]`` inside it for the name) and
    ``hull`` (``true``: the convex hull of the district's stations, not a boundary).
    Outlines from a file are cached (until the file changes); hulls are computed per call.
    """
    path = settings.districts or default_districts(registry.path)
    if path is not None:
        try:
            stamp = Path(path).stat().st_mtime_ns
        except OSError:
            stamp = -1
        key = (str(path), stamp, settings.district_field, settings.demand_crs)
        hit = _cache.get("outlines")
        if hit is not None and hit.key == key:
            return hit.collection
        try:
            features = _from_polygons(
                load_districts(path, name_field=settings.district_field, crs=settings.demand_crs)
            )
        except InvalidInputError as exc:
            log.warning("district outlines for the find page's map: %s", exc)
        else:
            collection = {"type": "FeatureCollection", "features": features}
            _cache["outlines"] = _Outlines(key, collection)
            return collection
    return {"type": "FeatureCollection", "features": _from_hulls(registry)}


def basemap(
    settings: Settings,
    registry: Registry,
    bbox: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """What a map draws under its tiles: district outlines and station dots.

    Parameters
    ----------
    settings : Settings
        Where the districts come from (``districts``, ``district_field``, ``demand_crs``).
    registry : Registry
        The stations.
    bbox : (min_lon, min_lat, max_lon, max_lat), optional
        Only stations in this box (WGS-84 degrees); at most :data:`MAX_STATIONS`, the
        nearest to its middle.

    Returns
    -------
    dict
        ``{"districts": FeatureCollection, "stations": [[lon, lat, name, id], ...],
        "truncated": bool}``; coordinates rounded to 5 decimals (about 1 m).
    """
    lon, lat = registry.lon, registry.lat
    sel = np.arange(len(registry))
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        sel = sel[(lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)]
    truncated = len(sel) > MAX_STATIONS
    if truncated:
        cx = (bbox[0] + bbox[2]) / 2 if bbox is not None else float(np.median(lon))
        cy = (bbox[1] + bbox[3]) / 2 if bbox is not None else float(np.median(lat))
        d2 = (lon[sel] - cx) ** 2 + (lat[sel] - cy) ** 2
        sel = np.sort(sel[np.argsort(d2, kind="stable")[:MAX_STATIONS]])
    stations = []
    for i in sel.tolist():
        p = registry.features[i]["properties"]
        stations.append(
            [round(float(lon[i]), 5), round(float(lat[i]), 5), str(p["name"]), registry.ids[i]]
        )
    return {
        "districts": district_outlines(settings, registry),
        "stations": stations,
        "truncated": truncated,
    }
