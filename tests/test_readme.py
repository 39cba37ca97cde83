"""The README's curl examples run as written against the bundled registry, as `make serve`
serves it: every example that needs no token answers 2xx (the token examples are covered by
tests/test_editing.py and tests/test_buses.py)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server
from yizhan.api import create_app
from yizhan.settings import Settings
from yizhan.stations.registry import load_registry

REPO = Path(__file__).resolve().parent.parent


def public_examples() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.split("  #", 1)[0].strip()
        for line in text.splitlines()
        if line.startswith("curl ")
        and "Authorization" not in line
        and "$" not in line
        and "<" not in line
    ]


def test_the_readme_has_examples() -> None:
    assert len(public_examples()) >= 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"))
    srv = Server(create_app(settings, registry=load_registry(settings.registry)))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (apt-get install curl)")
@pytest.mark.parametrize("example", public_examples())
def test_readme_example_runs_as_written(server: Server, example: str, tmp_path: Path) -> None:
    cmd = shlex.split(example.replace("localhost:8000", f"127.0.0.1:{server.port}"))
    out = subprocess.run(
        [*cmd, "-sS", "-o", str(tmp_path / "body"), "-w", "%{http_code}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert out.stdout.startswith("2"), (example, out.stdout, out.stderr)
