"""Percent-encoded UTF-8 in query strings (issue 15, item 12).

The README's examples put Chinese text in URLs (``district=中原区``, ``q=银行``); curl sends
it as raw bytes, which the HTTP server refuses (400 "Invalid HTTP request received"). The
examples now percent-encode (``curl -G --data-urlencode``); these tests check that every
endpoint taking text reads percent-encoded UTF-8, through TestClient and through a real
uvicorn server, and run the README's own examples with curl.
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.request import Request, urlopen

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from tests.helpers import Server
from yizhan.api import create_app
from yizhan.settings import Settings
from yizhan.stations.registry import load_registry

REPO = Path(__file__).resolve().parent.parent
ADMIN = "admin-token-for-the-encoding-tests"
ZY = "中原区"
ZY_Q = quote(ZY)  # %E4%B8%AD%E5%8E%9F%E5%8C%BA


def doc() -> dict[str, Any]:
    return make_doc(
        [
            make_feature("a1", 113.60, 34.75, name="郑州银行工会驿站", district=ZY),
            make_feature("a2", 113.61, 34.75, name="环卫驿站", district=ZY),
            make_feature("b1", 113.70, 34.78, name="金水驿站", district="金水区"),
        ]
    )


@pytest.fixture
def served(tmp_path: Path) -> Path:
    path = tmp_path / "reg.geojson"
    path.write_bytes(orjson.dumps(doc()))
    return path


def settings_for(path: Path) -> Settings:
    return Settings(registry=path, admin_token=ADMIN, reload_interval_s=0)


# Every endpoint with a text parameter, as a percent-encoded request and what it must answer.
CASES = [
    (
        f"/stations?district={ZY_Q}",
        lambda r: {f["id"] for f in r.json()["features"]} == {"a1", "a2"},
    ),
    (f"/stations?q={quote('银行')}", lambda r: [f["id"] for f in r.json()["features"]] == ["a1"]),
    (
        f"/stations?district={ZY_Q}&district={quote('金水区')}",
        lambda r: len(r.json()["features"]) == 3,
    ),
    (f"/find?district={ZY_Q}", lambda r: f"距{ZY}中心" in r.text and 'data-id="a1"' in r.text),
    (f"/find?district={ZY_Q}&lang=en", lambda r: f"centre of {ZY}" in r.text),
    ("/s/a1?lang=zh", lambda r: "郑州银行工会驿站" in r.text),
]


def test_percent_encoded_utf8_through_testclient(served: Path) -> None:
    with TestClient(create_app(settings_for(served))) as c:
        for url, ok in CASES:
            r = c.get(url)
            assert r.status_code == 200, (url, r.text[:200])
            assert ok(r), url
        # An unknown district is a 422 that names it, decoded.
        r = c.get(f"/find?district={quote('海淀区')}")
        assert r.status_code == 422 and "海淀区" in r.json()["detail"][0]["msg"]
        # DELETE's reason is text in the query string too.
        etag = c.get("/stations/b1").headers["etag"]
        r = c.delete(
            f"/stations/b1?reason={quote('已撤除：拆迁')}",
            headers={"Authorization": f"Bearer {ADMIN}", "If-Match": etag},
        )
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["status_reason"] == "已撤除：拆迁"


@pytest.fixture
def server(served: Path) -> Iterator[Server]:
    srv = Server(create_app(settings_for(served)))
    try:
        yield srv
    finally:
        srv.stop()


class Answer:
    """A urllib answer with the two accessors the cases use (``text``, ``json()``)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.text = body.decode("utf-8")

    def json(self) -> Any:
        return orjson.loads(self.body)


def raw_get(port: int, target: bytes) -> bytes:
    """One GET with *target* sent as is (bytes), the answer's status line and headers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_percent_encoded_utf8_through_a_real_server(server: Server) -> None:
    for url, ok in CASES:
        with urlopen(server.url + url, timeout=10) as resp:
            assert resp.status == 200, url
            assert ok(Answer(resp.read())), url
    req = Request(
        server.url + f"/stations/b1?reason={quote('拆迁')}",
        method="DELETE",
        headers={"Authorization": f"Bearer {ADMIN}", "If-Match": "*"},
    )
    with urlopen(req, timeout=10) as resp:
        assert orjson.loads(resp.read())["properties"]["status_reason"] == "拆迁"
    # Why the README percent-encodes: raw UTF-8 in the request line is not HTTP.
    raw = raw_get(server.port, "/stations?district=中原区".encode())
    assert raw.startswith(b"HTTP/1.1 400")
    encoded = raw_get(server.port, f"/stations?district={ZY_Q}".encode("ascii"))
    assert encoded.startswith(b"HTTP/1.1 200")


def readme_curls() -> list[str]:
    """The README's curl commands that query with text (one logical line each)."""
    text = (REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip()
        for line in text.splitlines()
        if line.startswith("curl ") and "--data-urlencode" in line
    ]


def test_readme_never_puts_raw_non_ascii_in_a_url() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        for url in re.findall(r"(?:localhost|127\.0\.0\.1):\d+/\S*", line):
            assert url.isascii(), f"percent-encode (curl -G --data-urlencode): {line}"
    assert len(readme_curls()) >= 2


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_readme_text_queries_run_as_written(tmp_path: Path) -> None:
    """The README's examples against the bundled registry (as `make serve` serves it)."""
    settings = Settings(state_dir=tmp_path)
    reg = load_registry(settings.registry, timezone=settings.timezone)
    srv = Server(create_app(settings, registry=reg))
    try:
        for line in readme_curls():
            cmd = shlex.split(
                line.split("#", 1)[0].replace("localhost:8000", f"127.0.0.1:{srv.port}")
            )
            saves = any(a.startswith("-O") for a in cmd)  # a download: into tmp_path
            out = subprocess.run(
                [*cmd, "-sS", "-w", "\n%{http_code}"],
                capture_output=True,
                timeout=60,
                check=False,
                cwd=tmp_path,
            )
            body, _, status = out.stdout.decode("utf-8").rpartition("\n")
            assert status == "200", (line, out.stderr, body[:300])
            if saves:
                saved = [p for p in tmp_path.iterdir() if p.is_file() and p.stat().st_size]
                assert saved, line
                continue
            features = orjson.loads(body)["features"]
            assert features, line
            if "district=" in line:
                assert {f["properties"]["district"] for f in features} == {ZY}
            if "q=" in line:
                assert all("银行" in f["properties"]["name"] for f in features)
    finally:
        srv.stop()
