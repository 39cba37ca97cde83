"""Coverage, gaps and siting by walking on the Helsinki demo (real OSM extract), checked
against an independent per-point computation and against great-circle coverage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from yizhan.api import create_app
from yizhan.cli import main
from yizhan.geo.coverage import coverage
from yizhan.geo.siting import site_mclp
from yizhan.query.studies import StudySpec, load_study
from yizhan.query.walk_studies import walk_coverage, walk_gap_polygons, walk_siting_inputs
from yizhan.query.walking import Walking
from yizhan.settings import BUNDLED_DATA, Settings
from yizhan.stations.registry import load_registry

DATA = Path(__file__).resolve().parent / "data" / "network"
REGISTRY = BUNDLED_DATA / "helsinki-amenities.geojson"
QUARTERS = DATA / "helsinki-quarters.geojson"


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("YIZHAN_NETWORK", raising=False)


def demand():  # type: ignore[no-untyped-def]
    return load_study(StudySpec(districts=QUARTERS, hex_size_m=100.0)).demand


def test_walk_coverage_matches_point_to_point_walks(walking: Walking) -> None:
    reg = load_registry(REGISTRY)
    d = demand()
    res = walk_coverage(walking, reg, d, minutes=5)
    assert res.radius_m == pytest.approx(375.0)
    net = walking.network
    stations = net.snap(reg.lon, reg.lat)
    walks = net.walk_m(net.snap(d.lon, d.lat), stations, math.inf)  # demand × stations
    # walk_m is symmetric: from each demand point to every station, its minimum
    best = walks.min(axis=1)
    finite = best <= 2000
    assert np.allclose(res.nearest_distance_m[finite], best[finite], atol=1e-6)
    assert np.array_equal(res.covered, best <= 375.0)
    gc = coverage(reg, d, 375.0)
    # great circle is a lower bound: never less covered by circles than on foot
    assert np.all(gc.nearest_distance_m <= res.nearest_distance_m + 1e-6)
    assert gc.covered_weight_pct >= res.covered_weight_pct


def test_walk_siting_uses_walking_cover_sets(walking: Walking) -> None:
    reg = load_registry(REGISTRY)
    d = demand()
    sub = reg.lon < 24.944  # the western stations only: room for new ones
    radius, cover, covered = walk_siting_inputs(walking, reg.lon[sub], reg.lat[sub], d, 5)
    res = site_mclp(
        d, reg.lon[sub], reg.lat[sub], n_new=2, radius_m=radius, cover=cover, covered=covered
    )
    before = walk_coverage(walking, (reg.lon[sub], reg.lat[sub]), d, 5)
    assert res.covered_before_pct == pytest.approx(before.covered_weight_pct)
    lon = np.concatenate([reg.lon[sub], res.lon])
    lat = np.concatenate([reg.lat[sub], res.lat])
    after = walk_coverage(walking, (lon, lat), d, 5)
    assert res.covered_after_pct == pytest.approx(after.covered_weight_pct)
    assert res.covered_after_pct > res.covered_before_pct


def test_walk_gaps_hold_the_uncovered_demand(walking: Walking) -> None:
    reg = load_registry(REGISTRY)
    d = demand()
    study = load_study(StudySpec(districts=QUARTERS, hex_size_m=100.0))
    gaps = walk_gap_polygons(walking, study.area, reg.lon, reg.lat, 5)
    res = walk_coverage(walking, reg, d, 5)
    pts = shapely.points(d.lon, d.lat)
    inside = shapely.covers(gaps.buffer(1e-6), pts)
    # A point not reached within 5 minutes lies in a gap, unless it is inside a block
    # whose streets are all reachable (the areas take such blocks whole: docs/walking.md).
    # A reached point near a street (within the areas' 25 m half-width) is outside every
    # gap; one deep inside a block may be in one.
    assert inside[~res.covered].mean() > 0.9
    snap_m = walking.network.snap(d.lon, d.lat).snap_m
    near_street = res.covered & (snap_m <= 20) & (res.nearest_distance_m < 370)
    assert near_street.sum() > 20
    assert not inside[near_street].any()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_coverage_metric_walk_side_by_side(
    network_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["coverage", str(REGISTRY), "--districts", str(QUARTERS), "--hex-size-m", "100", "-q"]
    code, out, _ = run(
        capsys,
        *base,
        "--metric",
        "walk",
        "--minutes",
        "15",
        "--network",
        str(network_file),
        "--radius-m",
        "1125",
        "--json",
    )
    assert code == 0
    body = json.loads(out)
    assert body["metric"] == "walk" and body["minutes"] == 15 and body["radius_m"] == 1125
    rows = body["side_by_side"]
    assert [r["district"] for r in rows] == [
        "(all)",
        "north-west",
        "north-east",
        "south-west",
        "south-east",
    ]
    assert rows[0]["great_circle_pct"] == body["great_circle"]["covered_weight_pct"]
    assert rows[0]["walk_pct"] == body["covered_weight_pct"]
    for r, d in zip(rows[1:], body["per_district"], strict=True):
        assert r["walk_pct"] == d["share_pct"]
        assert r["difference_pct"] == pytest.approx(r["walk_pct"] - r["great_circle_pct"])
    # the same 1,125 m by great circle is a lower bound of the walk: never less covered
    assert all(r["walk_pct"] <= r["great_circle_pct"] + 1e-9 for r in rows)
    assert body["great_circle"]["radius_m"] == 1125
    code, out, _ = run(capsys, *base, "--metric", "walk", "--network", str(network_file))
    assert code == 0 and "within 15 minutes on foot" in out and "north-west" in out
    code, _, err = run(capsys, *base, "--metric", "walk")
    assert code != 0 and "--metric" in err
    code, gc_out, _ = run(capsys, *base)
    assert code == 0 and "on foot" not in gc_out


def test_cli_site_and_gaps_metric_walk(
    network_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [str(REGISTRY), "--districts", str(QUARTERS), "--hex-size-m", "100", "-q"]
    walk = ["--metric", "walk", "--minutes", "5", "--network", str(network_file)]
    code, out, _ = run(
        capsys, "site", *base, *walk, "--new", "2", "-o", str(tmp_path / "s.geojson")
    )
    assert code == 0 and "Covered within 5 min on foot" in out
    code, out, _ = run(capsys, "gaps", *base, *walk, "-o", str(tmp_path / "g.geojson"))
    assert code == 0
    doc = json.loads((tmp_path / "g.geojson").read_text(encoding="utf-8"))
    assert doc["metric"] == "walk" and doc["radius_m"] == 375
    assert any(f["properties"]["layer"] == "uncovered_demand" for f in doc["features"])


def test_api_coverage_and_site_by_walking(network_file: Path, tmp_path: Path) -> None:
    settings = Settings(
        registry=REGISTRY,
        network=network_file,
        districts=QUARTERS,
        hex_size_m=100.0,
        state_dir=tmp_path,
    )
    with TestClient(create_app(settings)) as c:
        r = c.get("/coverage", params={"metric": "walk", "minutes": 5, "radius_m": 375})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["metric"] == "walk" and body["radius_m"] == 375
        assert body["great_circle"]["covered_weight_pct"] >= body["covered_weight_pct"]
        assert len(body["side_by_side"]) == 5
        g = c.get("/coverage", params={"radius_m": 375})
        assert "metric" not in g.json()
        assert g.json()["covered_weight_pct"] == body["great_circle"]["covered_weight_pct"]
        r = c.post("/analysis/site", json={"n_new": 2, "metric": "walk", "minutes": 5})
        assert r.status_code == 200, r.text
        site = r.json()
        assert site["metric"] == "walk"
        assert site["covered_before_pct"] == pytest.approx(body["covered_weight_pct"])
        assert site["covered_after_pct"] > site["covered_before_pct"]
    with TestClient(
        create_app(Settings(registry=REGISTRY, districts=QUARTERS, state_dir=tmp_path))
    ) as c:
        r = c.get("/coverage", params={"metric": "walk"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "metric"
        r = c.post("/analysis/site", json={"n_new": 1, "metric": "walk"})
        assert r.status_code == 422 and "metric" in r.text
