"""OGC API – Features under /ogc: the abstract tests of Part 1 (OGC 17-069r4, Annex A) and
Part 3 (OGC 19-079r2; CQL2, OGC 21-065) that apply, one test per abstract test, named
after its id; responses are validated against the standard's schemas
(tests/data/ogc/schemas.json, see its SOURCE.txt).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_bus, make_doc, make_feature, make_stop
from yizhan.api import create_app
from yizhan.settings import Settings

jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="needs jsonschema_rs (dev extra)")

SCHEMAS = json.loads((Path(__file__).parent / "data" / "ogc" / "schemas.json").read_text())
GEOJSON = "application/geo+json"
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"


def validate(doc: Any, name: str) -> None:
    """Raise unless *doc* is valid against the standard's schema *name*."""
    schema = {**SCHEMAS, "$ref": f"#/$defs/{name}"}
    errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(doc)]
    assert not errors, f"{name}: {errors[:3]}"


def registry_doc() -> dict[str, Any]:
    feats = [
        make_feature(
            "a1",
            113.60,
            34.75,
            name="金水路环卫工人爱心驿站",
            district="西区",
            capacity=10,
            operator="郑州市总工会",
            amenities=["drinking_water", "toilet", "air_conditioning"],
            opening_hours="24/7",
            last_verified_at="2026-06-01",
        ),
        make_feature(
            "a2",
            113.61,
            34.76,
            name="二七广场驿站",
            district="西区",
            capacity=3,
            status="temporarily_closed",
            amenities=["drinking_water"],
        ),
        make_feature(
            "b1",
            113.70,
            34.80,
            name="Bank outlet 银行",
            district="东区",
            category="bank_outlet",
            amenities=["seating"],
            opening_hours="Mo-Su 00:00-00:01",
        ),
        make_feature("far", 116.40, 39.90, name="北京 (far away)"),
    ]
    feats += [
        make_feature(f"c{i:02d}", 113.62 + i * 0.005, 34.78, name=f"线上驿站 {i}", district="东区")
        for i in range(20)
    ]
    feats.append(make_bus("bus1", [make_stop("s1", 113.66, 34.77, "Mo-Su 00:00-24:00")]))
    return make_doc(feats, name="OGC test registry")


