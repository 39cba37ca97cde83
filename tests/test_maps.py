"""Maps: HTML structure, escaping, labels, asset modes, size with 100,000 stations."""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pytest
from folium import plugins

import yizhan.maps.runtime
from yizhan import assets as yz_assets
from yizhan.assets import AssetError, NpmPackage, missing, vendor_dir
from yizhan.errors import InvalidInputError
from yizhan.geo.crs import transform
from yizhan.maps import derive_bus_timeline, planner_map, station_columns, worker_map
from yizhan.maps._core import js_json, pack, unpack
from yizhan.maps.asset_refs import AssetRef, iter_refs, resolve_url, static_dir
from yizhan.maps.i18n import (
    AMENITY_LABELS,
    CATEGORY_LABELS,
    LABELS,
    PROBLEM_LABELS,
    STATUS_LABELS,
    format_distance,
    label,
    problem_label,
)
from yizhan.maps.inline import inline_text, script_text, style_text
from yizhan.maps.planner import FLAG_NEEDS_CHECK, FLAG_REASON_SHIFT, FLAG_STALE, flag_bits
from yizhan.maps.runtime import RUNTIME_FILES, runtime_dir, runtime_file, runtime_url
from yizhan.stations.registry import Registry, from_document
from yizhan.stations.reports import PROBLEM_CODES
from yizhan.stations.vocab import Amenity, Category, Status

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
JINJA = "{{ 7*7 }} 清凉点"


def station(fid: str, lon: float, lat: float, **props: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"name": f"驿站 {fid}", "kind": "station"}
    p.update(props)
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": p,
    }


def sample_registry() -> Registry:
    """Eight stations in Zhengzhou, one per category plus tricky names."""
    feats = [
        station(
            "zz-001",
            113.625,
            34.750,
            name=XSS_SCRIPT,
            category="union_station",
            amenities=["drinking_water", "toilet", "air_conditioning"],
            opening_hours="Mo-Su 08:00-20:00",
            guessed=["opening_hours"],
            last_verified_at="2025-06-01",
            district="中原区",
            operator="郑州市总工会",
        ),
        station(
            "zz-002",
            113.660,
            34.762,
            name=XSS_IMG,
            name_en="Bank & <b>Co</b>",
            category="bank_outlet",
            amenities=["seating"],
            status="temporarily_closed",
        ),
        station("zz-003", 113.690, 34.742, name=JINJA, category="cooling_center"),
        station("zz-004", 113.705, 34.781, name="人民公园饮水点", category="hydration_point"),
        station("zz-005", 113.600, 34.790, name="智慧驿站", category="smart_station"),
        station("zz-006", 113.640, 34.720, name="其他服务点", category="other"),
        station("zz-007", 113.675, 34.735, name="未分类驿站"),
        station(
            "zz-008", 113.650, 34.800, name="规划中驿站", category="union_station", status="planned"
        ),
    ]
    return from_document({"type": "FeatureCollection", "features": feats})


def sample_layers() -> dict[str, Any]:
    """Every optional planner input, small."""
    rng = np.random.default_rng(7)
    n = 400
    uncovered = (113.58 + rng.random(n) * 0.15, 34.70 + rng.random(n) * 0.12, rng.random(n) + 0.1)
    gaps = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"demand": 1234.5, "area_km2": 2.4, "name": "<i>gap</i>"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [113.66, 34.70],
                            [113.69, 34.70],
                            [113.69, 34.72],
                            [113.66, 34.72],
                            [113.66, 34.70],
                        ]
                    ],
                },
            }
        ],
    }
    sites = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"rank": 1, "gain": 5200.0, "covered_after": 81000.0},
                "geometry": {"type": "Point", "coordinates": [113.675, 34.71]},
            },
            {
                "type": "Feature",
                "properties": {"rank": 2, "gain": 3100.0, "covered_after": 84100.0},
                "geometry": {"type": "Point", "coordinates": [113.61, 34.77]},
            },
        ],
    }
    districts = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "name": "中原区",
                    "share_pct": 45.2,
                    "demand": 100000,
                    "covered": 45200,
                },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [113.58, 34.70],
                            [113.645, 34.70],
                            [113.645, 34.81],
                            [113.58, 34.81],
                            [113.58, 34.70],
                        ]
                    ],
                },
            },
            {
                "type": "Feature",
                "properties": {
                    "name": "金水区",
                    "share_pct": 81.0,
                    "demand": 90000,
                    "covered": 72900,
                },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [113.645, 34.70],
                            [113.72, 34.70],
                            [113.72, 34.81],
                            [113.645, 34.81],
                            [113.645, 34.70],
                        ]
                    ],
                },
            },
        ],
    }
    buses = [
        {
            "type": "Feature",
            "id": "bus-1",
            "geometry": {"type": "Point", "coordinates": [113.64, 34.75]},
            "properties": {
                "name": "清凉巴士 1 号",
                "plate": "豫A·12345",
                "operator": "郑州公交",
                "stops": [
                    {
                        "stop_id": "s1",
                        "name": "二七广场",
                        "location": [113.665, 34.755],
                        "opening_hours": "Jul-Sep Mo-Su 10:00-13:00",
                    },
                    {
                        "stop_id": "s2",
                        "name": "紫荆山",
                        "location": [113.685, 34.765],
                        "opening_hours": "Jul-Sep Mo-Su 13:30-16:00",
                    },
                ],
            },
        }
    ]
    return {
        "radius_m": 500.0,
        "uncovered": uncovered,
        "gaps": gaps,
        "sites": sites,
        "districts": districts,
        "buses": buses,
        "timeline_date": date(2025, 7, 15),
        "open_now": {"zz-001": True, "zz-002": False, "zz-003": None},
    }


