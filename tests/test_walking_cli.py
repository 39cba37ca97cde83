"""Walking in the CLI on the Helsinki demo: nearest --metric walk, validate --network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yizhan.cli import main
from yizhan.settings import BUNDLED_DATA

DATA = Path(__file__).resolve().parent / "data" / "network"
REGISTRY = BUNDLED_DATA / "helsinki-amenities.geojson"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("YIZHAN_TIMEZONE", "Europe/Helsinki")
    monkeypatch.delenv("YIZHAN_NETWORK", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_nearest_metric_walk(network_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["nearest", "--registry", str(REGISTRY), "--lon", "24.9445", "--lat", "60.1675"]
    code, out, _ = run(
        capsys, *base, "-k", "3", "--metric", "walk", "--network", str(network_file), "--json"
    )
    assert code == 0
    feats = json.loads(out)["features"]
    walks = [f["properties"]["walk_m"] for f in feats]
    assert len(feats) == 3 and walks == sorted(walks)
    assert all(f["properties"]["walk_m"] >= f["properties"]["distance_m"] - 0.01 for f in feats)
    code, out, _ = run(capsys, *base, "-k", "3", "--metric", "walk", "--network", str(network_file))
    assert code == 0 and "on foot" in out and feats[0]["id"] in out.splitlines()[0]
    # no network: an error naming metric, not a silent great-circle answer
    code, out, err = run(capsys, *base, "--metric", "walk")
    assert code != 0 and "metric" in err and out == ""
    # outside the network's area
    far = ["nearest", "--registry", str(REGISTRY), "--lon", "24.99", "--lat", "60.13"]
    code, _, err = run(capsys, *far, "--metric", "walk", "--network", str(network_file))
    assert code != 0 and "lon/lat" in err and "outside" in err


def test_validate_flags_stations_far_from_the_network(
    network_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(REGISTRY.read_text(encoding="utf-8"))
    far = json.loads(json.dumps(doc["features"][0]))
    far["id"] = "hki-in-the-sea"
    far["geometry"]["coordinates"] = [24.99, 60.13]
    doc["features"].append(far)
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(path), "--network", str(network_file))
    assert code == 0
    assert "hki-in-the-sea" in out and "1 stations farther than 300 m" in out
    code, out, _ = run(capsys, "validate", str(path), "--network", str(network_file), "--json")
    rows = json.loads(out)["far_from_network"]
    assert [r["id"] for r in rows] == ["hki-in-the-sea"] and rows[0]["snap_m"] > 300
    # a small enough limit flags stations in courtyards too; the bundled one has none past 300 m
    code, out, _ = run(capsys, "validate", str(REGISTRY), "--network", str(network_file), "--json")
    assert json.loads(out)["far_from_network"] == []
    code, out, _ = run(
        capsys, "validate", str(path), "--network", str(network_file), "--max-snap-m", "1", "--json"
    )
    assert len(json.loads(out)["far_from_network"]) > 1


def test_serve_with_a_missing_network_stops_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "serve", "--registry", str(REGISTRY), "--network", str(tmp_path / "nope.network")
    )
    assert code == 2 and "--network" in err and "no such file" in err
