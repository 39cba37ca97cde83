"""What an edit of the registry may be: versions, merge patches, write limits and the rules
of each kind of change.

Everything here is pure: it takes the current feature, the request and the caller
(:class:`~yizhan.stations.tokens.Principal`) and returns the new feature or raises the
domain error an API maps to a status (422, 403, 409, 412, 428). Storing the change, its
audit line and the locks are the store's business (:mod:`yizhan.stations.filestore`), so
that another storage backend applies exactly the same rules.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from yizhan.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from yizhan.stations.tokens import Principal, may_create, may_edit, may_remove, may_verify
from yizhan.stations.validate import validate_document
from yizhan.stations.vocab import Status

#: Longest accepted text per property on writes (characters). Loading is not capped:
#: imported sources keep what they say.
TEXT_LIMITS: dict[str, int] = {
    "name": 200,
    "name_en": 200,
    "operator": 200,
    "network": 200,
    "district": 100,
    "address": 500,
    "phone": 50,
    "opening_hours": 1000,
    "opening_hours_text": 2000,
    "source": 2000,
    "status_reason": 500,
    "plate": 30,
}
#: Any other string property, or a string in a list or object.
DEFAULT_TEXT_LIMIT = 2000
#: Longest note of a verification (characters).
NOTE_LIMIT = 1000
#: Properties only the server sets (by verifying, removing or any edit).
SERVER_PROPERTIES = ("last_verified_at", "last_verified_by", "created_at", "updated_at")
#: Ids of new features: URL-safe, at most 64 characters.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$")

#: What an audit entry records: a change made through Yizhan, or one found in the file.
Action = Literal["create", "update", "remove", "verify", "external"]


@dataclass(frozen=True)
class Found:
    """A stored feature and its version: ``bus`` tells a cooling bus from a station."""

    feature: dict[str, Any]
    etag: str
    bus: bool


# -- versions and patches ------------------------------------------------------------------


def feature_etag(feature: dict[str, Any]) -> str:
    """The version of a stored feature: a strong HTTP entity tag of its canonical JSON.

    It names the stored feature, not one representation of it (``open_now`` and a
    converted ``out_crs`` do not change it), and is the same in every process and after
    a restart.
    """
    digest = hashlib.blake2b(orjson.dumps(feature, option=orjson.OPT_SORT_KEYS), digest_size=12)
    return f'"{digest.hexdigest()}"'


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7396) to *target*; neither argument is changed."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The changed leaves between two JSON values: ``[{"path", "before", "after"}]``.

    Objects are compared member by member; lists and scalars as a whole. A missing value
    is ``None``.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out.extend(diff(before.get(key), after.get(key), sub))
        return out
    if before == after:
        return []
    return [{"path": path, "before": before, "after": after}]


def parse_if_match(header: str | None) -> list[str] | None:
    """The entity tags of an ``If-Match`` header (``["*"]`` for ``*``; ``None`` when absent).

    Weak tags (``W/"…"``) are kept with their prefix, so they never match: ``If-Match``
    uses the strong comparison (RFC 9110 §13.1.1).
    """
    if header is None or not header.strip():
        return None
    if header.strip() == "*":
        return ["*"]
    return re.findall(r'(?:W/)?"[^"]*"', header) or [header.strip()]


def check_if_match(current: Found, feature_id: str, if_match: str | None, required: bool) -> None:
    """Compare the caller's ``If-Match`` with the current version of a feature.

    Raises
    ------
    PreconditionRequiredError
        No ``If-Match`` although *required* (428).
    PreconditionFailedError
        None of its tags is the current version (412; the error carries the current one).
    """
    tags = parse_if_match(if_match)
    if tags is None:
        if required:
            raise PreconditionRequiredError(
                f"If-Match is required: send the ETag of {feature_id!r} from GET "
                f"(If-Match: {current.etag}), so that no one else's edit is overwritten"
            )
        return
    if "*" not in tags and current.etag not in tags:
        raise PreconditionFailedError(
            f"{feature_id!r} was changed by someone else: its version is now {current.etag}, "
            f"not {', '.join(tags)}; GET it again and reapply your change",
            current_etag=current.etag,
        )


# -- limits and validation -----------------------------------------------------------------


def check_text(value: Any, where: str, limit: int) -> None:
    """Length and control-character caps on one value sent by a client (nested: its items).

    Raises
    ------
    InvalidInputError
        Naming *where* (``properties.name``, ``properties.tags.3`` …).
    """
    if isinstance(value, str):
        if len(value) > limit:
            raise InvalidInputError(where, f"Expected at most {limit} characters, got {len(value)}")
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            raise InvalidInputError(where, "Expected text without control characters")
    elif isinstance(value, list):
        if len(value) > 200:
            raise InvalidInputError(where, f"Expected at most 200 items, got {len(value)}")
        for j, v in enumerate(value):
            check_text(v, f"{where}.{j}", DEFAULT_TEXT_LIMIT)
    elif isinstance(value, dict):
        if len(value) > 200:
            raise InvalidInputError(where, f"Expected at most 200 members, got {len(value)}")
        for k, v in value.items():
            check_text(v, f"{where}.{k}", DEFAULT_TEXT_LIMIT)


def check_write_limits(feature: dict[str, Any]) -> None:
    """Length caps on the text of a feature sent by a client (see :data:`TEXT_LIMITS`)."""
    props = feature.get("properties")
    if isinstance(props, dict):
        for key, value in props.items():
            check_text(value, f"properties.{key}", TEXT_LIMITS.get(key, DEFAULT_TEXT_LIMIT))
    for key, value in feature.items():
        if key not in ("properties", "geometry", "type", "id"):
            check_text(value, key, DEFAULT_TEXT_LIMIT)


def check_feature(feature: dict[str, Any], timezone: str, holiday_country: str | None) -> None:
    """Validate one feature exactly as loading would (model, bus stops).

    Raises
    ------
    InvalidInputError
        The first problem, naming the field (``properties.opening_hours`` …).
    """
    report = validate_document(
        {"type": "FeatureCollection", "features": [feature]},
        timezone=timezone,
        holiday_country=holiday_country,
    )
    if not report.ok:
        p = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise InvalidInputError(p.field or "feature", p.message + more)


def check_new_version(feature: dict[str, Any], timezone: str, holiday_country: str | None) -> None:
    """Everything a feature written by a client must pass: write limits, then the model."""
    check_write_limits(feature)
    check_feature(feature, timezone, holiday_country)


def refuse_server_properties(props: dict[str, Any], where: str) -> None:
    """Refuse a client's attempt to set a property only the server sets (422)."""
    for key in SERVER_PROPERTIES:
        if key in props:
            hint = " (POST /stations/{id}/verify)" if key.startswith("last_verified") else ""
            raise InvalidInputError(f"{where}.{key}", f"is set by the server{hint}")


