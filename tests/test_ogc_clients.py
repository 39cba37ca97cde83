"""Real OGC API – Features clients against a real server (uvicorn on 127.0.0.1): OWSLib's
``owslib.ogcapi.features.Features`` and GDAL's OAPIF driver (``ogrinfo``, Debian gdal-bin).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server
from tests.test_ogc import districts_doc, registry_doc
from yizhan.api import create_app
from yizhan.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ogc-clients")
    (tmp / "reg.geojson").write_text(json.dumps(registry_doc()), encoding="utf-8")
    (tmp / "districts.geojson").write_text(json.dumps(districts_doc()), encoding="utf-8")
    settings = Settings(
        registry=tmp / "reg.geojson",
        state_dir=tmp / "state",
        districts=tmp / "districts.geojson",
        hex_size_m=1000.0,
        default_limit=10,
        reload_interval_s=0,
    )
    srv = Server(create_app(settings))
    try:
        yield srv.url + "/ogc"
    finally:
        srv.stop()


def test_owslib_features(base: str) -> None:
    """OWSLib reads the landing page, conformance, collections, items (bbox, limit, CQL2
    filter), one item, the queryables and the OpenAPI 3.0 document."""
    features = pytest.importorskip("owslib.ogcapi.features", reason="needs OWSLib (dev extra)")
    w = features.Features(base)
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in w.conformance()["conformsTo"]
    )
    assert [c["id"] for c in w.collections()["collections"]] == [
        "stations",
        "cooling_buses",
        "districts",
        "gaps",
    ]
    assert w.collection("stations")["title"] == "Stations"
    page = w.collection_items("stations", limit=5, bbox=[113.59, 34.74, 113.8, 34.81])
    assert (page["numberMatched"], page["numberReturned"]) == (23, 5)
    got = w.collection_items("stations", filter="district = '西区' AND capacity > 5", limit=50)
    assert [f["id"] for f in got["features"]] == ["a1"]
    assert w.collection_item("stations", "a1")["properties"]["name"] == "金水路环卫工人爱心驿站"
    assert "capacity" in w.collection_queryables("stations")["properties"]
    api = w.api()
    assert api["openapi"].startswith("3.0")
    shares = w.collection_items("districts")
    assert [f["properties"]["name"] for f in shares["features"]] == ["西区", "东区"]


def _ogrinfo(*args: str) -> str:
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo is None:
        pytest.skip("needs GDAL's ogrinfo (Debian gdal-bin)")
    out = subprocess.run(
        [ogrinfo, "-ro", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_gdal_oapif_driver(base: str) -> None:
    """GDAL finds the layers, their geometry types, pages through every feature with the
    next links, and passes attribute and spatial filters to the server."""
    listing = _ogrinfo(f"OAPIF:{base}")
    assert "1: stations (title: Stations) (Point)" in listing
    assert "districts" in listing and "gaps" in listing
    summary = _ogrinfo("-so", f"OAPIF:{base}", "stations")
    assert "Feature Count: 24" in summary
    assert "capacity: Integer" in summary
    every = _ogrinfo("-al", "-q", f"OAPIF:{base}", "stations")
    assert every.count("OGRFeature(stations)") == 24  # 3 pages of 10, by next links
    assert "金水路环卫工人爱心驿站" in every
    west = _ogrinfo(
        "-al",
        "-q",
        f"OAPIF:{base}",
        "stations",
        "-where",
        "district = '西区'",
        "-spat",
        "113.59",
        "34.74",
        "113.605",
        "34.77",
    )
    assert west.count("OGRFeature(stations)") == 1
    assert "金水路环卫工人爱心驿站" in west


def test_gdal_reads_an_export(base: str, tmp_path: Path) -> None:
    """ogr2ogr copies the OGC layer to a GeoPackage with every station."""
    ogr2ogr = shutil.which("ogr2ogr")
    if ogr2ogr is None:
        pytest.skip("needs GDAL's ogr2ogr (Debian gdal-bin)")
    out = tmp_path / "copy.gpkg"
    run = subprocess.run(
        [ogr2ogr, "-f", "GPKG", str(out), f"OAPIF:{base}", "stations"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Feature Count: 24" in _ogrinfo("-so", str(out), "stations")
