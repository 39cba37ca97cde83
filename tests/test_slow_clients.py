"""Slow and idle clients cannot shut others out (issue 15, item 16), on a real `yizhan
serve` limited to 256 open files: connections that trickle their headers are closed after
the header timeout, and for new ones when the connection limit is reached; an oversized
head gets 431, a body that does not arrive 408; and none of it is logged per connection.

Before: 300 trickling connections at a 256 descriptor limit made every normal request
time out and wrote 75 MB of log in 5 s."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.realserver import RealServer, yizhan_serve
from yizhan.cli.serving import OncePerInterval, connection_limit, headroom

HEADER_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    env = {
        "YIZHAN_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "YIZHAN_BODY_TIMEOUT_S": "2",
        "YIZHAN_MAX_HEADER_BYTES": "8192",
    }
    with yizhan_serve(tmp_path_factory.mktemp("slow"), env, nofile=256) as srv:
        yield srv


def _open(srv: RealServer, first: bytes) -> socket.socket:
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.sendall(first)
    return s


def _closed_by_server(s: socket.socket, within_s: float) -> bool:
    """Whether the server closes *s* within *within_s* (reading whatever it sends)."""
    s.settimeout(0.2)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if s.recv(65536) == b"":
                return True
        except TimeoutError:
            try:
                s.sendall(b"X")  # keep trickling: one byte of a header name
            except OSError:
                return True
        except OSError:
            return True
    return False


def _log_lines(srv: RealServer) -> list[str]:
    return srv.log().splitlines()


def test_a_trickling_connection_is_closed_after_the_header_timeout(server: RealServer) -> None:
    s = _open(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    try:
        t0 = time.monotonic()
        assert _closed_by_server(s, within_s=30)
        assert time.monotonic() - t0 >= HEADER_TIMEOUT_S - 0.5
    finally:
        s.close()


def test_an_idle_connection_is_closed_too(server: RealServer) -> None:
    s = socket.create_connection((server.host, server.port), timeout=5)
    try:
        s.settimeout(30)
        assert s.recv(1) == b""  # closed without a request
    finally:
        s.close()


def _oversized_head_answer(srv: RealServer, kib: int) -> bytes:
    """What the server answers a request head of about *kib* KiB (sent, then silence)."""
    s = _open(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    try:
        got = b""
        s.settimeout(10)
        with contextlib.suppress(OSError):
            s.sendall(b"".join(b"X-Filler: " + b"a" * 1000 + b"\r\n" for _ in range(kib)))
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                got += chunk
        return got
    finally:
        s.close()


def test_an_oversized_head_gets_431(server: RealServer) -> None:
    got = _oversized_head_answer(server, 64)
    assert got.startswith(b"HTTP/1.1 431"), got[:200]
    # All of it at once and then nothing: refused at once, not at the header timeout.
    t0 = time.monotonic()
    got = _oversized_head_answer(server, 12)
    assert got.startswith(b"HTTP/1.1 431"), got[:200]
    assert time.monotonic() - t0 < HEADER_TIMEOUT_S


def test_a_body_that_does_not_arrive_gets_408(server: RealServer) -> None:
    head = (
        b"POST /analysis/site HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    s = _open(server, head + b'{"n_new": ')
    try:
        s.settimeout(30)
        got = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):  # the head and the body may come apart
                got += chunk
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b"not received within 2 s" in got
    finally:
        s.close()


def test_trickling_connections_do_not_shut_out_normal_requests(server: RealServer) -> None:
    """300 connections trickle their headers (more than the 256 files the server may
    open); a normal request must still be answered, and the log must not grow with them."""
    lines_before = len(_log_lines(server))
    socks: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            for s in list(socks):
                with contextlib.suppress(OSError):
                    s.send(b"X")
            time.sleep(0.5)

    try:
        for _ in range(300):
            # Refused or reset at the limit: what matters is the request below.
            with contextlib.suppress(OSError):
                socks.append(_open(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "))
        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        time.sleep(1.0)
        answers = []
        for _ in range(5):
            r = httpx.get(f"{server.url}/nearest?lon=113.65&lat=34.76&k=1", timeout=10)
            answers.append(r.status_code)
        assert answers == [200] * 5
    finally:
        stop.set()
        for s in socks:
            s.close()
    time.sleep(0.5)
    new = _log_lines(server)[lines_before:]
    warnings = [line for line in new if "WARNING" in line or "ERROR" in line]
    # At most a few lines (summaries, once per interval), never one per connection.
    assert len(warnings) <= 5, "\n".join(warnings[:20])
    assert "Traceback" not in "\n".join(new)


def test_bad_requests_are_logged_once_per_interval(server: RealServer) -> None:
    lines_before = len(_log_lines(server))
    for _ in range(40):
        s = _open(server, b"NOT HTTP AT ALL\r\n\r\n")
        s.settimeout(5)
        with contextlib.suppress(OSError):
            s.recv(1024)
        s.close()
    time.sleep(0.5)
    new = _log_lines(server)[lines_before:]
    assert sum("Invalid HTTP request" in line for line in new) <= 1, "\n".join(new[:10])


def test_once_per_interval_filter() -> None:
    f = OncePerInterval(60.0)

    def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, None, None)

    assert f.filter(record("Invalid HTTP request received."))
    assert not f.filter(record("Invalid HTTP request received."))
    assert f.filter(record("Exceeded concurrency limit."))
    assert f.filter(record("boom", logging.ERROR))  # errors always pass
    assert f.filter(record("boom", logging.ERROR))
    f._last.clear()
    again = record("Invalid HTTP request received.")
    assert f.filter(again) and "1 more like it" in str(again.msg)


def test_connection_limit_fits_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 256))
    monkeypatch.setattr(resource, "setrlimit", lambda *_: None)
    fit = connection_limit(None)
    assert fit + headroom(fit) <= 256 - 64 < fit + 20
    assert connection_limit(100) == 100
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 65536))
    assert connection_limit(None) == 1000  # the soft limit is raised to fit


def test_serve_turns_proxy_headers_off_and_sets_limits(tmp_path: Path) -> None:
    from yizhan.cli.serving import uvicorn_options
    from yizhan.settings import Settings

    opts = uvicorn_options(Settings(keep_alive_s=7, max_header_bytes=4096, limit_concurrency=50))
    assert opts["proxy_headers"] is False
    assert opts["timeout_keep_alive"] == 7
    assert opts["h11_max_incomplete_event_size"] == 4096
    assert opts["limit_concurrency"] == 50 + headroom(50)
    assert opts["http"].max_connections == 50
    assert opts["http"].header_timeout_s == 10.0


@pytest.mark.slow
def test_every_worker_of_a_multi_worker_server_is_guarded(tmp_path: Path) -> None:
    """``yizhan serve --workers 2``: the workers are started from a pickled configuration;
    the guard reaches them by name and each closes trickling and idle connections."""
    env = {"YIZHAN_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "YIZHAN_MAX_HEADER_BYTES": "8192"}
    with yizhan_serve(tmp_path, env, args=("--workers", "2")) as srv:
        # Several connections, so that both workers (one accept queue) get some.
        socks = [_open(srv, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(6)]
        try:
            t0 = time.monotonic()
            assert all(_closed_by_server(s, within_s=30) for s in socks)
            assert time.monotonic() - t0 >= HEADER_TIMEOUT_S - 0.5
        finally:
            for s in socks:
                s.close()
        got = _oversized_head_answer(srv, 16)
        assert got.startswith(b"HTTP/1.1 431"), got[:200]  # httptools has no cap of its own
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200