# -- the rules of each change --------------------------------------------------------------
# Each rule is in two parts: what can be checked on the request alone (before any lock is
# taken), and the new version of the feature computed from the current one.


def new_feature(feature: Any, who: Principal, now: str) -> dict[str, Any]:
    """The feature a ``create`` would store (id generated when absent, timestamps set).

    Checks the request only: whether the id is free, and the model, are the store's
    part (in its transaction).

    Raises
    ------
    InvalidInputError, PermissionDeniedError
    """
    if not isinstance(feature, dict):
        raise InvalidInputError("body", f"Expected a GeoJSON Feature object, got {feature!r:.60}")
    new = dict(feature)
    new.setdefault("type", "Feature")
    props = new.get("properties")
    if not isinstance(props, dict):
        raise InvalidInputError("properties", "Expected an object of properties")
    refuse_server_properties(props, "properties")
    fid = new.get("id")
    if fid is None:
        fid = f"yz-{secrets.token_hex(5)}"
        new = {"type": new["type"], "id": fid, **{k: v for k, v in new.items() if k != "type"}}
    if not isinstance(fid, str) or not ID_PATTERN.match(fid):
        raise InvalidInputError(
            "id",
            "Expected 1-64 letters, digits, '.', '_', '~' or '-' (starting with a letter "
            f"or digit), got {fid!r}",
        )
    if not may_create(who, props.get("operator")):
        raise PermissionDeniedError(
            "only an admin, or an operator for its own stations (properties.operator), "
            "may add stations"
        )
    new["properties"] = {**props, "created_at": now, "updated_at": now}
    if new["properties"].get("status") == Status.removed.value:
        raise InvalidInputError("properties.status", "a new station cannot be 'removed'")
    return new


