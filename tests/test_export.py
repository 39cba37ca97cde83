"""Exports: ``yizhan export`` and ``GET /export/…`` in every format, and the round trip
export → ``yizhan import`` giving back every field a format can hold, Chinese included."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from tests.test_ogc import districts_doc
from yizhan.api import create_app
from yizhan.cli import main
from yizhan.query.export import FORMATS, shapefile_names
from yizhan.settings import Settings
from yizhan.stations.registry import load_registry


def rich_doc() -> dict[str, Any]:
    """Stations using every property a table holds, with Chinese text throughout."""
    full = make_feature(
        "zz-001",
        113.6584195,
        34.7456789,
        name="金水路环卫工人爱心驿站",
        name_en="Jinshui Road Sanitation Workers' Station",
        category="union_station",
        operator="郑州市总工会",
        network="工会驿站",
        address="郑州市金水区金水路 1 号",
        district="金水区",
        phone="0371-12345678",
        amenities=["drinking_water", "toilet", "air_conditioning", "wifi"],
        opening_hours="Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00",
        opening_hours_text="周一至周五 8:00-20:00，周末 9:00-17:00",
        status="operational",
        capacity=12,
        last_verified_at="2026-06-01T10:30:00+08:00",
        last_verified_by="李师傅",
        source="郑州市总工会官网 (2026)",
        coord_origin="surveyed",
        guessed=["amenities", "opening_hours", "opening_hours_text"],
        external_ids={"amap": "B0FFG1234", "osm": "node/42"},
        created_at="2026-01-02T03:04:05+08:00",
        updated_at="2026-06-01T10:30:00+08:00",
        timezone="Asia/Shanghai",
    )
    closed = make_feature(
        "zz-002",
        113.70,
        34.80,
        name="银行网点驿站（暂停）",
        district="郑东新区",
        category="bank_outlet",
        status="removed",
        status_reason="网点装修，暂停服务",
        capacity=0,
    )
    bare = make_feature("zz-003", 113.55, 34.70, name="二七广场驿站")
    bus = make_bus("bus-1", [make_stop("s1", 113.66, 34.77, "Mo-Su 10:00-16:00")])
    return make_doc([full, closed, bare, bus], name="测试登记册", license="MIT")


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    p = tmp_path / "reg.geojson"
    p.write_text(json.dumps(rich_doc(), ensure_ascii=False), encoding="utf-8")
    return p


def stations_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in doc["features"] if f["geometry"]["type"] == "Point"}


def export(registry: Path, fmt: str, out: Path, *extra: str) -> None:
    assert main(["export", str(registry), "--format", fmt, "-o", str(out), "--quiet", *extra]) == 0


def import_back(src: Path, out: Path, *extra: str) -> dict[str, Any]:
    assert main(["import", str(src), "-o", str(out), *extra]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(fmt: str, registry_path: Path, tmp_path: Path) -> None:
    """export → import gives back every station with every property and the position."""
    suffix = {"shp": ".shp"}.get(fmt, f".{fmt}")
    out = tmp_path / f"stations{suffix}"
    export(registry_path, fmt, out)
    if fmt == "shp":
        assert (tmp_path / "stations.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
        args = ["--mapping", str(tmp_path / "stations.import.toml")]
    else:
        args = ["--map", "guessed=guessed"]
    back = import_back(out, tmp_path / "back.geojson", *args)
    want = stations_of(rich_doc())
    got = stations_of(back)
    assert list(got) == sorted(want)
    for fid, f in want.items():
        assert got[fid]["properties"] == f["properties"], (fmt, fid)
        assert got[fid]["geometry"] == f["geometry"], (fmt, fid)
    if fmt == "shp":  # the mapping carries the registry's top-level members too
        assert back["name"] == "测试登记册"


def test_zipped_shapefile_over_http_reads_back(registry_path: Path, tmp_path: Path) -> None:
    settings = Settings(registry=registry_path, state_dir=tmp_path / "s", reload_interval_s=0)
    with TestClient(create_app(settings)) as client:
        r = client.get("/export/stations.shp")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    z = tmp_path / "stations.zip"
    z.write_bytes(r.content)
    with zipfile.ZipFile(z) as zf:
        names = sorted(zf.namelist())
        assert names == sorted(
            f"stations{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".import.toml")
        )
        (tmp_path / "m.toml").write_bytes(zf.read("stations.import.toml"))
    back = import_back(z, tmp_path / "back.geojson", "--mapping", str(tmp_path / "m.toml"))
    assert (
        stations_of(back)["zz-001"]["properties"] == stations_of(rich_doc())["zz-001"]["properties"]
    )


def test_shapefile_names_fit_dbf() -> None:
    names = shapefile_names(["opening_hours_text", "external_ids.amap", "external_ids.amap2"])
    assert all(len(n) <= 10 for n in names.values())
    assert len(set(names.values())) == 3


@pytest.fixture
def client(registry_path: Path, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "districts.geojson").write_text(json.dumps(districts_doc()), encoding="utf-8")
    settings = Settings(
        registry=registry_path,
        state_dir=tmp_path / "state",
        districts=tmp_path / "districts.geojson",
        hex_size_m=1000.0,
        reload_interval_s=0,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_http_export_uses_the_filters_of_stations(client: TestClient) -> None:
    for query in (
        "",
        "?status=operational",
        "?district=金水区",
        "?q=驿站&bbox=113.5,34.6,113.68,34.9",
    ):
        listed = [f["id"] for f in client.get(f"/stations{query}").json()["features"]]
        r = client.get(f"/export/stations.geojson{query}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/geo+json"
        assert [f["id"] for f in r.json()["features"]] == listed, query
    assert client.get("/export/stations.geojson?bbox=1,2").status_code == 422
    assert client.get("/export/stations.pdf").status_code == 422


def test_http_csv_has_lon_lat_wkt_and_chinese(client: TestClient) -> None:
    r = client.get("/export/stations.csv")
    assert r.status_code == 200
    assert r.content.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 with a BOM
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    first = rows[0]
    assert first["name"] == "金水路环卫工人爱心驿站"
    assert float(first["lon"]) == 113.6584195 and float(first["lat"]) == 34.7456789
    assert first["wkt"] == "POINT (113.6584195 34.7456789)"
    assert first["amenities"] == "drinking_water;toilet;air_conditioning;wifi"
    assert first["external_ids.amap"] == "B0FFG1234"
    assert "filename*=UTF-8" in r.headers["content-disposition"]


@pytest.mark.parametrize("ext", ["gpkg", "fgb", "xlsx"])
def test_http_binary_formats(client: TestClient, tmp_path: Path, ext: str) -> None:
    r = client.get(f"/export/stations.{ext}?status=operational")
    assert r.status_code == 200
    p = tmp_path / f"s.{ext}"
    p.write_bytes(r.content)
    if ext == "xlsx":
        import openpyxl

        ws = openpyxl.load_workbook(p, read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        assert rows[1][1] == "金水路环卫工人爱心驿站"
        return
    meta, _, _, fields = pyogrio.raw.read(p)
    assert list(fields[0]) == ["zz-001", "zz-003"]
    assert fields[list(meta["fields"]).index("name")][0] == "金水路环卫工人爱心驿站"
    assert meta["crs"] == "EPSG:4326"


def test_study_layers_export(client: TestClient, tmp_path: Path) -> None:
    """Districts (with the shares /coverage gives), gaps and suggested sites."""
    shares = {r["district"]: r["share_pct"] for r in client.get("/coverage").json()["per_district"]}
    r = client.get("/export/districts.gpkg")
    assert r.status_code == 200
    (tmp_path / "d.gpkg").write_bytes(r.content)
    meta, _, _geoms, fields = pyogrio.raw.read(tmp_path / "d.gpkg")
    cols = dict(zip(meta["fields"], fields, strict=True))
    assert dict(zip(cols["name"], cols["share_pct"], strict=True)) == pytest.approx(shares)
    gaps = client.get("/export/gaps.geojson").json()["features"]
    assert gaps and gaps[0]["properties"]["rank"] == 1
    sites = client.get("/export/sites.csv?n_new=2").content.decode("utf-8-sig").splitlines()
    assert sites[0].startswith("id,rank,gain")
    assert len(sites) == 3


def test_cli_exports_every_layer_to_one_geopackage(registry_path: Path, tmp_path: Path) -> None:
    (tmp_path / "districts.geojson").write_text(json.dumps(districts_doc()), encoding="utf-8")
    out = tmp_path / "study.gpkg"
    export(
        registry_path,
        "gpkg",
        out,
        "--layer",
        "all",
        "--districts",
        str(tmp_path / "districts.geojson"),
        "--new",
        "2",
    )
    layers = [name for name, _ in pyogrio.list_layers(out)]
    assert layers == ["stations", "districts", "gaps", "sites"]
    assert (
        main(
            [
                "export",
                str(registry_path),
                "-f",
                "csv",
                "-o",
                str(tmp_path / "x.csv"),
                "--layer",
                "all",
            ]
        )
        == 1
    )


def test_cli_export_filters(registry_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "ops.geojson"
    export(registry_path, "geojson", out, "--status", "operational", "--district", "金水区")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [f["id"] for f in doc["features"]] == ["zz-001"]
    assert doc["name"] == "测试登记册"
    assert load_registry(out).ids == ["zz-001"]
