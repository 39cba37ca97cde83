"""The HTTP API: ``create_app(settings)`` builds a FastAPI app over one registry.

The app's lifespan opens the storage backend once (:func:`yizhan.storage.open_backend`: the
registry loaded and fully validated, with every other kind of state) into ``app.state``;
an invalid registry stops the start-up with every error listed. Domain exceptions map to
HTTP statuses in one table, :data:`ERROR_STATUS`. :func:`app_from_env` is the factory
``yizhan serve --workers N`` gives uvicorn (each worker builds its app from the
environment).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from threadpoolctl import threadpool_limits

from yizhan import __version__
from yizhan.assets import package, vendor_dir
from yizhan.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RateLimitedError,
    RegistryInvalidError,
    StorageUnavailableError,
    YizhanError,
)
from yizhan.maps.runtime import RUNTIME_DIR, runtime_dir
from yizhan.query.analysis import AnalysisUnavailableError
from yizhan.query.usage_service import usage_stores
from yizhan.query.walking import Walking
from yizhan.routes import (
    alerts,
    buses,
    editing,
    export,
    isochrone,
    maps,
    nearest,
    ogc,
    pages,
    photos,
    planning,
    proposals,
    reports,
    stations,
    usage,
)
from yizhan.routes.deps import FastJSONResponse, RegistryDep, get_caller
from yizhan.routes.limits import BodySizeLimit, JSONBodyGuard
from yizhan.routes.planning import analysis_runner, warm_walking
from yizhan.settings import Settings
from yizhan.stations.registry import Registry
from yizhan.storage import open_backend

log = logging.getLogger("yizhan")

#: Domain exception → HTTP status. The first matching class (in MRO order) wins.
ERROR_STATUS: dict[type[YizhanError], int] = {
    InvalidInputError: 422,
    NotFoundError: 404,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    ConflictError: 409,
    PreconditionFailedError: 412,
    PreconditionRequiredError: 428,
    RateLimitedError: 429,
    RegistryInvalidError: 500,
    StorageUnavailableError: 503,
}


def _error_body(exc: YizhanError, status: int) -> dict[str, Any]:
    if isinstance(exc, InvalidInputError):
        return {
            "detail": [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}]
        }
    return {"detail": str(exc)}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, YizhanError)
    status = next((ERROR_STATUS[c] for c in type(exc).__mro__ if c in ERROR_STATUS), 500)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, (RateLimitedError, StorageUnavailableError)):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, PreconditionFailedError) and exc.current_etag:
        headers["ETag"] = exc.current_etag
    return JSONResponse(_error_body(exc, status), status_code=status, headers=headers or None)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to HTTP errors, with a complete ``Allow`` header on 405: the methods
    of every route on the path, not only those of the first route that matched it."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        methods: set[str] = set()
        for route in request.app.state.api_routes:
            match, _ = route.matches(request.scope)
            if match != Match.NONE:
                methods |= route.methods or set()
        if methods:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)


#: Documented on every route that reads a request body.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON."},
    408: {"description": "The body did not arrive within body_timeout_s."},
    413: {"description": "The body is larger than the server accepts (max_body_bytes)."},
    422: {
        "description": "The body is invalid (the member is named), nests deeper than "
        "max_json_depth, or holds NaN, Infinity, an integer beyond 64 bits or a lone "
        "surrogate."
    },
}
#: Documented on every route that reads a bearer token.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many invalid bearer tokens from this client "
        "(auth_failure_limit); `Retry-After` says when."
    },
}


async def _analysis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AnalysisUnavailableError)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    return JSONResponse({"detail": str(exc)}, status_code=503, headers=headers)


def _reads_token(dependant: Any) -> bool:
    """Whether a route's dependencies include :func:`get_caller` (it may answer 429)."""
    return any(d.call is get_caller or _reads_token(d) for d in dependant.dependencies)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


