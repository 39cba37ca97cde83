"""``yizhan import`` and :mod:`yizhan.stations.importing`.

Real fixtures (see tests/data/import/SOURCE.txt): the 82 Zhengzhou union stations
(GCJ-02) and 30 rows of the Korean civil-defence shelter list, six of them with broken
coordinates as published. Small synthetic tables are built in ``tmp_path`` for the
cases the real data does not contain (swapped columns, empty cells, XLSX, GeoJSON).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from yizhan.cli import main
from yizhan.errors import InvalidInputError
from yizhan.geo.crs import transform
from yizhan.geo.distance import haversine_m
from yizhan.stations.importing import (
    AMENITY_WORDS,
    GuessedWhen,
    HoursSpec,
    ImportResult,
    ImportSpec,
    Rule,
    amenity_for_word,
    convert_hours,
    import_file,
    load_spec,
    run_import,
)
from yizhan.stations.validate import validate_document
from yizhan.stations.vocab import Amenity

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "import"
ZZ_CSV = DATA / "zhengzhou_union_stations_gcj02.csv"
KR_CSV = DATA / "korea_shelters_sample.csv"
ZZ_TOML = ROOT / "yizhan" / "data" / "zhengzhou-import.toml"
BUNDLED = ROOT / "yizhan" / "data" / "zhengzhou.geojson"
SAMPLE_BUSES = ROOT / "yizhan" / "data" / "sample-buses.geojson"


def bundled_stations() -> dict[str, Any]:
    """The bundled registry without the sample buses appended to it (``--append``)."""
    doc = json.loads(BUNDLED.read_text(encoding="utf-8"))
    doc["features"] = [f for f in doc["features"] if f["properties"]["kind"] == "station"]
    return doc


Main = Callable[[Sequence[str]], int]


def write_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def by_name(result: ImportResult) -> dict[str, dict[str, Any]]:
    return {f["properties"]["name"]: f for f in result.features}


def rejected_rows(result: ImportResult) -> dict[int, tuple[str, str | None]]:
    return {r.row: (r.reason, r.field) for r in result.rejected}


@pytest.fixture(scope="module")
def zz() -> ImportResult:
    return run_import(ZZ_CSV, load_spec(ZZ_TOML))


@pytest.fixture(scope="module")
def zz_raw() -> dict[str, dict[str, str]]:
    with ZZ_CSV.open(encoding="utf-8", newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


@pytest.fixture
def cli() -> Main:
    """The ``yizhan`` entry point (``import`` is one of its sub-commands)."""
    return main


# --- The Zhengzhou list --------------------------------------------------------------------


def test_zhengzhou_imports_all_82_stations(zz: ImportResult) -> None:
    assert len(zz.features) == 82
    assert zz.rejected == []
    assert zz.crs == "gcj02"
    assert len({f["id"] for f in zz.features}) == 82
    assert all(f["id"].startswith("zz-") for f in zz.features)
    report = validate_document(zz.document())
    assert report.errors == []
    notes = Counter(n.kind for n in zz.notes)
    assert notes == {"masked_phone": 7, "unconverted_hours": 2}


def test_gcj02_is_converted_to_wgs84(zz: ImportResult, zz_raw: dict[str, dict[str, str]]) -> None:
    name = "巩义市工会户外劳动者爱心驿站"
    raw = zz_raw[name]
    gcj = (float(raw["lng_gcj02"]), float(raw["lat_gcj02"]))
    lon, lat = by_name(zz)[name]["geometry"]["coordinates"]
    shift = float(haversine_m(lon, lat, *gcj))
    assert 300 < shift < 700
    x, y = transform(gcj[0], gcj[1], "gcj02", "wgs84")
    assert (lon, lat) == pytest.approx((float(x), float(y)), abs=1e-7)
    # Every station moved by a GCJ-02 offset, none stayed in place.
    for f in zz.features:
        r = zz_raw[f["properties"]["name"]]
        d = float(
            haversine_m(*f["geometry"]["coordinates"], float(r["lng_gcj02"]), float(r["lat_gcj02"]))
        )
        assert 200 < d < 800


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "巩义市工会户外劳动者爱心驿站",
            {
                "coord_origin": "poi",
                "category": "union_station",
                "opening_hours": "08:00-20:00",
                "opening_hours_text": None,
                "phone": None,
                "guessed": ["operator", "amenities", "opening_hours"],
            },
        ),
        (
            "郑州市郑州银行高新区小微支行工会驿站",
            {
                "coord_origin": "poi",
                "category": "bank_outlet",
                "opening_hours": "Mo-Fr 09:00-17:00",
                "opening_hours_text": "周一至周五 09:00-17:00",
                "phone": "0371-55269597",
                "guessed": [
                    "category",
                    "operator",
                    "amenities",
                    "opening_hours",
                    "opening_hours_text",
                ],
            },
        ),
        (
            "巩义服务站河南公路爱心驿站",  # sourced hours; phone 138****5596 masked
            {
                "coord_origin": "poi",
                "category": "union_station",
                "opening_hours": "Mo-Fr 09:00-17:00",
                "opening_hours_text": "周一至周五 09:00-17:00",
                "phone": None,
                "guessed": ["operator", "amenities"],
            },
        ),
        (
            "巩义万洋商贸城工会户外劳动者驿站",
            {
                "coord_origin": "poi",
                "opening_hours": "Mo-Fr 08:30-12:00,13:00-17:30",
                "opening_hours_text": "周一至周五 08:30-12:00,13:00-17:30",
                "guessed": ["operator", "amenities"],
            },
        ),
        (
            "郑州市二七区铭功路西后街户外劳动者爱心驿站",  # "工作日开放": no times, not invented
            {
                "coord_origin": "geocoded",
                "opening_hours": None,
                "opening_hours_text": "工作日开放",
                "guessed": ["operator", "amenities"],
            },
        ),
        (
            "上街区中心路工会驿站(金苑社区党群服务中心旁)",
            {"coord_origin": "geocoded", "opening_hours": "24/7", "opening_hours_text": "24小时"},
        ),
        (
            "郑州市张仲景大药房工人中路店工会驿站",
            {
                "category": "union_station",
                "opening_hours": "08:00-22:00",
                "phone": "0371-67956331;0371-60223349",
                "amenities": ["drinking_water", "seating", "phone_charging"],
                "operator": "张仲景大药房",
            },
        ),
    ],
)
def test_zhengzhou_provenance(zz: ImportResult, name: str, expected: dict[str, Any]) -> None:
    props = by_name(zz)[name]["properties"]
    for key, value in expected.items():
        assert props.get(key) == value, key


def test_zhengzhou_provenance_counts(zz: ImportResult, zz_raw: dict[str, dict[str, str]]) -> None:
    props = [f["properties"] for f in zz.features]
    assert Counter(p["coord_origin"] for p in props) == {"poi": 18, "geocoded": 64}
    assert all(p["source"] == "zhengzhou-union-stations (ody-cai/yilutongxing, MIT)" for p in props)
    assert all(p["status"] == "operational" and "last_verified_at" not in p for p in props)
    assert all(p["amenities"] and {"amenities", "operator"} <= set(p["guessed"]) for p in props)
    assert all("*" not in p.get("phone", "") for p in props)
    assert all(p["district"] == zz_raw[p["name"]]["district"] for p in props)
    inferred = {
        n for n, r in zz_raw.items() if r["open_hours_origin"] == "inferred_by_name_heuristic"
    }
    assert len(inferred) == 60
    for p in props:
        assert ("opening_hours" in p["guessed"]) == (p["name"] in inferred), p["name"]
    banks = {p["name"] for p in props if "银行" in p["name"]}
    assert {p["name"] for p in props if p["category"] == "bank_outlet"} == banks
    assert {p["name"] for p in props if "category" in p["guessed"]} == banks
    assert zz.guessed_counts() == {
        "amenities": 82,
        "category": 9,
        "opening_hours": 60,
        "opening_hours_text": 9,
        "operator": 82,
    }


def test_bundled_registry_equals_a_fresh_import(zz: ImportResult) -> None:
    full = json.loads(BUNDLED.read_text(encoding="utf-8"))
    assert validate_document(full).errors == []
    bundled = bundled_stations()
    assert bundled == json.loads(json.dumps(zz.document()))
    assert {"name", "license", "attribution"} <= set(bundled)
    water = [f for f in bundled["features"] if "drinking_water" in f["properties"]["amenities"]]
    assert len(water) == 82
    # The rest of the file is exactly the sample buses, appended after the stations.
    buses = json.loads(SAMPLE_BUSES.read_text(encoding="utf-8"))["features"]
    assert full["features"][82:] == buses
    assert all("sample" in f["properties"]["source"] for f in buses)


# --- Korean shelters: real broken rows ------------------------------------------------------


def test_korean_broken_rows_are_rejected_with_their_row_numbers() -> None:
    result = import_file(KR_CSV, id_prefix="kr-")
    assert result.columns_used == {
        "lon": "경도(EPSG4326)",
        "lat": "위도(EPSG4326)",
        "name": "시설명",
        "address": "도로명전체주소",
    }
    assert result.auto_detected == ["lon", "lat", "name", "address"]
    assert rejected_rows(result) == {
        13: ("far_outlier", "lon,lat"),  # 23.69 N 119.49 E: Taiwan Strait, not Siheung
        17: ("far_outlier", "lon,lat"),
        20: ("non_numeric_coordinate", "lon,lat"),  # -1.#IND (Excel artefact)
        23: ("non_numeric_coordinate", "lon,lat"),
        26: ("non_numeric_coordinate", "lon,lat"),
        27: ("non_numeric_coordinate", "lon,lat"),
    }
    rej = {r.row: r for r in result.rejected}
    assert rej[20].value == "-1.#IND, -1.#IND"
    assert rej[20].line == 24  # three earlier names hold a line break
    assert rej[13].value == "119.4902013, 23.69320173"
    assert len(result.features) == 24
    assert result.n_rows == 30
    names = [f["properties"]["name"] for f in result.features]
    assert "증산두산위브아파트 101동 지하주차장 1~2층" in names  # line break folded
    assert result.features[0]["geometry"]["coordinates"] == [126.9875197, 37.57747342]


def test_far_outliers_can_be_kept() -> None:
    result = import_file(KR_CSV, reject_outliers=False)
    assert {r.reason for r in result.rejected} == {"non_numeric_coordinate"}
    assert len(result.features) == 26


# --- Row problems ------------------------------------------------------------------------

ZZ_ROWS = [
    ["老城驿站", "113.650", "34.760"],
    ["二七驿站", "113.640", "34.750"],
    ["金水驿站", "113.680", "34.780"],
    ["中原驿站", "113.610", "34.750"],
    ["惠济驿站", "113.620", "34.850"],
]


@pytest.mark.parametrize(
    ("name", "lon", "lat", "reason", "field"),
    [
        ("空", "", "34.76", "missing_coordinate", "lon"),
        ("空二", "", "", "missing_coordinate", "lon,lat"),
        ("文本", "113.65E", "34.76", "non_numeric_coordinate", "lon"),
        ("坏", "-1.#IND", "-1.#IND", "non_numeric_coordinate", "lon,lat"),
        ("下划线", "113_65", "34.76", "non_numeric_coordinate", "lon"),
        ("非数", "nan", "34.76", "not_finite", "lon"),
        ("无穷", "113.65", "inf", "not_finite", "lat"),
        ("零", "0", "0", "null_island", "lon,lat"),
        ("超经", "213.65", "34.76", "out_of_range", "lon"),
        ("超纬", "113.65", "-94.76", "out_of_range", "lat"),
        ("颠倒", "34.76", "113.65", "looks_swapped", "lon,lat"),
        ("", "113.65", "34.76", "missing_name", "name"),
        ("无", "113.65", "34.76", "missing_name", "name"),
    ],
)
def test_row_rejections(
    tmp_path: Path, name: str, lon: str, lat: str, reason: str, field: str
) -> None:
    path = write_csv(tmp_path / "s.csv", [["名称", "经度", "纬度"], *ZZ_ROWS, [name, lon, lat]])
    result = import_file(path)
    assert [(r.row, r.reason, r.field) for r in result.rejected] == [(7, reason, field)]
    assert len(result.features) == 5


def test_regional_swap_heuristic(tmp_path: Path) -> None:
    # Barcelona: both orders are valid numbers, only the region tells them apart.
    rows = [
        ["name", "lon", "lat"],
        ["Biblioteca Sant Antoni", "2.1621", "41.3795"],
        ["Casal Barceloneta", "2.1894", "41.3801"],
        ["Escola Gràcia", "2.1565", "41.4036"],
        ["Centre Cívic Sants", "2.1330", "41.3755"],
        ["Mercat Sant Andreu", "41.4352", "2.1898"],
    ]
    result = import_file(write_csv(tmp_path / "bcn.csv", rows))
    assert rejected_rows(result) == {6: ("looks_swapped", "lon,lat")}
    assert "look swapped" in result.rejected[0].message


def test_duplicate_mapped_ids_and_invalid_values(tmp_path: Path) -> None:
    rows = [
        ["id", "name", "lon", "lat", "category", "capacity"],
        ["1", "A", "113.65", "34.76", "union_station", "10"],
        ["2", "B", "113.66", "34.76", "银行", "5"],
        ["1", "C", "113.67", "34.76", "", ""],
        ["", "D", "113.68", "34.76", "", ""],
        ["5", "E", "113.69", "34.76", "", "many"],
        ["6", "F", "113.70", "34.76", "", "3"],
    ]
    mapping = {"id": "id", "category": "category", "capacity": "capacity"}
    result = import_file(write_csv(tmp_path / "ids.csv", rows), mapping=mapping, id_prefix="t-")
    assert rejected_rows(result) == {
        3: ("invalid_value", "category"),
        4: ("duplicate_id", "id"),
        5: ("missing_id", "id"),
        6: ("invalid_value", "capacity"),
    }
    assert "already used by row 2" in result.rejected[1].message
    assert [f["id"] for f in result.features] == ["t-1", "t-6"]
    assert result.features[0]["properties"]["capacity"] == 10
    recoded = import_file(
        write_csv(tmp_path / "ids.csv", rows),
        mapping=mapping,
        recode={"category": {"银行": "bank_outlet"}},
    )
    assert 3 not in rejected_rows(recoded)


def test_auto_detected_columns_that_do_not_fit_are_left_out(tmp_path: Path) -> None:
    rows = [
        ["id", "name", "lon", "lat", "category", "capacity", "status"],
        ["1", "A", "113.65", "34.76", "union_station", "10", "Active"],
        ["", "B", "113.66", "34.76", "银行", "many", "operational"],
    ]
    result = import_file(write_csv(tmp_path / "auto.csv", rows))
    assert result.rejected == []
    assert result.columns_used == {"id": "id", "lon": "lon", "lat": "lat", "name": "name"}
    dropped = {n.field: n.message for n in result.notes if n.kind == "source"}
    assert set(dropped) == {"category", "capacity", "status"}
    assert "--map status=status and --recode status:VALUE=..." in dropped["status"]
    # The "id" column was auto-detected, not mapped: an empty id gets a generated one.
    assert [len(f["id"]) for f in result.features] == [1, 10]


def test_generated_ids_are_stable_and_disambiguated(tmp_path: Path) -> None:
    rows = [
        ["name", "address", "lon", "lat"],
        ["驿站", "人民路1号", "113.65", "34.76"],
        ["驿 站", "人民路 1 号", "113.66", "34.76"],  # same after normalisation
        ["驿站", "人民路2号", "113.67", "34.76"],
    ]
    a = import_file(write_csv(tmp_path / "a.csv", rows), id_prefix="x-")
    ids = [f["id"] for f in a.features]
    assert ids[1] == ids[0] + "-2"
    assert ids[2] != ids[0] and ids[2].startswith("x-") and len(ids[2]) == 12
    reordered = import_file(
        write_csv(tmp_path / "b.csv", [rows[0], rows[3], rows[1]]), id_prefix="x-"
    )
    assert [f["id"] for f in reordered.features] == [ids[2], ids[0]]


def test_extra_values_in_a_csv_row_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "shift.csv"
    path.write_text(
        "name,address,lon,lat\n甲,人民路,113.65,34.76\n乙,郑州市,金水区,113.66,34.76\n",
        encoding="utf-8",
    )
    result = import_file(path)
    assert rejected_rows(result) == {3: ("field_count", None)}


# --- Formats and encodings ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings(tmp_path: Path, encoding: str) -> None:
    text = ZZ_CSV.read_text(encoding="utf-8")
    path = tmp_path / "zz.csv"
    path.write_bytes(text.encode(encoding))
    result = run_import(path, load_spec(ZZ_TOML))
    assert len(result.features) == 82
    assert result.features[0]["properties"]["name"] == "工会驿站(郑州高新区枫杨办事处便民服务大厅)"
    assert result.encoding == encoding
    assert any(n.value == "gb18030" for n in result.notes) == (encoding == "gb18030")


def test_crs_is_read_from_the_column_names(tmp_path: Path) -> None:
    rows = [["名称", "lng_gcj02", "lat_gcj02"], ["甲", "113.65", "34.76"]]
    result = import_file(write_csv(tmp_path / "g.csv", rows))
    assert result.crs == "gcj02"
    assert result.features[0]["geometry"]["coordinates"] != [113.65, 34.76]
    bd = import_file(write_csv(tmp_path / "b.csv", rows), crs="bd09")
    assert bd.crs == "bd09"
    assert any("--crs bd09 was given" in n.message for n in bd.notes)


def test_xlsx_round_trip(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["see sheet 2"])
    ws = wb.create_sheet("驿站")
    ws.append(["郑州市工会驿站名单"])  # a title row above the header
    ws.append(["站点名称", "地址", "经度", "纬度", "电话", "开放时间", "服务设施"])
    ws.append(
        ["甲驿站", "人民路1号", 113.65, 34.76, 37167718779, "周一至周五 9:00-17:00", "饮水、空调"]
    )
    ws.append([None, None, None, None, None, None, None])
    ws.append(["乙驿站", "人民路2号", "-1.#IND", 34.77, None, "24小时", "热水;座椅;按摩椅"])
    ws.append(["丙驿站", "人民路3号", 113.67, 34.78, None, None, "药箱|卫生间"])
    ws.append(["丁驿站", "人民路4号", 113.68, 34.79, None, None, None])
    path = tmp_path / "stations.xlsx"
    wb.save(path)

    result = import_file(path, sheet="驿站", header_row=2, defaults={"category": "union_station"})
    assert result.format == "xlsx"
    assert rejected_rows(result) == {5: ("non_numeric_coordinate", "lon")}
    assert result.n_blank == 1
    first = result.features[0]["properties"]
    assert first["phone"] == "37167718779"
    assert first["opening_hours"] == "Mo-Fr 09:00-17:00"
    assert first["amenities"] == ["drinking_water", "air_conditioning"]
    assert first["category"] == "union_station"
    assert result.features[1]["properties"]["amenities"] == ["toilet", "first_aid"]
    assert result.features[0]["geometry"]["coordinates"] == [113.65, 34.76]
    assert validate_document(result.document()).errors == []
    by_number = import_file(path, sheet="2", header_row=2)
    assert len(by_number.features) == 3
    with pytest.raises(InvalidInputError, match=r"no sheet 'x'.*'说明', '驿站'"):
        import_file(path, sheet="x")


def test_geojson_input(tmp_path: Path) -> None:
    def feat(geom: Any, **props: Any) -> dict[str, Any]:
        return {"type": "Feature", "geometry": geom, "properties": props}

    doc = {
        "type": "FeatureCollection",
        "features": [
            feat(
                {"type": "Point", "coordinates": [113.65, 34.76]},
                name="甲",
                amenities=["饮水", "toilet"],
            ),
            feat({"type": "LineString", "coordinates": [[113.6, 34.7], [113.7, 34.8]]}, name="线"),
            feat(None, name="无几何"),
            feat(
                {"type": "Point", "coordinates": [113.66, 34.77]},
                name="乙",
                category="cooling_center",
            ),
            {**feat({"type": "Point", "coordinates": [113.67, 34.78]}, name="丙"), "id": "keep-me"},
            feat({"type": "Point", "coordinates": ["113.68", 34.79]}, name="丁"),
        ],
    }
    path = tmp_path / "in.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    result = import_file(path, id_prefix="g-")
    assert result.row_unit == "feature"
    assert rejected_rows(result) == {
        1: ("not_a_point", "geometry"),
        2: ("missing_coordinate", "geometry"),
    }
    assert result.rejected[0].format("feature").startswith("feature 1: geometry: not_a_point")
    props = [f["properties"] for f in result.features]
    assert props[0]["amenities"] == ["drinking_water", "toilet"]
    assert props[1]["category"] == "cooling_center"
    assert [f["id"] for f in result.features][2] == "g-keep-me"
    assert result.features[3]["geometry"]["coordinates"] == [113.68, 34.79]


# --- Amenities and hours --------------------------------------------------------------------


def test_unknown_amenity_words_are_reported(tmp_path: Path) -> None:
    rows = [
        ["name", "lon", "lat", "facilities"],
        ["甲", "113.65", "34.76", "饮水、空调、按摩椅"],
        ["乙", "113.66", "34.77", "drinking water, first aid, massage chair"],
        ["丙", "113.67", "34.78", "微波炉 防暑药品 wifi"],
    ]
    path = write_csv(tmp_path / "a.csv", rows)
    result = import_file(path)
    unknown = [(n.row, n.value) for n in result.notes if n.kind == "unknown_amenity"]
    assert unknown == [(2, "按摩椅"), (3, "massage chair")]
    amen = [f["properties"]["amenities"] for f in result.features]
    assert amen == [
        ["drinking_water", "air_conditioning"],
        ["drinking_water", "first_aid"],
        ["microwave", "wifi", "heatstroke_medicine"],
    ]
    fixed = import_file(path, amenity_words={"按摩椅": "seating", "massage chair": "seating"})
    assert not [n for n in fixed.notes if n.kind == "unknown_amenity"]
    assert fixed.features[0]["properties"]["amenities"] == [
        "drinking_water",
        "seating",
        "air_conditioning",
    ]
    ignored = import_file(path, amenity_words={"按摩椅": None, "massage chair": None})
    assert not [n for n in ignored.notes if n.kind == "unknown_amenity"]


@pytest.mark.parametrize(
    ("word", "amenity"),
    [
        ("drink", "drinking_water"),
        ("饮水", "drinking_water"),
        ("热水", "drinking_water"),
        ("饮用水", "drinking_water"),
        ("AC", "air_conditioning"),
        ("空调", "air_conditioning"),
        ("seat", "seating"),
        ("座椅", "seating"),
        ("休息", "seating"),
        ("charging", "phone_charging"),
        ("充电", "phone_charging"),
        ("Wi-Fi", "wifi"),
        ("first_aid", "first_aid"),
        ("药箱", "first_aid"),
        ("急救", "first_aid"),
        ("厕所", "toilet"),
        ("卫生间", "toilet"),
        ("微波炉", "microwave"),
        ("防暑", "heatstroke_medicine"),
        ("防暑药品", "heatstroke_medicine"),
        ("massage", None),
    ],
)
def test_amenity_words(word: str, amenity: str | None) -> None:
    assert amenity_for_word(word) == amenity


def test_every_amenity_maps_to_itself() -> None:
    assert all(AMENITY_WORDS[a.value] == a.value for a in Amenity)
    assert set(AMENITY_WORDS.values()) <= {a.value for a in Amenity}


@pytest.mark.parametrize(
    ("text", "osm"),
    [
        ("08:00-20:00", "08:00-20:00"),
        ("Mo-Fr 09:00-17:00; PH off", "Mo-Fr 09:00-17:00; PH off"),
        ("周一至周五 09:00-17:00", "Mo-Fr 09:00-17:00"),
        ("周一至周五 08:30-12:00,13:00-17:30", "Mo-Fr 08:30-12:00,13:00-17:30"),
        ("周一至五 08:00-18:00", "Mo-Fr 08:00-18:00"),
        ("星期一至星期日 8:00-20:00", "Mo-Su 08:00-20:00"),
        ("24小时", "24/7"),
        ("全天", "24/7"),
        ("全年无休 24小时开放", "24/7"),
        ("周一至周五全天", "Mo-Fr 00:00-24:00"),
        ("工作日 8:30-17:30", "Mo-Fr 08:30-17:30"),
        ("周末 10:00-16:00", "Sa,Su 10:00-16:00"),
        ("周六、周日 10:00-16:00", "Sa,Su 10:00-16:00"),
        ("周六 09:00-12:00", "Sa 09:00-12:00"),
        ("周一、三、五 9:00-11:00", "Mo,We,Fr 09:00-11:00"),
        ("每天 07:30-22:30", "07:30-22:30"),
        ("周一至周五 9:00-17:00；周六 9:00-12:00", "Mo-Fr 09:00-17:00; Sa 09:00-12:00"),
        ("周一至周五 09:00-17:00，周末休息", "Mo-Fr 09:00-17:00; Sa,Su off"),
        ("工作日 9:00-17:00（节假日除外）", "Mo-Fr 09:00-17:00; PH off"),
        ("周二至周日 09:00-17:00 周一闭馆", "Tu-Su 09:00-17:00; Mo off"),
        ("上午8:00-12:00 下午2:00-6:00", "08:00-12:00,14:00-18:00"),
        ("早8点半至晚6点", "08:30-18:00"),
        ("8时30分-17时30分", "08:30-17:30"),
        ("08:00～20:00", "08:00-20:00"),
        ("8:00—17:00", "08:00-17:00"),
        ("工作日开放", None),
        ("周日", None),
        ("周一到周五", None),
        ("夏季 08:00-20:00", None),
        ("请电话咨询", None),
        ("", None),
    ],
)
def test_convert_hours(text: str, osm: str | None) -> None:
    assert convert_hours(text) == osm


def test_guessed_marks(tmp_path: Path) -> None:
    rows = [
        ["name", "lon", "lat", "hours", "hours_from", "phone"],
        ["银行驿站", "113.65", "34.76", "周一至周五 09:00-17:00", "guess", ""],
        ["街道驿站", "113.66", "34.77", "08:00-20:00", "source", "0371-1"],
    ]
    result = import_file(
        write_csv(tmp_path / "g.csv", rows),
        mapping={"opening_hours": "hours"},
        defaults={"category": "union_station"},
        guessed=["phone"],
        guessed_when=[GuessedWhen("opening_hours", "hours_from", ("guess",))],
        rules=[Rule(column="name", contains="银行", assign={"category": "bank_outlet"})],
    )
    first, second = (f["properties"] for f in result.features)
    assert first["category"] == "bank_outlet"
    assert first["guessed"] == ["category", "opening_hours", "opening_hours_text"]
    assert second["category"] == "union_station"
    assert second["guessed"] == ["phone"]  # only properties that are present
    with pytest.raises(InvalidInputError, match="guessed"):
        import_file(write_csv(tmp_path / "g.csv", rows), guessed=["name"])


# --- Unusable input ---------------------------------------------------------------------------


def test_missing_columns_name_the_columns_that_exist(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [["label", "where"], ["a", "b"]])
    with pytest.raises(
        InvalidInputError, match=r"no column found for name, lon, lat.*'label', 'where'"
    ):
        import_file(path)
    with pytest.raises(InvalidInputError, match="no column 'nope'"):
        import_file(KR_CSV, mapping={"name": "nope"})
    with pytest.raises(InvalidInputError, match="no such file"):
        import_file(tmp_path / "missing.csv")


def test_mapping_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('crs = "gcj02"\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="unknown key 'colour'"):
        load_spec(bad)
    bad.write_text('[set]\ncategory = "bank"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="Expected one of union_station"):
        load_spec(bad)
    bad.write_text("[map\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_spec(bad)


# --- The command line -------------------------------------------------------------------------


def test_cli_zhengzhou(cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "zz.geojson"
    report = tmp_path / "report.json"
    args = ["import", str(ZZ_CSV), "--mapping", str(ZZ_TOML), "-o", str(out)]
    assert cli([*args, "--report", str(report)]) == 0
    err = capsys.readouterr().err
    assert "wrote 82 features" in err
    assert "note: row 46: opening_hours: unconverted_hours" in err
    assert "Traceback" not in err
    assert json.loads(out.read_text(encoding="utf-8")) == bundled_stations()
    # The bundled file is exactly this command with the sample buses appended.
    both = tmp_path / "both.geojson"
    assert cli([*args[:-1], str(both), "--append", str(SAMPLE_BUSES), "-q"]) == 0
    assert json.loads(both.read_text(encoding="utf-8")) == json.loads(
        BUNDLED.read_text(encoding="utf-8")
    )
    rep = json.loads(report.read_text(encoding="utf-8"))
    assert rep["accepted"] == 82 and rep["rejected"] == []
    assert rep["counts"]["notes"] == {"masked_phone": 7, "unconverted_hours": 2}


def test_cli_options_reproduce_the_mapping_file(
    cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "zz.geojson"
    meta = bundled_stations()
    argv = [
        "import", str(ZZ_CSV), "-o", str(out), "--crs", "gcj02", "--id-prefix", "zz-",
        "--map", "lon=lng_gcj02", "--map", "lat=lat_gcj02", "--map", "operator=manager_inferred",
        "--map", "amenities=facilities_inferred", "--map", "opening_hours=open_hours",
        "--map", "phone=contact_phone",
        "--set", "kind=station", "--set", "category=union_station", "--set", "status=operational",
        "--set", "source=zhengzhou-union-stations (ody-cai/yilutongxing, MIT)",
        "--recode", "coord_origin:amap_poi=poi", "--recode", "coord_origin:amap_geocode=geocoded",
        "--guessed", "amenities", "--guessed", "operator",
        "--guessed-column", "opening_hours=open_hours_origin:inferred_by_name_heuristic",
        "--rule", "name~银行:category=bank_outlet",
        "--meta", f"name={meta['name']}", "--meta", "license=MIT",
        "--meta", f"attribution={meta['attribution']}",
    ]  # fmt: skip
    assert cli(argv) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == meta


def test_cli_korean_rows_report_csv_and_strict(
    cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kr.geojson"
    report = tmp_path / "rejected.csv"
    assert cli(["import", str(KR_CSV), "-o", str(out), "--report", str(report)]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("rejected: ")]
    assert len(lines) == 6
    assert lines[2] == (
        "rejected: row 20 (line 24): lon,lat: non_numeric_coordinate: "
        "lon '-1.#IND' and lat '-1.#IND' are not numbers"
    )
    assert "6 rejected (non_numeric_coordinate 4, far_outlier 2)" in err
    assert "wrote 24 features" in err and "(6 rows rejected)" in err
    assert "위도(EPSG4326)" in err
    with report.open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["type"] == "rejected"]
    assert [(r["row"], r["reason"]) for r in rows] == [
        ("13", "far_outlier"),
        ("17", "far_outlier"),
        ("20", "non_numeric_coordinate"),
        ("23", "non_numeric_coordinate"),
        ("26", "non_numeric_coordinate"),
        ("27", "non_numeric_coordinate"),
    ]

    strict_out = tmp_path / "strict.geojson"
    assert cli(["import", str(KR_CSV), "-o", str(strict_out), "--strict", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--strict: 6 rows rejected; nothing written" in err
    assert "rejected: row" not in err  # -q: summary only
    assert not strict_out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{missing}"], "no such file"),
        (
            ["{nocols}"],
            "no column found for name, lon, lat. Columns in the file (read as utf-8): 'a', 'b'",
        ),
        (["{kr}", "--map", "colour=시설명"], "Expected one of id, lon, lat"),
        (["{kr}", "--map", "name"], "--map: Expected FIELD=COLUMN"),
        (["{kr}", "--set", "category=bank"], "Expected one of union_station"),
        (["{kr}", "--amenity-word", "x=spa"], "amenity_word"),
        (["{kr}", "--report", "{tmp}/r.txt"], "Expected a .json or .csv file"),
        (["{allbad}"], "no station accepted; nothing written"),
        (["{kr}", "--rule", "name:category"], "Expected COLUMN~TEXT:FIELD=VALUE"),
    ],
)
def test_cli_unusable_input_exits_1_without_output(
    cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    nocols = write_csv(tmp_path / "nocols.csv", [["a", "b"], ["1", "2"]])
    allbad = write_csv(tmp_path / "allbad.csv", [["name", "lon", "lat"], ["甲", "-1.#IND", ""]])
    names = {
        "allbad": str(allbad),
        "missing": str(tmp_path / "missing.csv"),
        "nocols": str(nocols),
        "kr": str(KR_CSV),
        "zz": str(ZZ_CSV),
        "tmp": str(tmp_path),
    }
    out = tmp_path / "out.geojson"
    code = cli(["import", *(a.format(**names) for a in argv), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_usage_errors_exit_2(cli: Main, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["import", str(KR_CSV)]) == 2
    assert "-o/--output FILE is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli(["import", str(KR_CSV), "-o", "x.geojson", "--crs", "utm"])
    assert exc.value.code == 2
    assert "Expected one of wgs84, gcj02, bd09" in capsys.readouterr().err


def test_cli_dry_run_writes_nothing(
    cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["import", str(KR_CSV), "--dry-run"]) == 0
    assert "dry run: 24 stations, nothing written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_every_n_rows() -> None:
    calls: list[tuple[int, int]] = []
    run_import(KR_CSV, ImportSpec(), progress=lambda d, t: calls.append((d, t)), progress_every=7)
    assert calls == [(7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]


def test_cp949_korean_csv_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "kr.csv"
    path.write_bytes(KR_CSV.read_text(encoding="utf-8").encode("cp949"))
    result = import_file(path)
    assert result.encoding == "cp949"
    assert result.columns_used["lat"] == "위도(EPSG4326)"
    assert len(result.features) == 24
    assert any("read it as CP949" in n.message for n in result.notes)


# --- Hours from several columns ([hours], --hours-format) -----------------------------------

MOIS_CSV = DATA / "mois_heat_shelters_sample_2025.csv"
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_cli_mois_weekday_weekend_hours(
    cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real Korea MOIS heat-shelter sample: weekday/weekend HHMM with 2400."""
    out = tmp_path / "mois.geojson"
    argv = ["import", str(MOIS_CSV), "--header-row", "2", "--hours-format", "weekday_weekend"]
    assert cli([*argv, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        "yizhan import: opening_hours (weekday_weekend) built from: '평일운영시작시간', "
        "'평일운영종료시간', '주말휴일운영시작시간', '주말휴일운영종료시간', "
        "'점검사항주말휴일개방여부', '점검사항야간개방여부'"
    ) in err
    assert "'평일운영시작시간'" not in err.split("not imported:")[1].splitlines()[0]
    assert (
        "yizhan import: 100 rows read, 100 accepted, 0 rejected; 27 notes (hours_interpreted 27)"
        in err
    )
    assert (
        "note: row 5: opening_hours: hours_interpreted: weekend/holiday: open flag N but times "
        "1300-1700 given: the times are used"
    ) in err
    assert (
        "note: row 17: opening_hours: hours_interpreted: weekend/holiday: open flag Y but no "
        "times: hours unknown"
    ) in err
    assert (
        "note: row 21: opening_hours: hours_interpreted: night opening flag Y: not expressed "
        "(the source gives no night times)"
    ) in err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert validate_document(doc).ok
    props = {f["properties"]["name"]: f["properties"] for f in doc["features"]}
    # row 3: 0900-1800 on weekdays and at weekends, flags blank
    assert props["은행아파트"]["opening_hours"] == "Mo-Fr 09:00-18:00; Sa,Su,PH 09:00-18:00"
    assert props["은행아파트"]["opening_hours_text"] == (
        "weekday 0900-1800; weekend/holiday 0900-1800"
    )
    # row 7: weekend times blank and weekend flag N -> closed at weekends
    assert props["내기마을노인시설"]["opening_hours"] == "Mo-Fr 09:00-21:00; Sa,Su,PH off"
    assert props["내기마을노인시설"]["opening_hours_text"] == (
        "weekday 0900-2100; weekend/holiday blank; weekend/holiday open N; night open N"
    )
    # row 8: 1800-2400 (2400 = midnight)
    assert props["월라마을야외쉼터"]["opening_hours"] == "Mo-Fr 18:00-24:00; Sa,Su,PH off"
    hours = Counter(p.get("opening_hours") for p in props.values())
    assert hours["Mo-Fr 09:00-18:00; Sa,Su,PH off"] == 40
    assert hours["Mo-Fr 10:00-18:00; Sa,Su,PH unknown"] == 19  # blank flag: not assumed closed
    assert hours["Mo-Fr 00:00-24:00; Sa,Su,PH unknown"] == 1  # 0000-2400
    assert None not in hours


def test_mois_english_column_names_are_the_defaults() -> None:
    """Line 1 names the columns in English (line 2, the Korean labels, is then a bad row)."""
    spec = ImportSpec(
        mapping={"name": "RSTR_NM", "lon": "LO", "lat": "LA"},
        hours=HoursSpec("weekday_weekend"),
    )
    result = run_import(MOIS_CSV, spec)
    assert result.hours_columns == [
        "WKDAY_OPER_BEGIN_TIME",
        "WKDAY_OPER_END_TIME",
        "WKEND_HDAY_OPER_BEGIN_TIME",
        "WKEND_HDAY_OPER_END_TIME",
        "CHCK_MATTER_WKEND_HDAY_OPN_AT",
        "CHCK_MATTER_NIGHT_OPN_AT",
    ]
    assert rejected_rows(result) == {2: ("non_numeric_coordinate", "lon,lat")}
    assert len(result.features) == 100
    assert by_name(result)["월라마을야외쉼터"]["properties"]["opening_hours"] == (
        "Mo-Fr 18:00-24:00; Sa,Su,PH off"
    )
    assert result.report()["hours_format"] == "weekday_weekend"


def day_row(name: str, lon: float, *pairs: tuple[str, str]) -> list[Any]:
    return [name, lon, 31.2, *(c for pair in pairs for c in pair)]


DAY_HEADER = ["name", "lon", "lat", *(f"{d}_{w}" for d in _DAY_NAMES for w in ("open", "close"))]
WK = ("0900", "1700")


@pytest.fixture
def day_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "days.csv",
        [
            DAY_HEADER,
            day_row("甲", 121.40, *[WK] * 5, ("CLOSED", "CLOSED"), ("", "")),
            day_row("乙", 121.41, *[("CALL", "CALL")] * 7),
            day_row("丙", 121.42, *[("CLOSED", "CLOSED")] * 7),
            day_row("丁", 121.43, *[("", "")] * 7),
            day_row("戊", 121.44, ("9am", "5pm"), *[WK] * 6),
            day_row("己", 121.45, *[WK] * 4, ("1800", "2400"), ("CALL", "CALL"), ("", "")),
        ],
    )