def render(m: folium.Map) -> str:
    return str(m.get_root().render())


def overlays(html: str) -> list[str]:
    """Layer names listed in the layer control, in order."""
    block = re.search(r"overlays\s*:\s*\{(.*?)\},\s*\}", html, re.S)
    assert block, "no layer control"
    return [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block.group(1))]


def builder_args(html: str, fn: str) -> list[Any]:
    """Arguments of the page's ``var X = yz.<fn>(map, ...)`` call: JSON values, or
    variable names (as ``("var", name)``) for references to other layers."""
    m = re.search(rf"= yz\.{fn}\((\w+), ", html)
    assert m, f"no yz.{fn} call"
    args: list[Any] = []
    dec = json.JSONDecoder()
    pos = m.end()
    while True:
        ident = re.compile(r"[A-Za-z_]\w*").match(html, pos)
        if ident and html[pos] not in "tfn":
            args.append(("var", ident.group(0)))
            pos = ident.end()
        else:
            value, pos = dec.raw_decode(html, pos)
            args.append(value)
        if html.startswith(");", pos):
            return args
        assert html.startswith(", ", pos), html[pos : pos + 40]
        pos += 2


def station_payload(html: str) -> dict[str, Any]:
    packed = builder_args(html, "stations")[1]
    return dict(unpack(packed))


