"""Opening the PostgreSQL backend: every store over one :class:`~yizhan.storage.postgres.Database`."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from yizhan.errors import StorageUnavailableError
from yizhan.settings import Settings
from yizhan.stations.alerts import AlertStore
from yizhan.stations.checkins import CheckinStore
from yizhan.stations.photos import PhotoStore
from yizhan.stations.placements import PlacementStore
from yizhan.stations.proposals import ProposalStore
from yizhan.stations.reports import ReportStore
from yizhan.stations.tokens import TokenStore
from yizhan.stations.visits import VisitCountStore
from yizhan.storage.base import Backend
from yizhan.storage.files import open_salts
from yizhan.storage.migrate import check_schema
from yizhan.storage.pg_records import PgPhotos, PgProposalLog
from yizhan.storage.pg_state import PgEntrySource, PgRateLimits, PgReportLog
from yizhan.storage.pg_stations import PgStationStore
from yizhan.storage.pg_usage import PgCheckinLog, PgSalts, PgVisitLog, PgVisitMonths
from yizhan.storage.postgres import Database

log = logging.getLogger("yizhan")


def open_postgres(settings: Settings, *, pool_size: int = 8) -> Backend:
    """The PostgreSQL backend at ``settings.database_url`` (schema checked, registry loaded
    and validated); :meth:`Backend.start` starts following other processes' changes.

    Raises
    ------
    StorageUnavailableError
        The database cannot be reached.
    InvalidInputError
        The schema is not current (run ``yizhan db upgrade``).
    RegistryInvalidError
        The registry stored in it does not validate.
    """
    url = settings.database_url
    if not url:
        raise StorageUnavailableError("no database URL (YIZHAN_DATABASE_URL) is set")
    db = Database(url, pool_size=pool_size)
    db.open()
    try:
        with db.connection() as conn:
            check_schema(conn)
        # Every replica hashes clients under the same salts: the salt file, else the table.
        salts = open_salts(
            settings, [settings.state_dir] if settings.state_dir else [], source=PgSalts(db)
        )
        placements = PlacementStore(source=PgEntrySource(db, "placements"))
        alerts = AlertStore(source=PgEntrySource(db, "alerts"))
        tokens = TokenStore(
            admin_token=settings.admin_token,
            legacy_admin_tokens=settings.admin_tokens,
            legacy_operator_tokens=settings.operator_tokens,
            source=PgEntrySource(db, "tokens"),
        )
        reports = ReportStore(
            window_days=settings.report_window_days,
            threshold=settings.report_threshold,
            rate_per_hour=settings.report_rate_per_hour,
            rate_per_station_per_day=settings.report_rate_per_station_per_day,
            source=PgReportLog(db),
            salts=salts,
        )
        checkins = CheckinStore(
            None,
            salts=salts,
            timezone=settings.timezone,
            interval_s=settings.checkin_interval_hours * 3600.0,
            rate_per_hour=settings.checkin_rate_per_hour,
            log=PgCheckinLog(db, ZoneInfo(settings.timezone)),
        )
        proposals = ProposalStore(
            rate_per_hour=settings.report_rate_per_hour, source=PgProposalLog(db)
        )
        photos = PhotoStore(
            max_px=settings.photo_max_px, timezone=settings.timezone, source=PgPhotos(db)
        )
        stations = PgStationStore(db, settings, placements, alerts)
        db.on_change("stations", stations.follow)
    except BaseException:
        db.close()
        raise
    if not len(stations.registry) and not stations.registry.buses:
        log.warning("the database %s holds no stations yet: run `yizhan db import`", db.where)

    def close() -> None:
        checkins.close()  # what is queued is written first
        db.close()

    return Backend(
        kind="postgresql",
        where=db.where,
        stations=stations,
        tokens=tokens,
        reports=reports,
        placements=placements,
        alerts=alerts,
        rate_limits=PgRateLimits(db),
        checkins=checkins,
        visit_counts=VisitCountStore(None, log=PgVisitLog(db)),
        visits=PgVisitMonths(db),
        salts=salts,
        proposals=proposals,
        photos=photos,
        _start=db.start,
        _close=close,
    )


__all__ = ["open_postgres"]
