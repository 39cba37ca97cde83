"""Which OpenStreetMap ways and nodes a walker may use (tag rules, versioned).

The rules are written out in ``docs/walking.md``; :data:`TAG_RULES_VERSION` is stored in
every network file and must change whenever a rule changes, so a network built under
other rules is recognisable.

A way is walkable when its ``highway`` value is in :data:`WALK_HIGHWAYS`, or in
:data:`FOOT_IF_TAGGED` with an explicit ``foot`` permission (or ``segregated=*``, which
says pedestrians share it), and no restriction applies: ``foot`` in :data:`FOOT_NO`, or
``access`` in :data:`ACCESS_NO` (or ``motorroad=yes``) without a ``foot`` permission
(:data:`FOOT_YES`). Motorways and roads that are not built (:data:`NEVER`) are never
walkable. One-way tags are ignored: walkers use one-way streets both ways.

A ``barrier`` node (a gate, a bollard …) blocks every way through it when ``foot`` is in
:data:`FOOT_NO`, or ``access`` in :data:`ACCESS_NO` or ``locked=yes`` without a ``foot``
permission.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Bump when any rule below changes.
TAG_RULES_VERSION = 1

#: ``highway`` values open to walkers unless tagged otherwise.
WALK_HIGHWAYS = frozenset(
    {
        "footway",
        "pedestrian",
        "path",
        "steps",
        "living_street",
        "residential",
        "service",
        "unclassified",
        "tertiary",
        "tertiary_link",
        "secondary",
        "secondary_link",
        "primary",
        "primary_link",
        "trunk",
        "trunk_link",
        "track",
        "road",
        "corridor",
        "platform",
        "elevator",
    }
)

#: ``highway`` values walkable only with an explicit ``foot`` permission or ``segregated``.
FOOT_IF_TAGGED = frozenset({"cycleway", "bridleway"})

#: ``highway`` values never walkable, whatever their other tags say.
NEVER = frozenset(
    {
        "motorway",
        "motorway_link",
        "construction",
        "proposed",
        "planned",
        "abandoned",
        "disused",
        "razed",
        "raceway",
        "bus_guideway",
        "busway",
        "escape",
        "via_ferrata",
    }
)

#: ``foot`` values that allow walking (and override a general ``access`` restriction).
FOOT_YES = frozenset({"yes", "designated", "permissive", "official", "destination", "customers"})

#: ``foot`` values that forbid walking (``use_sidepath``: a separately mapped path must be used).
FOOT_NO = frozenset({"no", "private", "use_sidepath"})

#: ``access`` values that forbid walking unless ``foot`` allows it.
ACCESS_NO = frozenset({"no", "private", "agricultural", "forestry", "delivery", "military"})

#: ``highway`` values whose closed ways tagged ``area=yes`` are squares one can cross.
AREA_HIGHWAYS = frozenset({"pedestrian", "footway", "path", "platform", "service", "living_street"})


def _foot_allowed(tags: Mapping[str, str]) -> bool:
    return tags.get("foot", "") in FOOT_YES


def is_walkable_way(tags: Mapping[str, str]) -> bool:
    """Whether a way with these tags is part of the walking network.

    Examples
    --------
    >>> is_walkable_way({"highway": "steps"})
    True
    >>> is_walkable_way({"highway": "service", "access": "private"})
    False
    >>> is_walkable_way({"highway": "service", "access": "private", "foot": "yes"})
    True
    >>> is_walkable_way({"highway": "motorway", "foot": "yes"})
    False
    """
    highway = tags.get("highway", "")
    if highway in NEVER:
        return False
    foot = tags.get("foot", "")
    if foot in FOOT_NO:
        return False
    if highway in FOOT_IF_TAGGED:
        return foot in FOOT_YES or "segregated" in tags
    if highway not in WALK_HIGHWAYS:
        return False
    restricted = tags.get("access", "") in ACCESS_NO or tags.get("motorroad", "") == "yes"
    return not restricted or _foot_allowed(tags)


def is_walkable_area(tags: Mapping[str, str]) -> bool:
    """Whether a closed walkable way is an area (a square) rather than a loop of street."""
    return (
        tags.get("area", "") == "yes"
        and tags.get("highway", "") in AREA_HIGHWAYS
        and is_walkable_way(tags)
    )


def is_blocking_node(tags: Mapping[str, str]) -> bool:
    """Whether a ``barrier`` node closes every way through it to walkers.

    Examples
    --------
    >>> is_blocking_node({"barrier": "gate", "access": "private"})
    True
    >>> is_blocking_node({"barrier": "gate"})
    False
    """
    if "barrier" not in tags:
        return False
    if tags.get("foot", "") in FOOT_NO:
        return True
    if _foot_allowed(tags):
        return False
    return tags.get("access", "") in ACCESS_NO or tags.get("locked", "") == "yes"
