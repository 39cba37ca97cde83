"""The README's curl examples run as written: every example that needs no token answers 2xx,
against the bundled registry as `make serve` serves it, and the walking examples against
the Helsinki demo as `make demo-helsinki` serves it (the token examples are covered by
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
from yizhan.network import build_network, save_network
from yizhan.settings import BUNDLED_DATA, Settings
from yizhan.stations.registry import load_registry

REPO = Path(__file__).resolve().parent.parent
NETWORK_DATA = REPO / "tests" / "data" / "network"


def is_helsinki(example: str) -> bool:
    """Examples of the Helsinki walking demo (`make demo-helsinki`)."""
    return "lon=24." in example or "metric=walk" in example or "/isochrone" in example


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


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The Helsinki demo with the settings of `make demo-helsinki`."""
    tmp = tmp_path_factory.mktemp("helsinki")
    network = save_network(
        tmp / "helsinki.network", build_network(NETWORK_DATA / "helsinki.osm.pbf")[0]
    )
    settings = Settings(
        registry=BUNDLED_DATA / "helsinki-amenities.geojson",
        network=network,
        districts=NETWORK_DATA / "helsinki-quarters.geojson",
        hex_size_m=100,
        timezone="Europe/Helsinki",
        state_dir=tmp / "state",
    )
    srv = Server(create_app(settings))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (apt-get install curl)")
@pytest.mark.parametrize("example", public_examples())
def test_readme_example_runs_as_written(
    request: pytest.FixtureRequest, example: str, tmp_path: Path
) -> None:
    srv: Server = request.getfixturevalue("helsinki" if is_helsinki(example) else "server")
    port = f"127.0.0.1:{srv.port}"
    cmd = shlex.split(example.replace("localhost:8000", port).replace("127.0.0.1:8000", port))
    out = subprocess.run(
        [*cmd, "-sS", "-o", str(tmp_path / "body"), "-w", "%{http_code}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert out.stdout.startswith("2"), (example, out.stdout, out.stderr)
