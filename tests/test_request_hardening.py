"""Requests that used to answer 500 or change data silently (issue 15, item 20): offsets
past 64 bits, bodies nested hundreds deep, NaN/Infinity/huge numbers/lone surrogates in
properties; failed bearer tokens are rate-limited; a short bootstrap admin token is
refused; the published example of `POST /stations` is valid; the maps have a CSP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from yizhan.api import create_app
from yizhan.cli import main
from yizhan.routes.limits import json_problem
from yizhan.settings import DEFAULT_DISTRICTS, DEFAULT_REGISTRY, Settings

ADMIN = "hardening-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _app(tmp: Path, **overrides: Any) -> Any:
    shutil.copy(DEFAULT_REGISTRY, tmp / "reg.geojson")
    return create_app(
        Settings(
            registry=tmp / "reg.geojson",
            state_dir=tmp / "state",
            admin_token=ADMIN,
            reload_interval_s=0,
            **overrides,
        )
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path)) as c:
        yield c


def _first(client: TestClient) -> tuple[str, str]:
    fid = client.get("/stations", params={"limit": 1}).json()["features"][0]["id"]
    return fid, client.get(f"/stations/{fid}").headers["etag"]


def _patch(client: TestClient, fid: str, etag: str, body: bytes | str) -> Any:
    return client.patch(
        f"/stations/{fid}",
        content=body,
        headers={**AUTH, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )


# -- offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["18446744073709551616", "10000001", "-1", "1e3"])
def test_huge_offset_is_422_naming_it(client: TestClient, offset: str) -> None:
    r = client.get("/stations", params={"offset": offset})
    assert r.status_code == 422
    assert any(e["loc"] == ["query", "offset"] for e in r.json()["detail"])


# -- nesting and numbers ---------------------------------------------------------------------


def _nested(depth: int) -> str:
    """A merge patch with a property nested *depth* objects deep (as text: the standard
    library cannot even write the deepest)."""
    return '{"properties": {"note_tree": ' + '{"x": ' * depth + "{}" + "}" * depth + "}}"


@pytest.mark.parametrize("depth", [40, 255, 2000])
def test_deeply_nested_property_is_422_not_500(client: TestClient, depth: int) -> None:
    fid, etag = _first(client)
    before = client.get(f"/stations/{fid}").json()
    r = _patch(client, fid, etag, _nested(depth))
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"][:3] == ["body", "properties", "note_tree"] or err["loc"] == ["body"]
    assert "nested at most 32 levels" in err["msg"]
    assert client.get(f"/stations/{fid}").json() == before


def test_nesting_within_the_limit_is_accepted(client: TestClient) -> None:
    fid, etag = _first(client)
    r = _patch(client, fid, etag, _nested(20))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("literal", "words"),
    [
        ("NaN", "finite number, got NaN"),
        ("Infinity", "finite number, got Infinity"),
        ("-Infinity", "finite number, got -Infinity"),
        ("1e400", "finite number, got 1e400"),
        ("18446744073709551616", "integer of at most 64 bits"),
        ('"lone \\udc80"', "lone surrogate U+DC80"),
    ],
)
def test_unstorable_values_are_422_naming_the_field(
    client: TestClient, literal: str, words: str
) -> None:
    """Before: NaN and Infinity were stored as null, 1e400 too; a 65-bit integer or a lone
    surrogate answered 500."""
    fid, etag = _first(client)
    before = client.get(f"/stations/{fid}").json()
    r = _patch(client, fid, etag, f'{{"properties": {{"capacity_note": {literal}}}}}')
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", "properties", "capacity_note"]
    assert words in err["msg"]
    assert client.get(f"/stations/{fid}").json() == before


def test_nan_in_a_list_names_its_position(client: TestClient) -> None:
    r = client.post(
        "/analysis/site",
        content=b'{"n_new": 1, "candidates": [[113.6, 34.7], [113.7, NaN]]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "candidates", 1, 1]


def test_report_with_nan_location_is_422(client: TestClient) -> None:
    fid, _ = _first(client)
    r = client.post(
        f"/stations/{fid}/reports",
        content=b'{"code": "closed", "location": [NaN, 34.7]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "location", 0]


def test_malformed_json_keeps_the_frameworks_answer(client: TestClient) -> None:
    r = client.post(
        "/analysis/site", content=b'{"n_new": ', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_json_problem_finds_the_first_member() -> None:
    assert json_problem(b'{"a": 1, "b": [1, 2.5, "x"], "c": null}', 32) is None
    assert json_problem(b'{"a": [1, NaN], "b": Infinity}', 32) == (
        ["a", 1],
        "Expected a finite number, got NaN",
    )
    assert json_problem(b"[" * 33 + b"]" * 33, 32) is not None
    assert json_problem(b"[" * 32 + b"]" * 32, 32) is None
    assert json_problem(b"not json", 32) is None


# -- failed tokens ---------------------------------------------------------------------------


def test_failed_tokens_are_rate_limited(tmp_path: Path) -> None:
    app = _app(tmp_path, auth_failure_limit=3, auth_failure_window_s=600)
    with TestClient(app) as c:
        fid, etag = _first(c)
        bad = {"Authorization": "Bearer guess-0000000000", "If-Match": etag}
        codes = [c.patch(f"/stations/{fid}", json={}, headers=bad).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        r = c.patch(f"/stations/{fid}", json={}, headers=bad)
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 600
        # A right token from the same client is refused too, until the window moves on:
        # otherwise guessing would go on, only slower.
        r = c.post(f"/stations/{fid}/verify", headers=AUTH)
        assert r.status_code == 429
        # Other clients are not affected.
    with TestClient(app, client=("203.0.113.9", 5000)) as other:
        assert other.post(f"/stations/{fid}/verify", headers=AUTH).status_code == 200
        # Without a token nothing is counted or refused.
        assert other.get(f"/stations/{fid}/history").status_code == 200


def test_failed_tokens_are_counted_by_every_process(tmp_path: Path) -> None:
    """Two servers on one registry (two workers, or two replicas): a client guessing
    tokens against both is limited by their sum, not by each one's own count."""
    a = _app(tmp_path, auth_failure_limit=4, auth_failure_window_s=600)
    b = create_app(a.state.settings)  # the same storage, another process's app
    bad = {"Authorization": "Bearer guess-0000000000"}
    with TestClient(a) as ca, TestClient(b) as cb:
        fid, _ = _first(ca)
        codes = [c.post(f"/stations/{fid}/verify", headers=bad).status_code for c in (ca, cb)]
        codes += [c.post(f"/stations/{fid}/verify", headers=bad).status_code for c in (ca, cb)]
        assert codes == [401, 401, 401, 401]
        for c in (ca, cb):
            r = c.post(f"/stations/{fid}/verify", headers=AUTH)
            assert r.status_code == 429, r.text
            assert "invalid bearer tokens" in r.json()["detail"]


