"""GeoPandas in and out (yizhan.gis) and demand/district files in every vector format:
Shapefile (zipped or not), GeoPackage, FlatGeobuf, GeoJSON and CSV, reprojected from the
CRS the file declares, GCJ-02 on request."""

from __future__ import annotations

import doctest
import json
import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point

import yizhan.gis
from yizhan.cli import main
from yizhan.errors import InvalidInputError
from yizhan.geo.coverage import coverage
from yizhan.geo.crs import transform
from yizhan.gis import coverage as gis_coverage
from yizhan.gis import (
    district_coverage,
    gaps,
    read_demand,
    read_districts,
    read_registry,
    site,
)
from yizhan.query.demand_files import is_polygon_file, load_districts, load_points, load_polygons
from yizhan.query.studies import StudySpec, load_study
from yizhan.settings import DEFAULT_DISTRICTS, DEFAULT_REGISTRY
from yizhan.stations.registry import StationFilter, load_registry

PLANNING = Path(__file__).parent / "data" / "planning"
CSV = PLANNING / "workers_points.csv"


def assert_close(a: Any, b: Any, path: str = "") -> None:
    """*a* and *b* equal, numbers within 1e-9 relative (nested dicts and lists)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_doctests_of_yizhan_gis() -> None:
    """The numpydoc examples of yizhan.gis run (``--doctest-modules`` for that module)."""
    result = doctest.testmod(yizhan.gis, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8
    assert result.failed == 0


def test_import_yizhan_does_not_load_geopandas() -> None:
    code = "import sys, yizhan, yizhan.cli; print('geopandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def csv_points() -> gpd.GeoDataFrame:
    d = load_points(CSV, "workers", skip_invalid=True)
    return gpd.GeoDataFrame(
        {"workers": d.weight, "district": ["x"] * len(d)},
        geometry=gpd.points_from_xy(d.lon, d.lat),
        crs="EPSG:4326",
    )


def write_zipped_shapefile(frame: gpd.GeoDataFrame, folder: Path, name: str) -> Path:
    frame.to_file(folder / f"{name}.shp", engine="pyogrio", encoding="UTF-8")
    z = folder / f"{name}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for part in folder.glob(f"{name}.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    return z


def test_zipped_shapefile_in_utm_gives_the_csv_coverage(tmp_path: Path) -> None:
    """Demand from a zipped Shapefile in EPSG:32650 gives the same coverage as the same
    points in CSV (library, CLI)."""
    z = write_zipped_shapefile(csv_points().to_crs("EPSG:32650"), tmp_path, "workers")
    from_csv = load_points(CSV, "workers", skip_invalid=True)
    from_shp = load_points(z, "workers")
    assert np.allclose(from_shp.lon, from_csv.lon, atol=1e-9)
    assert np.allclose(from_shp.lat, from_csv.lat, atol=1e-9)
    assert from_shp.weight.tolist() == from_csv.weight.tolist()
    reg = load_registry(DEFAULT_REGISTRY)
    a = coverage(reg, from_csv, 1000.0, StationFilter.make()).to_dict()
    b = coverage(reg, from_shp, 1000.0, StationFilter.make()).to_dict()
    assert_close(a, b)

    outs = []
    for demand in (CSV, z):
        sub = tmp_path / demand.suffix[1:]
        sub.mkdir()
        code = main(
            [
                "coverage",
                str(DEFAULT_REGISTRY),
                "--demand",
                str(demand),
                "--weight",
                "workers",
                "--json",
                "-q",
            ]
        )
        outs.append(code)
    assert outs == [1, 0]  # the CSV has two bad rows: the CLI refuses it without skipping


def test_cli_coverage_same_for_zipped_shapefile_and_clean_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pts = csv_points()
    clean = tmp_path / "clean.csv"
    clean.write_text(
        "lon,lat,workers\n"
        + "".join(f"{p.x!r},{p.y!r},{w}\n" for p, w in zip(pts.geometry, pts.workers, strict=True)),
        encoding="utf-8",
    )
    z = write_zipped_shapefile(pts.to_crs("EPSG:32650"), tmp_path, "utm")
    results = []
    for demand in (clean, z):
        assert (
            main(
                [
                    "coverage",
                    str(DEFAULT_REGISTRY),
                    "--demand",
                    str(demand),
                    "--weight",
                    "workers",
                    "--json",
                    "-q",
                ]
            )
            == 0
        )
        out = json.loads(capsys.readouterr().out)
        out.pop("demand")
        results.append(out)
    assert_close(results[0], results[1])


@pytest.mark.parametrize(
    ("driver", "suffix"),
    [
        ("GPKG", ".gpkg"),
        ("FlatGeobuf", ".fgb"),
        ("GeoJSON", ".geojson"),
        ("ESRI Shapefile", ".shp"),
    ],
)
def test_districts_in_every_format(tmp_path: Path, driver: str, suffix: str) -> None:
    """The bundled districts written by GDAL in another CRS read back the same."""
    want = load_districts(DEFAULT_DISTRICTS)
    frame = read_districts(DEFAULT_DISTRICTS).to_crs("EPSG:3857")
    path = tmp_path / f"d{suffix}"
    frame.to_file(path, driver=driver, engine="pyogrio")
    got = load_districts(path)
    # FlatGeobuf's spatial index orders features along a Hilbert curve.
    assert sorted(got.names) == sorted(want.names)
    by_name = dict(zip(got.names, got.geometries, strict=True))
    for name, w in zip(want.names, want.geometries, strict=True):
        g = by_name[name]
        assert shapely.area(shapely.symmetric_difference(g, w)) < 1e-9 * shapely.area(w), name
    assert is_polygon_file(path)


def test_polygon_demand_from_a_geopackage_builds_a_study(tmp_path: Path) -> None:
    src = PLANNING / "population_blocks.geojson"
    gpkg = tmp_path / "blocks.gpkg"
    gpd.read_file(src).to_file(gpkg, driver="GPKG", engine="pyogrio")
    a = load_polygons(src, "population", 200.0, district_field="district")
    b = load_polygons(gpkg, "population", 200.0, district_field="district")
    assert b.total_weight == pytest.approx(a.total_weight)
    assert b.district_names == a.district_names
    study = load_study(StudySpec(demand=gpkg, weight="population"))
    assert study.demand.total_weight == pytest.approx(42_500.0)
    assert not is_polygon_file(CSV)


def test_gcj02_and_declared_crs_on_request(tmp_path: Path) -> None:
    d = load_points(CSV, "workers", skip_invalid=True)
    glon, glat = transform(d.lon, d.lat, "wgs84", "gcj02")
    frame = gpd.GeoDataFrame(
        {"w": d.weight}, geometry=gpd.points_from_xy(glon, glat), crs="EPSG:4326"
    )
    gpkg = tmp_path / "amap.gpkg"
    frame.to_file(gpkg, driver="GPKG", engine="pyogrio")
    back = load_points(gpkg, "w", crs="gcj02")
    assert np.allclose(back.lon, d.lon, atol=1e-6) and np.allclose(back.lat, d.lat, atol=1e-6)
    # CSV of projected x/y: the CRS given on request.
    utm = gpd.GeoSeries(gpd.points_from_xy(d.lon, d.lat), crs="EPSG:4326").to_crs("EPSG:32650")
    p = tmp_path / "utm.csv"
    p.write_text("x,y\n" + "".join(f"{g.x!r},{g.y!r}\n" for g in utm), encoding="utf-8")
    u = load_points(p, crs="EPSG:32650")
    assert np.allclose(u.lon, d.lon, atol=1e-9) and np.allclose(u.lat, d.lat, atol=1e-9)
    with pytest.raises(InvalidInputError) as exc:
        load_points(p, crs="EPSG:999999")
    assert exc.value.field == "crs"


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gpkg"
    bad.write_bytes(b"not a geopackage")
    with pytest.raises(InvalidInputError) as exc:
        load_districts(bad)
    assert str(bad) in exc.value.field
    with pytest.raises(InvalidInputError, match="no such file"):
        load_points(tmp_path / "missing.shp", "w")


def test_read_registry_is_the_registry() -> None:
    frame = read_registry()
    reg = load_registry(DEFAULT_REGISTRY)
    assert frame["id"].tolist() == reg.ids
    assert np.allclose(frame.geometry.x, reg.lon) and np.allclose(frame.geometry.y, reg.lat)
    assert frame.loc[0, "amenities"] == reg.features[0]["properties"]["amenities"]
    assert frame.crs.to_epsg() == 4326


def test_frames_in_other_crs_are_reprojected() -> None:
    stations = read_registry()
    demand = read_demand(CSV, "workers", skip_invalid=True)
    a = gis_coverage(stations, demand, 1000.0, weight="workers")
    b = gis_coverage(
        stations.to_crs("EPSG:3857"), demand.to_crs("EPSG:32650"), 1000.0, weight="workers"
    )
    assert_close(a.attrs["summary"], b.attrs["summary"])
    assert b.crs.to_epsg() == 4326
    assert a["distance_m"].to_numpy() == pytest.approx(b["distance_m"].to_numpy(), rel=1e-9)


def test_operational_only_by_status_column() -> None:
    stations = read_registry()
    stations.loc[:, "status"] = "removed"
    demand = read_demand(CSV, "workers", skip_invalid=True)
    assert gis_coverage(stations, demand).attrs["summary"]["n_stations"] == 0
    assert (
        gis_coverage(stations, demand, operational_only=False).attrs["summary"]["n_stations"] == 82
    )


def test_district_coverage_gaps_and_site_return_frames() -> None:
    districts = read_districts(DEFAULT_DISTRICTS)
    stations = read_registry()
    demand = read_demand(CSV, "workers", skip_invalid=True)
    shares = district_coverage(stations, demand, districts, weight="workers")
    assert list(shares["name"]) == list(districts["name"])
    assert shares.crs.to_epsg() == 4326
    assert shares["demand"].sum() == pytest.approx(485.0)
    g = gaps(
        stations, districts[districts["name"] == "金水区"], 1000.0, demand=demand, weight="workers"
    )
    assert (g["district"] == "金水区").all() and g["rank"].tolist() == list(range(1, len(g) + 1))
    sites = site(stations, demand, n_new=2, weight="workers")
    assert len(sites) <= 2
    assert sites.attrs["summary"]["covered_after"] >= sites.attrs["summary"]["covered_before"]
    cands = gpd.GeoDataFrame(geometry=[Point(113.70, 34.80)], crs="EPSG:4326")
    one = site(stations, demand, n_new=1, weight="workers", candidates=cands)
    assert len(one) <= 1


@pytest.mark.slow
def test_the_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/gis-example.md: every Python block runs, in order, and gives its numbers."""
    pytest.importorskip("matplotlib", reason="needs matplotlib for .explore() (dev extra)")
    pytest.importorskip("mapclassify", reason="needs mapclassify for .explore() (dev extra)")
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "gis-example.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 6
    monkeypatch.chdir(root)
    ns: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "docs/gis-example.md", "exec"), ns)
    assert round(ns["shares"].attrs["summary"]["covered_weight_pct"], 1) == 83.0
    assert ns["gu"].crs.to_epsg() == 4326 and len(ns["gu"]) == 25
    assert ns["holes"].iloc[0]["district"] == "강남구"
    assert ns["new"]["gain"].round(0).tolist()[:2] == [10632.0, 10517.0]
    assert "folium" in type(ns["m"]).__module__
    ns["m"].save(str(tmp_path / "map.html"))
    assert (tmp_path / "map.html").stat().st_size > 10_000