def districts_doc() -> dict[str, Any]:
    def box(x0: float, x1: float) -> dict[str, Any]:
        ring = [[x0, 34.70], [x1, 34.70], [x1, 34.85], [x0, 34.85], [x0, 34.70]]
        return {"type": "Polygon", "coordinates": [ring]}

    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "西区"}, "geometry": box(113.55, 113.65)},
            {"type": "Feature", "properties": {"name": "东区"}, "geometry": box(113.65, 113.75)},
        ],
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("ogc")
    (tmp / "reg.geojson").write_text(json.dumps(registry_doc()), encoding="utf-8")
    (tmp / "districts.geojson").write_text(json.dumps(districts_doc()), encoding="utf-8")
    settings = Settings(
        registry=tmp / "reg.geojson",
        state_dir=tmp / "state",
        districts=tmp / "districts.geojson",
        hex_size_m=1000.0,
        default_limit=10,
        max_limit=50,
        reload_interval_s=0,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def get_json(client: TestClient, url: str, status: int = 200) -> Any:
    r = client.get(url)
    assert r.status_code == status, r.text
    return r.json()


def items(client: TestClient, query: str = "", collection: str = "stations") -> dict[str, Any]:
    doc = get_json(client, f"/ogc/collections/{collection}/items?{query}")
    validate(doc, "featureCollectionGeoJSON")
    return doc


def ids(client: TestClient, query: str, collection: str = "stations") -> list[Any]:
    sep = "&" if query else ""
    return [f["id"] for f in items(client, f"{query}{sep}limit=50", collection)["features"]]


def rels(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{lk['rel']}|{lk['type']}": lk for lk in doc["links"]}


# -- Part 1, core: landing page, API definition, conformance ------------------------------
def test_conf_core_root_op(client: TestClient) -> None:
    """/conf/core/root-op: GET / answers 200."""
    assert client.get("/ogc").status_code == 200
    assert client.get("/ogc/").status_code == 200


def test_conf_core_root_success(client: TestClient) -> None:
    """/conf/core/root-success: links to the API definition, conformance and collections,
    typed as clients need (service-desc: OpenAPI 3.0; data: application/json)."""
    doc = get_json(client, "/ogc")
    validate(doc, "landingPage")
    r = rels(doc)
    assert f"service-desc|{OPENAPI_30}" in r
    assert "service-doc|text/html" in r
    assert "conformance|application/json" in r
    assert "data|application/json" in r
    for lk in doc["links"]:
        assert lk.get("type"), lk


def test_conf_core_api_definition_op(client: TestClient) -> None:
    """/conf/core/api-definition-op: the service-desc link resolves."""
    href = rels(get_json(client, "/ogc"))[f"service-desc|{OPENAPI_30}"]["href"]
    r = client.get(href)
    assert r.status_code == 200
    assert r.headers["content-type"] == OPENAPI_30


def test_conf_oas30_oas_definition_1(client: TestClient) -> None:
    """/conf/oas30/oas-definition-1 and -2: an OpenAPI 3.0 document with every path."""
    doc = get_json(client, "/ogc/api")
    assert doc["openapi"].startswith("3.0.")
    paths = set(doc["paths"])
    for p in ("/", "/conformance", "/collections", "/collections/stations"):
        assert p in paths
    for cid in ("stations", "cooling_buses", "districts", "gaps"):
        assert f"/collections/{cid}/items" in paths
        assert f"/collections/{cid}/items/{{featureId}}" in paths
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 50, 10)


def test_conf_oas30_completeness(client: TestClient) -> None:
    """/conf/oas30/completeness: every parameter of items is declared, property filters too."""
    doc = get_json(client, "/ogc/api")
    params = doc["paths"]["/collections/stations/items"]["get"]["parameters"]
    names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in params}
    assert {"bbox", "limit", "datetime", "filter", "filter-lang", "district", "name"} <= names
    assert "post" in doc["paths"]["/collections/stations/items"]
    assert "post" not in doc["paths"]["/collections/gaps/items"]


def test_conf_oas30_oas_impl(client: TestClient) -> None:
    """/conf/oas30/oas-impl: the OpenAPI 3.0 document is one schemathesis (and clients) load."""
    schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (dev extra)")
    schema = schemathesis.openapi.from_dict(get_json(client, "/ogc/api"))
    schema.validate()  # against the OpenAPI 3.0 meta-schema
    ops = {f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations()}
    assert "GET /collections/stations/items" in ops


