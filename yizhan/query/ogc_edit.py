"""Part 4 of OGC API – Features on the registry's editing: a replacing ``PUT`` as a merge
patch, so that every write goes through the store's one ``update`` with its checks
(roles, ``If-Match``, validation, audit).
"""

from __future__ import annotations

from typing import Any

from yizhan.errors import InvalidInputError

#: Properties every response adds (computed, never stored): dropped from a PUT body.
COMPUTED = frozenset({"open_now", "next_change", "stale", "needs_check", "needs_check_reasons"})
#: Properties the server sets: a PUT that leaves them out keeps them (the store refuses a
#: body that changes them).
SERVER_SET = frozenset({"last_verified_at", "last_verified_by", "created_at", "updated_at"})


def _diff(old: Any, new: Any) -> Any:
    """The RFC 7396 merge patch that turns *old* into *new*."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for k, v in new.items():
        if k not in old:
            patch[k] = v
        elif old[k] != v:
            patch[k] = _diff(old[k], v)
    return patch


def replacement_patch(current: dict[str, Any], new: Any, feature_id: str) -> dict[str, Any]:
    """The merge patch that replaces stored feature *current* by *new* (a PUT body).

    Computed properties in *new* are ignored; server-set properties left out are kept.

    Raises
    ------
    InvalidInputError
        *new* is no Feature object, has another id, or no properties object.
    """
    if not isinstance(new, dict) or new.get("type", "Feature") != "Feature":
        raise InvalidInputError("body", "Expected a GeoJSON Feature object")
    if new.get("id") is not None and str(new["id"]) != feature_id:
        raise InvalidInputError(
            "id", f"Expected the id of the URL {feature_id!r}, got {new['id']!r}"
        )
    props = new.get("properties")
    if not isinstance(props, dict):
        raise InvalidInputError("properties", "Expected an object of properties")
    if "geometry" not in new:
        raise InvalidInputError("geometry", "Expected a geometry")
    cur_props = current.get("properties") or {}
    wanted = {k: v for k, v in props.items() if k not in COMPUTED}
    for k in SERVER_SET:
        if k not in wanted and k in cur_props:
            wanted[k] = cur_props[k]
    patch: dict[str, Any] = {}
    prop_patch = _diff(cur_props, wanted)
    if prop_patch:
        patch["properties"] = prop_patch
    if new["geometry"] != current.get("geometry"):
        patch["geometry"] = new["geometry"]
    return patch
