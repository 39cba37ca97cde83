"""Which client sent a request (issue 15, item 14): a forged `X-Forwarded-For` must not
change it; behind trusted proxies the right-most address they did not add is the client;
the report limits hold against forged headers on a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from starlette.requests import Request

from tests.realserver import yizhan_serve
from yizhan.routes.clients import WindowLimiter, client_address, client_key
from yizhan.settings import Settings


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", v.encode()) for v in forwarded]
    return Request({"type": "http", "headers": headers, "client": (peer, 40000)})


NO_PROXY = Settings()
LOCAL_PROXY = Settings(trusted_proxies=["127.0.0.1", "::1"])
TWO_TIERS = Settings(trusted_proxies=["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("settings", "peer", "forwarded", "expected"),
    [
        # No proxy configured: the header is the client's own writing and is ignored.
        (NO_PROXY, "198.51.100.4", ["203.0.113.77"], "198.51.100.4"),
        (NO_PROXY, "127.0.0.1", ["203.0.113.77"], "127.0.0.1"),
        # A peer that is not a trusted proxy cannot choose its key either.
        (LOCAL_PROXY, "198.51.100.4", ["203.0.113.77"], "198.51.100.4"),
        # Through the proxy: what it appended (right-most), not what the client wrote.
        (LOCAL_PROXY, "127.0.0.1", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),
        (LOCAL_PROXY, "127.0.0.1", ["6.6.6.6", "203.0.113.5"], "203.0.113.5"),
        (LOCAL_PROXY, "::ffff:127.0.0.1", ["203.0.113.5"], "203.0.113.5"),
        (LOCAL_PROXY, "127.0.0.1", [], "127.0.0.1"),
        # Several proxies: skip the trusted hops from the right.
        (TWO_TIERS, "10.1.1.1", ["6.6.6.6, 203.0.113.5, 10.2.2.2"], "203.0.113.5"),
        (TWO_TIERS, "127.0.0.1", ["6.6.6.6, 203.0.113.5, 10.2.2.2, 10.3.3.3"], "203.0.113.5"),
        (TWO_TIERS, "127.0.0.1", ["10.0.0.3"], "10.0.0.3"),
        # Ports and brackets written by proxies.
        (LOCAL_PROXY, "127.0.0.1", ["203.0.113.5:5555"], "203.0.113.5"),
        (LOCAL_PROXY, "::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        # Not an address (written by a trusted proxy): kept as written, cut.
        (LOCAL_PROXY, "127.0.0.1", ["unknown"], "unknown"),
        (LOCAL_PROXY, "127.0.0.1", ["x" * 300], "x" * 64),
    ],
)
def test_client_address(settings: Settings, peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(request(peer, *forwarded), settings) == expected


def test_deprecated_trust_forwarded_for_takes_the_right_most_address() -> None:
    """Before: the left-most, client-written address was the key."""
    legacy = Settings(trust_forwarded_for=True)
    assert client_address(request("127.0.0.1", "6.6.6.6, 198.51.100.7"), legacy) == ("198.51.100.7")
    assert client_address(request("127.0.0.1"), legacy) == "127.0.0.1"


def test_ipv6_clients_are_keyed_by_their_64() -> None:
    a = client_key(request("2001:db8:1:2::1"), NO_PROXY)
    b = client_key(request("2001:db8:1:2:ffff::9"), NO_PROXY)
    assert a == b == "2001:db8:1:2::/64"
    assert client_key(request("2001:db8:1:3::1"), NO_PROXY) != a
    assert client_key(request("198.51.100.4"), NO_PROXY) == "198.51.100.4"


def test_proxy_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="YIZHAN_TRUSTED_PROXIES"):
        Settings(trusted_proxies=["localhost"])
    with pytest.raises(ValidationError, match="YIZHAN_TRUST_FORWARDED_FOR"):
        Settings(trusted_proxies=["127.0.0.1"], trust_forwarded_for=True)
    assert Settings(trusted_proxies=[" 10.1.2.3/8 "]).trusted_proxies == ["10.0.0.0/8"]


def test_window_limiter() -> None:
    now = [1000.0]
    lim = WindowLimiter(2, 60.0, max_keys=2, clock=lambda: now[0])
    assert lim.retry_after_s("a") == 0
    lim.hit("a")
    lim.hit("a")
    assert lim.retry_after_s("a") == pytest.approx(60.0)
    now[0] += 59.0
    assert lim.retry_after_s("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert lim.retry_after_s("a") == 0
    lim.hit("b")
    lim.hit("c")  # a is forgotten: at most two clients are remembered
    assert len(lim._events) == 2


def _report(client: httpx.Client, fid: str, forwarded: str) -> int:
    r = client.post(
        f"/stations/{fid}/reports",
        json={"code": "no_water"},
        headers={"X-Forwarded-For": forwarded},
    )
    return r.status_code


def test_report_limit_holds_against_forged_headers_on_a_real_server(tmp_path: Path) -> None:
    """`yizhan serve` on 127.0.0.1: before, uvicorn's proxy headers trusted any loopback
    client's X-Forwarded-For, so every forged address was a new client."""
    env = {"YIZHAN_REPORT_RATE_PER_HOUR": "3", "YIZHAN_REPORT_RATE_PER_STATION_PER_DAY": "50"}
    with yizhan_serve(tmp_path / "direct", env) as srv, httpx.Client(base_url=srv.url) as c:
        fid = c.get("/stations", params={"limit": 1}).json()["features"][0]["id"]
        codes = [_report(c, fid, f"203.0.113.{i}") for i in range(6)]
        assert codes == [201, 201, 201, 429, 429, 429]
        # Nor does a station get flagged by one client posing as several.
        assert c.get(f"/stations/{fid}").json()["properties"]["needs_check"] is False


def test_reports_through_a_trusted_proxy_on_a_real_server(tmp_path: Path) -> None:
    """With YIZHAN_TRUSTED_PROXIES the right-most address the proxy added is the client:
    what the client itself wrote to the left changes nothing."""
    env = {
        "YIZHAN_REPORT_RATE_PER_HOUR": "3",
        "YIZHAN_REPORT_RATE_PER_STATION_PER_DAY": "50",
        "YIZHAN_TRUSTED_PROXIES": '["127.0.0.1"]',
    }
    with yizhan_serve(tmp_path / "proxied", env) as srv, httpx.Client(base_url=srv.url) as c:
        fid = c.get("/stations", params={"limit": 1}).json()["features"][0]["id"]
        # One real client (198.51.100.1) forging different left-most addresses: limited.
        forged = [_report(c, fid, f"203.0.113.{i}, 198.51.100.1") for i in range(5)]
        assert forged == [201, 201, 201, 429, 429]
        # Different real clients behind the proxy are told apart.
        assert _report(c, fid, "198.51.100.2") == 201
        assert _report(c, fid, "198.51.100.3") == 201