def test_conf_core_conformance_success(client: TestClient) -> None:
    """/conf/core/conformance-op and -success: the classes implemented."""
    doc = get_json(client, "/ogc/conformance")
    validate(doc, "confClasses")
    conf = set(doc["conformsTo"])
    for c in ("core", "geojson", "html", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{c}" in conf
    for c in ("filter", "features-filter", "queryables"):
        assert f"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/{c}" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in conf


# -- Part 1, core: collections --------------------------------------------------------------
def test_conf_core_fc_md_success(client: TestClient) -> None:
    """/conf/core/fc-md-op, -success, -links, -items, -items-links, -extent."""
    doc = get_json(client, "/ogc/collections")
    validate(doc, "collections")
    got = {c["id"]: c for c in doc["collections"]}
    assert list(got) == ["stations", "cooling_buses", "districts", "gaps"]
    for c in got.values():
        r = rels(c)
        assert f"items|{GEOJSON}" in r and "items|text/html" in r
        assert "self|application/json" in r and "alternate|text/html" in r
    assert got["stations"]["extent"]["spatial"]["bbox"] == [[113.6, 34.75, 116.4, 39.9]]


def test_conf_core_sfc_md_success(client: TestClient) -> None:
    """/conf/core/sfc-md-op and -success: one collection, as listed in /collections."""
    doc = get_json(client, "/ogc/collections/stations")
    validate(doc, "collection")
    listed = next(
        c for c in get_json(client, "/ogc/collections")["collections"] if c["id"] == "stations"
    )
    assert doc == listed
    assert get_json(client, "/ogc/collections/nope", 404)["code"] == "NotFound"


# -- Part 1, core: items --------------------------------------------------------------------
def test_conf_core_fc_op(client: TestClient) -> None:
    """/conf/core/fc-op and /conf/core/fc-response: a GeoJSON FeatureCollection."""
    r = client.get("/ogc/collections/stations/items")
    assert r.status_code == 200
    assert r.headers["content-type"] == GEOJSON
    validate(r.json(), "featureCollectionGeoJSON")


def test_conf_core_fc_limit_definition(client: TestClient) -> None:
    """/conf/core/fc-limit-definition: limit is an integer >= 1 (else 400)."""
    for bad in ("0", "-1", "x", "1.5"):
        body = get_json(client, f"/ogc/collections/stations/items?limit={bad}", 400)
        validate(body, "exception")
        assert "limit" in body["description"]


def test_conf_core_fc_limit_response_1(client: TestClient) -> None:
    """/conf/core/fc-limit-response-1: no more features than limit, nor than the maximum
    (a larger limit is clamped, not refused)."""
    assert items(client, "limit=3")["numberReturned"] == 3
    doc = items(client, "limit=100000")
    assert doc["numberReturned"] == len(doc["features"]) == 24  # all, under max_limit 50
    assert items(client, "")["numberReturned"] == 10  # the default


def test_conf_core_fc_limit_response_clamped(client: TestClient) -> None:
    """/conf/core/fc-limit-response-1 (maximum): over max_limit the page is max_limit."""
    doc = items(client, "limit=100000&filter=" + quote("id LIKE 'c%' OR id LIKE '%'"))
    assert doc["numberReturned"] <= 50


def test_conf_core_fc_bbox_definition(client: TestClient) -> None:
    """/conf/core/fc-bbox-definition: four (or six) numbers; anything else is 400."""
    for bad in ("1,2,3", "a,b,c,d", "0,91,1,92", "0,0,1"):
        get_json(client, f"/ogc/collections/stations/items?bbox={bad}", 400)
    assert items(client, "bbox=113.59,34.74,0,113.615,34.77,10")["numberMatched"] == 2


def test_conf_core_fc_bbox_response(client: TestClient) -> None:
    """/conf/core/fc-bbox-response: only features in the box (across 180° too)."""
    assert ids(client, "bbox=113.59,34.74,113.615,34.77") == ["a1", "a2"]
    assert ids(client, "bbox=116,39,117,40") == ["far"]
    assert ids(client, "bbox=170,-10,-170,10") == []
    assert ids(client, "bbox=113.69,34.79,113.71,34.81", "cooling_buses") == []
    assert ids(client, "bbox=113.65,34.76,113.67,34.78", "cooling_buses") == ["bus1"]


def test_conf_core_fc_time_definition(client: TestClient) -> None:
    """/conf/core/fc-time-definition: an instant or an interval with open ends; bad: 400."""
    for good in ("2026-07-15T13:00:00Z", "2026-07-15T13:00:00+08:00/..", "../2026-01-01T00:00:00Z"):
        assert (
            client.get(f"/ogc/collections/stations/items?datetime={quote(good)}").status_code == 200
        )
    for bad in ("yesterday", "../..", "2026-02-01T00:00:00Z/2026-01-01T00:00:00Z"):
        get_json(client, f"/ogc/collections/stations/items?datetime={quote(bad)}", 400)


def test_conf_core_fc_time_response(client: TestClient) -> None:
    """/conf/core/fc-time-response: stations that existed then (created_at known: from then);
    cooling buses where they stand then."""
    assert len(ids(client, "datetime=2026-07-15T13:00:00Z")) == 24
    buses = items(client, "datetime=2026-07-15T13:00:00Z", "cooling_buses")["features"]
    assert [b["properties"]["stop_id"] for b in buses] == ["s1"]


def test_conf_core_fc_links(client: TestClient) -> None:
    """/conf/core/fc-links: self, alternate, next and prev links, each with a type; the
    next link is typed application/geo+json (QGIS pages by it)."""
    doc = items(client, "limit=5&offset=5")
    r = rels(doc)
    assert f"self|{GEOJSON}" in r and "alternate|text/html" in r
    assert f"next|{GEOJSON}" in r and f"prev|{GEOJSON}" in r
    assert all(lk.get("type") for lk in doc["links"])
    last = items(client, "limit=5&offset=20")
    assert f"next|{GEOJSON}" not in rels(last)


def test_conf_core_fc_numberMatched(client: TestClient) -> None:
    """/conf/core/fc-numberMatched and -numberReturned: exact, found by walking next links."""
    url = "/ogc/collections/stations/items?limit=7&filter=" + quote("district = '东区'")
    seen: list[str] = []
    matched = None
    while url:
        doc = get_json(client, url)
        validate(doc, "featureCollectionGeoJSON")
        matched = doc["numberMatched"] if matched is None else matched
        assert doc["numberMatched"] == matched
        assert doc["numberReturned"] == len(doc["features"])
        seen += [f["id"] for f in doc["features"]]
        nxt = rels(doc).get(f"next|{GEOJSON}")
        url = nxt["href"].replace("http://testserver", "") if nxt else ""
    assert matched == len(seen) == 21
    assert seen == sorted(seen)


def test_conf_core_fc_timeStamp(client: TestClient) -> None:
    """/conf/core/fc-timeStamp: an RFC 3339 time."""
    assert items(client)["timeStamp"].endswith("Z")


def test_conf_core_f_success(client: TestClient) -> None:
    """/conf/core/f-op, -success, -links: one feature with self, alternate, collection
    links, the computed properties and an ETag."""
    r = client.get("/ogc/collections/stations/items/a1")
    assert r.status_code == 200
    assert r.headers["content-type"] == GEOJSON
    doc = r.json()
    validate(doc, "featureGeoJSON")
    assert doc["properties"]["name"] == "金水路环卫工人爱心驿站"
    assert doc["properties"]["open_now"] is True  # 24/7
    assert {"stale", "needs_check", "next_change"} <= set(doc["properties"])
    assert {f"self|{GEOJSON}", "alternate|text/html", "collection|application/json"} <= set(
        rels(doc)
    )
    assert r.headers["etag"] == client.get("/stations/a1").headers["etag"]
    assert client.get("/ogc/collections/stations/items/nope").status_code == 404
    d = get_json(client, "/ogc/collections/districts/items/2")
    validate(d, "featureGeoJSON")
    assert d["properties"]["name"] == "东区"


def test_conf_core_query_param_unknown(client: TestClient) -> None:
    """/conf/core/query-param-unknown: an unknown parameter is 400 (a typo never returns
    everything)."""
    for url in (
        "/ogc?x=1",
        "/ogc/conformance?x=1",
        "/ogc/collections?x=1",
        "/ogc/collections/stations?x=1",
        "/ogc/collections/stations/items?distrcit=东区",
        "/ogc/collections/stations/items/a1?limit=1",
        "/ogc/collections/stations/items?limit=1&limit=2",
    ):
        body = get_json(client, url, 400)
        validate(body, "exception")
        assert body["code"] == "InvalidParameterValue"


def test_conf_core_query_param_invalid(client: TestClient) -> None:
    """/conf/core/query-param-invalid: a known parameter with a bad value is 400."""
    for q in ("capacity=many", "open_now=maybe", "f=xml", "offset=-1", "bbox-crs=EPSG:3857"):
        get_json(client, f"/ogc/collections/stations/items?{q}", 400)


def test_property_filters(client: TestClient) -> None:
    """/rec/core/fc-filters: property filters by equality (a list: contains), typed."""
    assert ids(client, "district=西区") == ["a1", "a2"]
    assert ids(client, "capacity=3") == ["a2"]
    assert ids(client, "amenities=seating") == ["b1"]
    assert ids(client, "district=西区&status=operational") == ["a1"]
    assert ids(client, "open_now=true&district=西区") == ["a1"]


def test_conf_core_crs84(client: TestClient) -> None:
    """/conf/core/crs84: geometries are CRS84 lon/lat."""
    doc = get_json(client, "/ogc/collections/stations/items/a1")
    assert doc["geometry"] == {"type": "Point", "coordinates": [113.6, 34.75]}


def test_conf_core_etag(client: TestClient) -> None:
    """Items carry an ETag; If-None-Match with it is 304; another page has another one."""
    r = client.get("/ogc/collections/stations/items?limit=3")
    tag = r.headers["etag"]
    assert (
        client.get(
            "/ogc/collections/stations/items?limit=3", headers={"If-None-Match": tag}
        ).status_code
        == 304
    )
    assert client.get("/ogc/collections/stations/items?limit=4").headers["etag"] != tag
    one = client.get("/ogc/collections/stations/items/a2")
    assert (
        client.get(
            "/ogc/collections/stations/items/a2", headers={"If-None-Match": one.headers["etag"]}
        ).status_code
        == 304
    )


# -- Part 1, GeoJSON and HTML -----------------------------------------------------------------
def test_conf_geojson_content(client: TestClient) -> None:
    """/conf/geojson/definition and -content: every feature is GeoJSON with its id."""
    for cid in ("stations", "cooling_buses", "districts", "gaps"):
        doc = items(client, "", cid)
        assert doc["features"], cid
        for f in doc["features"]:
            validate(f, "featureGeoJSON")
            assert "id" in f


def test_conf_html_content(client: TestClient) -> None:
    """/conf/html/definition and -content: every resource as HTML, by f=html or Accept."""
    for url in (
        "/ogc",
        "/ogc/conformance",
        "/ogc/collections",
        "/ogc/collections/stations",
        "/ogc/collections/stations/items",
        "/ogc/collections/stations/items/a1",
        "/ogc/collections/districts/items",
        "/ogc/api",
    ):
        r = client.get(url, params={"f": "html"})
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("text/html")
        assert "<html" in r.text.lower()
    r = client.get("/ogc/collections/stations/items", headers={"Accept": "text/html"})
    assert r.headers["content-type"].startswith("text/html")
    assert "金水路环卫工人爱心驿站" in r.text
    r = client.get(
        "/ogc/collections/stations/items",
        headers={"Accept": "text/html;q=0.5, application/geo+json"},
    )
    assert r.headers["content-type"] == GEOJSON


def test_html_escapes_names(client: TestClient) -> None:
    """A name is text in the HTML page, never markup."""
    r = client.get("/ogc/collections/stations/items/b1?f=html")
    assert "Bank outlet 银行" in r.text
    assert "<script>alert" not in r.text


# -- Part 3, queryables and filters ------------------------------------------------------------
def test_conf_queryables_get_queryables_response(client: TestClient) -> None:
    """/conf/queryables/get-queryables-op and -response: a JSON Schema of the properties."""
    r = client.get("/ogc/collections/stations/queryables")
    assert r.headers["content-type"] == "application/schema+json"
    doc = r.json()
    validate(doc, "queryables")
    assert doc["properties"]["capacity"]["type"] == "integer"
    assert doc["properties"]["open_now"]["type"] == "boolean"
    assert {"geometry", "name", "district", "amenities"} <= set(doc["properties"])
    coll = get_json(client, "/ogc/collections/stations")
    assert any(lk["rel"].endswith("/queryables") for lk in coll["links"])


CQL2: list[tuple[str, str, list[str]]] = [
    ("/conf/basic-cql2/comparison =", "district = '西区'", ["a1", "a2"]),
    ("/conf/basic-cql2/comparison <>", "district <> '东区' AND district <> '西区'", []),
    ("/conf/basic-cql2/comparison >", "capacity > 3", ["a1"]),
    ("/conf/basic-cql2/comparison <=", "capacity <= 3", ["a2"]),
    ("/conf/basic-cql2/logical AND", "capacity >= 3 AND status = 'operational'", ["a1"]),
    ("/conf/basic-cql2/logical OR", "id = 'far' OR category = 'bank_outlet'", ["b1", "far"]),
    # NOT of an unknown (a missing property) stays unknown: three-valued logic.
    ("/conf/basic-cql2/logical NOT", "NOT (capacity > 3)", ["a2"]),
    ("/conf/basic-cql2/is-null", "capacity IS NULL AND district IS NULL", ["far"]),
    ("/conf/basic-cql2/is-not-null", "capacity IS NOT NULL", ["a1", "a2"]),
    ("/conf/basic-cql2/boolean", "open_now = true AND district = '西区'", ["a1"]),
    ("/conf/basic-cql2/date", "last_verified_at >= DATE('2026-01-01')", ["a1"]),
    (
        "/conf/basic-cql2/timestamp",
        "last_verified_at < TIMESTAMP('2026-06-01T00:00:01+08:00')",
        ["a1"],
    ),
    ("/conf/advanced-comparison-operators/like", "name LIKE '%驿站'", ["a1", "a2"]),
    ("/conf/advanced-comparison-operators/like _", "id LIKE 'a_'", ["a1", "a2"]),
    (
        "/conf/advanced-comparison-operators/not-like",
        "name NOT LIKE '线上%' AND district IS NOT NULL",
        ["a1", "a2", "b1"],
    ),
    ("/conf/advanced-comparison-operators/between", "capacity BETWEEN 2 AND 5", ["a2"]),
    ("/conf/advanced-comparison-operators/in", "id IN ('a1', 'b1', 'zz')", ["a1", "b1"]),
    ("/conf/advanced-comparison-operators/not-in", "district NOT IN ('东区')", ["a1", "a2"]),
    (
        "/conf/basic-spatial-functions/bbox",
        "S_INTERSECTS(geometry, BBOX(113.59, 34.74, 113.615, 34.77))",
        ["a1", "a2"],
    ),
    ("/conf/basic-spatial-functions/point", "S_INTERSECTS(geometry, POINT(113.7 34.8))", ["b1"]),
    (
        "/conf/basic-spatial-functions-plus/polygon",
        "S_INTERSECTS(geometry, POLYGON((113.59 34.74, 113.605 34.74, 113.605 34.77, 113.59 34.77, 113.59 34.74)))",
        ["a1"],
    ),
    ("/conf/spatial-functions/disjoint", "S_DISJOINT(geometry, BBOX(100, 30, 115, 36))", ["far"]),
    (
        "/conf/spatial-functions/within",
        "S_WITHIN(geometry, POLYGON((116 39, 117 39, 117 40, 116 40, 116 39)))",
        ["far"],
    ),
]


@pytest.mark.parametrize(("ats", "cql", "expected"), CQL2, ids=[c[0] for c in CQL2])
def test_conf_cql2_text(client: TestClient, ats: str, cql: str, expected: list[str]) -> None:
    """/conf/filter/filter-param, /conf/cql2-text and the CQL2 classes: each filter keeps
    exactly the stations it describes."""
    assert ids(client, "filter=" + quote(cql)) == expected


CQL2_JSON: list[tuple[str, Any, list[str]]] = [
    (
        "/conf/cql2-json/and",
        {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "district"}, "西区"]},
                {"op": ">", "args": [{"property": "capacity"}, 5]},
            ],
        },
        ["a1"],
    ),
    (
        "/conf/cql2-json/bbox",
        {
            "op": "s_intersects",
            "args": [{"property": "geometry"}, {"bbox": [113.59, 34.74, 113.615, 34.77]}],
        },
        ["a1", "a2"],
    ),
    (
        "/conf/cql2-json/in",
        {"op": "in", "args": [{"property": "id"}, ["far", "b1"]]},
        ["b1", "far"],
    ),
    (
        "/conf/cql2-json/like",
        {"op": "like", "args": [{"property": "name"}, "%银行"]},
        ["b1"],
    ),
    (
        "/conf/cql2-json/not",
        {"op": "not", "args": [{"op": "=", "args": [{"property": "status"}, "operational"]}]},
        ["a2"],
    ),
]


