"""History from an indexed audit log: a request reads only its station's lines, pages them,
and follows lines appended by another process; checked on a generated ~50 MB log."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from yizhan.api import create_app
from yizhan.cli import main
from yizhan.settings import Settings
from yizhan.stations.audit import AuditLog, audit_entry
from yizhan.stations.tokens import Principal

N_STATIONS = 400
PER_STATION = 50
PAD = "长" * 600  # ~1.8 KB of UTF-8 per version: lines of ~4 KB, a log of ~80 MB in all
WHO = Principal("Li", "manager", token_id="tok_1")
T0 = datetime(2026, 7, 1, tzinfo=UTC)


def _versions(i: int) -> list[dict[str, Any]]:
    """The versions of station ``s{i}``: the last one is the one in the registry."""
    base = make_feature(f"s{i}", 113.5 + (i % 40) * 0.01, 34.7 + (i // 40) * 0.01, note=PAD)
    out = []
    for k in range(PER_STATION):
        f = json.loads(json.dumps(base))
        f["properties"]["phone"] = f"0371-{k:04d}"
        out.append(f)
    return out


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A registry of 400 stations and an audit log of 50 updates each, interleaved."""
    d = tmp_path_factory.mktemp("big")
    versions = [_versions(i) for i in range(N_STATIONS)]
    reg = d / "reg.geojson"
    reg.write_text(json.dumps(make_doc([v[-1] for v in versions])))
    log = d / "reg.geojson.audit.jsonl"
    with log.open("wb") as fh:
        for k in range(PER_STATION):
            for i in range(N_STATIONS):
                before = versions[i][k - 1] if k else None
                at = T0 + timedelta(seconds=k * N_STATIONS + i)
                e = audit_entry(
                    "update" if k else "create", f"s{i}", before, versions[i][k], WHO, at
                )
                fh.write(orjson.dumps(e) + b"\n")
    return reg, log


@pytest.fixture
def client(big: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[TestClient, AuditLog]]:
    reg, log = big
    settings = Settings(registry=reg, state_dir=None, admin_token="x" * 20, reload_interval_s=0)
    size = log.stat().st_size
    with TestClient(create_app(settings)) as c:
        yield c, c.app.state.store.audit  # type: ignore[attr-defined]
    with log.open("rb+") as fh:  # keep the module's log as generated
        fh.truncate(size)


