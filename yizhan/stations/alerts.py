"""Heat alerts: an admin declares an alert for districts and a time window.

Features with ``activation: heat_alert`` (for example a cooling centre opened only in a
heat wave) count as open only while an alert covers their district *and* their own
``opening_hours`` say open. Alerts are kept like placements, in
``<registry>.alerts.json`` (atomic writes under a lock shared by every process, expired
entries dropped) or, with PostgreSQL, in a table.

An alert's ``districts`` are names as written in the features' ``district`` property;
``"*"`` covers every district (and features without one).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.stations.clock import Clock, check_window, iso, parse_iso, utc_now
from yizhan.stations.jsonstate import Entries, EntrySource, JsonStateFile, SharedList

#: Longest alert window.
MAX_ALERT = timedelta(days=14)

#: District wildcard: the alert covers the whole registry.
ALL_DISTRICTS = "*"


@dataclass(frozen=True)
class Alert:
    """A heat alert over ``districts`` from ``start`` until ``until`` (aware datetimes)."""

    alert_id: str
    districts: tuple[str, ...]
    start: datetime
    until: datetime
    created_by: str
    created_at: datetime
    note: str | None = None

    def covers(self, district: str | None) -> bool:
        """Whether the alert applies to a feature in *district*."""
        return ALL_DISTRICTS in self.districts or (
            district is not None and district in self.districts
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``alert_id, districts, from, until, note, created_by, created_at``."""
        return {
            "alert_id": self.alert_id,
            "districts": list(self.districts),
            "from": iso(self.start),
            "until": iso(self.until),
            "note": self.note,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "alert") -> Alert:
        """Read the JSON form (raises :class:`InvalidInputError` naming the bad member)."""
        try:
            return cls(
                alert_id=str(d["alert_id"]),
                districts=tuple(str(x) for x in d["districts"]),
                start=parse_iso(d["from"], f"{where}.from"),
                until=parse_iso(d["until"], f"{where}.until"),
                created_by=str(d["created_by"]),
                created_at=parse_iso(d["created_at"], f"{where}.created_at"),
                note=d.get("note"),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(where, f"Expected a stored alert, got {d!r:.120}") from exc


class AlertStore:
    """Every heat alert not yet over, kept in an :class:`EntrySource` shared by every
    process (a JSON file, or a table of the database backend).

    Parameters
    ----------
    path : Path, optional
        JSON file to keep them in; ``None`` keeps them in memory only.
    clock : callable, optional
        Returns the current aware time.
    read_only : bool
        Never write (the CLI reads the server's alerts).
    source : EntrySource, optional
        Where they are kept instead of *path* (a storage backend's table).

    Notes
    -----
    As :class:`~yizhan.stations.placements.PlacementStore`: reads answer from memory after
    one cheap check of the source, changes are made under its lock on the stored entries.
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
            source if source is not None else JsonStateFile(path, "alerts", read_only=read_only)
        )
        self.clock = clock
        where = self.source.where
        self._shared = SharedList(
            self.source, lambda e: _live(_parse(e, where), clock()), noun="alerts"
        )
        if not read_only and len(_parse(self.source.load()[0], where)) != len(
            self._shared.current()
        ):
            self._shared.change(lambda entries: _prune(entries, where, clock()))

    @property
    def version(self) -> int:
        """Changes whenever an alert is added or removed (by any process)."""
        self._shared.current()
        return self._shared.version

    @property
    def _alerts(self) -> list[Alert]:
        return self._shared.current()

    def __bool__(self) -> bool:
        return bool(self._alerts)

    def add(
        self,
        districts: Iterable[str],
        start: datetime,
        until: datetime,
        created_by: str,
        note: str | None = None,
        known_districts: Iterable[str] | None = None,
        maximum: timedelta = MAX_ALERT,
    ) -> Alert:
        """Declare an alert.

        Raises
        ------
        InvalidInputError
            No district, an unknown district (when *known_districts* is given), or a bad
            window (field ``until``).
        """
        names = tuple(dict.fromkeys(str(d).strip() for d in districts if str(d).strip()))
        if not names:
            raise InvalidInputError(
                "districts", f"Expected at least one district name or {ALL_DISTRICTS!r}, got none"
            )
        if known_districts is not None:
            known = set(known_districts)
            unknown = [d for d in names if d != ALL_DISTRICTS and d not in known]
            if unknown:
                listed = ", ".join(sorted(known)[:30]) or "none"
                raise InvalidInputError(
                    "districts",
                    f"Expected districts named in the registry ({listed}) or "
                    f"{ALL_DISTRICTS!r}, got {unknown[0]!r}",
                )
        now = self.clock()
        check_window(start, until, now, maximum, what="alert")
        alert = Alert(
            alert_id="al-" + secrets.token_hex(5),
            districts=names,
            start=start,
            until=until,
            created_by=created_by,
            created_at=now.replace(microsecond=0),
            note=note,
        )
        where = self.source.where

        def edit(entries: Entries) -> Alert:
            live = _prune(entries, where, now)
            entries[:] = [a.as_dict() for a in _live([*live, alert], now)]
            return alert

        return self._shared.change(edit)

    def remove(self, alert_id: str) -> Alert:
        """End an alert now by deleting it (``NotFoundError`` if there is none)."""
        where = self.source.where
        now = self.clock()

        def edit(entries: Entries) -> Alert:
            live = _prune(entries, where, now)
            for a in live:
                if a.alert_id == alert_id:
                    entries[:] = [b.as_dict() for b in live if b is not a]
                    return a
            raise NotFoundError(f"no alert {alert_id!r}")

        return self._shared.change(edit)

    def all(self, now: datetime | None = None) -> list[Alert]:
        """Alerts that have not ended (active and upcoming), by start."""
        t = now or self.clock()
        return [a for a in self._alerts if a.until > t]

    def cover_until(self, district: str | None, ts: float) -> float | None:
        """End of the alert cover of *district* at POSIX time *ts* (``None``: not covered).

        Overlapping or back-to-back alerts are merged into one cover.
        """
        windows = sorted(
            (a.start.timestamp(), a.until.timestamp()) for a in self._alerts if a.covers(district)
        )
        end: float | None = None
        for s, u in windows:
            if end is None:
                if s <= ts < u:
                    end = u
            elif s <= end:
                end = max(end, u)
        return end

    def next_cover(self, district: str | None, ts: float) -> tuple[float, float] | None:
        """The next alert cover of *district* starting after *ts*: ``(start, end)`` POSIX times."""
        start = math.inf
        for a in self._alerts:
            s = a.start.timestamp()
            if a.covers(district) and ts < s < start:
                start = s
        if math.isinf(start):
            return None
        end = self.cover_until(district, start)
        return start, end if end is not None else start


def _parse(entries: Entries, where: str) -> list[Alert]:
    return [Alert.from_dict(d, f"{where}: alerts[{i}]") for i, d in enumerate(entries)]


def _live(alerts: list[Alert], now: datetime) -> list[Alert]:
    """The alerts not yet over, by start."""
    return sorted((a for a in alerts if a.until > now), key=lambda a: a.start)


def _prune(entries: Entries, where: str, now: datetime) -> list[Alert]:
    """Drop the alerts that are over from *entries* (in place); the others, parsed."""
    live = _live(_parse(entries, where), now)
    entries[:] = [a.as_dict() for a in live]
    return live
