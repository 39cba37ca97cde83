"""The embedded default backend: every kind of state in files beside the registry.

The GeoJSON registry stays the source of truth (``make serve``), with its audit log
(:class:`~yizhan.stations.filestore.RegistryStore`: one audit line per change, across
processes and crashes). The other kinds are files named after the registry
(:meth:`Settings.state_file <yizhan.settings.Settings.state_file>`), each correct for
several processes on one machine:

- tokens, placements, alerts and rate-limit counters: small JSON files
  (:class:`~yizhan.stations.jsonstate.JsonStateFile`) changed under ``flock`` on the
  entries as stored at that moment and read again by every process when they change
  (one ``os.stat`` per use);
- reports: an append-only JSON-lines file (:class:`~yizhan.stations.reports.ReportFile`);
- usage (:func:`open_usage_files`): check-ins in day files and the visit rows of finished
  days in month files (``<registry>.usage/``), visit counts in ``.visits.jsonl``; the daily
  salts in memory or in ``YIZHAN_SALT_FILE`` (never beside the data);
- proposals: an append-only JSON-lines file of proposals and decisions
  (:class:`~yizhan.stations.proposalfile.ProposalFile`, appended under ``flock``);
- photos: a directory of images with an append-only index
  (:class:`~yizhan.stations.photofiles.PhotoDir`);
- the registry: every process follows the others' changes from the audit log (one station
  patched in place per line), checking the file and the log every
  :data:`FOLLOW_INTERVAL_S` (or ``YIZHAN_RELOAD_INTERVAL_S`` if shorter; 0: never).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yizhan.errors import RateLimitedError
from yizhan.settings import Settings
from yizhan.stations.alerts import AlertStore
from yizhan.stations.checkins import CheckinStore
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.jsonstate import Entries, EntrySource, JsonStateFile
from yizhan.stations.photos import PhotoStore
from yizhan.stations.placements import PlacementStore
from yizhan.stations.proposals import ProposalStore
from yizhan.stations.registry import Registry, load_registry
from yizhan.stations.reports import ReportStore
from yizhan.stations.salts import DailySalts, SaltSource, check_salt_file
from yizhan.stations.tokens import TokenStore
from yizhan.stations.usage_files import MonthFiles, VisitMonths
from yizhan.stations.visits import VisitCountStore
from yizhan.storage.base import Backend, new_search, patch_search

log = logging.getLogger("yizhan")

#: Longest pause between two looks at the registry file and its audit log: a change made
#: by another process is served here within about this long.
FOLLOW_INTERVAL_S = 0.5
#: Most client keys a rate-limit file keeps (the least recently seen are forgotten).
MAX_RATE_KEYS = 10_000


class SharedRateLimits:
    """:class:`~yizhan.storage.base.RateLimits` over an :class:`EntrySource` (a JSON file,
    or memory): each counter keeps the times of its events within its window.

    Parameters
    ----------
    source : EntrySource
        ``[{"key", "window_s", "times": [POSIX seconds …]}]``.
    clock : callable
        POSIX time now.
    """

    def __init__(self, source: EntrySource, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock
        self._lock = threading.Lock()
        #: The counters as last read, and the source's stamp then (wait_s reads again
        #: only when another process or a hit changed them).
        self._read: tuple[Any, dict[tuple[str, float], dict[str, Any]]] | None = None

    def hit(self, key: str, limit: int, window_s: float, what: str = "requests") -> None:
        now = self.clock()

        def edit(entries: Entries) -> None:
            kept: list[dict[str, Any]] = []
            mine: dict[str, Any] | None = None
            for e in entries:
                times = [t for t in e.get("times", ()) if t > now - float(e.get("window_s", 0))]
                if not times and e.get("key") != key:
                    continue
                e = {**e, "times": times}
                if e.get("key") == key and float(e.get("window_s", 0)) == window_s:
                    mine = e
                kept.append(e)
            if mine is None:
                mine = {"key": key, "window_s": window_s, "times": []}
                kept.append(mine)
            times = mine["times"]
            if len(times) >= limit:
                retry = times[len(times) - limit] + window_s - now
                raise RateLimitedError(
                    f"Too many {what}: at most {limit} in {window_s:g} s from one client; "
                    f"try again in {max(1, round(retry))} s",
                    max(1, round(retry + 0.5)),
                )
            times.append(now)
            kept = [e for e in kept if e is not mine] + [mine]  # most recently seen last
            entries[:] = kept[-MAX_RATE_KEYS:]

        with self._lock, self.source.exclusive() as held:
            edit(held.entries)

    def wait_s(self, key: str, limit: int, window_s: float) -> float:
        now = self.clock()
        stamp = self.source.stamp()
        with self._lock:
            if self._read is None or self._read[0] != stamp or stamp is None:
                entries, stamp = self.source.load()
                table = {(str(e.get("key")), float(e.get("window_s", 0))): e for e in entries}
                self._read = (stamp, table)
            entry = self._read[1].get((key, float(window_s)))
        if entry is None:
            return 0.0
        times = [t for t in entry.get("times", ()) if t > now - window_s]
        if len(times) < limit:
            return 0.0
        return max(0.0, float(times[len(times) - limit]) + window_s - now)


class Follower:
    """A daemon thread calling *step* every *interval_s* seconds until stopped; a failing
    step is logged and tried again at the next tick."""

    def __init__(self, name: str, step: Callable[[], Any], interval_s: float) -> None:
        self.step = step
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:  # keep following: one bad look must not stop the next
                log.exception("%s: following the changes failed", self._thread.name)


#: The salts kept in this process's memory, by (keep_days, timezone): every backend of one
#: process without a salt file hashes a client alike (as one process's stores always did).
_MEMORY_SALTS: dict[tuple[int, str], DailySalts] = {}
_MEMORY_LOCK = threading.Lock()


@dataclass
class UsageState:
    """The usage kinds of one backend (see :class:`~yizhan.storage.base.Backend`)."""

    salts: DailySalts
    checkins: CheckinStore
    visit_counts: VisitCountStore
    visits: VisitMonths | None


def open_salts(
    settings: Settings,
    data_dirs: list[Path],
    *,
    source: SaltSource | None = None,
    clock: Clock = utc_now,
    keep_days: int | None = None,
) -> DailySalts:
    """The daily salts: ``YIZHAN_SALT_FILE`` (refused in one of *data_dirs*), else *source*
    (the database's), else this process's memory (shared by its backends unless *clock* is
    given); kept a day longer than the report window.

    Raises
    ------
    InvalidInputError
        Naming ``salt_file``.
    """
    if settings.salt_file is not None:
        check_salt_file(settings.salt_file, data_dirs)
    keep = keep_days or max(settings.report_window_days + 1, 2)
    if settings.salt_file is None and source is None and clock is utc_now:
        with _MEMORY_LOCK:
            key = (keep, settings.timezone)
            if key not in _MEMORY_SALTS:
                _MEMORY_SALTS[key] = DailySalts(keep_days=keep, timezone=settings.timezone)
            return _MEMORY_SALTS[key]
    return DailySalts(
        settings.salt_file,
        keep_days=keep,
        timezone=settings.timezone,
        clock=clock,
        source=source if settings.salt_file is None else None,
    )


def open_usage_files(
    settings: Settings,
    registry_path: Path | None,
    *,
    clock: Clock = utc_now,
    keep_days: int | None = None,
) -> UsageState:
    """Check-ins, visit rows and counts in the files beside *registry_path* (memory when it
    is ``None``), and the daily salts.

    Raises
    ------
    InvalidInputError
        ``salt_file`` in the data directory.
    """
    dirs = [d for d in (settings.state_dir, registry_path and registry_path.parent) if d]
    salts = open_salts(settings, dirs, clock=clock, keep_days=keep_days)
    directory = settings.state_file(registry_path, "usage", "")
    return UsageState(
        salts=salts,
        checkins=CheckinStore(
            directory,
            salts=salts,
            timezone=settings.timezone,
            interval_s=settings.checkin_interval_hours * 3600.0,
            rate_per_hour=settings.checkin_rate_per_hour,
            clock=clock,
        ),
        visit_counts=VisitCountStore(
            settings.state_file(registry_path, "visits", ".jsonl"), clock=clock
        ),
        visits=MonthFiles(directory) if directory is not None else None,
    )


def open_files(
    settings: Settings, registry: Registry | None = None, *, read_only: bool = False
) -> Backend:
    """The files backend over *registry* (default: ``settings.registry``, loaded and
    validated), its state in the files :meth:`Settings.state_file` names.

    Raises
    ------
    InvalidInputError, RegistryInvalidError
        The registry (or a state file) cannot be read or is invalid.
    """
    reg = (
        registry
        if registry is not None
        else load_registry(
            settings.registry, timezone=settings.timezone, holiday_country=settings.holiday_country
        )
    )
    path = reg.path
    usage = open_usage_files(settings, path)
    placements = PlacementStore(settings.state_file(path, "placements"), read_only=read_only)
    alerts = AlertStore(settings.state_file(path, "alerts"), read_only=read_only)
    stations = RegistryStore(
        reg,
        lambda r: new_search(settings, r, placements, alerts),
        patch=patch_search,
        timezone=settings.timezone,
        holiday_country=settings.holiday_country,
        audit_path=settings.state_file(path, "audit", ".jsonl"),
    )
    tokens = TokenStore(
        settings.state_file(path, "tokens"),
        admin_token=settings.admin_token,
        legacy_admin_tokens=settings.admin_tokens,
        legacy_operator_tokens=settings.operator_tokens,
    )
    reports = ReportStore(
        settings.state_file(path, "reports", ".jsonl"),
        window_days=settings.report_window_days,
        threshold=settings.report_threshold,
        rate_per_hour=settings.report_rate_per_hour,
        rate_per_station_per_day=settings.report_rate_per_station_per_day,
        salts=usage.salts,
    )
    rate_limits = SharedRateLimits(
        JsonStateFile(settings.state_file(path, "ratelimits"), "ratelimits", mode=0o600)
    )
    proposals = ProposalStore(
        settings.state_file(path, "proposals", ".jsonl"),
        rate_per_hour=settings.report_rate_per_hour,
    )
    photos = PhotoStore(
        settings.state_file(path, "photos", ""),
        max_px=settings.photo_max_px,
        timezone=settings.timezone,
    )
    follower: Follower | None = None
    if path is not None and settings.reload_interval_s > 0:
        follower = Follower(
            "yizhan-file-follower",
            stations.catch_up,
            min(settings.reload_interval_s, FOLLOW_INTERVAL_S),
        )

    def start() -> None:
        if follower is not None:
            follower.start()

    def close() -> None:
        if follower is not None:
            follower.stop()
        usage.checkins.close()

    return Backend(
        kind="files",
        where=str(path) if path is not None else "memory",
        stations=stations,
        tokens=tokens,
        reports=reports,
        placements=placements,
        alerts=alerts,
        rate_limits=rate_limits,
        checkins=usage.checkins,
        visit_counts=usage.visit_counts,
        visits=usage.visits,
        salts=usage.salts,
        proposals=proposals,
        photos=photos,
        _start=start,
        _close=close,
    )


__all__ = [
    "FOLLOW_INTERVAL_S",
    "Follower",
    "SharedRateLimits",
    "UsageState",
    "open_files",
    "open_salts",
    "open_usage_files",
]
