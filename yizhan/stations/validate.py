"""Validate a whole registry document and report every problem, not only the first.

Errors make a registry unusable (the server refuses to start); warnings are printed and
the registry is still served.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter, ValidationError
from scipy.spatial import cKDTree

from yizhan.geo.distance import haversine_m, m_to_chord, unit_vectors
from yizhan.stations.buses import stop_overlaps
from yizhan.stations.models import BusFeature, StationFeature, is_bus

#: Two stations closer than this with the same normalised name are reported as likely duplicates.
DUPLICATE_DISTANCE_M = 10.0

#: Time zone and holiday country used to check bus stops when the caller gives none.
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_HOLIDAY_COUNTRY = "CN"

_FEATURES = TypeAdapter(list[StationFeature])
_BUSES = TypeAdapter(list[BusFeature])


@dataclass(frozen=True)
class Problem:
    """One finding: where it is (feature index and id), which field, and why."""

    severity: Literal["error", "warning"]
    message: str
    index: int | None = None
    id: str | None = None
    field: str | None = None

    def format(self) -> str:
        """``error: feature 12 (id 'zz-1'): properties.amenities.0: unknown ...``"""
        where = []
        if self.index is not None:
            where.append(f"feature {self.index}")
        if self.id is not None:
            where.append(f"(id {self.id!r})")
        head = " ".join(where)
        parts = [p for p in (head, self.field, self.message) if p]
        return f"{self.severity}: " + ": ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "index": self.index,
            "id": self.id,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class ValidationReport:
    """Everything found in one registry document."""

    n_features: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        state = "valid" if self.ok else "INVALID"
        return (
            f"{state}: {self.n_features} features, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings"
        )


def normalize_name(name: str) -> str:
    """Name folded for comparison: NFKC, case-folded, without spaces or punctuation."""
    s = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in s if unicodedata.category(ch)[0] in "LN")


def _loc_field(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def _pydantic_message(err: Any) -> str:
    msg = str(err.get("msg", "invalid"))
    msg = re.sub(r"^Value error, ", "", msg)
    if err.get("type") == "enum":
        return f"{msg}, got {err.get('input')!r}"
    if err.get("type") in ("literal_error",):
        return f"{msg}, got {err.get('input')!r}"
    return msg


def validate_document(
    doc: Any,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    holiday_country: str | None = DEFAULT_HOLIDAY_COUNTRY,
) -> ValidationReport:
    """Validate a parsed GeoJSON registry document.

    Stations (Point features) and cooling buses (``kind: cooling_bus``, MultiPoint of
    their stops) are validated by their own models; a bus is also checked for a
    geometry that matches its stops and for stops whose hours overlap.

    Parameters
    ----------
    doc : object
        The parsed JSON.
    timezone : str
        Zone of bus stop hours without their own ``timezone``.
    holiday_country : str or None
        Country of ``PH`` in bus stop hours (``auto``: from each stop's location).

    Returns
    -------
    ValidationReport
        Every error and warning, each with feature index, id and field where they apply.
    """
    report = ValidationReport()
    if not isinstance(doc, dict):
        report.errors.append(
            Problem(
                "error", f"Expected a GeoJSON FeatureCollection object, got {type(doc).__name__}"
            )
        )
        return report
    if doc.get("type") != "FeatureCollection":
        report.errors.append(
            Problem(
                "error", f"Expected type 'FeatureCollection', got {doc.get('type')!r}", field="type"
            )
        )
    if "crs" in doc:
        report.errors.append(
            Problem(
                "error",
                "RFC 7946 GeoJSON has no 'crs' member: coordinates must be WGS-84 [lon, lat]",
                field="crs",
            )
        )
    features = doc.get("features")
    if not isinstance(features, list):
        report.errors.append(
            Problem("error", f"Expected a list, got {type(features).__name__}", field="features")
        )
        return report
    report.n_features = len(features)

    def fid(i: int) -> str | None:
        f = features[i]
        if isinstance(f, dict) and isinstance(f.get("id"), str):
            return str(f["id"])
        return None

    bad: set[int] = set()
    bus_at = [i for i, f in enumerate(features) if is_bus(f)]
    parts: list[tuple[TypeAdapter[Any], list[int] | None]] = [(_FEATURES, None)]
    if bus_at:  # validate stations and buses apart, mapping positions back
        buses = set(bus_at)
        parts = [
            (_FEATURES, [i for i in range(len(features)) if i not in buses]),
            (_BUSES, bus_at),
        ]
    for adapter, positions in parts:
        part = features if positions is None else [features[i] for i in positions]
        try:
            adapter.validate_python(part)
        except ValidationError as exc:
            for err in exc.errors():
                loc = err["loc"]
                i = int(loc[0]) if loc and isinstance(loc[0], int) else None
                if i is not None and positions is not None:
                    i = positions[i]
                if i is not None:
                    bad.add(i)
                report.errors.append(
                    Problem(
                        "error",
                        _pydantic_message(err),
                        index=i,
                        id=fid(i) if i is not None else None,
                        field=_loc_field(loc[1:]) or None,
                    )
                )
    for i in bus_at:
        if i not in bad:
            for fld, msg in _bus_problems(features[i], timezone, holiday_country):
                report.errors.append(Problem("error", msg, index=i, id=fid(i), field=fld))

    # Duplicate ids.
    seen: dict[str, int] = {}
    for i in range(len(features)):
        key = fid(i)
        if key is None:
            continue
        if key in seen:
            report.errors.append(
                Problem(
                    "error",
                    f"duplicate id (first used by feature {seen[key]})",
                    index=i,
                    id=key,
                    field="id",
                )
            )
        else:
            seen[key] = i

    skip = bad | set(bus_at)
    good = [i for i in range(len(features)) if i not in skip]
    if good:
        _spatial_warnings(features, good, report)
    report.errors.sort(key=lambda p: p.index if p.index is not None else -1)
    return report


def _bus_problems(
    feature: dict[str, Any], timezone: str, holiday_country: str | None
) -> list[tuple[str, str]]:
    """``(field, message)`` for a bus whose geometry is not its stops, or whose stops overlap."""
    props = feature["properties"]
    stops = props["stops"]
    coords = feature["geometry"]["coordinates"]
    out: list[tuple[str, str]] = []
    if len(coords) != len(stops):
        out.append(
            (
                "geometry.coordinates",
                f"Expected the MultiPoint of the bus's {len(stops)} stop locations in order, "
                f"got {len(coords)} positions",
            )
        )
    else:
        for j, (pos, stop) in enumerate(zip(coords, stops, strict=True)):
            if [float(v) for v in pos[:2]] != [float(v) for v in stop["location"][:2]]:
                out.append(
                    (
                        f"geometry.coordinates.{j}",
                        f"Expected stop {stop['stop_id']!r}'s location {stop['location'][:2]} "
                        f"(the MultiPoint lists the stops in order), got {pos[:2]}",
                    )
                )
    tz = props.get("timezone") or timezone
    for ov in stop_overlaps(stops, tz, holiday_country):
        out.append(("properties.stops", ov.message()))
    return out


def _spatial_warnings(features: list[Any], good: list[int], report: ValidationReport) -> None:
    coords = np.array([features[i]["geometry"]["coordinates"][:2] for i in good], dtype=np.float64)
    lon, lat = coords[:, 0], coords[:, 1]

    def name(j: int) -> str:  # normalised only for stations that have a neighbour within 10 m
        return normalize_name(str(features[good[j]]["properties"]["name"]))

    # Likely duplicates: same normalised name within 10 m.
    if len(good) > 1:
        tree = cKDTree(unit_vectors(lon, lat))
        pairs = tree.query_pairs(r=m_to_chord(DUPLICATE_DISTANCE_M) + 1e-12, output_type="ndarray")
        for a, b in pairs.tolist():
            if name(a) and name(a) == name(b):
                d = float(haversine_m(lon[a], lat[a], lon[b], lat[b]))
                if d <= DUPLICATE_DISTANCE_M:
                    ia, ib = good[min(a, b)], good[max(a, b)]
                    report.warnings.append(
                        Problem(
                            "warning",
                            f"same name as feature {ia} (id {features[ia]['id']!r}) and {d:.1f} m "
                            "away: likely a duplicate",
                            index=ib,
                            id=features[ib]["id"],
                            field="geometry",
                        )
                    )

    for j in swapped_positions(lon, lat):
        i = good[int(j)]
        report.warnings.append(
            Problem(
                "warning",
                f"position [{lon[j]}, {lat[j]}] is far from the other stations but "
                f"[{lat[j]}, {lon[j]}] is among them: coordinates look swapped ([lat, lon])",
                index=i,
                id=features[i]["id"],
                field="geometry.coordinates",
            )
        )
    report.warnings.sort(key=lambda p: p.index if p.index is not None else -1)


def swapped_positions(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Positions whose ``[lon, lat]`` looks swapped for the region the other points cover.

    A point is flagged when it lies far outside the region (more than five times the
    median distance to the median point, and at least 200 km) while its swapped
    position lies inside it (within twice that median distance, or 50 km).

    Returns
    -------
    numpy.ndarray of int
        Positions into ``lon``/``lat``.
    """
    n = lon.shape[0]
    if n < 3:
        return np.empty(0, dtype=np.int64)
    c_lon, c_lat = float(np.median(lon)), float(np.median(lat))
    d = haversine_m(lon, lat, c_lon, c_lat)
    typical = float(np.median(d))
    can_swap = np.abs(lon) <= 90.0
    d_sw = np.where(can_swap, haversine_m(lat, np.clip(lon, -90, 90), c_lon, c_lat), math.inf)
    far = d > max(5 * typical, 200_000.0)
    back = d_sw <= max(2 * typical, 50_000.0)
    return np.flatnonzero(far & back & can_swap).astype(np.int64)
