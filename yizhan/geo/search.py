"""Nearest-station search over a :class:`~yizhan.stations.registry.Registry`, with filters.

Every filter combination gets its own exact KD-tree over the matching stations (see
:class:`~yizhan.geo.nearest.SubsetIndexCache`), so filtering never makes a query miss a
matching station that lies beyond the first k unfiltered ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from yizhan.geo.crs import transform
from yizhan.geo.nearest import PointIndex, SubsetIndexCache
from yizhan.stations.registry import Registry, StationFilter

DEFAULT_FILTER = StationFilter()


@dataclass(frozen=True)
class Hit:
    """One station found: its position in the registry, distance and initial bearing."""

    index: int
    distance_m: float
    bearing_deg: float


class StationSearch:
    """Exact, filterable nearest-station queries over one registry.

    Parameters
    ----------
    registry : Registry
        The stations.
    cache_size : int
        How many filtered indexes to keep.

    Examples
    --------
    >>> search = StationSearch(registry)  # doctest: +SKIP
    >>> hits = search.nearest(113.65, 34.76, k=3, flt=StationFilter.make(amenities=["toilet"]))  # doctest: +SKIP
    """

    def __init__(self, registry: Registry, cache_size: int = 64) -> None:
        self.registry = registry
        self._indexes = SubsetIndexCache(registry.lon, registry.lat, registry.id_rank, cache_size)
        self._coords: list[tuple[float, float]] = list(
            zip(registry.lon.tolist(), registry.lat.tolist(), strict=True)
        )
        self.index_for(DEFAULT_FILTER)  # build the common case up front

    def index_for(self, flt: StationFilter) -> tuple[PointIndex, NDArray[np.int64]]:
        """The KD-tree over stations passing *flt*, and their positions in the registry."""
        return self._indexes.get(flt, lambda: self.registry.mask(flt))

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
        self, lon: float, lat: float, pos: list[int], dist: list[float], sel: NDArray[np.int64]
    ) -> list[Hit]:
        if not pos:
            return []
        gpos: list[int] = sel[pos].tolist()
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


def geometry_in(geometry: dict[str, Any], out_crs: str) -> dict[str, Any]:
    """A Point geometry with its coordinates converted from WGS-84 to *out_crs*."""
    if out_crs == "wgs84":
        return geometry
    lon, lat = geometry["coordinates"][:2]
    x, y = transform(lon, lat, "wgs84", out_crs)
    return {"type": "Point", "coordinates": [round(float(x), 7), round(float(y), 7)]}
