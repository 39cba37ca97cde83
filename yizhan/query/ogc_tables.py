"""The columns OGC filters run on: stations (the registry's columns, cached per snapshot)
and small feature lists (cooling buses, districts, gaps).

A station column is built once per registry snapshot (one pass over the features) and
then every filter on it is a numpy expression; computed properties (``open_now``,
``stale``, ``needs_check``) are evaluated only when a filter names them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from yizhan.query.features import Flags
from yizhan.query.ogc_filter import BoolArray, Queryable, instant_column, number_column
from yizhan.stations.registry import Registry
from yizhan.stations.search import StationSearch

_TEXT = "string"

#: What a filter may name in the stations collection (``/queryables``).
STATION_QUERYABLES: dict[str, Queryable] = {
    "id": Queryable(_TEXT, "The station's id."),
    "name": Queryable(_TEXT, "Name (Chinese or the local language)."),
    "name_en": Queryable(_TEXT, "English name."),
    "kind": Queryable(_TEXT, "station, cooling_centre, …"),
    "category": Queryable(_TEXT, "union_station, bank_outlet, …"),
    "operator": Queryable(_TEXT, "Who runs the station."),
    "network": Queryable(_TEXT, "Network or brand."),
    "address": Queryable(_TEXT, "Street address."),
    "district": Queryable(_TEXT, "District name."),
    "phone": Queryable(_TEXT, "Phone number."),
    "opening_hours": Queryable(_TEXT, "OpenStreetMap opening_hours syntax."),
    "opening_hours_text": Queryable(_TEXT, "Opening hours as the source wrote them."),
    "status": Queryable(_TEXT, "operational, temporarily_closed, seasonal_closed, removed, …"),
    "status_reason": Queryable(_TEXT, "Why the status was set."),
    "source": Queryable(_TEXT, "Where the record came from."),
    "coord_origin": Queryable(_TEXT, "How the position was obtained."),
    "last_verified_by": Queryable(_TEXT, "Who last checked the station on site."),
    "timezone": Queryable(_TEXT, "IANA time zone of the opening hours."),
    "capacity": Queryable("integer", "Places to rest."),
    "last_verified_at": Queryable("date-time", "When it was last checked on site."),
    "created_at": Queryable("date-time", "When it was added through the API."),
    "updated_at": Queryable("date-time", "When it was last changed through the API."),
    "amenities": Queryable("array", "drinking_water, toilet, air_conditioning, …"),
    "guessed": Queryable("array", "Properties a source inferred rather than recorded."),
    "open_now": Queryable("boolean", "Open at the time of the request (null: hours unknown)."),
    "stale": Queryable("boolean", "Not verified within the server's stale_after_days."),
    "needs_check": Queryable("boolean", "Several workers reported a problem since verification."),
}


#: Values a station without the property has (docs/registry.md): no status is operational.
DEFAULTS: dict[str, Any] = {"status": "operational"}


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def spatial_points(
    op: str, geom: Any, lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> BoolArray:
    """``shapely.<op>(point, geom)`` for points ``(lon, lat)``, vectorised."""
    shapely.prepare(geom)
    if op in ("intersects", "disjoint"):
        hit = np.asarray(shapely.intersects_xy(geom, lon, lat), dtype=bool)
        return ~hit if op == "disjoint" else hit
    if op == "within":
        return np.asarray(shapely.contains_xy(geom, lon, lat), dtype=bool)
    # A point contains or equals only the same single point.
    if shapely.get_type_id(geom) != 0:
        return np.zeros(lon.shape[0], dtype=bool)
    x, y = shapely.get_x(geom), shapely.get_y(geom)
    return np.asarray((lon == x) & (lat == y), dtype=bool)


def property_column(values: Sequence[Any], q: Queryable, tz: ZoneInfo) -> NDArray[Any]:
    """A column of *values* typed for filters: floats for numbers, booleans (1/0) and
    date-times (POSIX seconds), ``nan`` where missing; objects otherwise (``None``)."""
    if q.type in ("number", "integer"):
        return number_column(values)
    if q.type == "date-time":
        return instant_column(values, tz)
    if q.type == "boolean":
        return np.array(
            [np.nan if not isinstance(v, bool) else float(v) for v in values], dtype=np.float64
        ).reshape(len(values))
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if q.type == "array":
            out[i] = list(v) if isinstance(v, list) else None
        else:
            out[i] = None if v is None or isinstance(v, list | dict) else str(v)
    return out


Categorical = tuple[NDArray[np.int64], NDArray[np.object_]]


def categorical(col: NDArray[Any]) -> Categorical:
    """``(codes, categories)`` of a text column: ``col[i] == categories[codes[i]]``, code
    -1 where the value is missing (pandas' hash-based factorize, no sorting)."""
    codes, cats = pd.factorize(col, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(cats, dtype=object)


class _SnapshotColumns:
    """Columns of one registry snapshot, built on first use."""

    def __init__(self, registry: Registry, tz: ZoneInfo) -> None:
        self.ref = weakref.ref(registry)
        self.tz = tz
        self.columns: dict[str, NDArray[Any]] = {}
        self.categoricals: dict[str, Categorical] = {}
        self.lock = threading.Lock()

    def categorical(self, registry: Registry, name: str) -> Categorical:
        cat = self.categoricals.get(name)
        if cat is None:
            col = self.get(registry, name)
            with self.lock:
                cat = self.categoricals.setdefault(name, categorical(col))
        return cat

    def get(self, registry: Registry, name: str) -> NDArray[Any]:
        col = self.columns.get(name)
        if col is None:
            with self.lock:
                col = self.columns.get(name)
                if col is None:
                    if name == "id":
                        col = np.array(registry.ids, dtype=object).reshape(len(registry))
                    else:
                        default = DEFAULTS.get(name)
                        vals = [
                            _or_default(f["properties"].get(name), default)
                            for f in registry.features
                        ]
                        col = property_column(vals, STATION_QUERYABLES[name], self.tz)
                    self.columns[name] = col
        return col


_snapshots: dict[tuple[int, str], _SnapshotColumns] = {}
_snapshots_lock = threading.Lock()


def _columns_of(registry: Registry, timezone: str) -> _SnapshotColumns:
    key = (id(registry), timezone)
    with _snapshots_lock:
        cols = _snapshots.get(key)
        if cols is None or cols.ref() is not registry:
            # One snapshot per time zone is served at a time: drop the older ones.
            for k in [k for k, v in _snapshots.items() if v.ref() is None or k[1] == timezone]:
                del _snapshots[k]
            cols = _SnapshotColumns(registry, ZoneInfo(timezone))
            _snapshots[key] = cols
    return cols


class StationTable:
    """The stations of *search*'s registry as a filter table (see :class:`.ogc_filter.Table`).

    ``open_now`` is evaluated at POSIX time *ts*; ``stale`` and ``needs_check`` with *flags*.
    """

    def __init__(self, search: StationSearch, flags: Flags, ts: float, timezone: str) -> None:
        self.search = search
        self.registry = search.registry
        self.flags = flags
        self.ts = ts
        self._cols = _columns_of(self.registry, timezone)

    def __len__(self) -> int:
        return len(self.registry)

    def column(self, name: str) -> NDArray[Any]:
        reg = self.registry
        n = len(reg)
        if name == "open_now":
            out = np.full(n, np.nan)
            for i in range(n):
                is_open, _ = self.search.status(i, self.ts)
                if is_open is not None:
                    out[i] = float(is_open)
            return out
        if name == "stale":
            cutoff = self.flags.today.toordinal() - self.flags.stale_after_days
            day = reg.verified_day
            return np.asarray((day < 0) | (day < cutoff), dtype=np.float64)
        if name == "needs_check":
            return needs_check_column(reg, self.flags).astype(np.float64)
        return self._cols.get(reg, name)

    def categorical(self, name: str) -> Categorical | None:
        """Codes and categories of a text property (filters compare the few distinct
        values, then take by code), ``None`` for other properties and ``id``."""
        q = STATION_QUERYABLES.get(name)
        if q is None or q.type != "string" or name == "id":
            return None
        return self._cols.categorical(self.registry, name)

    def spatial(self, op: str, geom: Any) -> BoolArray:
        return spatial_points(op, geom, self.registry.lon, self.registry.lat)


def needs_check_column(registry: Registry, flags: Flags) -> BoolArray:
    """Whether each station is flagged ``needs_check`` (only reported stations are checked)."""
    flagged = np.zeros(len(registry), dtype=bool)
    if flags.reports is not None:
        for sid in flags.reports.station_ids():
            i = registry.index_of.get(sid)
            if i is not None and flags(registry.features[i])["needs_check"]:
                flagged[i] = True
    return flagged


class FeatureListTable:
    """A small list of GeoJSON Features (buses, districts, gaps) as a filter table."""

    def __init__(
        self,
        features: Sequence[Mapping[str, Any]],
        queryables: Mapping[str, Queryable],
        timezone: str = "UTC",
        geometries: Callable[[], NDArray[np.object_]] | None = None,
    ) -> None:
        self.features = features
        self.queryables = queryables
        self.tz = ZoneInfo(timezone)
        self._geometries = geometries
        self._geoms: NDArray[np.object_] | None = None

    def __len__(self) -> int:
        return len(self.features)

    def column(self, name: str) -> NDArray[Any]:
        if name == "id":
            return np.array([f.get("id") for f in self.features], dtype=object).reshape(
                len(self.features)
            )
        vals = [f["properties"].get(name) for f in self.features]
        return property_column(vals, self.queryables[name], self.tz)

    def geometries(self) -> NDArray[np.object_]:
        """The features' geometries as shapely objects."""
        if self._geoms is None:
            if self._geometries is not None:
                self._geoms = self._geometries()
            else:
                self._geoms = np.array(
                    [shapely.geometry.shape(f["geometry"]) for f in self.features], dtype=object
                ).reshape(len(self.features))
        return self._geoms

    def spatial(self, op: str, geom: Any) -> BoolArray:
        shapely.prepare(geom)
        geoms = self.geometries()
        if op == "within":
            return np.asarray(shapely.within(geoms, geom), dtype=bool)
        if op == "contains":
            return np.asarray(shapely.contains(geoms, geom), dtype=bool)
        if op == "equals":
            return np.asarray(shapely.equals(geoms, geom), dtype=bool)
        hit = np.asarray(shapely.intersects(geoms, geom), dtype=bool)
        return ~hit if op == "disjoint" else hit
