"""Dependencies shared by the routers (data loaded once by the app's lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yizhan.errors import AuthenticationError, InvalidInputError, RateLimitedError
from yizhan.query.features import Flags, flags_today
from yizhan.routes.clients import SharedLimit, client_key
from yizhan.settings import Settings
from yizhan.stations.registry import Registry
from yizhan.stations.search import StationSearch
from yizhan.stations.tokens import PUBLIC, Principal
from yizhan.storage import Backend, RateLimits, Reports, Stations, Tokens


# Dependencies that only read app.state are `async def`: FastAPI runs a plain `def`
# dependency in a worker thread, and the thread hops cost more than the search itself.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_backend(request: Request) -> Backend:
    """Every kind of state, as the lifespan opened it (:func:`yizhan.storage.open_backend`)."""
    backend: Backend = request.app.state.backend
    return backend


async def get_store(request: Request) -> Stations:
    """The registry's store (files or PostgreSQL: :class:`yizhan.storage.Stations`)."""
    store: Stations = request.app.state.store
    return store


async def get_search(store: Annotated[Stations, Depends(get_store)]) -> StationSearch:
    # One snapshot per request: get_registry depends on this, and FastAPI resolves a
    # dependency once per request, so a request never mixes two versions of the registry.
    search: StationSearch = store.search
    return search


async def get_registry(search: Annotated[StationSearch, Depends(get_search)]) -> Registry:
    return search.registry


async def get_reports(request: Request) -> Reports:
    reports: Reports = request.app.state.reports
    return reports


async def get_rate_limits(request: Request) -> RateLimits:
    """Rate-limit counters shared by every process of the backend."""
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def get_flags(request: Request) -> Flags:
    return flags_today(request.app.state.settings, getattr(request.app.state, "reports", None))


SettingsDep = Annotated[Settings, Depends(get_settings)]
FlagsDep = Annotated[Flags, Depends(get_flags)]
BackendDep = Annotated[Backend, Depends(get_backend)]
StoreDep = Annotated[Stations, Depends(get_store)]
SearchDep = Annotated[StationSearch, Depends(get_search)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
ReportsDep = Annotated[Reports, Depends(get_reports)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


# -- authentication ------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `yizhan token create` (manager, operator or admin), "
    "`YIZHAN_ADMIN_TOKEN`, or a legacy `YIZHAN_OPERATOR_TOKENS`/`YIZHAN_ADMIN_TOKENS` token.",
)


async def get_tokens(request: Request) -> Tokens:
    tokens: Tokens = request.app.state.tokens
    return tokens


def auth_failures(request: Request) -> SharedLimit:
    """The app's count of failed bearer tokens per client, shared by every process of the
    deployment (made on first use)."""
    limiter: SharedLimit | None = getattr(request.app.state, "auth_failures", None)
    if limiter is None or limiter.limits is not request.app.state.rate_limits:
        settings: Settings = request.app.state.settings
        limiter = SharedLimit(
            request.app.state.rate_limits,
            "auth",
            settings.auth_failure_limit,
            settings.auth_failure_window_s,
            "invalid bearer tokens",
        )
        request.app.state.auth_failures = limiter
    return limiter


async def get_caller(
    request: Request,
    tokens: Annotated[Tokens, Depends(get_tokens)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Whoever sent the request: :data:`PUBLIC` without a token.

    A client that sent ``auth_failure_limit`` unknown tokens within
    ``auth_failure_window_s`` gets 429 for any token until the window has moved on, so
    tokens cannot be guessed at speed.

    Raises
    ------
    AuthenticationError
        A bearer token the server does not know, or one that was revoked (401).
    RateLimitedError
        Too many failed tokens from this client (429, with ``Retry-After``).
    """
    if credentials is None or not credentials.credentials:
        return PUBLIC
    failures = auth_failures(request)
    key = client_key(request, request.app.state.settings)
    wait_s = await asyncio.to_thread(failures.wait_s, key)
    if wait_s > 0:
        raise RateLimitedError(
            f"too many invalid bearer tokens from this client: retry after {math.ceil(wait_s)} s",
            math.ceil(wait_s),
        )
    who = tokens.authenticate(credentials.credentials)
    if who is None:
        with contextlib.suppress(RateLimitedError):  # refused from the next request on
            await asyncio.to_thread(failures.hit, key)
        raise AuthenticationError("invalid bearer token: unknown or revoked")
    return who


async def get_principal(who: Annotated[Principal, Depends(get_caller)]) -> Principal:
    """The manager, operator or admin a bearer token belongs to.

    Raises
    ------
    AuthenticationError
        No bearer token, or one the server does not know (401).
    """
    if who.role == "public":
        raise AuthenticationError(
            "missing bearer token: send 'Authorization: Bearer <token>' with a manager, "
            "operator or admin token"
        )
    return who


CallerDep = Annotated[Principal, Depends(get_caller)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def body_error(exc: InvalidInputError) -> RequestValidationError:
    """A 422 naming the request body member *exc* is about."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", exc.field), "msg": exc.message, "input": None}]
    )


_GEOMETRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Point", "MultiPoint"]},
        "coordinates": {"type": "array", "description": "`[lon, lat]` (a MultiPoint: a list)"},
    },
}
#: JSON Schema of one Feature in responses (the registry format: ``docs/registry.md``).
FEATURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "id", "geometry", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "string"},
        "geometry": _GEOMETRY_SCHEMA,
        "properties": {
            "type": "object",
            "required": ["name", "kind"],
            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
        },
    },
}
#: JSON Schema of a FeatureCollection in responses.
COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": FEATURE_SCHEMA},
    },
}


def geojson(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI response entry for a GeoJSON body."""
    return {"description": description, "content": {"application/geo+json": {"schema": schema}}}


class GeoJSONResponse(JSONResponse):
    """``application/geo+json`` rendered with orjson."""

    media_type = "application/geo+json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class FastJSONResponse(JSONResponse):
    """``application/json`` rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
