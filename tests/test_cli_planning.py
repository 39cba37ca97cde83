"""``yizhan coverage|gaps|site`` on the bundled Zhengzhou registry and districts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_maps import overlays
from yizhan.cli import main
from yizhan.geo.coverage import coverage
from yizhan.geo.distance import haversine_m
from yizhan.query.studies import DEFAULT_DISTRICTS, StudySpec, load_study
from yizhan.settings import DEFAULT_REGISTRY
from yizhan.stations.registry import StationFilter, load_registry

REG = str(DEFAULT_REGISTRY)


@pytest.fixture
def workers_csv(tmp_path: Path) -> Path:
    path = tmp_path / "workers.csv"
    path.write_text(
        "name,lon,lat,workers\n"
        "near a station,113.6657,34.7486,100\n"
        "far east,114.10,34.90,300\n"
        "far south,113.50,34.40,50\n",
        encoding="utf-8",
    )
    return path


def test_coverage_json_reports_share_per_district(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", REG, "--districts", str(DEFAULT_DISTRICTS), "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"covered_weight_pct", "total_weight", "covered_weight", "per_district"} <= set(out)
    rows = {r["district"]: r for r in out["per_district"]}
    assert len(rows) == 12 and "中原区" in rows
    assert rows["登封市"]["stations"] == 0 and rows["登封市"]["covered"] == 0
    # The same numbers as the library computes directly.
    study = load_study(StudySpec(districts=DEFAULT_DISTRICTS))
    direct = coverage(load_registry(REG), study.demand, 1000, StationFilter.make())
    assert out["covered_weight_pct"] == pytest.approx(direct.covered_weight_pct)
    assert sum(r["demand"] for r in out["per_district"]) == pytest.approx(out["total_weight"])


def test_coverage_of_weighted_points_equals_brute_force(
    workers_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["coverage", REG, "--demand", str(workers_csv), "--weight", "workers", "--json", "-q"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    reg = load_registry(REG)
    covered = 0.0
    for lon, lat, w in [(113.6657, 34.7486, 100), (114.10, 34.90, 300), (113.50, 34.40, 50)]:
        if float(haversine_m(lon, lat, reg.lon, reg.lat).min()) <= 1000:
            covered += w
    assert out["total_weight"] == 450
    assert out["covered_weight"] == pytest.approx(covered)
    assert covered == 100  # the first point is next to a station, the others are not


def test_coverage_summary_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", REG, "--radius-m", "2000", "--amenity", "drinking_water"]) == 0
    captured = capsys.readouterr()
    assert "Covered within 2000 m:" in captured.out and "中原区" in captured.out
    assert "[3/3] coverage of" in captured.err  # progress on stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--demand", "/nonexistent.csv"], "demand: no such file"),
        (["--demand", "WEIGHTS", "--weight", "nope"], "Expected a weight column 'nope'"),
        (["--districts", "/nonexistent.geojson"], "districts: no such file"),
    ],
)
def test_coverage_bad_inputs_exit_1_with_message(
    args: list[str], words: str, workers_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(workers_csv) if a == "WEIGHTS" else a for a in args]
    assert main(["coverage", REG, *args]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_coverage_needs_demand_for_another_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "r.geojson"
    other.write_text(Path(REG).read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["coverage", str(other)]) == 1
    assert "Expected --demand FILE or --districts FILE" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "wide"])
def test_radius_must_be_positive(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["coverage", REG, f"--radius-m={bad}"])
    assert info.value.code == 2
    assert "argument --radius-m" in capsys.readouterr().err


def test_gaps_writes_gap_polygons_and_uncovered_demand(tmp_path: Path) -> None:
    out = tmp_path / "gaps.geojson"
    assert main(["gaps", REG, "-o", str(out), "-q"]) == 0
    fc = json.loads(out.read_text(encoding="utf-8"))
    gaps = [f for f in fc["features"] if f["properties"]["layer"] == "gap"]
    points = [f for f in fc["features"] if f["properties"]["layer"] == "uncovered_demand"]
    assert gaps and points
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in gaps)
    reg = load_registry(REG)
    for f in points[:200]:
        lon, lat = f["geometry"]["coordinates"]
        assert float(haversine_m(lon, lat, reg.lon, reg.lat).min()) > 1000 - 1e-6


def test_site_writes_suggestions_that_raise_coverage(
    tmp_path: Path, workers_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sites.geojson"
    assert (
        main(
            [
                "site",
                REG,
                "--demand",
                str(workers_csv),
                "--weight",
                "workers",
                "--new",
                "2",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert [f["properties"]["rank"] for f in fc["features"]] == [1, 2]
    # Both uncovered points get a station: gains 300 then 50.
    assert [f["properties"]["gain"] for f in fc["features"]] == [300, 50]
    text = capsys.readouterr().out
    assert "22.2 % now, 100.0 % with 2 new stations (trivial)" in text  # 2 candidates for 2 sites


def test_map_writes_a_standalone_planner_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "map.html"
    assert main(["map", REG, "-o", str(out), "--sites", "2", "--lang", "en"]) == 0
    html = out.read_text(encoding="utf-8")
    # Offline: no CDN URLs, the assets are inlined.
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    for label in ("Coverage gaps", "Suggested sites", "Uncovered demand"):
        assert label in html
    err = capsys.readouterr().err
    assert "[7/7] writing" in err  # registry, demand, coverage, gaps, sites, map, write


def test_coverage_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", REG, "--open-at", "2026-07-15T03:00", "--json", "-q"]) == 0
    night = json.loads(capsys.readouterr().out)
    assert main(["coverage", REG, "--open-at", "2026-07-15T13:00", "--json", "-q"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert "3 cooling buses standing then" in day["stations"]
    assert night["n_stations"] < day["n_stations"] <= 82 + 3
    assert main(["coverage", REG, "--open-at", "tomorrow", "-q"]) == 1
    assert "--open-at: Expected 'now' or an ISO 8601 time" in capsys.readouterr().err


def test_coverage_with_2sfca_access(workers_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["coverage", REG, "--demand", str(workers_csv), "--weight", "workers", "-q"]
    assert main([*args, "--access", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    acc = out["access"]
    # Only the first point (100 workers) has stations within 1 km; none has a capacity, so
    # each counts 10 places: access = sum over reachable stations of 10 / (demand they serve).
    assert acc["no_access_pct"] == pytest.approx(350 / 450 * 100)
    assert acc["capacity_defaulted"] == 85 - 3  # the buses are not stations
    assert acc["mean_access"] > 0
    assert main([*args, "--access"]) == 0
    assert "Accessibility (2SFCA within 1000 m)" in capsys.readouterr().out


def test_map_marks_stale_stations(tmp_path: Path) -> None:
    """The bundled stations were never verified: the saved planner map says they are stale."""
    from yizhan.cli import main

    out = tmp_path / "map.html"
    assert main(["map", str(DEFAULT_REGISTRY), "-o", str(out), "--quiet", "--lang", "en"]) == 0
    assert "Only stations not verified for 180+ days (82)" in out.read_text(encoding="utf-8")


# -- a registry of one's own, bundled studies, progress ---------------------------------------


@pytest.fixture
def own_registry(tmp_path: Path) -> Path:
    """The bundled stations in a file of one's own: no demand comes with it."""
    other = tmp_path / "own.geojson"
    other.write_text(Path(REG).read_text(encoding="utf-8"), encoding="utf-8")
    return other


