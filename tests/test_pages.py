"""The workers' pages without a browser: /find, /s/{id}, posters, directions links, the
hours and freshness phrases, languages, escaping, the QR code and ``yizhan poster``.

The browser tests (tests/test_pages_browser.py) drive the same pages in headless Chromium.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
import segno
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from yizhan.api import create_app
from yizhan.cli import main
from yizhan.geo.crs import bd09_to_wgs84, gcj02_to_wgs84
from yizhan.geo.distance import haversine_m
from yizhan.query import nearby
from yizhan.query.basemap import basemap
from yizhan.settings import Settings
from yizhan.stations.registry import StationFilter, from_document, load_registry
from yizhan.stations.search import StationSearch
from yizhan.web import find as find_page
from yizhan.web import pwa, views
from yizhan.web.i18n import HARDSHIPS, REPORT_CODES, TEXT, pick_lang

XSS = '<img src=x onerror="window.__xss=1">'
HERE = (113.6500, 34.7600)  # the worker, in Zhengzhou (WGS-84)
TZ = ZoneInfo("Asia/Shanghai")


def page_doc() -> dict[str, Any]:
    """Stations east of HERE at known distances, with hours that do not depend on the clock.

    Open (24/7), nearest first: s-water (≈180 m), s-xss (≈370 m), s-phone (≈640 m),
    s-ebike (≈910 m), s-food (≈1.2 km, two phone numbers, step-free), s-far (≈2.7 km).
    Never open: s-closed (≈90 m, hours ``off``); unknown hours: s-unknown (≈270 m, a phone
    and the source's text "工作日开放"); s-paused is temporarily closed (≈140 m).
    The bus stands all day ≈460 m away.
    """

    def at(fid: str, dx_m: float, **props: Any) -> dict[str, Any]:
        return make_feature(fid, HERE[0] + dx_m / 91_500.0, HERE[1], **props)

    always = "Mo-Su 00:00-24:00"
    feats = [
        at("s-closed", 90, name="关门的驿站", opening_hours="off", amenities=["drinking_water"]),
        at(
            "s-paused",
            140,
            opening_hours=always,
            status="temporarily_closed",
            amenities=["drinking_water"],
        ),
        at(
            "s-water",
            180,
            name="饮水点",
            opening_hours=always,
            amenities=["drinking_water", "toilet"],
            district="中原区",
            last_verified_at="2026-06-01",
            address="建设路 1 号",
        ),
        at(
            "s-unknown",
            270,
            amenities=["drinking_water", "seating"],
            district="中原区",
            opening_hours_text="工作日开放",
            phone="0371-12345678",
        ),
        at(
            "s-xss",
            370,
            name=XSS,
            name_en="Bank & <b>Co</b>",
            opening_hours=always,
            amenities=["seating", "air_conditioning"],
            address="</script><script>window.__xss=2</script>",
            district="金水区",
        ),
        at("s-phone", 640, opening_hours=always, amenities=["phone_charging", "drinking_water"]),
        at("s-ebike", 910, opening_hours=always, amenities=["ebike_charging"], district="金水区"),
        at(
            "s-food",
            1200,
            opening_hours=always,
            amenities=["microwave", "toilet", "wheelchair_accessible"],
            phone="0371-6771 8779；0371-60223349",
        ),
        at("s-far", 2700, opening_hours=always, amenities=["hot_meals", "drinking_water"]),
    ]
    bus = make_bus(
        "bus-a",
        [make_stop("s1", HERE[0] + 460 / 91_500.0, HERE[1] + 0.0001, always)],
        amenities=["drinking_water", "air_conditioning"],
        name="清凉公交 A",
    )
    return make_doc([*feats, bus])


ESC_XSS = "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;"
ESC_EN = "Bank &amp; &lt;b&gt;Co&lt;/b&gt;"
ESC_ADDRESS = "&lt;/script&gt;&lt;script&gt;window.__xss=2&lt;/script&gt;"
OPEN_ORDER = ["s-water", "s-xss", "bus-a", "s-phone", "s-ebike", "s-food"]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), registry=from_document(page_doc()))) as c:
        yield c


def card_ids(html: str) -> list[str]:
    return re.findall(r'<li class="card" data-id="([^"]+)"', html)


def links(html: str, app: str) -> list[str]:
    return [unescape(h) for h in re.findall(rf'data-app="{app}" href="([^"]+)"', html)]


def find(client: TestClient, **params: Any) -> str:
    r = client.get("/find", params={"lon": HERE[0], "lat": HERE[1], **params})
    assert r.status_code == 200, r.text
    return r.text


# -- the find page -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/find"])
def test_without_position_the_page_asks_for_it(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    data = orjson.loads(re.search(r'id="yz-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data["autoLocate"] is True and data["here"] is None
    assert card_ids(html) == []
    # A district can be picked instead; every district of the registry is offered.
    assert re.findall(r'<option value="([^"]+)"', html) == ["中原区", "金水区"]
    # Only Yizhan's own scripts run: a nonce, no src to another server.
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert html.count(f'<script nonce="{nonce}">') == 1
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp.split(";")[1]
    assert re.search(r"<script[^>]+src=", html) is None


def test_lists_nearest_open_stations_and_buses_in_order(client: TestClient) -> None:
    html = find(client, src="gps")
    assert card_ids(html) == OPEN_ORDER
    assert "距您的位置" in html
    # Distances and walking minutes as printed for the first one (≈180 m).
    first = html[html.index('data-id="s-water"') :]
    assert "180 米" in first[:2000] and "步行约 4 分钟" in first[:2000]


def test_open_chip_off_lists_closed_and_unknown_too(client: TestClient) -> None:
    html = find(client, open="0")
    ids = card_ids(html)
    assert ids[:4] == ["s-closed", "s-water", "s-unknown", "s-xss"]
    assert "s-paused" not in ids  # temporarily closed: never offered
    closed = html[html.index('data-id="s-closed"') : html.index('data-id="s-water"')]
    assert "tone-closed" in closed and "已关门" in closed
    unknown = html[html.index('data-id="s-unknown"') : html.index('data-id="s-xss"')]
    assert "开放时间未知" in unknown


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        (["water"], ["s-water", "bus-a", "s-phone", "s-far"]),
        (["charging"], ["s-phone", "s-ebike"]),  # phone OR e-bike charging
        (["food"], ["s-food", "s-far"]),  # microwave OR hot meals
        (["water", "charging"], ["s-phone"]),  # chips combine with AND
        (["toilet", "food"], ["s-food"]),
        (["cooling"], ["s-xss", "bus-a"]),
        (["rest"], ["s-xss"]),
    ],
)
def test_chips_filter(client: TestClient, needs: list[str], expected: list[str]) -> None:
    html = find(client, need=needs)
    assert card_ids(html) == expected
    for key in HARDSHIPS:
        pressed = "true" if key in needs else "false"
        assert f'aria-pressed="{pressed}" data-chip="{key}"' in html


def test_chip_links_toggle_and_keep_the_rest(client: TestClient) -> None:
    html = find(client, need=["water"], src="gps")
    hrefs = dict(
        re.findall(r'class="chip" href="([^"]+)" aria-pressed="\w+" data-chip="(\w+)"', html)
    )
    by_chip = {v: parse_qs(urlsplit(unescape(k)).query) for k, v in hrefs.items()}
    assert by_chip["water"].get("need") is None  # pressing it again turns it off
    assert by_chip["toilet"]["need"] == ["water", "toilet"]
    assert by_chip["open"]["open"] == ["0"]
    for q in by_chip.values():
        assert q["lon"] == ["113.650000"] and q["src"] == ["gps"] and q["lang"] == ["zh"]


def test_no_result_says_so(client: TestClient) -> None:
    html = find(client, need=["rest", "food"])
    assert card_ids(html) == [] and 'id="yz-empty"' in html


def test_district_instead_of_a_position(client: TestClient) -> None:
    r = client.get("/find", params={"district": "金水区"})
    html = r.text
    assert r.status_code == 200 and "距金水区中心" in html
    # The centre is the mean of the district's stations: s-xss and s-ebike.
    centre = find_page.district_centres(from_document(page_doc()))["金水区"]
    assert centre[0] == pytest.approx(HERE[0] + (370 + 910) / 2 / 91_500.0, abs=1e-6)
    assert card_ids(html)[0] == "s-phone"  # at the centre, 640 m east of HERE
    # Station links do not carry a district centre as if it were the worker's position.
    assert "lon=" not in links(html, "details")[0]


def test_gcj02_position_is_converted(client: TestClient) -> None:
    from yizhan.geo.crs import wgs84_to_gcj02

    glon, glat = (float(v) for v in wgs84_to_gcj02(*HERE))
    r = client.get("/find", params={"lon": glon, "lat": glat, "crs": "gcj02"})
    assert card_ids(r.text) == OPEN_ORDER


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": 113.6}, "lat"),
        ({"lat": 34.7}, "lon"),
        ({"lon": 113.6, "lat": 91}, "lat"),
        ({"lon": "nan", "lat": 34.7}, "lon"),
        ({"district": "海淀区"}, "district"),
        ({"need": "spa"}, "need"),
        ({"open": "yes"}, "open"),
        ({"lang": "fr"}, "lang"),
        ({"src": "ip"}, "src"),
        ({"crs": "utm"}, "crs"),
    ],
)
def test_bad_input_is_422_naming_the_parameter(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    r = client.get("/find", params=params)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == field


# -- language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "header", "expected"),
    [
        (None, None, "zh"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "en-GB,zh-CN;q=0.8", "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "fr-FR,en;q=0.5,zh;q=0.7", "zh"),
        (None, "fr-FR,de;q=0.9", "zh"),
        (None, "zh;q=0,en;q=0.1", "en"),
        ("zh", "en-US", "zh"),
        ("en", "zh-CN", "en"),
    ],
)
def test_pick_lang(asked: str | None, header: str | None, expected: str) -> None:
    assert pick_lang(asked, header) == expected


def test_browser_language_and_switch(client: TestClient) -> None:
    r = client.get(
        "/find",
        params={"lon": HERE[0], "lat": HERE[1], "need": "water"},
        headers={"Accept-Language": "en-US,en;q=0.9"},
    )
    html = r.text
    assert '<html lang="en">' in html and "Stations near you" in html
    assert "180 m" in html and "Drinking water".lower() in html.lower()
    switch = unescape(re.search(r'id="yz-lang" href="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    q = parse_qs(urlsplit(switch).query)
    assert q["lang"] == ["zh"] and q["need"] == ["water"] and q["lon"] == [str(HERE[0])]
    zh = client.get(switch, headers={"Accept-Language": "en-US"}).text
    assert '<html lang="zh-CN">' in zh and "附近的驿站" in zh
    assert card_ids(zh) == card_ids(html)


def test_every_text_has_both_languages_and_the_same_placeholders() -> None:
    for key, (zh, en) in TEXT.items():
        assert zh.strip() and en.strip(), key
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), key
    for code in REPORT_CODES:
        assert f"r_{code}" in TEXT
    for chip in HARDSHIPS:
        assert f"h_{chip}" in TEXT


# -- directions ----------------------------------------------------------------------------


def _amap_point(href: str) -> tuple[float, float, str]:
    q = parse_qs(urlsplit(href).query)
    assert q["coordinate"] == ["gaode"]
    lon, lat, name = q["to"][0].split(",", 2)
    return float(lon), float(lat), name


def test_directions_land_on_the_station(client: TestClient) -> None:
    html = find(client)
    registry = from_document(page_doc())
    walks, rides = links(html, "amap_walk"), links(html, "amap_ride")
    baidus, osms = links(html, "baidu"), links(html, "osm")
    ids = card_ids(html)
    assert len(walks) == len(rides) == len(baidus) == len(osms) == len(ids)
    for fid, walk, ride, baidu, osm in zip(ids, walks, rides, baidus, osms, strict=True):
        if fid == "bus-a":
            lon, lat = HERE[0] + 460 / 91_500.0, HERE[1] + 0.0001
        else:
            lon, lat = registry.feature(fid)["geometry"]["coordinates"]
        # Amap: GCJ-02, hundreds of metres from WGS-84 in Zhengzhou; back to the station.
        glon, glat, _ = _amap_point(walk)
        assert float(haversine_m(glon, glat, lon, lat)) > 100
        wlon, wlat = (float(v) for v in gcj02_to_wgs84(glon, glat))
        assert float(haversine_m(wlon, wlat, lon, lat)) < 0.2
        assert parse_qs(urlsplit(walk).query)["mode"] == ["walk"]
        assert parse_qs(urlsplit(ride).query)["mode"] == ["ride"]
        assert _amap_point(ride)[:2] == (glon, glat)
        # Baidu: BD-09 "lat,lng".
        bq = parse_qs(urlsplit(baidu).query)
        assert bq["coord_type"] == ["bd09ll"]
        blat, blon = (float(v) for v in bq["location"][0].split(","))
        wlon, wlat = (float(v) for v in bd09_to_wgs84(blon, blat))
        assert float(haversine_m(wlon, wlat, lon, lat)) < 0.2
        # OpenStreetMap: WGS-84 as is.
        oq = parse_qs(urlsplit(osm).query)
        assert float(oq["mlon"][0]) == pytest.approx(lon, abs=1e-6)
        assert float(oq["mlat"][0]) == pytest.approx(lat, abs=1e-6)
        assert urlsplit(osm).fragment == f"map=18/{lat:.6f}/{lon:.6f}"


def test_directions_name_cannot_shift_amap_fields() -> None:
    out = views.directions(113.65, 34.76, "A,B，C", "zh")
    lon, _, name = _amap_point(out[0]["href"])
    assert name == "A B C" and lon == pytest.approx(113.6559, abs=0.002)


# -- phrases -------------------------------------------------------------------------------

NOW = datetime(2026, 7, 15, 13, 35, tzinfo=TZ)


@pytest.mark.parametrize(
    ("props", "lang", "text", "tone"),
    [
        ({"open_now": True, "next_change": "2026-07-15T14:00+08:00"}, "en", "closes in 25 min", "warn"),
        ({"open_now": True, "next_change": "2026-07-15T14:00+08:00"}, "zh", "25 分钟后关门", "warn"),
        ({"open_now": True, "next_change": "2026-07-15T20:00+08:00"}, "en", "open until 20:00", "ok"),
        ({"open_now": True, "next_change": "2026-07-16T02:00+08:00"}, "en", "open until tomorrow 02:00", "ok"),
        ({"open_now": True, "next_change": None}, "en", "open all day", "ok"),
        ({"open_now": False, "next_change": "2026-07-16T10:00+08:00"}, "en", "opens at tomorrow 10:00", "closed"),
        ({"open_now": False, "next_change": "2026-07-15T16:00+08:00"}, "en", "opens at 16:00", "closed"),
        ({"open_now": False, "next_change": "2026-07-15T16:00+08:00"}, "zh", "16:00 开门", "closed"),
        ({"open_now": False, "next_change": "2026-07-15T14:00+08:00"}, "en", "opens in 25 min", "closed"),
        ({"open_now": False, "next_change": "2026-07-20T09:00+08:00"}, "en", "opens at 07-20 09:00", "closed"),
        ({"open_now": False, "next_change": None}, "en", "closed", "closed"),
        ({"open_now": None, "next_change": None}, "en", "hours unknown", "unknown"),
        ({"kind": "cooling_bus", "leaves_at": "2026-07-15T14:00+08:00"}, "en", "leaves in 25 min", "warn"),
        ({"kind": "cooling_bus", "leaves_at": "2026-07-15T16:00+08:00"}, "zh", "停靠至 16:00", "ok"),
    ],
)  # fmt: skip
def test_hours_phrase(props: dict[str, Any], lang: Any, text: str, tone: str) -> None:
    assert views.hours_phrase(props, NOW, lang) == (text, tone)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({}, [("No on-site check recorded", "unknown")]),
        ({"last_verified_at": "2026-06-01T10:00+08:00"}, [("Checked on site 2026-06-01", "ok")]),
        (
            {"last_verified_at": "2025-01-02", "stale": True},
            [("Checked on site 2025-01-02", "ok"), ("Information may be out of date", "warn")],
        ),
        (
            {"needs_check": True, "needs_check_reasons": ["closed", "no_water", "bogus"]},
            [
                ("Several workers reported: Closed, No water", "warn"),
                ("No on-site check recorded", "unknown"),
            ],
        ),
        (
            {"needs_check": True, "needs_check_reasons": [], "stale": False},
            [
                ("Several workers reported a problem", "warn"),
                ("No on-site check recorded", "unknown"),
            ],
        ),
        ({"needs_check": False, "stale": None}, [("No on-site check recorded", "unknown")]),
    ],
)
def test_freshness(props: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert views.freshness(props, "en") == expected


@pytest.mark.parametrize(("metres", "minutes"), [(0, 1), (57, 1), (58, 2), (1000, 18)])
def test_walking_minutes(metres: float, minutes: int) -> None:
    assert views.walking_minutes(metres) == minutes


# -- escaping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "lang", "shown"),
    [
        ("/find", "zh", [ESC_XSS]),
        ("/find", "en", [ESC_EN]),
        ("/s/s-xss", "zh", [ESC_XSS, ESC_ADDRESS]),
        ("/s/s-xss", "en", [ESC_EN, ESC_XSS]),
        ("/s/s-xss/poster", "zh", [ESC_XSS, ESC_ADDRESS]),
        ("/s/s-xss/poster", "en", [ESC_EN, ESC_XSS]),
    ],
)
def test_registry_text_is_escaped(
    client: TestClient, path: str, lang: str, shown: list[str]
) -> None:
    params = {"lon": HERE[0], "lat": HERE[1]} if path == "/find" else {}
    html = client.get(path, params={**params, "lang": lang}).text
    for raw in (XSS, "<b>Co</b>", "<script>window.__xss"):
        assert raw not in html
    for text in shown:
        assert text in html
    # Inline JSON cannot close its script element.
    for blob in re.findall(r'id="yz-data">(.*?)</script>', html, re.S):
        assert "<" not in blob


# -- the station page ----------------------------------------------------------------------


def test_station_page(client: TestClient) -> None:
    r = client.get("/s/s-water", params={"lon": HERE[0], "lat": HERE[1], "lang": "en"})
    assert r.status_code == 200
    html = r.text
    assert '<h1 id="yz-name">饮水点</h1>' in html
    assert "open all day" in html and "Checked on site 2026-06-01" in html
    assert "180 m" in html and "建设路 1 号" in html
    assert re.findall(r'data-code="(\w+)"', html) == list(REPORT_CODES)
    data = orjson.loads(re.search(r'id="yz-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data["reportUrl"] == "/stations/s-water/reports"
    assert data["origin"] == [HERE[0], HERE[1]]
    assert len(links(html, "amap_walk")) == 1 and len(links(html, "osm")) == 1
    back = unescape(re.search(r'id="yz-back" href="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    assert parse_qs(urlsplit(back).query)["lon"] == ["113.650000"]


def test_bus_page_now_and_next() -> None:
    doc = make_doc(
        [
            make_bus(
                "bus-1",
                [
                    make_stop("s1", 113.621, 34.751, "Mo-Su 10:00-12:00"),
                    make_stop("s2", 113.671, 34.751, "Mo-Su 13:00-16:00", address="东门"),
                ],
                name="清凉车",
                plate="豫A·1",
                capacity=30,
            )
        ]
    )
    search = StationSearch(from_document(doc))
    at = datetime(2026, 7, 15, 11, 30, tzinfo=TZ)
    v = views.station_view(search, "bus-1", "en", now=at)
    assert v["is_bus"] and v["reports"] == []
    assert v["now"] == "Standing at: Stop s1 · leaves in 30 min"
    assert v["here"] == (113.621, 34.751)
    assert v["next"]["text"] == "Next: Stop s2, from 13:00"
    nlon, nlat, _ = _amap_point(v["next"]["links"][0]["href"])
    assert (
        float(haversine_m(*(float(x) for x in gcj02_to_wgs84(nlon, nlat)), 113.671, 34.751)) < 0.2
    )
    assert [s["hours"] for s in v["schedule"]] == ["Mo-Su 10:00-12:00", "Mo-Su 13:00-16:00"]
    late = views.station_view(search, "bus-1", "en", now=datetime(2026, 7, 15, 17, 0, tzinfo=TZ))
    assert late["now"] == "Not in service now" and late["links"] == []
    assert late["next"]["text"] == "Next: Stop s1, from tomorrow 10:00"


def test_bus_page_served(client: TestClient) -> None:
    html = client.get("/s/bus-a", params={"lang": "en"}).text
    assert "Standing at: Stop s1" in html and 'id="yz-schedule"' in html
    assert 'id="yz-report"' not in html  # reports are for stations


@pytest.mark.parametrize("path", ["/s/nope", "/s/nope/poster", "/s/%3Cb%3E"])
def test_unknown_station_is_an_html_404(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="yz-missing"' in r.text and "<b>" not in r.text


# -- posters -------------------------------------------------------------------------------


def svg_matrix(svg: str) -> np.ndarray:
    """The dark modules of segno's SVG path (``M x y`` then ``h n`` / ``m dx dy``), read
    independently of segno: row ``floor(y)``, columns ``x .. x+n``."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    path = re.search(r' d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    grid = np.zeros((size, size), dtype=bool)
    x = y = 0.0
    for cmd, args in re.findall(r"([Mmh])([-\d. ]+)", path):
        nums = [float(v) for v in args.split()]
        if cmd == "M":
            x, y = nums
        elif cmd == "m":
            x, y = x + nums[0], y + nums[1]
        else:
            grid[int(y), int(x) : int(x + nums[0])] = True
            x += nums[0]
    return grid


def poster_qr(html: str) -> tuple[str, np.ndarray]:
    url = re.search(r'<p class="url" id="yz-url">([^<]+)</p>', html).group(1)  # type: ignore[union-attr]
    svg = re.search(r'<div id="yz-qr">(<svg.*?</svg>)', html, re.S).group(1)  # type: ignore[union-attr]
    return unescape(url), svg_matrix(svg)


PUBLIC = "https://yizhan.example.org"


@pytest.fixture(scope="module")
def public_client() -> Iterator[TestClient]:
    """The test registry on a server that knows its public address."""
    settings = Settings(public_url=PUBLIC + "/")
    with TestClient(create_app(settings, registry=from_document(page_doc()))) as c:
        yield c


@pytest.mark.parametrize("fid", ["s-water", "bus-a", "s-xss"])
def test_poster_qr_encodes_the_station_url(public_client: TestClient, fid: str) -> None:
    r = public_client.get(f"/s/{fid}/poster")
    assert r.status_code == 200
    url, grid = poster_qr(r.text)
    assert url == f"{PUBLIC}/s/{fid}"
    # The drawn modules are exactly segno's symbol for that URL (4-module quiet zone).
    qr = segno.make(url, error="m", micro=False)
    want = np.array([[bool(v) for v in row] for row in qr.matrix], dtype=bool)
    assert np.array_equal(grid[4:-4, 4:-4], want)
    assert not grid[:4].any() and not grid[-4:].any()
    assert "@page{size:A4 portrait" in r.text
    assert 'id="yz-url-warning"' not in r.text and 'id="yz-url-local"' not in r.text


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1:8000", "evil.example:443"])
def test_poster_never_uses_the_host_header(
    public_client: TestClient, client: TestClient, host: str
) -> None:
    """Item 13 of issue 15: `Host: evil.example` printed `evil.example/s/…` on posters."""
    r = public_client.get("/s/s-water/poster", headers={"Host": host})
    url, grid = poster_qr(r.text)
    assert url == f"{PUBLIC}/s/s-water" and "evil" not in r.text
    qr = segno.make(url, error="m", micro=False)
    assert np.array_equal(grid[4:-4, 4:-4], np.array(qr.matrix, dtype=bool))
    # Without YIZHAN_PUBLIC_URL: the local address the server listens on, labelled, and a
    # warning on screen; still never the Host header.
    r = client.get("/s/s-water/poster?lang=en", headers={"Host": host})
    url, _ = poster_qr(r.text)
    assert url == "http://127.0.0.1:8000/s/s-water" and "evil" not in r.text
    warning = re.search(r'<p class="noprint warn" id="yz-url-warning" role="alert">([^<]+)', r.text)
    assert warning is not None and "YIZHAN_PUBLIC_URL" in warning.group(1)
    assert "http://127.0.0.1:8000/s/s-water" in warning.group(1)
    assert "local address, for testing only" in r.text  # printed under the link too


def test_public_url_setting_is_checked() -> None:
    assert Settings(public_url=" https://x.example/yz/ ").public_url == "https://x.example/yz"
    assert Settings(public_url="").public_url is None
    for bad in ("x.example", "ftp://x.example", "https://", "https://u@x.example", "https://x/?a"):
        with pytest.raises(ValueError, match="public_url"):
            Settings(public_url=bad)
    # A wildcard listening host falls back to loopback, never to a request's Host.
    base, configured = views.public_base_url(Settings(host="0.0.0.0", port=8080))
    assert (base, configured) == ("http://127.0.0.1:8080", False)
    assert views.public_base_url(Settings(host="::1"))[0] == "http://[::1]:8000"


def test_poster_qr_decodes() -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="needs zxing-cpp (pip install zxing-cpp)")
    reg = from_document(page_doc())
    url = "https://yizhan.example.org/s/s-water"
    html = views.poster_page(reg, "s-water", "https://yizhan.example.org/", "zh")
    _, grid = poster_qr(html)
    img = np.where(np.kron(grid, np.ones((8, 8), dtype=bool)), 0, 255).astype(np.uint8)
    found = zxingcpp.read_barcodes(img)
    assert [b.text for b in found] == [url]


