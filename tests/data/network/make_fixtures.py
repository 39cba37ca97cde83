"""Write the hand-made OSM fixtures of tests/test_network*.py (run once; the .osm files are committed).

Coordinates are laid out in metres east (x) and north (y) of (113.65 E, 34.75 N) and turned
into degrees on the sphere of R = 6,371,008.8 m, so the expected walks can be checked by hand.
The layout, every way's tags and the expected walks are described in README.md.
"""

from __future__ import annotations

import math
from pathlib import Path

LON0, LAT0 = 113.65, 34.75
M_PER_DEG = math.pi * 6_371_008.8 / 180.0
HERE = Path(__file__).resolve().parent


def lonlat(x: float, y: float) -> tuple[float, float]:
    lat = LAT0 + y / M_PER_DEG
    lon = LON0 + x / (M_PER_DEG * math.cos(math.radians(LAT0)))
    return round(lon, 9), round(lat, 9)


def write(
    name: str,
    nodes: dict[int, tuple[float, float, dict[str, str]]],
    ways: list[tuple[int, list[int], dict[str, str]]],
) -> None:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="yizhan tests">']
    for nid, (x, y, tags) in nodes.items():
        lon, lat = lonlat(x, y)
        head = f'  <node id="{nid}" version="1" lat="{lat}" lon="{lon}"'
        if tags:
            out.append(head + ">")
            out += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
            out.append("  </node>")
        else:
            out.append(head + "/>")
    for wid, refs, tags in ways:
        out.append(f'  <way id="{wid}" version="1">')
        out += [f'    <nd ref="{r}"/>' for r in refs]
        out += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        out.append("  </way>")
    out.append("</osm>")
    (HERE / name).write_text("\n".join(out) + "\n", encoding="utf-8")


def river() -> None:
    xs = [0, 100, 250, 500, 750, 1000]
    nodes: dict[int, tuple[float, float, dict[str, str]]] = {}
    for i, x in enumerate(xs):
        nodes[100 + i] = (x, 30, {})  # north street
        nodes[200 + i] = (x, 0, {})  # south street
    nodes[301] = (500, 5, {})  # bridge: steps up, footway over, steps down
    nodes[302] = (500, 25, {})
    nodes[401] = (250, 15, {"barrier": "gate", "access": "private"})  # gated footway
    nodes[501] = (-20, 15, {})  # motorway bridge piers
    nodes[601] = (250, -20, {})  # square (pedestrian area) corners and entrances
    nodes[602] = (400, -20, {})
    nodes[603] = (400, -120, {})
    nodes[604] = (350, -120, {})
    nodes[605] = (200, -120, {})
    nodes[606] = (200, -20, {})
    nodes[607] = (350, -200, {})  # dead end south of the square
    nodes[701] = (1000, -200, {})  # cycleway spur
    nodes[801] = (-50, 15, {})  # the river itself (not walkable)
    nodes[802] = (1050, 15, {})
    ways = [
        (
            1,
            [100 + i for i in range(6)],
            {"highway": "residential", "name": "North St", "oneway": "yes"},
        ),
        (2, [200 + i for i in range(6)], {"highway": "residential", "name": "South St"}),
        (3, [203, 301], {"highway": "steps"}),
        (4, [301, 302], {"highway": "footway", "bridge": "yes", "layer": "1"}),
        (5, [302, 103], {"highway": "steps", "incline": "down"}),
        (6, [201, 101], {"highway": "footway", "bridge": "yes", "access": "private"}),
        (7, [202, 401, 102], {"highway": "footway", "bridge": "yes"}),
        (8, [200, 501, 100], {"highway": "motorway", "bridge": "yes", "oneway": "yes"}),
        (9, [204, 104], {"highway": "footway", "bridge": "yes", "foot": "no"}),
        (10, [205, 105], {"highway": "cycleway", "bridge": "yes"}),
        (11, [202, 601], {"highway": "footway"}),
        (12, [601, 602, 603, 604, 605, 606, 601], {"highway": "pedestrian", "area": "yes"}),
        (13, [604, 607], {"highway": "footway"}),
        (14, [205, 701], {"highway": "cycleway", "foot": "designated"}),
        (15, [801, 802], {"waterway": "river"}),
    ]
    write("river.osm", nodes, ways)


if __name__ == "__main__":
    river()
