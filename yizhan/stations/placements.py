"""Placements: an operator puts a cooling bus at a place for a time window.

A placement overrides the bus's schedule for its window and expires by itself. Placements
are kept in a small JSON file next to the registry (``<registry>.placements.json``,
:class:`~yizhan.stations.jsonstate.JsonStateFile`: written atomically under a lock shared by
every process, read again when another process changed it) or, with PostgreSQL, in a table;
expired entries are dropped at start and on every write, and ignored by every read.

This module is plain Python (no web framework): the HTTP routes and the CLI call it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from yizhan.errors import ConflictError, InvalidInputError, NotFoundError
from yizhan.stations.clock import Clock, check_window, iso, parse_iso, utc_now
from yizhan.stations.jsonstate import Entries, EntrySource, JsonStateFile, SharedList

#: Longest placement window.
MAX_PLACEMENT = timedelta(days=7)


@dataclass(frozen=True)
class Placement:
    """A bus at ``[lon, lat]`` from ``start`` until ``until`` (aware datetimes)."""

    placement_id: str
    bus_id: str
    lon: float
    lat: float
    start: datetime
    until: datetime
    operator: str
    created_at: datetime
    note: str | None = None

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def until_ts(self) -> float:
        return self.until.timestamp()

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``placement_id, bus_id, location, from, until, note, operator, created_at``."""
        return {
            "placement_id": self.placement_id,
            "bus_id": self.bus_id,
            "location": [self.lon, self.lat],
            "from": iso(self.start),
            "until": iso(self.until),
            "note": self.note,
            "operator": self.operator,
            "created_at": iso(self.created_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "placement") -> Placement:
        """Read the JSON form (raises :class:`InvalidInputError` naming the bad member)."""
        try:
            lon, lat = (float(v) for v in d["location"][:2])
            return cls(
                placement_id=str(d["placement_id"]),
                bus_id=str(d["bus_id"]),
                lon=lon,
                lat=lat,
                start=parse_iso(d["from"], f"{where}.from"),
                until=parse_iso(d["until"], f"{where}.until"),
                operator=str(d["operator"]),
                created_at=parse_iso(d["created_at"], f"{where}.created_at"),
                note=d.get("note"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(where, f"Expected a stored placement, got {d!r:.120}") from exc


class PlacementStore:
    """Every placement not yet expired, by bus, kept in an :class:`EntrySource` shared by
    every process (a JSON file, or a table of the database backend).

    Parameters
    ----------
    path : Path, optional
        JSON file to keep them in; ``None`` keeps them in memory only.
    clock : callable, optional
        Returns the current aware time (tests pass a fixed clock).
    read_only : bool
        Never write (the CLI reads the server's placements).
    source : EntrySource, optional
        Where they are kept instead of *path* (a storage backend's table).

    Notes
    -----
    Reads answer from memory after one cheap check of the source (one ``os.stat`` of the
    file), reading it again when another process changed it; a change (add, remove) is
    checked against the entries as stored at that moment, under the source's lock, so
    that two processes never place one bus twice at once nor lose each other's changes.
    """

    def __init__(
        self,
        path: Path | None = None,
        clock: Clock = utc_now,
        read_only: bool = False,
        *,
        source: EntrySource | None = None,
    ) -> None:
        self.source: EntrySource = (
            source if source is not None else JsonStateFile(path, "placements", read_only=read_only)
        )
        self.clock = clock
        where = self.source.where
        self._shared = SharedList(
            self.source, lambda e: _by_bus(_parse(e, where), clock()), noun="placements"
        )
        if not read_only and len(_parse(self.source.load()[0], where)) != sum(
            len(v) for v in self._shared.current().values()
        ):
            self._shared.change(lambda entries: _prune(entries, where, clock()))

    @property
    def version(self) -> int:
        """Changes whenever a placement is added or removed (by any process)."""
        self._shared.current()
        return self._shared.version

    @property
    def _by_bus(self) -> dict[str, list[Placement]]:
        return self._shared.current()

    def add(
        self,
        bus_id: str,
        lon: float,
        lat: float,
        start: datetime,
        until: datetime,
        operator: str,
        note: str | None = None,
        maximum: timedelta = MAX_PLACEMENT,
    ) -> Placement:
        """Place bus *bus_id* at ``(lon, lat)`` for ``[start, until)``.

        Raises
        ------
        InvalidInputError
            The window is empty, over, or longer than *maximum* (field ``until``).
        ConflictError
            Another placement of this bus overlaps the window.
        """
        now = self.clock()
        check_window(start, until, now, maximum)
        where = self.source.where
        placement = Placement(
            placement_id="pl-" + secrets.token_hex(5),
            bus_id=bus_id,
            lon=lon,
            lat=lat,
            start=start,
            until=until,
            operator=operator,
            created_at=now.replace(microsecond=0),
            note=note,
        )

        def edit(entries: Entries) -> Placement:
            live = _prune(entries, where, now)
            for p in live:
                if p.bus_id == bus_id and p.start < until and start < p.until:
                    raise ConflictError(
                        f"bus {bus_id!r} is already placed at {[p.lon, p.lat]} from "
                        f"{iso(p.start)} until {iso(p.until)} (placement {p.placement_id!r}); "
                        "delete it first or choose a window that does not overlap"
                    )
            entries[:] = _canonical([*live, placement])
            return placement

        return self._shared.change(edit)

    def remove(self, bus_id: str, placement_id: str) -> Placement:
        """Delete one placement of bus *bus_id* (``NotFoundError`` if there is none)."""
        where = self.source.where
        now = self.clock()

        def edit(entries: Entries) -> Placement:
            live = _prune(entries, where, now)
            for p in live:
                if p.bus_id == bus_id and p.placement_id == placement_id:
                    entries[:] = _canonical([q for q in live if q is not p])
                    return p
            raise NotFoundError(f"bus {bus_id!r} has no placement {placement_id!r}")

        return self._shared.change(edit)

    def for_bus(self, bus_id: str, now: datetime | None = None) -> list[Placement]:
        """Placements of *bus_id* that have not ended, by start time."""
        t = now or self.clock()
        return [p for p in self._by_bus.get(bus_id, []) if p.until > t]

    def all(self, now: datetime | None = None) -> list[Placement]:
        """Every placement that has not ended."""
        t = now or self.clock()
        return [p for lst in self._by_bus.values() for p in lst if p.until > t]

    def active(self, bus_id: str, ts: float) -> Placement | None:
        """The placement of *bus_id* in force at POSIX time *ts*, if any."""
        for p in self._by_bus.get(bus_id, ()):
            if p.start_ts <= ts < p.until_ts:
                return p
        return None

    def next_start(self, bus_id: str, ts: float) -> float | None:
        """When the next placement of *bus_id* after *ts* starts (POSIX time), if any."""
        for p in self._by_bus.get(bus_id, ()):
            if p.start_ts > ts:
                return p.start_ts
        return None

    def overlapping(self, bus_id: str, start_ts: float, end_ts: float) -> list[Placement]:
        """Placements of *bus_id* that overlap ``[start_ts, end_ts)``."""
        return [
            p for p in self._by_bus.get(bus_id, ()) if p.start_ts < end_ts and start_ts < p.until_ts
        ]


def _parse(entries: Entries, where: str) -> list[Placement]:
    return [Placement.from_dict(d, f"{where}: placements[{i}]") for i, d in enumerate(entries)]


def _by_bus(placements: list[Placement], now: datetime) -> dict[str, list[Placement]]:
    """The placements not yet ended, by bus, each bus's by start time."""
    out: dict[str, list[Placement]] = {}
    for p in placements:
        if p.until > now:
            out.setdefault(p.bus_id, []).append(p)
    for lst in out.values():
        lst.sort(key=lambda p: p.start)
    return out


def _canonical(placements: list[Placement]) -> Entries:
    """Stored order: by bus (first seen), each bus's by start time."""
    return [
        p.as_dict()
        for lst in _by_bus(placements, datetime.min.replace(tzinfo=UTC)).values()
        for p in lst
    ]


def _prune(entries: Entries, where: str, now: datetime) -> list[Placement]:
    """Drop the placements that have ended from *entries* (in place); the others, parsed."""
    live = [p for p in _parse(entries, where) if p.until > now]
    entries[:] = _canonical(live)
    return live
