"""The HTTP API: ``create_app(settings)`` builds a FastAPI app over one registry.

The registry is loaded and fully validated once, in the app's lifespan, into
``app.state``; an invalid registry stops the start-up with every error listed.
Domain exceptions map to HTTP statuses in one table, :data:`ERROR_STATUS`.
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
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from threadpoolctl import threadpool_limits

from yizhan import __version__
from yizhan.assets import vendor_dir
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
from yizhan.query.search import build_search
from yizhan.query.usage_service import usage_stores
from yizhan.routes import (
    alerts,
    buses,
    editing,
    maps,
    nearest,
    pages,
    photos,
    planning,
    reports,
    stations,
    usage,
)
from yizhan.routes.deps import FastJSONResponse, RegistryDep
from yizhan.routes.limits import BodySizeLimit
from yizhan.settings import Settings
from yizhan.stations.filestore import RegistryStore
from yizhan.stations.registry import Registry, load_registry
from yizhan.stations.reports import ReportStore
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import TokenStore

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
    413: {"description": "The body is larger than the server accepts (max_body_bytes)."},
}


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


async def _watch(store: RegistryStore, interval_s: float) -> None:
    """Reload the registry when its file changes on disk (validated; invalid: refused)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if store.changed_on_disk():
                await asyncio.to_thread(store.reload_if_changed)
        except Exception:  # keep watching: one bad reload must not stop the next
            log.exception("checking %s for changes failed", store.path)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """Build the API.

    Parameters
    ----------
    settings : Settings, optional
        Configuration; defaults to ``Settings()`` (``YIZHAN_*`` environment variables).
    registry : Registry, optional
        An already loaded registry (the CLI validates before serving); otherwise the
        lifespan loads ``settings.registry``.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reg = (
            registry
            if registry is not None
            else load_registry(
                settings.registry,
                timezone=settings.timezone,
                holiday_country=settings.holiday_country,
            )
        )
        for w in reg.warnings:
            log.warning(w.format())
        # A server answers one point per request: pykdtree's OpenMP threads would have to
        # wake for every single-point query, which costs milliseconds on a busy machine
        # (measured: median 5.8 ms vs 0.2 ms with 10 ms between queries).
        threadpool_limits(limits=1, user_api="openmp")
        first = build_search(settings, reg)  # with placements and heat alerts
        placements, alerts = first.placements, first.alerts

        def build(r: Registry) -> StationSearch:
            return first if r is reg else build_search(settings, r, placements, alerts)

        store = RegistryStore(
            reg,
            build,
            timezone=settings.timezone,
            holiday_country=settings.holiday_country,
            audit_path=settings.state_file(reg.path, "audit", ".jsonl"),
        )
        app.state.store = store
        app.state.tokens = TokenStore(
            settings.state_file(reg.path, "tokens"),
            admin_token=settings.admin_token,
            legacy_admin_tokens=settings.admin_tokens,
            legacy_operator_tokens=settings.operator_tokens,
        )
        app.state.usage = usage_stores(settings, reg.path)  # check-ins, counts, photos, salts
        app.state.reports = ReportStore(
            settings.state_file(reg.path, "reports", ".jsonl"),
            window_days=settings.report_window_days,
            threshold=settings.report_threshold,
            rate_per_hour=settings.report_rate_per_hour,
            rate_per_station_per_day=settings.report_rate_per_station_per_day,
            salts=app.state.usage.salts,
        )
        # The registry and indexes live as long as the app: move them out of the collector's
        # reach, so that full collections do not walk millions of objects (0.8 s pauses).
        gc.collect()
        gc.freeze()
        watcher = (
            asyncio.create_task(_watch(store, settings.reload_interval_s))
            if reg.path is not None and settings.reload_interval_s > 0
            else None
        )
        log.info("serving %d stations from %s", len(reg), reg.path or "memory")
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            app.state.usage.close()

    app = FastAPI(
        title="Yizhan (驿站) API",
        version=__version__,
        description=(
            "Nearest service stations for outdoor workers: water, toilets, rest and cool air. "
            "Coordinates are `[lon, lat]`; input and output may be WGS-84, GCJ-02 or BD-09."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
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
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.get("/health", tags=["meta"], summary="Liveness and registry size")
    async def health(registry: RegistryDep) -> FastJSONResponse:
        return FastJSONResponse({"status": "ok", "version": __version__, "stations": len(registry)})

    # usage first: check-ins are the most frequent writes, and routes are tried in order
    routers = [usage, photos, stations, editing, reports, nearest, buses, alerts, planning, maps]
    routers += [pages]
    app.state.api_routes = [r for r in app.routes if isinstance(r, APIRoute)]
    for module in routers:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                if (route.methods or set()) & {"POST", "PATCH", "PUT"}:
                    route.responses = {**BODY_ERRORS, **route.responses}
                app.state.api_routes.append(route)
        app.include_router(module.router)
    # The maps' own runtime (package data), then the vendored JavaScript and CSS fetched at
    # set-up (`yizhan assets fetch`); the runtime first, as its path lies under the other.
    app.mount(f"/static/vendor/{RUNTIME_DIR}", StaticFiles(directory=runtime_dir()), name="runtime")
    app.mount("/static/vendor", StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor")
    return app
