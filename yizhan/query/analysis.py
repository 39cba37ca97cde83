"""Analyses (coverage, siting, planner maps) run apart from the server, within limits.

An analysis can take minutes and gigabytes (a 20 km siting over the Zhengzhou grid ran
32 s with a 10 s solver limit: HiGHS does not stop promptly). Run on the server's threads
it would hold the threads edits and reads need, and its memory would stay with the
server. :class:`AnalysisRunner` runs each one in a process of its own instead:

* **Bounded**: at most ``workers`` analyses run at once; ``queue`` more wait (without a
  thread each); beyond that :class:`AnalysisUnavailableError` with a ``Retry-After``.
* **Hard time limit**: a process still running ``timeout_s`` after it started is killed
  (SIGKILL). This is enforced: nothing inside the analysis can prevent it.
* **Memory limit**: the process's address space (``RLIMIT_AS``) may grow by at most
  ``memory_mb`` beyond what it had when it started; an allocation past that fails and the
  analysis ends with :class:`AnalysisUnavailableError`. Linux (and other systems with
  ``resource.RLIMIT_AS``) only; elsewhere only the time limit holds.
* **Memory is returned**: the process exits after one analysis.

Processes are forked from a *forkserver* (a small process started on first use, with
the modules named in ``preload`` already imported), not from the server itself: forking a
server with running threads could copy a lock some thread holds. An analysis costs a fork
and the pickling of its inputs and result.

The functions run in those processes (:func:`site_analysis`, :func:`coverage_analysis`)
take and return plain data (arrays, dicts), so that they pickle cheaply.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from yizhan.errors import InvalidInputError, YizhanError
from yizhan.geo.access import two_step_fca
from yizhan.geo.coverage import StationSet, coverage
from yizhan.geo.demand import Demand
from yizhan.geo.siting import CoverMatrix, site_mclp

try:
    import resource
except ImportError:  # pragma: no cover - not on Linux
    resource = None  # type: ignore[assignment]

T = TypeVar("T")

#: Share of the hard limit a solver is given, leaving time to build the model and answer.
SOLVER_SHARE = 0.75


class AnalysisUnavailableError(YizhanError):
    """The server cannot run (or finish) this analysis now (HTTP 503).

    ``retry_after_s`` is set when waiting helps (every worker busy), ``None`` when the
    analysis itself is too large (killed at the time or memory limit).
    """

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(eq=False)
class _Job:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    cancelled: bool = False
    process: Any = None
    started: float = field(default=0.0)


class AnalysisRunner:
    """Run analyses in their own processes: bounded, time- and memory-limited.

    Parameters
    ----------
    workers : int
        Analyses running at once.
    queue : int
        Analyses waiting for a worker; beyond: :class:`AnalysisUnavailableError`.
    timeout_s : float
        Hard wall-clock limit of one analysis, from its process's start.
    memory_mb : int
        Address space one analysis process may add (``RLIMIT_AS``); 0: no limit.
    preload : sequence of str
        Modules the forkserver imports once, so that each analysis starts without
        importing them (those holding the functions that will run).
    """

    def __init__(
        self,
        workers: int,
        queue: int,
        timeout_s: float,
        memory_mb: int,
        preload: Sequence[str] = (),
    ) -> None:
        self.workers = workers
        self.queue = queue
        self.timeout_s = timeout_s
        self.memory_bytes = memory_mb * 1024 * 1024
        self._ctx = mp.get_context("forkserver")
        if preload:
            self._ctx.set_forkserver_preload(list(preload))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yizhan-analysis")
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0
        self._jobs: set[_Job] = set()
        self._mean_s = 5.0  # running mean of an analysis's duration, for Retry-After
        self._closed = False

    @property
    def pending(self) -> int:
        """Analyses running or waiting."""
        return self._pending

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the runner then refuses analyses)."""
        return self._closed

    @property
    def running(self) -> int:
        """Analyses whose process is running."""
        return self._running

    def solver_time_s(self, requested_s: float) -> float:
        """The solver time limit to pass for *requested_s*: at most a share of the hard limit."""
        return min(requested_s, SOLVER_SHARE * self.timeout_s)

    def retry_after_s(self) -> int:
        """A fair guess of when a worker is free again, whole seconds."""
        waves = (self._pending + 1) / self.workers
        return max(1, min(math.ceil(self.timeout_s), math.ceil(waves * self._mean_s)))

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a fresh process; *func* and *args* must pickle.

        Raises
        ------
        AnalysisUnavailableError
            Every worker busy and the queue full (``retry_after_s`` set); or the analysis
            was killed at the time limit, ran out of memory or crashed.
        InvalidInputError, YizhanError
            Raised by *func* (as it raised them).
        """
        with self._lock:
            if self._closed:
                raise AnalysisUnavailableError("the server is shutting down", 5)
            if self._pending >= self.workers + self.queue:
                raise AnalysisUnavailableError(
                    f"every analysis worker is busy ({self.workers} running, {self.queue} "
                    "waiting): try again later",
                    self.retry_after_s(),
                )
            self._pending += 1
        job = _Job(func, args)
        loop = asyncio.get_running_loop()
        try:
            kind, payload = await loop.run_in_executor(self._pool, self._execute, job)
        except asyncio.CancelledError:
            job.cancelled = True
            if job.process is not None and job.process.is_alive():
                job.process.kill()  # the worker thread reaps it
            raise
        finally:
            with self._lock:
                self._pending -= 1
        result: T = self._result(kind, payload)
        return result

    def _result(self, kind: str, payload: Any) -> Any:
        if kind == "ok":
            return payload
        if kind == "invalid":
            raise InvalidInputError(*payload)
        if kind == "error":
            raise AnalysisUnavailableError(f"the analysis failed: {payload}")
        if kind == "timeout":
            raise AnalysisUnavailableError(
                f"the analysis did not finish within the server's limit of {self.timeout_s:g} s "
                "(YIZHAN_ANALYSIS_TIMEOUT_S) and was stopped: ask for less (fewer sites or "
                "candidates, a smaller radius)"
            )
        if kind == "memory":
            raise AnalysisUnavailableError(
                "the analysis needed more memory than the server allows one analysis "
                f"({self.memory_bytes // 2**20} MB, YIZHAN_ANALYSIS_MEMORY_MB) and was stopped: "
                "ask for less (fewer sites or candidates, a smaller radius)"
            )
        raise AnalysisUnavailableError(f"the analysis failed: {payload}")

    def _execute(self, job: _Job) -> tuple[str, Any]:
        """Run *job* in a process and wait for it (in one of the runner's threads)."""
        if job.cancelled or self._closed:
            return "error", "cancelled"
        receiver, sender = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_child,
            args=(sender, job.func, job.args, self.memory_bytes, self.timeout_s),
            name="yizhan-analysis",
            daemon=True,
        )
        job.started = time.monotonic()
        with self._lock:
            self._running += 1
            self._jobs.add(job)
        try:
            proc.start()
            job.process = proc
            sender.close()
            if job.cancelled:
                return "error", "cancelled"
            if receiver.poll(self.timeout_s):
                try:
                    kind, payload = receiver.recv()
                except (EOFError, OSError):
                    proc.join(5)
                    code = proc.exitcode
                    kind, payload = "crash", f"its process ended with status {code}"
            else:
                kind, payload = "timeout", None
            return kind, payload
        finally:
            self._kill(job)
            receiver.close()
            with self._lock:
                self._running -= 1
                self._jobs.discard(job)
                seconds = time.monotonic() - job.started
                self._mean_s = 0.8 * self._mean_s + 0.2 * seconds

    @staticmethod
    def _kill(job: _Job) -> None:
        proc = job.process
        if proc is None:
            return
        if proc.is_alive():
            proc.kill()
        proc.join(5)

    def warm_up(self) -> None:
        """Start the forkserver (importing the preloaded modules) now rather than on the
        first analysis; blocks for a few seconds, call it from a thread."""
        forkserver.ensure_running()

    def close(self) -> None:
        """Kill every running analysis and refuse new ones."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs)
        for job in jobs:
            job.cancelled = True
            self._kill(job)
        self._pool.shutdown(wait=False, cancel_futures=True)


def _address_space_bytes() -> int:
    """This process's current virtual size (Linux ``/proc``), or 0 when unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _orphan_watch(interval_s: float = 1.0) -> None:
    """End this process when its parent (the forkserver, which ends with the server) is
    gone: an analysis must not outlive the server that asked for it."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _child(
    conn: Connection,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    memory: int,
    timeout_s: float,
) -> None:
    """The analysis process: limit memory and time, run, send ``(kind, payload)`` back.

    Besides the runner's kill, the process ends itself: SIGALRM (default action: end the
    process) two seconds after the time limit, and when the server is gone.
    """
    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(math.ceil(timeout_s) + 2)
        _orphan_watch()
        if memory and resource is not None:
            limit = _address_space_bytes() + memory
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        with threadpool_limits(limits=1):
            result = func(*args)
        conn.send(("ok", result))
    except MemoryError:
        _send(conn, ("memory", None))
    except InvalidInputError as exc:
        _send(conn, ("invalid", (exc.field, exc.message)))
    except YizhanError as exc:
        _send(conn, ("error", str(exc)))
    except BaseException as exc:
        _send(conn, ("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _send(conn: Connection, message: tuple[str, Any]) -> None:
    # If even this fails, nothing more can be said: the parent sees the pipe closed.
    with contextlib.suppress(Exception):
        conn.send(message)


# -- what runs in those processes ------------------------------------------------------------


@dataclass(frozen=True)
class Selected:
    """Stations already selected (a :class:`~yizhan.geo.coverage.StationSet`) as a station
    table: what coverage and 2SFCA take, without sending the whole registry to a process."""

    stations: StationSet

    def __len__(self) -> int:
        return len(self.stations)

    def station_set(self, station_mask: Any = None) -> StationSet:
        """The selected stations (*station_mask* must be ``None``: they are selected)."""
        return self.stations


def coverage_analysis(
    stations: StationSet, demand: Demand, radius_m: float, access: bool
) -> dict[str, Any]:
    """Coverage of *demand* by *stations* within *radius_m* (and 2SFCA with *access*), as
    the dict ``GET /coverage`` answers (without its ``demand`` and ``stations`` texts)."""
    table = Selected(stations)
    out = coverage(table, demand, radius_m).to_dict()
    if access:
        out["access"] = two_step_fca(table, demand, radius_m).to_dict()
    return out


def site_analysis(
    demand: Demand,
    existing_lon: NDArray[np.float64],
    existing_lat: NDArray[np.float64],
    candidates_lon: NDArray[np.float64] | None,
    candidates_lat: NDArray[np.float64] | None,
    n_new: int,
    radius_m: float,
    time_limit_s: float,
    *,
    cover: CoverMatrix | None = None,
    covered: ArrayLike | None = None,
    members: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Maximal-covering siting (:func:`yizhan.geo.siting.site_mclp`) as the dict
    ``POST /analysis/site`` answers, with *members* (e.g. the metric) before ``sites``
    (GeoJSON). *cover* and *covered* are :func:`~yizhan.geo.siting.site_mclp`'s (another
    metric's cover sets)."""
    result = site_mclp(
        demand,
        existing_lon,
        existing_lat,
        candidates_lon,
        candidates_lat,
        n_new=n_new,
        radius_m=radius_m,
        time_limit_s=time_limit_s,
        cover=cover,
        covered=covered,
    )
    out = result.to_dict()
    out.update(members or {})
    out["sites"] = result.to_geojson()
    return out
