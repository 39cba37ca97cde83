"""Roles and bearer tokens: the authorization table, the token store (hashing, revocation,
legacy and bootstrap tokens, reloading, corrupt files, concurrent writers) and
``yizhan token create|list|revoke``."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import stat
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_together
from tests.helpers import SetClock
from yizhan.cli import tokens as token_cli
from yizhan.errors import InvalidInputError, NotFoundError, YizhanError
from yizhan.stations.tokens import (
    PUBLIC,
    Principal,
    TokenStore,
    may_create,
    may_edit,
    may_list_all_reports,
    may_move_bus,
    may_read_reports,
    may_remove,
    may_verify,
)

ROOT = Path(__file__).resolve().parent.parent


T0 = datetime(2026, 7, 15, 8, 0, tzinfo=UTC)

# -- the authorization table -------------------------------------------------------------

WHO = {
    "public": PUBLIC,
    "manager": Principal("Li", "manager", stations=frozenset({"s1", "s4"})),
    "operator": Principal("Bus Co A", "operator", operator="OpA"),
    "admin": Principal("root", "admin"),
}

# Targets of the station actions: (station id, its operator).
TARGETS = [("s1", "OpA"), ("s2", "OpB"), ("s3", None), ("s4", None), ("s5", "OpA")]
# Expected answer per target, in the order of TARGETS: Y yes, n no.
STATION_TABLE: dict[str, dict[str, str]] = {
    "edit": {"public": "nnnnn", "manager": "YnnYn", "operator": "YnnnY", "admin": "YYYYY"},
    "verify": {"public": "nnnnn", "manager": "YnnYn", "operator": "YnnnY", "admin": "YYYYY"},
    "read_reports": {
        "public": "nnnnn",
        "manager": "YnnYn",
        "operator": "YnnnY",
        "admin": "YYYYY",
    },
    "remove": {"public": "nnnnn", "manager": "nnnnn", "operator": "YnnnY", "admin": "YYYYY"},
}
STATION_ACTIONS: dict[str, Callable[[Principal, str, str | None], bool]] = {
    "edit": may_edit,
    "verify": may_verify,
    "read_reports": may_read_reports,
    "remove": may_remove,
}
# Actions on an operator name: (OpA, OpB, None).
OPERATOR_TABLE: dict[str, dict[str, str]] = {
    "create": {"public": "nnn", "manager": "nnn", "operator": "Ynn", "admin": "YYY"},
    "move_bus": {"public": "nnn", "manager": "nnn", "operator": "Ynn", "admin": "YYY"},
}
OPERATOR_ACTIONS: dict[str, Callable[[Principal, str | None], bool]] = {
    "create": may_create,
    "move_bus": may_move_bus,
}


@pytest.mark.parametrize(
    ("action", "role", "target", "expected"),
    [
        (action, role, target, answers[k] == "Y")
        for action, by_role in STATION_TABLE.items()
        for role, answers in by_role.items()
        for k, target in enumerate(TARGETS)
    ],
)
def test_station_authorization_table(
    action: str, role: str, target: tuple[str, str | None], expected: bool
) -> None:
    assert STATION_ACTIONS[action](WHO[role], *target) is expected


@pytest.mark.parametrize(
    ("action", "role", "operator", "expected"),
    [
        (action, role, op, answers[k] == "Y")
        for action, by_role in OPERATOR_TABLE.items()
        for role, answers in by_role.items()
        for k, op in enumerate(["OpA", "OpB", None])
    ],
)
def test_operator_authorization_table(
    action: str, role: str, operator: str | None, expected: bool
) -> None:
    assert OPERATOR_ACTIONS[action](WHO[role], operator) is expected


@pytest.mark.parametrize(
    ("role", "expected"),
    [("public", False), ("manager", False), ("operator", False), ("admin", True)],
)
def test_only_admins_list_every_report(role: str, expected: bool) -> None:
    assert may_list_all_reports(WHO[role]) is expected
    assert WHO[role].admin is expected


def test_an_operator_without_a_name_matches_nothing() -> None:
    nameless = Principal("x", "operator")
    assert not may_edit(nameless, "s3", None)
    assert not may_create(nameless, None)
    assert not may_move_bus(nameless, None)


# -- the token store ---------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "r.geojson.tokens.json"


def test_create_stores_only_a_hash_and_authenticates(path: Path) -> None:
    store = TokenStore(path, clock=SetClock(T0))
    token, rec = store.create("manager", name=" Li Wei ", stations=["s1", "s2", "s1"])
    assert token.startswith("yz_") and len(token) == 3 + 43
    assert rec.token_id.startswith("tok_") and rec.name == "Li Wei"
    assert rec.stations == ("s1", "s2") and rec.created_at == T0
    doc = json.loads(path.read_text())
    assert doc["type"] == "yizhan-tokens"
    [entry] = doc["tokens"]
    assert entry["hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.authenticate(token) == Principal(
        "Li Wei", "manager", frozenset({"s1", "s2"}), None, rec.token_id
    )
    # A new process (a restart) knows it too.
    assert TokenStore(path).authenticate(token) == store.authenticate(token)
    assert store.authenticate(token[:-1]) is None
    assert store.authenticate(token + "x") is None
    assert store.authenticate("") is None


def test_records_never_show_the_hash_or_the_token(path: Path) -> None:
    store = TokenStore(path)
    token, rec = store.create("operator", name="dispatcher", operator="OpA")
    digest = hashlib.sha256(token.encode()).hexdigest()
    [listed] = store.records()
    assert listed == rec
    for text in (repr(listed), str(listed), json.dumps(listed.as_dict()), repr(store)):
        assert digest not in text and token not in text
    assert set(listed.as_dict()) == {
        "id",
        "role",
        "name",
        "stations",
        "operator",
        "created_at",
        "revoked_at",
    }


def test_revoke_refuses_the_token_and_keeps_the_first_time(path: Path) -> None:
    clock = SetClock(T0)
    store = TokenStore(path, clock=clock)
    token, rec = store.create("admin", name="ops")
    other, _ = store.create("admin", name="ops 2")
    clock.now = T0 + timedelta(hours=1)
    revoked = store.revoke(rec.token_id)
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    assert store.authenticate(token) is None
    assert store.authenticate(other) is not None
    clock.now = T0 + timedelta(hours=2)
    assert store.revoke(rec.token_id).revoked_at == T0 + timedelta(hours=1)
    assert TokenStore(path).authenticate(token) is None
    assert [r.revoked for r in TokenStore(path).records()] == [True, False]
    with pytest.raises(NotFoundError, match="no token with id 'tok_nope'"):
        store.revoke("tok_nope")


CREATE_ERRORS = [
    # (role, name, stations, operator, field, words)
    ("public", "x", [], None, "role", "the public needs no token"),
    ("root", "x", [], None, "role", "Expected one of manager, operator, admin, got 'root'"),
    ("manager", "x", [], None, "stations", "at least one station"),
    ("manager", "x", ["  "], None, "stations", "non-empty station ids"),
    ("manager", "x", ["s1"], "OpA", "operator", "no operator for a manager token"),
    ("operator", "x", [], None, "operator", "Expected the operator name"),
    ("operator", "x", [], "  ", "operator", "Expected the operator name"),
    ("operator", "x", ["s1"], "OpA", "stations", "no stations for an operator token"),
    ("admin", "x", ["s1"], None, "stations", "no stations for an admin token"),
    ("admin", "x", [], "OpA", "operator", "no operator for an admin token"),
    ("admin", "", [], None, "name", "Expected a non-empty name"),
    ("admin", "a\x00b", [], None, "name", "without control characters"),
    ("admin", "a" * 201, [], None, "name", "at most 200 characters, got 201"),
]


@pytest.mark.parametrize(("role", "name", "stations", "operator", "field", "words"), CREATE_ERRORS)
def test_bad_tokens_name_the_field(
    path: Path,
    role: str,
    name: str,
    stations: list[str],
    operator: str | None,
    field: str,
    words: str,
) -> None:
    store = TokenStore(path)
    with pytest.raises(InvalidInputError) as info:
        store.create(role, name=name, stations=stations, operator=operator)
    assert info.value.field == field and words in info.value.message
    assert not path.exists()


LEGACY = [
    # (token, expected principal or None)
    ("boot-secret", Principal("admin (YIZHAN_ADMIN_TOKEN)", "admin")),
    ("old-admin", Principal("admin (YIZHAN_ADMIN_TOKENS[1])", "admin")),
    ("op-secret", Principal("OpA", "operator", operator="OpA")),
    ("op-secret-b", Principal("OpB", "operator", operator="OpB")),
    ("boot-secre", None),
    ("OLD-ADMIN", None),
    ("", None),
    ("令牌", None),
    ("\udcff", None),
]


@pytest.mark.parametrize(("token", "expected"), LEGACY)
def test_bootstrap_and_legacy_tokens(path: Path, token: str, expected: Principal | None) -> None:
    store = TokenStore(
        path,
        admin_token="boot-secret",
        legacy_admin_tokens=["", "old-admin"],
        legacy_operator_tokens={"op-secret": "OpA", "op-secret-b": "OpB"},
    )
    assert store.authenticate(token) == expected
    assert not path.exists()  # nothing is written for them


def test_memory_only_store(tmp_path: Path) -> None:
    store = TokenStore(None)
    token, rec = store.create("operator", name="d", operator="OpA")
    assert store.authenticate(token) == rec.principal()
    store.revoke(rec.token_id)
    assert store.authenticate(token) is None
    assert list(tmp_path.iterdir()) == []


def test_server_sees_tokens_created_and_revoked_by_another_process(path: Path) -> None:
    server = TokenStore(path, admin_token="boot")
    cli = TokenStore(path)
    token, rec = cli.create("manager", name="Li", stations=["s1"])
    assert server.authenticate(token) == rec.principal()
    cli.revoke(rec.token_id)
    assert server.authenticate(token) is None
    assert [r.revoked for r in server.records()] == [True]
    # The server's own writes keep what the other process wrote.
    token2, _ = server.create("admin", name="a2")
    assert {r.name for r in cli.records()} == {"Li", "a2"}
    assert cli.authenticate(token2) is not None


def test_deleted_file_means_no_stored_tokens(path: Path) -> None:
    store = TokenStore(path)
    token, _ = store.create("admin", name="a")
    path.unlink()
    assert store.authenticate(token) is None


CORRUPT = [
    # (content, words)
    ("{not json", "not valid JSON"),
    ('{"tokens": 3}', "Expected an object with a list 'tokens'"),
    ('{"tokens": [{"id": "tok_1", "hash": "abc"}]}', "tokens[0].hash: Expected 64 hex digits"),
    (
        '{"tokens": [{"id": "tok_1", "hash": "' + "a" * 64 + '", "role": "root", "name": "x"}]}',
        "tokens[0].role: Expected one of manager, operator, admin, got 'root'",
    ),
    (
        '{"tokens": [{"id": "tok_1", "hash": "' + "a" * 64 + '", "role": "admin", "name": "x", '
        '"created_at": "2026-07-15T08:00"}]}',
        "tokens[0].created_at: Expected a time with a UTC offset",
    ),
]


@pytest.mark.parametrize(("content", "words"), CORRUPT)
def test_a_corrupt_file_at_start_is_refused_naming_it(path: Path, content: str, words: str) -> None:
    path.write_text(content)
    with pytest.raises(InvalidInputError) as info:
        TokenStore(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_duplicate_ids_are_refused(path: Path) -> None:
    store = TokenStore(path)
    store.create("admin", name="a")
    doc = json.loads(path.read_text())
    doc["tokens"].append(doc["tokens"][0])
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match="Expected unique ids"):
        TokenStore(path)


def test_a_file_turning_corrupt_keeps_the_last_good_tokens(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore(path)
    token, _ = store.create("admin", name="a")
    good = path.read_text()
    path.write_text("{oops")
    with caplog.at_level(logging.ERROR, logger="yizhan"):
        assert store.authenticate(token) is not None
        assert store.authenticate(token) is not None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "keeping the last good tokens" in errors[0].getMessage()
    assert str(path) in errors[0].getMessage()
    # Writing never overwrites a corrupt file.
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        store.create("admin", name="b")
    assert path.read_text() == "{oops"
    # Fixed again: read again.
    path.write_text(good.replace('"name": "a"', '"name": "renamed"'))
    assert store.authenticate(token) == Principal(
        "renamed", "admin", token_id=store.records()[0].token_id
    )


def test_threads_creating_at_once_keep_every_token(path: Path) -> None:
    store = TokenStore(path)
    made: list[str] = []

    def work() -> None:
        for _ in range(10):
            made.append(store.create("admin", name="t")[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = TokenStore(path)
    assert len(fresh.records()) == 40
    assert all(fresh.authenticate(tok) is not None for tok in made)


CREATOR = """
import sys, time
from pathlib import Path
from yizhan.stations.tokens import TokenStore
path, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
store = TokenStore(path)
for i in range(15):
    print(store.create("admin", name=f"{name}-{i}")[0], flush=True)
