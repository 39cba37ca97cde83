"""The bundled Seoul study: heat shelters and the people aged 65+ of each neighbourhood.

The registry is made by ``yizhan import`` from the published file with
``yizhan/data/seoul-import.toml``; the test re-runs that command and fails if the committed
registry differs (change the mapping and re-run it, never edit the GeoJSON). The demand
and district files are checked against what their SOURCE files say.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from yizhan.cli import main
from yizhan.geo.coverage import coverage
from yizhan.query.studies import (
    BUNDLED_STUDIES,
    SEOUL_DEMAND,
    SEOUL_DISTRICTS,
    SEOUL_REGISTRY,
    bundled_study,
    bundled_study_for,
    load_study,
)
from yizhan.settings import BUNDLED_DATA
from yizhan.stations.registry import StationFilter, load_registry
from yizhan.stations.validate import validate_document

ROOT = Path(__file__).resolve().parents[1]
SOURCE_CSV = ROOT / "tests" / "data" / "import" / "seoul_heat_shelters_2026_utf8.csv"
MAPPING = BUNDLED_DATA / "seoul-import.toml"


def test_seoul_registry_equals_a_fresh_import(tmp_path: Path) -> None:
    out = tmp_path / "seoul.geojson"
    assert main([
        "import", str(SOURCE_CSV), "--mapping", str(MAPPING), "-o", str(out), "-q"
    ]) == 0  # fmt: skip
    fresh = json.loads(out.read_text(encoding="utf-8"))
    bundled = json.loads(SEOUL_REGISTRY.read_text(encoding="utf-8"))
    assert bundled == fresh
    assert validate_document(bundled).errors == []
    assert {"name", "license", "attribution"} <= set(bundled)
    assert (
        "not verified" in bundled["license"]
        and "ygang084-jpg/heat-shelter" in bundled["attribution"]
    )
    feats = bundled["features"]
    assert len(feats) == 4087  # every published row: none rejected
    cats = Counter(f["properties"]["category"] for f in feats)
    assert cats == {"cooling_center": 4087 - 166, "bank_outlet": 166}  # 시설구분2 = 금융기관
    # No opening hours in this extract: none invented.
    assert not any("opening_hours" in f["properties"] for f in feats)
    assert sum(1 for f in feats if "capacity" in f["properties"]) == 3136


def test_the_import_source_is_the_published_file() -> None:
    """The committed CSV is byte for byte the file its SOURCE entry describes."""
    digest = hashlib.sha256(SOURCE_CSV.read_bytes()).hexdigest()
    source = (ROOT / "tests" / "data" / "import" / "SOURCE.txt").read_text(encoding="utf-8")
    assert digest in source
    with SOURCE_CSV.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4087


def _demand_rows() -> list[dict[str, str]]:
    with SEOUL_DEMAND.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_seoul_demand_file_is_what_its_source_says() -> None:
    rows = _demand_rows()
    source = (BUNDLED_DATA / "seoul-65plus.SOURCE.txt").read_text(encoding="utf-8")
    total_65 = sum(int(r["pop_65plus"]) for r in rows)
    total = sum(int(r["pop_total"]) for r in rows)
    assert len(rows) == 427 and f"{total_65:,}" in source and f"{total:,}" in source
    assert len({r["adm_cd10"] for r in rows}) == 427
    assert all(0 < int(r["pop_65plus"]) < int(r["pop_total"]) for r in rows)
    # Two neighbourhoods split on 2025-07-01 stand at their parent's centre, as documented.
    moved = {r["dong"]: r["centre"] for r in rows if r["centre"] != "kostat"}
    assert moved == {"신설동": "parent 1123053600", "용두동": "parent 1123053600"}
    # Every centre lies in the district the population statistics name.
    doc = json.loads(SEOUL_DISTRICTS.read_text(encoding="utf-8"))
    gu = {f["properties"]["name"]: shape(f["geometry"]) for f in doc["features"]}
    assert len(gu) == 25
    for r in rows:
        point = shapely.Point(float(r["lon"]), float(r["lat"]))
        assert gu[r["sigungu"]].covers(point), r["dong"]


def test_every_bundled_file_has_a_source() -> None:
    sources = (BUNDLED_DATA / "SOURCES.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", sources, re.M))
    for path in BUNDLED_DATA.iterdir():
        if path.suffix in (".geojson", ".csv", ".toml"):
            assert path.name in listed, path.name
    for name in ("seoul-heat-shelters", "seoul-65plus", "seoul-districts"):
        text = (BUNDLED_DATA / f"{name}.SOURCE.txt").read_text(encoding="utf-8")
        assert "Licence" in text and "Origin" in text, name


def test_every_bundled_file_is_package_data() -> None:
    """An installed wheel carries the bundled studies (``yizhan map --study seoul`` anywhere)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["yizhan"]
    for path in BUNDLED_DATA.iterdir():
        if path.suffix not in (".geojson", ".csv", ".toml", ".md", ".txt"):
            continue  # a server's state beside the registry (tokens, reports …)
        rel = path.relative_to(ROOT / "yizhan").as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


@pytest.fixture(scope="module")
def seoul() -> tuple[Any, Any]:
    b = bundled_study("seoul")
    return load_registry(b.registry), load_study(b.spec)


def test_seoul_study_counts_people_not_land(seoul: tuple[Any, Any]) -> None:
    reg, study = seoul
    assert study.meaning.unit("en") == "people aged 65+"
    assert study.meaning.unit("zh") == "名 65 岁及以上居民"
    assert "65+" in study.description
    assert study.demand.weight.sum() == sum(int(r["pop_65plus"]) for r in _demand_rows())
    near = coverage(reg, study.demand, 500.0, StationFilter.make())
    far = coverage(reg, study.demand, 1000.0, StationFilter.make())
    # Real data: most, not all, older residents live within 500 m of a shelter.
    assert 80 < near.covered_weight_pct < far.covered_weight_pct < 100
    assert {r["district"] for r in near.per_district} == set(study.districts.names)
    assert bundled_study_for(SEOUL_REGISTRY) is BUNDLED_STUDIES["seoul"]


def test_map_of_the_seoul_study_in_one_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seoul: tuple[Any, Any]
) -> None:
    out = tmp_path / "seoul.html"
    assert main(["map", "--study", "seoul", "-o", str(out), "--sites", "3", "--lang", "en"]) == 0
    captured = capsys.readouterr()
    reg, study = seoul
    pct = coverage(reg, study.demand, 500.0, StationFilter.make()).covered_weight_pct
    assert f"{pct:.1f} % of demand covered within 500 m" in captured.out
    assert "people aged 65+" in captured.out
    html = out.read_text(encoding="utf-8")
    assert f"Covered within 500 m: {pct:.1f}%" in html
    assert "UTC+09:00" in html  # Seoul's time
    assert "cdn.jsdelivr.net" not in html  # a file that opens offline
    # Progress: one count from the first step to the last.
    steps = re.findall(r"\[(\d+)/(\d+)\]", captured.err)
    assert steps == [(str(k), "7") for k in range(1, 8)]


def test_coverage_of_the_seoul_study_names_its_demand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--study", "seoul", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["radius_m"] == 500.0
    assert out["demand"].startswith("residents aged 65+")
    assert main(["coverage", "--study", "seoul", "-q", "--radius-m", "1000"]) == 0
    text = capsys.readouterr().out
    assert "Covered within 1000 m:" in text and "people aged 65+)" in text
