"""Pydantic v2 models of the registry format (see ``docs/registry.md``).

A registry is a GeoJSON FeatureCollection (RFC 7946): coordinates are ``[lon, lat]`` in
WGS-84 and there is no ``crs`` member. Properties that the format does not define are
kept on round trip (``extra="allow"``).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from yizhan.stations.hours import hours_error, timezone_error
from yizhan.stations.vocab import Amenity, Category, CoordOrigin, Kind, Status

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _iso_date_or_datetime(value: Any) -> date | datetime:
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                return parse(value)
            except ValueError:
                continue
    raise ValueError(f"Expected an ISO 8601 date or date-time such as 2026-07-15, got {value!r}")


#: An ISO 8601 date (``2026-07-15``) or date-time (``2026-07-15T09:30:00+08:00``).
IsoDateOrTime = Annotated[
    date | datetime,
    BeforeValidator(_iso_date_or_datetime),
    WithJsonSchema({"type": "string", "description": "ISO 8601 date or date-time"}),
]

#: Property names defined by the format (others are kept as they are).
KNOWN_PROPERTIES = (
    "name",
    "kind",
    "name_en",
    "category",
    "operator",
    "network",
    "address",
    "district",
    "phone",
    "amenities",
    "opening_hours",
    "opening_hours_text",
    "status",
    "capacity",
    "last_verified_at",
    "last_verified_by",
    "status_reason",
    "source",
    "coord_origin",
    "guessed",
    "external_ids",
    "created_at",
    "updated_at",
    "timezone",
    "activation",
)

#: Properties only a cooling bus has (``docs/registry.md``, "Cooling buses").
BUS_PROPERTIES = ("plate", "stops")

#: How a feature is activated: ``heat_alert`` features are open only during a heat alert.
Activation = Literal["heat_alert"]


def check_lon_lat(value: Any) -> tuple[float, float]:
    """Validate a GeoJSON position and return ``(lon, lat)``.

    Raises ``ValueError`` with a message that says what was expected and what came.
    """
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise ValueError(f"Expected a position [lon, lat], got {value!r}")
    out: list[float] = []
    for axis, v in zip(("lon", "lat"), value[:2], strict=True):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"Expected a number for {axis}, got {v!r}")
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"{axis} must be finite, got {v!r}")
        out.append(f)
    lon, lat = out
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"lon out of range: expected -180..180, got {lon!r}")
    if not -90.0 <= lat <= 90.0:
        hint = " (is the position [lat, lon]?)" if -90.0 <= lon <= 90.0 <= abs(lat) <= 180 else ""
        raise ValueError(f"lat out of range: expected -90..90, got {lat!r}{hint}")
    return lon, lat


class PointGeometry(BaseModel):
    """A GeoJSON Point; ``coordinates`` is ``[lon, lat]`` (an altitude, if any, is kept)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: list[float]

    @model_validator(mode="before")
    @classmethod
    def _point(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"Expected a GeoJSON Point object, got {data!r}")
        if data.get("type") != "Point":
            raise ValueError(f"a station's geometry must be a Point, got {data.get('type')!r}")
        return data

    @field_validator("coordinates", mode="before")
    @classmethod
    def _position(cls, value: Any) -> Any:
        check_lon_lat(value)
        return value


