"""Dependencies shared by the routers (data loaded once by the app's lifespan)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yizhan.errors import AuthenticationError, InvalidInputError
from yizhan.geo.search import StationSearch, search_from_settings
from yizhan.settings import Settings
from yizhan.stations.registry import Registry


# Dependencies that only read app.state are `async def`: FastAPI runs a plain `def`
# dependency in a worker thread, and the thread hops cost more than the search itself.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def get_search(request: Request) -> StationSearch:
    search: StationSearch = request.app.state.search
    return search


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
SearchDep = Annotated[StationSearch, Depends(get_search)]


def build_search(settings: Settings, registry: Registry) -> StationSearch:
    """The search over *registry*, with its placements and alerts stores.

    Placements and alerts are read from (and written to) the files
    :meth:`Settings.state_file` names; expired entries are dropped.
    """
    search = search_from_settings(settings, registry)
    _ = search.fleet  # build the hours keys and the buses now, not on the first request
    return search


# -- authentication ------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    description="An operator token (`YIZHAN_OPERATOR_TOKENS`) or an admin token "
    "(`YIZHAN_ADMIN_TOKENS`).",
)


@dataclass(frozen=True)
class Principal:
    """Who sent a request: an operator (by name) or an admin."""

    name: str
    admin: bool = False


def _matches(token: str, candidate: str) -> bool:
    return hmac.compare_digest(token.encode(), candidate.encode())


async def get_principal(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The operator or admin a bearer token belongs to.

    Raises
    ------
    AuthenticationError
        No bearer token, or a token the server does not know (401).
    """
    if credentials is None or not credentials.credentials:
        raise AuthenticationError(
            "missing bearer token: send 'Authorization: Bearer <token>' with an operator "
            "or admin token"
        )
    token = credentials.credentials
    for candidate in settings.admin_tokens:
        if _matches(token, candidate):
            return Principal("admin", admin=True)
    found: str | None = None
    for candidate, operator in settings.operator_tokens.items():
        if _matches(token, candidate):
            found = operator
    if found is None:
        raise AuthenticationError("invalid bearer token: it is not an operator or admin token")
    return Principal(found)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def body_error(exc: InvalidInputError) -> RequestValidationError:
    """A 422 naming the request body member *exc* is about."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", exc.field), "msg": exc.message, "input": None}]
    )


class GeoJSONResponse(Response):
    """``application/geo+json`` rendered with orjson."""

    media_type = "application/geo+json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class FastJSONResponse(Response):
    """``application/json`` rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
