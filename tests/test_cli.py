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


@pytest.fixture
def hours_file(tmp_path: Path, bus_doc: dict[str, Any]) -> Path:
    for i, f in enumerate(bus_doc["features"][:10]):
        f["properties"]["opening_hours"] = ["08:00-12:30", "24/7"][i % 2]
    bus_doc["features"][2]["properties"].pop("opening_hours")
    path = tmp_path / "h.geojson"
    path.write_text(json.dumps(bus_doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_nearest_open_at_shows_state_and_buses(
    hours_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["nearest", "--registry", str(hours_file), "--lon", "113.62", "--lat", "34.751"]
    assert main([*args, "-k", "3", "--open-at", "2026-07-15T11:00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "bus-1" in lines[0] and "[cooling bus at s1 (Stop s1), leaves 12:00]" in lines[0]
    assert "zz-01" in lines[1] and "[open, no change within a year]" in lines[1]
    assert "zz-00" in lines[2] and "[open until 12:30]" in lines[2]
    # Must stay open 2 hours: the 08:00-12:30 stations and the bus (leaves 12:00) drop out.
    assert main([*args, "-k", "3", "--open-at", "2026-07-15T11:00", "--open-for-min", "120"]) == 0
    out = capsys.readouterr().out
    assert "bus-1" not in out and "zz-00" not in out and "zz-01" in out
    # Without --open-at stations are not filtered; unknown hours are shown as such.
    assert main([*args, "-k", "2", "--kind", "station"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "zz-02" in lines[0] and "[hours unknown]" in lines[0]
    assert (
        main([*args, "-k", "1", "--open-at", "2026-07-15T13:00", "--kind", "station", "--json"])
        == 0
    )
    [f] = json.loads(capsys.readouterr().out)["features"]
    assert f["id"] == "zz-01" and f["properties"]["open_now"] is True


def test_nearest_closed_state_text(hours_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing filtered: zz-02 has no hours, zz-00 closed at 13:00 and opens tomorrow 08:00.
    args = [
        "nearest",
        "--registry",
        str(hours_file),
        "--lon",
        "113.60",
        "--lat",
        "34.75",
        "-k",
        "1",
    ]
    assert main([*args, "--kind", "station"]) == 0
    line = capsys.readouterr().out
    assert "zz-00" in line and ("[open until" in line or "[closed, opens" in line)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--open-at", "tomorrow"], 1, "--open-at: Expected 'now' or an ISO 8601 time"),
        (["--open-for-min", "-5"], 2, "argument --open-for-min: Expected a whole number of minutes 0..1440, got '-5'"),
        (["--open-for-min", "2000"], 2, "argument --open-for-min"),
    ],
)  # fmt: skip
def test_nearest_bad_time_arguments(
    hours_file: Path, args: list[str], code: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["nearest", "--registry", str(hours_file), "--lon", "113.6", "--lat", "34.75"]
    if code == 2:
        with pytest.raises(SystemExit) as info:
            main([*base, *args])
        assert info.value.code == 2
    else:
        assert main([*base, *args]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_serve_starts_the_app_with_the_options(
    registry_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`yizhan serve` validates, then hands uvicorn an app whose start-up works."""
    import uvicorn
    from fastapi.testclient import TestClient

    started: dict[str, Any] = {}

    def fake_run(app: Any, host: str, port: int, **kw: Any) -> None:
        started.update(host=host, port=port)
        with TestClient(app) as client:  # runs the lifespan, as uvicorn would
            started["health"] = client.get("/health").json()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(tmp_path))
    assert (
        main(["serve", "--registry", str(registry_file), "--host", "0.0.0.0", "--port", "8123"])
        == 0
    )
    assert started["host"] == "0.0.0.0"
    assert started["port"] == 8123
    assert started["health"]["stations"] == 10
