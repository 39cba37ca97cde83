"""Station listings: every filter of ``GET /stations`` (and of exports and feature APIs
built on it) applied to the registry in one place, ordered by id, paged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.query.features import Flags
from yizhan.stations.registry import Registry, StationFilter

#: Largest offset a listing accepts (far beyond any registry; bounds the integer).
MAX_OFFSET = 10_000_000


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` in degrees; ``minlon > maxlon`` crosses the 180° meridian."""
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidInputError(
            "bbox", f"Expected 4 comma-separated numbers minlon,minlat,maxlon,maxlat, got {text!r}"
        )
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise InvalidInputError(
            "bbox", f"Expected numbers minlon,minlat,maxlon,maxlat, got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in vals):
        raise InvalidInputError("bbox", f"Expected finite numbers, got {text!r}")
    minlon, minlat, maxlon, maxlat = vals
    if not (-180 <= minlon <= 180 and -180 <= maxlon <= 180):
        raise InvalidInputError("bbox", f"Expected longitudes in -180..180, got {minlon}, {maxlon}")
    if not (-90 <= minlat <= 90 and -90 <= maxlat <= 90):
        raise InvalidInputError("bbox", f"Expected latitudes in -90..90, got {minlat}, {maxlat}")
    if minlat > maxlat:
        raise InvalidInputError("bbox", f"Expected minlat <= maxlat, got {minlat} > {maxlat}")
    return minlon, minlat, maxlon, maxlat


def bbox_mask(registry: Registry, bbox: tuple[float, float, float, float]) -> NDArray[np.bool_]:
    minlon, minlat, maxlon, maxlat = bbox
    lat_ok = (registry.lat >= minlat) & (registry.lat <= maxlat)
    if minlon <= maxlon:
        lon_ok = (registry.lon >= minlon) & (registry.lon <= maxlon)
    else:  # crosses the antimeridian (RFC 7946 §5.2)
        lon_ok = (registry.lon >= minlon) | (registry.lon <= maxlon)
    return np.asarray(lat_ok & lon_ok)


@dataclass(frozen=True)
class StationQuery:
    """What a listing asks for: a filter plus bbox, text and ``needs_check``.

    ``flt`` holds the registry filters (kind, category, amenity, status, district,
    staleness); ``bbox`` is ``(minlon, minlat, maxlon, maxlat)`` in WGS-84 degrees;
    ``text`` is matched in name, English name, address and id; ``needs_check``
    keeps flagged (``True``) or unflagged (``False``) stations only.
    """

    flt: StationFilter
    bbox: tuple[float, float, float, float] | None = None
    text: str | None = None
    needs_check: bool | None = None

    @classmethod
    def make(
        cls,
        amenities: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        categories: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
        districts: Iterable[str] | None = None,
        stale: bool | None = None,
        stale_before: date | None = None,
        bbox: str | None = None,
        text: str | None = None,
        needs_check: bool | None = None,
    ) -> StationQuery:
        """The query of a listing's parameters as `GET /stations` takes them (every status
        unless *statuses* are given; *bbox* as text, see :func:`parse_bbox`): one rule for
        the API, the exports and the CLI."""
        return cls(
            StationFilter.make(
                amenities=amenities,
                kinds=kinds,
                categories=categories,
                statuses=statuses or None,
                districts=districts,
                stale=stale,
                stale_before=stale_before,
            ),
            bbox=parse_bbox(bbox) if bbox is not None else None,
            text=text,
            needs_check=needs_check,
        )


def matching(registry: Registry, query: StationQuery, flags: Flags) -> NDArray[np.intp]:
    """Positions of the stations matching *query*, ordered by id."""
    mask = registry.mask(query.flt)
    if query.bbox is not None:
        mask &= bbox_mask(registry, query.bbox)
    if query.text is not None:
        mask &= registry.text_match(query.text)
    if query.needs_check is not None and flags.reports is not None:
        flagged = np.zeros(len(registry), dtype=bool)
        for sid in flags.reports.station_ids():
            i = registry.index_of.get(sid)
            if i is not None and flags(registry.features[i])["needs_check"]:
                flagged[i] = True
        mask &= flagged if query.needs_check else ~flagged
    matched = np.flatnonzero(mask)
    return matched[np.argsort(registry.id_rank[matched], kind="stable")]


def station_index(registry: Registry, station_id: str) -> int:
    """Position of the station *station_id*; :class:`NotFoundError` (pointing a bus's id to
    ``/buses``) when there is none."""
    i = registry.index_of.get(station_id)
    if i is None:
        if any(b["id"] == station_id for b in registry.buses):
            raise NotFoundError(
                f"no station with id {station_id!r}; it is a cooling bus: see /buses/{station_id}"
            )
        raise NotFoundError(f"no station with id {station_id!r}")
    return i
