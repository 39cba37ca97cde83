"""Nearest-station search over a :class:`~yizhan.stations.registry.Registry`, with filters.

Every filter combination gets its own exact KD-tree over the matching stations (see
:class:`~yizhan.geo.nearest.SubsetIndexCache`), so filtering never makes a query miss a
matching station that lies beyond the first k unfiltered ones.

Time-aware search (:meth:`StationSearch.nearest_at`) adds opening hours: the KD-tree of
the filtered subset is asked for a growing number of nearest candidates and hours are
evaluated on those candidates only, in distance order, until *k* open ones are found.
Because the candidates are an exact prefix of the subset in (distance, id) order, the
first *k* open ones among them are the first *k* open ones overall; when open stations
are rare (at night, say) the search evaluates the whole subset at once instead. Cooling
buses are placed where they stand at that time and merged in by exact distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from yizhan.geo.distance import EARTH_RADIUS_M
from yizhan.geo.nearest import PointIndex, SubsetIndexCache
from yizhan.stations.alerts import AlertStore
from yizhan.stations.buses import BusFleet, BusPosition
from yizhan.stations.hours import (
    CLOSED,
    NEVER,
    OPEN,
    UNKNOWN,
    HoursCache,
    hours_key,
    iso_or_none,
    open_state,
)
from yizhan.stations.placements import PlacementStore
from yizhan.stations.registry import Registry, StationFilter, verification_day
from yizhan.stations.vocab import AMENITY_BIT, Kind

DEFAULT_FILTER = StationFilter()

#: Beyond this many candidates the time-aware search evaluates the whole filtered subset.
FALLBACK_CANDIDATES = 2048

_TWO_R = 2.0 * EARTH_RADIUS_M
_MISSING: Any = object()
#: How many formatted change times :meth:`StationSearch.status` keeps (cleared when full).
_CHANGE_TEXT_SIZE = 4096


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4× more, per result
class Hit:
    """One station found: its position in the registry, distance and initial bearing."""

    index: int
    distance_m: float
    bearing_deg: float


@dataclass(frozen=True)
class BusHit:
    """A cooling bus found: where it stands at the query's time, distance and bearing."""

    position: BusPosition
    distance_m: float
    bearing_deg: float

    @property
    def bus_index(self) -> int:
        return self.position.bus_index


class StationHours:
    """The hours key of every station of a registry, and their state at a time.

    Parameters
    ----------
    features : list of dict
        Station Features.
    timezone : str
        Zone of hours without the feature's own ``timezone``.
    holiday_country : str or None
        Country of ``PH`` (``auto``: from each feature's location).
    cache : HoursCache, optional
        Shared with the buses.
    """

    def __init__(
        self,
        features: list[dict[str, Any]],
        timezone: str,
        holiday_country: str | None,
        cache: HoursCache | None = None,
    ) -> None:
        self.cache = cache if cache is not None else HoursCache()
        self.timezone = timezone
        kid: list[int] = []
        self.tz: dict[int, str] = {}  # stations with their own zone
        self.alert_district: dict[int, str | None] = {}  # heat-alert activated stations
        simple: dict[tuple[str, str], int] = {}
        for i, f in enumerate(features):
            p = f["properties"]
            expr = p.get("opening_hours")
            tz = p.get("timezone") or timezone
            if tz != timezone:
                self.tz[i] = tz
            if p.get("activation") == "heat_alert":
                self.alert_district[i] = p.get("district")
            if not expr:
                kid.append(-1)
                continue
            lon, lat = f["geometry"]["coordinates"][:2]
            key = hours_key(expr, tz, holiday_country, lon, lat)
            if key[3] is None:  # no coordinates in the key: share it by (expression, zone)
                k = simple.get((expr, tz))
                if k is None:
                    k = simple[(expr, tz)] = self.cache.key_id(key)
                kid.append(k)
            else:
                kid.append(self.cache.key_id(key))
        self.kid = kid
        self.kid_arr = np.array(kid, dtype=np.int64).reshape(len(kid))

    def zone_of(self, i: int) -> str:
        """Time zone of station *i*'s hours."""
        return self.tz.get(i, self.timezone)

    def state(self, i: int, ts: float, alerts: AlertStore | None = None) -> tuple[int, float]:
        """State of station *i* at POSIX time *ts* and when it changes (``inf``: never).

        Stations without hours are ``UNKNOWN``. Heat-alert activated stations are
        ``CLOSED`` outside an alert covering their district.
        """
        k = self.kid[i]
        if k < 0:
            st, end = UNKNOWN, NEVER
        else:
            st, end = self.cache.state(k, ts)
        if i in self.alert_district:
            return self._with_alert(i, k, st, end, ts, alerts)
        return st, end

    def _with_alert(
        self, i: int, k: int, st: int, end: float, ts: float, alerts: AlertStore | None
    ) -> tuple[int, float]:
        district = self.alert_district[i]
        cover = alerts.cover_until(district, ts) if alerts else None
        if cover is not None:
            if st == OPEN:
                return OPEN, min(end, cover)
            return st, end if end < cover else NEVER
        # No alert now: closed; it next opens when an alert starts and its hours are open.
        nxt = alerts.next_cover(district, ts) if alerts else None
        if nxt is None or k < 0:
            return CLOSED, NEVER
        start, stop = nxt
        st2, end2 = self.cache.state(k, start)
        if st2 == OPEN:
            return CLOSED, start
        return CLOSED, end2 if end2 < stop else NEVER