"""


def test_two_processes_creating_at_once_keep_every_token(path: Path, tmp_path: Path) -> None:
    outputs = run_together(CREATOR, str(path), str(tmp_path / "go"))
    tokens = [t for out in outputs for t in out.split()]
    store = TokenStore(path)
    assert len(tokens) == 30 and len(store.records()) == 30
    assert {r.name for r in store.records()} == {f"{n}-{i}" for n in "pq" for i in range(15)}
    assert all(store.authenticate(t) is not None for t in tokens)


# -- yizhan token ------------------------------------------------------------------------


@pytest.fixture
def registry_file(
    tmp_path: Path, small_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Path:
    for var in ("YIZHAN_STATE_DIR", "YIZHAN_ADMIN_TOKENS", "YIZHAN_OPERATOR_TOKENS"):
        monkeypatch.delenv(var, raising=False)
    small_doc["features"][2]["properties"]["operator"] = "郑州公交"
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps(small_doc, ensure_ascii=False), encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``yizhan token …`` through this module's parsers, as ``yizhan.cli.main`` does."""
    parser = argparse.ArgumentParser(prog="yizhan")
    sub = parser.add_subparsers(dest="command", required=True)
    token_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except YizhanError as exc:
        print(f"yizhan {args.command}: {exc}", file=sys.stderr)
        code = 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_create_prints_the_token_once(
    registry_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "token",
            "create",
            "--role",
            "manager",
            "--station",
            "zz-01",
            "--station",
            "zz-02",
            "--name",
            "Li Wei",
            "--registry",
            str(registry_file),
        ],
        capsys,
    )
    assert code == 0
    [token] = out.splitlines()
    assert "cannot be shown again" in err and "edit and verify stations zz-01, zz-02" in err
    tokens_file = registry_file.with_name("r.geojson.tokens.json")
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    who = TokenStore(tokens_file).authenticate(token)
    assert who is not None and who.stations == {"zz-01", "zz-02"} and who.name == "Li Wei"
    # list never shows it again, nor its hash
    digest = hashlib.sha256(token.encode()).hexdigest()
    for argv in (["token", "list"], ["token", "list", "--json"]):
        code, out, err = run([*argv, "--registry", str(registry_file)], capsys)
        assert code == 0 and "Li Wei" in out
        assert token not in out + err and digest not in out + err


