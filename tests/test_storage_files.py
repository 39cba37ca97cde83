"""The read model patched per change, and the files backend across processes.

- ``Registry.passes`` is one row of ``Registry.mask``; a search patched change by change
  (``StationSearch.with_change``) answers exactly as one rebuilt from its registry, and
  keeps the KD-trees a change leaves valid (no rebuild for an edit that moves nothing);
- placements and alerts are correct for several processes on one machine (files);
- ``yizhan serve --workers 2`` on a registry file, and a second replica: an edit through
  one is served by the other within a second.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_bus, make_doc, make_feature, make_stop, run_together
from tests.storage_env import eventually, make_env
from tests.storage_servers import Replica
from yizhan.stations.placements import PlacementStore
from yizhan.stations.registry import StationFilter, from_document
from yizhan.stations.search import DEFAULT_FILTER, StationSearch
from yizhan.stations.tokens import Principal
from yizhan.stations.vocab import Amenity

ADMIN = Principal("admin", "admin")
AMENITIES = [a.value for a in Amenity]
STATUSES = ["operational", "temporarily_closed", "removed"]
HOURS = [None, "Mo-Su 08:00-20:00", "24/7", "Mo-Fr 09:00-17:00", "Sa,Su 10:00-14:00"]


def random_station(rng: random.Random, fid: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "amenities": rng.sample(AMENITIES, rng.randint(0, 3)),
        "status": rng.choice(STATUSES),
        "district": rng.choice(["中原区", "金水区", None]),
    }
    if rng.random() < 0.5:
        props["last_verified_at"] = f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    if hours := rng.choice(HOURS):
        props["opening_hours"] = hours
    if rng.random() < 0.2:
        props["category"] = rng.choice(["union_station", "bank_outlet"])
    return make_feature(
        fid,
        113.5 + rng.random() * 0.3,
        34.6 + rng.random() * 0.3,
        **{k: v for k, v in props.items() if v is not None},
    )


def filters() -> list[StationFilter]:
    return [
        DEFAULT_FILTER,
        StationFilter.make(statuses=None),
        StationFilter.make(amenities=["toilet"]),
        StationFilter.make(amenities=["drinking_water", "seating"], statuses=None),
        StationFilter.make(districts=["中原区"]),
        StationFilter.make(categories=["union_station"]),
        StationFilter.make(stale=True, stale_before=datetime(2026, 5, 1).date()),
        StationFilter.make(stale=False, stale_before=datetime(2026, 5, 1).date()),
    ]


def test_passes_is_one_row_of_mask() -> None:
    rng = random.Random(3)
    reg = from_document(make_doc([random_station(rng, f"s{i:03d}") for i in range(300)]))
    for flt in filters():
        assert [reg.passes(flt, i) for i in range(len(reg))] == reg.mask(flt).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_patched_search_answers_as_a_rebuilt_one(seed: int) -> None:
    rng = random.Random(seed)
    feats = [random_station(rng, f"s{i:03d}") for i in range(120)]
    bus = make_bus("bus-1", [make_stop("b", 113.6, 34.7, "Mo-Su 10:00-16:00")])
    search = StationSearch(from_document(make_doc([*feats, bus])))
    for flt in filters():  # warm the caches a patch carries over
        search.index_for(flt)
    _ = search.hours, search.fleet
    for step in range(40):
        reg = search.registry
        what = rng.random()
        if what < 0.1:
            after = random_station(rng, f"new{step}")
            before = None
        elif what < 0.15:
            before = reg.buses[0]
            after = {**before, "properties": {**before["properties"], "name": f"bus {step}"}}
        else:
            i = rng.randrange(len(reg))
            before = reg.features[i]
            after = random_station(rng, before["id"])
            if rng.random() < 0.6:  # often only properties change, not the place
                after["geometry"] = before["geometry"]
        search = search.with_change(before, after)
    fresh = StationSearch(search.registry)
    ts = datetime(2026, 7, 15, 9, 30, tzinfo=UTC).timestamp()
    for flt in filters():
        for _ in range(20):
            lon, lat = 113.5 + rng.random() * 0.3, 34.6 + rng.random() * 0.3
            got = [(h.index, h.distance_m) for h in search.nearest(lon, lat, 5, flt)]
            assert got == [(h.index, h.distance_m) for h in fresh.nearest(lon, lat, 5, flt)]
            got = [(h.index, h.distance_m) for h in search.nearest_open(lon, lat, 3, flt, ts)]
            assert got == [
                (h.index, h.distance_m) for h in fresh.nearest_open(lon, lat, 3, flt, ts)
            ]
            got = [(h.index, h.distance_m) for h in search.within(lon, lat, 5000, flt)]
            assert got == [(h.index, h.distance_m) for h in fresh.within(lon, lat, 5000, flt)]
    assert [search.status(i, ts) for i in range(len(fresh.registry))] == [
        fresh.status(i, ts) for i in range(len(fresh.registry))
    ]
    assert search.registry.id_rank.tolist() == fresh.registry.id_rank.tolist()
    assert search.registry.text_match("new").tolist() == fresh.registry.text_match("new").tolist()


def test_an_edit_that_moves_nothing_keeps_the_kd_trees(small_doc: dict[str, Any]) -> None:
    search = StationSearch(from_document(small_doc))
    tree = search.index_for(DEFAULT_FILTER)[0]
    f = search.registry.features[0]
    patched = search.with_change(f, {**f, "properties": {**f["properties"], "phone": "1"}})
    assert patched.index_for(DEFAULT_FILTER)[0] is tree
    closed = patched.with_change(
        patched.registry.features[0],
        {**f, "properties": {**f["properties"], "status": "temporarily_closed"}},
    )
    assert closed.index_for(DEFAULT_FILTER)[0] is not tree  # membership changed: rebuilt
    assert patched.registry.features[0]["properties"]["phone"] == "1"
    assert search.registry.features[0] is f  # the old snapshot is unchanged


def test_the_file_follower_patches_other_processes_changes(
    tmp_path: Path, small_doc: dict[str, Any]
) -> None:
    env = make_env("files", tmp_path, small_doc, lambda: pytest.fail("no database"))
    env.settings = env.settings.model_copy(update={"reload_interval_s": 0.2})
    try:
        a, b = env.open(start=True), env.open(start=True)
        tree = b.stations.search.index_for(DEFAULT_FILTER)[0]
        after = a.stations.update(
            "zz-01", {"properties": {"phone": "9"}}, a.stations.find("zz-01").etag, ADMIN
        )
        eventually(lambda: b.stations.find("zz-01") == after, 2.0)
        assert b.stations.search.index_for(DEFAULT_FILTER)[0] is tree
        assert b.stations.history("zz-01").total == 1  # logged once, by its writer
    finally:
        env.close()


PLACER = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from yizhan.errors import ConflictError
from yizhan.stations.placements import PlacementStore
path, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
store = PlacementStore(path)
base = datetime(2030, 1, 1, tzinfo=UTC)
for i in range(10):
    s = base + timedelta(hours=i)
    print(store.add(f"bus-{name}", 113.6, 34.7, s, s + timedelta(hours=1), "op").placement_id, flush=True)
    try:  # both processes try the same window of one shared bus: one wins
        print("won", store.add("shared", 113.6, 34.7, s, s + timedelta(minutes=30), "op").placement_id, flush=True)
    except ConflictError:
        print("lost", flush=True)
"""


