"""OGC API – Features: the documents (landing page, conformance, collections) and the
parsing of every query parameter, independent of the web framework.

Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0), Part 3 (Filtering, CQL2 text and JSON) and
Part 4 (create, replace, update, delete of stations) are implemented; ``routes/ogc.py``
calls these functions and shapes the responses. What clients need, read from their
sources: QGIS, GDAL's OAPIF driver and OWSLib find the API definition by the
``service-desc`` link typed ``application/vnd.oai.openapi+json;version=3.0``; QGIS looks
for a ``data`` link typed ``application/json`` and pages by a ``next`` link typed
``application/geo+json``. Every ``self``/``alternate``/``next``/``prev`` link has a type,
and an unknown query parameter is an error (400), so a misspelt filter never silently
returns everything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pygeofilter import ast

from yizhan.errors import InvalidInputError
from yizhan.query.listing import MAX_OFFSET, parse_bbox
from yizhan.query.ogc_filter import CRS84, Queryable, parse_filter, parse_instant

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"

CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
)

#: Parameters every endpoint accepts.
COMMON_PARAMS = frozenset({"f"})
#: Parameters of ``/collections/{id}/items`` besides the queryables (property filters).
ITEMS_PARAMS = frozenset(
    {"f", "bbox", "bbox-crs", "limit", "offset", "datetime", "filter", "filter-lang", "filter-crs"}
)
#: Parameters of ``/collections/{id}/items/{featureId}``.
ITEM_PARAMS = frozenset({"f"})


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------
def check_params(items: Sequence[tuple[str, str]], allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters as a dict, refusing unknown and repeated ones.

    Raises
    ------
    InvalidInputError
        Naming the first unknown (or repeated) parameter and listing the allowed ones.
    """
    allowed = frozenset(allowed)
    out: dict[str, str] = {}
    for key, value in items:
        if key not in allowed:
            raise InvalidInputError(
                key, f"unknown query parameter {key!r}; allowed: {', '.join(sorted(allowed))}"
            )
        if key in out:
            raise InvalidInputError(key, f"{key!r} is given more than once")
        out[key] = value
    return out


def negotiate(f: str | None, accept: str | None) -> str:
    """``json`` or ``html``: the ``f`` parameter, else the ``Accept`` header, else JSON.

    Raises
    ------
    InvalidInputError
        ``f`` is neither ``json`` nor ``html``.
    """
    if f is not None:
        value = f.strip().lower()
        if value in ("json", "geojson", "application/json", GEOJSON):
            return "json"
        if value in ("html", HTML):
            return "html"
        raise InvalidInputError("f", f"Expected json or html, got {f!r}")
    best, best_q = "json", 0.0
    for part in (accept or "").split(","):
        kind, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, val = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        kind = kind.strip().lower()
        fmt = (
            "html"
            if kind in (HTML, "application/xhtml+xml")
            else "json"
            if kind in (JSON, GEOJSON, "application/*", "*/*", SCHEMA_JSON, OPENAPI_30)
            or kind.endswith("+json")
            else None
        )
        if fmt is not None and q > best_q:
            best, best_q = fmt, q
    return best


@dataclass(frozen=True)
class Interval:
    """A ``datetime`` parameter: an instant (``start == end``) or an interval, in POSIX
    seconds; ``None`` for an open end (``..``)."""

    start: float | None
    end: float | None

    @property
    def instant(self) -> bool:
        return self.start is not None and self.start == self.end

    def at(self, now: float) -> float:
        """One time to evaluate at: the instant, or the interval's start (``now`` if open)."""
        return self.start if self.start is not None else (self.end if self.end is not None else now)


def parse_datetime(text: str, timezone: str) -> Interval:
    """An RFC 3339 date-time, or an interval ``start/end`` with ``..`` for an open end.

    Raises
    ------
    InvalidInputError
        Naming ``datetime``.
    """
    tz = ZoneInfo(timezone)

    def one(part: str) -> float | None:
        if part in ("..", ""):
            return None
        ts = parse_instant(part, tz)
        if ts is None:
            raise InvalidInputError(
                "datetime", f"Expected an RFC 3339 date-time or an interval a/b, got {text!r}"
            )
        return ts

    if "/" in text:
        a, _, b = text.partition("/")
        start, end = one(a.strip()), one(b.strip())
        if start is None and end is None:
            raise InvalidInputError(
                "datetime", "Expected at least one end of the interval, got '../..'"
            )
        if start is not None and end is not None and start > end:
            raise InvalidInputError("datetime", f"Expected start <= end, got {text!r}")
        return Interval(start, end)
    ts = one(text.strip())
    if ts is None:
        raise InvalidInputError("datetime", f"Expected a date-time, got {text!r}")
    return Interval(ts, ts)