def check_patch(patch: Any) -> dict[str, Any]:
    """Check the shape of a merge patch before it is applied (422 naming the member).

    ``id`` and ``type`` cannot change, and the server-set properties
    (:data:`SERVER_PROPERTIES`) cannot be patched.
    """
    if not isinstance(patch, dict):
        raise InvalidInputError(
            "body", f"Expected a JSON merge patch object (RFC 7396), got {patch!r:.60}"
        )
    for key in ("id", "type"):
        if key in patch:
            raise InvalidInputError(key, f"{key} cannot be changed by a patch")
    if "properties" in patch and not isinstance(patch["properties"], dict):
        raise InvalidInputError("properties", "Expected an object of properties to merge")
    refuse_server_properties(patch.get("properties") or {}, "properties")
    return patch


def patched(
    before: dict[str, Any], patch: dict[str, Any], who: Principal, now: str
) -> dict[str, Any] | None:
    """The feature after a merge patch checked by :func:`check_patch`, or ``None`` when the
    patch changes nothing.

    ``kind`` cannot change between station and bus; removing (``status: removed``) and
    restoring need the right to remove; changing ``operator`` needs an admin. A field that
    was ``guessed`` and is edited is no longer guessed.

    Raises
    ------
    InvalidInputError, PermissionDeniedError
    """
    feature_id = before["id"]
    after = merge_patch(before, patch)
    bp, ap = before["properties"], after.get("properties") or {}
    if ap.get("kind") != bp.get("kind"):
        raise InvalidInputError(
            "properties.kind", "the kind of a feature cannot change (create a new one)"
        )
    if not may_edit(who, feature_id, bp.get("operator")):
        raise PermissionDeniedError(f"this token may not edit {feature_id!r}")
    if ap.get("operator") != bp.get("operator") and not who.admin:
        raise PermissionDeniedError("only an admin may change properties.operator")
    removing = (ap.get("status") == Status.removed.value) != (
        bp.get("status") == Status.removed.value
    )
    if removing and not may_remove(who, feature_id, bp.get("operator")):
        raise PermissionDeniedError(f"this token may not remove or restore {feature_id!r}")
    if after == before:
        return None
    edited = {c["path"].split(".")[1] for c in diff(bp, ap, "p") if "." in c["path"]}
    guessed = [g for g in bp.get("guessed") or [] if g not in edited]
    ap = {**ap, "updated_at": now}
    if guessed:
        ap["guessed"] = guessed
    else:
        ap.pop("guessed", None)
    return {**after, "properties": ap}


def check_reason(reason: str | None) -> str:
    """The reason for a removal, stripped (422 when empty or too long)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError("reason", "Expected a reason for removing the station")
    check_text(reason, "reason", TEXT_LIMITS["status_reason"])
    return reason


def removed(before: dict[str, Any], reason: str, who: Principal, now: str) -> dict[str, Any]:
    """The feature marked ``status: removed`` with *reason* (checked by :func:`check_reason`).

    Raises
    ------
    PermissionDeniedError, ConflictError
        Not allowed, or already removed.
    """
    feature_id = before["id"]
    if not may_remove(who, feature_id, before["properties"].get("operator")):
        raise PermissionDeniedError(f"this token may not remove {feature_id!r}")
    if before["properties"].get("status") == Status.removed.value:
        raise ConflictError(f"{feature_id!r} is already removed")
    props = {
        **before["properties"],
        "status": Status.removed.value,
        "status_reason": reason,
        "updated_at": now,
    }
    return {**before, "properties": props}


def check_note(note: str | None) -> None:
    """Caps on the note of a verification (422)."""
    if note is not None:
        check_text(note, "note", NOTE_LIMIT)


def verified(before: dict[str, Any], who: Principal, now: str) -> dict[str, Any]:
    """The feature with ``last_verified_at`` now and ``last_verified_by`` *who*.

    Raises
    ------
    PermissionDeniedError
    """
    feature_id = before["id"]
    if not may_verify(who, feature_id, before["properties"].get("operator")):
        raise PermissionDeniedError(f"this token may not verify {feature_id!r}")
    props = {**before["properties"], "last_verified_at": now, "last_verified_by": who.name}
    return {**before, "properties": props}


__all__ = [
    "DEFAULT_TEXT_LIMIT",
    "ID_PATTERN",
    "NOTE_LIMIT",
    "SERVER_PROPERTIES",
    "TEXT_LIMITS",
    "Action",
    "Found",
    "check_feature",
    "check_if_match",
    "check_new_version",
    "check_note",
    "check_patch",
    "check_reason",
    "check_text",
    "check_write_limits",
    "diff",
    "feature_etag",
    "merge_patch",
    "new_feature",
    "parse_if_match",
    "patched",
    "refuse_server_properties",
    "removed",
    "verified",
]
