"""The OpenAPI **3.0** definition of the OGC API (``/ogc/api``, the ``service-desc`` link).

FastAPI emits OpenAPI 3.1, which GDAL's OAPIF driver, QGIS and OWSLib do not read as the
OGC conformance class ``oas30`` requires, so this document is built here for the
``/ogc`` paths only, one set of paths per collection (so that each collection's property
filters are declared, recommendation ``/rec/core/fc-filters``). Schemas follow the
standard's (OGC 17-069r4, Annex B; OGC 19-079r2 for filtering).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yizhan.query.ogc import GEOJSON, HTML, JSON, OPENAPI_30, SCHEMA_JSON, CollectionInfo

_REF = "#/components/schemas/"
_P = "#/components/parameters/"


def _content(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    out: dict[str, Any] = {t: {"schema": schema} for t in types}
    if HTML in types:
        out[HTML] = {"schema": {"type": "string"}}
    return out


def _ok(description: str, schema: dict[str, Any], json_type: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": _content(schema, json_type, HTML)}


_ERR = {"$ref": _REF + "exception"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ERR}}}


_ERRORS_READ: dict[str, Any] = {
    "400": _error("A query parameter is unknown or has an invalid value."),
    "406": _error("The requested format is not offered."),
    "500": _error("A server error occurred."),
}


def _schemas() -> dict[str, Any]:
    link = {
        "type": "object",
        "required": ["href", "rel"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "hreflang": {"type": "string"},
            "title": {"type": "string"},
            "length": {"type": "integer"},
        },
    }
    links = {"type": "array", "items": {"$ref": _REF + "link"}}
    extent = {
        "type": "object",
        "properties": {
            "spatial": {
                "type": "object",
                "properties": {
                    "bbox": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "array",
                            "minItems": 4,
                            "maxItems": 6,
                            "items": {"type": "number"},
                        },
                    },
                    "crs": {"type": "string"},
                },
            },
            "temporal": {
                "type": "object",
                "properties": {
                    "interval": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": 2,
                            "items": {"type": "string", "format": "date-time", "nullable": True},
                        },
                    },
                    "trs": {"type": "string"},
                },
            },
        },
    }
    geometry = {
        "type": "object",
        "nullable": True,
        "required": ["type"],
        "properties": {
            "type": {
                "type": "string",
                "enum": [
                    "Point",
                    "MultiPoint",
                    "LineString",
                    "MultiLineString",
                    "Polygon",
                    "MultiPolygon",
                    "GeometryCollection",
                ],
            },
            "coordinates": {"type": "array", "items": {}},
        },
    }
    feature = {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "geometry": {"$ref": _REF + "geometryGeoJSON"},
            "properties": {"type": "object", "nullable": True},
            "links": links,
        },
    }
    return {
        "link": link,
        "landingPage": {
            "type": "object",
            "required": ["links"],
            "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "links": links,
            },
        },
        "confClasses": {
            "type": "object",
            "required": ["conformsTo"],
            "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
        },
        "extent": extent,
        "collection": {
            "type": "object",
            "required": ["id", "links"],
            "properties": {
                "id": {"type": "string"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "links": links,
                "extent": {"$ref": _REF + "extent"},
                "itemType": {"type": "string"},
                "crs": {"type": "array", "items": {"type": "string"}},
                "storageCrs": {"type": "string"},
            },
        },
        "collections": {
            "type": "object",
            "required": ["links", "collections"],
            "properties": {
                "links": links,
                "collections": {"type": "array", "items": {"$ref": _REF + "collection"}},
            },
        },
        "geometryGeoJSON": geometry,
        "featureGeoJSON": feature,
        "featureCollectionGeoJSON": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": {"$ref": _REF + "featureGeoJSON"}},
                "links": links,
                "timeStamp": {"type": "string", "format": "date-time"},
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
            },
        },
        "queryables": {"type": "object", "required": ["type", "properties"]},
        "exception": {
            "type": "object",
            "required": ["code"],
            "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
        },
    }


def _parameters(default_limit: int, max_limit: int) -> dict[str, Any]:
    def q(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
            **extra,
        }

    return {
        "f": q(
            "f",
            "The format of the response: json or html (default: by the Accept header, else json).",
            {"type": "string", "enum": ["json", "html"]},
        ),
        "bbox": q(
            "bbox",
            "Only features whose geometry intersects the box: minlon,minlat,maxlon,maxlat in CRS84 "
            "(minlon > maxlon crosses 180°; six numbers with heights are accepted).",
            {
                "type": "array",
                "minItems": 4,
                "maxItems": 6,
                "items": {"type": "number"},
            },
            style="form",
            explode=False,
        ),
        "bbox-crs": q(
            "bbox-crs",
            "The CRS of bbox; only CRS84.",
            {"type": "string", "enum": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]},
        ),
        "limit": q(
            "limit",
            f"Page size; larger values are reduced to {max_limit}.",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
        ),
        "offset": q(
            "offset",
            "Features to skip (the next and prev links set it).",
            {"type": "integer", "minimum": 0, "default": 0},
        ),
        "datetime": q(
            "datetime",
            "An RFC 3339 date-time or an interval start/end (.. for an open end). Stations: "
            "those that existed then; cooling buses: where they stand then (an interval: at "
            "its start). Districts and gaps have no time and ignore it.",
            {"type": "string"},
        ),
        "filter": q(
            "filter",
            "A CQL2 filter (text by default; JSON with filter-lang=cql2-json).",
            {"type": "string"},
        ),
        "filter-lang": q(
            "filter-lang",
            "The language of filter.",
            {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"},
        ),
        "filter-crs": q(
            "filter-crs",
            "The CRS of geometries in filter; only CRS84.",
            {"type": "string", "enum": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]},
        ),
        "featureId": {
            "name": "featureId",
            "in": "path",
            "required": True,
            "description": "The feature's id.",
            "schema": {"type": "string"},
        },
    }


def _property_params(info: CollectionInfo) -> list[dict[str, Any]]:
    out = []
    for name, qb in info.queryables.items():
        schema: dict[str, Any] = (
            {"type": "string", "format": "date-time"}
            if qb.type == "date-time"
            else {"type": "string"}
            if qb.type == "array"
            else {"type": qb.type}
        )
        out.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": f"Only features whose {name} is this value"
                + (" (the list contains it)" if qb.type == "array" else "")
                + f". {qb.description}",
                "schema": schema,
                "style": "form",
                "explode": False,
            }
        )
    return out


_WRITE_ERRORS: dict[str, Any] = {
    "400": _error("The body or a parameter is invalid."),
    "401": _error("No bearer token, or an unknown or revoked one."),
    "403": _error("The token's role does not allow this on this station."),
    "404": _error("No station with this id."),
    "412": _error("If-Match is not the station's current ETag."),
    "422": _error("The change would make the station invalid (field and reason given)."),
    "428": _error("If-Match is missing."),
}

_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": "The ETag of the version you edited (from GET of the item).",
    "schema": {"type": "string"},
}


def openapi_document(
    base: str,
    infos: Sequence[CollectionInfo],
    *,
    version: str,
    default_limit: int,
    max_limit: int,
) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the OGC API at *base* with these collections."""
    ref = {p: {"$ref": _P + p} for p in _parameters(default_limit, max_limit)}
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "Landing page",
                "operationId": "getLandingPage",
                "parameters": [ref["f"]],
                "responses": {
                    "200": _ok(
                        "Links to the API definition, conformance and collections.",
                        {"$ref": _REF + "landingPage"},
                    ),
                    **_ERRORS_READ,
                },
            }
        },
        "/conformance": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "Conformance classes",
                "operationId": "getConformanceDeclaration",
                "parameters": [ref["f"]],
                "responses": {
                    "200": _ok("The conformance classes.", {"$ref": _REF + "confClasses"}),
                    **_ERRORS_READ,
                },
            }
        },
        "/api": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "This API definition",
                "operationId": "getAPIDefinition",
                "parameters": [ref["f"]],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.0 document (HTML: its documentation).",
                        "content": {
                            OPENAPI_30: {"schema": {"type": "object"}},
                            HTML: {"schema": {"type": "string"}},
                        },
                    },
                    **_ERRORS_READ,
                },
            }
        },
        "/collections": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "The collections",
                "operationId": "getCollections",
                "parameters": [ref["f"]],
                "responses": {
                    "200": _ok("The feature collections.", {"$ref": _REF + "collections"}),
                    **_ERRORS_READ,
                },
            }
        },
    }
    for info in infos:
        cid = info.id
        read_params = [
            ref["f"],
            ref["bbox"],
            ref["bbox-crs"],
            ref["limit"],
            ref["offset"],
            ref["datetime"],
            ref["filter"],
            ref["filter-lang"],
            ref["filter-crs"],
            *_property_params(info),
        ]
        paths[f"/collections/{cid}"] = {
            "get": {
                "tags": [info.title],
                "summary": f"About {info.title}",
                "operationId": f"describe_{cid}",
                "parameters": [ref["f"]],
                "responses": {
                    "200": _ok("The collection.", {"$ref": _REF + "collection"}),
                    "404": _error("No such collection."),
                    **_ERRORS_READ,
                },
            }
        }
        paths[f"/collections/{cid}/queryables"] = {
            "get": {
                "tags": [info.title],
                "summary": f"Properties a filter of {info.title} may name",
                "operationId": f"queryables_{cid}",
                "parameters": [ref["f"]],
                "responses": {
                    "200": {
                        "description": "A JSON Schema of the queryable properties.",
                        "content": {SCHEMA_JSON: {"schema": {"$ref": _REF + "queryables"}}},
                    },
                    **_ERRORS_READ,
                },
            }
        }
        items: dict[str, Any] = {
            "get": {
                "tags": [info.title],
                "summary": f"{info.title}: features",
                "operationId": f"getFeatures_{cid}",
                "parameters": read_params,
                "responses": {
                    "200": {
                        "description": "A page of features; ETag header (If-None-Match: 304).",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                        "content": _content(
                            {"$ref": _REF + "featureCollectionGeoJSON"}, GEOJSON, HTML
                        ),
                    },
                    "304": {"description": "Not modified (If-None-Match)."},
                    **_ERRORS_READ,
                },
            }
        }
        item: dict[str, Any] = {
            "get": {
                "tags": [info.title],
                "summary": f"{info.title}: one feature",
                "operationId": f"getFeature_{cid}",
                "parameters": [ref["featureId"], ref["f"]],
                "responses": {
                    "200": {
                        "description": "The feature; the ETag header is its version.",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                        "content": _content({"$ref": _REF + "featureGeoJSON"}, GEOJSON, HTML),
                    },
                    "304": {"description": "Not modified (If-None-Match)."},
                    "404": _error("No feature with this id."),
                    **_ERRORS_READ,
                },
            }
        }
        if info.editable:
            body = {
                "required": True,
                "content": {
                    GEOJSON: {"schema": {"$ref": _REF + "featureGeoJSON"}},
                    JSON: {"schema": {"$ref": _REF + "featureGeoJSON"}},
                },
            }
            security: list[dict[str, list[str]]] = [{"bearer": []}]
            items["post"] = {
                "tags": [info.title],
                "summary": "Add a station (admin, or an operator for its own stations)",
                "operationId": f"createFeature_{cid}",
                "security": security,
                "requestBody": body,
                "responses": {
                    "201": {
                        "description": "Created; Location and ETag headers.",
                        "headers": {
                            "Location": {"schema": {"type": "string"}},
                            "ETag": {"schema": {"type": "string"}},
                        },
                    },
                    "409": _error("A station with this id exists."),
                    **{k: v for k, v in _WRITE_ERRORS.items() if k not in ("404", "412", "428")},
                },
            }
            item["put"] = {
                "tags": [info.title],
                "summary": "Replace a station",
                "operationId": f"replaceFeature_{cid}",
                "security": security,
                "parameters": [ref["featureId"], _IF_MATCH],
                "requestBody": body,
                "responses": {"200": {"description": "Replaced; new ETag."}, **_WRITE_ERRORS},
            }
            item["patch"] = {
                "tags": [info.title],
                "summary": "Change a station (JSON merge patch)",
                "operationId": f"updateFeature_{cid}",
                "security": security,
                "parameters": [ref["featureId"], _IF_MATCH],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/merge-patch+json": {"schema": {"type": "object"}},
                        JSON: {"schema": {"type": "object"}},
                    },
                },
                "responses": {"200": {"description": "Changed; new ETag."}, **_WRITE_ERRORS},
            }
            item["delete"] = {
                "tags": [info.title],
                "summary": "Remove a station (kept with status removed)",
                "operationId": f"deleteFeature_{cid}",
                "security": security,
                "parameters": [
                    ref["featureId"],
                    _IF_MATCH,
                    {
                        "name": "reason",
                        "in": "query",
                        "required": False,
                        "description": "Why it is removed (kept in status_reason).",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 500},
                    },
                ],
                "responses": {"204": {"description": "Removed."}, **_WRITE_ERRORS},
            }
        paths[f"/collections/{cid}/items"] = items
        paths[f"/collections/{cid}/items/{{featureId}}"] = item
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Yizhan (驿站) OGC API – Features",
            "version": version,
            "description": "Stations for outdoor workers, cooling buses where they stand, and "
            "coverage by district, as OGC API – Features (Parts 1, 3 and 4).",
            "license": {"name": "MIT (code); data: see the collection descriptions"},
        },
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "parameters": _parameters(default_limit, max_limit),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
