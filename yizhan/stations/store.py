"""Editing the registry safely: versions, merge patches, durable writes and an audit trail.

The GeoJSON file stays the source of truth. :class:`RegistryStore` holds the current
:class:`~yizhan.stations.search.StationSearch` (registry and indexes) and replaces it as a
whole after every accepted change, so a reader works on one consistent snapshot and
never sees half of a change. A change is accepted in this order, under a thread lock and
an inter-process file lock (``<registry>.lock``):

1. if the file changed on disk since it was read (another process, a ``git pull``), the
   new file is loaded and validated first;
2. the caller's ``If-Match`` version is compared with the feature's current version
   (:func:`feature_etag`): a stale version is refused (412), none at all too (428);
3. the new feature is validated exactly as a load would (its model, bus stops, unique
   id), plus write limits (:data:`TEXT_LIMITS`);
4. the whole registry is written to a temporary file, flushed, renamed over the old one
   and the directory flushed (:func:`~yizhan.stations.registry.write_json_atomic`);
5. one JSON line is appended to the audit log (``<registry>.audit.jsonl``) and flushed;
6. the new snapshot replaces the old one; only then is the change acknowledged.

A crash before step 4's rename leaves the old file, after it the new one. A crash between
steps 4 and 5 leaves a change without its audit line: at the next start the store sees
that the file's version of the feature differs from the last one the log recorded and
logs the difference as an ``external`` change, so history stays complete.

This module is plain Python (no web framework): the HTTP routes call it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from yizhan.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RegistryInvalidError,
)
from yizhan.stations.jsonio import gc_paused, read_document, write_json_atomic
from yizhan.stations.models import is_bus
from yizhan.stations.registry import Registry, from_document, verification_day
from yizhan.stations.tokens import Principal, may_create, may_edit, may_remove, may_verify
from yizhan.stations.validate import validate_document
from yizhan.stations.vocab import Status

log = logging.getLogger("yizhan")

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
#: Properties only the server sets (by verifying, removing or any edit).
SERVER_PROPERTIES = ("last_verified_at", "last_verified_by", "created_at", "updated_at")
#: Ids of new features: URL-safe, at most 64 characters.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$")

Action = Literal["create", "update", "remove", "verify", "external"]


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


def _text_limits(value: Any, where: str, limit: int) -> None:
    if isinstance(value, str):
        if len(value) > limit:
            raise InvalidInputError(where, f"Expected at most {limit} characters, got {len(value)}")
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            raise InvalidInputError(where, "Expected text without control characters")
    elif isinstance(value, list):
        if len(value) > 200:
            raise InvalidInputError(where, f"Expected at most 200 items, got {len(value)}")
        for j, v in enumerate(value):
            _text_limits(v, f"{where}.{j}", DEFAULT_TEXT_LIMIT)
    elif isinstance(value, dict):
        if len(value) > 200:
            raise InvalidInputError(where, f"Expected at most 200 members, got {len(value)}")
        for k, v in value.items():
            _text_limits(v, f"{where}.{k}", DEFAULT_TEXT_LIMIT)


def check_write_limits(feature: dict[str, Any]) -> None:
    """Length caps on the text of a feature sent by a client (see :data:`TEXT_LIMITS`)."""
    props = feature.get("properties")
    if isinstance(props, dict):
        for key, value in props.items():
            _text_limits(value, f"properties.{key}", TEXT_LIMITS.get(key, DEFAULT_TEXT_LIMIT))
    for key, value in feature.items():
        if key not in ("properties", "geometry", "type", "id"):
            _text_limits(value, key, DEFAULT_TEXT_LIMIT)


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


# -- the audit log -------------------------------------------------------------------------


@contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive inter-process lock on *path* (``fcntl.flock``); no-op for ``None``."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class AuditLog:
    """Append-only JSON lines: one entry per accepted change (or ``None``: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: list[dict[str, Any]] = []

    def append(self, entries: Sequence[dict[str, Any]]) -> None:
        """Append entries and flush them to disk before returning."""
        if not entries:
            return
        if self.path is None:
            self._memory.extend(entries)
            return
        data = b"".join(orjson.dumps(e, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A crash in the middle of an earlier append leaves a line without its newline:
            # start on a fresh line so that the torn entry stays the only casualty.
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self, feature_id: str | None = None) -> list[dict[str, Any]]:
        """Every entry (of one feature), oldest first. A torn line is skipped with a warning."""
        if self.path is None:
            rows = list(self._memory)
        else:
            rows = []
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return []
            for n, line in enumerate(data.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("%s:%d: skipping a torn audit line", self.path, n)
                    continue
                if isinstance(row, dict):
                    rows.append(row)
        if feature_id is not None:
            rows = [r for r in rows if r.get("id") == feature_id]
        return rows


# -- the store -----------------------------------------------------------------------------


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _now_iso(clock: Callable[[], datetime], timezone: str) -> str:
    return clock().astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")


def verified_at(feature: dict[str, Any]) -> datetime | None:
    """``last_verified_at`` of a feature as an aware datetime (a date: its start, UTC)."""
    value = feature["properties"].get("last_verified_at")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if isinstance(when, datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def is_stale(feature: dict[str, Any], today: date, stale_after_days: int) -> bool:
    """Whether a feature was never verified, or last verified more than *stale_after_days*
    days before *today*: the rule of ``StationFilter.make(stale=…)``, on the same day column."""
    day = verification_day(feature["properties"].get("last_verified_at"))
    return day < 0 or today.toordinal() - day > stale_after_days


@dataclass(frozen=True)
class Found:
    """A feature of the current snapshot: ``bus`` tells a cooling bus from a station."""

    feature: dict[str, Any]
    etag: str
    bus: bool


class RegistryStore:
    """The registry being served and edited; see the module docstring for the guarantees.

    Parameters
    ----------
    registry : Registry
        The validated registry (``registry.path`` ``None``: edits stay in memory).
    build : callable
        Builds the search (indexes, hours, buses) over a registry; called for every new
        snapshot, outside of any reader's way.
    timezone, holiday_country : str
        As for loading: bus stop hours are checked in them.
    audit_path : Path, optional
        The audit log (default ``<registry>.audit.jsonl``; memory only without a file).
    clock : callable
        The current time (aware); tests inject one.
    """

    def __init__(
        self,
        registry: Registry,
        build: Callable[[Registry], Any],
        *,
        timezone: str = "Asia/Shanghai",
        holiday_country: str | None = "CN",
        audit_path: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._build = build
        self.timezone = timezone
        self.holiday_country = holiday_country
        self.clock = clock
        self.path = registry.path
        if audit_path is None and self.path is not None:
            audit_path = self.path.with_name(self.path.name + ".audit.jsonl")
        self.audit = AuditLog(audit_path)
        self._lock_path = (
            self.path.with_name(self.path.name + ".lock") if self.path is not None else None
        )
        self._lock = threading.RLock()
        self._etags: dict[str, str] = {}
        self._etag_owner: dict[str, dict[str, Any]] = {}
        self._stamp = _stamp(self.path)
        self._refused_stamp: tuple[int, int, int] | None = None
        #: Bumped with every new snapshot (edits and reloads).
        self.version = 0
        self.search = build(registry)
        self._reconcile()

    # -- reading ---------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        """The registry of the current snapshot."""
        reg: Registry = self.search.registry
        return reg

    def etag(self, feature: dict[str, Any]) -> str:
        """The version of a feature of the current snapshot (cached per feature object)."""
        key = feature["id"]
        tag = self._etags.get(key)
        if tag is None or self._etag_owner.get(key) is not feature:
            tag = feature_etag(feature)
            self._etags[key] = tag
            self._etag_owner[key] = feature
        return tag

    def find(self, feature_id: str) -> Found:
        """The feature with this id (station or bus) and its version.

        Raises
        ------
        NotFoundError
            No feature has this id.
        """
        reg = self.registry
        i = reg.index_of.get(feature_id)
        if i is not None:
            f = reg.features[i]
            return Found(f, self.etag(f), bus=False)
        for b in reg.buses:
            if b["id"] == feature_id:
                return Found(b, self.etag(b), bus=True)
        raise NotFoundError(f"no station or bus with id {feature_id!r}")

    def history(self, feature_id: str) -> list[dict[str, Any]]:
        """The audit entries of one feature, oldest first."""
        return self.audit.entries(feature_id)

    # -- writing ---------------------------------------------------------------------------
    def create(self, feature: dict[str, Any], who: Principal) -> Found:
        """Add a new station (or bus); the id is generated when absent.

        Raises
        ------
        InvalidInputError, PermissionDeniedError, ConflictError
        """
        if not isinstance(feature, dict):
            raise InvalidInputError(
                "body", f"Expected a GeoJSON Feature object, got {feature!r:.60}"
            )
        new = dict(feature)
        new.setdefault("type", "Feature")
        props = new.get("properties")
        if not isinstance(props, dict):
            raise InvalidInputError("properties", "Expected an object of properties")
        self._refuse_server_properties(props, "properties")
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
        stamp = self.clock().astimezone(ZoneInfo(self.timezone)).isoformat(timespec="seconds")
        new["properties"] = {**props, "created_at": stamp, "updated_at": stamp}
        status = new["properties"].get("status")
        if status == Status.removed.value:
            raise InvalidInputError("properties.status", "a new station cannot be 'removed'")
        with self._transaction():
            try:
                self.find(fid)
            except NotFoundError:
                pass
            else:
                raise ConflictError(f"a station or bus with id {fid!r} already exists")
            self._check_new(new)
            self._commit(None, new, "create", who)
            return self.find(fid)

    def update(self, feature_id: str, patch: Any, if_match: str | None, who: Principal) -> Found:
        """Apply a JSON merge patch (RFC 7396) to a feature.

        ``id`` and ``type`` cannot change, ``kind`` cannot change between station and bus,
        and the server-set properties (:data:`SERVER_PROPERTIES`) cannot be patched.
        Removing (``status: removed``) and restoring a removed station need the right to
        remove it; changing ``operator`` needs an admin.

        Raises
        ------
        NotFoundError, PreconditionRequiredError, PreconditionFailedError,
        PermissionDeniedError, InvalidInputError
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
        self._refuse_server_properties(patch.get("properties") or {}, "properties")
        with self._transaction():
            cur = self._current(feature_id, if_match)
            before = cur.feature
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
                return cur
            edited = {c["path"].split(".")[1] for c in diff(bp, ap, "p") if "." in c["path"]}
            guessed = [g for g in bp.get("guessed") or [] if g not in edited]
            ap = {**ap, "updated_at": _now_iso(self.clock, self.timezone)}
            if guessed:
                ap["guessed"] = guessed
            else:
                ap.pop("guessed", None)
            after = {**after, "properties": ap}
            self._check_new(after)
            self._commit(before, after, "update", who)
            return self.find(feature_id)

    def remove(self, feature_id: str, reason: str, if_match: str | None, who: Principal) -> Found:
        """Mark a feature ``status: removed`` with a reason; nothing is erased."""
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInputError("reason", "Expected a reason for removing the station")
        _text_limits(reason, "reason", TEXT_LIMITS["status_reason"])
        with self._transaction():
            cur = self._current(feature_id, if_match)
            before = cur.feature
            if not may_remove(who, feature_id, before["properties"].get("operator")):
                raise PermissionDeniedError(f"this token may not remove {feature_id!r}")
            if before["properties"].get("status") == Status.removed.value:
                raise ConflictError(f"{feature_id!r} is already removed")
            props = {
                **before["properties"],
                "status": Status.removed.value,
                "status_reason": reason,
                "updated_at": _now_iso(self.clock, self.timezone),
            }
            after = {**before, "properties": props}
            self._check_new(after)
            self._commit(before, after, "remove", who, reason=reason)
            return self.find(feature_id)

    def verify(
        self, feature_id: str, who: Principal, if_match: str | None = None, note: str | None = None
    ) -> Found:
        """Record that *who* checked the feature on site now (``last_verified_at/_by``).

        ``If-Match`` is optional: a verification changes nothing an editor wrote, so it
        cannot overwrite an edit; when given it is checked.
        """
        if note is not None:
            _text_limits(note, "note", 1000)
        with self._transaction():
            cur = self._current(feature_id, if_match, required=False)
            before = cur.feature
            if not may_verify(who, feature_id, before["properties"].get("operator")):
                raise PermissionDeniedError(f"this token may not verify {feature_id!r}")
            now = _now_iso(self.clock, self.timezone)
            props = {**before["properties"], "last_verified_at": now, "last_verified_by": who.name}
            after = {**before, "properties": props}
            self._commit(before, after, "verify", who, reason=note)
            return self.find(feature_id)

    # -- reloading -------------------------------------------------------------------------
    def changed_on_disk(self) -> bool:
        """Whether the file differs from the one served (and was not already refused)."""
        stamp = _stamp(self.path)
        return stamp is not None and stamp != self._stamp and stamp != self._refused_stamp

    def reload_if_changed(self) -> bool:
        """Load the file again if someone else changed it; ``True`` if a new snapshot is served.

        An invalid file is refused with one log line (every error in it follows), and the
        current snapshot stays; the same file is not tried again until it changes.
        """
        if not self.changed_on_disk():
            return False
        with self._lock, file_lock(self._lock_path):
            return self._reload()

    def _reload(self) -> bool:
        stamp = _stamp(self.path)
        if self.path is None or stamp is None or stamp == self._stamp:
            return False
        try:
            with gc_paused():
                reg = from_document(
                    read_document(self.path),
                    path=self.path,
                    source=str(self.path),
                    timezone=self.timezone,
                    holiday_country=self.holiday_country,
                )
        except (InvalidInputError, RegistryInvalidError) as exc:
            self._refused_stamp = stamp
            log.error(
                "the registry file %s changed on disk but is invalid; still serving the "
                "previous version. %s",
                self.path,
                exc,
            )
            return False
        old = self.registry
        self._swap(reg)
        self._stamp = stamp
        self.audit.append(self._external_entries(old, reg))
        log.info("reloaded %s after a change on disk (%d stations)", self.path, len(reg))
        return True

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, file_lock(self._lock_path):
            if self.changed_on_disk():
                # Another process wrote the file: build on its version, not ours.
                self._reload()
            yield

    def _current(self, feature_id: str, if_match: str | None, required: bool = True) -> Found:
        cur = self.find(feature_id)
        tags = parse_if_match(if_match)
        if tags is None:
            if required:
                raise PreconditionRequiredError(
                    f"If-Match is required: send the ETag of {feature_id!r} from GET "
                    f"(If-Match: {cur.etag}), so that no one else's edit is overwritten"
                )
            return cur
        if "*" not in tags and cur.etag not in tags:
            raise PreconditionFailedError(
                f"{feature_id!r} was changed by someone else: its version is now {cur.etag}, "
                f"not {', '.join(tags)}; GET it again and reapply your change",
                current_etag=cur.etag,
            )
        return cur

    @staticmethod
    def _refuse_server_properties(props: dict[str, Any], where: str) -> None:
        for key in SERVER_PROPERTIES:
            if key in props:
                hint = " (POST /stations/{id}/verify)" if key.startswith("last_verified") else ""
                raise InvalidInputError(f"{where}.{key}", f"is set by the server{hint}")

    def _check_new(self, feature: dict[str, Any]) -> None:
        check_write_limits(feature)
        check_feature(feature, self.timezone, self.holiday_country)

    def _commit(
        self,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        action: Action,
        who: Principal,
        reason: str | None = None,
    ) -> None:
        reg = self.registry
        fid = after["id"]
        if before is not None and not is_bus(before):
            new = reg.with_station(reg.index_of[fid], after)  # the common case: cheap
        elif before is not None:
            buses = list(reg.buses)
            buses[next(j for j, b in enumerate(buses) if b["id"] == fid)] = after
            new = reg.with_buses(buses)
        elif is_bus(after):
            new = reg.with_buses([*reg.buses, after])
        else:
            new = Registry(
                features=[*reg.features, after],
                meta=reg.meta,
                path=reg.path,
                warnings=reg.warnings,
                buses=reg.buses,
            )
        search = self._build(new)  # before anything is written: a failure changes nothing
        if self.path is not None:
            write_json_atomic(self.path, new.to_geojson())
        entry = self._entry(action, fid, before, after, who, reason)
        try:
            self.audit.append([entry])
        except OSError:
            # The change is on disk: serve it. The next start logs it as an external change.
            log.exception("could not append to the audit log %s", self.audit.path)
        self.search = search
        self.version += 1
        self._stamp = _stamp(self.path)

    def _swap(self, registry: Registry) -> None:
        self.search = self._build(registry)
        self.version += 1
        self._etags.clear()
        self._etag_owner.clear()

    def _entry(
        self,
        action: Action,
        fid: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        who: Principal | None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        return {
            "at": self.clock().astimezone(UTC).isoformat(timespec="microseconds"),
            "id": fid,
            "action": action,
            "actor": (
                {"role": who.role, "name": who.name, "token_id": who.token_id}
                if who is not None
                else {"role": "file", "name": str(self.path), "token_id": None}
            ),
            "reason": reason,
            "etag_before": feature_etag(before) if before is not None else None,
            "etag_after": feature_etag(after) if after is not None else None,
            "changes": diff(before or {}, after or {}),
            "before": before,
            "after": after,
        }

    def _external_entries(self, old: Registry, new: Registry) -> list[dict[str, Any]]:
        """Audit entries for the features a change on disk added, changed or dropped."""
        a = {f["id"]: f for f in (*old.features, *old.buses)}
        b = {f["id"]: f for f in (*new.features, *new.buses)}
        out = []
        for fid in sorted(set(a) | set(b)):
            if a.get(fid) != b.get(fid):
                out.append(self._entry("external", fid, a.get(fid), b.get(fid), None))
        return out

    def _reconcile(self) -> None:
        """Log features whose stored version differs from the last one the audit log has."""
        if self.audit.path is None or not self.audit.path.exists():
            return
        last: dict[str, dict[str, Any]] = {}
        for row in self.audit.entries():
            if isinstance(row.get("id"), str):
                last[row["id"]] = row
        reg = self.registry
        current = {f["id"]: f for f in (*reg.features, *reg.buses)}
        out = []
        for fid, row in sorted(last.items()):
            f = current.get(fid)
            tag = feature_etag(f) if f is not None else None
            if tag != row.get("etag_after"):
                out.append(self._entry("external", fid, row.get("after"), f, None))
        if out:
            log.warning(
                "%d features of %s differ from the audit log's last entry (changed outside "
                "Yizhan, or a crash before the log was written); logged as external changes",
                len(out),
                self.path,
            )
            with file_lock(self._lock_path):
                self.audit.append(out)


__all__ = [
    "DEFAULT_TEXT_LIMIT",
    "SERVER_PROPERTIES",
    "TEXT_LIMITS",
    "AuditLog",
    "Found",
    "RegistryStore",
    "check_feature",
    "check_write_limits",
    "diff",
    "feature_etag",
    "file_lock",
    "is_stale",
    "merge_patch",
    "parse_if_match",
    "verified_at",
]
