"""Snapshots replaced by a change are freed off the request's path.

A snapshot of 100,000 stations holds lists of that many objects; freeing one touches each
of them (a few milliseconds on a busy machine), which an edit would otherwise pay before
its answer. :func:`retire` hands the replaced snapshot to a daemon thread that drops it;
readers still holding it keep it alive as long as they need it.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

_graveyard: queue.SimpleQueue[Any] = queue.SimpleQueue()
_started = threading.Lock()
_thread: threading.Thread | None = None


def _drop() -> None:
    while True:
        obj = _graveyard.get()
        del obj  # freed here if this was the last reference


def retire(obj: Any) -> None:
    """Drop *obj* in the background (freed there unless someone else still holds it)."""
    global _thread
    if _thread is None:
        with _started:
            if _thread is None:
                _thread = threading.Thread(target=_drop, name="yizhan-retire", daemon=True)
                _thread.start()
    _graveyard.put(obj)


__all__ = ["retire"]
