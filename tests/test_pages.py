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
from yizhan.settings import Settings
from yizhan.stations.registry import from_document
from yizhan.stations.search import StationSearch
from yizhan.web import views
from yizhan.web.i18n import HARDSHIPS, REPORT_CODES, TEXT, pick_lang

XSS = '<img src=x onerror="window.__xss=1">'
HERE = (113.6500, 34.7600)  # the worker, in Zhengzhou (WGS-84)
TZ = ZoneInfo("Asia/Shanghai")


def page_doc() -> dict[str, Any]:
    """Stations east of HERE at known distances, with hours that do not depend on the clock.

    Open (24/7), nearest first: s-water (≈180 m), s-xss (≈370 m), s-phone (≈640 m),
    s-ebike (≈910 m), s-food (≈1.2 km), s-far (≈2.7 km). Never open: s-closed (≈90 m, hours
    ``off``); unknown hours: s-unknown (≈270 m); s-paused is temporarily closed (≈140 m).
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
        at("s-unknown", 270, amenities=["drinking_water", "seating"], district="中原区"),
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
        at("s-food", 1200, opening_hours=always, amenities=["microwave", "toilet"]),
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
    centre = views.district_centres(from_document(page_doc()))["金水区"]
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


@pytest.mark.parametrize("fid", ["s-water", "bus-a", "s-xss"])
def test_poster_qr_encodes_the_station_url(client: TestClient, fid: str) -> None:
    r = client.get(f"/s/{fid}/poster")
    assert r.status_code == 200
    url, grid = poster_qr(r.text)
    assert url == f"http://testserver/s/{fid}"
    # The drawn modules are exactly segno's symbol for that URL (4-module quiet zone).
    qr = segno.make(url, error="m", micro=False)
    want = np.array([[bool(v) for v in row] for row in qr.matrix], dtype=bool)
    assert np.array_equal(grid[4:-4, 4:-4], want)
    assert not grid[:4].any() and not grid[-4:].any()
    assert "@page{size:A4 portrait" in r.text


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
    assert re.findall(r"<li><svg.*?<span>([^<]+)</span></li>", html) == ["toilet", "microwave"]
    assert '<p class="hours" id="yz-hours">Mo-Su 00:00-24:00</p>' in html
    html = views.poster_page(reg, "s-unknown", "https://x.example", "zh")
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
    registry_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["poster", "bus-a", "--registry", str(registry_file)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!doctype html>") and "http://127.0.0.1:8000/s/bus-a" in out
    assert "--base-url" in err


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
