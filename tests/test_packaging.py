"""The package as users install it: a wheel carries the bundled registry, districts, pages and
map assets, and an installed copy serves them from any directory (not the repository)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_data_pages_and_assets(built_wheel: Path) -> None:
    names = set(zipfile.ZipFile(built_wheel).namelist())
    for needed in (
        "yizhan/data/zhengzhou.geojson",
        "yizhan/data/zhengzhou-districts.geojson",
        "yizhan/data/SOURCES.md",
        "yizhan/py.typed",
    ):
        assert needed in names
    assert any(n.startswith("yizhan/web/templates/") for n in names)
    assert any(n.startswith("yizhan/web/static/") for n in names)
    assert any(n.startswith("yizhan/maps/static/vendor/") and n.endswith(".js") for n in names)
    # state kept beside a served registry never ships
    assert not any(n.endswith((".audit.jsonl", ".tokens.json", ".lock")) for n in names)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed_server(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The wheel unpacked into a directory of its own (its dependencies from this
    environment), started as `python -m yizhan serve` from an unrelated directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(built_wheel),
        ],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = {**os.environ, "PYTHONPATH": str(target), "YIZHAN_STATE_DIR": str(elsewhere / "state")}
    env.pop("YIZHAN_REGISTRY", None)
    where = subprocess.run(
        [sys.executable, "-c", "import yizhan; print(yizhan.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(target)), where  # the installed copy, not the checkout
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "yizhan", "serve", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail(
                    f"the installed server exited: {proc.stderr.read() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        else:
            pytest.fail("the installed server did not answer /health within 30 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/nearest?lon=113.65&lat=34.76&k=3", lambda r: len(r.json()["features"]) == 3),
        ("/stations?limit=1", lambda r: r.json()["numberMatched"] >= 82),
        ("/find?lon=113.65&lat=34.76", lambda r: "<html" in r.text.lower()),
        ("/maps/nearest?lon=113.65&lat=34.76", lambda r: "leaflet" in r.text.lower()),
        ("/coverage", lambda r: r.json()["n_demand"] > 0 and "covered_weight_pct" in r.json()),
    ],
)
def test_installed_copy_serves_the_bundled_registry(
    installed_server: str, path: str, check
) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(installed_server + path, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert check(r)


def test_installed_copy_serves_map_assets(installed_server: str) -> None:
    html = httpx.get(installed_server + "/maps/nearest?lon=113.65&lat=34.76", timeout=30).text
    srcs = re.findall(r'src="(/static/[^"]+\.js)"', html)
    assert srcs, "the map loads its scripts from this server"
    for src in srcs:
        assert httpx.get(installed_server + src, timeout=10).status_code == 200, src
