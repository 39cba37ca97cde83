"""A check-in, and where check-ins are kept: the :class:`CheckinLog` seam.

:class:`~yizhan.stations.checkins.CheckinStore` holds the rules (one check-in per client and
station in 4 hours, at most N per client an hour) and the group commit; a log keeps the
check-ins: the day files (:class:`~yizhan.stations.checkin_files.CheckinFiles`) or the
``checkins`` table (:class:`~yizhan.storage.pg_usage.PgCheckinLog`). Every log gives the
store what other processes appended before each batch is checked, under a lock shared by
every process, so the rules are written once and hold across processes on either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from yizhan.stations.clock import iso
from yizhan.stations.usage_files import SOURCE_CHECKINS, TRADES, VisitRows, check_trade, unit_key

#: A trade's index in :data:`~yizhan.stations.usage_files.TRADES`.
TRADE_INDEX = {t: i for i, t in enumerate(TRADES)}


@dataclass(frozen=True)
class Checkin:
    """One accepted check-in.

    Attributes
    ----------
    id : str
        ``chk_`` + 16 hex digits.
    station_id : str
    stop_id : str or None
        The bus stop where the bus stood (buses only).
    trade : str or None
    at : datetime
        Aware, UTC, whole seconds.
    client : str
        The client's hash under the day's salt.
    located : bool
        Whether the worker's position was given (and found close enough).
    """

    id: str
    station_id: str
    stop_id: str | None
    trade: str | None
    at: datetime
    client: str
    located: bool

    def as_dict(self) -> dict[str, Any]:
        """What the API answers (without the client hash)."""
        return {
            "id": self.id,
            "station_id": self.station_id,
            "stop_id": self.stop_id,
            "trade": self.trade,
            "at": iso(self.at),
            "located": self.located,
        }

    @property
    def trade_index(self) -> int:
        """The trade's index in ``TRADES`` (``-1``: not given)."""
        return TRADE_INDEX.get(self.trade, -1) if self.trade else -1

    def line(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "s": self.station_id,
                "p": self.stop_id,
                "t": self.trade,
                "at": int(self.at.timestamp()),
                "c": self.client,
                "l": self.located,
            }
        )

    @classmethod
    def from_line(cls, d: Any) -> Checkin:
        if not isinstance(d, dict):
            raise TypeError(f"Expected an object, got {d!r:.80}")
        for key in ("id", "s", "c"):
            if not isinstance(d.get(key), str):
                raise TypeError(f"{key}: Expected a string, got {d.get(key)!r}")
        stop = d.get("p")
        return cls(
            id=d["id"],
            station_id=d["s"],
            stop_id=stop if isinstance(stop, str) else None,
            trade=check_trade(d.get("t")),
            at=datetime.fromtimestamp(int(d["at"]), UTC),
            client=d["c"],
            located=bool(d.get("l")),
        )


#: Called by a log under its lock with the check-ins other processes appended since the
#: last read; returns the check-ins to store (the rules decide).
Decide = Callable[[list[Checkin]], list[Checkin]]


class CheckinLog(Protocol):
    """Where check-ins are kept (see the module docstring)."""

    @property
    def where(self) -> str:
        """What they are kept in, for messages."""
        ...

    def read_new(self, days: Sequence[date]) -> list[Checkin]:
        """The check-ins of these local days appended (by any process) since the last read."""
        ...

    def append(self, day: date, decide: Decide) -> None:
        """Under a lock shared by every process: read the check-ins of *day* appended since
        the last read, pass them to *decide* and store what it returns durably (all or
        none) before returning.

        Raises
        ------
        StorageUnavailableError
            Nothing was stored.
        """
        ...

    def day_rows(self, day: date, stations: Collection[str] | None = None) -> VisitRows:
        """The check-ins of one local day, aggregated (counts per unit, hour and trade);
        of these stations (and buses) only, if given (a log may return more)."""
        ...

    def open_days(self) -> list[date]:
        """Days whose check-ins are kept one by one (not yet aggregated)."""
        ...

    def compact(self, before: date) -> list[date]:
        """Aggregate the check-ins of every day before *before* into the visit rows and
        delete them; safe in several processes at once (a day is never added twice)."""
        ...


def aggregate(checkins: Iterable[Checkin], zone: ZoneInfo) -> VisitRows:
    """Check-ins as visit rows: counts per local day, unit, local hour and trade."""
    counts: dict[tuple[int, str, int, int], int] = {}
    for c in checkins:
        local = c.at.astimezone(zone)
        key = (
            local.date().toordinal(),
            unit_key(c.station_id, c.stop_id),
            local.hour,
            c.trade_index,
        )
        counts[key] = counts.get(key, 0) + 1
    return VisitRows.from_records(
        (d, u, h, t, SOURCE_CHECKINS, n) for (d, u, h, t), n in sorted(counts.items())
    )


__all__ = ["TRADE_INDEX", "Checkin", "CheckinLog", "Decide", "aggregate"]
