"""Tests for yizhan.geo.demand: demand points, polygons spread by area, hexagon grids."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.geometry
from shapely.geometry import Polygon, box

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import transform
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.distance import haversine_m
from yizhan.geo.hexgrid import hex_cells, hex_grid, spread_polygons
from yizhan.geo.projection import LocalProjection, destination
from yizhan.query.demand_files import load_districts, load_points, load_polygons

ROOT = Path(__file__).resolve().parent.parent
PLANNING = Path(__file__).parent / "data" / "planning"
ZHENGZHOU = ROOT / "yizhan" / "data" / "zhengzhou-districts.geojson"


# -- Demand -------------------------------------------------------------------------------
def test_from_arrays_defaults_to_unit_weights() -> None:
    d = Demand.from_arrays([113.6, 113.7], [34.7, 34.8])
    assert d.weight.tolist() == [1.0, 1.0]
    assert d.total_weight == 2.0
    assert not d.has_districts
    assert d.district_labels() == [None, None]


@pytest.mark.parametrize(
    ("weight", "field"),
    [([1.0, -1.0], "weight"), ([1.0, math.nan], "weight"), ([math.inf, 1.0], "weight")],
)
def test_bad_weights_are_rejected(weight: list[float], field: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        Demand.from_arrays([113.6, 113.7], [34.7, 34.8], weight)
    assert exc.value.field == field
    assert "Expected finite weights >= 0" in exc.value.message


def test_bad_coordinates_and_shapes_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"Expected lon in -180\.\.180"):
        Demand.from_arrays([113.6, 200.0], [34.7, 34.8])
    with pytest.raises(InvalidInputError, match="equal length"):
        Demand.from_arrays([113.6, 113.7], [34.7, 34.8], [1.0])


def test_from_arrays_converts_crs() -> None:
    lon, lat = transform([113.65], [34.75], "wgs84", "gcj02")
    d = Demand.from_arrays(lon, lat, crs="gcj02")
    assert haversine_m(d.lon[0], d.lat[0], 113.65, 34.75) < 0.01
    with pytest.raises(InvalidInputError) as exc:
        Demand.from_arrays([113.6], [34.7], crs="mars")
    assert exc.value.field == "crs"


def test_labels_and_subset() -> None:
    d = Demand.from_arrays([1, 2, 3], [1, 2, 3], [1, 2, 3], district=["a", None, "b"])
    assert d.district_names == ("a", "b")
    assert d.district_code is not None
    assert d.district_code.tolist() == [0, -1, 1]
    s = d.subset(np.array([False, True, True]))
    assert s.district_labels() == [None, "b"]
    assert s.total_weight == 5.0


# -- point files ---------------------------------------------------------------------------
def test_load_points_csv_skips_invalid_rows() -> None:
    d = load_points(
        PLANNING / "workers_points.csv", "workers", district_field="district", skip_invalid=True
    )
    assert len(d) == 6
    assert d.skipped == 2
    assert d.total_weight == 485.0
    assert d.weight_name == "workers"
    assert d.district_names == ("二七区", "金水区", "中原区")


def test_load_points_csv_reports_the_bad_row() -> None:
    with pytest.raises(InvalidInputError) as exc:
        load_points(PLANNING / "workers_points.csv", "workers")
    assert exc.value.field == "workers"
    assert "line 8" in exc.value.message


def test_load_points_missing_weight_column_names_the_columns() -> None:
    with pytest.raises(InvalidInputError) as exc:
        load_points(PLANNING / "workers_points.csv", "people")
    assert exc.value.field == "weight"
    assert exc.value.message.startswith(
        "Expected a weight column 'people', got columns ['id', 'name'"
    )


def test_load_points_geojson_and_crs(tmp_path: Path) -> None:
    d = load_points(PLANNING / "workers_points.geojson", "workers", district_field="district")
    assert d.weight.tolist() == [120.0, 80.0, 45.0]
    assert d.district_labels() == ["二七区", "二七区", "金水区"]
    # The same points written in GCJ-02 come back in WGS-84.
    glon, glat = transform(d.lon, d.lat, "wgs84", "gcj02")
    p = tmp_path / "gcj.csv"
    p.write_text("lng,lat,w\n" + "".join(f"{x},{y},1\n" for x, y in zip(glon, glat, strict=True)))
    g = load_points(p, "w", crs="gcj02")
    assert np.max(haversine_m(g.lon, g.lat, d.lon, d.lat)) < 0.01


def test_load_points_labels_by_polygon() -> None:
    districts = load_districts(ZHENGZHOU)
    d = load_points(
        PLANNING / "workers_points.csv", "workers", districts=districts, skip_invalid=True
    )
    assert d.districts is districts
    labels = d.district_labels()
    assert all(lab is not None for lab in labels)
    assert d.district_code is not None
    assert np.array_equal(d.district_code, districts.assign(d.lon, d.lat))
    assert labels[1] == "二七区"


# -- districts ----------------------------------------------------------------------------
def test_zhengzhou_districts_file() -> None:
    dist = load_districts(ZHENGZHOU)
    assert len(dist) == 12
    assert dist.names[0] == "中原区"
    assert all(shapely.is_valid(g) for g in dist.geometries)
    assert {p["adcode"] for p in dist.properties} >= {410102, 410185}
    # Zhengzhou railway station (WGS-84) is in 二七区; Beijing is outside.
    codes = dist.assign([113.6585, 116.40], [34.7456, 39.90])
    assert [dist.names[codes[0]], int(codes[1])] == ["二七区", -1]


def test_load_districts_requires_the_name_field() -> None:
    with pytest.raises(InvalidInputError) as exc:
        load_districts(ZHENGZHOU, name_field="NAME_CN")
    assert exc.value.field == "name_field"


def test_assign_on_shared_boundary_goes_to_first_district() -> None:
    d = Districts.from_geometries(["W", "E"], [box(0, 0, 1, 1), box(1, 0, 2, 1)])
    assert d.assign([0.5, 1.0, 1.5, 5.0], [0.5, 0.5, 0.5, 0.5]).tolist() == [0, 0, 1, -1]


def test_same_name_features_are_merged() -> None:
    d = Districts.from_geometries(
        ["A", "B", "A"], [box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 5, 6, 6)]
    )
    assert d.names == ("A", "B")
    assert d.assign([5.5], [5.5]).tolist() == [0]


# -- hexagon grid ---------------------------------------------------------------------------
AREAS = {
    "box": box(113.60, 34.70, 113.75, 34.80),
    "triangle": Polygon([(113.6, 34.7), (113.8, 34.72), (113.7, 34.85)]),
    "holed": box(113.6, 34.7, 113.7, 34.8).difference(box(113.63, 34.73, 113.66, 34.76)),
}


@pytest.mark.parametrize("area_name", sorted(AREAS))
@pytest.mark.parametrize("size_m", [150.0, 400.0, 1000.0])
@pytest.mark.parametrize("total", [1.0, 123_456.0])
def test_hex_grid_total_weight_equals_given_total(
    area_name: str, size_m: float, total: float
) -> None:
    d = hex_grid(AREAS[area_name], size_m, total_weight=total)
    assert isinstance(d, Demand)
    assert d.total_weight == pytest.approx(total, rel=1e-12)
    assert (d.weight > 0).all()
    # Every point lies in the study area.
    assert shapely.contains_xy(shapely.buffer(AREAS[area_name], 1e-9), d.lon, d.lat).all()


def test_hex_grid_weight_is_area() -> None:
    area = AREAS["box"]
    d = hex_grid(area, 300.0)
    proj = LocalProjection.for_geometry(area)
    km2 = proj.geometry_to_xy(area).area / 1e6
    assert d.total_weight == pytest.approx(km2, rel=1e-9)
    dd = hex_grid(area, 300.0, density_per_km2=2500.0)
    assert isinstance(dd, Demand)
    assert dd.total_weight == pytest.approx(2500.0 * km2, rel=1e-9)


def test_hex_cells_have_the_right_size() -> None:
    s = 250.0
    cells = hex_cells((-1000.0, -1000.0, 1000.0, 1000.0), s)
    assert np.allclose(shapely.area(cells), 1.5 * math.sqrt(3) * s * s)
    # Neighbouring centres are √3·s apart and the lattice tiles without overlap.
    assert shapely.union_all(cells).area == pytest.approx(shapely.area(cells).sum(), rel=1e-9)
    with pytest.raises(InvalidInputError) as exc:
        hex_cells((0.0, 0.0, 1e6, 1e6), 1.0)
    assert exc.value.field == "size_m"


def test_hex_grid_over_districts_labels_points_and_splits_by_area() -> None:
    west, east = box(113.60, 34.70, 113.65, 34.80), box(113.65, 34.70, 113.75, 34.80)
    d = hex_grid(
        Districts.from_geometries(["west", "east"], [west, east]), 500.0, total_weight=3000.0
    )
    assert isinstance(d, Demand)
    assert d.district_code is not None
    per = np.bincount(d.district_code, weights=d.weight)
    assert per.sum() == pytest.approx(3000.0)
    # east is twice as wide as west (same latitudes): twice the weight.
    assert per[1] / per[0] == pytest.approx(2.0, rel=1e-3)
    assert (d.district_code[d.lon < 113.65] == 0).all()


def test_hex_grid_returns_cells() -> None:
    out = hex_grid(AREAS["triangle"], 800.0, total_weight=10.0, return_cells=True)
    assert isinstance(out, tuple)
    d, cells = out
    assert len(cells) == len(d)
    assert shapely.contains_xy(cells, d.lon, d.lat).all()


def test_hex_grid_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError) as exc:
        hex_grid(AREAS["box"], -5.0)
    assert exc.value.field == "size_m"
    with pytest.raises(InvalidInputError) as exc:
        hex_grid(AREAS["box"], 500.0, total_weight=-1.0)
    assert exc.value.field == "total_weight"


# -- polygons spread by area --------------------------------------------------------------
@pytest.mark.parametrize("cell_size_m", [100.0, 300.0, 2000.0])
def test_spread_polygons_sums_to_polygon_weights(cell_size_m: float) -> None:
    polys = [AREAS["box"], AREAS["triangle"], AREAS["holed"], box(113.9, 34.9, 113.9004, 34.9004)]
    weights = np.array([1000.0, 250.5, 0.0, 42.0])
    d = spread_polygons(polys, weights, cell_size_m, labels=["a", "b", "c", "d"])
    owner = d.meta["polygon"]
    assert np.allclose(np.bincount(owner, weights=d.weight, minlength=4), weights, rtol=1e-12)
    assert d.district_code is not None
    assert np.array_equal(d.district_code, owner)
    # A polygon smaller than a cell becomes one point.
    assert (owner == 3).sum() == 1


def test_spread_polygons_is_even() -> None:
    """Interior points of one polygon carry equal weight (weight by area share)."""
    d = spread_polygons([AREAS["box"]], [1e6], 500.0)
    full_cell_share = (
        1.5
        * math.sqrt(3)
        * 500.0**2
        / (LocalProjection.for_geometry(AREAS["box"]).geometry_to_xy(AREAS["box"]).area)
    )
    assert d.weight.max() == pytest.approx(1e6 * full_cell_share, rel=1e-3)


def test_load_polygons_fixture() -> None:
    d = load_polygons(
        PLANNING / "population_blocks.geojson", "population", 200.0, district_field="district"
    )
    assert d.total_weight == pytest.approx(42_500.0)
    assert d.district_names == ("西", "东")
    assert d.district_code is not None
    per = np.bincount(d.district_code, weights=d.weight)
    assert per.tolist() == pytest.approx([12_000.0, 30_500.0])
    with pytest.raises(InvalidInputError) as exc:
        load_polygons(PLANNING / "population_blocks.geojson", "workers")
    assert exc.value.field == "weight"
    assert "Expected a weight property 'workers'" in exc.value.message


def test_load_points_rejects_polygons() -> None:
    with pytest.raises(InvalidInputError, match="use load_polygons"):
        load_points(PLANNING / "population_blocks.geojson", "population")


def test_destination_is_exact_on_the_sphere() -> None:
    lon, lat = destination(113.65, 34.75, np.arange(0, 360, 30), 1000.0)
    assert np.allclose(haversine_m(113.65, 34.75, lon, lat), 1000.0, atol=1e-6)


def test_load_districts_joins_several_name_fields(tmp_path: Path) -> None:
    def feat(city: str, name: str, x: float) -> dict[str, object]:
        return {
            "type": "Feature",
            "properties": {"city": city, "name": name},
            "geometry": shapely.geometry.mapping(box(x, 0.0, x + 1.0, 1.0)),
        }

    doc = {
        "type": "FeatureCollection",
        "features": [feat("Seoul", "Jung-gu", 0.0), feat("Busan", "Jung-gu", 2.0)],
    }
    p = tmp_path / "d.geojson"
    p.write_text(json.dumps(doc))
    assert load_districts(p).names == ("Jung-gu",)  # same name: merged
    assert load_districts(p, name_field=("city", "name")).names == (
        "Seoul Jung-gu",
        "Busan Jung-gu",
    )
