"""Features as every interface returns them: geometry in the asked system, computed properties.

A station leaves the registry as a GeoJSON Feature with ``open_now`` and ``next_change``
(its hours at the request's time), ``stale`` and ``needs_check`` (:class:`Flags`), and for
search results ``distance_m`` and ``bearing_deg``; a cooling bus as a Point where it stands.

For answers sent as bytes (``/nearest``, :mod:`yizhan.query.nearest`) the static part of
each station (``type``, ``id``, ``geometry``, ``properties``) is serialized once per
registry snapshot (:func:`station_head`, kept in
:attr:`~yizhan.stations.registry.Registry.json_cache`) and the per-request members are
spliced into its ``properties`` (:meth:`Flags.station_json` gives the flags' part).
Hand-written splicing rather than a full ``orjson.dumps`` of copied dicts: on ``/nearest``
the copies and the full dump cost more than the search itself (``docs/benchmarks.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from yizhan.geo.crs import transform
from yizhan.settings import Settings
from yizhan.stations.registry import Registry
from yizhan.stations.reports import ReportStore
from yizhan.stations.search import BusHit, Hit, StationSearch
from yizhan.stations.staleness import is_stale, verified_at

#: orjson options of every JSON answer (numpy scalars are written as numbers).
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

#: Properties a search result gets per request; a station that already stores one of them
#: keeps its position in the properties, so such a (rare) station is serialized in full.
COMPUTED_PROPERTIES = frozenset(
    {
        "distance_m",
        "bearing_deg",
        "open_now",
        "next_change",
        "stale",
        "needs_check",
        "needs_check_reasons",
    }
)


#: Below this many hundredths (or tenths) the fast path of :func:`round_to` is exact.
_EXACT_SCALED = float(2**32)


def round_to(value: float, ndigits: int, scale: float) -> float:
    """``round(value, ndigits)`` (``scale`` is ``10.0 ** ndigits``), the same float, in a
    third of the time: Python's ``round`` goes through decimal text, and it runs twice
    for every search result.

    Exact: between 0 and 2**32, ``value * scale`` is within 1e-6 of its exact value, so away
    from a tie (.5, where ``round`` is asked) the nearest integer *n* is that of the exact
    product, and ``n / scale``, one correctly rounded division, is the float nearest to
    the decimal that ``round`` reads back. Checked against ``round`` in the tests.
    """
    scaled = value * scale
    if 0.0 < scaled < _EXACT_SCALED:  # not zero (-0.0), negative, nan or inf: round does those
        n = math.floor(scaled + 0.5)
        if abs(scaled - n) < 0.499999:
            return n / scale
    return round(value, ndigits)


def distance_bearing(hit: Hit | BusHit) -> tuple[float, float]:
    """``distance_m`` (cm) and ``bearing_deg`` (0.1°) of a search result, as answered."""
    return round_to(hit.distance_m, 2, 100.0), round_to(hit.bearing_deg, 1, 10.0)


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
    #: ``today.toordinal() - stale_after_days``: a station verified before this day is stale.
    cutoff_day: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoff_day", self.today.toordinal() - self.stale_after_days)

    @property
    def stale_before(self) -> date:
        """Stations verified before this day are stale."""
        return self.today - timedelta(days=self.stale_after_days)

    def __call__(self, feature: dict[str, Any]) -> dict[str, Any]:
        reasons = self._reasons(feature)
        return {
            "stale": is_stale(feature, self.today, self.stale_after_days),
            "needs_check": bool(reasons),
            "needs_check_reasons": reasons,
        }

    def station(self, registry: Registry, i: int) -> dict[str, Any]:
        """The flags of station *i* of *registry*: equal to ``self(registry.features[i])``,
        with ``stale`` read from the registry's ``verified_day`` column."""
        day = int(registry.verified_day[i])
        reasons = self._reasons(registry.features[i])
        return {
            "stale": day < 0 or day < self.cutoff_day,
            "needs_check": bool(reasons),
            "needs_check_reasons": reasons,
        }

    def station_json(self, registry: Registry, i: int) -> bytes:
        """:meth:`station` as JSON object members after a comma (``,"stale":…``), to splice
        into a Feature's properties; a constant for a station without reports."""
        day = int(registry.verified_day[i])
        stale = day < 0 or day < self.cutoff_day
        reasons = self._reasons(registry.features[i], registry.ids[i])
        if not reasons:
            return _UNREPORTED_JSON[stale]
        flags = {"stale": stale, "needs_check": True, "needs_check_reasons": reasons}
        return b"," + orjson.dumps(flags, option=JSON_OPTIONS)[1:-1]

    def _reasons(self, feature: dict[str, Any], station_id: str | None = None) -> list[str]:
        """``needs_check_reasons`` of *feature* (whose id is *station_id*). A station without
        reports never needs checking: then neither its verification time is parsed nor
        (given *station_id*) its Feature read; that is nearly every station in an answer."""
        sid = feature["id"] if station_id is None else station_id
        if self.reports is None or not self.reports.for_station(sid):
            return []
        return self.reports.needs_check(sid, verified_at(feature))


#: :meth:`Flags.station_json` of a station that needs no check, by ``stale``.
_UNREPORTED_JSON = {
    stale: b","
    + orjson.dumps(
        {"stale": stale, "needs_check": False, "needs_check_reasons": []}, option=JSON_OPTIONS
    )[1:-1]
    for stale in (False, True)
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
    props["distance_m"], props["bearing_deg"] = distance_bearing(hit)
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": f["id"],
        "geometry": geometry_in(f["geometry"], out_crs),
        "properties": props,
    }


def station_head(registry: Registry, i: int) -> bytes:
    """Station *i* as the JSON of :func:`hit_feature` up to its computed properties: without
    the closing ``}}`` of ``properties`` and of the Feature, with a comma after the last
    stored property (if any); ``b""`` when the station stores a computed property itself
    (it keeps its place there, so such a station is serialized in full).

    Made once per registry snapshot and kept in ``registry.json_cache`` (a new snapshot
    keeps the bytes of every station an edit did not replace).
    """
    head = registry.json_cache[i]
    if head is None:
        f = registry.features[i]
        props = f["properties"]
        if COMPUTED_PROPERTIES.isdisjoint(props):
            whole = orjson.dumps(
                {"type": "Feature", "id": f["id"], "geometry": f["geometry"], "properties": props},
                option=JSON_OPTIONS,
            )
            head = whole[:-2] + (b"," if props else b"")  # "}}": properties, Feature
        else:
            head = b""
        registry.json_cache[i] = head
    return head


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
    props["distance_m"], props["bearing_deg"] = distance_bearing(hit)
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": pos.bus_id,
        "geometry": geometry_in({"type": "Point", "coordinates": [pos.lon, pos.lat]}, out_crs),
        "properties": props,
    }