def test_429_for_tokens_is_documented(client: TestClient) -> None:
    ops = client.get("/openapi.json").json()["paths"]
    assert "429" in ops["/stations/{station_id}"]["patch"]["responses"]
    assert "429" in ops["/stations/{station_id}/history"]["get"]["responses"]


# -- the bootstrap admin token ---------------------------------------------------------------


def test_short_admin_token_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(admin_token="change-me")
    assert "YIZHAN_ADMIN_TOKEN" in str(info.value) and "at least 16" in str(info.value)
    assert Settings(admin_token="x" * 16).admin_token == "x" * 16
    assert Settings(admin_token="").admin_token is None


def test_serve_refuses_a_short_admin_token_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_server(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server was started with a short admin token")

    monkeypatch.setattr(uvicorn, "run", no_server)
    monkeypatch.setenv("YIZHAN_ADMIN_TOKEN", "change-me")
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "YIZHAN_ADMIN_TOKEN: Expected at least 16 characters" in err
    assert "Traceback" not in err


# -- the published example -------------------------------------------------------------------


def test_openapi_example_of_post_stations_is_valid(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/stations"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    (example,) = schema["examples"]
    r = client.post("/stations", json=example, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["name"] == example["properties"]["name"]


# -- maps: Content-Security-Policy -----------------------------------------------------------


def test_maps_have_a_content_security_policy(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, districts=DEFAULT_DISTRICTS)) as client:
        _check_map_csp(client)


def _check_map_csp(client: TestClient) -> None:
    for url in ("/maps/nearest?lon=113.65&lat=34.76", "/maps/coverage?radius_m=1500"):
        r = client.get(url)
        assert r.status_code == 200
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self' 'sha256-" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert "object-src 'none'" in csp and "base-uri 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    # A cached planner map keeps its policy.
    again = client.get("/maps/coverage?radius_m=1500")
    assert again.headers["Content-Security-Policy"] == r.headers["Content-Security-Policy"]
