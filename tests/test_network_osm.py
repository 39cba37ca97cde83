"""Reading OpenStreetMap into walking networks (yizhan.network), the file format and the CLI."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod
from scipy.sparse.csgraph import connected_components

from yizhan.cli import main
from yizhan.errors import InvalidInputError
from yizhan.geo.network import WalkNetwork
from yizhan.network import NetworkFileError, build_network, load_network, save_network
from yizhan.network.build import morton_order
from yizhan.network.osm import read_walkways
from yizhan.network.store import FORMAT_VERSION
from yizhan.network.tags import (
    TAG_RULES_VERSION,
    is_blocking_node,
    is_walkable_area,
    is_walkable_way,
)

DATA = Path(__file__).resolve().parent / "data" / "network"
EXTRACTS = ["helsinki.osm.pbf", "kotka.osm.pbf", "aguascalientes.osm.pbf", "west-oakland.osm.bz2"]


# -- tag rules ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "steps"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "primary"}, True),
        ({"highway": "trunk"}, True),
        ({"highway": "trunk", "motorroad": "yes"}, False),
        ({"highway": "trunk", "motorroad": "yes", "foot": "yes"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link", "foot": "yes"}, False),
        ({"highway": "footway", "foot": "no"}, False),
        ({"highway": "primary", "foot": "use_sidepath"}, False),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "service", "access": "no"}, False),
        ({"highway": "service", "access": "private", "foot": "yes"}, True),
        ({"highway": "service", "access": "private", "foot": "permissive"}, True),
        ({"highway": "service", "access": "private", "foot": "designated"}, True),
        ({"highway": "service", "access": "destination"}, True),
        ({"highway": "cycleway"}, False),
        ({"highway": "cycleway", "foot": "designated"}, True),
        ({"highway": "cycleway", "segregated": "yes"}, True),
        ({"highway": "construction"}, False),
        ({"highway": "proposed"}, False),
        ({"building": "yes"}, False),
        ({"highway": "bus_stop"}, False),
    ],
)
def test_way_rules(tags: dict[str, str], walkable: bool) -> None:
    assert is_walkable_way(tags) is walkable


def test_area_and_barrier_rules() -> None:
    assert is_walkable_area({"highway": "pedestrian", "area": "yes"})
    assert not is_walkable_area({"highway": "pedestrian"})  # a closed street loop
    assert not is_walkable_area({"highway": "pedestrian", "area": "yes", "access": "private"})
    assert is_blocking_node({"barrier": "gate", "access": "private"})
    assert is_blocking_node({"barrier": "gate", "locked": "yes"})
    assert is_blocking_node({"barrier": "bollard", "foot": "no"})
    assert not is_blocking_node({"barrier": "gate", "access": "private", "foot": "yes"})
    assert not is_blocking_node({"barrier": "gate"})
    assert not is_blocking_node({"highway": "crossing", "access": "no"})  # not a barrier


# -- reading --------------------------------------------------------------------------------
def test_river_fixture_counts() -> None:
    ways = read_walkways(DATA / "river.osm")
    c = ways.counts
    assert c["ways_tagged"] == 14
    assert c["ways_walkable"] == 10
    assert c["blocking_nodes"] == 1
    assert (c["areas"], c["area_links"]) == (1, 1)
    assert c["missing_nodes"] == 0
    assert 401 not in set(ways.node_id.tolist())  # the gate
    assert 501 not in set(ways.node_id.tolist())  # the motorway's pier


@pytest.mark.parametrize("name", EXTRACTS)
def test_real_extracts_build(name: str) -> None:
    data, report = build_network(DATA / name)
    net = data.network
    assert net.n_nodes > 100 and net.n_edges >= net.n_nodes - 1
    assert report.nodes == net.n_nodes
    assert data.meta["source_sha256"] and data.meta["tag_rules_version"] == TAG_RULES_VERSION
    # compacted to one connected piece
    assert connected_components(net.graph, directed=False)[0] == 1
    # lengths are great-circle metres between consecutive nodes
    geod = Geod(a=6_371_008.8, b=6_371_008.8)
    _, _, d = geod.inv(
        net.lon[net.edge_u], net.lat[net.edge_u], net.lon[net.edge_v], net.lat[net.edge_v]
    )
    np.testing.assert_allclose(net.edge_m, d, atol=1e-6)
    assert 1 <= net.edge_m.max() < 5_000
    # the OSM ids are those of the file's nodes, each once
    assert np.unique(data.osm_node_id).size == net.n_nodes


def test_helsinki_reads_steps_areas_and_leaves_out_pieces() -> None:
    _, report = build_network(DATA / "helsinki.osm.pbf")
    c = report.counts
    assert c["ways_walkable"] > 2000 and c["areas"] > 10 and c["area_links"] > 0
    assert c["missing_nodes"] > 0  # ways leave the extract
    assert report.dropped_components > 0 and report.dropped_nodes > 0
    assert len(report.dropped) <= 20
    assert report.dropped == sorted(report.dropped, key=lambda d: -d["length_m"])


def test_unreadable_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="expected an OpenStreetMap file"):
        build_network(tmp_path / "city.csv")
    with pytest.raises(InvalidInputError, match="no such file"):
        build_network(tmp_path / "missing.osm.pbf")
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"not a pbf" * 20)
    with pytest.raises(InvalidInputError, match="cannot read OpenStreetMap data"):
        build_network(junk)
    empty = tmp_path / "empty.osm"
    empty.write_text('<?xml version="1.0"?><osm version="0.6"></osm>', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="no walkable ways"):
        build_network(empty)


def test_progress_is_reported() -> None:
    seen: list[tuple[str, int, int | None]] = []
    build_network(DATA / "kotka.osm.pbf", progress=lambda *a: seen.append(a))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "hashing" and "reading" in stages and stages[-1] == "building"
    reading = [(d, t) for s, d, t in seen if s == "reading"]
    assert reading[-1][0] == reading[-1][1] > 0


def test_morton_order_keeps_neighbours_together() -> None:
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(0, 1, 4096), rng.uniform(0, 1, 4096)
    order = morton_order(lon, lat)
    assert sorted(order.tolist()) == list(range(4096))
    step = np.hypot(np.diff(lon[order]), np.diff(lat[order]))
    assert np.median(step) < 0.05  # random order: about 0.5


# -- the file format ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kotka_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, _ = build_network(DATA / "kotka.osm.pbf")
    return save_network(tmp_path_factory.mktemp("net") / "kotka.network", data)


def test_round_trip(kotka_file: Path) -> None:
    data, _ = build_network(DATA / "kotka.osm.pbf")
    back = load_network(kotka_file)
    for name in ("lon", "lat", "indptr", "indices", "length_m"):
        np.testing.assert_array_equal(getattr(back.network, name), getattr(data.network, name))
    np.testing.assert_array_equal(back.osm_node_id, data.osm_node_id)
    assert back.meta == json.loads(json.dumps(data.meta))
    assert back.meta["format_version"] == FORMAT_VERSION
    assert kotka_file.name == "kotka.network"  # no .npz appended


def _rewrite(src: Path, dst: Path, **changes: np.ndarray) -> Path:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with dst.open("wb") as fh:
        np.savez(fh, **arrays)
    return dst


def test_wrong_and_damaged_files(kotka_file: Path, tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match="no such file"):
        load_network(tmp_path / "none.network")
    text = tmp_path / "text.network"
    text.write_text("hello", encoding="utf-8")
    with pytest.raises(NetworkFileError, match="not a Yizhan walking network"):
        load_network(text)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(NetworkFileError, match="not a Yizhan walking network"):
        load_network(other)
    newer = _rewrite(kotka_file, tmp_path / "v9.network", format_version=np.array(9))
    with pytest.raises(NetworkFileError, match="format version 9"):
        load_network(newer)
    with np.load(kotka_file) as z:
        length = z["length_m"].copy()
        indptr = z["indptr"].copy()
    length[0] += 1.0
    asym = _rewrite(kotka_file, tmp_path / "asym.network", length_m=length)
    with pytest.raises(NetworkFileError, match="not symmetric"):
        load_network(asym)
    short = _rewrite(kotka_file, tmp_path / "short.network", indptr=indptr[:-1])
    with pytest.raises(NetworkFileError, match="indptr"):
        load_network(short)
    truncated = tmp_path / "truncated.network"
    truncated.write_bytes(kotka_file.read_bytes()[: kotka_file.stat().st_size // 2])
    with pytest.raises(NetworkFileError):
        load_network(truncated)


def test_flipped_byte_is_caught_by_the_checksum(kotka_file: Path, tmp_path: Path) -> None:
    raw = bytearray(kotka_file.read_bytes())
    with zipfile.ZipFile(kotka_file) as zf:
        info = zf.getinfo("length_m.npy")
    # inside the member's data: past its local header, name and the .npy header
    pos = info.header_offset + 30 + len(info.filename) + 200
    raw[pos] ^= 0xFF
    bad = tmp_path / "flipped.network"
    bad.write_bytes(bytes(raw))
    with pytest.raises(NetworkFileError, match="not a readable network file"):
        load_network(bad)


def test_save_refuses_mismatched_ids(tmp_path: Path) -> None:
    data, _ = build_network(DATA / "river.osm")
    bad = type(data)(data.network, data.osm_node_id[:-1], data.meta)
    with pytest.raises(InvalidInputError, match="osm_node_id"):
        save_network(tmp_path / "x.network", bad)


def test_loaded_network_walks_like_the_built_one(kotka_file: Path) -> None:
    net: WalkNetwork = load_network(kotka_file).network
    lon = float(net.lon.mean())
    lat = float(net.lat.mean())
    field = net.multi_source(net.snap([lon], [lat]))
    assert np.isfinite(field.node_m).all()
    assert field.node_m.max() < 10 * 1000
    assert math.isclose(float(field.node_m.min()), 0.0, abs_tol=500)


# -- CLI ------------------------------------------------------------------------------------
def test_cli_build_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "river.network"
    assert main(["network", "build", str(DATA / "river.osm"), "-o", str(out), "--progress"]) == 0
    cap = capsys.readouterr()
    assert "22 nodes" in cap.out and "reading" in cap.err
    assert main(["network", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "river.osm" in text and "tag rules v1" in text and "22 nodes" in text
    assert main(["network", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 22 and info["source_name"] == "river.osm"
    assert main(["network", "build", str(DATA / "river.osm"), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["ways_walkable"] == 10 and report["peak_rss_mb"] > 0


def test_cli_errors_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["network", "info", str(tmp_path / "none.network")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\0" * 64)
    assert main(["network", "build", str(bad), "-o", str(tmp_path / "x.network")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("yizhan network: input:") and "Traceback" not in err
    assert not (tmp_path / "x.network").exists()