def test_map_of_a_registry_of_ones_own_draws_the_stations(
    own_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "own.html"
    assert main(["map", str(own_registry), "-o", str(out), "--lang", "en", "-q"]) == 0
    said = capsys.readouterr().out
    assert "82 stations only, no demand" in said
    assert "To add demand: yizhan map REGISTRY -o map.html --demand workers.csv" in said
    html = out.read_text(encoding="utf-8")
    assert "Stations only: 82 stations, no demand set" in html
    assert overlays(html) == [
        "Stations",
        "Needs checking (0)",
        "Only stations not verified for 180+ days (82)",
        "Coverage (1.0 km)",
        "Cooling buses",
    ]
    # Siting still needs demand, and says so.
    assert main(["map", str(own_registry), "-o", str(out), "--sites", "2", "-q"]) == 1
    assert "--sites: siting needs demand" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "n"),
    [
        ([], 6),  # registry, demand, coverage, gaps, map, write
        (["--sites", "2"], 7),  # … and siting
        (["--demand", "WORKERS", "--weight", "workers"], 5),  # points, no districts: no gaps
        (["--registry-own"], 3),  # registry, map, write
        (["--registry-own", "--districts", str(DEFAULT_DISTRICTS)], 6),
    ],
)
def test_map_progress_counts_every_step_once(
    extra: list[str],
    n: int,
    own_registry: Path,
    workers_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = str(own_registry) if "--registry-own" in extra else REG
    args = [a.replace("WORKERS", str(workers_csv)) for a in extra if a != "--registry-own"]
    assert main(["map", registry, "-o", str(tmp_path / "m.html"), *args]) == 0
    steps = re.findall(r"\[(\d+)/(\d+)\]", capsys.readouterr().err)
    assert steps == [(str(k), str(n)) for k in range(1, n + 1)]


def test_study_and_registry_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "-o", str(tmp_path / "m.html"), "-q"]) == 1
    assert "registry: Expected a registry file or --study NAME" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["coverage", "--study", "mars"])
    assert info.value.code == 2
    assert "invalid choice: 'mars'" in capsys.readouterr().err
    # --study zhengzhou is the bundled registry's own study, at its own radius (1 km).
    assert main(["coverage", "--study", "zhengzhou", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["radius_m"] == 1000.0 and "land, not people" in out["demand"]
    assert main(["coverage", REG, "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["covered_weight_pct"] == out["covered_weight_pct"]


def test_coverage_summary_says_what_the_demand_counts(
    workers_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["coverage", REG, "-q"]) == 0
    assert "km² of land)" in capsys.readouterr().out
    assert main(["coverage", REG, "--demand", str(workers_csv), "--weight", "workers", "-q"]) == 0
    assert "(100.0 of 450.0 workers)" in capsys.readouterr().out
