"""Proposals of missing stations: a worker suggests a place, an admin or the area's manager
accepts it (it becomes a station) or rejects it with a reason.

Anyone may propose (``POST /proposals``, rate-limited per client like problem reports);
nothing is shown to workers until a proposal is accepted and added to the registry through
the same validated write as any other new station.

:class:`ProposalStore` keeps the rules (validation, the per-client rate limit, the cap on
pending proposals, a decision made once) and an in-memory view; where the events are kept is
a :class:`ProposalLog` the storage backend gives it: the files backend's append-only
JSON-lines file (:class:`~yizhan.stations.proposalfile.ProposalFile`,
``<registry>.proposals.jsonl``, mode 0600, beside the reports), or PostgreSQL's
``proposals`` table (:mod:`yizhan.storage.pg_records`). The file::

    {"type": "yizhan-proposals", "version": 1, "salt": "<32 hex digits>"}
    {"event": "proposal", "id": "prop_…", "name": "…", "amenities": ["drinking_water"],
     "hours": "工作日 9:00-17:00", "comment": null, "location": [113.61, 34.75],
     "location_source": "gps", "district": "中原区", "nearest": {"id": "…", "distance_m": 820.0},
     "client": "<sha256 hex>", "created_at": "2026-07-15T08:00:00+00:00"}
    {"event": "decision", "id": "prop_…", "status": "accepted", "station_id": "yz-p-…",
     "reason": null, "by": {"role": "admin", "name": "…", "token_id": "tok_…"},
     "at": "2026-07-16T09:00:00+00:00"}

As for reports, ``client`` is a salted SHA-256 of the client's address (the raw address is
never stored; the salt is kept with the proposals) and every write is durable before it
returns. Every change is made holding the log's inter-process lock, after reading what
other processes wrote, so the rate limit holds across processes and a proposal is decided
once. The reading methods read what other processes wrote first (one ``os.stat``, or one
small query).

This module is plain Python (no web framework): the HTTP routes call it.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import secrets
import threading
import unicodedata
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from yizhan.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    StorageUnavailableError,
)
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.proposalfile import ProposalFile
from yizhan.stations.reports import check_comment, check_location
from yizhan.stations.tokens import Principal
from yizhan.stations.vocab import Amenity

__all__ = [
    "LOCATION_SOURCES",
    "STATUSES",
    "Decision",
    "Proposal",
    "ProposalLog",
    "ProposalStore",
    "ProposalWriter",
]

log = logging.getLogger("yizhan")

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


class ProposalWriter(Protocol):
    """A :class:`ProposalLog` while its inter-process lock is held (:meth:`ProposalLog.writing`)."""

    @property
    def salt(self) -> str:
        """The salt of the clients' hashes kept with the proposals (after :meth:`read_new`)."""
        ...

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        """As :meth:`ProposalLog.read_new`, under the lock (nothing can be written meanwhile)."""
        ...

    def append(self, event: dict[str, Any]) -> None:
        """Store one event durably: ``{"event": "proposal", …}`` (a new proposal) or
        ``{"event": "decision", "id": …, "status", "at", "by", "reason", "station_id"}``.

        Raises
        ------
        ConflictError
            A decision about a proposal already decided.
        """
        ...


class ProposalLog(Protocol):
    """Where proposals and their decisions are kept, shared by every process.

    Attributes
    ----------
    where : str
        What to name in messages (a file, a table).
    """

    where: str

    def changed(self) -> bool:
        """Cheap: whether anything was written (by any process) since the last read."""
        ...

    def read_new(self) -> tuple[bool, list[dict[str, Any]]]:
        """The events written since the last read, as stored (a proposal before its
        decision, proposals in the order they were made); ``True`` first when everything is
        given again (forget what was read)."""
        ...

    def writing(self) -> AbstractContextManager[ProposalWriter]:
        """Hold the log's inter-process lock while a change is checked and written."""
        ...