def test_cli_state_dir_decides_where_tokens_live(
    registry_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(tmp_path / "state"))
    code, _, _ = run(
        ["token", "create", "--role", "admin", "--name", "a", "--registry", str(registry_file)],
        capsys,
    )
    assert code == 0
    assert (tmp_path / "state" / "r.geojson.tokens.json").exists()
    assert not registry_file.with_name("r.geojson.tokens.json").exists()


CLI_ERRORS = [
    # (arguments after `token create`, words in the message)
    (
        ["--role", "manager", "--station", "zz-01", "--station", "nope", "--name", "x"],
        "--station: Expected ids of stations in",
    ),
    (["--role", "manager", "--station", "zz-1", "--name", "x"], "'zz-1' (did you mean"),
    (["--role", "manager", "--name", "x"], "stations: Expected at least one station id"),
    (["--role", "operator", "--name", "x"], "operator: Expected the operator name"),
    (["--role", "admin", "--station", "zz-01", "--name", "x"], "stations: Expected no stations"),
    (["--role", "admin", "--name", " "], "name: Expected a non-empty name"),
]


@pytest.mark.parametrize(("argv", "words"), CLI_ERRORS)
def test_cli_create_errors_exit_non_zero_with_a_message(
    registry_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, out, err = run(["token", "create", *argv, "--registry", str(registry_file)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("yizhan token: ") and words in err and "Traceback" not in err
    assert not registry_file.with_name("r.geojson.tokens.json").exists()


@pytest.mark.parametrize(
    ("operator", "warned"), [("郑州公交", False), ("郑州公交集团", True), ("Nobody", True)]
)
def test_cli_warns_about_an_unknown_operator(
    registry_file: Path, capsys: pytest.CaptureFixture[str], operator: str, warned: bool
) -> None:
    code, out, err = run(
        [
            "token",
            "create",
            "--role",
            "operator",
            "--operator",
            operator,
            "--name",
            "d",
            "--registry",
            str(registry_file),
        ],
        capsys,
    )
    assert code == 0 and len(out.splitlines()) == 1
    assert ("warning: no station or bus" in err) is warned
    assert ("similar: '郑州公交'" in err) is (operator == "郑州公交集团")


def test_cli_list_and_revoke(registry_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = ["--registry", str(registry_file)]
    run(["token", "create", "--role", "admin", "--name", "root", *reg], capsys)
    run(
        ["token", "create", "--role", "operator", "--operator", "郑州公交", "--name", "d", *reg],
        capsys,
    )
    code, out, _ = run(["token", "list", "--json", *reg], capsys)
    listed = json.loads(out)
    assert [(t["role"], t["name"], t["operator"], t["revoked_at"]) for t in listed] == [
        ("admin", "root", None, None),
        ("operator", "d", "郑州公交", None),
    ]
    code, out, _ = run(["token", "revoke", listed[0]["id"], *reg], capsys)
    assert code == 0 and out.startswith(f"revoked {listed[0]['id']}")
    code, out, _ = run(["token", "revoke", listed[0]["id"], *reg], capsys)
    assert code == 0 and "already revoked" in out
    code, out, _ = run(["token", "list", *reg], capsys)
    header, first, second = out.splitlines()
    assert header.split()[:3] == ["ID", "ROLE", "NAME"]
    assert first.startswith(listed[0]["id"]) and first.split()[-1] != "-"
    assert second.split()[-1] == "-" and "郑州公交" in second
    code, out, err = run(["token", "revoke", "tok_nope", *reg], capsys)
    assert code == 1 and "no token with id 'tok_nope'" in err


def test_cli_list_mentions_tokens_from_settings(
    registry_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YIZHAN_ADMIN_TOKENS", '["secret-admin"]')
    code, out, err = run(["token", "list", "--registry", str(registry_file)], capsys)
    assert code == 0 and "1 tokens from YIZHAN_ADMIN_TOKENS" in err
    assert "secret-admin" not in out + err


def test_cli_through_main(registry_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``yizhan token`` is registered in ``yizhan.cli.main``."""
    from yizhan.cli import main

    reg = ["--registry", str(registry_file)]
    assert main(["token", "create", "--role", "admin", "--name", "root", *reg]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["token", "list", "--json", *reg]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "root" and token not in json.dumps(listed)
    assert (
        main(["token", "create", "--role", "manager", "--station", "x", "--name", "m", *reg]) == 1
    )
    assert "yizhan token: --station: Expected ids of stations" in capsys.readouterr().err
