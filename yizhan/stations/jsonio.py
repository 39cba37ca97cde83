"""JSON files written atomically and durably, and read with the cyclic GC paused.

Every kind of state kept in files (the registry, placements, alerts, tokens, import
reports) goes through these few functions; they import nothing else from Yizhan.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from yizhan.errors import InvalidInputError


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large registry is parsed and validated.

    Parsing and validating 100,000 features creates millions of objects that all survive;
    each generation-2 collection walks all of them, which made loading several times slower
    (21 s instead of 4 s for 100,000 stations, measured). Nothing loaded forms cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_document(path: Path) -> Any:
    """Parse a JSON file, raising :class:`InvalidInputError` (naming the file) on failure."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        with gc_paused():
            return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(str(path), f"not valid JSON: {exc}") from exc


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: bool = True) -> None:
    """Write *obj* as JSON to *path* atomically and durably.

    The data goes to a temporary file in the same directory, which is flushed to disk
    (``fsync``) and renamed over *path*; then the directory is flushed, so the rename
    itself is on disk. A reader, or the file after a crash, shows the old or the new
    content, never a mix.
    """
    p = Path(path)
    opts = orjson.OPT_INDENT_2 if indent else 0
    data = orjson.dumps(obj, option=opts | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(p.parent)


def write_durably(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd* (a short write is continued) and ``fsync`` it: an append
    to a log is acknowledged only once this returns.

    Raises
    ------
    OSError
        The write or the flush failed (the caller undoes or reports it).
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries to disk, so that a rename into it survives a power cut."""
    fd = os.open(os.fspath(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
