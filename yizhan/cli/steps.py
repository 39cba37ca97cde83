"""Progress for multi-step CLI commands: ``[2/4] coverage … done in 0.8 s`` on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Steps:
    """Numbered steps with timings, written to *stream* (stderr) unless *quiet*."""

    def __init__(self, total: int, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.total = total
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.n = 0

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.n += 1
        start = time.perf_counter()
        if not self.quiet:
            print(f"[{self.n}/{self.total}] {label} …", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if not self.quiet:
                print(" failed", file=self.stream, flush=True)
            raise
        if not self.quiet:
            print(f" done in {time.perf_counter() - start:.1f} s", file=self.stream, flush=True)
