"""Features as every interface returns them: geometry in the asked system, computed properties.

A station leaves the registry as a GeoJSON Feature with ``open_now`` and ``next_change``
(its hours at the request's time), ``stale`` and ``needs_check`` (:class:`Flags`), and for
search results ``distance_m`` and ``bearing_deg``; a cooling bus as a Point where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from yizhan.geo.crs import transform
from yizhan.settings import Settings
from yizhan.stations.registry import Registry
from yizhan.stations.reports import ReportStore
from yizhan.stations.search import BusHit, Hit, StationSearch
from yizhan.stations.staleness import is_stale, verified_at


@dataclass(frozen=True)
class Flags:
    """Freshness flags added to every station and bus in responses.

    ``stale``: never verified, or not within ``stale_after_days`` of ``today`` (the
    registry's time zone); ``needs_check``: recent problem reports from several workers
    since the last verification (``needs_check_reasons`` lists their codes).
    """

    today: date
    stale_after_days: int
    reports: ReportStore | None = None

    @property
    def stale_before(self) -> date:
        """Stations verified before this day are stale."""
        return self.today - timedelta(days=self.stale_after_days)

    def __call__(self, feature: dict[str, Any]) -> dict[str, Any]:
        reasons = (
            self.reports.needs_check(feature["id"], verified_at(feature))
            if self.reports is not None
            else []
        )
        return {
            "stale": is_stale(feature, self.today, self.stale_after_days),
            "needs_check": bool(reasons),
            "needs_check_reasons": reasons,
        }


def flags_today(settings: Settings, reports: ReportStore | None = None) -> Flags:
    """The :class:`Flags` of today in the registry's time zone, with the server's
    ``stale_after_days``; *reports* (when given) decide ``needs_check``."""
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    return Flags(today, settings.stale_after_days, reports)


def geometry_in(geometry: dict[str, Any], out_crs: str) -> dict[str, Any]:
    """A Point or MultiPoint geometry with its coordinates converted from WGS-84 to *out_crs*."""
    if out_crs == "wgs84":
        return geometry
    if geometry["type"] == "MultiPoint":
        pts = geometry["coordinates"]
        xs, ys = transform([p[0] for p in pts], [p[1] for p in pts], "wgs84", out_crs)
        return {
            "type": "MultiPoint",
            "coordinates": [
                [round(float(x), 7), round(float(y), 7)]
                for x, y in zip(np.atleast_1d(xs), np.atleast_1d(ys), strict=True)
            ],
        }
    lon, lat = geometry["coordinates"][:2]
    x, y = transform(lon, lat, "wgs84", out_crs)
    return {"type": "Point", "coordinates": [round(float(x), 7), round(float(y), 7)]}


def feature_out(
    feature: dict[str, Any], out_crs: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """*feature* with its geometry in *out_crs* and *extra* properties added (a copy)."""
    if out_crs == "wgs84" and not extra:
        return feature
    out = {**feature, "geometry": geometry_in(feature["geometry"], out_crs)}
    if extra:
        out["properties"] = {**feature["properties"], **extra}
    return out


def hours_now(search: StationSearch, i: int, ts: float) -> dict[str, Any]:
    """``open_now`` and ``next_change`` of station *i* at POSIX time *ts*."""
    is_open, change = search.status(i, ts)
    return {"open_now": is_open, "next_change": change}


def station_feature(
    search: StationSearch, i: int, ts: float, out_crs: str = "wgs84", flags: Flags | None = None
) -> dict[str, Any]:
    """Station *i* of the search's registry with its hours at *ts* and its *flags*."""
    f = search.registry.features[i]
    extra = hours_now(search, i, ts)
    if flags is not None:
        extra.update(flags(f))
    return feature_out(f, out_crs, extra)


def hit_feature(
    registry: Registry, hit: Hit, out_crs: str = "wgs84", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The station of *hit* as a GeoJSON Feature with ``distance_m`` and ``bearing_deg`` added."""
    f = registry.features[hit.index]
    props = dict(f["properties"])
    props["distance_m"] = round(hit.distance_m, 2)
    props["bearing_deg"] = round(hit.bearing_deg, 1)
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": f["id"],
        "geometry": geometry_in(f["geometry"], out_crs),
        "properties": props,
    }


def bus_hit_feature(
    search: StationSearch, hit: BusHit, out_crs: str = "wgs84", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A bus where it stands, as a Point Feature: its properties without ``stops``, plus
    ``stop_id`` (or ``placement_id``), ``stop_name``, ``leaves_at``, ``open_now`` (true),
    ``next_change`` (when it leaves), ``distance_m`` and ``bearing_deg``."""
    pos = hit.position
    bus = search.fleet.buses[pos.bus_index]
    props = {k: v for k, v in bus["properties"].items() if k != "stops"}
    props.update(pos.properties())
    props.pop("location", None)
    props["open_now"] = True
    props["next_change"] = props["leaves_at"]
    props["distance_m"] = round(hit.distance_m, 2)
    props["bearing_deg"] = round(hit.bearing_deg, 1)
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": pos.bus_id,
        "geometry": geometry_in({"type": "Point", "coordinates": [pos.lon, pos.lat]}, out_crs),
        "properties": props,
    }