class ProposalStore:
    """Every proposal and decision, in memory and in a log shared by every process.

    Parameters
    ----------
    path : Path, optional
        The JSON-lines file; ``None`` (and no *source*) keeps proposals in memory only.
        Created (with its header) by the first proposal.
    rate_per_hour : int
        Most proposals one client may send in any hour (429 beyond).
    max_pending : int
        Most proposals waiting for a decision; more are refused (429) until some are decided.
    clock : callable, optional
        Returns the current aware time.
    source : ProposalLog, optional
        Where proposals are kept instead of *path* (a storage backend's table).

    Raises
    ------
    InvalidInputError
        A parameter is out of range, or the file cannot be opened for appending.
    StorageUnavailableError
        The database behind *source* cannot be reached.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        rate_per_hour: int = 10,
        max_pending: int = 10_000,
        clock: Clock = utc_now,
        source: ProposalLog | None = None,
    ) -> None:
        for name, value in (("rate_per_hour", rate_per_hour), ("max_pending", max_pending)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(name, f"Expected a whole number >= 1, got {value!r}")
        self.path = path
        self.rate_per_hour = rate_per_hour
        self.max_pending = max_pending
        self.clock = clock
        self._lock = threading.RLock()
        self.source: ProposalLog | None = (
            source if source is not None else (ProposalFile(path) if path is not None else None)
        )
        self._salt = secrets.token_hex(16)
        self._reset()
        if self.source is not None and self.source.changed():  # a new file: made on first use
            with self._lock, self.source.writing() as w:
                self._take(w.read_new())
                self._salt = w.salt

    def _reset(self) -> None:
        self._by_id: dict[str, Proposal] = {}
        self._order: list[str] = []
        self._client_times: dict[str, list[float]] = {}

    def _take(self, new: tuple[bool, list[dict[str, Any]]]) -> None:
        """Index what the log gave (starting over when it says so); unreadable events are
        skipped with a warning."""
        again, rows = new
        if again:
            self._reset()
        for d in rows:
            try:
                self._index(d)
            except (KeyError, TypeError, ValueError) as exc:
                where = self.source.where if self.source is not None else "proposals"
                log.warning("%s: skipping an unreadable event: %s", where, exc)

    def _index(self, d: dict[str, Any]) -> None:
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

    def _refresh(self) -> None:
        """Read what another process wrote (one ``os.stat`` or one small query when
        nothing changed); while the database is unreachable, answer from memory."""
        if self.source is None:
            return
        try:
            if not self.source.changed():
                return
            with self._lock:
                self._take(self.source.read_new())
        except StorageUnavailableError as exc:
            log.warning("%s cannot be read now: %s", self.source.where, exc)

    # -- the API ----------------------------------------------------------------------------
    def client_hash(self, client: str) -> str:
        """The salted SHA-256 under which *client* (an address) is stored."""
        return hashlib.sha256(
            f"{self._salt}\0{client}".encode("utf-8", "surrogateescape")
        ).hexdigest()

    @contextmanager
    def _writing(self) -> Iterator[ProposalWriter | None]:
        """The store's lock (and the log's, with what other processes wrote read), for one
        change."""
        with self._lock:
            if self.source is None:
                yield None
                return
            with self.source.writing() as w:
                self._take(w.read_new())
                self._salt = w.salt
                yield w

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
        with self._lock:  # held until the change is in memory too
            with self._writing() as w:
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
                if w is not None:
                    line = {"event": "proposal", **p.as_dict(include_client=True)}
                    for key in ("status", "decision"):
                        line.pop(key)
                    w.append(line)
            # Taken in once the log's change is durable (committed), under the lock.
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
        with self._lock:  # held until the change is in memory too
            with self._writing() as w:
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
                if w is not None:
                    w.append({"event": "decision", "id": proposal_id, **decision.as_dict()})
            done = replace(cur, decision=decision)
            self._by_id[proposal_id] = done
            return done