#: The documentation pages may load nothing from another origin (ReDoc would fetch its
#: makers' logo from cdn.redoc.ly): they work offline by construction. FastAPI writes their
#: set-up as inline scripts; ReDoc's search runs in a worker made from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _add_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their JavaScript and CSS from this
    server (``/static/vendor/``, fetched at set-up by ``yizhan assets fetch``), not from a
    CDN: FastAPI's own pages are blank offline and slow where the CDN is unreachable."""

    def vendored(request: Request, key: str, path: str) -> str:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return f"{root}/static/vendor/{package(key).dirname}/{path}"

    def openapi_url(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/") + str(app.openapi_url)

    def offline(page: HTMLResponse) -> HTMLResponse:
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=str(request.scope.get("root_path", "")).rstrip("/")
            + "/docs/oauth2-redirect",
            swagger_js_url=vendored(request, "swagger-ui-dist", "swagger-ui-bundle.js"),
            swagger_css_url=vendored(request, "swagger-ui-dist", "swagger-ui.css"),
            swagger_favicon_url=vendored(request, "swagger-ui-dist", "favicon-32x32.png"),
            # No badge from validator.swagger.io (an outside request).
            swagger_ui_parameters={"validatorUrl": None},
        )
        return offline(page)

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=vendored(request, "redoc", "bundles/redoc.standalone.js"),
            redoc_favicon_url=vendored(request, "swagger-ui-dist", "favicon-32x32.png"),
            with_google_fonts=False,
        )
        return offline(page)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """Build the API.

    Parameters
    ----------
    settings : Settings, optional
        Configuration; defaults to ``Settings()`` (``YIZHAN_*`` environment variables).
    registry : Registry, optional
        An already loaded registry (the CLI validates before serving); otherwise the
        lifespan loads ``settings.registry`` (files), or the database's
        (``settings.database_url``).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A server answers one point per request: pykdtree's OpenMP threads would have to
        # wake for every single-point query, which costs milliseconds on a busy machine
        # (measured: median 5.8 ms vs 0.2 ms with 10 ms between queries).
        threadpool_limits(limits=1, user_api="openmp")
        # Every kind of state, opened in this one place: files beside the registry, or
        # PostgreSQL when YIZHAN_DATABASE_URL is set (yizhan.storage).
        backend = await asyncio.to_thread(open_backend, settings, registry)
        reg = backend.stations.registry
        for w in reg.warnings:
            log.warning(w.format())
        app.state.backend = backend
        app.state.store = backend.stations
        app.state.tokens = backend.tokens
        app.state.reports = backend.reports
        app.state.rate_limits = backend.rate_limits
        # The walking network (YIZHAN_NETWORK), loaded and indexed now; the stations of each
        # registry snapshot are snapped once, on the first walking query (this one now).
        app.state.walking = Walking.from_settings(settings)
        if app.state.walking is not None:
            app.state.walking.stations(reg)
        # Check-ins, visit counts and rows and the daily salts of client hashes are the
        # backend's (every replica on one database shares them), and so are the photos.
        # Reports hash their clients under the same salts.
        app.state.usage = usage_stores(settings, reg.path, backend=backend)
        # The registry and indexes live as long as the app: move them out of the collector's
        # reach, so that full collections do not walk millions of objects (0.8 s pauses).
        gc.collect()
        gc.freeze()
        backend.start()  # follow other processes' changes (file watcher, or LISTEN/NOTIFY)
        if app.state.analysis.closed:  # the app is started again after a shutdown
            app.state.analysis = analysis_runner(settings)
        # Start the analyses' forkserver in the background: the first analysis need not wait.
        asyncio.get_running_loop().run_in_executor(None, app.state.analysis.warm_up)
        # ... and snap the study's demand onto the walking network (once per study).
        if app.state.walking is not None:
            asyncio.get_running_loop().run_in_executor(None, warm_walking, app)
        if settings.trust_forwarded_for:
            log.warning(
                "YIZHAN_TRUST_FORWARDED_FOR is deprecated: set YIZHAN_TRUSTED_PROXIES to the "
                "addresses of your proxies instead (now: the right-most X-Forwarded-For "
                "address is taken as the client's, from any peer)"
            )
        log.info("serving %d stations from %s (%s)", len(reg), backend.where, backend.kind)
        try:
            yield
        finally:
            app.state.usage.close()
            app.state.analysis.close()
            await asyncio.to_thread(backend.close)

    app = FastAPI(
        title="Yizhan (驿站) API",
        version=__version__,
        description=(
            "Nearest service stations for outdoor workers: water, toilets, rest and cool air. "
            "Coordinates are `[lon, lat]`; input and output may be WGS-84, GCJ-02 or BD-09."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by _add_docs, from this server's copies of the assets
        redoc_url=None,
    )
    _add_docs(app)
    app.state.settings = settings
    app.state.analysis = analysis_runner(settings)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    # Added first, so inside BodySizeLimit: the body it reads is already capped.
    app.add_middleware(JSONBodyGuard, max_depth=settings.max_json_depth)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        larger=[(photos.UPLOAD_PATH, settings.photo_max_bytes)],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Location", "Retry-After"],
        )
    app.add_exception_handler(YizhanError, _domain_error)
    app.add_exception_handler(AnalysisUnavailableError, _analysis_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.get("/health", tags=["meta"], summary="Liveness and registry size")
    async def health(registry: RegistryDep) -> FastJSONResponse:
        return FastJSONResponse({"status": "ok", "version": __version__, "stations": len(registry)})

    # GET /nearest, the busiest request, is answered by a plain route matched first (the
    # FastAPI route in nearest.router documents it; see yizhan.routes.nearest).
    app.router.routes.insert(0, nearest.fast_route)
    # usage next: check-ins are the most frequent writes, and routes are tried in order
    routers = [usage, photos, stations, editing, reports, nearest, buses, alerts, planning]
    routers += [maps, pages, proposals]
    routers.append(ogc)
    routers.append(export)
    routers.append(isochrone)
    app.state.api_routes = [r for r in app.routes if isinstance(r, APIRoute)]
    for module in routers:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                if (route.methods or set()) & {"POST", "PATCH", "PUT"}:
                    route.responses = {**BODY_ERRORS, **route.responses}
                if _reads_token(route.dependant):
                    route.responses = {**AUTH_ERRORS, **route.responses}
                app.state.api_routes.append(route)
        app.include_router(module.router)
    # The maps' own runtime (package data), then the vendored JavaScript and CSS fetched at
    # set-up (`yizhan assets fetch`); the runtime first, as its path lies under the other.
    app.mount(f"/static/vendor/{RUNTIME_DIR}", StaticFiles(directory=runtime_dir()), name="runtime")
    app.mount("/static/vendor", StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor")
    return app


def app_from_env() -> FastAPI:
    """The API configured from the environment (``YIZHAN_*``): the factory each uvicorn
    worker calls (``uvicorn --factory yizhan.api:app_from_env``)."""
    return create_app(Settings())
