"""Shared fixtures (small registries built in memory) and the CI rule for skips.

Under ``CI=true`` a test that would be skipped because a component it needs is missing
(Chromium, Playwright, the fetched map assets, PostgreSQL, a Python package) fails
instead: CI must never pass without running the browser, asset and database tests.
Elsewhere such tests skip with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pgcluster import Cluster, ClusterUnavailableError, start_cluster
from yizhan.network import build_network, save_network
from yizhan.query.walking import Walking
from yizhan.settings import Settings

#: The OpenStreetMap extract of central Helsinki (ODbL, tests/data/network/SOURCE.md).
HELSINKI_PBF = Path(__file__).resolve().parent / "data" / "network" / "helsinki.osm.pbf"

Feature = dict[str, Any]

#: The rule that missing components fail under CI=true (tests/ci_skips.py).
pytest_plugins = ["tests.ci_skips"]


def make_feature(fid: str, lon: float, lat: float, **props: Any) -> Feature:
    """A station Feature; ``props`` override the defaults (name from the id, kind station)."""
    properties: dict[str, Any] = {"name": f"Station {fid}", "kind": "station"}
    properties.update(props)
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def make_doc(features: list[Feature], **meta: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", **meta, "features": features}


@pytest.fixture
def feature() -> Callable[..., Feature]:
    return make_feature


@pytest.fixture
def small_doc() -> dict[str, Any]:
    """Ten stations along a line in Zhengzhou (~1 km apart), alternating amenities."""
    feats = []
    for i in range(10):
        amen = ["drinking_water", "toilet"] if i % 2 else ["seating"]
        feats.append(
            make_feature(
                f"zz-{i:02d}",
                113.60 + i * 0.01,
                34.75,
                amenities=amen,
                district="中原区" if i < 5 else "金水区",
            )
        )
    feats[3]["properties"]["status"] = "temporarily_closed"
    feats[7]["properties"]["category"] = "bank_outlet"
    return make_doc(feats, name="test registry")


def make_stop(stop_id: str, lon: float, lat: float, hours: str, **extra: Any) -> dict[str, Any]:
    """A cooling-bus stop standing at ``[lon, lat]`` during ``hours``."""
    return {
        "stop_id": stop_id,
        "name": f"Stop {stop_id}",
        "location": [lon, lat],
        "opening_hours": hours,
        **extra,
    }


def make_bus(
    fid: str, stops: list[dict[str, Any]], operator: str = "op-a", **props: Any
) -> Feature:
    """A cooling bus Feature whose geometry is the MultiPoint of its stops."""
    properties: dict[str, Any] = {
        "name": f"Bus {fid}",
        "kind": "cooling_bus",
        "operator": operator,
        "stops": stops,
    }
    properties.update(props)
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "MultiPoint", "coordinates": [list(s["location"]) for s in stops]},
        "properties": properties,
    }


@pytest.fixture
def bus_doc(small_doc: dict[str, Any]) -> dict[str, Any]:
    """``small_doc`` plus two buses: ``bus-1`` (op-a) moves between two stops every day
    (10:00-12:00 at s1 near zz-02, 13:00-16:00 at s2 near zz-07); ``bus-2`` (op-b) stands
    at one stop on weekdays 09:00-17:00."""
    doc = {**small_doc, "features": list(small_doc["features"])}
    doc["features"].append(
        make_bus(
            "bus-1",
            [
                make_stop("s1", 113.621, 34.751, "Mo-Su 10:00-12:00"),
                make_stop("s2", 113.671, 34.751, "Mo-Su 13:00-16:00"),
            ],
            amenities=["drinking_water", "air_conditioning"],
        )
    )
    doc["features"].append(
        make_bus("bus-2", [make_stop("t1", 113.70, 34.76, "Mo-Fr 09:00-17:00")], operator="op-b")
    )
    return doc


@pytest.fixture(autouse=True)
def _state_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep tokens, reports, audit logs and placements of the bundled registry out of data/."""
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(tmp_path_factory.mktemp("state")))


def run_together(script: str, *args: str, names: tuple[str, ...] = ("p", "q")) -> list[str]:
    """Run *script* (``python -c``) once per name with ``*args, name``, all at the same moment.

    Each process prints ``ready`` once it has imported what it needs and then waits for the
    file ``args[1]`` (the "go" file) to exist; everything it prints afterwards is returned,
    one string per process. Every process must exit 0.
    """
    import subprocess
    import sys
    from pathlib import Path

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args, name],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for p in procs:  # all imported and waiting: start them together
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    Path(args[1]).touch()
    outputs = []
    for p in procs:
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0
        outputs.append(out)
    return outputs


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL + PostGIS cluster for the session (tests/pgcluster.py); skips
    with the reason when PostgreSQL is not installed (a failure under CI=true)."""
    try:
        cluster = start_cluster()
    except ClusterUnavailableError as exc:
        pytest.skip(str(exc) if str(exc).startswith("needs ") else f"needs PostgreSQL: {exc}")
    try:
        yield cluster
    finally:
        cluster.remove()


ROOT = Path(__file__).resolve().parent.parent


def _source_copy(dest: Path) -> Path:
    """The files a wheel is built from (a copy: building writes build/ and egg-info)."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "yizhan", src / "yizhan", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return src


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the working tree, built offline (no build isolation, no index)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp)
    r = subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"),
            *("-q", "-w", str(tmp / "dist"), str(src)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (built,) = (tmp / "dist").glob("yizhan-*.whl")
    return built


@pytest.fixture(scope="session")
def network_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The walking network of the central Helsinki extract (tests/data/network), built once."""
    out = tmp_path_factory.mktemp("net") / "helsinki.network"
    save_network(out, build_network(HELSINKI_PBF)[0])
    return out


@pytest.fixture(scope="session")
def walking(network_file: Path) -> Walking:
    """:func:`network_file` loaded as the server loads it (default speed and snap limit)."""
    return Walking.load(network_file, Settings())
