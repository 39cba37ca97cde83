"""Exports over HTTP: ``GET /export/stations.{ext}`` (the filters of ``GET /stations``) and
``GET /export/{districts,gaps,sites}.{ext}`` (the configured coverage study).

GeoJSON and CSV are streamed as they are produced; GeoPackage, Shapefile (zipped, with
its ``.cpg`` and the mapping that reads it back), XLSX and FlatGeobuf are written to a
temporary file in a worker thread and streamed from it. See :mod:`yizhan.query.export`.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from yizhan.query.export import (
    MEDIA,
    FlatLayer,
    chunks_of_file,
    csv_chunks,
    flatten_features,
    flatten_stations,
    geojson_chunks,
    write_file,
)
from yizhan.query.export_study import study_layer
from yizhan.query.listing import StationQuery, matching
from yizhan.routes.deps import FlagsDep, RegistryDep, SettingsDep
from yizhan.routes.params import (
    AmenityParam,
    CategoryParam,
    DistrictParam,
    KindParam,
    StaleParam,
    StatusParam,
    TextParam,
)
from yizhan.routes.planning import (
    ANALYSIS_ERRORS,
    AnalysisCaller,
    FilterDep,
    RadiusParam,
    StudyDep,
    check_radius_limit,
    run_analysis,
)
from yizhan.stations.registry import Registry

router = APIRouter(tags=["export"])

Ext = Literal["geojson", "csv", "gpkg", "shp", "xlsx", "fgb"]

_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file (GeoJSON and CSV streamed as produced; shp: a zip).",
        "content": {media: {} for media, _ in MEDIA.values()},
    }
}


def _respond(
    layer: FlatLayer,
    features: list[dict[str, Any]],
    ext: str,
    filename: str,
    meta: dict[str, Any] | None = None,
) -> StreamingResponse:
    media, suffix = MEDIA[ext]
    name = f"{filename}{'.shp' if ext == 'shp' else ''}{suffix}"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    if ext == "geojson":
        return StreamingResponse(geojson_chunks(features, meta), media_type=media, headers=headers)
    if ext == "csv":
        return StreamingResponse(csv_chunks(layer), media_type=media, headers=headers)
    raise AssertionError(ext)


async def _file_response(
    layer: FlatLayer, ext: str, filename: str, meta: dict[str, Any] | None
) -> StreamingResponse:
    media, suffix = MEDIA[ext]
    tmp = Path(tempfile.mkdtemp(prefix="yizhan-export-"))
    try:
        target = tmp / f"{filename}{suffix}"
        files = await asyncio.to_thread(write_file, [layer], ext, target, meta=meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    name = f"{filename}{'.shp' if ext == 'shp' else ''}{suffix}"
    return StreamingResponse(
        chunks_of_file(files[0]),
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Content-Length": str(files[0].stat().st_size),
        },
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )


async def _send(
    layer: FlatLayer,
    features: list[dict[str, Any]],
    ext: str,
    filename: str,
    meta: dict[str, Any] | None = None,
) -> StreamingResponse:
    if ext in ("geojson", "csv"):
        return _respond(layer, features, ext, filename, meta)
    return await _file_response(layer, ext, filename, meta)


def _station_features(registry: Registry, query: StationQuery, flags: Any) -> list[dict[str, Any]]:
    return [registry.features[i] for i in matching(registry, query, flags).tolist()]


@router.get(
    "/export/stations.{ext}",
    summary="Export stations (filtered as /stations) as a file",
    response_class=StreamingResponse,
    responses=_FILE_RESPONSES,
)
async def export_stations(
    registry: RegistryDep,
    flags: FlagsDep,
    ext: Ext,
    bbox: Annotated[
        str | None,
        Query(description="minlon,minlat,maxlon,maxlat (WGS-84); minlon > maxlon crosses 180°."),
    ] = None,
    kind: KindParam = None,
    category: CategoryParam = None,
    amenity: AmenityParam = None,
    status: Annotated[
        StatusParam, Query(description="Status; repeatable. Default: every status.")
    ] = None,
    district: DistrictParam = None,
    q: TextParam = None,
    stale: StaleParam = None,
    needs_check: Annotated[
        bool | None, Query(description="`true`: only flagged stations; `false`: the others.")
    ] = None,
) -> StreamingResponse:
    """Every station matching the filters (as `GET /stations`, without paging), ordered by
    id: GeoJSON as stored; CSV with `lon`, `lat` and `wkt`; GeoPackage; Shapefile (zip, UTF-8
    `.cpg`); XLSX; FlatGeobuf. `yizhan import` reads each back."""
    query = StationQuery.make(
        amenity, kind, category, status, district, stale, flags.stale_before, bbox, q, needs_check
    )
    features = await asyncio.to_thread(_station_features, registry, query, flags)
    layer = flatten_stations(features)
    return await _send(layer, features, ext, "stations", dict(registry.meta))


@router.get(
    "/export/{layer}.{ext}",
    summary="Export a coverage study layer (districts, gaps, sites) as a file",
    response_class=StreamingResponse,
    responses={**_FILE_RESPONSES, **ANALYSIS_ERRORS},
)
async def export_study_layer(
    request: Request,
    client: AnalysisCaller,
    settings: SettingsDep,
    registry: RegistryDep,
    study: StudyDep,
    flt: FilterDep,
    layer: Literal["districts", "gaps", "sites"],
    ext: Ext,
    radius_m: RadiusParam = 1000.0,
    n_new: Annotated[int, Query(ge=1, le=200, description="Suggested sites (sites only).")] = 10,
) -> StreamingResponse:
    """The configured study's districts with their coverage share, its gap polygons, or
    `n_new` suggested sites, counting the stations that pass the filters (default:
    operational) within `radius_m`."""
    # An analysis like /coverage and /analysis/site: in a bounded, time-limited process.
    check_radius_limit(radius_m, settings)
    compute = partial(study_layer, radius_m=radius_m, flt=flt, n_new=n_new)
    features = await run_analysis(request, client, compute, layer, registry, study)
    return await _send(flatten_features(features, layer), features, ext, layer)