@pytest.mark.parametrize(("ats", "cql", "expected"), CQL2_JSON, ids=[c[0] for c in CQL2_JSON])
def test_conf_cql2_json(client: TestClient, ats: str, cql: Any, expected: list[str]) -> None:
    """/conf/filter/filter-lang-param and /conf/cql2-json: the same filters in JSON (the
    bbox in CQL2's minx, miny, maxx, maxy order)."""
    q = "filter-lang=cql2-json&filter=" + quote(json.dumps(cql))
    assert ids(client, q) == expected


def test_conf_filter_filter_crs_wgs84(client: TestClient) -> None:
    """/conf/filter/filter-crs-wgs84: CRS84 accepted, other CRSs refused."""
    crs84 = quote("http://www.opengis.net/def/crs/OGC/1.3/CRS84")
    q = f"filter-crs={crs84}&filter=" + quote("S_INTERSECTS(geometry, POINT(113.7 34.8))")
    assert ids(client, q) == ["b1"]
    get_json(
        client,
        "/ogc/collections/stations/items?filter-crs=EPSG:3857&filter=" + quote("id = 'a1'"),
        400,
    )


def test_conf_filter_expression_construction_errors(client: TestClient) -> None:
    """/conf/filter/expression-construction: invalid filters are 400, naming the problem."""
    for bad in (
        "name ===",
        "nosuch = 1",
        "capacity = 'x'",
        "name > 3",
        "amenities = 'toilet'",
        "S_INTERSECTS(name, POINT(1 2))",
        "T_BEFORE(updated_at, TIMESTAMP('2020-01-01T00:00:00Z'))",
    ):
        body = get_json(client, "/ogc/collections/stations/items?filter=" + quote(bad), 400)
        assert "filter" in body["description"], bad
    get_json(
        client, "/ogc/collections/stations/items?filter-lang=cql2-json&filter=" + quote("{"), 400
    )
    get_json(
        client, "/ogc/collections/stations/items?filter-lang=ecql&filter=" + quote("id='a1'"), 400
    )


