"""Domain exceptions. The API maps each to an HTTP status in one table (``api.py``);
the CLI prints their message and exits non-zero."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Problem(Protocol):
    """One problem of a validation report (``yizhan.stations.validate.Problem``)."""

    def format(self) -> str: ...


class Report(Protocol):
    """What :class:`RegistryInvalidError` needs of a validation report
    (``yizhan.stations.validate.ValidationReport``); a protocol keeps this module a leaf."""

    @property
    def errors(self) -> Sequence[Problem]: ...

    @property
    def warnings(self) -> Sequence[Problem]: ...

    def summary(self) -> str: ...


class YizhanError(Exception):
    """Base of every error Yizhan raises on purpose."""


class InvalidInputError(YizhanError, ValueError):
    """A parameter or input value is not acceptable; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFoundError(YizhanError, KeyError):
    """A station, bus or other resource does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class RegistryInvalidError(YizhanError):
    """A registry failed validation; ``report`` holds every problem found."""

    def __init__(self, report: Report, source: str = "registry") -> None:
        self.report = report
        lines = [p.format() for p in report.errors]
        super().__init__(f"{source} is invalid ({len(lines)} errors):\n" + "\n".join(lines))


class AuthenticationError(YizhanError):
    """No valid credentials were given."""


class PermissionDeniedError(YizhanError):
    """Credentials are valid but do not allow this action."""


class ConflictError(YizhanError):
    """The request conflicts with the current state."""


class PreconditionRequiredError(YizhanError):
    """A write was sent without ``If-Match`` (HTTP 428)."""


class PreconditionFailedError(YizhanError):
    """``If-Match`` names a version that is no longer current (HTTP 412)."""

    def __init__(self, message: str, current_etag: str | None = None) -> None:
        super().__init__(message)
        self.current_etag = current_etag


class RateLimitedError(YizhanError):
    """Too many requests from one client (HTTP 429); retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))


class StorageUnavailableError(YizhanError):
    """Stored state cannot be changed now (HTTP 503); retry after ``retry_after_s`` seconds.

    For example: the registry file on disk was changed outside Yizhan and is invalid, so a
    write would overwrite the changes in it; or the disk refused the write.
    """

    def __init__(self, message: str, retry_after_s: int = 30) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))
