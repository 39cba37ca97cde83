"""OGC API – Features under ``/ogc``: Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0), Part 3
(CQL2 filters) and Part 4 (editing stations with the editing API's checks).

Thin: parameters are checked and parsed by :mod:`yizhan.query.ogc`, collections answered by
:mod:`yizhan.query.ogc_collections`, pages rendered by :mod:`yizhan.query.ogc_html`. The
routes are left out of FastAPI's own (3.1) schema: ``/ogc/api`` is their OpenAPI 3.0
definition. Errors in parameters are 400 with an OGC exception body ``{"code",
"description"}``; every listing and item has an ``ETag`` (``If-None-Match`` → 304).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

import orjson
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from yizhan import __version__
from yizhan.errors import InvalidInputError, NotFoundError
from yizhan.query import ogc
from yizhan.query.ogc_collections import (
    BUSES,
    DISTRICTS,
    STATIONS,
    Page,
    StudyLayerCache,
    bus_features,
    bus_items,
    buses_info,
    districts_info,
    find_in_list,
    gaps_info,
    station_item,
    station_items,
    stations_info,
    study_items,
)
from yizhan.query.ogc_edit import replacement_patch
from yizhan.query.ogc_html import render, render_items
from yizhan.query.ogc_openapi import openapi_document
from yizhan.query.studies import Study
from yizhan.routes.deps import FlagsDep, PrincipalDep, SearchDep, SettingsDep, StoreDep
from yizhan.routes.planning import get_study, study_spec
from yizhan.settings import Settings
from yizhan.stations.registry import Registry
from yizhan.stations.search import StationSearch

router = APIRouter(prefix="/ogc", tags=["ogc"], include_in_schema=False)

P = ParamSpec("P")

TITLE = "Yizhan (驿站) OGC API – Features"
DESCRIPTION = (
    "Service stations for outdoor workers (驿站), cooling buses where they stand, and — when "
    "a study is configured — districts with their coverage share and the gaps, as OGC API – "
    "Features: add it in QGIS (Layer › Add Layer › Add WFS / OGC API – Features Layer), "
    "GDAL (OAPIF:), ArcGIS Pro or OWSLib."
)
DEFAULT_DELETE_REASON = "removed through the OGC API (DELETE)"


def ogc_errors(
    func: Callable[P, Awaitable[Response]],
) -> Callable[P, Awaitable[Response]]:
    """Turn a bad parameter into 400 with an OGC exception body (the rest of the API
    answers 422): OGC 17-069r4 requirement ``/req/core/query-param-invalid``."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await func(*args, **kwargs)
        except InvalidInputError as exc:
            return JSONResponse(
                {
                    "code": "InvalidParameterValue",
                    "description": str(exc),
                    "detail": [{"loc": ["query", exc.field], "msg": exc.message}],
                },
                status_code=400,
            )
        except NotFoundError as exc:
            return JSONResponse(
                {"code": "NotFound", "description": str(exc), "detail": str(exc)}, 404
            )

    return wrapper


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    return ogc.check_params(request.query_params.multi_items(), allowed)