@dataclass(frozen=True)
class ItemsQuery:
    """What ``/collections/{id}/items`` asks for, parsed and checked."""

    limit: int
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    datetime: Interval | None = None
    filter: ast.Node | None = None
    properties: dict[str, str] = field(default_factory=dict)


def parse_items_query(
    params: Mapping[str, str],
    queryables: Mapping[str, Queryable],
    *,
    default_limit: int,
    max_limit: int,
    timezone: str,
    filter_body: str | None = None,
) -> ItemsQuery:
    """Parse the parameters of an items request (after :func:`check_params`).

    ``limit`` below 1 or not an integer is an error; above *max_limit* it is clamped
    (OGC 17-069r4, permission 5 and requirement 18). ``bbox`` is ``minlon,minlat,maxlon,
    maxlat`` (or six numbers with heights, which are ignored) in CRS84; ``filter-crs`` and
    ``bbox-crs`` may only name CRS84. Other parameters are property filters: equality
    (a list property: contains the value).

    Raises
    ------
    InvalidInputError
        Naming the parameter.
    """
    raw_limit = params.get("limit")
    limit = default_limit
    if raw_limit is not None:
        limit = _int_param("limit", raw_limit, 1, None)
    limit = min(limit, max_limit)
    offset = 0
    if "offset" in params:
        offset = _int_param("offset", params["offset"], 0, MAX_OFFSET)
    bbox = None
    if "bbox" in params:
        bbox = _parse_bbox6(params["bbox"])
    for crs_param in ("bbox-crs", "filter-crs"):
        crs = params.get(crs_param)
        if crs is not None and crs not in (CRS84, "CRS84", "OGC:CRS84"):
            raise InvalidInputError(crs_param, f"only {CRS84} is supported, got {crs!r}")
    interval = parse_datetime(params["datetime"], timezone) if "datetime" in params else None
    text = params.get("filter", filter_body)
    lang = params.get("filter-lang")
    node = parse_filter(text, lang) if text is not None else None
    if text is None and lang is not None:
        parse_filter("TRUE = TRUE", lang)  # still checks the language name
    props = {k: v for k, v in params.items() if k not in ITEMS_PARAMS}
    for name in props:
        if name not in queryables:
            raise InvalidInputError(name, f"unknown property {name!r}")
    return ItemsQuery(limit, offset, bbox, interval, node, props)


