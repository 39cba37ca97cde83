"""``yizhan awards`` and ``GET /analysis/ranking``: CSV, XLSX and the printable HTML report
(its charts are checked in Chromium by tests/test_awards_browser.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from yizhan.api import create_app
from yizhan.cli import main
from yizhan.query.awards import bar_chart
from yizhan.settings import DEFAULT_REGISTRY, Settings

PERIOD = "2026-07"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled registry with 31 days of synthetic visits in July 2026."""
    state = tmp_path_factory.mktemp("awards-state")
    env = {"YIZHAN_STATE_DIR": str(state)}
    out = subprocess.run(
        [sys.executable, "-m", "yizhan", "usage", "generate", "--days", "31", "--seed", "1",
         "--end", "2026-07-31"],
        capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "SYNTHETIC" in out.stdout
    return state


def run_awards(demo: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(demo))
    return main(["awards", "--period", PERIOD, "-o", str(tmp), *args])


def test_awards_writes_csv_xlsx_and_html(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_awards(demo, tmp_path, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "2026-07 (network): 82 stations ranked" in out and "100% of visits SYNTHETIC" in out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "awards-2026-07-managers.csv",
        "awards-2026-07-stations.csv",
        "awards-2026-07.html",
        "awards-2026-07.xlsx",
    ]
    text = (tmp_path / "awards-2026-07-stations.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 82
    assert rows[0]["rank"] == "1" and float(rows[0]["score"]) >= float(rows[-1]["score"])
    # every component's value and points are in the file, and the points add up to the score
    for r in rows[:5]:
        points = sum(float(r[f"{c}_points"] or 0) for c in (
            "verification", "photo", "reports", "hours", "hardships", "accessibility", "utilization"))  # fmt: skip
        assert points == pytest.approx(float(r["score"]), abs=0.1)
    wb = load_workbook(tmp_path / "awards-2026-07.xlsx")
    assert wb.sheetnames == ["Stations", "Managers", "Rules"]
    ws = wb["Stations"]
    assert ws.max_row == 83 and ws["C1"].value == "id" and ws["C2"].value == rows[0]["id"]
    assert any(
        "equal scores share a rank" in str(c.value) for row in wb["Rules"].iter_rows() for c in row
    )
    html = (tmp_path / "awards-2026-07.html").read_text()
    districts = {r["district"] for r in rows if r["district"]}
    assert html.count('<svg class="chart"') == len(districts) == 15
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "SYNTHETIC" in html and "equal scores share a rank" in html


def test_awards_for_one_district(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_awards(demo, tmp_path, monkeypatch, "--district", "中原区", "--format", "html") == 0
    html = (tmp_path / "awards-2026-07-中原区.html").read_text()
    assert html.count('<svg class="chart"') == 1
    assert main(["awards", "--period", "2026-07", "--district", "北区", "-o", str(tmp_path)]) == 1
    assert "district: Expected one of" in capsys.readouterr().err
    assert main(["awards", "--period", "July", "-o", str(tmp_path)]) == 1
    assert main(["awards", "--format", "pdf", "-o", str(tmp_path)]) == 1


def test_ranking_api_formats(demo: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg.geojson"
    reg.write_bytes(DEFAULT_REGISTRY.read_bytes())
    # the registry's state, the demo's visits: copy the usage files beside this registry
    usage = tmp_path / "state" / "reg.geojson.usage"
    usage.mkdir(parents=True)
    for f in (demo / "zhengzhou.geojson.usage").glob("visits-*.npz"):
        (usage / f.name).write_bytes(f.read_bytes())
    app = create_app(Settings(registry=reg, state_dir=tmp_path / "state", reload_interval_s=0))
    with TestClient(app) as c:
        r = c.get(f"/analysis/ranking?period={PERIOD}&district=中原区&limit=3")
        assert r.status_code == 200
        body = r.json()
        assert body["scope"] == "中原区" and len(body["stations"]) == 3
        assert body["synthetic_share"] == 1.0 and "1, 2, 2, 4" in body["rules"]
        assert body["stations"][0]["rank"] == 1
        assert set(body["winners"]) == {"中原区"}
        r = c.get(f"/analysis/ranking?period={PERIOD}&format=csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert len(r.text.strip().splitlines()) == 83
        r = c.get(f"/analysis/ranking?period={PERIOD}&format=xlsx")
        assert load_workbook(io.BytesIO(r.content)).sheetnames == ["Stations", "Managers", "Rules"]
        r = c.get(f"/analysis/ranking?period={PERIOD}&format=html")
        assert r.headers["content-type"].startswith("text/html") and "<svg" in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
        score = c.get(f"/stations/{body['stations'][0]['id']}/score?period={PERIOD}").json()
        assert score["score"] == body["stations"][0]["score"]
        assert score["components"][0]["component"] == "verification"
        assert c.get("/analysis/ranking?period=2026-13").status_code == 422
        assert c.get("/analysis/ranking?district=北区").status_code == 422
        assert c.get("/stations/bus-sample-1/score").status_code == 404


def test_the_report_escapes_names(tmp_path: Path) -> None:
    svg = bar_chart(
        "<b>区</b>", [{"ranked": True, "rank": 1, "name": "<script>x</script>", "score": 50.0}]
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    assert re.search(r'<rect class="bar win" x="330" y="\d+" width="150.0"', svg)
    assert json.dumps(svg)  # plain text
