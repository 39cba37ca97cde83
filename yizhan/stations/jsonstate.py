"""A list of entries kept in a small JSON file, written atomically after every change.

Placements and heat alerts are kept this way (``<registry>.placements.json``,
``<registry>.alerts.json``): ``{"type": "yizhan-<kind>", "<kind>": [ … ]}``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from yizhan.errors import InvalidInputError
from yizhan.stations.jsonio import read_document, write_json_atomic


class JsonStateFile:
    """A list of entries kept in a JSON file (or only in memory when *path* is ``None``).

    Parameters
    ----------
    path : Path, optional
        The file; ``None`` keeps nothing on disk.
    kind : str
        The name of the list in the file (``placements``, ``alerts``).
    """

    def __init__(self, path: Path | None, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.lock = threading.Lock()
        #: Bumped on every change, so that caches built from the entries can tell.
        self.version = 0

    def load(self) -> list[dict[str, Any]]:
        """Entries stored in the file (``[]`` when there is no file)."""
        if self.path is None or not self.path.exists():
            return []
        doc = read_document(self.path)
        entries = doc.get(self.kind) if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise InvalidInputError(
                str(self.path), f"Expected an object with a list {self.kind!r}, got {doc!r:.80}"
            )
        return [e for e in entries if isinstance(e, dict)]

    def save(self, entries: list[dict[str, Any]]) -> None:
        """Write the entries atomically (no-op in memory)."""
        self.version += 1
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"type": f"yizhan-{self.kind}", self.kind: entries})


__all__ = ["JsonStateFile"]
