"""Walking answers: a loaded street network wired to the registry's stations.

:class:`Walking` holds the :class:`~yizhan.geo.network.WalkNetwork` a server or a command
loaded (``YIZHAN_NETWORK`` / ``--network``), the walking speed and the largest snap
distance, and snaps the stations of each registry snapshot once (a cache keyed on the
registry object, so an edited registry's new snapshot is snapped again and the old one's
snap is dropped with it). :func:`nearest_walk` is the exact walking k-nearest that
``/nearest?metric=walk``, the find page and ``yizhan nearest --metric walk`` share;
:func:`isochrone_collection` the GeoJSON of ``/isochrone`` and
``/stations/{id}/isochrone``. The searches themselves are in :mod:`yizhan.geo.network`.

Analyses on foot run in analysis processes (:mod:`yizhan.query.analysis`): the server
hands them a :class:`WalkSpec` (the network file and its identity, the speed and the snap
limit) and :meth:`Walking.open` maps the file there (``load_network(mmap=True)``: no copy
of the arrays, the page cache is shared). The spec also carries the snaps of the points
the analysis will ask about (:meth:`Walking.spec` with the registry, the demand and any
other points), made by the server, which already holds the snapping index: the stations'
once per registry snapshot, a study's demand once per demand object (a bounded cache), the
rest (buses, candidates) per request. The process then never builds the snapping index
(seconds and hundreds of MB per million nodes); the answers are the same, since a point's
snap does not depend on the other points of its batch.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from yizhan.errors import InvalidInputError, YizhanError
from yizhan.geo.demand import Demand
from yizhan.geo.network import Snapped, SnapTable, WalkNetwork, walk_minutes
from yizhan.network import load_network
from yizhan.settings import Settings
from yizhan.stations.registry import Registry, StationFilter
from yizhan.stations.search import BusHit, Hit, StationSearch

#: The metrics ``/nearest``, coverage and siting accept.
METRICS = ("great_circle", "walk")


#: Demand objects whose snaps a server keeps (a study's demand is one object).
DEMAND_SNAPS_KEPT = 4


@dataclass(frozen=True)
class WalkSpec:
    """What an analysis process needs to open the server's walking network.

    ``identity`` is the file's ``(size, mtime_ns, inode)`` when the server loaded it: a
    file replaced since then is refused rather than answering from another network.
    ``snaps``: points the server snapped for this analysis (:meth:`Walking.spec`), so that
    the process needs no snapping index for them.
    """

    path: str
    speed_kmh: float
    max_snap_m: float
    source: str
    identity: tuple[int, int, int]
    snaps: tuple[SnapTable, ...] = field(default=(), compare=False)


def _identity(path: str | Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class Walking:
    """A walking network with its speed, its largest snap distance and station snaps.

    Parameters
    ----------
    network : WalkNetwork
        The graph.
    speed_kmh : float
        Walking speed turning metres into minutes.
    max_snap_m : float
        A point farther than this from every walkable way is outside the network's area.
    source : str
        What the network was loaded from (a file name), for messages and answers.
    path : str or pathlib.Path, optional
        The network file (what :meth:`spec` hands to analysis processes).
    """

    def __init__(
        self,
        network: WalkNetwork,
        speed_kmh: float,
        max_snap_m: float,
        source: str = "network",
        path: str | Path | None = None,
    ) -> None:
        self.network = network
        self.speed_kmh = float(speed_kmh)
        self.max_snap_m = float(max_snap_m)
        self.source = source
        self.path = None if path is None else Path(path).resolve()
        self._identity = None if self.path is None else _identity(self.path)
        self._lock = threading.Lock()
        # keyed on id(registry), with a weak reference to tell a reused id from the same
        # object (a Registry is a dataclass, so it cannot be a dictionary key itself)
        self._snaps: dict[int, tuple[weakref.ref[Registry], Snapped]] = {}
        self._station_tables: dict[int, tuple[weakref.ref[Registry], SnapTable]] = {}
        # a study's demand, snapped once (bounded: the oldest is dropped)
        self._demand_lock = threading.Lock()
        self._demand: OrderedDict[int, tuple[weakref.ref[Demand], SnapTable]] = OrderedDict()

    @classmethod
    def load(cls, path: str | Path, settings: Settings) -> Walking:
        """Load the network file *path* (checked; a clear error names a bad file)."""
        net = load_network(path).network
        net.prepare()
        return cls(net, settings.walk_speed_kmh, settings.walk_max_snap_m, Path(path).name, path)

    def spec(
        self,
        registry: Registry | None = None,
        demand: Demand | None = None,
        points: Sequence[tuple[Any, Any]] = (),
    ) -> WalkSpec:
        """How an analysis process opens this network (:meth:`open`), with the snaps of
        the points it will ask about, so that it builds no snapping index: the stations of
        *registry* and the points of *demand* (each snapped once and kept, see
        :meth:`station_table` and :meth:`demand_table`) and *points* (``(lon, lat)``
        arrays, e.g. buses or siting candidates: those not already among the former are
        snapped now). Snapping a large demand the first time takes seconds (2–3 s per
        million points): call this from a thread, not the event loop.
        """
        if self.path is None or self._identity is None:
            raise YizhanError("this walking network was not loaded from a file")
        tables: list[SnapTable] = []
        if demand is not None and len(demand):
            tables.append(self.demand_table(demand))
        if registry is not None and len(registry.lon):
            tables.append(self.station_table(registry))
        for lon, lat in points:
            x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
            y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
            if x.shape != y.shape or x.ndim != 1 or x.size == 0:
                continue  # not points: the analysis says so itself
            todo = np.ones(x.size, dtype=bool)
            for table in tables:
                todo &= table.find(x, y) < 0
            if todo.any():
                tables.append(SnapTable(self.network.snap(x[todo], y[todo], "points")))
        return WalkSpec(
            str(self.path),
            self.speed_kmh,
            self.max_snap_m,
            self.source,
            self._identity,
            tuple(tables),
        )

    @classmethod
    def open(cls, spec: WalkSpec) -> Walking:
        """The network of *spec*, its arrays mapped from the file (in an analysis process).

        Raises
        ------
        YizhanError
            The file is gone or was replaced since the server loaded it.
        """
        try:
            same = _identity(spec.path) == spec.identity
        except OSError:
            same = False
        if not same:
            raise YizhanError(
                f"the walking network {spec.source} changed on disk since the server loaded "
                "it: restart the server to use the new one"
            )
        net = load_network(spec.path, check=False, mmap=True).network
        net.use_snaps(spec.snaps)
        return cls(net, spec.speed_kmh, spec.max_snap_m, spec.source, spec.path)

    @classmethod
    def from_settings(cls, settings: Settings) -> Walking | None:
        """The network ``settings.network`` names, or ``None`` when none is set."""
        return None if settings.network is None else cls.load(settings.network, settings)

    @property
    def metres_per_min(self) -> float:
        """Metres walked in a minute."""
        return self.speed_kmh * 1000.0 / 60.0

    def minutes(self, walk_m: float) -> float:
        """Minutes to walk *walk_m* metres at this speed."""
        return float(walk_minutes(walk_m, self.speed_kmh))

    def stations(self, registry: Registry) -> Snapped:
        """Every station of *registry* snapped (once per registry snapshot)."""
        with self._lock:
            entry = self._snaps.get(id(registry))
            if entry is not None and entry[0]() is registry:
                return entry[1]
            for key in [k for k, (ref, _) in self._snaps.items() if ref() is None]:
                del self._snaps[key]
            got = self.network.snap(registry.lon, registry.lat, "stations")
            self._snaps[id(registry)] = (weakref.ref(registry), got)
            return got

    def station_table(self, registry: Registry) -> SnapTable:
        """:meth:`stations` as a :class:`SnapTable` (once per registry snapshot)."""
        snapped = self.stations(registry)
        with self._lock:
            entry = self._station_tables.get(id(registry))
            if entry is not None and entry[0]() is registry:
                return entry[1]
            for key in [k for k, (ref, _) in self._station_tables.items() if ref() is None]:
                del self._station_tables[key]
            table = SnapTable(snapped)
            self._station_tables[id(registry)] = (weakref.ref(registry), table)
            return table

    def demand_table(self, demand: Demand) -> SnapTable:
        """The points of *demand* snapped, once per demand object (the last
        :data:`DEMAND_SNAPS_KEPT` kept). Takes seconds for millions of points the first
        time; concurrent first calls wait for one snap."""
        with self._demand_lock:
            entry = self._demand.get(id(demand))
            if entry is not None and entry[0]() is demand:
                self._demand.move_to_end(id(demand))
                return entry[1]
            table = SnapTable(self.network.snap(demand.lon, demand.lat, "demand"))
            self._demand[id(demand)] = (weakref.ref(demand), table)
            self._demand.move_to_end(id(demand))
            while len(self._demand) > DEMAND_SNAPS_KEPT:
                self._demand.popitem(last=False)
            return table

    def snap_point(self, lon: float, lat: float) -> Snapped:
        """Snap one point, or :class:`InvalidInputError` naming ``lon``/``lat`` when it is
        farther than :attr:`max_snap_m` from every walkable way."""
        snapped = self.network.snap([lon], [lat], "lon/lat")
        if snapped.too_far(self.max_snap_m).size:
            raise InvalidInputError(
                "lon/lat",
                f"the point ({lon:.6f}, {lat:.6f}) is {float(snapped.snap_m[0]):.0f} m from the "
                f"nearest walkable way of {self.source}, more than {self.max_snap_m:.0f} m: it is "
                "outside the walking network's area",
            )
        return snapped

    def snap_point_or_none(self, lon: float, lat: float) -> Snapped | None:
        """:meth:`snap_point`, or ``None`` when the point is outside the network's area."""
        try:
            return self.snap_point(lon, lat)
        except InvalidInputError:
            return None


