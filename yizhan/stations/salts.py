"""Daily salts for the hashes under which anonymous clients are told apart.

Check-ins and problem reports never store a client's address: only a SHA-256 of a salt,
a purpose (``checkins``, ``reports``) and the address. The salt **rotates daily** (a new
random 128-bit value each local day) and is **never stored beside the data**:

* by default the salts live in this process's memory only (lost at a restart: a client's
  check-ins before and after a restart cannot be linked, and its rate limits start over);
* with ``YIZHAN_SALT_FILE`` they are kept in that secret file (mode 0600), which several
  server processes share and which survives restarts. It must not be in the directory of
  the registry or of its state files (``YIZHAN_STATE_DIR``): :func:`check_salt_file`
  refuses such a path, so a copy of the data directory never carries the salts.

* with PostgreSQL (``YIZHAN_DATABASE_URL``) and no salt file, in the database's ``salts``
  table (:class:`~yizhan.storage.pg_usage.PgSalts`, a :class:`SaltSource`): replicas on
  several machines share no file, and their hashes must agree for the check-in rules to
  hold across them. That table must be kept out of backups (docs/database.md says how and
  why this exception to the rule was chosen).

A day's salt is forgotten ``keep_days`` days after that day (and so is deleted from the
file): from then on nothing can link that day's hashes to an address, or to another
day's hashes. Until then :meth:`DailySalts.hashes` gives a client's hash under each salt
still kept, which is what rate limits across midnight (check-ins: 4 hours; reports: 24
hours) and "the same client reported this twice within the report window" need.

Hand-written: a dictionary of dates to random bytes in a small JSON file under
``fcntl.flock``; no library does less.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import orjson

from yizhan.errors import InvalidInputError
from yizhan.stations.clock import Clock, utc_now
from yizhan.stations.jsonio import write_json_atomic

FILE_TYPE = "yizhan-salts"
#: Days a salt is kept after its own day, by default (covers the 14-day report window).
DEFAULT_KEEP_DAYS = 15


def check_salt_file(salt_file: Path, data_dirs: list[Path]) -> Path:
    """Refuse a salt file kept beside the data (in one of *data_dirs* or below it).

    Raises
    ------
    InvalidInputError
        Naming ``salt_file``.
    """
    where = salt_file.expanduser().resolve()
    for d in data_dirs:
        base = d.expanduser().resolve()
        if where.parent == base or base in where.parents:
            raise InvalidInputError(
                "salt_file",
                f"Expected a path outside the data directory {base} (the salts must never be "
                f"stored beside the hashes), got {salt_file}",
            )
    return salt_file


class SaltSource(Protocol):
    """Where salts shared by processes are kept (other than the secret file)."""

    def salt(self, day: date, today: date, keep_days: int) -> bytes | None:
        """The salt of *day* (made when *day* is *today* and none exists yet; ``None``
        otherwise); salts of days before ``today - keep_days`` are deleted."""
        ...


class DailySalts:
    """The salts of the last days, in memory or in a secret file shared by processes.

        Parameters
        ----------
        path : Path, optional
            The secret file; ``None`` keeps the salts in memory only.
        keep_days : int
            * with PostgreSQL (``YIZHAN_DATABASE_URL``) and no salt file, in the database's ``salts``
      table (:class:`~yizhan.storage.pg_usage.PgSalts`, a :class:`SaltSource`): replicas on
      several machines share no file, and their hashes must agree for the check-in rules to
      hold across them. That table must be kept out of backups (docs/database.md says how and
      why this exception to the rule was chosen).

    A day's salt is forgotten this many days after that day.
        timezone : str
            Days are local days in this zone (salts rotate at local midnight).
        clock : callable
            The current time (aware).
        source : SaltSource, optional
            Keeps the salts instead of *path* (the database's ``salts`` table).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        keep_days: int = DEFAULT_KEEP_DAYS,
        timezone: str = "Asia/Shanghai",
        clock: Clock = utc_now,
        source: SaltSource | None = None,
    ) -> None:
        if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 1:
            raise InvalidInputError("keep_days", f"Expected a whole number >= 1, got {keep_days!r}")
        self.path = path
        self.source = source
        self.keep_days = keep_days
        self.zone = ZoneInfo(timezone)
        self.clock = clock
        self._salts: dict[date, bytes] = {}
        self._lock = threading.Lock()

    def day_of(self, when: datetime) -> date:
        """The local day of *when* (aware)."""
        return when.astimezone(self.zone).date()

    # -- the file ---------------------------------------------------------------------------
    def _read_file(self) -> dict[date, bytes]:
        assert self.path is not None
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise InvalidInputError("salt_file", f"cannot read {self.path}: {exc}") from exc
        salts = doc.get("salts") if isinstance(doc, dict) else None
        out: dict[date, bytes] = {}
        for k, v in (salts or {}).items():
            try:
                out[date.fromisoformat(k)] = bytes.fromhex(v)
            except (TypeError, ValueError):
                continue
        return out

    def _load_or_create(self, day: date, today: date) -> bytes | None:
        """The salt of *day*: from the file (another process may have made it), else a new
        one when *day* is today; ``None`` for a past day nobody salted."""
        if self.source is not None:
            found = self.source.salt(day, today, self.keep_days)
            if found is not None:
                self._salts[day] = found
            return found
        if self.path is None:
            if day != today:
                return None
            return self._salts.setdefault(day, secrets.token_bytes(16))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stored = self._read_file()
            oldest = today - timedelta(days=self.keep_days)
            kept = {d: s for d, s in stored.items() if d >= oldest}
            salt = kept.get(day)
            if salt is None and day == today:
                salt = kept[day] = secrets.token_bytes(16)
            if kept != stored or (salt is not None and day not in stored):
                write_json_atomic(
                    self.path,
                    {
                        "type": FILE_TYPE,
                        "salts": {d.isoformat(): s.hex() for d, s in sorted(kept.items())},
                    },
                )
                os.chmod(self.path, 0o600)
            self._salts.update(kept)
            return salt
        finally:
            os.close(lock)

    # -- the API ----------------------------------------------------------------------------
    def salt(self, day: date, now: datetime | None = None) -> bytes | None:
        """The salt of local *day*; created when *day* is today; ``None`` for a day whose
        salt was forgotten (or never made)."""
        today = self.day_of(now or self.clock())
        with self._lock:
            oldest = today - timedelta(days=self.keep_days)
            for d in [d for d in self._salts if d < oldest]:
                del self._salts[d]  # forgotten: that day's hashes can no longer be linked
            if day < oldest or day > today:
                return None
            found = self._salts.get(day)
            if found is None:
                found = self._load_or_create(day, today)
            return found

    def hash(self, client: str, purpose: str, when: datetime) -> str:
        """The hash of *client* for *purpose* under the salt of *when*'s day (made if needed).

        *when* must be today (the current local day): only today's salt can be created.
        """
        salt = self.salt(self.day_of(when), when)
        if salt is None:
            raise InvalidInputError("now", f"Expected a time of the current day, got {when}")
        return _digest(salt, purpose, client)

    def hashes(self, client: str, purpose: str, when: datetime, span: timedelta) -> list[str]:
        """*client*'s hashes under the salt of every day that overlaps ``[when - span, when]``
        and is still kept, *when*'s day first (its salt is made if needed)."""
        first = self.hash(client, purpose, when)
        out = [first]
        day = self.day_of(when)
        start = self.day_of(when - span)
        d = day - timedelta(days=1)
        while d >= start:
            salt = self.salt(d, when)
            if salt is not None:
                out.append(_digest(salt, purpose, client))
            d -= timedelta(days=1)
        return out


def _digest(salt: bytes, purpose: str, client: str) -> str:
    h = hashlib.sha256(salt)
    h.update(b"\0" + purpose.encode() + b"\0")
    h.update(client.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


#: The salts of this process when no store was given its own (memory only).
PROCESS_SALTS = DailySalts()

__all__ = ["DEFAULT_KEEP_DAYS", "PROCESS_SALTS", "DailySalts", "SaltSource", "check_salt_file"]
