"""What every storage backend provides: one interface per kind of state, and the backend.

Each kind of state Yizhan keeps has one :class:`~typing.Protocol` here; both backends
(:mod:`yizhan.storage.files`, :mod:`yizhan.storage.postgres`) implement all of them, and
``tests/test_storage_contract.py`` runs one suite against both.

======================  ==================================  ===================================
kind                    files (the embedded default)        PostgreSQL + PostGIS
======================  ==================================  ===================================
stations, versions,     the GeoJSON registry (rewritten     rows: geography point, the feature,
audit history           per change) + ``.audit.jsonl``      a version; ``audit`` rows, indexed
tokens                  ``.tokens.json`` (hashed)           ``tokens`` table
problem reports         ``.reports.jsonl``                  ``reports`` table
bus placements          ``.placements.json``                ``placements`` table
heat alerts             ``.alerts.json``                    ``alerts`` table
rate-limit counters     ``.ratelimits.json``                ``rate_hits`` table
check-ins               ``.usage/checkins-DAY.jsonl``       ``checkins`` table (raw, 2 days)
visit rows (aggregates  ``.usage/visits-MONTH.npz``         ``visit_rows``, ``visit_days``
of finished days)
visit counts            ``.visits.jsonl`` (audit format)    ``visit_counts`` table
daily salts             memory, or ``YIZHAN_SALT_FILE``     ``salts`` table (or the salt file)
                        (never beside the data)
station proposals       ``.proposals.jsonl`` (events)       ``proposals`` table (decided once)
station photos          ``.photos/`` (images, thumbnails,   ``photos`` table (the images as
                        ``index.jsonl``)                    ``bytea``)
======================  ==================================  ===================================

Tokens, reports, placements, alerts, check-ins, visit counts, proposals and photos are the
services of ``stations/`` (:class:`~yizhan.stations.tokens.TokenStore` …) over a source the
backend gives them (:class:`~yizhan.stations.jsonstate.EntrySource`,
:class:`~yizhan.stations.reports.ReportLog`, :class:`CheckinLog`, :class:`VisitLog`,
:class:`SaltSource`, :class:`~yizhan.stations.proposals.ProposalLog`,
:class:`~yizhan.stations.photos.PhotoShelf`; :class:`VisitMonths` is read by the usage
answers directly):
the rules live once, in ``stations/``, and only where the entries are kept differs.
Every process keeps an in-memory read model of the stations (KD-trees, hours, flags) and
follows the changes other processes make (:meth:`Stations.catch_up`, called by the
backend's follower: the file watcher, or PostgreSQL's LISTEN/NOTIFY).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from yizhan.settings import Settings
from yizhan.stations.alerts import AlertStore
from yizhan.stations.audit import HistoryPage
from yizhan.stations.checkin_log import CheckinLog
from yizhan.stations.checkins import CheckinStore
from yizhan.stations.editing import Found
from yizhan.stations.photos import PhotoStore
from yizhan.stations.placements import PlacementStore
from yizhan.stations.proposals import ProposalStore
from yizhan.stations.registry import Registry
from yizhan.stations.reports import ReportStore
from yizhan.stations.salts import DailySalts, SaltSource
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import Principal, TokenRecord, TokenStore
from yizhan.stations.usage_files import VisitMonths
from yizhan.stations.visits import VisitCountStore, VisitLog

log = logging.getLogger("yizhan")


class Stations(Protocol):
    """The registry: stations and cooling buses, their versions (ETags) and audit history.

    Reads (:attr:`search`, :meth:`find`, :meth:`etag`) answer from the in-memory snapshot
    and never wait for storage; writes check ``If-Match`` against the stored version and
    are durable (with their one audit entry) before they return.
    """

    @property
    def search(self) -> StationSearch:
        """The current snapshot: registry, KD-trees, hours, buses (replaced as a whole)."""
        ...

    @property
    def registry(self) -> Registry:
        """The registry of the current snapshot."""
        ...

    @property
    def version(self) -> int:
        """Bumped after every new snapshot is published (caches key on it)."""
        ...

    def etag(self, feature: dict[str, Any]) -> str:
        """The version (a strong ETag) of a feature of the current snapshot."""
        ...

    def find(self, feature_id: str) -> Found:
        """The feature (station or bus) with this id and its version (``NotFoundError``)."""
        ...

    def create(self, feature: dict[str, Any], who: Principal) -> Found:
        """Add a station or bus (422, 403, 409; 503 when storage is unavailable)."""
        ...

    def update(self, feature_id: str, patch: Any, if_match: str | None, who: Principal) -> Found:
        """Apply a JSON merge patch (404, 428, 412, 403, 422; 503)."""
        ...

    def remove(self, feature_id: str, reason: str, if_match: str | None, who: Principal) -> Found:
        """Mark a feature ``status: removed`` (404, 428, 412, 403, 409, 422; 503)."""
        ...

    def verify(
        self, feature_id: str, who: Principal, if_match: str | None = None, note: str | None = None
    ) -> Found:
        """Record an on-site check (404, 412, 403, 422; 503)."""
        ...

    def history(
        self,
        feature_id: str,
        limit: int | None = None,
        cursor: int = 0,
        newest_first: bool = False,
    ) -> HistoryPage:
        """One page of a feature's audit entries (only its own are read)."""
        ...

    def catch_up(self) -> bool:
        """Apply the changes other processes made since the last look; ``True`` if a new
        snapshot is served."""
        ...


