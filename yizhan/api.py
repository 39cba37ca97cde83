"""The HTTP API: ``create_app(settings)`` builds a FastAPI app over one registry.

The registry is loaded and fully validated once, in the app's lifespan, into
``app.state``; an invalid registry stops the start-up with every error listed.
Domain exceptions map to HTTP statuses in one table, :data:`ERROR_STATUS`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from yizhan import __version__
from yizhan.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RegistryInvalidError,
    YizhanError,
)
from yizhan.maps.assets import vendor_dir
from yizhan.routes import alerts, buses, maps, nearest, planning, stations
from yizhan.routes.deps import FastJSONResponse, RegistryDep, build_search
from yizhan.settings import Settings
from yizhan.stations.registry import Registry, load_registry

log = logging.getLogger("yizhan")

#: Domain exception → HTTP status. The first matching class (in MRO order) wins.
ERROR_STATUS: dict[type[YizhanError], int] = {
    InvalidInputError: 422,
    NotFoundError: 404,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    ConflictError: 409,
    RegistryInvalidError: 500,
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
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(_error_body(exc, status), status_code=status, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


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
        app.state.registry = reg
        app.state.search = build_search(settings, reg)  # with placements and heat alerts
        # The registry and indexes live as long as the app: move them out of the collector's
        # reach, so that full collections do not walk millions of objects (0.8 s pauses).
        gc.collect()
        gc.freeze()
        log.info("serving %d stations from %s", len(reg), reg.path or "memory")
        yield

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
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_exception_handler(YizhanError, _domain_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.get("/health", tags=["meta"], summary="Liveness and registry size")
    async def health(registry: RegistryDep) -> FastJSONResponse:
        return FastJSONResponse({"status": "ok", "version": __version__, "stations": len(registry)})

    app.include_router(stations.router)
    app.include_router(nearest.router)
    app.include_router(buses.router)
    app.include_router(alerts.router)
    app.include_router(planning.router)
    app.include_router(maps.router)
    # The maps' JavaScript and CSS, fetched at set-up (`python -m yizhan.maps.assets fetch`).
    app.mount("/static/vendor", StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor")
    return app
