"""Controlled vocabularies of the registry.

Each is a :class:`enum.StrEnum` so that values serialise as plain strings and the
JSON Schema lists the allowed values.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    """What a feature is: a fixed station or a mobile cooling bus."""

    station = "station"
    cooling_bus = "cooling_bus"


class Category(StrEnum):
    """Who runs a station and what kind of place it is."""

    union_station = "union_station"
    bank_outlet = "bank_outlet"
    cooling_center = "cooling_center"
    hydration_point = "hydration_point"
    smart_station = "smart_station"
    other = "other"


class Status(StrEnum):
    """Life-cycle state. Only ``operational`` stations are offered to workers by default."""

    operational = "operational"
    temporarily_closed = "temporarily_closed"
    planned = "planned"
    removed = "removed"


class CoordOrigin(StrEnum):
    """How a station's coordinates were obtained (accuracy decreases down the list)."""

    surveyed = "surveyed"
    poi = "poi"
    geocoded = "geocoded"


class Amenity(StrEnum):
    """What a station offers. The order is fixed: it defines the bit of each amenity."""

    drinking_water = "drinking_water"
    toilet = "toilet"
    seating = "seating"
    air_conditioning = "air_conditioning"
    heating = "heating"
    microwave = "microwave"
    hot_meals = "hot_meals"
    phone_charging = "phone_charging"
    ebike_charging = "ebike_charging"
    wifi = "wifi"
    first_aid = "first_aid"
    heatstroke_medicine = "heatstroke_medicine"
    aed = "aed"
    nursing_room = "nursing_room"
    child_care = "child_care"
    shower = "shower"
    lockers = "lockers"
    rain_gear = "rain_gear"
    repair_tools = "repair_tools"
    wheelchair_accessible = "wheelchair_accessible"
    truck_parking = "truck_parking"
    ebike_parking = "ebike_parking"
    reading = "reading"


AMENITY_BIT: dict[str, int] = {a.value: 1 << i for i, a in enumerate(Amenity)}


def amenity_mask(amenities: object) -> int:
    """Bit mask of an iterable of amenity names (unknown names are ignored)."""
    mask = 0
    if isinstance(amenities, list | tuple | set | frozenset):
        for a in amenities:
            mask |= AMENITY_BIT.get(str(a), 0)
    return mask


#: The hardships of outdoor work the find page filters on (its chips): key -> the amenities
#: any one of which answers it (OR within a chip, AND between chips), in the order shown.
HARDSHIPS: Final[dict[str, tuple[str, ...]]] = {
    "water": ("drinking_water",),
    "toilet": ("toilet",),
    "rest": ("seating",),
    "cooling": ("air_conditioning",),
    "charging": ("phone_charging", "ebike_charging"),
    "food": ("hot_meals", "microwave"),
}
#: The four hardships a station's score counts (eat, drink, toilet, rest).
CORE_HARDSHIPS: Final[tuple[str, ...]] = ("food", "water", "toilet", "rest")
