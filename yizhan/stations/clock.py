"""Time helpers shared by the stateful services (tokens, reports, placements, alerts).

The current time comes from a :data:`Clock` (a callable returning an aware datetime) so
that tests can inject one; times are stored as ISO 8601 text with a UTC offset, to the
second; a time window ``[start, until)`` is checked by one rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from yizhan.errors import InvalidInputError

#: Returns the current time, aware.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware (UTC)."""
    return datetime.now(UTC)


def iso(when: datetime) -> str:
    """*when* as ISO 8601 text, to the second, with its UTC offset."""
    return when.isoformat(timespec="seconds")


def parse_iso(value: Any, where: str) -> datetime:
    """Read an ISO 8601 time that has a UTC offset.

    Raises
    ------
    InvalidInputError
        Naming *where*: not a time, or a time without an offset.
    """
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError(where, f"Expected an ISO 8601 time, got {value!r}") from None
    if when.tzinfo is None:
        raise InvalidInputError(where, f"Expected a time with a UTC offset, got {value!r}")
    return when


def check_window(
    start: datetime, until: datetime, now: datetime, maximum: timedelta, what: str = "placement"
) -> None:
    """Check a time window ``[start, until)`` (aware datetimes).

    Raises
    ------
    InvalidInputError
        ``until`` not after ``from``, already over, or longer than *maximum*.
    """
    if until <= start:
        raise InvalidInputError(
            "until", f"Expected a time after from ({iso(start)}), got {iso(until)}"
        )
    if until <= now:
        raise InvalidInputError(
            "until",
            f"the {what} window is in the past: until {iso(until)} is not after now "
            f"({iso(now.astimezone(until.tzinfo))})",
        )
    if until - start > maximum:
        hours = (until - start).total_seconds() / 3600
        raise InvalidInputError(
            "until",
            f"Expected a {what} window of at most {maximum.days} days "
            f"({maximum.total_seconds() / 3600:g} h), got {hours:g} h",
        )


__all__ = ["Clock", "check_window", "iso", "parse_iso", "utc_now"]
