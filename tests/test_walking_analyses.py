"""What issue 12 still missed: 2SFCA on foot, siting candidates uncovered on foot, the
planner map by walking, and walking analyses in the killable analysis processes (the
network file mapped there). Hand-computed graphs, and the Helsinki demo (real OSM extract,
© OpenStreetMap contributors, ODbL)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient

from yizhan.api import create_app
from yizhan.cli import main
from yizhan.errors import InvalidInputError, YizhanError
from yizhan.geo.access import two_step_fca
from yizhan.geo.coverage import coverage, select_stations
from yizhan.geo.demand import Demand
from yizhan.geo.network import Snapped, SnapTable, WalkNetwork
from yizhan.geo.siting import candidates_from_demand
from yizhan.maps.study_map import coverage_map
from yizhan.network import load_network
from yizhan.network.store import NetworkFileError
from yizhan.query.analysis import AnalysisRunner
from yizhan.query.studies import StudySpec, load_study
from yizhan.query.walk_analysis import (
    walk_coverage_analysis,
    walk_coverage_answer,
    walk_site_analysis,
    walk_site_answer,
)
from yizhan.query.walk_studies import (
    walk_access,
    walk_coverage,
    walk_layers,
    walk_members,
    walk_siting_inputs,
)
from yizhan.query.walking import Walking, WalkSpec
from yizhan.settings import BUNDLED_DATA, Settings
from yizhan.stations.registry import StationFilter, load_registry

DATA = Path(__file__).resolve().parent / "data" / "network"
REGISTRY = BUNDLED_DATA / "helsinki-amenities.geojson"
QUARTERS = DATA / "helsinki-quarters.geojson"


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIZHAN_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("YIZHAN_TIMEZONE", "Europe/Helsinki")
    monkeypatch.delenv("YIZHAN_NETWORK", raising=False)


def demand(hex_size_m: float = 100.0) -> Demand:
    return load_study(StudySpec(districts=QUARTERS, hex_size_m=hex_size_m)).demand


# -- 2SFCA on foot -----------------------------------------------------------------------------


def u_street() -> Walking:
    """A street in a U: A(0, 0) - B(0, 0.01) - C(0.01, 0.01) - D(0.01, 0), no A-D (a river).
    Each side is 1,111.95 m; 15 minutes at 4.5 km/h is 1,125 m."""
    net = WalkNetwork.from_edges(
        [0.0, 0.0, 0.01, 0.01], [0.0, 0.01, 0.01, 0.0], [0, 1, 2], [1, 2, 3]
    )
    return Walking(net, 4.5, 300.0, "u.network")


def test_walk_2sfca_by_hand_on_a_u_shaped_street() -> None:
    # Stations at A (10 places) and C (6 places); demand P1 on A-B 222 m from A (20),
    # P2 at D (30). On foot: A reaches P1 only (P2 is 3,336 m round the U), C reaches P2
    # only (1,112 m); R_A = 10/20, R_C = 6/30, so access P1 = 0.5 and P2 = 0.2.
    # By great circle (1,125 m) A also reaches P2 across the river (1,112 m): R_A = 10/50,
    # R_C = 6/30, access P1 = 0.2 and P2 = 0.2 + 0.2.
    d = Demand.from_arrays([0.0, 0.01], [0.002, 0.0], [20.0, 30.0])
    stations = ([0.0, 0.01], [0.0, 0.01])
    walk = walk_access(u_street(), stations, d, 15.0, capacity=[10.0, 6.0])
    assert walk.radius_m == pytest.approx(1125.0)
    assert walk.access.tolist() == pytest.approx([0.5, 0.2])
    assert walk.station_demand.tolist() == pytest.approx([20.0, 30.0])
    gc = two_step_fca(stations, d, 1125.0, capacity=[10.0, 6.0])
    assert gc.access.tolist() == pytest.approx([0.2, 0.4])
    # capacity is shared out, never created: Σ w·A = capacity of stations with demand
    assert float((d.weight * walk.access).sum()) == pytest.approx(16.0)


def test_walk_2sfca_equals_great_circle_on_a_straight_street() -> None:
    # One straight street along the equator: every walk is the great-circle distance.
    n = 51
    lon = np.linspace(0.0, 0.05, n)
    net = WalkNetwork.from_edges(lon, np.zeros(n), np.arange(n - 1), np.arange(1, n))
    walking = Walking(net, 4.5, 300.0, "line.network")
    rng = np.random.default_rng(7)
    s_lon = np.array([0.003, 0.02, 0.041])
    d_lon = rng.uniform(0.0, 0.05, 300)
    gap_m = np.abs(d_lon[:, None] - s_lon[None, :]) * math.pi / 180 * 6_371_008.8
    d_lon = d_lon[(np.abs(gap_m - 750.0) > 1.0).all(axis=1)]  # none on the catchment edge
    d = Demand.from_arrays(d_lon, np.zeros(d_lon.size), rng.uniform(1, 10, d_lon.size))
    stations = (s_lon, np.zeros(3))
    for decay in ("none", "gaussian"):
        walk = walk_access(walking, stations, d, 10.0, capacity=[5.0, 8.0, 3.0], decay=decay)
        gc = two_step_fca(stations, d, 750.0, capacity=[5.0, 8.0, 3.0], decay=decay)
        assert walk.radius_m == pytest.approx(750.0)
        assert np.allclose(walk.access, gc.access, rtol=1e-7, atol=1e-12)
        assert np.allclose(walk.station_demand, gc.station_demand, rtol=1e-7)
        assert (walk.access > 0).sum() == (gc.access > 0).sum() > 0


def test_cli_coverage_access_on_foot(
    network_file: Path, walking: Walking, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["coverage", str(REGISTRY), "--districts", str(QUARTERS), "--hex-size-m", "100", "-q"]
    walk = ["--metric", "walk", "--minutes", "5", "--network", str(network_file), "--access"]
    assert main([*base, *walk, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    expected = walk_access(walking, load_registry(REGISTRY), demand(), 5.0).to_dict()
    got = body["access"]
    assert got["metric"] == "walk" and got["minutes"] == 5 and got["radius_m"] == 375
    assert got["mean_access"] == pytest.approx(expected["mean_access"], rel=1e-12)
    assert got["per_district"] == expected["per_district"]
    assert main([*base, *walk]) == 0
    assert "2SFCA within 5 min on foot" in capsys.readouterr().out


# -- siting candidates --------------------------------------------------------------------------


def test_walk_siting_candidates_are_the_demand_uncovered_on_foot(walking: Walking) -> None:
    reg = load_registry(REGISTRY)
    d = demand()
    sub = reg.lon < 24.944
    ex_lon, ex_lat = reg.lon[sub], reg.lat[sub]
    out = walk_site_answer(walking, d, ex_lon, ex_lat, None, None, 3, 5.0, 30.0)
    _, _, covered = walk_siting_inputs(walking, ex_lon, ex_lat, d, 5.0)
    open_on_foot = np.flatnonzero(~covered & (d.weight > 0))
    open_by_circle = candidates_from_demand(d, ex_lon, ex_lat, 375.0)[2]
    assert set(open_by_circle.tolist()) < set(open_on_foot.tolist())  # circles hide some
    chosen = {
        (round(f["geometry"]["coordinates"][0], 6), round(f["geometry"]["coordinates"][1], 6))
        for f in out["sites"]["features"]
    }
    allowed = {(round(float(d.lon[i]), 6), round(float(d.lat[i]), 6)) for i in open_on_foot}
    assert chosen and chosen <= allowed
    # a site picked from the points the circles would have called covered: only on foot
    circle_ok = {(round(float(d.lon[i]), 6), round(float(d.lat[i]), 6)) for i in open_by_circle}
    assert out["covered_after_pct"] > out["covered_before_pct"]
    assert chosen - circle_ok or len(open_by_circle) == len(open_on_foot)


# -- the planner map by walking -----------------------------------------------------------------


def test_coverage_map_on_foot_matches_the_walking_answers(walking: Walking) -> None:
    reg = load_registry(REGISTRY)
    study = load_study(StudySpec(districts=QUARTERS, hex_size_m=100.0))
    st = select_stations(reg, None)
    fmap, result, siting = coverage_map(
        reg, study, radius_m=1000.0, n_sites=2, lang="en", walking=walking, metric="walk", minutes=5
    )
    assert result is not None and siting is not None
    cov = walk_coverage_answer(walking, st, study.demand, 1000.0, 5.0, False)
    assert result.covered_weight_pct == cov["covered_weight_pct"]
    assert result.per_district == cov["per_district"]
    site = walk_site_answer(walking, study.demand, st.lon, st.lat, None, None, 2, 5.0, 30.0)
    assert siting.to_geojson() == site["sites"]
    html = fmap.get_root().render()
    assert "Within 5 min on foot (4.5 km/h, network helsinki.network)" in html
    assert (
        f"Covered within 5 min on foot (4.5 km/h, network helsinki.network): {cov['covered_weight_pct']:.1f}%"
        in html
    )
    gc = cov["great_circle"]["covered_weight_pct"]
    assert f"for comparison, 1.0 km circles: {gc:.1f}%" in html
    assert '"walkAreas"' in html and '"coverage"' in html  # the circles stay, to compare
    with pytest.raises(YizhanError, match="walk needs a walking network"):
        coverage_map(reg, study, metric="walk")


def test_cli_map_on_foot(
    network_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "walk.html"
    base = ["map", str(REGISTRY), "--districts", str(QUARTERS), "--hex-size-m", "100", "-q"]
    code = main(
        [
            *base,
            "--metric",
            "walk",
            "--minutes",
            "5",
            "--network",
            str(network_file),
            "--lang",
            "en",
            "--sites",
            "1",
            "-o",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "within 5 min on foot (4.5 km/h, network helsinki.network)" in printed
    assert "Within 5 min on foot" in out.read_text(encoding="utf-8")
    code = main([*base, "--metric", "walk", "-o", str(tmp_path / "no.html")])
    err = capsys.readouterr().err
    assert code != 0 and "--metric" in err and "--network" in err
    assert not (tmp_path / "no.html").exists()


# -- in the analysis processes ------------------------------------------------------------------


def app(network_file: Path | None, tmp_path: Path, **overrides: object) -> TestClient:
    settings = Settings(
        registry=REGISTRY,
        network=network_file,
        districts=QUARTERS,
        state_dir=tmp_path,
        timezone="Europe/Helsinki",
        **{"hex_size_m": 100.0, **overrides},  # type: ignore[arg-type]
    )
    return TestClient(create_app(settings))


def test_api_walking_answers_come_from_analysis_processes(
    network_file: Path, walking: Walking, tmp_path: Path
) -> None:
    reg = load_registry(REGISTRY, timezone="Europe/Helsinki")
    st = select_stations(reg, None)
    with app(network_file, tmp_path) as c:
        r = c.get("/coverage", params={"metric": "walk", "minutes": 5, "access": "true"})
        assert r.status_code == 200, r.text
        assert c.app.state.analysis.pending == 0  # type: ignore[attr-defined]
        body = r.json()
        expected = walk_coverage_answer(walking, st, demand(), 1000.0, 5.0, True)
        for key, value in expected.items():
            assert body[key] == value, key
        # ... and what the server's thread computed before (registry and filter, not the
        # selected stations handed to the process)
        flt = StationFilter.make(statuses=("operational",))
        before = walk_coverage(walking, reg, demand(), 5.0, flt)
        old = before.to_dict()
        old.update(walk_members(walking, coverage(reg, demand(), 1000.0, flt), before, 5.0))
        assert {k: body[k] for k in old} == old
        assert body["access"]["metric"] == "walk" and body["access"]["radius_m"] == 375
        r = c.post("/analysis/site", json={"n_new": 2, "metric": "walk", "minutes": 5})
        assert r.status_code == 200, r.text
        site = walk_site_answer(walking, demand(), st.lon, st.lat, None, None, 2, 5.0, 30.0)
        assert r.json()["sites"] == site["sites"]
        assert r.json()["covered_after_pct"] == site["covered_after_pct"]
        m = c.get("/maps/coverage", params={"metric": "walk", "minutes": 5, "lang": "en"})
        assert m.status_code == 200
        pct = body["covered_weight_pct"]
        assert (
            f"Covered within 5 min on foot (4.5 km/h, network helsinki.network): {pct:.1f}%"
            in m.text
        )
        assert re.search(r"for comparison, 1.0 km circles: [0-9.]+%", m.text)
    with app(None, tmp_path) as c:
        for url in ("/coverage", "/maps/coverage"):
            r = c.get(url, params={"metric": "walk", "access": "true"})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "metric", url


def test_walking_analyses_count_against_the_client_quota(
    network_file: Path, tmp_path: Path
) -> None:
    with app(network_file, tmp_path, analysis_rate_per_hour=2) as c:
        assert c.get("/coverage", params={"metric": "walk", "minutes": 5}).status_code == 200
        r = c.post("/analysis/site", json={"n_new": 1, "metric": "walk", "minutes": 5})
        assert r.status_code == 200
        r = c.get("/maps/coverage", params={"metric": "walk", "minutes": 5})
        assert r.status_code == 429 and "YIZHAN_ANALYSIS_RATE_PER_HOUR" in r.json()["detail"]


def test_a_walking_analysis_past_the_hard_limit_is_stopped(
    network_file: Path, tmp_path: Path
) -> None:
    # 2.5 m hexagons: about 140,000 demand points, 2SFCA within 2 hours on foot (each
    # station's catchment the whole extract): seconds of work against a 0.5 s limit.
    with app(network_file, tmp_path, hex_size_m=2.5, analysis_timeout_s=0.5) as c:
        t0 = time.monotonic()
        r = c.get("/coverage", params={"metric": "walk", "minutes": 120, "access": "true"})
        assert r.status_code == 503, r.text
        assert "YIZHAN_ANALYSIS_TIMEOUT_S" in r.json()["detail"]
        assert time.monotonic() - t0 < 60  # liveness bound
        assert c.get("/health").status_code == 200


def test_the_network_is_mapped_in_the_analysis_process(network_file: Path, tmp_path: Path) -> None:
    plain = load_network(network_file)
    mapped = load_network(network_file, check=False, mmap=True)
    for name in ("lon", "lat", "indptr", "indices", "length_m"):
        assert np.array_equal(getattr(plain.network, name), getattr(mapped.network, name))
    assert not mapped.network.lon.flags.writeable  # read-only, from the file
    assert mapped.meta == plain.meta
    # a compressed archive cannot be mapped: a clear error naming the file
    squeezed = tmp_path / "squeezed.network"
    with np.load(network_file) as z, squeezed.open("wb") as fh:
        np.savez_compressed(fh, **{k: z[k] for k in z.files})
    assert load_network(squeezed).network.n_nodes == plain.network.n_nodes
    with pytest.raises(NetworkFileError, match=r"squeezed\.network.*compressed"):
        load_network(squeezed, mmap=True)
    # a file replaced after the server loaded it is refused, not silently used
    copy = tmp_path / "copy.network"
    copy.write_bytes(network_file.read_bytes())
    spec = Walking.load(copy, Settings()).spec()
    assert Walking.open(spec).network.n_nodes == plain.network.n_nodes
    os.replace(squeezed, copy)
    with pytest.raises(YizhanError, match="changed on disk"):
        Walking.open(spec)


# -- no snapping index in the analysis processes ------------------------------------------------


def same_snaps(a: Snapped, b: Snapped) -> bool:
    return all(
        getattr(a, name).tobytes() == getattr(b, name).tobytes()
        and getattr(a, name).dtype == getattr(b, name).dtype
        for name in Snapped.__dataclass_fields__
    )


def test_snaps_from_a_table_are_the_snaps_of_the_index(walking: Walking) -> None:
    net = walking.network
    rng = np.random.default_rng(3)
    lo_lon, lo_lat, hi_lon, hi_lat = net.bounds()
    lon, lat = rng.uniform(lo_lon, hi_lon, 3000), rng.uniform(lo_lat, hi_lat, 3000)
    table = pickle.loads(pickle.dumps(SnapTable(net.snap(lon, lat))))
    fresh = load_network(walking.path).network  # type: ignore[arg-type]
    fresh.use_snaps([table])
    # a subset in another order, with repeats, and points the table does not hold
    pick = rng.choice(lon.size, 500)
    extra_lon, extra_lat = rng.uniform(lo_lon, hi_lon, 40), rng.uniform(lo_lat, hi_lat, 40)
    q_lon = np.concatenate([lon[pick], extra_lon, [-0.0]])
    q_lat = np.concatenate([lat[pick], extra_lat, [lat[0]]])
    assert (table.find(q_lon, q_lat) >= 0).sum() == 500
    assert same_snaps(fresh.snap(lon[pick], lat[pick]), net.snap(lon[pick], lat[pick]))
    whole = fresh.snap(lon.copy(), lat.copy())
    assert whole is table.snapped and same_snaps(whole, net.snap(lon, lat))  # one comparison
    assert not fresh.index_built  # all from the table
    assert same_snaps(fresh.snap(q_lon[:-1], q_lat[:-1]), net.snap(q_lon[:-1], q_lat[:-1]))
    assert fresh.index_built  # the others from the index, built for them
    for i in range(0, 3000, 250):  # one at a time, as isochrones snap
        assert same_snaps(fresh.snap([lon[i]], [lat[i]]), net.snap(lon[i : i + 1], lat[i : i + 1]))
    with pytest.raises(InvalidInputError, match="lon/lat"):
        fresh.snap([lon[0], math.nan], [lat[0], 0.0])  # checked as before


def test_walking_analyses_in_a_process_build_no_snapping_index(
    walking: Walking, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the analysis processes run, with the spec as the routes make it and pickled as
    # the runner sends it; building the snapping index fails the test.
    reg = load_registry(REGISTRY, timezone="Europe/Helsinki")
    study = load_study(StudySpec(districts=QUARTERS, hex_size_m=100.0))
    d = study.demand
    # One time for every map: "open now" and the stamps would differ across a minute.
    when = datetime(2026, 7, 15, 12, 0, tzinfo=ZoneInfo("Europe/Helsinki"))
    st = select_stations(reg, None)
    sub = reg.lon < 24.944
    cand = (np.array([24.94, 24.95]), np.array([60.165, 60.17]))
    expected = {
        "coverage": walk_coverage_answer(walking, st, d, 1000.0, 5.0, True),
        "site": walk_site_answer(walking, d, reg.lon[sub], reg.lat[sub], None, None, 2, 5.0, 30.0),
        "cand": walk_site_answer(walking, d, st.lon, st.lat, *cand, 1, 5.0, 30.0),
    }
    gc_map = coverage_map(
        reg,
        study,
        n_sites=1,
        lang="en",
        when=when,
        walk=walk_layers(walking, reg, StationFilter(), 5.0),
    )[0]
    walk_map = coverage_map(
        reg, study, n_sites=1, lang="en", when=when, walking=walking, metric="walk", minutes=5.0
    )[0]

    def spec(*points: tuple[object, object]) -> WalkSpec:
        got = walking.spec(reg, d, points)
        assert got.snaps and got == walking.spec()  # same network
        sent: WalkSpec = pickle.loads(pickle.dumps(got))
        return sent

    def no_index(*args: object) -> None:
        raise AssertionError("the analysis process built the snapping index")

    monkeypatch.setattr("yizhan.geo.network.SegmentIndex", no_index)
    got = walk_coverage_analysis(spec((st.lon, st.lat)), st, d, 1000.0, 5.0, True)
    assert got == expected["coverage"]
    sites = walk_site_analysis(
        spec((st.lon, st.lat)), d, reg.lon[sub], reg.lat[sub], None, None, 2, 5.0, 30.0
    )
    assert sites["sites"] == expected["site"]["sites"]
    assert sites["covered_after_pct"] == expected["site"]["covered_after_pct"]
    sites = walk_site_analysis(spec((st.lon, st.lat), cand), d, st.lon, st.lat, *cand, 1, 5.0, 30.0)
    assert sites["sites"] == expected["cand"]["sites"]
    for metric, before in (("great_circle", gc_map), ("walk", walk_map)):
        opened = Walking.open(spec())
        kwargs: dict[str, Any] = {"walking": opened, "metric": metric, "minutes": 5.0}
        if metric != "walk":
            kwargs = {"walk": walk_layers(opened, reg, StationFilter(), 5.0)}
        fmap = coverage_map(reg, study, n_sites=1, lang="en", when=when, **kwargs)[0]
        assert not opened.network.index_built
        strip = re.compile(r"\w+_[0-9a-f]{32}")  # folium's random element ids
        assert strip.sub("", fmap.get_root().render()) == strip.sub(
            "", before.get_root().render()
        ), metric
    # a point not snapped by the server is still answered (the index is built for it)
    monkeypatch.undo()
    opened = Walking.open(spec())
    assert not opened.network.index_built
    opened.network.snap([24.95], [60.17])
    assert opened.network.index_built


def coverage_in_process(spec: WalkSpec, *args: Any) -> tuple[bool, dict[str, Any]]:
    """What :func:`walk_coverage_analysis` runs, and whether it built the snapping index."""
    opened = Walking.open(spec)
    answer = walk_coverage_answer(opened, *args)
    return opened.network.index_built, answer


def test_a_real_analysis_process_builds_no_snapping_index(walking: Walking) -> None:
    reg = load_registry(REGISTRY, timezone="Europe/Helsinki")
    st = select_stations(reg, None)
    d = demand()
    args = (st, d, 1000.0, 5.0, True)
    runner = AnalysisRunner(workers=1, queue=0, timeout_s=120, memory_mb=0)
    try:
        given = walking.spec(reg, d, [(st.lon, st.lat)])
        built, got = asyncio.run(runner.run(coverage_in_process, given, *args))
        assert not built and got == walk_coverage_answer(walking, *args)
        built, _ = asyncio.run(runner.run(coverage_in_process, walking.spec(), *args))
        assert built  # without the snaps the process builds it (the test can fail)
    finally:
        runner.close()


def test_the_study_is_snapped_onto_the_network_at_start_up(
    network_file: Path, tmp_path: Path
) -> None:
    """The first walking analysis does not wait for the study's demand to be snapped."""
    with app(network_file, tmp_path) as c:
        state = c.app.state  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while not state.walking._demand and time.monotonic() < deadline:
            time.sleep(0.05)
        (ref, table), *_ = state.walking._demand.values()
        assert ref() is state.study.demand
        assert state.walking.demand_table(state.study.demand) is table  # kept, not again
        assert c.get("/coverage", params={"metric": "walk", "minutes": 5}).status_code == 200
    with app(None, tmp_path) as c:  # no network: nothing is loaded ahead
        assert getattr(c.app.state, "study", None) is None  # type: ignore[attr-defined]