def _int_param(name: str, text: str, low: int, high: int | None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInputError(name, f"Expected an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        top = f"..{high}" if high is not None else " or more"
        raise InvalidInputError(name, f"Expected an integer {low}{top}, got {value}")
    return value


def _parse_bbox6(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) == 6:
        parts = [parts[0], parts[1], parts[3], parts[4]]
    return parse_bbox(",".join(parts))


def property_filter_ast(
    props: Mapping[str, str], queryables: Mapping[str, Queryable]
) -> ast.Node | None:
    """Property filters (``?district=中原区``) as one CQL2 ``AND`` of equalities (a list
    property: ``A_CONTAINS``); the value is read as the property's type.

    Raises
    ------
    InvalidInputError
        Naming the parameter when its value does not fit the property's type.
    """
    node: ast.Node | None = None
    for name, text in props.items():
        q = queryables[name]
        attr = ast.Attribute(name)
        value: Any = text
        if q.type in ("number", "integer"):
            try:
                value = float(text)
            except ValueError:
                raise InvalidInputError(name, f"Expected a number, got {text!r}") from None
            if not math.isfinite(value):
                raise InvalidInputError(name, f"Expected a finite number, got {text!r}")
        elif q.type == "boolean":
            if text.lower() not in ("true", "false"):
                raise InvalidInputError(name, f"Expected true or false, got {text!r}")
            value = text.lower() == "true"
        cond: ast.Node = (
            ast.ArrayContains(attr, [text]) if q.type == "array" else ast.Equal(attr, value)
        )
        node = cond if node is None else ast.And(node, cond)
    return node


# ---------------------------------------------------------------------------------------
# Links and documents
# ---------------------------------------------------------------------------------------
def link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, Any]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def with_params(url: str, **changes: Any) -> str:
    """*url* with query parameters replaced (``None`` removes one); others kept in order."""
    parts = urlsplit(url)
    pairs = [
        (k, v)
        for k, v in (p.split("=", 1) if "=" in p else (p, "") for p in parts.query.split("&") if p)
        if k not in changes
    ]
    query = "&".join(f"{k}={v}" for k, v in pairs)
    extra = urlencode({k: v for k, v in changes.items() if v is not None})
    query = "&".join(q for q in (query, extra) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def self_links(url: str, json_type: str, title: str) -> list[dict[str, Any]]:
    """``self`` in *json_type* and ``alternate`` HTML of the resource at *url*."""
    return [
        link(with_params(url, f="json"), "self", json_type, f"{title} as JSON"),
        link(with_params(url, f="html"), "alternate", HTML, f"{title} as HTML"),
    ]


def landing_page(base: str, title: str, description: str) -> dict[str, Any]:
    """The landing page (``/ogc``): API definition, conformance and data links."""
    return {
        "title": title,
        "description": description,
        "links": [
            link(f"{base}?f=json", "self", JSON, "This document"),
            link(f"{base}?f=html", "alternate", HTML, "This document as HTML"),
            link(f"{base}/api", "service-desc", OPENAPI_30, "The API definition (OpenAPI 3.0)"),
            link(f"{base}/api?f=html", "service-doc", HTML, "The API documentation"),
            link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
            link(
                f"{base}/conformance",
                "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                JSON,
                "Conformance classes",
            ),
            link(f"{base}/collections", "data", JSON, "The collections"),
            link(
                f"{base}/collections",
                "http://www.opengis.net/def/rel/ogc/1.0/data",
                JSON,
                "The collections",
            ),
        ],
    }


def conformance(base: str) -> dict[str, Any]:
    """``/conformance``."""
    return {
        "conformsTo": list(CONFORMANCE),
        "links": self_links(f"{base}/conformance", JSON, "Conformance"),
    }


@dataclass(frozen=True)
class CollectionInfo:
    """What ``/collections/{id}`` says about a collection."""

    id: str
    title: str
    description: str
    queryables: Mapping[str, Queryable]
    bbox: tuple[float, float, float, float] | None
    interval: tuple[str | None, str | None] | None = None
    geometry: str = "point"
    editable: bool = False


def collection_doc(base: str, info: CollectionInfo) -> dict[str, Any]:
    """``/collections/{id}``: links to its items (GeoJSON and HTML) and queryables, extent."""
    url = f"{base}/collections/{info.id}"
    doc: dict[str, Any] = {
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            *self_links(url, JSON, info.title),
            link(f"{url}/items?f=json", "items", GEOJSON, f"{info.title} (GeoJSON)"),
            link(f"{url}/items?f=html", "items", HTML, f"{info.title} (HTML)"),
            link(
                f"{url}/queryables",
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                SCHEMA_JSON,
                "Properties a filter may name",
            ),
        ],
    }
    extent: dict[str, Any] = {}
    if info.bbox is not None:
        extent["spatial"] = {"bbox": [list(info.bbox)], "crs": CRS84}
    if info.interval is not None:
        extent["temporal"] = {
            "interval": [list(info.interval)],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    if extent:
        doc["extent"] = extent
    return doc


def collections_doc(base: str, infos: Sequence[CollectionInfo]) -> dict[str, Any]:
    """``/collections``."""
    return {
        "links": self_links(f"{base}/collections", JSON, "Collections"),
        "collections": [collection_doc(base, info) for info in infos],
    }


def queryables_doc(base: str, info: CollectionInfo) -> dict[str, Any]:
    """``/collections/{id}/queryables``: a JSON Schema of the properties a filter may name."""
    props: dict[str, Any] = {
        "geometry": {
            "$ref": f"https://geojson.org/schema/{'Point' if info.geometry == 'point' else 'Geometry'}.json"
        }
    }
    props.update({name: q.schema() for name, q in info.queryables.items()})
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{base}/collections/{info.id}/queryables",
        "type": "object",
        "title": info.title,
        "properties": props,
        "additionalProperties": False,
    }


def feature_collection(
    features: list[dict[str, Any]],
    *,
    url: str,
    matched: int,
    query: ItemsQuery,
    collection_url: str,
) -> dict[str, Any]:
    """A page of items with ``numberMatched`` (exact), ``numberReturned``, ``timeStamp``
    and typed ``self``/``alternate``/``next``/``prev``/``collection`` links."""
    links = [
        link(with_params(url, f="json"), "self", GEOJSON, "This page"),
        link(with_params(url, f="html"), "alternate", HTML, "This page as HTML"),
        link(f"{collection_url}?f=json", "collection", JSON, "The collection"),
    ]
    end = query.offset + len(features)
    if end < matched:
        links.append(
            link(with_params(url, offset=end, limit=query.limit), "next", GEOJSON, "Next page")
        )
    if query.offset > 0:
        prev = max(0, query.offset - query.limit)
        links.append(
            link(with_params(url, offset=prev, limit=query.limit), "prev", GEOJSON, "Previous page")
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }


def feature_links(url: str, collection_url: str) -> list[dict[str, Any]]:
    """Links of one item: itself (GeoJSON, HTML) and its collection."""
    return [
        link(with_params(url, f="json"), "self", GEOJSON, "This feature"),
        link(with_params(url, f="html"), "alternate", HTML, "This feature as HTML"),
        link(f"{collection_url}?f=json", "collection", JSON, "The collection"),
    ]


def iso_utc(ts: float | None) -> str | None:
    """POSIX seconds as an RFC 3339 UTC time (``None`` stays ``None``)."""
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
