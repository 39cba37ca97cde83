"""Proposals of missing stations: a worker suggests a place, an admin or the area's manager
accepts it (it becomes a station) or rejects it with a reason.

Anyone may propose (``POST /proposals``, rate-limited per client like problem reports);
nothing is shown to workers until a proposal is accepted and added to the registry through
the same validated write as any other new station.

Proposals are kept in an append-only JSON-lines file (``<registry>.proposals.jsonl``, mode
0600), beside the reports::

    {"type": "yizhan-proposals", "version": 1, "salt": "<32 hex digits>"}
    {"event": "proposal", "id": "prop_…", "name": "…", "amenities": ["drinking_water"],
     "hours": "工作日 9:00-17:00", "comment": null, "location": [113.61, 34.75],
     "location_source": "gps", "district": "中原区", "nearest": {"id": "…", "distance_m": 820.0},
     "client": "<sha256 hex>", "created_at": "2026-07-15T08:00:00+00:00"}
    {"event": "decision", "id": "prop_…", "status": "accepted", "station_id": "yz-p-…",
     "reason": null, "by": {"role": "admin", "name": "…", "token_id": "tok_…"},
     "at": "2026-07-16T09:00:00+00:00"}

As for reports, ``client`` is a salted SHA-256 of the client's address (the raw address is
never stored) and every write appends one line under ``fcntl.flock`` and fsyncs before it
returns; a line torn by a crash is skipped with a warning. A decision is final: a proposal
is decided once. The file is read again when another process appended to it.

Hand-written rather than shared with :mod:`yizhan.stations.reports`: the file holds two
kinds of line and a decision must be checked and written under one lock together with the
station it creates (:meth:`ProposalStore.decide`).

This module is plain Python (no web framework): the HTTP routes call it.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import logging
import math
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from yizhan.errors import ConflictError, InvalidInputError, NotFoundError, RateLimitedError
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.reports import check_comment, check_location
from yizhan.stations.tokens import Principal
from yizhan.stations.vocab import Amenity

__all__ = [
    "LOCATION_SOURCES",
    "STATUSES",
    "Decision",
    "Proposal",
    "ProposalStore",
]

log = logging.getLogger("yizhan")

FILE_TYPE: Final = "yizhan-proposals"
FILE_VERSION: Final = 1
#: A proposal's life: pending until accepted or rejected (once).
STATUSES: Final = ("pending", "accepted", "rejected")
#: Where the proposed position came from: the phone's position or a tap on the map.
LOCATION_SOURCES: Final = ("gps", "map")
MAX_NAME: Final = 200
MAX_HOURS: Final = 500
MAX_REASON: Final = 500
HOUR: Final = 3600.0


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def check_text(field: str, value: Any, limit: int, required: bool = False) -> str | None:
    """Validate free text: stripped, at most *limit* characters, no control characters
    (newline and tab are fine); empty is ``None`` (refused when *required*).

    Raises
    ------
    InvalidInputError
        Naming *field*.
    """
    if value is None:
        if required:
            raise InvalidInputError(field, "Expected text, got nothing")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(field, f"Expected text, got {value!r:.80}")
    text = value.strip()
    if len(text) > limit:
        raise InvalidInputError(field, f"Expected at most {limit} characters, got {len(text)}")
    for i, c in enumerate(text):
        if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cs"):
            raise InvalidInputError(
                field, f"Expected text without control characters, got U+{ord(c):04X} at {i}"
            )
    if not text and required:
        raise InvalidInputError(field, "Expected text, got an empty string")
    return text or None


def check_amenities(value: Any) -> tuple[str, ...]:
    """Validate a list of amenity codes (the registry's vocabulary, no repeats)."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidInputError("amenities", f"Expected a list of amenities, got {value!r:.80}")
    known = [a.value for a in Amenity]
    out: list[str] = []
    for a in value:
        if not isinstance(a, str) or a not in known:
            raise InvalidInputError(
                "amenities", f"Expected amenities from {', '.join(known)}, got {a!r:.80}"
            )
        if a in out:
            raise InvalidInputError("amenities", f"{a!r} is listed twice")
        out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class Decision:
    """An admin's or manager's decision about a proposal."""

    status: str
    at: datetime
    by: dict[str, Any]
    reason: str | None = None
    station_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``status, at, by, reason, station_id``."""
        return {
            "status": self.status,
            "at": _iso(self.at),
            "by": self.by,
            "reason": self.reason,
            "station_id": self.station_id,
        }


@dataclass(frozen=True)
class Proposal:
    """A suggested station.

    Attributes
    ----------
    id : str
        ``prop_`` + 16 hex digits.
    name, hours, comment : str or None
        As the proposer wrote them (``hours`` free text, kept verbatim).
    amenities : tuple of str
        What the place offers (registry vocabulary).
    location : (lon, lat)
        WGS-84.
    location_source : {"gps", "map"} or None
        The phone's position or a tap on the map.
    district : str or None
        The area it is in (the ``district`` of the nearest station; who may decide).
    nearest : dict or None
        The nearest station when it was proposed: ``{"id", "name", "distance_m"}``.
    client : str
        Salted SHA-256 of the proposer's address.
    created_at : datetime
        Aware, UTC.
    decision : Decision or None
        ``None`` while pending.
    """

    id: str
    name: str
    amenities: tuple[str, ...]
    hours: str | None
    comment: str | None
    location: tuple[float, float]
    location_source: str | None
    district: str | None
    nearest: dict[str, Any] | None
    client: str
    created_at: datetime
    decision: Decision | None = None

    @property
    def status(self) -> str:
        """``pending``, ``accepted`` or ``rejected``."""
        return self.decision.status if self.decision is not None else "pending"

    def as_dict(self, include_client: bool = False) -> dict[str, Any]:
        """JSON form (the stored line without ``event``; ``client`` only if asked), with
        ``status`` and ``decision``."""
        d: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "amenities": list(self.amenities),
            "hours": self.hours,
            "comment": self.comment,
            "location": list(self.location),
            "location_source": self.location_source,
            "district": self.district,
            "nearest": self.nearest,
            "created_at": _iso(self.created_at),
            "status": self.status,
            "decision": self.decision.as_dict() if self.decision is not None else None,
        }
        if include_client:
            d["client"] = self.client
        return d

    @classmethod
    def from_line(cls, d: dict[str, Any]) -> Proposal:
        """Read a stored proposal line (``ValueError``/``KeyError``/``TypeError`` if bad)."""
        created = datetime.fromisoformat(d["created_at"])
        if created.tzinfo is None:
            raise ValueError(f"created_at: Expected a UTC offset, got {d['created_at']!r}")
        if not isinstance(d["id"], str) or not isinstance(d["client"], str):
            raise TypeError("id and client must be strings")
        loc = check_location(d["location"])
        assert loc is not None
        source = d.get("location_source")
        nearest = d.get("nearest")
        return cls(
            id=d["id"],
            name=check_text("name", d["name"], MAX_NAME, required=True) or "",
            amenities=check_amenities(d.get("amenities")),
            hours=check_text("hours", d.get("hours"), MAX_HOURS),
            comment=check_comment(d.get("comment")),
            location=loc,
            location_source=source if source in LOCATION_SOURCES else None,
            district=d["district"] if isinstance(d.get("district"), str) else None,
            nearest=nearest if isinstance(nearest, dict) else None,
            client=d["client"],
            created_at=created.astimezone(UTC),
        )


def _decision_from_line(d: dict[str, Any]) -> Decision:
    status = d["status"]
    if status not in ("accepted", "rejected"):
        raise ValueError(f"status: Expected accepted or rejected, got {status!r}")
    at = datetime.fromisoformat(d["at"])
    if at.tzinfo is None:
        raise ValueError(f"at: Expected a UTC offset, got {d['at']!r}")
    by = d.get("by")
    return Decision(
        status=status,
        at=at.astimezone(UTC),
        by=by if isinstance(by, dict) else {},
        reason=d.get("reason") if isinstance(d.get("reason"), str) else None,
        station_id=d.get("station_id") if isinstance(d.get("station_id"), str) else None,
    )


class ProposalStore:
    """Every proposal and decision, in memory and in an append-only JSON-lines file.

    Parameters
    ----------
    path : Path, optional
        The file; ``None`` keeps proposals in memory only. Created (with its header) if missing.
    rate_per_hour : int
        Most proposals one client may send in any hour (429 beyond).
    max_pending : int
        Most proposals waiting for a decision; more are refused (429) until some are decided.
    clock : callable, optional
        Returns the current aware time.

    Raises
    ------
    InvalidInputError
        A parameter is out of range, or the file cannot be opened for appending.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        rate_per_hour: int = 10,
        max_pending: int = 10_000,
        clock: Clock = utc_now,
    ) -> None:
        for name, value in (("rate_per_hour", rate_per_hour), ("max_pending", max_pending)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(name, f"Expected a whole number >= 1, got {value!r}")
        self.path = path
        self.rate_per_hour = rate_per_hour
        self.max_pending = max_pending
        self.clock = clock
        self._lock = threading.RLock()
        self._salt: str | None = None
        self._reset()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked() as fd:
                self._catch_up(fd)
        else:
            self._salt = secrets.token_hex(16)

    def _reset(self) -> None:
        self._salt = None
        self._by_id: dict[str, Proposal] = {}
        self._order: list[str] = []
        self._client_times: dict[str, list[float]] = {}
        self._offset = 0
        self._ino: int | None = None
        self._ends_with_newline = True

    # -- the file ---------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[int]:
        """The file opened for appending, with an exclusive ``flock`` held."""
        assert self.path is not None
        existed = self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InvalidInputError(
                str(self.path), f"cannot open for appending: {exc.strerror or exc}"
            ) from exc
        try:
            if not existed:  # make the new file's name durable too
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _catch_up(self, fd: int) -> None:
        """With the lock held: read what was appended, and write the header if missing."""
        st = os.fstat(fd)
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._offset):
            log.warning("%s was replaced or truncated; reading it again", self.path)
            self._reset()
        self._ino = st.st_ino
        if st.st_size > self._offset:
            data = os.pread(fd, st.st_size - self._offset, self._offset)
            self._offset += self._parse(data, self._offset)
            self._ends_with_newline = data.endswith(b"\n")
        if self._salt is None:
            self._salt = secrets.token_hex(16)
            self._append(fd, {"type": FILE_TYPE, "version": FILE_VERSION, "salt": self._salt})

    def _parse(self, data: bytes, start: int) -> int:
        consumed = 0
        while consumed < len(data):
            end = data.find(b"\n", consumed)
            if end < 0:
                log.warning("%s: skipping an incomplete last line at byte %d", self.path, start)
                return len(data)
            line = data[consumed:end].strip()
            where = start + consumed
            consumed = end + 1
            if not line:
                continue
            try:
                self._index(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s: skipping an unreadable line at byte %d: %s", self.path, where, exc)
        return consumed

    def _index(self, d: Any) -> None:
        if not isinstance(d, dict):
            raise TypeError(f"Expected an object, got {d!r:.80}")
        if d.get("type") == FILE_TYPE:
            if self._salt is None:
                salt = d.get("salt")
                if not isinstance(salt, str) or not salt:
                    raise ValueError(f"salt: Expected a string, got {salt!r}")
                self._salt = salt
            return
        event = d.get("event")
        if event == "proposal":
            p = Proposal.from_line(d)
            if p.id not in self._by_id:
                self._by_id[p.id] = p
                self._order.append(p.id)
                times = self._client_times.setdefault(p.client, [])
                bisect.insort(times, p.created_at.timestamp())
        elif event == "decision":
            pid = d["id"]
            cur = self._by_id.get(pid)
            if cur is None:
                raise ValueError(f"a decision about an unknown proposal {pid!r}")
            if cur.decision is None:
                self._by_id[pid] = replace(cur, decision=_decision_from_line(d))
        else:
            raise ValueError(f"event: Expected proposal or decision, got {event!r}")

    def _append(self, fd: int, line: dict[str, Any]) -> None:
        data = (b"" if self._ends_with_newline else b"\n") + orjson.dumps(line) + b"\n"
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
        self._offset = os.fstat(fd).st_size
        self._ends_with_newline = True

    @contextmanager
    def _writing(self) -> Iterator[int | None]:
        """The store's lock (and the file's, up to date), for one change."""
        with self._lock:
            if self.path is None:
                yield None
                return
            with self._locked() as fd:
                self._catch_up(fd)
                yield fd

    def _refresh(self) -> None:
        """Read what another process appended (one ``os.stat`` when nothing changed)."""
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino == self._ino and st.st_size == self._offset:
            return
        with self._lock, self._locked() as fd:
            self._catch_up(fd)

    # -- the API ----------------------------------------------------------------------------
    def client_hash(self, client: str) -> str:
        """The salted SHA-256 under which *client* (an address) is stored."""
        assert self._salt is not None
        return hashlib.sha256(
            f"{self._salt}\0{client}".encode("utf-8", "surrogateescape")
        ).hexdigest()

    def _check_rate(self, client_hash: str, now: datetime) -> None:
        t = now.timestamp()
        times = self._client_times.get(client_hash, [])
        lo = bisect.bisect_right(times, t - HOUR)
        count = bisect.bisect_right(times, t) - lo
        if count >= self.rate_per_hour:
            retry = math.ceil(times[lo + count - self.rate_per_hour] + HOUR - t)
            raise RateLimitedError(
                f"Too many proposals: at most {self.rate_per_hour} in an hour from one client; "
                f"try again in {retry} s",
                retry,
            )
        pending = sum(1 for p in self._by_id.values() if p.decision is None)
        if pending >= self.max_pending:
            raise RateLimitedError(
                f"Too many proposals are waiting for a decision ({pending}); try again later",
                3600,
            )

    def add(
        self,
        name: Any,
        location: Any,
        *,
        client: str,
        amenities: Any = None,
        hours: Any = None,
        comment: Any = None,
        location_source: Any = None,
        district: str | None = None,
        nearest: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Proposal:
        """Record a proposal, durably (appended and fsynced before this returns).

        Raises
        ------
        InvalidInputError
            Naming ``name``, ``location``, ``amenities``, ``hours``, ``comment``,
            ``location_source`` or ``client``.
        RateLimitedError
            The client proposed too much in the last hour, or too many wait for a decision.
        """
        text = check_text("name", name, MAX_NAME, required=True) or ""
        loc = check_location(location)
        if loc is None:
            raise InvalidInputError("location", "Expected a position [lon, lat], got nothing")
        offers = check_amenities(amenities)
        hours_text = check_text("hours", hours, MAX_HOURS)
        note = check_comment(comment)
        if location_source is not None and location_source not in LOCATION_SOURCES:
            raise InvalidInputError(
                "location_source",
                f"Expected one of {', '.join(LOCATION_SOURCES)}, got {location_source!r:.40}",
            )
        if not isinstance(client, str) or not client:
            raise InvalidInputError("client", f"Expected a client address, got {client!r}")
        when = (now or self.clock()).astimezone(UTC).replace(microsecond=0)
        with self._writing() as fd:
            who = self.client_hash(client)
            self._check_rate(who, when)
            p = Proposal(
                id="prop_" + secrets.token_hex(8),
                name=text,
                amenities=offers,
                hours=hours_text,
                comment=note,
                location=loc,
                location_source=location_source,
                district=district,
                nearest=nearest,
                client=who,
                created_at=when,
            )
            if fd is not None:
                line = {"event": "proposal", **p.as_dict(include_client=True)}
                for key in ("status", "decision"):
                    line.pop(key)
                self._append(fd, line)
            self._by_id[p.id] = p
            self._order.append(p.id)
            bisect.insort(self._client_times.setdefault(who, []), when.timestamp())
            return p

    def get(self, proposal_id: str) -> Proposal:
        """The proposal with this id.

        Raises
        ------
        NotFoundError
            No proposal has this id.
        """
        self._refresh()
        with self._lock:
            p = self._by_id.get(proposal_id)
        if p is None:
            raise NotFoundError(f"no proposal with id {proposal_id!r}")
        return p

    def list(
        self, status: str | None = None, districts: Collection[str | None] | None = None
    ) -> list[Proposal]:
        """Proposals, newest first; only those of *status* and in *districts* if given.

        Raises
        ------
        InvalidInputError
            Naming ``status``.
        """
        if status is not None and status not in STATUSES:
            raise InvalidInputError(
                "status", f"Expected one of {', '.join(STATUSES)} (or none), got {status!r}"
            )
        self._refresh()
        with self._lock:
            rows = [self._by_id[i] for i in reversed(self._order)]
        return [
            p
            for p in rows
            if (status is None or p.status == status)
            and (districts is None or p.district in districts)
        ]

    def decide(
        self,
        proposal_id: str,
        status: str,
        who: Principal,
        *,
        reason: Any = None,
        create: Callable[[Proposal], str] | None = None,
        now: datetime | None = None,
    ) -> Proposal:
        """Accept or reject a pending proposal, once.

        Parameters
        ----------
        proposal_id : str
        status : {"accepted", "rejected"}
        who : Principal
            Who decides (recorded; the caller checks that they may).
        reason : str
            Why (required to reject, at most 500 characters).
        create : callable, optional
            For ``accepted``: adds the station and returns its id. Called with the store
            locked, after the proposal was found pending; if it raises, nothing is recorded.

        Raises
        ------
        NotFoundError
            No proposal has this id.
        ConflictError
            It was already decided (409).
        InvalidInputError
            Naming ``status`` or ``reason``.
        """
        if status not in ("accepted", "rejected"):
            raise InvalidInputError("status", f"Expected accepted or rejected, got {status!r}")
        why = check_text("reason", reason, MAX_REASON, required=status == "rejected")
        with self._writing() as fd:
            cur = self._by_id.get(proposal_id)
            if cur is None:
                raise NotFoundError(f"no proposal with id {proposal_id!r}")
            if cur.decision is not None:
                raise ConflictError(
                    f"proposal {proposal_id!r} was already {cur.decision.status} "
                    f"({_iso(cur.decision.at)})"
                )
            station_id = create(cur) if status == "accepted" and create is not None else None
            decision = Decision(
                status=status,
                at=(now or self.clock()).astimezone(UTC).replace(microsecond=0),
                by={"role": who.role, "name": who.name, "token_id": who.token_id},
                reason=why,
                station_id=station_id,
            )
            if fd is not None:
                self._append(fd, {"event": "decision", "id": proposal_id, **decision.as_dict()})
            done = replace(cur, decision=decision)
            self._by_id[proposal_id] = done
            return done
