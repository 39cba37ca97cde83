"""Dependencies shared by the routers (data loaded once by the app's lifespan)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from yizhan.geo.search import StationSearch
from yizhan.settings import Settings
from yizhan.stations.registry import Registry


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def get_search(request: Request) -> StationSearch:
    search: StationSearch = request.app.state.search
    return search


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
SearchDep = Annotated[StationSearch, Depends(get_search)]


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