class StationSearch:
    """Exact, filterable nearest-station queries over one registry.

    Parameters
    ----------
    registry : Registry
        The stations (and cooling buses).
    cache_size : int
        How many filtered indexes to keep.
    timezone : str
        Zone of opening hours without a feature ``timezone`` (the registry's).
    holiday_country : str or None
        Country of ``PH`` in hours; ``auto`` infers it from each feature's location.
    placements : PlacementStore, optional
        Where operators have put cooling buses (default: none, in memory).
    alerts : AlertStore, optional
        Heat alerts (default: none, in memory).

    Examples
    --------
    >>> search = StationSearch(registry)  # doctest: +SKIP
    >>> hits = search.nearest(113.65, 34.76, k=3, flt=StationFilter.make(amenities=["toilet"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        registry: Registry,
        cache_size: int = 64,
        *,
        timezone: str = "Asia/Shanghai",
        holiday_country: str | None = "CN",
        placements: PlacementStore | None = None,
        alerts: AlertStore | None = None,
    ) -> None:
        self.registry = registry
        self.timezone = timezone
        self.holiday_country = holiday_country
        self._indexes = SubsetIndexCache(registry.lon, registry.lat, registry.id_rank, cache_size)
        # A few recent filters without the cache's lock (the common query path).
        self._recent: dict[StationFilter, tuple[PointIndex, NDArray[np.int64]]] = {}
        self._coords: list[tuple[float, float]] = list(
            zip(registry.lon.tolist(), registry.lat.tolist(), strict=True)
        )
        self.alerts = alerts if alerts is not None else AlertStore()
        self._placements = placements
        self._hours: StationHours | None = None
        self._fleet: BusFleet | None = None
        self._open_rate = 0.5  # recent share of open stations among candidates
        #: ISO text of recent ``(next change, zone)`` pairs (see :meth:`status`).
        self._change_text: dict[tuple[float, str], str | None] = {}
        self.index_for(DEFAULT_FILTER)  # build the common case up front

    @property
    def placements(self) -> PlacementStore | None:
        """Where operators have put cooling buses (shared by every snapshot of a registry)."""
        return self._placements

    @property
    def hours(self) -> StationHours:
        """Hours of every station (built on first use)."""
        if self._hours is None:
            self._hours = StationHours(self.registry.features, self.timezone, self.holiday_country)
        return self._hours

    @property
    def fleet(self) -> BusFleet:
        """The registry's cooling buses with their placements (built on first use)."""
        if self._fleet is None:
            self._fleet = BusFleet(
                self.registry.buses,
                self._placements,
                self.timezone,
                self.holiday_country,
                cache=self.hours.cache,
            )
        return self._fleet

    def status(self, i: int, ts: float) -> tuple[bool | None, str | None]:
        """``(open_now, next_change)`` of station *i* at POSIX time *ts*.

        ``open_now`` is ``None`` when the hours are unknown; ``next_change`` is the ISO
        time the station next opens or closes (``None``: no change within a year, or
        unknown hours).
        """
        hours = self.hours
        st, end = hours.state(i, ts, self.alerts)
        if st == UNKNOWN and hours.kid[i] < 0:
            return None, None
        # Many stations change at the same time (18:00 today …): format each time once.
        key = (end, hours.tz.get(i, hours.timezone))
        change = self._change_text.get(key, _MISSING)
        if change is _MISSING:
            if len(self._change_text) >= _CHANGE_TEXT_SIZE:
                self._change_text.clear()
            change = self._change_text[key] = iso_or_none(end, key[1])
        return open_state(st), change

    def index_for(self, flt: StationFilter) -> tuple[PointIndex, NDArray[np.int64]]:
        """The KD-tree over stations passing *flt*, and their positions in the registry."""
        hit = self._recent.get(flt)
        if hit is not None:
            return hit
        entry = self._indexes.get(flt, lambda: self.registry.mask(flt))
        if len(self._recent) >= 16:
            self._recent.clear()
        self._recent[flt] = entry
        return entry

    def nearest(
        self,
        lon: float,
        lat: float,
        k: int = 5,
        flt: StationFilter = DEFAULT_FILTER,
        max_distance_m: float | None = None,
    ) -> list[Hit]:
        """The *k* nearest stations passing *flt* to a WGS-84 point, nearest first.

        Parameters
        ----------
        lon, lat : float
            Query point, degrees WGS-84.
        k : int
            How many stations.
        flt : StationFilter
            Which stations count (default: operational ones).
        max_distance_m : float, optional
            Ignore stations farther than this many metres.

        Returns
        -------
        list of Hit
            Ties in distance are ordered by station id.
        """
        index, sel = self.index_for(flt)
        pos, dist = index.knn_lists(lon, lat, k, max_distance_m)
        return self._hits(lon, lat, pos, dist, sel)

    def nearest_open(
        self,
        lon: float,
        lat: float,
        k: int,
        flt: StationFilter,
        ts: float,
        open_for_s: float = 0.0,
        max_distance_m: float | None = None,
    ) -> list[Hit]:
        """The *k* nearest stations passing *flt* that are open at POSIX time *ts*.

        A station counts when its hours say open at *ts* and stay open at least
        *open_for_s* seconds more; unknown hours never count. Exact: no open station
        passing *flt* is missed, however far out.
        """
        if k < 1:
            raise ValueError(f"Expected k >= 1, got {k}")
        index, sel = self.index_for(flt)
        n = index.n
        if n == 0:
            return []
        hours = self.hours
        kid = hours.kid
        cache = hours.cache
        cstate = cache.state
        run_lo, run_hi, run_st = cache._lo, cache._hi, cache._st
        special = hours.alert_district
        alerts = self.alerts
        need = ts + open_for_s
        # First ask for as many candidates as the recent share of open ones suggests.
        rate = self._open_rate
        want = min(n, k + 1 + math.ceil(1.5 * k * (1.0 - rate) / max(rate, 0.05)))
        picked: list[tuple[int, float]] = []
        done = 0  # candidates evaluated so far
        while True:
            pos, dist = index.knn_lists(lon, lat, want, max_distance_m)
            gpos: list[int] = sel[pos[done:]].tolist()
            for j, g in enumerate(gpos, done):
                kk = kid[g]
                if special and g in special:
                    st, end = hours.state(g, ts, alerts)
                elif kk < 0:
                    continue
                elif run_lo[kk] <= ts < run_hi[kk]:  # the cached run (inlined: hot loop)
                    st, end = run_st[kk], run_hi[kk]
                else:
                    st, end = cstate(kk, ts)
                if st == OPEN and end >= need:
                    picked.append((g, dist[j]))
                    if len(picked) == k:
                        done = j + 1
                        break
            else:
                done = len(pos)
            if len(picked) >= k or len(pos) < want or want >= n:
                break
            if want * 4 > FALLBACK_CANDIDATES:
                self._open_rate = 0.05
                return self._nearest_open_all(lon, lat, k, flt, ts, need, max_distance_m)
            want = min(n, want * 4)
        if done:
            self._open_rate = 0.8 * rate + 0.2 * max(len(picked) / done, 0.01)
        return self._hits(lon, lat, [g for g, _ in picked], [d for _, d in picked], None)

    def _nearest_open_all(
        self,
        lon: float,
        lat: float,
        k: int,
        flt: StationFilter,
        ts: float,
        need: float,
        max_distance_m: float | None,
    ) -> list[Hit]:
        """:meth:`nearest_open` by evaluating every station of the subset (open ones rare)."""
        index, sel = self.index_for(flt)
        hours = self.hours
        kids = hours.kid_arr[sel]
        uniq = np.unique(kids[kids >= 0])
        st_by = np.full(len(hours.cache) + 1, UNKNOWN, dtype=np.int64)
        end_by = np.zeros(len(hours.cache) + 1, dtype=np.float64)
        for kk in uniq.tolist():
            st_by[kk], end_by[kk] = hours.cache.state(kk, ts)
        ok = (kids >= 0) & (st_by[kids] == OPEN) & (end_by[kids] >= need)
        if hours.alert_district:
            for j in np.flatnonzero(np.isin(sel, list(hours.alert_district))).tolist():
                st, end = hours.state(int(sel[j]), ts, self.alerts)
                ok[j] = st == OPEN and end >= need
        cand = np.flatnonzero(ok)
        if cand.size == 0:
            return []
        lam, phi = math.radians(lon), math.radians(lat)
        q = np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
        chord = np.linalg.norm(index.xyz[cand] - q, axis=1)
        dist = _TWO_R * np.arcsin(np.minimum(chord * 0.5, 1.0))
        if max_distance_m is not None:
            keep = dist <= max_distance_m
            cand, chord, dist = cand[keep], chord[keep], dist[keep]
        order = np.lexsort((index.rank[cand], chord))[:k]
        return self._hits(lon, lat, cand[order].tolist(), dist[order].tolist(), sel)

    def nearest_at(
        self,
        lon: float,
        lat: float,
        k: int,
        flt: StationFilter,
        ts: float,
        open_for_s: float = 0.0,
        max_distance_m: float | None = None,
        only_open: bool = True,
    ) -> list[Hit | BusHit]:
        """Nearest stations and cooling buses at POSIX time *ts*, nearest first.

        Parameters
        ----------
        lon, lat : float
            Query point, degrees WGS-84.
        k : int
            How many results in all.
        flt : StationFilter
            Which stations and buses count.
        ts : float
            The time (POSIX seconds).
        open_for_s : float
            Each result must stay open (a bus: stay at its place) this many seconds more.
        max_distance_m : float, optional
            Ignore results farther than this.
        only_open : bool
            ``False``: stations are not filtered by hours (buses still are: a bus is
            found only where it stands at *ts*).

        Returns
        -------
        list of Hit or BusHit
            Ties in distance are ordered by id.
        """
        if only_open:
            stations = self.nearest_open(lon, lat, k, flt, ts, open_for_s, max_distance_m)
        else:
            stations = self.nearest(lon, lat, k, flt, max_distance_m)
        if not self.registry.buses:
            return list(stations)
        limit = max_distance_m
        if len(stations) == k:  # a bus farther than the k-th station cannot be among the k
            limit = (
                stations[-1].distance_m if limit is None else min(limit, stations[-1].distance_m)
            )
        buses = self.buses_near(lon, lat, flt, ts, open_for_s, limit)
        if not buses:
            return list(stations)
        ids = self.registry.ids
        out: list[Hit | BusHit] = []
        i = j = 0
        while len(out) < k and (i < len(stations) or j < len(buses)):
            if j < len(buses) and (
                i >= len(stations)
                or (buses[j].distance_m, buses[j].position.bus_id)
                < (stations[i].distance_m, ids[stations[i].index])
            ):
                out.append(buses[j])
                j += 1
            else:
                out.append(stations[i])
                i += 1
        return out

    def buses_near(
        self,
        lon: float,
        lat: float,
        flt: StationFilter,
        ts: float,
        open_for_s: float = 0.0,
        max_distance_m: float | None = None,
    ) -> list[BusHit]:
        """Cooling buses passing *flt* where they stand at *ts*, nearest first (ties by id)."""
        if not self.registry.buses or (
            flt.kinds is not None and Kind.cooling_bus.value not in flt.kinds
        ):
            return []
        rows = self.fleet.rows(ts)
        if not rows:
            return []
        need = ts + open_for_s
        lam, phi = math.radians(lon), math.radians(lat)
        cphi, sphi = math.cos(phi), math.sin(phi)
        qx, qy, qz = cphi * math.cos(lam), cphi * math.sin(lam), sphi
        need_bits = 0
        for a in flt.amenities:
            need_bits |= AMENITY_BIT[a]
        statuses, categories, districts = flt.statuses, flt.categories, flt.districts
        fresh = None if flt.freshness is None else flt.freshness == "fresh"
        buses = self.registry.buses
        sin, cos, sqrt, asin = math.sin, math.cos, math.sqrt, math.asin
        out: list[BusHit] = []
        for pos, x, y, z, lam2, s2, c2, status, bits, category, district in rows:
            if (
                pos.leaves_at < need
                or (statuses is not None and status not in statuses)
                or (need_bits and bits & need_bits != need_bits)
                or (categories is not None and category not in categories)
                or (districts is not None and district not in districts)
                or (
                    fresh is not None
                    and fresh
                    != (
                        verification_day(buses[pos.bus_index]["properties"].get("last_verified_at"))
                        >= flt.cutoff_day
                    )
                )
            ):
                continue
            dx, dy, dz = x - qx, y - qy, z - qz
            d = _TWO_R * asin(min(sqrt(dx * dx + dy * dy + dz * dz) * 0.5, 1.0))
            if max_distance_m is not None and d > max_distance_m:
                continue
            dlam = lam2 - lam
            bearing = math.degrees(math.atan2(sin(dlam) * c2, cphi * s2 - sphi * c2 * cos(dlam)))
            out.append(BusHit(pos, d, bearing % 360.0))
        if len(out) > 1:
            out.sort(key=lambda h: (h.distance_m, h.position.bus_id))
        return out

    def serving_at(
        self, flt: StationFilter, ts: float, open_for_s: float = 0.0
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], int, int]:
        """Where service is offered at POSIX time *ts*: for coverage and siting in a window.

        Stations passing *flt* that are open at *ts* and stay open *open_for_s* seconds
        (unknown hours never count), then the cooling buses passing *flt* where they stand
        at *ts* for that long.

        Returns
        -------
        lon, lat : numpy.ndarray
            Stations first, then buses (WGS-84 degrees).
        n_stations, n_buses : int
        """
        sel = np.flatnonzero(self.registry.mask(flt))
        hours = self.hours
        keep = []
        for i in sel.tolist():
            st, end = hours.state(i, ts, self.alerts)
            if st == OPEN and end - ts >= open_for_s:
                keep.append(i)
        idx = np.asarray(keep, dtype=np.int64)
        buses = self.buses_near(0.0, 0.0, flt, ts, open_for_s)
        lon = np.concatenate([self.registry.lon[idx], np.array([b.position.lon for b in buses])])
        lat = np.concatenate([self.registry.lat[idx], np.array([b.position.lat for b in buses])])
        return lon, lat, int(idx.size), len(buses)

    def within(
        self,
        lon: float,
        lat: float,
        radius_m: float,
        flt: StationFilter = DEFAULT_FILTER,
        k: int | None = None,
    ) -> list[Hit]:
        """Every station passing *flt* within *radius_m* metres, nearest first (at most *k*)."""
        index, sel = self.index_for(flt)
        found = index.within(lon, lat, radius_m, k)
        return self._hits(lon, lat, found.index.tolist(), found.distance_m.tolist(), sel)

    def nearest_many(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        k: int = 1,
        flt: StationFilter = DEFAULT_FILTER,
        max_distance_m: float | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Nearest stations for many points: registry positions (-1 if none) and metres (inf)."""
        index, sel = self.index_for(flt)
        pos, dist = index.knn_many(lon, lat, k, max_distance_m)
        out = np.where(pos >= 0, sel[np.maximum(pos, 0)] if len(sel) else -1, -1)
        return out.astype(np.int64), dist

    def _hits(
        self,
        lon: float,
        lat: float,
        pos: list[int],
        dist: list[float],
        sel: NDArray[np.int64] | None,
    ) -> list[Hit]:
        if not pos:
            return []
        gpos = pos
        if sel is not None:
            item = sel.item  # for a few positions, twice as fast as sel[pos].tolist()
            gpos = [item(p) for p in pos]
        coords = self._coords
        # Initial bearing, inlined: this runs for every result of every query.
        phi1 = math.radians(lat)
        sin1, cos1 = math.sin(phi1), math.cos(phi1)
        hits = []
        for p, d in zip(gpos, dist, strict=True):
            lon2, lat2 = coords[p]
            phi2 = math.radians(lat2)
            dlam = math.radians(lon2 - lon)
            cos2 = math.cos(phi2)
            y = math.sin(dlam) * cos2
            x = cos1 * math.sin(phi2) - sin1 * cos2 * math.cos(dlam)
            hits.append(Hit(p, d, math.degrees(math.atan2(y, x)) % 360.0))
        return hits