class Tokens(Protocol):
    """Bearer tokens (stored hashed) and the principals they authenticate."""

    def authenticate(self, token: str) -> Principal | None: ...

    def create(
        self, role: str, *, name: str, stations: Any = (), operator: str | None = None
    ) -> tuple[str, TokenRecord]: ...

    def revoke(self, token_id: str) -> TokenRecord: ...

    def records(self) -> list[TokenRecord]: ...


class RateLimits(Protocol):
    """Sliding-window counters shared by every process (per client key)."""

    def hit(self, key: str, limit: int, window_s: float, what: str = "requests") -> None:
        """Count one event of *key*; raise :class:`~yizhan.errors.RateLimitedError` (with
        the seconds until the next is allowed) when *limit* events happened in the last
        *window_s* seconds already (a refused event is not counted)."""
        ...

    def wait_s(self, key: str, limit: int, window_s: float) -> float:
        """Seconds until *key* may have another event under this limit (0: now), without
        counting one."""
        ...


#: The other kinds are the ``stations/`` services themselves, whatever keeps their entries.
Reports = ReportStore
Placements = PlacementStore
Alerts = AlertStore
Checkins = CheckinStore
VisitCounts = VisitCountStore
Proposals = ProposalStore
Photos = PhotoStore


@dataclass
class Backend:
    """Every kind of state, opened once (:func:`yizhan.storage.open_backend`).

    Attributes
    ----------
    kind : {"files", "postgresql"}
    where : str
        What it is opened on (a registry file, a database), for messages.
    checkins, visit_counts, visits, salts
        Usage: check-ins (with their rules), managers' visit counts, the visit rows of
        finished days (``None``: a registry in memory keeps none), the daily salts.
    start, close : callable
        Start following other processes' changes (a thread); stop it and release
        connections.
    """

    kind: Literal["files", "postgresql"]
    where: str
    stations: Stations
    tokens: TokenStore
    reports: ReportStore
    placements: PlacementStore
    alerts: AlertStore
    rate_limits: RateLimits
    checkins: CheckinStore
    visit_counts: VisitCountStore
    visits: VisitMonths | None
    salts: DailySalts
    proposals: ProposalStore
    photos: PhotoStore
    _start: Callable[[], None] = field(default=lambda: None, repr=False)
    _close: Callable[[], None] = field(default=lambda: None, repr=False)

    def start(self) -> None:
        """Follow the changes other processes make (the file watcher, or LISTEN/NOTIFY)."""
        self._start()

    def close(self) -> None:
        """Stop following and release files and connections."""
        self._close()


def new_search(
    settings: Settings,
    registry: Registry,
    placements: PlacementStore | None,
    alerts: AlertStore | None,
) -> StationSearch:
    """The search (in-memory read model) over *registry* with these placements and alerts,
    built now (hours and buses too, not on the first request)."""
    search = StationSearch(
        registry,
        timezone=settings.timezone,
        holiday_country=settings.holiday_country,
        placements=placements,
        alerts=alerts,
    )
    _ = search.fleet
    return search


def patch_search(
    search: StationSearch, before: dict[str, Any] | None, after: dict[str, Any]
) -> StationSearch:
    """The search with one feature changed, patched in place of a rebuild."""
    return search.with_change(before, after)


__all__ = [
    "Alerts",
    "Backend",
    "CheckinLog",
    "Checkins",
    "Photos",
    "Placements",
    "Proposals",
    "RateLimits",
    "Reports",
    "SaltSource",
    "Stations",
    "Tokens",
    "VisitCounts",
    "VisitLog",
    "VisitMonths",
    "new_search",
    "patch_search",
]
