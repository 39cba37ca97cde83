"""The planner's usage layers: stations by utilization, bus stops by visits, bus moves from
the siting code; built on a folium map (the planner map too) with names escaped."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import folium
import numpy as np
import pytest

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from yizhan.geo.demand import Demand
from yizhan.maps import planner_map
from yizhan.maps.usage_layers import COLORS, add_usage_layers, usage_class
from yizhan.query.bus_moves import bus_moves
from yizhan.query.search import build_search
from yizhan.query.usage import compute_usage, open_time, units_of
from yizhan.settings import Settings
from yizhan.stations.registry import from_document
from yizhan.stations.usage_files import SOURCE_CHECKINS, VisitRows

FIRST, LAST = date(2026, 7, 6), date(2026, 7, 12)
XSS = "<img src=x onerror=alert(1)>`${x}`"


@pytest.fixture
def search() -> Any:
    doc = make_doc(
        [
            make_feature("busy", 113.60, 34.75, opening_hours="24/7", capacity=2, name=XSS),
            make_feature("quiet", 113.61, 34.75, opening_hours="24/7", capacity=50),
            make_feature("mid", 113.62, 34.75, opening_hours="24/7"),
            make_bus(
                "bus-1",
                [
                    make_stop("s1", 113.63, 34.75, "Mo-Su 10:00-12:00"),
                    make_stop("s2", 113.80, 34.90, "Mo-Su 13:00-16:00"),
                ],
            ),
        ]
    )
    return build_search(Settings(), from_document(doc))


def usage_of(search: Any) -> Any:
    units = units_of(search)
    recs = []
    for i in range(7):
        day = (FIRST + timedelta(days=i)).toordinal()
        recs += [
            (day, "busy", 12, -1, SOURCE_CHECKINS, 100),  # 100 a day / (2 × 24 h): crowded
            (day, "quiet", 12, -1, SOURCE_CHECKINS, 2),  # 2 / (50 × 24): under-used
            (day, "mid", 12, -1, SOURCE_CHECKINS, 10),
            (day, "bus-1\ts1", 11, -1, SOURCE_CHECKINS, 40),
            (day, "bus-1\ts2", 14, -1, SOURCE_CHECKINS, 3),  # the least-used stop
        ]
    return compute_usage(
        VisitRows.from_records(recs), units, FIRST, LAST, open_time(units.hour_keys, FIRST, LAST)
    )


def test_classes() -> None:
    assert usage_class(0.01, 1.0, 1.0) == "under"
    assert usage_class(0.3, 1.0, 1.0) == "normal"
    assert usage_class(1.2, 1.0, 1.0) == "crowded"
    assert usage_class(math.nan, 3.0, 1.0) == "crowded"  # no capacity: against the median
    assert usage_class(math.nan, 0.4, 1.0) == "under"
    assert usage_class(math.nan, math.nan, 1.0) == "unknown"


def test_the_layers_build_on_a_map(search: Any) -> None:
    usage = usage_of(search)
    # demand: a cluster far from everything (uncovered), and one at the least-used stop
    lon = np.concatenate([np.full(20, 113.90), [113.80]])
    lat = np.concatenate([np.full(20, 34.80), [34.90]])
    demand = Demand(lon, lat, np.ones(21), weight_name="workers")
    moves = bus_moves(search, usage, demand, date(2026, 7, 13), radius_m=1000.0)
    assert len(moves) == 1
    move = moves[0]
    assert move["bus_id"] == "bus-1" and move["from_stop_id"] == "s2"
    assert move["to"] == pytest.approx([113.90, 34.80]) and move["gain"] == 20 and move["loss"] == 1
    assert move["window"]["from"].startswith("2026-07-13T13:00")
    m = folium.Map(location=[34.75, 113.62], zoom_start=12, tiles=None)
    layers = add_usage_layers(m, usage, moves, lang="en")
    assert set(layers) == {"utilization", "bus_stops", "bus_moves"}
    # three stations, two stops (the placements unit has no data), one move: a line and a point
    assert len(layers["utilization"]._children) == 3
    assert len(layers["bus_stops"]._children) == 2
    assert len(layers["bus_moves"]._children) == 2
    folium.LayerControl().add_to(m)
    html = m.get_root().render()
    for name in ("Utilization (stations)", "Bus stops by visits", "Suggested bus moves"):
        assert json.dumps(name) in html  # in the layer control
    assert COLORS["crowded"] in html and COLORS["under"] in html
    assert "Move Bus bus-1 from its least-used stop" in html
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;&#96;&#36;{x}&#96;" in html


def test_the_layers_on_the_planner_map(search: Any) -> None:
    usage = usage_of(search)
    m = planner_map(search.registry, lang="zh", buses=search.registry.buses, assets="cdn")
    add_usage_layers(m, usage, [], lang="zh")
    html = m.get_root().render()
    # the planner's layer control lists them (names as JSON, \u-escaped)
    assert json.dumps("使用率（驿站）") in html and json.dumps("公交停靠点访问量") in html
    assert "yz-usage-legend" in html
