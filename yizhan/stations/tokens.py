"""Roles and bearer tokens: who may change what.

Four roles:

``public``
    No token. May read and send problem reports.
``manager``
    May edit and verify the stations assigned to them (a set of station ids).
``operator``
    May move its own cooling buses and edit the stations whose ``operator`` property is its
    operator name; may add and remove such stations.
``admin``
    Everything.

Every authorization decision is one of the small ``may_*`` functions below, so that the
rules live in one place (and one test table).

Tokens are kept in a JSON file (``<registry>.tokens.json``, mode 0600), hashed::

    {"type": "yizhan-tokens",
     "tokens": [{"id": "tok_…", "hash": "<sha256 hex of the token>", "role": "manager",
                 "name": "…", "stations": ["…"], "operator": null,
                 "created_at": "2026-07-15T08:00:00+00:00", "revoked_at": null}]}

A plain token (``yz_`` + 43 URL-safe characters, 256 bits) is shown once, when it is
created, and never stored. The server re-reads the file when it changes (``yizhan token
create`` takes effect without a restart); writes are serialised across processes with
``fcntl.flock`` on ``<file>.lock`` (:class:`~yizhan.stations.jsonstate.JsonStateFile`).
With PostgreSQL the same records are rows of a table (``yizhan.storage``).

This module is plain Python (no web framework): the HTTP routes and the CLI call it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.stations.clock import Clock, iso, parse_iso, utc_now
from yizhan.stations.jsonstate import EntrySource, JsonStateFile, SharedList

log = logging.getLogger("yizhan")

Role = Literal["public", "manager", "operator", "admin"]
#: Every role, from least to most powerful.
ROLES: tuple[Role, ...] = get_args(Role)
#: Roles a token can be created for (``public`` needs no token).
TOKEN_ROLES: tuple[Role, ...] = ("manager", "operator", "admin")
#: Prefix of every plain token (so that a leaked one is recognisable in logs and scanners).
TOKEN_PREFIX = "yz_"
#: Longest token name.
MAX_NAME = 200
FILE_TYPE = "yizhan-tokens"


# -- principals and authorization --------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is making a request.

    Attributes
    ----------
    name : str
        Human-readable name (the token's name, the operator for a legacy operator token).
    role : {"public", "manager", "operator", "admin"}
    stations : frozenset of str
        Station ids a manager may edit.
    operator : str or None
        Operator name of an operator token (as in the stations' and buses' ``operator``).
    token_id : str or None
        Id of the stored token, ``None`` for the public and for tokens from settings.
    """

    name: str
    role: Role
    stations: frozenset[str] = frozenset()
    operator: str | None = None
    token_id: str | None = None

    @property
    def admin(self) -> bool:
        """Whether this principal may do everything."""
        return self.role == "admin"


#: A request without a token.
PUBLIC = Principal("public", "public")


def may_edit(who: Principal, station_id: str, operator: str | None) -> bool:
    """Whether *who* may edit station *station_id*, whose ``operator`` property is *operator*.

    Admins may edit any station, managers the stations assigned to them, operators the
    stations whose operator is theirs (never one without an operator); the public none.
    """
    if who.role == "admin":
        return True
    if who.role == "manager":
        return station_id in who.stations
    if who.role == "operator":
        return operator is not None and who.operator is not None and operator == who.operator
    return False


def may_create(who: Principal, operator: str | None) -> bool:
    """Whether *who* may add a station whose ``operator`` property is *operator*.

    Admins may add any station; operators only stations of their own operator.
    """
    if who.role == "admin":
        return True
    return (
        who.role == "operator"
        and operator is not None
        and who.operator is not None
        and operator == who.operator
    )


def may_remove(who: Principal, station_id: str, operator: str | None) -> bool:
    """Whether *who* may remove station *station_id* (admins; operators their own stations).

    Managers may edit their stations but not remove them.
    """
    if who.role == "manager":
        return False
    return may_edit(who, station_id, operator)


