"""Hexagon lattices: cells over a study area and polygons spread over their area.

Hexagons are "flat-topped" and ``size_m`` is the distance from a hexagon's centre to a
corner, which is also its edge length (as in H3); a hexagon's area is
``3 √3 / 2 · size_m²`` (``size_m = 500`` gives 0.65 km²). The lattice is laid out in the
local projection of :mod:`yizhan.geo.projection`. Written by hand because H3's cells are
not cut along district boundaries and cannot be sized in metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import (
    Demand,
    Districts,
    check_weights,
    encode_labels,
    parse_crs_name,
    to_wgs84_geometry,
)
from yizhan.geo.projection import LocalProjection

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
GeomArray = NDArray[np.object_]

#: Most hexagons a grid may have (the lattice over the bounding box is checked first).
MAX_HEX_CELLS = 5_000_000


# ---------------------------------------------------------------------------------------
# Hexagons and polygons
# ---------------------------------------------------------------------------------------
def hex_cells(
    bounds: tuple[float, float, float, float], size_m: float, max_cells: int = MAX_HEX_CELLS
) -> GeomArray:
    """Flat-topped hexagons (in projected metres) of a fixed lattice covering *bounds*.

    The lattice is anchored at the projection origin: hexagon centres are at
    ``x = 1.5 s i``, ``y = √3 s (j + i/2 mod 1)``, so the same cells come out for any
    bounds on the same projection.
    """
    if not (size_m > 0 and math.isfinite(size_m)):
        raise InvalidInputError("size_m", f"Expected a hexagon size > 0 metres, got {size_m!r}")
    s = float(size_m)
    h = math.sqrt(3.0) * s
    minx, miny, maxx, maxy = bounds
    i0, i1 = math.floor((minx - s) / (1.5 * s)), math.ceil((maxx + s) / (1.5 * s))
    j0, j1 = math.floor((miny - h) / h), math.ceil((maxy + h) / h)
    count = (i1 - i0 + 1) * (j1 - j0 + 1)
    if count > max_cells:
        raise InvalidInputError(
            "size_m",
            f"Expected at most {max_cells:,} hexagons, got about {count:,} for size_m={size_m}; "
            "use a larger size",
        )
    gi, gj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
    ii, jj = gi.ravel(), gj.ravel()
    cx = 1.5 * s * ii
    cy = h * (jj + 0.5 * (ii % 2))
    keep = (cx + s >= minx) & (cx - s <= maxx) & (cy + h / 2 >= miny) & (cy - h / 2 <= maxy)
    cx, cy = cx[keep], cy[keep]
    ang = np.radians(np.arange(0, 360, 60, dtype=np.float64))
    coords = np.stack(
        [cx[:, None] + s * np.cos(ang)[None, :], cy[:, None] + s * np.sin(ang)[None, :]], axis=-1
    )
    return np.asarray(shapely.polygons(coords), dtype=object)


def _pieces(area_xy: Any, size_m: float) -> tuple[GeomArray, FloatArray, FloatArray, FloatArray]:
    """Hexagon cells cut to *area_xy*: pieces, areas (m²) and representative x, y."""
    if shapely.is_empty(area_xy) or shapely.area(area_xy) <= 0:
        empty = np.empty(0)
        return np.empty(0, dtype=object), empty, empty, empty
    cells = hex_cells(tuple(float(v) for v in shapely.bounds(area_xy)), size_m)  # type: ignore[arg-type]
    shapely.prepare(area_xy)
    hit = shapely.intersects(area_xy, cells)
    cells = cells[hit]
    inside = shapely.contains_properly(area_xy, cells)
    pieces = cells.copy()
    edge = ~inside
    if edge.any():
        pieces[edge] = shapely.intersection(cells[edge], area_xy)
    shapely.destroy_prepared(area_xy)
    areas = np.asarray(shapely.area(pieces), dtype=np.float64)
    ok = areas > 0
    pieces, areas = pieces[ok], areas[ok]
    c = shapely.centroid(pieces)
    cx, cy = shapely.get_x(c), shapely.get_y(c)
    off = ~shapely.contains_xy(pieces, cx, cy)
    if off.any():
        ps = shapely.point_on_surface(pieces[off])
        cx[off], cy[off] = shapely.get_x(ps), shapely.get_y(ps)
    return pieces, areas, np.asarray(cx, np.float64), np.asarray(cy, np.float64)


@overload
def hex_grid(
    area: Any,
    size_m: float,
    *,
    total_weight: float | None = ...,
    density_per_km2: float | None = ...,
    crs: str = ...,
    weight_name: str = ...,
    return_cells: Literal[False] = ...,
) -> Demand: ...


@overload
def hex_grid(
    area: Any,
    size_m: float,
    *,
    total_weight: float | None = ...,
    density_per_km2: float | None = ...,
    crs: str = ...,
    weight_name: str = ...,
    return_cells: Literal[True],
) -> tuple[Demand, GeomArray]: ...


def hex_grid(
    area: Any,
    size_m: float,
    *,
    total_weight: float | None = None,
    density_per_km2: float | None = None,
    crs: str = "wgs84",
    weight_name: str = "area_km2",
    return_cells: bool = False,
) -> Demand | tuple[Demand, GeomArray]:
    """A hexagon grid over a study area, as demand points weighted by area.

    Parameters
    ----------
    area : shapely geometry or Districts
        Study area (WGS-84 unless *crs* says otherwise). With :class:`Districts`, cells
        are cut along district boundaries and each point is labelled with its district.
    size_m : float
        Hexagon size: centre-to-corner distance (= edge length), metres.
    total_weight : float, optional
        Spread this total over the area (weights then sum to it exactly).
    density_per_km2 : float, optional
        Weight per km² instead. With neither, the weight of a point is its cell's area
        in km².
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of *area* (ignored for Districts, which are WGS-84).
    weight_name : str
        Name of the weight, for reports.
    return_cells : bool
        Also return the clipped hexagons (WGS-84 shapely polygons, one per point).

    Returns
    -------
    Demand, or (Demand, numpy.ndarray of polygons)
        One point per (clipped) hexagon, at its centroid.
    """
    if total_weight is not None and density_per_km2 is not None:
        raise InvalidInputError(
            "total_weight", "Expected total_weight or density_per_km2, got both"
        )
    if total_weight is not None and not (math.isfinite(total_weight) and total_weight >= 0):
        raise InvalidInputError(
            "total_weight", f"Expected a finite total >= 0, got {total_weight!r}"
        )
    if density_per_km2 is not None and not (
        math.isfinite(density_per_km2) and density_per_km2 >= 0
    ):
        raise InvalidInputError(
            "density_per_km2", f"Expected a finite density >= 0, got {density_per_km2!r}"
        )
    if isinstance(area, Districts):
        districts: Districts | None = area
        geoms = list(area.geometries)
    else:
        districts = None
        geoms = [to_wgs84_geometry(area, parse_crs_name(crs))]
    whole = shapely.union_all(geoms)
    if whole is None or shapely.is_empty(whole) or shapely.get_dimensions(whole) != 2:
        raise InvalidInputError("area", "Expected a non-empty polygon study area, got none")
    proj = LocalProjection.for_geometry(whole)
    all_pieces: list[GeomArray] = []
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    ars: list[FloatArray] = []
    codes: list[IntArray] = []
    for k, g in enumerate(geoms):
        pieces, areas, cx, cy = _pieces(proj.geometry_to_xy(g), size_m)
        all_pieces.append(pieces)
        xs.append(cx)
        ys.append(cy)
        ars.append(areas)
        codes.append(np.full(areas.shape[0], k, dtype=np.int64))
    areas_m2 = np.concatenate(ars)
    if total_weight is not None:
        tot = float(areas_m2.sum())
        w = areas_m2 * (total_weight / tot) if tot > 0 else areas_m2 * 0.0
    else:
        w = areas_m2 / 1e6 * (1.0 if density_per_km2 is None else density_per_km2)
    lon, lat = proj.to_lonlat(np.concatenate(xs), np.concatenate(ys))
    demand = Demand(
        lon,
        lat,
        w,
        np.concatenate(codes) if districts is not None else None,
        districts.names if districts is not None else (),
        districts,
        weight_name,
    )
    demand.meta.update({"hex_size_m": float(size_m), "projection": proj.proj4})
    if return_cells:
        cells = np.asarray(proj.geometry_to_lonlat(np.concatenate(all_pieces)), dtype=object)
        return demand, cells
    return demand


def spread_polygons(
    polygons: Sequence[Any] | GeomArray,
    weights: ArrayLike,
    cell_size_m: float = 250.0,
    *,
    labels: Sequence[str | None] | None = None,
    crs: str = "wgs84",
    weight_name: str = "weight",
) -> Demand:
    """Spread each polygon's weight evenly over its area as demand points.

    Each polygon is cut by a hexagon lattice of *cell_size_m*; each piece becomes a point
    with the polygon's weight times the piece's share of the polygon's area, so the
    points of a polygon add up to its weight. A polygon with less area than one cell
    becomes a single point (on its surface).

    Parameters
    ----------
    polygons : sequence of shapely (multi)polygons
        In *crs*.
    weights : array_like
        One non-negative weight per polygon.
    cell_size_m : float
        Hexagon size (centre to corner), metres.
    labels : sequence of str, optional
        A district label per polygon, carried to its points.
    crs : {"wgs84", "gcj02", "bd09"}
        Coordinate system of the polygons.
    weight_name : str
        Name of the weight, for reports.

    Returns
    -------
    Demand
    """
    w_in = np.atleast_1d(np.asarray(weights, dtype=np.float64))
    polys = list(polygons)
    if w_in.shape[0] != len(polys):
        raise InvalidInputError(
            "weights", f"Expected one weight per polygon ({len(polys)}), got {w_in.shape[0]}"
        )
    check_weights(w_in, weight_name)
    if not (cell_size_m > 0 and math.isfinite(cell_size_m)):
        raise InvalidInputError("cell_size_m", f"Expected a size > 0 metres, got {cell_size_m!r}")
    if not polys:
        raise InvalidInputError("polygons", "Expected at least one polygon, got none")
    src = parse_crs_name(crs)
    geoms = [to_wgs84_geometry(shapely.make_valid(g), src) for g in polys]
    for i, g in enumerate(geoms):
        if g is None or shapely.get_dimensions(g) != 2:
            raise InvalidInputError(
                "polygons", f"Expected a Polygon or MultiPolygon at {i}, got {g!r}"
            )
    proj = LocalProjection.for_geometry(shapely.union_all(geoms))
    cell_area = 1.5 * math.sqrt(3.0) * cell_size_m**2
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    ws: list[FloatArray] = []
    owner: list[IntArray] = []
    for i, g in enumerate(geoms):
        gx = proj.geometry_to_xy(g)
        if shapely.area(gx) < cell_area:
            areas = np.empty(0)
        else:
            _, areas, cx, cy = _pieces(gx, cell_size_m)
        if areas.size == 0 or areas.sum() <= 0:
            rp = shapely.point_on_surface(gx)
            cx, cy, areas = np.array([shapely.get_x(rp)]), np.array([shapely.get_y(rp)]), np.ones(1)
        xs.append(cx)
        ys.append(cy)
        ws.append(w_in[i] * areas / areas.sum())
        owner.append(np.full(areas.shape[0], i, dtype=np.int64))
    lon, lat = proj.to_lonlat(np.concatenate(xs), np.concatenate(ys))
    code: IntArray | None = None
    names: tuple[str, ...] = ()
    if labels is not None:
        if len(labels) != len(polys):
            raise InvalidInputError(
                "labels", f"Expected one label per polygon ({len(polys)}), got {len(labels)}"
            )
        poly_code, names = encode_labels(labels)
        code = poly_code[np.concatenate(owner)]
    demand = Demand(lon, lat, np.concatenate(ws), code, names, None, weight_name)
    demand.meta.update({"cell_size_m": float(cell_size_m), "polygon": np.concatenate(owner)})
    return demand
