"""``GET /maps/coverage`` for a registry without demand, for the bundled Seoul study, and with
a Tianditu key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_doc, make_feature
from tests.test_maps import builder_args
from yizhan.api import create_app
from yizhan.query.studies import SEOUL_REGISTRY
from yizhan.settings import Settings
from yizhan.stations.registry import from_document, load_registry


def test_map_of_a_registry_without_demand_shows_its_stations() -> None:
    reg = from_document(make_doc([make_feature("a", 113.6, 34.7), make_feature("b", 113.7, 34.8)]))
    with TestClient(create_app(Settings(), registry=reg)) as c:
        r = c.get("/maps/coverage", params={"lang": "en", "sites": 3})
        assert c.get("/coverage").status_code == 409  # numbers still need demand
    assert r.status_code == 200
    head = builder_args(r.text, "headline")[1]
    assert head["title"] == "Stations only: 2 stations, no demand set"
    assert "YIZHAN_DEMAND" in head["note"] and "--demand" in head["note"]
    assert "yz.heat(" not in r.text and "yz.sites(" not in r.text


@pytest.fixture(scope="module")
def seoul() -> Iterator[TestClient]:
    settings = Settings(registry=SEOUL_REGISTRY, reload_interval_s=0)
    reg = load_registry(SEOUL_REGISTRY)
    with TestClient(create_app(settings, registry=reg)) as c:
        yield c


def test_served_seoul_registry_brings_its_study(seoul: TestClient) -> None:
    out = seoul.get("/coverage", params={"radius_m": 500}).json()
    assert out["demand"].startswith("residents aged 65+")
    assert len(out["per_district"]) == 25
    html = seoul.get("/maps/coverage", params={"lang": "en", "radius_m": 500}).text
    head = builder_args(html, "headline")[1]
    assert head["title"] == f"Covered within 500 m: {out['covered_weight_pct']:.1f}%"
    assert head["lines"][0].endswith("people aged 65+ within reach")
    rows = builder_args(html, "districtTable")[1]
    assert len(rows) == 25 and {r["name"] for r in rows} == {
        r["district"] for r in out["per_district"]
    }


def test_tianditu_is_offered_with_a_key() -> None:
    key = "0123456789abcdef0123456789abcdef"
    with TestClient(create_app(Settings(tianditu_key=key))) as c:
        html = c.get("/maps/coverage").text
    assert builder_args(html, "base")[1]["key"] == "osm"  # the first base, shown at first
    assert f"tk={key}" in html and "tianditu.gov.cn" in html
    with TestClient(create_app(Settings())) as c:
        assert "tianditu.gov.cn" not in c.get("/maps/coverage").text