def test_poster_contents() -> None:
    reg = from_document(page_doc())
    html = views.poster_page(reg, "s-food", "https://x.example", "en", nonce="abc")
    assert '<h1 id="yz-name">Station s-food</h1>' in html
    assert re.findall(r"<li><svg.*?<span>([^<]+)</span></li>", html) == [
        "toilet",
        "microwave",
        "wheelchair accessible",
    ]
    assert '<p class="hours" id="yz-hours">Mo-Su 00:00-24:00</p>' in html
    html = views.poster_page(reg, "s-unknown", "https://x.example", "zh")
    assert '<p class="hours" id="yz-hours">工作日开放</p>' in html  # the source's text
    bare = from_document(make_doc([make_feature("s-bare", *HERE)]))
    html = views.poster_page(bare, "s-bare", "https://x.example", "zh")
    assert "开放时间请扫码查看" in html
    html = views.poster_page(reg, "bus-a", "https://x.example", "zh")
    assert "清凉公交" in html and "Mo-Su 00:00-24:00</b> Stop s1" in html


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "reg.geojson"
    path.write_bytes(orjson.dumps(page_doc()))
    return path


def test_cli_poster_writes_html(registry_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "poster.html"
    status = main(
        [
            "poster",
            "s-water",
            "--registry",
            str(registry_file),
            "--base-url",
            "https://yizhan.example.org/",
            "--lang",
            "en",
            "-o",
            str(out),
        ]
    )
    assert status == 0
    url, grid = poster_qr(out.read_text(encoding="utf-8"))
    assert url == "https://yizhan.example.org/s/s-water"
    assert grid.any()


def test_cli_poster_stdout_and_default_base_url(
    registry_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YIZHAN_PUBLIC_URL", raising=False)
    assert main(["poster", "bus-a", "--registry", str(registry_file)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!doctype html>") and "http://127.0.0.1:8000/s/bus-a" in out
    assert "--base-url" in err and "YIZHAN_PUBLIC_URL" in err
    assert 'id="yz-url-warning"' in out
    # YIZHAN_PUBLIC_URL is the default of --base-url: no warning then.
    monkeypatch.setenv("YIZHAN_PUBLIC_URL", "https://yz.example.cn")
    assert main(["poster", "bus-a", "--registry", str(registry_file)]) == 0
    out, err = capsys.readouterr()
    assert poster_qr(out)[0] == "https://yz.example.cn/s/bus-a"
    assert 'id="yz-url-warning"' not in out and err == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["nope"], "no station or cooling bus with id 'nope'"),
        (["s-water", "--base-url", "ftp://x"], "--base-url: Expected an http:// or https://"),
        (["s-water", "--base-url", "https://"], "--base-url: Expected an http:// or https://"),
        (["s-water", "-o", "x.pdf"], "--output: the poster is written as HTML"),
    ],
)
def test_cli_poster_errors(
    registry_file: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["poster", "--registry", str(registry_file), *extra]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("yizhan poster: ") and message in err


# -- weight --------------------------------------------------------------------------------


def test_pages_are_light(client: TestClient) -> None:
    for path in ("/", f"/find?lon={HERE[0]}&lat={HERE[1]}", "/s/s-water", "/s/s-water/poster"):
        r = client.get(path, headers={"Accept-Encoding": "gzip"})
        size = len(gzip.compress(r.content))
        assert size < 20_000, (path, size)


# -- issue 15, item 1: what "open now" left out ---------------------------------------------


def left_out_ids(html: str) -> list[str]:
    section = re.search(r'<section class="card left-out" id="yz-left-out".*?</section>', html, re.S)
    return re.findall(r'<li data-id="([^"]+)">', section.group(0)) if section else []


def test_open_now_says_which_closer_places_it_left_out_and_why(client: TestClient) -> None:
    html = find(client)
    assert card_ids(html) == OPEN_ORDER
    # Closer than the farthest place listed, operational, not open now; never twice.
    assert left_out_ids(html) == ["s-closed", "s-unknown"]
    section = html[html.index('id="yz-left-out"') :]
    closed = section[section.index('data-id="s-closed"') : section.index('data-id="s-unknown"')]
    assert "tone-closed" in closed and "已关门" in closed
    unknown = section[section.index('data-id="s-unknown"') : section.index("</section>")]
    assert "开放时间未知，请先打电话" in unknown
    assert "来源写的是：工作日开放" in unknown  # the source's own hours text
    assert 'href="tel:037112345678"' in unknown
    assert "s-paused" not in section  # temporarily closed: not hidden by "open now"
    en = find(client, lang="en")
    assert "hours unknown — call first" in en and "The source says: 工作日开放" in en
    # Nothing is hidden by hours when "open now" is off.
    assert left_out_ids(find(client, open="0")) == []
    # The chips apply: a closed place without a toilet is not what a worker asked for.
    assert left_out_ids(find(client, need=["toilet"])) == []
    assert left_out_ids(find(client, need=["rest"])) == ["s-unknown"]


def closed_around(n: int) -> dict[str, Any]:
    """*n* closed stations within 50-500 m of HERE, and one open 1 km away."""
    feats = [
        make_feature(f"c{i:02d}", HERE[0] + (50 + 45 * i) / 91_500.0, HERE[1], opening_hours="off")
        for i in range(n)
    ]
    feats.append(make_feature("open-1", HERE[0] + 1000 / 91_500.0, HERE[1], opening_hours="24/7"))
    return make_doc(feats)


def test_left_out_places_beyond_the_first_five_are_counted_never_dropped() -> None:
    with TestClient(create_app(Settings(), registry=from_document(closed_around(8)))) as c:
        html = find(c, lang="en")
        assert card_ids(html) == ["open-1"]
        assert left_out_ids(html) == ["c00", "c01", "c02", "c03", "c04"]
        more = re.search(r'id="yz-left-more">([^<]+)<a href="([^"]+)"', html)
        assert more is not None
        assert more.group(1).strip() == "3 more closer places are not open now."
        q = parse_qs(urlsplit(unescape(more.group(2))).query)
        assert q["open"] == ["0"] and q["lon"] == ["113.650000"]
        # Nothing open at all in the area: the nearest closed places are still named.
        c.app.state.settings.area_radius_m = 600.0
        html = find(c, lang="en")
        assert card_ids(html) == [] and 'id="yz-empty"' in html
        assert "Nearby, but not open now" in html
        assert left_out_ids(html) == ["c00", "c01", "c02", "c03", "c04"]
        c.app.state.settings.area_radius_m = 50_000.0


def test_left_out_reason_says_when_it_opens() -> None:
    """At 07:51 a station open 08:00-20:00 "opens in 9 min"; at 06:00 "opens at 08:00"."""
    doc = make_doc(
        [
            make_feature(
                "s8", HERE[0] + 300 / 91_500.0, HERE[1], opening_hours="Mo-Su 08:00-20:00"
            ),
            make_feature("s24", HERE[0] + 1500 / 91_500.0, HERE[1], opening_hours="24/7"),
            make_feature("sx", HERE[0] + 200 / 91_500.0, HERE[1], opening_hours_text="工作日开放"),
        ]
    )
    search = StationSearch(from_document(doc))
    for at, reason in ((datetime(2026, 7, 15, 7, 51, tzinfo=TZ), "opens in 9 min"),
                       (datetime(2026, 7, 15, 6, 0, tzinfo=TZ), "opens at 08:00")):  # fmt: skip
        shown = search.nearest_at(HERE[0], HERE[1], 6, StationFilter.make(), at.timestamp())
        assert [search.registry.ids[h.index] for h in shown] == ["s24"]  # type: ignore[union-attr]
        lo = nearby.closer_left_out(search, HERE[0], HERE[1], [], at.timestamp(), 1500.0, {"s24"})
        assert [f["id"] for f in lo.features] == ["sx", "s8"] and lo.total == 2
        views_ = [find_page.left_out_view(f, at, "en", HERE) for f in lo.features]
        assert views_[0]["reason"] == "hours unknown — check before you go"
        assert views_[0]["source"] == "The source says: 工作日开放"
        assert views_[1]["reason"] == reason and views_[1]["tone"] == "closed"


# -- issue 15, item 4: far from every station ------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_far_from_every_station_says_no_station_in_your_area(client: TestClient, lang: str) -> None:
    shanghai = (121.4737, 31.2304)  # ≈ 830 km from the test stations
    r = client.get("/find", params={"lon": shanghai[0], "lat": shanghai[1], "lang": lang})
    html = r.text
    assert r.status_code == 200 and card_ids(html) == []
    assert 'id="yz-far"' in html and 'id="yz-empty"' not in html
    assert ("您附近没有驿站" if lang == "zh" else "No station in your area") in html
    assert ("50 公里" if lang == "zh" else "50 km") in html
    assert "min on foot" not in html and "步行约" not in html
    href = unescape(re.search(r'id="yz-suggest-far" href="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    q = parse_qs(urlsplit(href).query)
    assert urlsplit(href).path == "/suggest" and q["lon"] == [f"{shanghai[0]:.6f}"]
    assert left_out_ids(html) == []


def test_area_radius_is_a_setting() -> None:
    with TestClient(
        create_app(Settings(area_radius_m=150), registry=from_document(page_doc()))
    ) as c:
        # s-closed is 90 m away: in the area, but nothing open within 150 m.
        html = find(c)
        assert 'id="yz-far"' not in html and card_ids(html) == []
        assert left_out_ids(html) == ["s-closed"]
        html = find(c, lon=HERE[0] - 0.01)  # ≈ 0.9 km west: no station within 150 m
        assert 'id="yz-far"' in html


# -- issue 15, item 6: call buttons, wheelchair chip, one line for shared notes ------------


def test_call_buttons_where_a_phone_number_exists(client: TestClient) -> None:
    html = find(client)
    food = html[html.index('data-id="s-food"') : html.index("</ol>")]
    assert re.findall(r'data-app="call" href="([^"]+)"', food) == [
        "tel:037167718779",
        "tel:037160223349",
    ]
    water = html[html.index('data-id="s-water"') : html.index('data-id="s-xss"')]
    assert 'data-app="call"' not in water
    station = client.get("/s/s-food").text
    assert 'href="tel:037167718779"' in station and 'href="tel:037160223349"' in station
    assert views.phone_links("0371-67956331;0371-60223349")[1]["text"] == "0371-60223349"
    assert views.phone_links("+86 371 6795 6331")[0]["href"] == "tel:+863716795 6331".replace(
        " ", ""
    )
    assert views.phone_links("见公告") == [] and views.phone_links(None) == []


def test_wheelchair_chip(client: TestClient) -> None:
    html = find(client, need=["wheelchair"])
    assert card_ids(html) == ["s-food"]
    assert 'aria-pressed="true" data-chip="wheelchair"' in html
    card = html[html.index('data-id="s-food"') :]
    assert 'data-amenity="wheelchair_accessible"' in card and "#i-wheelchair" in card
    r = client.get("/find", params={"lon": HERE[0], "lat": HERE[1], "need": "ramp"})
    assert r.status_code == 422 and "wheelchair" in r.json()["detail"][0]["msg"]


def test_notes_every_result_shares_are_said_once() -> None:
    doc = make_doc(
        [
            make_feature(
                f"g{i}",
                HERE[0] + (100 + 100 * i) / 91_500.0,
                HERE[1],
                opening_hours="24/7",
                amenities=["drinking_water"],
                guessed=["opening_hours", "amenities"],
            )
            for i in range(3)
        ]
    )
    with TestClient(create_app(Settings(), registry=from_document(doc))) as c:
        html = find(c, lang="en")
        assert card_ids(html) == ["g0", "g1", "g2"]
        shared = re.search(r'id="yz-shared">([^<]+)<', html).group(1)  # type: ignore[union-attr]
        assert shared == (
            "Every place below: hours guessed, amenities guessed, not checked on site, "
            "may be out of date"
        )
        cards_html = html[html.index('id="yz-results"') : html.index("</ol>")]
        for repeated in ("(guessed)", "Amenities guessed", "No on-site check recorded",
                         "Information may be out of date"):  # fmt: skip
            assert repeated not in cards_html
    # Not shared by all (s-water was checked on site): every card says it for itself.
    with TestClient(create_app(Settings(), registry=from_document(page_doc()))) as c:
        html = find(c)
    assert "核实日期不详" in html[html.index('id="yz-results"') :]
    assert "未经现场核实" not in html


def test_shared_notes_keep_what_differs() -> None:
    def view(verified: str | None, stale: bool) -> dict[str, Any]:
        f = make_feature("x", *HERE, opening_hours="24/7", last_verified_at=verified)
        f["properties"].update(distance_m=10.0, bearing_deg=0.0, open_now=True, stale=stale)
        return find_page.result_view(f, 1, NOW, "en")

    results = [view(None, True), view("2025-01-02", True)]
    assert find_page.shared_notes(results, "en") == "Every place below: may be out of date"
    assert results[0]["fresh"] == [("No on-site check recorded", "unknown")]
    assert results[1]["fresh"] == [("Checked on site 2025-01-02", "ok")]
    assert find_page.shared_notes(results[:1], "en") == ""  # one result: nothing to collapse


# -- issue 15, item 2: the map's own picture -------------------------------------------------


def test_basemap_hulls_for_a_registry_of_ones_own(client: TestClient) -> None:
    r = client.get("/find/basemap.json")
    assert r.status_code == 200
    b = r.json()
    # 中原区 and 金水区 have two stations each: no hull (a line), so no outline at all.
    assert b["districts"] == {"type": "FeatureCollection", "features": []}
    assert {s[3] for s in b["stations"]} == set(from_document(page_doc()).ids)
    assert all(len(s) == 4 and isinstance(s[2], str) for s in b["stations"])
    assert XSS in {s[2] for s in b["stations"]}  # data, drawn as text by the page
    triangle = make_doc(
        [
            make_feature("a", 113.60, 34.70, district="甲区"),
            make_feature("b", 113.70, 34.70, district="甲区"),
            make_feature("c", 113.65, 34.78, district="甲区"),
        ]
    )
    with TestClient(create_app(Settings(), registry=from_document(triangle))) as c:
        (d,) = c.get("/find/basemap.json").json()["districts"]["features"]
        assert d["properties"]["name"] == "甲区" and d["properties"]["hull"] is True
        assert d["geometry"]["type"] == "Polygon" and len(d["geometry"]["coordinates"][0]) == 4


def test_basemap_of_the_bundled_registry_has_its_districts() -> None:
    settings = Settings()
    reg = load_registry(settings.registry, timezone=settings.timezone)
    with TestClient(create_app(settings, registry=reg)) as c:
        r = c.get("/find/basemap.json", params={"lon": 113.7, "lat": 34.8})
        b = r.json()
    names = [f["properties"]["name"] for f in b["districts"]["features"]]
    assert len(names) == 12 and "中原区" in names and "巩义市" in names
    assert not any(f["properties"]["hull"] for f in b["districts"]["features"])
    assert len(b["stations"]) == len(reg) and b["truncated"] is False
    assert len(gzip.compress(r.content)) < 20_000  # a picture, not a survey


def test_basemap_keeps_the_stations_nearest_the_map() -> None:
    settings = Settings()
    reg = from_document(
        make_doc([make_feature(f"p{i}", 100 + i * 0.001, 30.0) for i in range(2100)])
    )
    b = basemap(settings, reg, (100.0, 29.0, 102.2, 31.0))
    assert b["truncated"] is True and len(b["stations"]) == 2000
    # The middle of the box is 101.1 (p1100): the 2000 nearest are p100 … p2099.
    assert b["stations"][0][3] == "p100" and b["stations"][-1][3] == "p2099"


# -- issue 15, item 3: the installable app ---------------------------------------------------


def test_manifest_service_worker_and_icons(client: TestClient) -> None:
    html = find(client)
    assert '<link rel="manifest" href="/manifest.webmanifest?lang=zh">' in html
    assert 'data-yz-live="1"' in html and 'id="yz-offline"' in html
    m = client.get("/manifest.webmanifest", params={"lang": "en"})
    assert m.headers["content-type"].startswith("application/manifest+json")
    man = m.json()
    assert man["start_url"] == "/?lang=en" and man["display"] == "standalone"
    sizes = {}
    for icon in man["icons"]:
        r = client.get(icon["src"])
        assert r.status_code == 200 and r.headers["content-type"] == icon["type"]
        if icon["type"] == "image/png":
            from PIL import Image

            im = Image.open(__import__("io").BytesIO(r.content))
            sizes[icon["sizes"]] = f"{im.width}x{im.height}"
    assert sizes == {"192x192": "192x192", "512x512": "512x512"}
    sw = client.get("/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["cache-control"] == "no-cache"
    assert "__VERSION__" not in sw.text and "__TEXT__" not in sw.text
    assert f'var VERSION = "{pwa.version()}"' in sw.text and "没有网络" in sw.text
    assert client.get("/static/app/nope.png").status_code == 404
    # The script that registers it is in the page's one nonce'd script.
    assert 'navigator.serviceWorker.register("/sw.js")' in html


# -- issue 15, item 5: the suggestion form ---------------------------------------------------


def test_suggest_page(client: TestClient) -> None:
    r = client.get("/suggest", params={"lon": HERE[0], "lat": HERE[1], "src": "gps", "lang": "en"})
    assert r.status_code == 200
    html = r.text
    assert "Suggest a place" in html and "Position: 113.65000, 34.76000" in html
    assert re.findall(r'name="amenities" value="(\w+)"', html)[:4] == [
        "drinking_water",
        "toilet",
        "seating",
        "air_conditioning",
    ]
    data = orjson.loads(re.search(r'id="yz-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data["here"] == [HERE[0], HERE[1]] and data["src"] == "gps"
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/suggest", params={"lon": 1}).status_code == 422
    # The find page offers it, with the worker's position.
    href = unescape(re.search(r'id="yz-suggest" href="([^"]+)"', find(client, src="gps")).group(1))  # type: ignore[union-attr]
    assert parse_qs(urlsplit(href).query)["lat"] == ["34.760000"]
