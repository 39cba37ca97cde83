"""When a station was last checked on site, and whether that is too long ago (``stale``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from yizhan.stations.registry import verification_day


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


__all__ = ["is_stale", "verified_at"]