class CountingPread:
    """Counts the bytes read with ``os.pread`` (how the log's lines are read)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        self.calls = 0
        real = os.pread

        def pread(fd: int, n: int, offset: int) -> bytes:
            data = real(fd, n, offset)
            self.bytes += len(data)
            self.calls += 1
            return data

        monkeypatch.setattr(os, "pread", pread)


def test_the_log_is_big_and_indexed_once(big: tuple[Path, Path]) -> None:
    _, log = big
    assert log.stat().st_size > 50e6
    audit = AuditLog(log)
    t = time.perf_counter()
    audit.refresh()
    scan_s = time.perf_counter() - t
    assert audit.count("s7") == PER_STATION
    assert audit.end == log.stat().st_size
    print(f"indexed {log.stat().st_size / 1e6:.0f} MB in {scan_s:.2f} s")  # not asserted


def test_a_history_request_reads_only_its_stations_lines(
    client: tuple[TestClient, AuditLog], big: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, audit = client
    _, log = big
    spans = audit.spans("s7")  # the index: where s7's lines are, oldest first
    assert len(spans) == PER_STATION
    data = log.read_bytes()
    assert all(orjson.loads(data[o : o + n])["id"] == "s7" for o, n in spans)
    line_bytes = [n for _, n in spans]
    counter = CountingPread(monkeypatch)
    t = time.perf_counter()
    r = c.get("/stations/s7/history", params={"limit": 20})
    request_s = time.perf_counter() - t
    assert r.status_code == 200, r.text
    body = r.json()
    assert counter.bytes == sum(line_bytes[:20])  # those 20 lines, nothing else
    assert counter.calls == 20
    assert counter.bytes < log.stat().st_size / 1000
    print(
        f"one page of history from an {log.stat().st_size / 1e6:.0f} MB log: {request_s * 1e3:.1f} ms"
    )
    assert [e["changes"][0]["after"] for e in body["entries"][1:]] == [
        f"0371-{k:04d}" for k in range(1, 20)
    ]
    assert body["entries"][0]["action"] == "create"
    assert body["total"] == PER_STATION and body["next_cursor"] == 20
    assert body["next"] == "/stations/s7/history?cursor=20&limit=20"
    assert r.headers["link"] == '</stations/s7/history?cursor=20&limit=20>; rel="next"'
    assert body["entries"][0]["actor"] == {"role": "manager"}  # public: roles only


def test_pages_follow_each_other_and_match_a_full_scan(client: tuple[TestClient, AuditLog]) -> None:
    c, audit = client
    seen: list[dict[str, Any]] = []
    url: str | None = "/stations/s123/history?limit=15"
    while url is not None:
        body = c.get(url).json()
        seen.extend(body["entries"])
        url = body["next"]
    assert len(seen) == PER_STATION
    full = [r for r in _scan(audit.path) if r["id"] == "s123"]
    assert [e["etag_after"] for e in seen] == [r["etag_after"] for r in full]
    newest = c.get("/stations/s123/history", params={"order": "newest", "limit": 3}).json()
    assert [e["etag_after"] for e in newest["entries"]] == [r["etag_after"] for r in full[::-1][:3]]
    assert newest["next_cursor"] == 3
    # default: the first 100, oldest first; a history that fits shows whole, with no next
    body = c.get("/stations/s123/history").json()
    assert len(body["entries"]) == PER_STATION and body["next"] is None


def _scan(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_lines_appended_by_another_process_are_read(
    client: tuple[TestClient, AuditLog], big: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, _ = client
    _, log = big
    before = c.get("/stations/s9/history", params={"order": "newest", "limit": 1}).json()
    assert before["total"] == PER_STATION
    f = _versions(9)[-1]
    g = {**f, "properties": {**f["properties"], "phone": "elsewhere"}}
    with log.open("ab") as fh:  # as another process's AuditLog would
        fh.write(orjson.dumps(audit_entry("update", "s9", f, g, WHO, T0)) + b"\n")
    counter = CountingPread(monkeypatch)
    body = c.get("/stations/s9/history", params={"order": "newest", "limit": 1}).json()
    assert body["total"] == PER_STATION + 1
    assert body["entries"][0]["changes"][0]["after"] == "elsewhere"
    # only the new bytes were indexed (a tail check of the last line, the new line) and
    # the one line of the page read: not the log
    assert counter.bytes < 20_000


def test_limits_and_cursors_are_checked(client: tuple[TestClient, AuditLog]) -> None:
    c, _ = client
    for params in ({"limit": 0}, {"limit": 1001}, {"cursor": -1}, {"order": "sideways"}):
        r = c.get("/stations/s1/history", params=params)
        assert r.status_code == 422, (params, r.text)
    body = c.get("/stations/s1/history", params={"cursor": 10**6}).json()
    assert body["entries"] == [] and body["total"] == PER_STATION and body["next"] is None
    assert c.get("/stations/nope/history").status_code == 404


def test_a_replaced_or_shortened_log_is_indexed_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path)
    f = make_feature("a", 113.6, 34.7)
    g = {**f, "properties": {**f["properties"], "phone": "1"}}
    audit.append([audit_entry("update", "a", f, g, WHO, T0)])
    start = audit.append([audit_entry("update", "a", g, f, WHO, T0)])
    assert audit.count("a") == 2
    audit.truncate(start)
    assert audit.count("a") == 1
    # cut short and appended to again by someone else, to a larger size than before
    other = AuditLog(path)
    other.refresh()
    with path.open("rb+") as fh:
        fh.truncate(start)
    with path.open("ab") as fh:
        for fid in ("b", "c"):
            fh.write(orjson.dumps(audit_entry("create", fid, None, f, WHO, T0)) + b"\n")
    assert audit.count("a") == 1 and audit.count("b") == 1 and audit.count("c") == 1
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(orjson.dumps(audit_entry("create", "z", None, f, WHO, T0)) + b"\n")
    replacement.replace(path)
    assert audit.count("a") == 0 and audit.count("z") == 1


def test_a_torn_line_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    f = make_feature("a", 113.6, 34.7)
    line = orjson.dumps(audit_entry("create", "a", None, f, WHO, T0))
    path.write_bytes(line + b"\n" + line[:50])  # a writer died mid-line
    audit = AuditLog(path)
    assert audit.count("a") == 1
    audit.append([audit_entry("verify", "a", f, f, WHO, T0)])
    assert [r["action"] for r in audit.entries("a")] == ["create", "verify"]
    assert "torn audit line" in caplog.text


def test_cli_history_pages(
    client: tuple[TestClient, AuditLog],
    big: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg, _ = big
    monkeypatch.delenv("YIZHAN_STATE_DIR", raising=False)
    assert main(["history", "s5", "--registry", str(reg), "--limit", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in rows] == ["create", "update", "update"]
    assert "file" not in rows[0] and "after" not in rows[0]
    assert "3 of 50 changes" in err and "--cursor 3" in err
    assert main(["history", "s5", "--registry", str(reg), "--limit", "2", "--newest"]) == 0
    out, err = capsys.readouterr()
    assert out.count(" update ") == 2 and "0371-0049" in out
    assert main(["history", "s5", "--registry", str(reg), "--limit", "0"]) == 1
    assert "--limit" in capsys.readouterr().err