def may_verify(who: Principal, station_id: str, operator: str | None) -> bool:
    """Whether *who* may mark station *station_id* as checked (as :func:`may_edit`)."""
    return may_edit(who, station_id, operator)


def may_read_reports(who: Principal, station_id: str, operator: str | None) -> bool:
    """Whether *who* may read the problem reports about a station (as :func:`may_edit`)."""
    return may_edit(who, station_id, operator)


def may_list_all_reports(who: Principal) -> bool:
    """Whether *who* may list the reports about every station (admins only)."""
    return who.role == "admin"


def may_move_bus(who: Principal, bus_operator: str | None) -> bool:
    """Whether *who* may place a cooling bus run by *bus_operator* (admins; its operator)."""
    if who.role == "admin":
        return True
    return (
        who.role == "operator"
        and bus_operator is not None
        and who.operator is not None
        and bus_operator == who.operator
    )


# -- stored tokens -----------------------------------------------------------------------


def _raw(token: str) -> bytes:
    return token.encode("utf-8", "surrogateescape")


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a plain token, as stored."""
    return hashlib.sha256(_raw(token)).hexdigest()


def new_token() -> str:
    """A new plain token: ``yz_`` + 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without its hash (which never leaves :class:`TokenStore`).

    Attributes
    ----------
    token_id : str
        ``tok_`` + 16 hex digits; what ``revoke`` takes.
    role : {"manager", "operator", "admin"}
    name : str
        Who holds it (free text).
    stations : tuple of str
        The stations of a manager.
    operator : str or None
        The operator name of an operator token.
    created_at, revoked_at : datetime
        Aware; ``revoked_at`` is ``None`` while the token is valid.
    """

    token_id: str
    role: Role
    name: str
    stations: tuple[str, ...] = ()
    operator: str | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def principal(self) -> Principal:
        """The principal this token authenticates."""
        return Principal(
            name=self.name,
            role=self.role,
            stations=frozenset(self.stations),
            operator=self.operator,
            token_id=self.token_id,
        )

    def scope(self) -> str:
        """What the token may do, in words (for the CLI)."""
        if self.role == "admin":
            return "everything"
        if self.role == "manager":
            return "edit and verify stations " + ", ".join(self.stations)
        return f"move the buses and edit the stations of operator {self.operator!r}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form (never the hash): ``id, role, name, stations, operator, created_at,
        revoked_at``."""
        return {
            "id": self.token_id,
            "role": self.role,
            "name": self.name,
            "stations": list(self.stations),
            "operator": self.operator,
            "created_at": iso(self.created_at) if self.created_at else None,
            "revoked_at": iso(self.revoked_at) if self.revoked_at else None,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> tuple[TokenRecord, str]:
        """Read a stored entry; returns the record and its hash.

        Raises
        ------
        InvalidInputError
            A member is missing or malformed (the field names the entry and member).
        """
        if not isinstance(d, dict):
            raise InvalidInputError(where, f"Expected an object, got {d!r:.80}")
        digest = d.get("hash")
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            raise InvalidInputError(f"{where}.hash", "Expected 64 hex digits (SHA-256)")
        token_id = d.get("id")
        if not isinstance(token_id, str) or not token_id:
            raise InvalidInputError(f"{where}.id", f"Expected a token id, got {token_id!r}")
        role = d.get("role")
        if role not in TOKEN_ROLES:
            raise InvalidInputError(
                f"{where}.role", f"Expected one of {', '.join(TOKEN_ROLES)}, got {role!r}"
            )
        name = d.get("name")
        if not isinstance(name, str):
            raise InvalidInputError(f"{where}.name", f"Expected a string, got {name!r}")
        stations = d.get("stations", [])
        if not isinstance(stations, list) or not all(isinstance(s, str) for s in stations):
            raise InvalidInputError(
                f"{where}.stations", f"Expected a list of station ids, got {stations!r:.80}"
            )
        operator = d.get("operator")
        if operator is not None and not isinstance(operator, str):
            raise InvalidInputError(f"{where}.operator", f"Expected a string, got {operator!r}")
        revoked = d.get("revoked_at")
        record = cls(
            token_id=token_id,
            role=cast(Role, role),
            name=name,
            stations=tuple(stations),
            operator=operator,
            created_at=parse_iso(d.get("created_at"), f"{where}.created_at"),
            revoked_at=None if revoked is None else parse_iso(revoked, f"{where}.revoked_at"),
        )
        return record, digest


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _check_text(field: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field, f"Expected {what}, got {value!r}")
    text = value.strip()
    if len(text) > MAX_NAME:
        raise InvalidInputError(
            field, f"Expected at most {MAX_NAME} characters, got {len(text)} characters"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInputError(field, f"Expected text without control characters, got {text!r}")
    return text


def check_new_token(
    role: str, name: Any, stations: Iterable[Any], operator: Any
) -> tuple[Role, str, tuple[str, ...], str | None]:
    """Validate what :meth:`TokenStore.create` is given; returns it cleaned up.

    Raises
    ------
    InvalidInputError
        Naming ``role``, ``name``, ``stations`` or ``operator``.
    """
    if role not in TOKEN_ROLES:
        hint = " (the public needs no token)" if role == "public" else ""
        raise InvalidInputError(
            "role", f"Expected one of {', '.join(TOKEN_ROLES)}, got {role!r}{hint}"
        )
    clean_name = _check_text("name", name, "a non-empty name of who holds the token")
    ids: list[str] = []
    for s in stations:
        sid = _check_text("stations", s, "non-empty station ids")
        if sid not in ids:
            ids.append(sid)
    if role == "manager" and not ids:
        raise InvalidInputError("stations", "Expected at least one station id for a manager")
    if role != "manager" and ids:
        raise InvalidInputError(
            "stations",
            f"Expected no stations for an {role} token (an {role} "
            f"{'may edit every station' if role == 'admin' else 'edits its own stations'}), "
            f"got {ids!r}",
        )
    op: str | None = None
    if role == "operator":
        op = _check_text("operator", operator, "the operator name (as in the registry)")
    elif operator is not None:
        raise InvalidInputError(
            "operator",
            f"Expected no operator for {'an admin' if role == 'admin' else 'a manager'} token, "
            f"got {operator!r}",
        )
    return role, clean_name, tuple(ids), op


class TokenStore:
    """Bearer tokens: those stored (a token file or a table), plus the bootstrap and legacy
    ones from settings.

    Parameters
    ----------
    path : Path, optional
        The token file; ``None`` keeps created tokens in memory only. A missing file means
        no stored tokens yet (it is created, mode 0600, by the first :meth:`create`).
    admin_token : str, optional
        Bootstrap admin token (``YIZHAN_ADMIN_TOKEN``).
    legacy_admin_tokens : sequence of str
        Admin tokens from ``YIZHAN_ADMIN_TOKENS``.
    legacy_operator_tokens : mapping of str to str
        Token → operator name, from ``YIZHAN_OPERATOR_TOKENS``.
    clock : callable, optional
        Returns the current aware time.
    source : EntrySource, optional
        Where the tokens are kept instead of *path* (a storage backend's table).

    Raises
    ------
    InvalidInputError
        The token file exists but cannot be read or is malformed (the field names the file).

    Notes
    -----
    Stored tokens are looked up by the SHA-256 of the presented token (a timing difference
    reveals nothing usable about a hash); the plain tokens from settings are compared with
    :func:`hmac.compare_digest`. Every :meth:`authenticate` asks the source whether it
    changed (one ``os.stat`` of the file) and reads it again when it did. A file that turns
    corrupt while the server runs is logged and ignored (the last good tokens stay valid);
    a deleted file means no stored tokens.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        admin_token: str | None = None,
        legacy_admin_tokens: Sequence[str] = (),
        legacy_operator_tokens: Mapping[str, str] | None = None,
        clock: Clock = utc_now,
        source: EntrySource | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        plain: list[tuple[bytes, Principal]] = []
        if admin_token:
            plain.append((_raw(admin_token), Principal("admin (YIZHAN_ADMIN_TOKEN)", "admin")))
        for i, tok in enumerate(legacy_admin_tokens):
            if tok:
                plain.append((_raw(tok), Principal(f"admin (YIZHAN_ADMIN_TOKENS[{i}])", "admin")))
        for tok, op in (legacy_operator_tokens or {}).items():
            if tok:
                plain.append((_raw(tok), Principal(op, "operator", operator=op)))
        self._plain = plain
        self.source: EntrySource = (
            source if source is not None else JsonStateFile(path, "tokens", mode=0o600)
        )
        where = self.source.where
        self._shared = SharedList(self.source, lambda e: _parse_tokens(e, where), noun="tokens")

    def refresh(self) -> None:
        """Read the stored tokens again if another process changed them (one ``os.stat``)."""
        self._shared.current()

    # -- the API ----------------------------------------------------------------------------
    def create(
        self,
        role: str,
        *,
        name: str,
        stations: Iterable[str] = (),
        operator: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """Create a token; returns the plain token (shown this once) and its record.

        Parameters
        ----------
        role : {"manager", "operator", "admin"}
        name : str
            Who holds it.
        stations : iterable of str
            A manager's stations (at least one; none for other roles).
        operator : str, optional
            An operator token's operator name (required for, and only for, that role).

        Raises
        ------
        InvalidInputError
            Naming ``role``, ``name``, ``stations`` or ``operator``; or the token file is
            corrupt (it is never overwritten then).
        """
        checked_role, clean_name, ids, op = check_new_token(role, name, stations, operator)
        token = new_token()
        record = TokenRecord(
            token_id="tok_" + secrets.token_hex(8),
            role=checked_role,
            name=clean_name,
            stations=ids,
            operator=op,
            created_at=self.clock().replace(microsecond=0),
        )
        self._shared.change(
            lambda entries: entries.append(record.as_dict() | {"hash": hash_token(token)})
        )
        return token, record

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a stored token; returns its record. Revoking twice keeps the first time.

        Raises
        ------
        NotFoundError
            No stored token has this id.
        """
        where = self.source.where

        def edit(entries: list[dict[str, Any]]) -> TokenRecord:
            for i, d in enumerate(entries):
                if isinstance(d, dict) and d.get("id") == token_id:
                    rec, digest = TokenRecord.from_dict(d, f"{where}: tokens[{i}]")
                    if rec.revoked_at is None:
                        rec = replace(rec, revoked_at=self.clock().replace(microsecond=0))
                        entries[i] = rec.as_dict() | {"hash": digest}
                    return rec
            raise NotFoundError(f"no token with id {token_id!r}")

        return self._shared.change(edit)

    def records(self) -> list[TokenRecord]:
        """Every stored token (revoked ones too), oldest first; never hashes nor tokens."""
        return [rec for rec, _ in self._shared.current().entries]

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a bearer token, or ``None`` if it is unknown or revoked."""
        if not token:
            return None
        stored = self._shared.current()
        raw = _raw(token)
        found: Principal | None = None
        for plain, who in self._plain:  # no early exit: the time does not depend on which
            if hmac.compare_digest(plain, raw) and found is None:
                found = who
        if found is not None:
            return found
        record = stored.by_hash.get(hash_token(token))
        if record is None or record.revoked:
            return None
        return record.principal()


@dataclass(frozen=True)
class _Tokens:
    entries: list[tuple[TokenRecord, str]]
    by_hash: dict[str, TokenRecord]


def _parse_tokens(entries: list[dict[str, Any]], where: str) -> _Tokens:
    parsed = [TokenRecord.from_dict(d, f"{where}: tokens[{i}]") for i, d in enumerate(entries)]
    seen: set[str] = set()
    for rec, _ in parsed:
        if rec.token_id in seen:
            raise InvalidInputError(
                f"{where}: tokens", f"Expected unique ids, got {rec.token_id!r} twice"
            )
        seen.add(rec.token_id)
    return _Tokens(parsed, {digest: rec for rec, digest in parsed})