def asset_urls(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"|<link rel="stylesheet" href="([^"]+)"', html)


def assets_fetched() -> bool:
    return not missing()


needs_assets = pytest.mark.skipif(
    not assets_fetched(),
    reason="map assets not fetched: run `yizhan assets fetch` (the set-up does it)",
)


# -- arguments ---------------------------------------------------------------------------------


def test_lang_is_validated() -> None:
    reg = sample_registry()
    with pytest.raises(InvalidInputError) as exc:
        planner_map(reg, lang="fr")
    assert str(exc.value) == "lang: Expected one of zh, en, got 'fr'"
    assert exc.value.field == "lang"
    with pytest.raises(InvalidInputError, match="lang: Expected one of zh, en, got 'fr'"):
        worker_map(113.6, 34.7, [], lang="fr")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"assets": "offline"}, "assets"),
        ({"asset_base_url": ""}, "asset_base_url"),
        ({"radius_m": -5}, "radius_m"),
        ({"radius_m": float("nan")}, "radius_m"),
        ({"gaps": [1, 2]}, "gaps"),
        ({"uncovered": ([1.0, 2.0], [1.0], [1.0, 1.0])}, "uncovered"),
    ],
)
def test_planner_arguments_are_validated(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        planner_map(sample_registry(), **kwargs)
    assert exc.value.field == field


def test_worker_position_is_validated() -> None:
    with pytest.raises(InvalidInputError, match=r"^lat: "):
        worker_map(113.6, 134.7, [])
    with pytest.raises(InvalidInputError, match=r"^hits\[0\]\.geometry"):
        worker_map(113.6, 34.7, [{"type": "Feature", "properties": {}}])


# -- labels --------------------------------------------------------------------------------------


def test_every_vocabulary_value_has_both_labels() -> None:
    assert set(CATEGORY_LABELS) == {c.value for c in Category}
    assert set(STATUS_LABELS) == {s.value for s in Status}
    assert set(AMENITY_LABELS) == {a.value for a in Amenity}
    for table in (LABELS, CATEGORY_LABELS, STATUS_LABELS, AMENITY_LABELS, PROBLEM_LABELS):
        for key, (zh, en) in table.items():
            assert zh.strip() and en.strip(), key
            assert zh != en or key in {"aed"}, key


def test_distance_format() -> None:
    assert format_distance(347, "en") == "350 m"
    assert format_distance(347, "zh") == "350 米"
    assert format_distance(1234, "en") == "1.2 km"
    assert format_distance(23_456, "zh") == "23 公里"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_planner_lists_every_layer_in_lang(lang: str) -> None:
    html = render(planner_map(sample_registry(), lang=lang, **sample_layers()))
    expected = [
        label("layer_stations", lang),  # type: ignore[arg-type]
        label("layer_coverage", lang, radius=format_distance(500, lang)),  # type: ignore[arg-type]
        label("layer_uncovered", lang),  # type: ignore[arg-type]
        label("layer_gaps", lang),  # type: ignore[arg-type]
        label("layer_sites", lang),  # type: ignore[arg-type]
        label("layer_districts", lang),  # type: ignore[arg-type]
        label("layer_buses", lang),  # type: ignore[arg-type]
    ]
    assert overlays(html) == expected
    assert f'"lang":"{lang}"' in html
    title = label("planner_title", lang)  # type: ignore[arg-type]
    assert f"<title>{title}</title>" in html
    # Controls: search, legend, slider, full screen, locate-me, layer control.
    for fn in ("search", "legend", "busSlider"):
        builder_args(html, fn)
    assert "L.control.fullscreen" in html
    assert "L.control.locate" in html
    assert "L.control.layers" in html
    if lang == "en":
        assert "Coverage gaps" in html and "Union station" in html and "drinking water" in html
        assert "工会驿站" not in html
    else:
        assert "覆盖空白区" in html and "工会驿站" in html and "饮用水" in html
        assert "Union station" not in html


def test_planner_with_stations_only() -> None:
    html = render(planner_map(sample_registry(), lang="en"))
    assert overlays(html) == ["Stations"]
    assert "= yz.busSlider(" not in html


def test_empty_registry_makes_a_map() -> None:
    reg = from_document({"type": "FeatureCollection", "features": []})
    html = render(planner_map(reg))
    assert station_payload(html)["lat"] == []


# -- escaping ------------------------------------------------------------------------------------


def test_names_never_reach_the_page_as_html() -> None:
    html = render(planner_map(sample_registry(), lang="en", **sample_layers()))
    for raw in (XSS_SCRIPT, XSS_IMG, "<b>Co</b>", "<i>gap</i>", "onerror=", "</script><"):
        assert raw not in html
    # The names are still there, intact, for the browser to show as text.
    data = station_payload(html)
    assert XSS_SCRIPT in data["name"]
    assert XSS_IMG in data["name"]
    assert "Bank & <b>Co</b>" in data["name_en"]
    # Uncompressed GeoJSON is escaped for <script> but parses back to the same text.
    assert "\\u003ci\\u003egap\\u003c/i\\u003e" in html
    assert builder_args(html, "gaps")[1]["features"][0]["properties"]["name"] == "<i>gap</i>"


def test_jinja_syntax_in_data_is_not_evaluated() -> None:
    # folium re-renders macro output through Jinja; ours must bypass it.
    html = render(planner_map(sample_registry()))
    assert JINJA in station_payload(html)["name"]
    hit = station("zz-003", 113.69, 34.742, name=JINJA, distance_m=120.0, bearing_deg=90.0)
    whtml = render(worker_map(113.688, 34.742, [hit], lang="en"))
    assert JINJA in whtml
    assert "49 清凉点" not in whtml


def test_js_json_is_safe_in_script_and_round_trips() -> None:
    value = {"a": "</script><!-- & \u2028 {{x}} {%y%} {#z#}", "b": [1, 2.5, None, True]}
    text = js_json(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value
    assert unpack(pack(value)) == value


# -- station data --------------------------------------------------------------------------------


def test_station_columns() -> None:
    reg = sample_registry()
    cols = station_columns(reg, {"zz-001": True, "zz-002": False})
    i = cols["id"].index("zz-001")
    assert cols["lat"][i] == 34.75 and cols["lon"][i] == 113.625  # lat/lon split here only
    assert cols["hours_tab"][cols["hours"][i]] == "Mo-Su 08:00-20:00"
    assert cols["g"][i] != 0  # opening_hours guessed
    assert cols["open"][i] == 1
    assert cols["open"][cols["id"].index("zz-002")] == 0
    assert cols["open"][cols["id"].index("zz-004")] == -1
    assert cols["st"][cols["id"].index("zz-002")] != 0
    unc = cols["id"].index("zz-007")
    assert cols["cat"][unc] == len(CATEGORY_LABELS)  # uncategorised colour
    assert station_columns(reg)["open"] is None


# -- assets --------------------------------------------------------------------------------------


def test_local_assets_use_the_base_url_only() -> None:
    before = (list(folium.Map.default_js), list(folium.Map.default_css))
    html = render(planner_map(sample_registry(), asset_base_url="/assets/v", **sample_layers()))
    urls = [a or b for a, b in asset_urls(html)]
    assert urls and all(u.startswith("/assets/v/") for u in urls), urls
    assert len(urls) == len(set(urls))
    assert not re.search(r'(src|href)="(https?:)?//', html)
    expected_files = {
        "leaflet-1.9.4/dist/leaflet.js",
        "jquery-3.7.1/dist/jquery.min.js",
        "bootstrap-5.2.2/dist/js/bootstrap.bundle.min.js",
        "leaflet.markercluster-1.5.3/dist/leaflet.markercluster.js",
        "leaflet-heat-folium/leaflet_heat.min.js",
        "pako-2.1.0/dist/pako_inflate.min.js",
        "leaflet.fullscreen-3.0.0/Control.FullScreen.js",
        "leaflet.locatecontrol-0.66.2/dist/L.Control.Locate.min.js",
        "fontawesome-free-6.2.0/css/all.min.css",
    }
    assert expected_files <= {u.removeprefix("/assets/v/") for u in urls}
    # Per instance: folium's class attributes are untouched.
    assert (list(folium.Map.default_js), list(folium.Map.default_css)) == before
    cdn_html = render(folium.Map(tiles=None))
    assert "https://cdn.jsdelivr.net/npm/leaflet@" in cdn_html


def test_cdn_assets_keep_public_urls() -> None:
    html = render(planner_map(sample_registry(), assets="cdn", **sample_layers()))
    urls = [a or b for a, b in asset_urls(html)]
    assert urls and all(u.startswith("https://") for u in urls), urls
    assert any("leaflet.markercluster@1.5.3" in u for u in urls)


@needs_assets
def test_inline_assets_make_a_standalone_page() -> None:
    html = render(planner_map(sample_registry(), assets="inline", **sample_layers()))
    assert asset_urls(html) == []
    assert "/static/vendor/" not in html
    head = html.split("<body>", 1)[0]
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", head)
    assert "L.Control.Locate" in html and "markerClusterGroup" in html
    assert "data:font/woff2;base64," in html
    assert len(html.encode()) < 3_000_000
    # Embedded JS/CSS cannot end its <script>/<style> element early.
    for ref in iter_refs():
        text = inline_text(ref).lower()
        assert "</script" not in text and "</style" not in text, ref


def test_every_folium_asset_we_use_has_an_offline_copy() -> None:
    m = folium.Map()
    used: list[tuple[str, str]] = [*m.default_js, *m.default_css]
    for plugin in (
        plugins.Fullscreen,
        plugins.LocateControl,
        plugins.MarkerCluster,
        plugins.HeatMap,
    ):
        used += [*plugin.default_js, *plugin.default_css]
    for _name, url in used:
        ref = resolve_url(url)
        if ref is None:
            assert "awesome.rotate" in url  # the one deliberate omission
    with pytest.raises(AssetError, match="no offline copy"):
        resolve_url("https://example.org/some-plugin.js")


@needs_assets
def test_vendored_css_references_are_all_present() -> None:
    for ref in iter_refs():
        text = inline_text(ref)
        if ref.kind == "css":
            assert "url(../" not in text and "url(images/" not in text, ref


def test_static_dirs() -> None:
    assert vendor_dir() == static_dir() / "vendor"
    assert static_dir().name == "static" and static_dir().parent.name == "maps"


# -- the maps' runtime (static/yizhan-map/) --------------------------------------------------


def sample_worker_map(**kwargs: Any) -> folium.Map:
    hits = [
        station("zz-003", 113.69, 34.742, distance_m=120.0, bearing_deg=90.0, stale=True),
        station("zz-004", 113.70, 34.743, needs_check=True, needs_check_reasons=["closed"]),
    ]
    return worker_map(113.688, 34.742, hits, lang="en", **kwargs)


def test_local_maps_link_the_runtime_by_content_digest() -> None:
    for m in (
        planner_map(sample_registry(), asset_base_url="/assets/v"),
        sample_worker_map(asset_base_url="/assets/v"),
    ):
        html = render(m)
        head = html.split("<body>", 1)[0]
        js, css = runtime_url("js", "/assets/v"), runtime_url("css", "/assets/v")
        assert re.fullmatch(r"/assets/v/yizhan-map/yizhan-map\.js\?v=[0-9a-f]{16}", js), js
        assert re.fullmatch(r"/assets/v/yizhan-map/yizhan-map\.css\?v=[0-9a-f]{16}", css), css
        assert head.count(f'<script src="{js}"></script>') == 1
        assert head.count(f'<link rel="stylesheet" href="{css}"/>') == 1
        # After Leaflet and pako (which it uses), before the body's builder calls.
        urls = [a or b for a, b in asset_urls(head)]
        assert urls.index(js) > urls.index("/assets/v/leaflet-1.9.4/dist/leaflet.js")
        assert urls.index(js) > urls.index("/assets/v/pako-2.1.0/dist/pako_inflate.min.js")
        assert "var yz = (function" not in html and ".yz-popup{" not in html  # linked only


@pytest.mark.parametrize("mode", ["inline", "cdn"])
def test_standalone_maps_embed_the_runtime(mode: str) -> None:
    if mode == "inline" and not assets_fetched():
        pytest.skip("map assets not fetched: run `yizhan assets fetch`")
    html = render(planner_map(sample_registry(), assets=mode, **sample_layers()))
    assert "yizhan-map/" not in html
    head = html.split("<body>", 1)[0]
    js = runtime_file("js").read_text(encoding="utf-8")
    css = runtime_file("css").read_text(encoding="utf-8")
    assert f"<script>{script_text(js)}</script>" in head
    assert f"<style>{style_text(css, runtime_dir())}</style>" in head
    assert head.count("var yz = (function") == 1


def test_runtime_digest_follows_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RUNTIME_FILES.values():
        (tmp_path / name).write_text((runtime_dir() / name).read_text(encoding="utf-8"))
    monkeypatch.setattr(yizhan.maps.runtime, "runtime_dir", lambda: tmp_path)
    before = runtime_url("js", "/v")
    assert before == runtime_url("js", "/v/")
    (tmp_path / RUNTIME_FILES["js"]).write_text("var yz = {};\n// changed\n")
    os.utime(tmp_path / RUNTIME_FILES["js"], ns=(1, 1))  # a new mtime, whatever the clock
    after = runtime_url("js", "/v")
    assert after != before and after.startswith("/v/yizhan-map/yizhan-map.js?v=")
    html = render(planner_map(sample_registry(), assets="cdn"))
    assert "<script>var yz = {};\n// changed\n</script>" in html  # read from the file


def test_runtime_is_package_data_beside_the_vendor_dir() -> None:
    assert runtime_dir() == static_dir() / "yizhan-map"
    assert sorted(p.name for p in runtime_dir().iterdir()) == sorted(RUNTIME_FILES.values())


def test_runtime_defines_every_builder_the_maps_call() -> None:
    js = runtime_file("js").read_text(encoding="utf-8")
    defined = set(re.findall(r"^  yz\.(\w+) = function", js, re.M))
    called: set[str] = set()
    for m in (
        planner_map(sample_registry(), flags=sample_flags(), **sample_layers()),
        sample_worker_map(),
    ):
        called |= set(re.findall(r"= yz\.(\w+)\(", render(m)))
    assert called >= {"stations", "coverage", "gaps", "buses", "workerStations", "legend"}
    assert called <= defined, called - defined


def test_inline_text_escapes_and_embeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = NpmPackage("fakepkg", "1.0.0", "sha512-x", ("a.js", "a.css"), "MIT")
    monkeypatch.setattr(yz_assets, "PACKAGES", (pkg,))
    d = tmp_path / "fakepkg-1.0.0"
    (d / "img").mkdir(parents=True)
    (d / "a.js").write_text('var s = "</script><b>";\n//# sourceMappingURL=a.js.map\n')
    (d / "a.css").write_text(
        ".x{background:url('img/p.png')}"
        "@font-face{src:url(f.woff2) format('woff2'),url(f.ttf) format('truetype')}"
        ".y{background:url(f.woff2)}"
    )
    (d / "img" / "p.png").write_bytes(b"\x89PNG")
    (d / "f.woff2").write_bytes(b"wOF2")
    js = inline_text(AssetRef("fakepkg", "a.js"), tmp_path)
    assert js == 'var s = "<\\/script><b>";\n\n'
    css = inline_text(AssetRef("fakepkg", "a.css"), tmp_path)
    assert 'url("data:image/png;base64,iVBORw==")' in css
    assert css.count("data:font/woff2;base64,") == 1  # a font is embedded once
    assert "f.ttf" not in css and "url(data:,)" in css
    assert AssetRef("fakepkg", "a.js").local_url("/v") == "/v/fakepkg-1.0.0/a.js"
    with pytest.raises(AssetError, match="missing"):
        inline_text(AssetRef("fakepkg", "b.js"), tmp_path)


def test_inline_without_assets_fails_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIZHAN_MAP_ASSETS_DIR", str(tmp_path / "empty"))
    with pytest.raises(AssetError, match=r"run `yizhan assets fetch`"):
        planner_map(sample_registry(), assets="inline")
    render(planner_map(sample_registry(), assets="local"))  # local needs no files here


# -- cooling buses -----------------------------------------------------------------------------------


def test_bus_timeline_from_opening_hours() -> None:
    buses = sample_layers()["buses"]
    tl = derive_bus_timeline(buses, date(2025, 7, 15))
    assert tl == {
        "bus-1": [
            (datetime(2025, 7, 15, 10), datetime(2025, 7, 15, 13), 113.665, 34.755, "二七广场"),
            (datetime(2025, 7, 15, 13, 30), datetime(2025, 7, 15, 16), 113.685, 34.765, "紫荆山"),
        ]
    }
    assert derive_bus_timeline(buses, date(2025, 1, 15)) == {"bus-1": []}  # out of season


def test_bus_timeline_overlaps_and_errors() -> None:
    bus = {
        "id": "b",
        "properties": {
            "name": "B",
            "stops": [
                {"name": "A", "location": [113.6, 34.7], "opening_hours": "Mo-Su 09:00-12:00"},
                {"name": "B", "location": [113.7, 34.7], "opening_hours": "Mo-Su 11:00-14:00"},
            ],
        },
    }
    spans = derive_bus_timeline([bus], date(2025, 7, 15))["b"]
    assert [(s[0].hour, s[1].hour, s[4]) for s in spans] == [(9, 11, "A"), (11, 14, "B")]
    bus["properties"]["stops"][1]["valid_to"] = "2025-07-01"  # type: ignore[index]
    spans = derive_bus_timeline([bus], date(2025, 7, 15))["b"]
    assert [(s[0].hour, s[1].hour, s[4]) for s in spans] == [(9, 12, "A")]
    bus["properties"]["stops"][0]["opening_hours"] = "not hours"  # type: ignore[index]
    with pytest.raises(InvalidInputError, match=r"stops\[0\]\.opening_hours"):
        derive_bus_timeline([bus], date(2025, 7, 15))


def test_bus_layer_uses_given_timeline() -> None:
    layers = sample_layers()
    tl = {"bus-1": [(datetime(2025, 8, 1, 7, 0), datetime(2025, 8, 1, 9, 30), 113.62, 34.76, "X")]}
    html = render(planner_map(sample_registry(), buses=layers["buses"], bus_timeline=tl, lang="en"))
    data = builder_args(html, "buses")[1]
    assert data["date"] == "2025-08-01"
    assert data["start"] == 420
    span = data["buses"][0]["timeline"]
    assert [s[:5] for s in span] == [[420.0, 570.0, 34.76, 113.62, "X"]]
    # Items 5-6: the same place in GCJ-02, for the Amap base map.
    glon, glat = transform(113.62, 34.76, "wgs84", "gcj02")
    assert span[0][5:] == [round(float(glat), 6), round(float(glon), 6)]


# -- worker map --------------------------------------------------------------------------------------


def test_worker_map_lines_and_distances() -> None:
    hits = [
        station(
            "zz-001",
            113.6291,
            34.7500,
            name=XSS_SCRIPT,
            category="union_station",
            distance_m=347.2,
            bearing_deg=88.0,
            amenities=["drinking_water"],
            opening_hours="Mo-Su 08:00-20:00",
            open_now=True,
        ),
        station("zz-002", 113.6250, 34.7560, name="B", category="bank_outlet", open_now=False),
        station("zz-003", 113.6100, 34.7400, name="C", distance_m=1830.0, bearing_deg=225.0),
    ]
    html = render(worker_map(113.6253, 34.7500, hits, lang="en"))
    assert overlays(html) == ["Straight-line distance", "Your position", "Nearest stations"]
    data = builder_args(html, "workerLines")[1]
    assert (data["lat"], data["lon"]) == (34.75, 113.6253)
    got = [(h["rank"], h["distance_text"], h["direction"]) for h in data["hits"]]
    # Distance and bearing are computed when the hit lacks them (second one: ~670 m north).
    assert got == [(1, "350 m", "E"), (2, "670 m", "N"), (3, "1.8 km", "SW")]
    assert data["hits"][0]["open_now"] is True and data["hits"][1]["open_now"] is False
    assert XSS_SCRIPT not in html
    builder_args(html, "workerList")
    zh = render(worker_map(113.6253, 34.75, hits, lang="zh"))
    assert "350 米" in zh and "直线距离" in zh


# -- scale ---------------------------------------------------------------------------------------------


def synthetic_registry(n: int, seed: int = 0) -> Registry:
    """*n* stations over Zhengzhou with realistic names, hours and amenities."""
    rng = np.random.default_rng(seed)
    lon = 113.3 + rng.random(n) * 0.8
    lat = 34.5 + rng.random(n) * 0.5
    districts = ["中原区", "金水区", "二七区", "管城回族区", "惠济区", "郑东新区"]
    hours = ["Mo-Fr 09:00-17:00", "24/7", "Mo-Su 08:00-20:00", None]
    amen = [a.value for a in Amenity]
    cats = [c.value for c in Category]
    feats = []
    for i in range(n):
        d = districts[i % 6]
        p: dict[str, Any] = {
            "name": f"郑州市{d}第{i}号户外劳动者服务驿站",
            "kind": "station",
            "category": cats[i % 6],
            "amenities": amen[i % 5 : i % 5 + 1 + i % 7],
            "district": d,
            "operator": f"{d}总工会",
            "last_verified_at": f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
        }
        if hours[i % 4]:
            p["opening_hours"] = hours[i % 4]
        if i % 10 == 0:
            p["guessed"] = ["opening_hours"]
        feats.append(
            {
                "type": "Feature",
                "id": f"zz-{i:06d}",
                "geometry": {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]},
                "properties": p,
            }
        )
    return Registry(features=feats)  # already valid by construction: skip validation


def test_100k_stations_fit_in_10_mb() -> None:
    reg = synthetic_registry(100_000)
    open_now = {fid: bool(i % 3) for i, fid in enumerate(reg.ids)}
    html = render(planner_map(reg, radius_m=500, open_now=open_now))
    size = len(html.encode("utf-8"))
    assert size <= 10_000_000, f"{size / 1e6:.1f} MB"
    assert len(station_payload(html)["lat"]) == 100_000
    # Markers are built client-side from the arrays, not one folium object per station.
    assert "circle_marker_" not in html and html.count("var ") < 200


# -- freshness: stale and needs_check -------------------------------------------------------------


def sample_flags() -> dict[str, dict[str, Any]]:
    """zz-001 is stale, zz-003 needs checking (and is stale), zz-004 needs checking."""
    return {
        "zz-001": {"stale": True, "needs_check": False, "needs_check_reasons": []},
        "zz-003": {
            "stale": True,
            "needs_check": True,
            "needs_check_reasons": ["no_water", "moved"],
        },
        "zz-004": {"stale": False, "needs_check": True, "needs_check_reasons": ["closed"]},
        "zz-999": {"stale": True, "needs_check": True, "needs_check_reasons": ["closed"]},
    }


def test_flag_bits() -> None:
    assert flag_bits(None) == 0 and flag_bits({}) == 0
    assert flag_bits({"stale": True, "needs_check": False}) == FLAG_STALE
    bits = flag_bits({"stale": False, "needs_check": True, "needs_check_reasons": ["moved"]})
    assert bits == FLAG_NEEDS_CHECK | 1 << (FLAG_REASON_SHIFT + PROBLEM_CODES.index("moved"))
    # An unknown code keeps the warning, without a reason bit.
    assert flag_bits({"needs_check": True, "needs_check_reasons": ["on_fire"]}) == FLAG_NEEDS_CHECK
    assert flag_bits({"stale": "yes"}) == 0  # only True counts


def test_flags_reach_the_station_data() -> None:
    reg = sample_registry()
    assert station_columns(reg)["fl"] is None
    cols = station_columns(reg, flags=sample_flags())
    fl = dict(zip(cols["id"], cols["fl"], strict=True))
    assert fl["zz-001"] == FLAG_STALE
    assert fl["zz-002"] == 0 and fl["zz-008"] == 0  # not in the mapping: neither
    assert fl["zz-003"] & FLAG_STALE and fl["zz-003"] & FLAG_NEEDS_CHECK
    assert not fl["zz-004"] & FLAG_STALE and fl["zz-004"] & FLAG_NEEDS_CHECK
    reasons = [
        c for k, c in enumerate(PROBLEM_CODES) if fl["zz-003"] >> (FLAG_REASON_SHIFT + k) & 1
    ]
    assert reasons == ["no_water", "moved"]
    html = render(planner_map(reg, lang="en", flags=sample_flags(), stale_after_days=180))
    assert station_payload(html)["fl"] == cols["fl"]
    meta = builder_args(html, "stations")[0]
    assert meta["problems"] == list(PROBLEM_CODES)
    assert meta["stale_text"] == "Not verified for 180+ days"
    assert meta["i18n"]["problems"]["no_water"] == "no water"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_flags_have_legend_entries_and_layers(lang: Any) -> None:
    reg = sample_registry()
    html = render(planner_map(reg, lang=lang, flags=sample_flags(), stale_after_days=180))
    stale = label("stale_days", lang, days=180)
    assert stale == ("未核实 180 天以上" if lang == "zh" else "not verified for 180+ days")
    assert overlays(html) == [
        label("layer_stations", lang),
        label("layer_needs_check", lang, n="2"),
        label("layer_stale", lang, stale=stale, n="2"),
    ]
    kinds = {e[0]: e[1] for e in builder_args(html, "legend")[1]}
    assert kinds["stale"] == label("legend_stale", lang, stale=stale)
    assert kinds["check"] == label("legend_needs_check", lang)
    builder_args(html, "needsCheck")
    builder_args(html, "checkList")
    # The stale-only layer starts hidden, the needs-check rings shown.
    assert re.search(r"var (\w+) = yz\.needsCheck\([^\n]*\); \1\.addTo\(", html)
    assert not re.search(r"var (\w+) = yz\.staleStations\([^\n]*\); \1\.addTo\(", html)
    builder_args(html, "staleStations")


def test_no_flags_no_flag_layers_or_legend() -> None:
    html = render(planner_map(sample_registry(), lang="en"))
    assert "= yz.needsCheck(" not in html and "= yz.staleStations(" not in html
    kinds = [e[0] for e in builder_args(html, "legend")[1]]
    assert "stale" not in kinds and "check" not in kinds
    # Flags given but none set: the layers say (0), the legend has no entry.
    html = render(planner_map(sample_registry(), lang="en", flags={}))
    assert overlays(html) == [
        "Stations",
        "Needs checking (0)",
        "Only stations not verified recently (0)",
    ]
    kinds = [e[0] for e in builder_args(html, "legend")[1]]
    assert "stale" not in kinds and "check" not in kinds


def test_flag_texts_exist_in_both_languages() -> None:
    assert set(PROBLEM_LABELS) == set(PROBLEM_CODES)
    for key in ("needs_check", "needs_check_reasons", "needs_check_plain", "never_verified"):
        assert label(key, "zh") != label(key, "en")
    assert problem_label("toilet_unusable", "zh") == "厕所不能用"
    assert problem_label("<b>x</b>", "en") == "<b>x</b>"  # unknown: as is (shown as text)
    with pytest.raises(InvalidInputError, match=r"^stale_after_days: "):
        planner_map(sample_registry(), stale_after_days=0)
    with pytest.raises(InvalidInputError, match=r"^stale_after_days: "):
        worker_map(113.6, 34.7, [], stale_after_days=True)  # type: ignore[arg-type]


def test_worker_hits_carry_their_flags_escaped() -> None:
    hits = [
        station(
            "zz-001",
            113.6291,
            34.75,
            name=XSS_SCRIPT,
            distance_m=347.2,
            bearing_deg=88.0,
            stale=True,
            needs_check=True,
            needs_check_reasons=["no_water", XSS_IMG],
            last_verified_at="2025-01-02T10:00:00+08:00",
        ),
        station("zz-002", 113.6250, 34.7560, name="B", stale=False, needs_check=False),
        station("zz-003", 113.6100, 34.7400, name="C"),  # no flags: nothing claimed
    ]
    html = render(worker_map(113.6253, 34.75, hits, lang="en", stale_after_days=90))
    data = builder_args(html, "workerStations")[1]
    got = [(h["stale"], h["needs_check"], h["reasons"], h["verified"]) for h in data["hits"]]
    assert got == [
        (True, True, ["no_water", XSS_IMG], "2025-01-02"),
        (False, False, [], None),
        (False, False, [], None),
    ]
    assert builder_args(html, "workerStations")[0]["stale_text"] == "Not verified for 90+ days"
    kinds = [e[0] for e in builder_args(html, "legend")[1]]
    assert "stale" in kinds and "check" in kinds
    assert XSS_IMG not in html and XSS_SCRIPT not in html
    plain = render(worker_map(113.6253, 34.75, hits[1:], lang="en"))
    kinds = [e[0] for e in builder_args(plain, "legend")[1]]
    assert "stale" not in kinds and "check" not in kinds


def test_flags_of_100k_stations_stay_small() -> None:
    reg = synthetic_registry(100_000)
    flags = {
        fid: {"stale": True, "needs_check": i % 1000 == 0, "needs_check_reasons": ["closed"]}
        for i, fid in enumerate(reg.ids)
        if i % 3 == 0
    }
    plain = len(render(planner_map(reg)).encode())
    flagged = len(render(planner_map(reg, flags=flags, stale_after_days=180)).encode())
    assert flagged - plain < 100_000, flagged - plain