def test_conf_features_filter_response_other_collections(client: TestClient) -> None:
    """/conf/features-filter/response: filters on buses, districts and gaps."""
    assert ids(client, "filter=" + quote("stop_id = 's1'"), "cooling_buses") == ["bus1"]
    assert ids(client, "filter=" + quote("name = '西区'"), "districts") == [1]
    west = get_json(client, "/ogc/collections/districts/items/1")["properties"]
    assert 0 < west["share_pct"] < 100
    # Counted by location: a1 and c00..c06 (lon 113.620..113.650); a2 is closed.
    assert west["stations"] == 8
    gaps = items(client, "limit=50", "gaps")["features"]
    assert gaps and [g["properties"]["rank"] for g in gaps] == list(range(1, len(gaps) + 1))
    east = ids(client, "filter=" + quote("district = '东区'"), "gaps")
    assert east and set(east) < {g["id"] for g in gaps}


def test_study_collections_absent_without_a_study(tmp_path: Path) -> None:
    """Without demand or districts there are two collections, and no district routes."""
    (tmp_path / "reg.geojson").write_text(json.dumps(registry_doc()), encoding="utf-8")
    settings = Settings(
        registry=tmp_path / "reg.geojson", state_dir=tmp_path / "s", reload_interval_s=0
    )
    with TestClient(create_app(settings)) as c:
        got = [x["id"] for x in c.get("/ogc/collections").json()["collections"]]
        assert got == ["stations", "cooling_buses"]
        assert c.get("/ogc/collections/districts/items").status_code == 404