def test_cli_day_columns(
    cli: Main, tmp_path: Path, day_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.geojson"
    assert cli(["import", str(day_csv), "--hours-format", "day_columns", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    built = ", ".join(f"'{d}_{w}'" for d in _DAY_NAMES for w in ("open", "close"))
    assert f"yizhan import: opening_hours (day_columns) built from: {built}" in err
    assert "not imported" not in err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: row 2: opening_hours: hours_interpreted: Su: blank read as unknown",
        "note: row 3: opening_hours: hours_interpreted: Mo-Su: CALL read as unknown",
        "note: row 5: opening_hours: hours_interpreted: every day is blank: hours unknown",
        "note: row 6: opening_hours: unconverted_hours: Mo '9am'-'5pm': not two clock times, "
        "CLOSED, CALL or ALL_DAY; hours unknown, kept in opening_hours_text only",
        "note: row 6: opening_hours: hours_interpreted: Mo: 9am read as unknown",
        "note: row 7: opening_hours: hours_interpreted: Sa,Su: CALL, blank read as unknown",
    ]
    assert (
        "yizhan import: 6 rows read, 6 accepted, 0 rejected; "
        "6 notes (hours_interpreted 5, unconverted_hours 1)"
    ) in err
    props = {
        f["properties"]["name"]: f["properties"]
        for f in json.loads(out.read_text(encoding="utf-8"))["features"]
    }
    got = {n: (p.get("opening_hours"), p.get("opening_hours_text")) for n, p in props.items()}
    week = "; ".join(f"{d} 0900-1700" for d in _DAY_NAMES[:5])
    assert got == {
        "甲": ("Mo-Fr 09:00-17:00; Sa off; Su unknown", f"{week}; sat CLOSED; sun blank"),
        "乙": (None, "; ".join(f"{d} CALL" for d in _DAY_NAMES)),
        "丙": ("off", "; ".join(f"{d} CLOSED" for d in _DAY_NAMES)),
        "丁": (None, None),
        "戊": (None, "mon 9am-5pm; " + "; ".join(f"{d} 0900-1700" for d in _DAY_NAMES[1:])),
        "己": (
            "Mo-Th 09:00-17:00; Fr 18:00-24:00; Sa,Su unknown",
            "; ".join(f"{d} 0900-1700" for d in _DAY_NAMES[:4])
            + "; fri 1800-2400; sat CALL; sun blank",
        ),
    }


def test_day_columns_mapping_file_patterns_days_and_blank(tmp_path: Path) -> None:
    """Toronto-style ``monOpen``/``monClose`` named by a pattern; blank read as closed."""
    header = ["name", "lon", "lat", *(f"{d}{w}" for d in _DAY_NAMES for w in ("Open", "Close"))]
    path = write_csv(
        tmp_path / "t.csv",
        [header, day_row("A", -79.4, *[WK] * 5, ("", ""), ("", ""))],
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[hours]\nformat = "day_columns"\nopen = "{day}Open"\nclose = "{day}Close"\n'
        'days = "mon,tue,wed,thu,fri,sat,sun"\nblank = "closed"\n',
        encoding="utf-8",
    )
    result = run_import(path, load_spec(mapping))
    assert result.features[0]["properties"]["opening_hours"] == "Mo-Fr 09:00-17:00; Sa,Su off"
    assert result.notes == []
    # The same with options; --hours-days renames the days put into {day}.
    renamed = write_csv(
        tmp_path / "r.csv",
        [
            ["name", "lon", "lat", *(f"{d}_{w}" for d in "1234567" for w in ("a", "b"))],
            day_row("A", -79.4, *[WK] * 7),
        ],
    )
    out = tmp_path / "r.geojson"
    argv = ["import", str(renamed), "-o", str(out), "--hours-format", "day_columns"]
    argv += ["--hours-open", "{day}_a", "--hours-close", "{day}_b", "--hours-days", "1,2,3,4,5,6,7"]
    assert main(argv) == 0
    feature = json.loads(out.read_text(encoding="utf-8"))["features"][0]
    assert feature["properties"]["opening_hours"] == "Mo-Su 09:00-17:00"


def test_hours_columns_turn_off_the_single_hours_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "h.csv",
        [[*DAY_HEADER, "hours"], [*day_row("A", 121.4, *[WK] * 7), "周一至周五 08:00-17:00"]],
    )
    assert import_file(path).columns_used["opening_hours"] == "hours"
    result = run_import(path, ImportSpec(hours=HoursSpec("day_columns")))
    assert "opening_hours" not in result.columns_used
    assert result.features[0]["properties"]["opening_hours"] == "Mo-Su 09:00-17:00"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["{days}", "--hours-format", "day_columns", "--map", "opening_hours=mon_open"],
            "hours: [hours] / --hours-format builds opening_hours, but opening_hours is also "
            "mapped to the column 'mon_open' (map opening_hours)",
        ),
        (
            ["{days}", "--hours-format", "day_columns", "--set", "opening_hours=24/7"],
            "builds opening_hours; it cannot also be set",
        ),
        (
            ["{mois}", "--header-row", "2", "--hours-format", "day_columns"],
            "hours.open/close: no column 'mon_open', 'mon_close'",
        ),
        (
            ["{days}", "--hours-format", "day_columns", "--hours-open", "{day}Open"],
            "no column 'monOpen', 'tueOpen', 'wedOpen', 'thuOpen', 'friOpen', 'satOpen', "
            "'sunOpen' in the source (patterns '{day}Open'/'{day}_close', days "
            "mon,tue,wed,thu,fri,sat,sun); columns: 'name', 'lon', 'lat', 'mon_open'",
        ),
        (
            ["{days}", "--hours-format", "weekday_weekend"],
            "hours.weekday_begin: no column given and none of 'WKDAY_OPER_BEGIN_TIME', "
            "'평일운영시작시간' in the source; name it with --hours-column "
            "weekday_begin=COLUMN; columns: 'name', 'lon', 'lat'",
        ),
        (
            [
                *("{mois}", "--header-row", "2", "--hours-format", "weekday_weekend"),
                *("--hours-column", "weekday_end=종료"),
            ],
            "hours.weekday_end: no column '종료' in the source; columns: '쉼터시설번호'",
        ),
        (["{days}", "--hours-open", "{day}Open"], "--hours-open: needs --hours-format"),
        (
            ["{days}", "--hours-format", "day_columns", "--hours-days", "mon,tue"],
            "hours.days: Expected 7 different day names",
        ),
        (
            ["{days}", "--hours-format", "day_columns", "--hours-open", "open"],
            "hours.open: Expected a pattern with {day}",
        ),
        (
            ["{days}", "--hours-format", "weekday_weekend", "--hours-blank", "closed"],
            "hours.blank: only for format day_columns",
        ),
        (
            ["{days}", "--hours-format", "weekday_weekend", "--hours-column", "begin=x"],
            "hours.columns: Expected one of weekday_begin",
        ),
    ],
)
def test_cli_hours_refusals(
    cli: Main,
    tmp_path: Path,
    day_csv: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    out = tmp_path / "out.geojson"
    names = {"{days}": str(day_csv), "{mois}": str(MOIS_CSV)}
    code = cli(["import", *(names.get(a, a) for a in argv), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_hours_mapping_file_refusals(tmp_path: Path, day_csv: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text(
        '[map]\nopening_hours = "mon_open"\n\n[hours]\nformat = "day_columns"\n', encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match=r"also mapped to the column 'mon_open'"):
        load_spec(bad)
    bad.write_text('[hours]\nformat = "per_day"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"hours\.format: Expected one of day_columns"):
        load_spec(bad)
    bad.write_text('[hours]\nopen = "{day}Open"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"hours\.format is required"):
        load_spec(bad)
    bad.write_text('[hours]\nformat = "day_columns"\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="hours: unknown key 'colour'"):
        load_spec(bad)
    bad.write_text(
        '[hours]\nformat = "weekday_weekend"\nweekday_begin = "nope"\n', encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match=r"hours.weekday_begin: no column 'nope'.*'name'"):
        run_import(day_csv, load_spec(bad))


# --- JSON records and period_table hours (Barcelona climate shelters) ----------------------

BCN_JSON = DATA / "barcelona_shelters_sample.json"


def test_cli_barcelona_period_table_hours(
    cli: Main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """15 real records of a plain JSON list; rows are the 1-based record index."""
    out = tmp_path / "bcn.geojson"
    argv = ["import", str(BCN_JSON), "--hours-format", "period_table", "-o", str(out)]
    assert cli(argv) == 0
    err = capsys.readouterr().err
    assert (
        "yizhan import: columns: lon <- 'lon' (auto), lat <- 'lat' (auto), name <- 'name' "
        "(auto), address <- 'address' (auto), district <- 'district' (auto)"
    ) in err
    assert "yizhan import: opening_hours (period_table) built from: 'opening_hours_raw'" in err
    assert (
        "yizhan import: 15 rows read, 15 accepted, 0 rejected; "
        "7 notes (hours_interpreted 5, unconverted_hours 2)"
    ) in err
    assert (
        "note: row 10: opening_hours: unconverted_hours: row 3: days 'Diumenge, fins el 15 de "
        "setembre': not understood; hours unknown, kept in opening_hours_text only"
    ) in err
    assert (
        "note: row 12: opening_hours: unconverted_hours: row 1: period 'Horari al llarg del "
        "curs': not understood; hours unknown, kept in opening_hours_text only"
    ) in err
    assert (
        "note: row 8: opening_hours: hours_interpreted: opening_hours_raw is empty: hours unknown"
    ) in err
    assert (
        "note: row 6: opening_hours: hours_interpreted: row 2: blank days read as the row "
        "above's days"
    ) in err

    doc = json.loads(out.read_text(encoding="utf-8"))
    assert validate_document(doc).ok
    records = json.loads(BCN_JSON.read_text(encoding="utf-8"))
    assert [f["properties"]["name"] for f in doc["features"]] == [r["name"] for r in records]
    assert [f["geometry"]["coordinates"] for f in doc["features"]] == [
        [r["lon"], r["lat"]] for r in records
    ]
    props = {f["properties"]["name"]: f["properties"] for f in doc["features"]}
    can_travi = props["Casal de Barri Can Travi de la Vall d'Hebron"]
    assert can_travi["opening_hours"] == (
        "Sep-Jul off; Sep-Jul Mo-Fr 10:00-14:00,16:00-21:00; Aug off; Aug Mo-Su off"
    )
    assert can_travi["opening_hours_text"] == (
        "De setembre a juliol | De dilluns a divendres | de 10.00 h a 14.00 h i de 16.00 h a "
        "21.00 h; Agost | Tots els dies | Tancat"
    )
    assert can_travi["district"] == "Horta-Guinardó"
    assert props["Centre Esportiu Municipal Cotxeres"]["opening_hours"] == (
        "Mo-Fr 07:00-23:00; Sa 09:00-20:00; Su,PH 09:00-14:00"
    )
    diagonal_mar = props["Centre Comercial Diagonal Mar"]
    assert "opening_hours" not in diagonal_mar
    assert "Diumenge, fins el 15 de setembre" in diagonal_mar["opening_hours_text"]
    no_table = props["Complex Esportiu Municipal Estruch"]
    assert "opening_hours" not in no_table and "opening_hours_text" not in no_table
    assert sum("opening_hours" in p for p in props.values()) == 11


def test_barcelona_period_table_from_mapping_file(tmp_path: Path) -> None:
    """``[hours] format = "period_table"`` with ``table``; the report names the column."""
    records = json.loads(BCN_JSON.read_text(encoding="utf-8"))
    for r in records:
        r["horari"] = r.pop("opening_hours_raw")
    src = tmp_path / "renamed.json"
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    toml = tmp_path / "m.toml"
    toml.write_text('[hours]\nformat = "period_table"\ntable = "horari"\n', encoding="utf-8")
    result = run_import(src, load_spec(toml))
    assert result.format == "json"
    assert result.row_unit == "row"
    assert result.hours_format == "period_table"
    assert result.hours_columns == ["horari"]
    assert len(result.features) == 15
    assert result.note_counts() == {"hours_interpreted": 5, "unconverted_hours": 2}
    assert "horari is empty: hours unknown" in {n.message for n in result.notes}


def test_json_records_values_and_bad_records(tmp_path: Path) -> None:
    """Numbers become text, lists stay lists, a non-object record is rejected by number."""
    src = tmp_path / "records.json"
    rows: list[Any] = [
        {"name": "A", "lat": 41.38, "lon": 2.11, "capacity": 12,
         "opening_hours_raw": '[["", "Cada dia", "de 09.00 h a 14.00 h"]]'},
        "not a record",
        {"name": "B", "lat": "41.39", "lon": "2.12", "opening_hours_raw": None},
    ]  # fmt: skip
    src.write_text(json.dumps(rows), encoding="utf-8")
    result = run_import(src, ImportSpec(hours=HoursSpec("period_table")))
    assert [f["properties"]["name"] for f in result.features] == ["A", "B"]
    a = result.features[0]["properties"]
    assert a["capacity"] == 12
    assert a["opening_hours"] == "Mo-Su 09:00-14:00"
    assert [(r.row, r.reason) for r in result.rejected] == [(2, "invalid_feature")]
    assert [(n.row, n.kind) for n in result.notes] == [(3, "hours_interpreted")]


def test_period_table_refusals(tmp_path: Path, day_csv: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"hours\.table: no column 'opening_hours_raw'"):
        run_import(day_csv, ImportSpec(hours=HoursSpec("period_table")))
    with pytest.raises(InvalidInputError, match=r"hours\.columns: Expected one of table"):
        run_import(BCN_JSON, ImportSpec(hours=HoursSpec("period_table", columns={"x": "y"})))
    with pytest.raises(InvalidInputError, match=r"hours\.blank: only for format day_columns"):
        run_import(BCN_JSON, ImportSpec(hours=HoursSpec("period_table", blank="closed")))


def test_geojson_still_rejects_a_non_collection(tmp_path: Path) -> None:
    src = tmp_path / "x.json"
    src.write_text('{"type": "Point", "coordinates": [1, 2]}', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="or a JSON list of records"):
        run_import(src, ImportSpec())