def test_two_processes_placing_buses_keep_every_placement(tmp_path: Path) -> None:
    path = tmp_path / "r.geojson.placements.json"
    outputs = run_together(PLACER, str(path), str(tmp_path / "go"))
    lines = [line.split() for out in outputs for line in out.splitlines()]
    won = [w[1] for w in lines if w[0] == "won"]
    assert len(won) == 10 and sum(1 for w in lines if w[0] == "lost") == 10
    own = [w[0] for w in lines if w[0].startswith("pl-")]
    store = PlacementStore(path)
    assert {p.placement_id for p in store.all()} == set(own) | set(won)
    assert len(store.for_bus("shared")) == 10


@pytest.mark.slow
def test_files_replicas_and_workers_follow_each_other(
    tmp_path: Path, small_doc: dict[str, Any]
) -> None:
    path = tmp_path / "reg.geojson"
    path.write_text(json.dumps(small_doc, ensure_ascii=False), encoding="utf-8")
    env = {"YIZHAN_ADMIN_TOKEN": "admin-token-for-file-replicas", "YIZHAN_STATE_DIR": str(tmp_path)}
    auth = {"Authorization": "Bearer admin-token-for-file-replicas"}
    with (
        Replica("--registry", str(path), workers=2, env=env) as a,
        Replica("--registry", str(path), env=env) as b,
    ):
        for i in range(3):
            # a's two workers share one port: the GET may reach the worker that has not yet
            # followed the last edit, and the PATCH the other one, which answers 412 with the
            # current version, as it must; a client then reads again and retries.
            for _ in range(100):
                tag = httpx.get(f"{a.url}/stations/zz-02").headers["etag"]
                r = httpx.patch(
                    f"{a.url}/stations/zz-02",
                    json={"properties": {"phone": str(i)}},
                    headers={**auth, "If-Match": tag},
                )
                if r.status_code != 412:
                    break
                time.sleep(0.05)
            assert r.status_code == 200
            # A liveness bound, not a speed test (the delay is measured by bench_storage).
            for url in (a.url, a.url, b.url):
                eventually(
                    lambda u=url, want=r.headers["etag"]: (
                        httpx.get(f"{u}/stations/zz-02").headers["etag"] == want
                    ),
                    10.0,
                    0.01,
                )
        history = httpx.get(f"{b.url}/stations/zz-02/history").json()
        assert history["total"] == 3  # one audit line per change, across processes
