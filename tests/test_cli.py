"""The ``yizhan`` CLI: messages, exit codes, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from yizhan.cli import main


@pytest.fixture
def registry_file(tmp_path: Path, small_doc: dict[str, Any]) -> Path:
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps(small_doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_validate_valid_file_prints_one_line_summary(
    registry_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(registry_file)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{registry_file}: valid: 10 features, 0 errors, 0 warnings"]


def test_validate_prints_every_error_and_exits_1(
    tmp_path: Path, small_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    small_doc["features"][0]["geometry"]["coordinates"] = [113.6, 134.7]
    small_doc["features"][3]["properties"]["amenities"] = ["spa"]
    small_doc["features"][6]["id"] = "zz-03"
    small_doc["features"][9]["properties"]["opening_hours"] = "sometimes"
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(small_doc))
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 4
    assert errors[0].startswith(
        "error: feature 0 (id 'zz-00'): geometry.coordinates: lat out of range"
    )
    assert "feature 3 (id 'zz-03'): properties.amenities.0" in errors[1]
    assert "feature 6 (id 'zz-03'): id: duplicate id" in errors[2]
    assert "feature 9 (id 'zz-09'): properties.opening_hours: unparseable" in errors[3]
    assert "INVALID: 10 features, 4 errors, 0 warnings" in captured.out


def test_validate_json_report(registry_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(registry_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["features"] == 10


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "cannot read"), ("{not json", "not valid JSON")],
)
def test_validate_unreadable_file(
    tmp_path: Path, content: str | None, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.geojson"
    if content is not None:
        path.write_text(content)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_nearest_table_and_json(registry_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "nearest",
                "--registry",
                str(registry_file),
                "--lon",
                "113.652",
                "--lat",
                "34.751",
                "-k",
                "2",
                "--amenity",
                "toilet",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "zz-05" in lines[0] and "zz-07" in lines[1]
    assert (
        main(
            [
                "nearest",
                "--registry",
                str(registry_file),
                "--lon",
                "113.652",
                "--lat",
                "34.751",
                "-k",
                "1",
                "--json",
            ]
        )
        == 0
    )
    fc = json.loads(capsys.readouterr().out)
    assert fc["features"][0]["id"] == "zz-05" and fc["features"][0]["properties"]["distance_m"] > 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--lon", "113.6", "--lat", "91"],
            "argument --lat: Expected a latitude in -90..90, got '91'",
        ),
        (["--lon", "nan", "--lat", "34"], "argument --lon: Expected a longitude"),
        (["--lon=-1.#IND", "--lat", "34"], "argument --lon: Expected a number, got '-1.#IND'"),
        (
            ["--lon", "113.6", "--lat", "34", "-k", "0"],
            "argument -k: Expected a whole number >= 1, got '0'",
        ),
        (
            ["--lon", "113.6", "--lat", "34", "--amenity", "coffee"],
            "argument --amenity: invalid choice: 'coffee'",
        ),
        (
            ["--lon", "113.6", "--lat", "34", "--crs", "mars"],
            "argument --crs: Expected one of wgs84, gcj02, bd09, got 'mars'",
        ),
    ],
)
def test_nearest_bad_arguments_name_the_parameter(
    registry_file: Path, args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["nearest", "--registry", str(registry_file), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_serve_refuses_invalid_registry(
    tmp_path: Path, small_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    small_doc["features"][2]["properties"]["status"] = "gone"
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(small_doc))
    assert main(["serve", "--registry", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: feature 2 (id 'zz-02'): properties.status" in err and "not serving" in err
