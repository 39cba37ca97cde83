"""Registry format, validation messages and round trip."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_doc, make_feature
from yizhan.errors import RegistryInvalidError
from yizhan.stations.models import StationCollection
from yizhan.stations.registry import from_document, load_registry, save_registry
from yizhan.stations.validate import validate_document

SCHEMA = Path(__file__).resolve().parent.parent / "yizhan" / "schema" / "registry.schema.json"


def errors_of(doc: Any) -> list[str]:
    return [p.format() for p in validate_document(doc).errors]


def test_valid_registry_has_no_errors(small_doc: dict[str, Any]) -> None:
    report = validate_document(small_doc)
    assert report.ok
    assert report.n_features == 10
    assert report.summary() == "valid: 10 features, 0 errors, 0 warnings"


BAD_FEATURES = [
    # (what to change, expected field, words expected in the message)
    ({"geometry": {"type": "Point", "coordinates": [200.0, 34.7]}}, "geometry", "lon out of range"),
    (
        {"geometry": {"type": "Point", "coordinates": [113.6, -91.0]}},
        "geometry",
        "lat out of range",
    ),
    (
        {"geometry": {"type": "Point", "coordinates": [math.nan, 34.7]}},
        "geometry",
        "lon must be finite",
    ),
    (
        {"geometry": {"type": "Point", "coordinates": [113.6, math.inf]}},
        "geometry",
        "lat must be finite",
    ),
    (
        {"geometry": {"type": "Point", "coordinates": ["113.6", 34.7]}},
        "geometry",
        "Expected a number for lon",
    ),
    (
        {"geometry": {"type": "Point", "coordinates": [113.6]}},
        "geometry",
        "Expected a position [lon, lat]",
    ),
    (
        {"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        "geometry",
        "must be a Point, got 'Polygon'",
    ),
    ({"geometry": None}, "geometry", "Expected a GeoJSON Point"),
    ({"properties": {"kind": "station"}}, "properties.name", "Field required"),
    ({"properties": {"name": "   ", "kind": "station"}}, "properties.name", "at least 1 character"),
    ({"properties": {"name": "A", "kind": "shop"}}, "properties.kind", "'shop'"),
    (
        {"properties": {"name": "A", "kind": "station", "amenities": ["drinking_water", "coffee"]}},
        "properties.amenities.1",
        "'coffee'",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "amenities": ["toilet", "toilet"]}},
        "properties.amenities",
        "listed twice",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "status": "open"}},
        "properties.status",
        "'open'",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "category": "shop"}},
        "properties.category",
        "'shop'",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "opening_hours": "Mo-Fr 25:00-26:00"}},
        "properties.opening_hours",
        "unparseable opening_hours",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "opening_hours": "周一至周五 09:00-17:00"}},
        "properties.opening_hours",
        "unparseable opening_hours",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "capacity": -3}},
        "properties.capacity",
        "greater than or equal to 0",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "coord_origin": "gps"}},
        "properties.coord_origin",
        "'gps'",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "guessed": ["colour"]}},
        "properties.guessed",
        "'colour'",
    ),
    (
        {"properties": {"name": "A", "kind": "station", "last_verified_at": "yesterday"}},
        "properties.last_verified_at",
        "date",
    ),
    ({"id": 17}, "id", "Expected a string id"),
    ({"type": "Feat"}, "type", "'Feature'"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_FEATURES)
def test_each_bad_feature_is_reported_with_index_id_field_and_reason(
    small_doc: dict[str, Any], change: dict[str, Any], field: str, words: str
) -> None:
    doc = copy.deepcopy(small_doc)
    doc["features"][4].update(change)
    report = validate_document(doc)
    assert not report.ok
    [problem] = report.errors
    assert problem.index == 4
    assert problem.field is not None and problem.field.startswith(field)
    assert words in problem.message
    line = problem.format()
    assert line.startswith("error: feature 4")
    if isinstance(doc["features"][4]["id"], str):
        assert "(id 'zz-04')" in line


def test_every_error_is_reported_not_just_the_first(small_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(small_doc)
    doc["features"][1]["geometry"]["coordinates"] = [113.6, 95.0]
    doc["features"][2]["properties"]["amenities"] = ["jacuzzi"]
    doc["features"][5]["id"] = "zz-00"
    del doc["features"][8]["properties"]["name"]
    report = validate_document(doc)
    assert [p.index for p in report.errors] == [1, 2, 5, 8]
    dup = report.errors[2]
    assert dup.field == "id" and "duplicate id (first used by feature 0)" in dup.message


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([], "Expected a GeoJSON FeatureCollection object"),
        ({"type": "Feature"}, "Expected type 'FeatureCollection'"),
        ({"type": "FeatureCollection", "features": {}}, "features: Expected a list"),
        ({"type": "FeatureCollection", "features": [], "crs": {"type": "name"}}, "no 'crs' member"),
    ],
)
def test_document_level_errors(doc: Any, words: str) -> None:
    assert any(words in e for e in errors_of(doc))


def test_near_duplicate_with_same_normalized_name_warns() -> None:
    doc = make_doc(
        [
            make_feature("a", 113.6, 34.7, name="工会驿站 (金水)"),
            make_feature(
                "b", 113.60005, 34.70003, name="工会驿站（金水）"
            ),  # full-width brackets, ~6 m
            make_feature("c", 113.6002, 34.7, name="工会驿站（金水）"),  # ~18 m: not a duplicate
            make_feature("d", 113.60001, 34.7, name="Other"),
        ]
    )
    report = validate_document(doc)
    assert report.ok
    [w] = report.warnings
    assert (
        w.index == 1
        and w.id == "b"
        and "likely a duplicate" in w.message
        and "feature 0" in w.message
    )


def test_swapped_lat_lon_warns_for_the_registry_region() -> None:
    # Barcelona: lon ~2.17, lat ~41.39. A [lat, lon] entry is still in range, so only a warning.
    feats = [make_feature(f"b{i}", 2.15 + i * 0.005, 41.38 + i * 0.003) for i in range(8)]
    feats.append(make_feature("swapped", 41.40, 2.17))
    report = validate_document(make_doc(feats))
    assert report.ok
    [w] = report.warnings
    assert w.id == "swapped" and "look swapped" in w.message


def test_unknown_properties_survive_a_round_trip(tmp_path: Path, small_doc: dict[str, Any]) -> None:
    small_doc["features"][0]["properties"]["x_wechat_qr"] = "https://example.org/qr"
    small_doc["features"][0]["properties"]["nested"] = {"a": [1, 2]}
    small_doc["features"][0]["bbox"] = [113.6, 34.75, 113.6, 34.75]
    small_doc["license"] = "CC0"
    path = tmp_path / "r.geojson"
    save_registry(from_document(copy.deepcopy(small_doc)), path)
    assert json.loads(path.read_text()) == small_doc
    again = load_registry(path)
    assert again.feature("zz-00")["properties"]["nested"] == {"a": [1, 2]}


def test_invalid_registry_refuses_to_load_with_all_messages(
    tmp_path: Path, small_doc: dict[str, Any]
) -> None:
    small_doc["features"][2]["properties"]["status"] = "gone"
    small_doc["features"][6]["geometry"]["coordinates"] = [113.6, 100]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(small_doc))
    with pytest.raises(RegistryInvalidError) as info:
        load_registry(path)
    text = str(info.value)
    assert "2 errors" in text and "feature 2" in text and "feature 6" in text


def test_shipped_json_schema_matches_the_models() -> None:
    """The schema file in the repo is generated from the pydantic models and must not drift."""
    shipped = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert shipped == StationCollection.model_json_schema()
    amen = shipped["$defs"]["Amenity"]["enum"]
    assert "drinking_water" in amen and len(amen) == 23


def test_with_station_equals_a_rebuild(small_doc: dict[str, Any]) -> None:
    """Replacing one station's columns in place gives the same registry as building anew."""
    import copy as _copy

    reg = from_document(small_doc)
    changed = _copy.deepcopy(reg.features[4])
    changed["geometry"]["coordinates"] = [113.9, 34.9]
    changed["properties"].update(
        status="temporarily_closed",
        category="bank_outlet",
        amenities=["toilet", "wifi"],
        district="新区",
        last_verified_at="2026-05-01T10:00:00+08:00",
    )
    fast = reg.with_station(4, changed)
    doc = _copy.deepcopy(small_doc)
    doc["features"][4] = changed
    slow = from_document(doc)
    for name in (
        "lon",
        "lat",
        "kind",
        "category",
        "status",
        "amenity_bits",
        "district",
        "verified_day",
        "id_rank",
    ):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist(), name
    assert fast.ids == slow.ids and fast.features == slow.features
    assert reg.features[4] is not changed and reg.lon[4] != 113.9  # the original is untouched
    with pytest.raises(ValueError, match="Expected id"):
        reg.with_station(3, changed)
