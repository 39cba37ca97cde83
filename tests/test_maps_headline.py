"""The planner map's headline, district table, demand units and base maps (without a browser;
tests/test_maps_planner_browser.py shows them in Chromium)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.test_maps import builder_args, render, sample_layers, sample_registry, station_payload
from yizhan.errors import InvalidInputError
from yizhan.geo.crs import transform
from yizhan.maps import planner_map
from yizhan.maps.basemaps import base_maps, gcj_deltas, gcj_geojson
from yizhan.maps.headline import coverage_headline, format_time
from yizhan.maps.planner import district_rows
from yizhan.query.studies import LAND_AREA, StudySpec, load_study
from yizhan.settings import DEFAULT_DISTRICTS, Settings

WHEN = datetime(2026, 7, 15, 13, 5, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_headline_says_share_demand_stations_radius_and_time() -> None:
    h = coverage_headline(
        "en",
        stations=4087,
        when=WHEN,
        radius_m=500.0,
        covered_pct=94.2857,
        covered=1837230.0,
        total=1948544.0,
        what="residents aged 65+",
        unit="people aged 65+",
    )
    assert h["title"] == "Covered within 500 m: 94.3%"
    assert h["lines"] == [
        "1,837,230 of 1,948,544 people aged 65+ within reach",
        "4,087 stations counted · radius 500 m · as of 2026-07-15 13:05 UTC+08:00",
        "Demand: residents aged 65+",
    ]
    assert h["note"] is None
    zh = coverage_headline(
        "zh",
        stations=82,
        when=WHEN,
        radius_m=1000.0,
        covered_pct=2.18,
        covered=163.81,
        total=7517.0,
        what=LAND_AREA.what("zh"),
        unit=LAND_AREA.unit("zh"),
        digits=LAND_AREA.digits,
        open_at=WHEN,
    )
    assert zh["title"] == "1.0 公里内覆盖 2.2%"
    assert zh["lines"][0] == "163.8 / 7,517.0 平方公里土地在服务范围内"
    assert (
        zh["lines"][1] == "计入 82 个驿站 · 半径 1.0 公里 · 2026-07-15 13:05 UTC+08:00 开放的驿站"
    )
    assert zh["lines"][2].startswith("需求：土地面积（没有人口数据")


def test_headline_without_demand_says_how_to_add_it() -> None:
    h = coverage_headline("en", stations=82, when=WHEN, add_demand="--demand FILE")
    assert h == {
        "title": "Stations only: 82 stations, no demand set",
        "lines": ["as of 2026-07-15 13:05 UTC+08:00"],
        "note": "To add demand: --demand FILE",
    }
    assert format_time(datetime(2026, 1, 2, 3, 4)) == "2026-01-02 03:04"  # naive: as it is
    seoul = datetime(2026, 1, 2, 3, 4, tzinfo=ZoneInfo("Asia/Seoul"))
    assert format_time(seoul) == "2026-01-02 03:04 UTC+09:00"


def test_study_meanings() -> None:
    grid = load_study(StudySpec(districts=DEFAULT_DISTRICTS))
    assert grid.meaning is LAND_AREA and grid.meaning.unit("en") == "km² of land"
    assert "land, not people" in grid.description


def test_file_demand_is_in_its_own_unit(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("lon,lat,workers\n113.6,34.7,5\n", encoding="utf-8")
    study = load_study(StudySpec(demand=path, weight="workers"))
    assert study.meaning.unit("en") == study.meaning.unit("zh") == "workers"
    assert load_study(StudySpec(demand=path)).meaning.unit("en") == "demand points"


def test_map_carries_headline_unit_and_district_rows() -> None:
    layers = sample_layers()
    head = {"title": "T", "lines": ["a", "b"], "note": None}
    html = render(
        planner_map(
            sample_registry(), lang="en", headline=head, unit="workers", unit_digits=0, **layers
        )
    )
    assert builder_args(html, "headline")[1] == head
    meta, rows, layer = builder_args(html, "districtTable")
    assert meta["unit"] == "workers" and meta["digits"] == 0
    assert layer[0] == "var"
    assert rows[0] == {
        "name": "中原区",
        "demand": 100000,
        "covered": 45200,
        "uncovered": 54800.0,
        "share_pct": 45.2,
        "stations": None,
    }
    legend = builder_args(html, "legend")[1]
    assert ["heat", "Warmer = more uncovered demand (workers)"] in legend
    # Without a headline or districts: neither is drawn.
    plain = render(planner_map(sample_registry(), lang="en"))
    assert "yz.headline(" not in plain and "yz.districtTable(" not in plain


def test_district_rows_leave_unknowns_unknown() -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": None, "properties": {"name": None}}],
    }
    assert district_rows(fc) == [
        {
            "name": "",
            "demand": None,
            "covered": None,
            "uncovered": None,
            "share_pct": None,
            "stations": None,
        }
    ]


# -- base maps ----------------------------------------------------------------------------------


def test_base_maps_offered() -> None:
    assert [b.key for b in base_maps("en")] == ["osm", "amap"]
    keyed = base_maps("en", tianditu_key="0123456789abcdef0123456789abcdef")
    assert [b.key for b in keyed] == ["osm", "amap", "tianditu"]
    tdt = keyed[2]
    assert tdt.crs == "wgs84" and len(tdt.urls) == 2  # vector map and its labels
    assert "/vec_w/" in tdt.urls[0] and "/eva_w/" in tdt.urls[1]  # English labels in English
    assert "/cva_w/" in base_maps("zh", tianditu_key="abcdef012345")[2].urls[1]
    assert all("tk=0123456789abcdef0123456789abcdef" in u for u in tdt.urls)
    assert "{x}" in tdt.urls[0] and "{s}" in tdt.urls[0]
    assert [b.crs for b in keyed[:2]] == ["wgs84", "gcj02"]
    assert base_maps("en", tiles=None) == []
    [custom] = base_maps("en", tiles="https://tiles.example/{z}/{x}/{y}.png", attr="x")
    assert custom.crs == "wgs84" and custom.attribution == "x"


@pytest.mark.parametrize("key", ["short", "has space in it", "abc&tk=evil00", 12345678])
def test_a_bad_tianditu_key_is_refused(key: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        base_maps("en", tianditu_key=key)
    assert info.value.field == "tianditu_key"


def test_tianditu_key_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIZHAN_TIANDITU_KEY", "0123456789abcdef")
    assert Settings().tianditu_key == "0123456789abcdef"


def test_gcj_copies_use_the_crs_module() -> None:
    lat = np.array([34.75, 37.5665, 51.5])  # Zhengzhou, Seoul (inside the box), London
    lon = np.array([113.65, 126.978, -0.12])
    dy, dx = gcj_deltas(lat, lon)
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    assert np.allclose(lat + np.array(dy) / 1e6, glat, atol=1e-6)
    assert np.allclose(lon + np.array(dx) / 1e6, glon, atol=1e-6)
    assert dy[2] == dx[2] == 0 and abs(dx[0]) > 3000  # outside China: unchanged
    fc = sample_layers()["gaps"]
    g = gcj_geojson(fc)
    assert g["features"][0]["properties"] == fc["features"][0]["properties"]
    ring, gring = (
        fc["features"][0]["geometry"]["coordinates"][0],
        g["features"][0]["geometry"]["coordinates"][0],
    )
    for (x, y), (gx, gy) in zip(ring, gring, strict=True):
        ex, ey = transform(x, y, "wgs84", "gcj02")
        assert (gx, gy) == (round(float(ex), 6), round(float(ey), 6))


def test_gcj_positions_are_shipped_only_with_a_gcj02_base() -> None:
    with_amap = station_payload(render(planner_map(sample_registry())))
    assert len(with_amap["gdy"]) == len(with_amap["lat"]) == 8
    without = station_payload(render(planner_map(sample_registry(), tiles=None)))
    assert "gdy" not in without
    html = render(planner_map(sample_registry(), tiles=None, **sample_layers()))
    assert builder_args(html, "gaps")[2] is None  # no GCJ-02 copy