class StationProperties(BaseModel):
    """Properties of a station Feature."""

    model_config = ConfigDict(extra="allow", use_enum_values=True)

    name: NonEmptyStr = Field(description="Name as written on site (any language).")
    kind: Kind = Field(description="`station`; `cooling_bus` is a mobile unit.")
    name_en: str | None = None
    category: Category | None = None
    operator: str | None = None
    network: str | None = None
    address: str | None = None
    district: str | None = None
    phone: str | None = None
    amenities: list[Amenity] = Field(default_factory=list)
    opening_hours: str | None = Field(
        default=None, description="OpenStreetMap opening_hours syntax, e.g. `Mo-Fr 09:00-17:00`."
    )
    opening_hours_text: str | None = Field(
        default=None, description="The hours as the source wrote them, kept verbatim."
    )
    status: Status = Status.operational
    capacity: Annotated[int, Field(ge=0)] | None = None
    last_verified_at: IsoDateOrTime | None = Field(
        default=None, description="When someone last checked the station on site (server-set)."
    )
    last_verified_by: str | None = Field(
        default=None, description="Who last verified it: the name of their token (server-set)."
    )
    status_reason: str | None = Field(
        default=None, description="Why the status is what it is, e.g. why it was removed."
    )
    source: str | None = None
    coord_origin: CoordOrigin | None = None
    guessed: list[str] = Field(
        default_factory=list,
        description="Names of properties whose values were guessed or inferred, not sourced.",
    )
    external_ids: dict[str, str] | None = None
    created_at: IsoDateOrTime | None = None
    updated_at: IsoDateOrTime | None = None
    timezone: str | None = Field(
        default=None,
        description="IANA time zone of `opening_hours` when not the registry's (e.g. `Asia/Urumqi`).",
    )
    activation: Activation | None = Field(
        default=None,
        description="`heat_alert`: open only while a heat alert covers the feature's district "
        "(and within its own hours).",
    )

    @field_validator("amenities")
    @classmethod
    def _unique_amenities(cls, value: list[Amenity]) -> list[Amenity]:
        return _check_unique_amenities(value)

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        return _check_hours(value)

    @field_validator("guessed")
    @classmethod
    def _guessed_known(cls, value: list[str]) -> list[str]:
        return _check_guessed(value, KNOWN_PROPERTIES)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _kind_supported(self) -> StationProperties:
        if self.kind == Kind.cooling_bus:
            raise ValueError(
                "a feature of kind 'cooling_bus' needs MultiPoint geometry and stops "
                "(see BusProperties); it cannot be validated as a station"
            )
        return self


def _check_unique_amenities(value: list[Amenity]) -> list[Amenity]:
    seen: set[str] = set()
    for a in value:
        if a in seen:
            raise ValueError(f"amenity {str(a)!r} is listed twice")
        seen.add(a)
    return value


def _check_id(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"Expected a string id, got {value!r}")
    return value


def _check_guessed(value: list[str], known: tuple[str, ...]) -> list[str]:
    for name in value:
        if name not in known or name in ("name", "kind", "guessed"):
            raise ValueError(f"guessed names a property the format defines, got {name!r}")
    return value


def _check_timezone(value: str | None) -> str | None:
    if value is not None:
        err = timezone_error(value)
        if err:
            raise ValueError(err)
    return value


def _check_hours(value: str | None) -> str | None:
    if value is not None:
        err = hours_error(value)
        if err:
            raise ValueError(err)
    return value


