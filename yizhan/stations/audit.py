"""The audit log: one JSON line per change to a station or bus, appended and flushed.

Each line says when (UTC), which feature (``id``), what (``action``), who (``actor``: role,
name, token id; ``file`` for a change found on disk), why (``reason``), the versions before
and after (``etag_before``, ``etag_after``), each changed field (``changes``) and both full
versions (``before``, ``after``).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from yizhan.stations.editing import Action, diff, feature_etag
from yizhan.stations.tokens import Principal

log = logging.getLogger("yizhan")


def audit_entry(
    action: Action,
    feature_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    who: Principal | None,
    at: datetime,
    *,
    source: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """One audit line: a change by *who*, or (``who`` ``None``) one found in file *source*."""
    return {
        "at": at.isoformat(timespec="microseconds"),
        "id": feature_id,
        "action": action,
        "actor": (
            {"role": who.role, "name": who.name, "token_id": who.token_id}
            if who is not None
            else {"role": "file", "name": source, "token_id": None}
        ),
        "reason": reason,
        "etag_before": feature_etag(before) if before is not None else None,
        "etag_after": feature_etag(after) if after is not None else None,
        "changes": diff(before or {}, after or {}),
        "before": before,
        "after": after,
    }


class AuditLog:
    """Append-only JSON lines: one entry per accepted change (or ``None``: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: list[dict[str, Any]] = []

    def append(self, entries: Sequence[dict[str, Any]]) -> None:
        """Append entries and flush them to disk before returning."""
        if not entries:
            return
        if self.path is None:
            self._memory.extend(entries)
            return
        data = b"".join(orjson.dumps(e, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A crash in the middle of an earlier append leaves a line without its newline:
            # start on a fresh line so that the torn entry stays the only casualty.
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self, feature_id: str | None = None) -> list[dict[str, Any]]:
        """Every entry (of one feature), oldest first. A torn line is skipped with a warning."""
        if self.path is None:
            rows = list(self._memory)
        else:
            rows = []
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return []
            for n, line in enumerate(data.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("%s:%d: skipping a torn audit line", self.path, n)
                    continue
                if isinstance(row, dict):
                    rows.append(row)
        if feature_id is not None:
            rows = [r for r in rows if r.get("id") == feature_id]
        return rows


__all__ = ["AuditLog", "audit_entry"]