def require(walking: Walking | None, metric: str) -> Walking | None:
    """The network for *metric*: ``None`` for great-circle, *walking* for ``walk``.

    Raises :class:`InvalidInputError` naming ``metric`` when it is unknown or when walking
    is asked for and no network is loaded (never a silent fall back to great-circle).
    """
    if metric not in METRICS:
        raise InvalidInputError("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    if metric == "great_circle":
        return None
    if walking is None:
        raise InvalidInputError(
            "metric",
            "walk needs a walking network, and none is loaded (set YIZHAN_NETWORK or "
            "--network to a file built by `yizhan network build`)",
        )
    return walking


def nearest_walk(
    search: StationSearch,
    walking: Walking,
    lon: float,
    lat: float,
    k: int,
    flt: StationFilter,
    ts: float,
    open_for_s: float = 0.0,
    max_walk_m: float | None = None,
    only_open: bool = True,
) -> list[tuple[Hit | BusHit, float]]:
    """The *k* stations (and cooling buses) nearest on foot, exactly, with walking metres.

    The candidates are those :meth:`StationSearch.nearest_at` returns for the same filter,
    time and hours (so every filter and ``open_at`` hold), in great-circle order: a lower
    bound of walking distance, which :meth:`WalkNetwork.nearest_k` expands until the *k*
    walks are settled. *max_walk_m* leaves out anything farther on foot. Ties in walking
    distance keep the great-circle order.
    """
    origin_check = walking.snap_point(lon, lat)
    del origin_check
    registry = search.registry
    n = len(registry.features)
    stations = walking.stations(registry)
    bus_rows = search.fleet.rows(ts) if registry.buses else []
    bus_slot = {row[0].bus_index: n + i for i, row in enumerate(bus_rows)}
    candidates = stations
    if bus_rows:
        buses = walking.network.snap(
            [row[0].lon for row in bus_rows], [row[0].lat for row in bus_rows], "buses"
        )
        candidates = Snapped(
            **{
                name: np.concatenate([getattr(stations, name), getattr(buses, name)])
                for name in Snapped.__dataclass_fields__
            }
        )
    hits: dict[int, Hit | BusHit] = {}
    limit = None if max_walk_m is None else float(max_walk_m)

    def gc_knn(m: int) -> tuple[list[int], list[float]]:
        got = search.nearest_at(lon, lat, m, flt, ts, open_for_s, limit, only_open)
        ids = [bus_slot[h.bus_index] if isinstance(h, BusHit) else h.index for h in got]
        hits.update(zip(ids, got, strict=True))
        return ids, [h.distance_m for h in got]

    found = walking.network.nearest_k(
        lon, lat, k, candidates, gc_knn, math.inf if limit is None else limit
    )
    return [(hits[int(i)], float(w)) for i, w in zip(found.index, found.walk_m, strict=True)]


def parse_minutes(minutes: str | Sequence[float], default: Sequence[float] = (15,)) -> list[float]:
    """Walking times from ``"5,10,15"`` (or a list), largest first; errors name ``minutes``."""
    if isinstance(minutes, str):
        parts = [p.strip() for p in minutes.split(",") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InvalidInputError(
                "minutes", f"must be numbers separated by commas, got {minutes!r}"
            ) from None
    else:
        values = [float(x) for x in minutes]
    if not values:
        values = [float(x) for x in default]
    if len(values) > 12:
        raise InvalidInputError("minutes", f"at most 12 values, got {len(values)}")
    if not all(math.isfinite(x) and 0 < x <= 120 for x in values):
        raise InvalidInputError("minutes", f"each must be above 0 and at most 120, got {values}")
    return sorted(set(values), reverse=True)


def isochrone_collection(
    walking: Walking,
    lon: float,
    lat: float,
    minutes: Sequence[float],
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Areas reachable on foot from a point within each of *minutes*, as GeoJSON.

    One Feature per value, largest first (so smaller areas draw on top), each a Polygon or
    MultiPolygon in WGS-84 with ``minutes``, ``walk_m`` (the budget), ``area_m2`` and
    *properties*. The method is :meth:`WalkNetwork.isochrones` (docs/walking.md).
    """
    walking.snap_point(lon, lat)
    mins = sorted({float(x) for x in minutes}, reverse=True)
    polygons = walking.network.isochrones(lon, lat, mins, speed_kmh=walking.speed_kmh)
    features = []
    for m, poly in zip(mins, polygons, strict=True):
        props: dict[str, Any] = {
            "minutes": m,
            "walk_m": round(m * walking.metres_per_min, 1),
            "speed_kmh": walking.speed_kmh,
        }
        props.update(properties or {})
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(poly)
                if not poly.is_empty
                else {"type": "Polygon", "coordinates": []},
                "properties": props,
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "query": {
            "lon": lon,
            "lat": lat,
            "minutes": mins,
            "speed_kmh": walking.speed_kmh,
            "network": walking.source,
        },
    }