class StationFeature(BaseModel):
    """One station: a GeoJSON Feature with a string ``id`` and a Point geometry."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: NonEmptyStr
    geometry: PointGeometry
    properties: StationProperties

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_string(cls, value: Any) -> Any:
        return _check_id(value)


class MultiPointGeometry(BaseModel):
    """A GeoJSON MultiPoint: a cooling bus's stops, ``[[lon, lat], ...]``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["MultiPoint"]
    coordinates: list[list[float]]

    @model_validator(mode="before")
    @classmethod
    def _multipoint(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"Expected a GeoJSON MultiPoint object, got {data!r}")
        if data.get("type") != "MultiPoint":
            raise ValueError(
                "a cooling bus's geometry must be the MultiPoint of its stops, "
                f"got {data.get('type')!r}"
            )
        return data

    @field_validator("coordinates", mode="before")
    @classmethod
    def _positions(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError(f"Expected a non-empty list of positions [lon, lat], got {value!r}")
        for pos in value:
            check_lon_lat(pos)
        return value


class BusStop(BaseModel):
    """Where a cooling bus stands, and when (``opening_hours``: when it stands there)."""

    model_config = ConfigDict(extra="allow")

    stop_id: NonEmptyStr = Field(description="Unique within the bus, e.g. `s1`.")
    name: NonEmptyStr = Field(description="Name of the place, e.g. a truck park or building site.")
    location: list[float] = Field(description="`[lon, lat]`, WGS-84.")
    opening_hours: str = Field(
        description="When the bus stands here, OSM syntax, e.g. `Jul-Sep Mo-Su 10:00-16:00`."
    )
    opening_hours_text: str | None = None
    address: str | None = None
    valid_from: date | None = Field(default=None, description="First day this stop is served.")
    valid_to: date | None = Field(default=None, description="Last day this stop is served.")

    @field_validator("location", mode="before")
    @classmethod
    def _location(cls, value: Any) -> Any:
        check_lon_lat(value)
        return value

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        _check_hours(value)
        return value

    @model_validator(mode="after")
    def _dates(self) -> BusStop:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(
                f"valid_to {self.valid_to.isoformat()} is before valid_from "
                f"{self.valid_from.isoformat()}"
            )
        return self


class BusProperties(BaseModel):
    """Properties of a cooling bus (纳凉公交): the vehicle and its ``stops``."""

    model_config = ConfigDict(extra="allow", use_enum_values=True)

    name: NonEmptyStr
    kind: Literal["cooling_bus"]
    name_en: str | None = None
    category: Category | None = None
    operator: NonEmptyStr = Field(
        description="Who runs the bus; an operator token may move only its own buses."
    )
    network: str | None = None
    plate: str | None = Field(default=None, description="Licence plate, e.g. `豫A·12345`.")
    capacity: Annotated[int, Field(ge=0)] | None = None
    phone: str | None = None
    amenities: list[Amenity] = Field(default_factory=list)
    stops: list[BusStop] = Field(min_length=1)
    district: str | None = None
    status: Status = Status.operational
    last_verified_at: IsoDateOrTime | None = None
    last_verified_by: str | None = None
    status_reason: str | None = None
    source: str | None = None
    guessed: list[str] = Field(default_factory=list)
    external_ids: dict[str, str] | None = None
    created_at: IsoDateOrTime | None = None
    updated_at: IsoDateOrTime | None = None
    timezone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_own_hours(cls, data: Any) -> Any:
        if isinstance(data, dict) and "opening_hours" in data:
            raise ValueError(
                "a cooling bus has no opening_hours of its own: give each stop its "
                "opening_hours (when the bus stands there)"
            )
        return data

    @field_validator("amenities")
    @classmethod
    def _unique_amenities(cls, value: list[Amenity]) -> list[Amenity]:
        return _check_unique_amenities(value)

    @field_validator("stops")
    @classmethod
    def _unique_stops(cls, value: list[BusStop]) -> list[BusStop]:
        seen: dict[str, int] = {}
        for j, stop in enumerate(value):
            if stop.stop_id in seen:
                raise ValueError(
                    f"stop_id {stop.stop_id!r} is used by stops {seen[stop.stop_id]} and {j}"
                )
            seen[stop.stop_id] = j
        return value

    @field_validator("guessed")
    @classmethod
    def _guessed_known(cls, value: list[str]) -> list[str]:
        return _check_guessed(value, KNOWN_PROPERTIES + BUS_PROPERTIES)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _check_timezone(value)


class BusFeature(BaseModel):
    """A cooling bus: a Feature whose geometry is the MultiPoint of its stops' locations."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: NonEmptyStr
    geometry: MultiPointGeometry
    properties: BusProperties

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_string(cls, value: Any) -> Any:
        return _check_id(value)


def is_bus(feature: Any) -> bool:
    """Whether a raw feature says it is a cooling bus (``properties.kind``)."""
    if not isinstance(feature, dict):
        return False
    props = feature.get("properties")
    return isinstance(props, dict) and props.get("kind") == Kind.cooling_bus.value


def bus_geometry(stops: list[dict[str, Any]]) -> dict[str, Any]:
    """The MultiPoint geometry a bus with these stops must have."""
    return {"type": "MultiPoint", "coordinates": [list(s["location"][:2]) for s in stops]}


class StationCollection(BaseModel):
    """The registry: a GeoJSON FeatureCollection of stations and cooling buses (for the JSON Schema)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "$id": "https://github.com/yizhan/yizhan/schema/registry.schema.json",
            "title": "Yizhan station registry",
        },
    )

    type: Literal["FeatureCollection"]
    features: list[StationFeature | BusFeature]
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_crs(cls, data: Any) -> Any:
        if isinstance(data, dict) and "crs" in data:
            raise ValueError("RFC 7946 GeoJSON has no 'crs' member: coordinates are WGS-84")
        return data