def _json(
    doc: Any,
    media_type: str = ogc.JSON,
    headers: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return Response(
        orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        media_type=media_type,
        headers=headers,
    )


def _fmt(request: Request, params: dict[str, str]) -> str:
    return ogc.negotiate(params.get("f"), request.headers.get("accept"))


def _etag_of(*parts: Any) -> str:
    h = hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SERIALIZE_NUMPY), digest_size=12)
    return f'W/"{h.hexdigest()}"'


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    tags = {t.strip().removeprefix("W/") for t in given.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


# -- the collections the server has -----------------------------------------------------
def _has_study(settings: Settings, registry: Registry) -> bool:
    return study_spec(settings, registry) is not None


async def _study(request: Request, settings: Settings, registry: Registry) -> Study:
    return await asyncio.to_thread(get_study, request, settings, registry)


def _layers_cache(request: Request) -> StudyLayerCache:
    cache: StudyLayerCache | None = getattr(request.app.state, "ogc_study_layers", None)
    if cache is None:
        cache = StudyLayerCache()
        request.app.state.ogc_study_layers = cache
    return cache


async def _infos(
    request: Request, settings: Settings, search: StationSearch
) -> list[ogc.CollectionInfo]:
    infos = [stations_info(search), buses_info(search)]
    if _has_study(settings, search.registry):
        study = await _study(request, settings, search.registry)
        infos += [districts_info(study), gaps_info(study)]
    return infos


async def _info(
    request: Request, settings: Settings, search: StationSearch, collection_id: str
) -> ogc.CollectionInfo:
    for info in await _infos(request, settings, search):
        if info.id == collection_id:
            return info
    raise NotFoundError(f"no collection {collection_id!r}")


# -- capabilities -----------------------------------------------------------------------
@router.get("")
@router.get("/")
@ogc_errors
async def landing(request: Request) -> Response:
    params = _params(request, ogc.COMMON_PARAMS)
    base = _base(request)
    doc = ogc.landing_page(base, TITLE, DESCRIPTION)
    if _fmt(request, params) == "html":
        return HTMLResponse(render("landing", doc, base=base, root=str(request.base_url)))
    return _json(doc)


@router.get("/conformance")
@ogc_errors
async def conformance(request: Request) -> Response:
    params = _params(request, ogc.COMMON_PARAMS)
    base = _base(request)
    doc = ogc.conformance(base)
    if _fmt(request, params) == "html":
        return HTMLResponse(
            render("conformance", doc, base=base, root=str(request.base_url), title="Conformance")
        )
    return _json(doc)


@router.get("/api")
@ogc_errors
async def api_definition(request: Request, settings: SettingsDep, search: SearchDep) -> Response:
    params = _params(request, ogc.COMMON_PARAMS)
    base = _base(request)
    if _fmt(request, params) == "html":
        return get_swagger_ui_html(openapi_url=f"{base}/api?f=json", title=TITLE)
    doc = openapi_document(
        base,
        await _infos(request, settings, search),
        version=__version__,
        default_limit=min(settings.default_limit, settings.max_limit),
        max_limit=settings.max_limit,
    )
    return _json(doc, ogc.OPENAPI_30)


@router.get("/collections")
@ogc_errors
async def collections(request: Request, settings: SettingsDep, search: SearchDep) -> Response:
    params = _params(request, ogc.COMMON_PARAMS)
    base = _base(request)
    doc = ogc.collections_doc(base, await _infos(request, settings, search))
    if _fmt(request, params) == "html":
        return HTMLResponse(
            render("collections", doc, base=base, root=str(request.base_url), title="Collections")
        )
    return _json(doc)


@router.get("/collections/{collection_id}")
@ogc_errors
async def collection(
    request: Request, settings: SettingsDep, search: SearchDep, collection_id: str
) -> Response:
    params = _params(request, ogc.COMMON_PARAMS)
    base = _base(request)
    doc = ogc.collection_doc(base, await _info(request, settings, search, collection_id))
    if _fmt(request, params) == "html":
        return HTMLResponse(
            render(
                "collection",
                doc,
                base=base,
                root=str(request.base_url),
                collection_id=collection_id,
            )
        )
    return _json(doc)


@router.get("/collections/{collection_id}/queryables")
@ogc_errors
async def queryables(
    request: Request, settings: SettingsDep, search: SearchDep, collection_id: str
) -> Response:
    _params(request, ogc.COMMON_PARAMS)
    info = await _info(request, settings, search, collection_id)
    return _json(ogc.queryables_doc(_base(request), info), ogc.SCHEMA_JSON)


# -- items ------------------------------------------------------------------------------
async def _page(
    request: Request,
    settings: Settings,
    search: StationSearch,
    flags: Any,
    info: ogc.CollectionInfo,
    query: ogc.ItemsQuery,
) -> Page:
    tz = settings.timezone
    if info.id == STATIONS:
        return await asyncio.to_thread(station_items, search, flags, query, tz)
    if info.id == BUSES:
        return bus_items(search, flags, query, tz)
    study = await _study(request, settings, search.registry)
    layers = await asyncio.to_thread(_layers_cache(request).get, search, study)
    return study_items(layers, info.id, query, tz)


@router.get("/collections/{collection_id}/items")
@ogc_errors
async def items(
    request: Request,
    settings: SettingsDep,
    search: SearchDep,
    flags: FlagsDep,
    collection_id: str,
) -> Response:
    info = await _info(request, settings, search, collection_id)
    params = _params(request, ogc.ITEMS_PARAMS | frozenset(info.queryables))
    fmt = _fmt(request, params)
    query = ogc.parse_items_query(
        params,
        info.queryables,
        default_limit=min(settings.default_limit, settings.max_limit),
        max_limit=settings.max_limit,
        timezone=settings.timezone,
    )
    page = await _page(request, settings, search, flags, info, query)
    base = _base(request)
    coll_url = f"{base}/collections/{info.id}"
    doc = ogc.feature_collection(
        page.features,
        url=str(request.url),
        matched=page.matched,
        query=query,
        collection_url=coll_url,
    )
    etag = _etag_of(fmt, page.matched, page.features, doc["links"])
    headers = {"ETag": etag, "Vary": "Accept"}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    if fmt == "html":
        html = render_items(
            doc,
            base=base,
            root=str(request.base_url),
            collection_id=info.id,
            title=info.title,
            filter_text=params.get("filter"),
        )
        return HTMLResponse(html, headers=headers)
    return _json(doc, ogc.GEOJSON, headers)


@router.get("/collections/{collection_id}/items/{feature_id}")
@ogc_errors
async def item(
    request: Request,
    settings: SettingsDep,
    search: SearchDep,
    store: StoreDep,
    flags: FlagsDep,
    collection_id: str,
    feature_id: str,
) -> Response:
    info = await _info(request, settings, search, collection_id)
    params = _params(request, ogc.ITEM_PARAMS)
    fmt = _fmt(request, params)
    if info.id == STATIONS:
        feature = station_item(search, flags, feature_id)
        etag = store.etag(search.registry.feature(feature_id))
    else:
        if info.id == BUSES:
            feats = bus_features(search, flags, time.time())
        else:
            study = await _study(request, settings, search.registry)
            layers = await asyncio.to_thread(_layers_cache(request).get, search, study)
            feats = layers.districts if info.id == DISTRICTS else layers.gaps
        feature = find_in_list(feats, feature_id, info.title.lower())
        etag = _etag_of(feature)
    base = _base(request)
    out = {**feature, "links": ogc.feature_links(str(request.url), f"{base}/collections/{info.id}")}
    headers = {"ETag": etag, "Vary": "Accept"}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    if fmt == "html":
        html = render_items(
            out,
            base=base,
            root=str(request.base_url),
            collection_id=info.id,
            title=f"{info.title}: {feature_id}",
        )
        return HTMLResponse(html, headers=headers)
    return _json(out, ogc.GEOJSON, headers)


# -- Part 4: editing stations -----------------------------------------------------------
async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInputError("body", "Expected a JSON body") from None


def _editable(collection_id: str) -> None:
    if collection_id != STATIONS:
        raise _MethodNotAllowedError(collection_id)


class _MethodNotAllowedError(Exception):
    def __init__(self, collection_id: str) -> None:
        super().__init__(f"{collection_id!r} is read-only: only stations can be edited")


def _write_errors(
    func: Callable[P, Awaitable[Response]],
) -> Callable[P, Awaitable[Response]]:
    """Body errors name the body member (422, as the editing API); read-only collections
    answer 405."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await func(*args, **kwargs)
        except _MethodNotAllowedError as exc:
            return JSONResponse(
                {"code": "MethodNotAllowed", "description": str(exc), "detail": str(exc)},
                status_code=405,
                headers={"Allow": "GET"},
            )

    return wrapper


def _edited(flags: Any, feature: dict[str, Any], etag: str, status: int, base: str) -> Response:
    out = {**feature, "properties": {**feature["properties"], **flags(feature)}}
    headers = {"ETag": etag}
    if status == 201:
        headers["Location"] = f"{base}/collections/{STATIONS}/items/{feature['id']}"
    if status == 204:
        return Response(status_code=204, headers=headers)
    return _json(out, ogc.GEOJSON, headers, status)


def _invalid_body(exc: InvalidInputError) -> JSONResponse:
    """422 naming the body member, as the editing API answers."""
    return JSONResponse(
        {
            "code": "InvalidValue",
            "description": str(exc),
            "detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}],
        },
        status_code=422,
    )


async def _store_write(func: Callable[..., Any], *args: Any) -> Any:
    """Run a store write in a worker thread (it fsyncs); input errors become 422."""
    try:
        return await asyncio.to_thread(func, *args)
    except InvalidInputError as exc:
        return _invalid_body(exc)


@router.post("/collections/{collection_id}/items")
@_write_errors
@ogc_errors
async def create_item(
    request: Request, store: StoreDep, flags: FlagsDep, who: PrincipalDep, collection_id: str
) -> Response:
    _editable(collection_id)
    _params(request, frozenset())
    body = await _body(request)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "links"}
    found = await _store_write(store.create, body, who)
    if isinstance(found, Response):
        return found
    return _edited(flags, found.feature, found.etag, 201, _base(request))


@router.put("/collections/{collection_id}/items/{feature_id}")
@_write_errors
@ogc_errors
async def replace_item(
    request: Request,
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    collection_id: str,
    feature_id: str,
) -> Response:
    _editable(collection_id)
    _params(request, frozenset())
    body = await _body(request)
    current = store.find(feature_id)
    if current.bus:
        raise NotFoundError(f"no station with id {feature_id!r}")
    try:
        patch = replacement_patch(current.feature, body, feature_id)
    except InvalidInputError as exc:
        return _invalid_body(exc)
    found = await _store_write(
        store.update, feature_id, patch, request.headers.get("if-match"), who
    )
    if isinstance(found, Response):
        return found
    return _edited(flags, found.feature, found.etag, 200, _base(request))


@router.patch("/collections/{collection_id}/items/{feature_id}")
@_write_errors
@ogc_errors
async def update_item(
    request: Request,
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    collection_id: str,
    feature_id: str,
) -> Response:
    _editable(collection_id)
    _params(request, frozenset())
    patch = await _body(request)
    found = await _store_write(
        store.update, feature_id, patch, request.headers.get("if-match"), who
    )
    if isinstance(found, Response):
        return found
    return _edited(flags, found.feature, found.etag, 200, _base(request))


@router.delete("/collections/{collection_id}/items/{feature_id}")
@_write_errors
@ogc_errors
async def delete_item(
    request: Request,
    store: StoreDep,
    flags: FlagsDep,
    who: PrincipalDep,
    collection_id: str,
    feature_id: str,
) -> Response:
    _editable(collection_id)
    params = _params(request, frozenset({"reason"}))
    reason = params.get("reason") or DEFAULT_DELETE_REASON
    found = await _store_write(
        store.remove, feature_id, reason, request.headers.get("if-match"), who
    )
    if isinstance(found, Response):
        return found
    return _edited(flags, found.feature, found.etag, 204, _base(request))
