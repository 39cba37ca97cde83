"""Chinese coordinate systems: WGS-84, GCJ-02 and BD-09.

Three longitude/latitude systems are in everyday use in China:

``wgs84``
    WGS-84 (EPSG:4326), the datum of GPS receivers, OpenStreetMap and most
    maps outside China.  **The Yizhan station registry stores WGS-84 only**;
    everything else is converted at the edges (on import, and when drawing
    on a Chinese basemap).
``gcj02``
    GCJ-02, the obfuscated "Mars coordinates" (火星坐标) that maps published
    in mainland China must use: AMap/Gaode, Tencent, the Chinese Google
    Maps tiles.  It is WGS-84 plus a smooth, non-linear offset of a few
    hundred metres that is only applied inside a rough bounding box around
    China (see :func:`out_of_china`).
``bd09``
    BD-09, Baidu's coordinates: a further rotation/scaling of GCJ-02.

The forward formulas (WGS-84 → GCJ-02 → BD-09) are the ones reproduced by
the widely used open implementations, e.g. googollee/eviltransform and
wandergis/coordtransform, with the Krasovsky 1940 ellipsoid constants
(``a = 6378245.0``, ``ee = 0.00669342162296594323``) and the usual BD-09
constants (``x_pi = pi * 3000 / 180``, the ``0.00002``/``0.000003`` terms and
the ``0.0065``/``0.006`` offsets).

Inverses
--------
Neither forward map has a closed-form inverse.  The common one-step
GCJ-02 → WGS-84 approximation (``wgs = gcj - delta(gcj)``) is off by up to
about 5 m inside China, and the common closed-form BD-09 → GCJ-02 formula by
up to a few decimetres.  Here both inverses start from those approximations
and are then refined by a bounded, vectorised fixed-point iteration on the
forward function (``p <- p - (forward(p) - target)``, at most
``_MAX_ITERATIONS`` rounds; 2-3 are needed in practice) until *every* point
converts forward again to within :data:`INVERSE_TOLERANCE_M` of its input,
measured in metres with an equirectangular approximation.  Results therefore
differ from the one-step outputs published by those libraries by up to a
few metres: they are the exact inverses of the forward maps.

Outside China
-------------
As the providers do, WGS-84 ⇄ GCJ-02 leaves points outside the
:func:`out_of_china` box unchanged.  The box is a rectangle, so parts of
neighbouring countries (e.g. Seoul, Ulaanbaatar, Hanoi) fall *inside* it and
are shifted.  GCJ-02 ⇄ BD-09 is applied everywhere, without the box test, as
wandergis/coordtransform and Hutool's ``CoordinateUtil`` do
(googollee/eviltransform is the exception: it skips BD-09 outside the box).

Non-finite input
----------------
Nothing here raises on bad numbers: callers validate first.  A point with a
NaN or infinite longitude *or* latitude comes back as NaN in both outputs.

Why hand-written
----------------
No well-kept PyPI library offers vectorised (numpy) GCJ-02/BD-09
conversions with an exact inverse, so the few formulas are written out here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CRS_NAMES",
    "INVERSE_TOLERANCE_M",
    "BoolArray",
    "CRSName",
    "FloatArray",
    "LonLat",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "parse_crs",
    "transform",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CRSName = Literal["wgs84", "gcj02", "bd09"]
"""Canonical name of a supported coordinate system."""

CRS_NAMES: Final[tuple[str, ...]] = ("wgs84", "gcj02", "bd09")
"""Canonical names accepted by :func:`transform`, in pipeline order."""

# Accepted spellings, after lower-casing and dropping ``-``, ``_`` and spaces.
_ALIASES: Final[dict[str, CRSName]] = {
    "wgs84": "wgs84",
    "epsg:4326": "wgs84",
    "gcj02": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
}

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formulas.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
# BD-09 constant.
_X_PI: Final = np.pi * 3000.0 / 180.0

# Bounding box of the providers (lon 72.004-137.8347, lat 0.8293-55.8271).
_LON_MIN: Final = 72.004
_LON_MAX: Final = 137.8347
_LAT_MIN: Final = 0.8293
_LAT_MAX: Final = 55.8271

INVERSE_TOLERANCE_M: Final = 1e-4
"""Round-trip error (metres) the iterative inverses stop below."""
_MAX_ITERATIONS: Final = 20
# Mean Earth radius, only used to measure residuals in metres.
_EARTH_RADIUS_M: Final = 6371008.8

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
LonLat = tuple[FloatArray, FloatArray]
"""A ``(lon, lat)`` pair of float64 arrays of the same shape."""


def parse_crs(name: str) -> CRSName:
    """Normalise a coordinate-system name.

    Matching ignores case, surrounding whitespace and ``-``/``_``/space
    separators.  Accepted spellings:

    * ``wgs84``: ``"wgs84"``, ``"WGS-84"``, ``"epsg:4326"``
    * ``gcj02``: ``"gcj02"``, ``"GCJ-02"``, ``"amap"``, ``"gaode"``
    * ``bd09``: ``"bd09"``, ``"BD-09"``, ``"bd09ll"``, ``"baidu"``

    Parameters
    ----------
    name : str
        Name to parse.

    Returns
    -------
    CRSName
        One of ``"wgs84"``, ``"gcj02"``, ``"bd09"``.

    Raises
    ------
    ValueError
        If `name` is not a known spelling; the message lists the canonical
        names.

    Examples
    --------
    >>> parse_crs("WGS-84")
    'wgs84'
    >>> parse_crs("baidu")
    'bd09'
    >>> parse_crs("foo")
    Traceback (most recent call last):
    ...
    ValueError: Expected one of wgs84, gcj02, bd09, got 'foo'
    """
    if isinstance(name, str):
        key = name.strip().lower()
        for sep in ("-", "_", " "):
            key = key.replace(sep, "")
        crs = _ALIASES.get(key)
        if crs is not None:
            return crs
    raise ValueError(f"Expected one of {', '.join(CRS_NAMES)}, got {name!r}")


def _as_pair(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert to broadcast float64 arrays (copies, safe to modify)."""
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)


def _finish(lon: FloatArray, lat: FloatArray, bad: BoolArray) -> LonLat:
    """Blank out points whose input was not finite; return float64 arrays."""
    out_lon = np.asarray(lon, dtype=np.float64).copy()
    out_lat = np.asarray(lat, dtype=np.float64).copy()
    out_lon[bad] = np.nan
    out_lat[bad] = np.nan
    return out_lon, out_lat


def _not_finite(lon: FloatArray, lat: FloatArray) -> BoolArray:
    return np.asarray(~(np.isfinite(lon) & np.isfinite(lat)), dtype=np.bool_)


def _distance_m(
    lon1: FloatArray, lat1: FloatArray, lon2: FloatArray, lat2: FloatArray
) -> FloatArray:
    """Equirectangular distance in metres (fine for sub-kilometre gaps)."""
    mean_lat = np.radians((lat1 + lat2) / 2.0)
    dx = np.radians(lon1 - lon2) * np.cos(mean_lat)
    dy = np.radians(lat1 - lat2)
    return np.asarray(_EARTH_RADIUS_M * np.hypot(dx, dy), dtype=np.float64)


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> BoolArray:
    """Tell which points lie outside the GCJ-02 bounding box.

    The box (lon 72.004-137.8347, lat 0.8293-55.8271, edges inside) is the
    one used by eviltransform, coordtransform and the providers' SDK ports.
    It is a rectangle, so it also covers parts of neighbouring countries.
    NaN coordinates count as outside.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees; broadcast together.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` where the point is outside the box.

    Examples
    --------
    >>> out_of_china(116.40, 39.90).item()
    False
    >>> out_of_china([139.69, -0.13], [35.69, 51.51]).tolist()
    [True, True]
    """
    x, y = _as_pair(lon, lat)
    inside = (x >= _LON_MIN) & (x <= _LON_MAX) & (y >= _LAT_MIN) & (y <= _LAT_MAX)
    return np.asarray(~inside, dtype=np.bool_)


def _gcj_delta(lon: FloatArray, lat: FloatArray) -> LonLat:
    """GCJ-02 minus WGS-84 offset (degrees) at a WGS-84 point, no box test."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    d_lat = d_lat + common
    d_lat = d_lat + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * (2.0 / 3.0)
    d_lat = d_lat + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * (
        2.0 / 3.0
    )
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    d_lon = d_lon + common
    d_lon = d_lon + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * (2.0 / 3.0)
    d_lon = d_lon + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * (
        2.0 / 3.0
    )

    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return np.asarray(d_lon, dtype=np.float64), np.asarray(d_lat, dtype=np.float64)


def _gcj_to_bd_raw(lon: FloatArray, lat: FloatArray) -> LonLat:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return (
        np.asarray(z * np.cos(theta) + 0.0065, dtype=np.float64),
        np.asarray(z * np.sin(theta) + 0.006, dtype=np.float64),
    )


def _bd_to_gcj_approx(lon: FloatArray, lat: FloatArray) -> LonLat:
    """Apply the usual closed-form BD-09 -> GCJ-02 (a few decimetres off)."""
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return (
        np.asarray(z * np.cos(theta), dtype=np.float64),
        np.asarray(z * np.sin(theta), dtype=np.float64),
    )


def _invert(
    forward: Callable[[FloatArray, FloatArray], LonLat],
    lon: FloatArray,
    lat: FloatArray,
    guess_lon: FloatArray,
    guess_lat: FloatArray,
) -> LonLat:
    """Solve ``forward(p) == (lon, lat)`` by fixed-point iteration.

    ``p <- p - (forward(p) - target)`` converges fast because both forward
    maps are the identity plus a slowly varying offset (each round shrinks
    the error roughly a hundred-fold).  A point stops being updated once it
    is within :data:`INVERSE_TOLERANCE_M`, so its result does not depend on
    what else is in the batch; non-finite points drop out at once.  At most
    :data:`_MAX_ITERATIONS` rounds are run.
    """
    shape = np.shape(lon)
    t_lon = np.ravel(lon)
    t_lat = np.ravel(lat)
    p_lon = np.array(guess_lon, dtype=np.float64).ravel()
    p_lat = np.array(guess_lat, dtype=np.float64).ravel()
    active = np.arange(p_lon.size)
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        f_lon, f_lat = forward(p_lon[active], p_lat[active])
        err = _distance_m(f_lon, f_lat, t_lon[active], t_lat[active])
        todo = err > INVERSE_TOLERANCE_M  # NaN compares False: dropped
        active = active[todo]
        p_lon[active] -= f_lon[todo] - t_lon[active]
        p_lat[active] -= f_lat[todo] - t_lat[active]
    return p_lon.reshape(shape), p_lat.reshape(shape)


def _wgs_to_gcj_raw(lon: FloatArray, lat: FloatArray) -> LonLat:
    d_lon, d_lat = _gcj_delta(lon, lat)
    return lon + d_lon, lat + d_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert WGS-84 to GCJ-02.

    Points outside :func:`out_of_china` are returned unchanged.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; any shapes that broadcast.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        GCJ-02 coordinates with the broadcast shape (0-d for scalar input).

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410244, 39.916404)
    """
    x, y = _as_pair(lon, lat)
    inside = ~out_of_china(x, y)  # also excludes NaN
    out_lon, out_lat = x.copy(), y.copy()
    with np.errstate(all="ignore"):
        out_lon[inside], out_lat[inside] = _wgs_to_gcj_raw(x[inside], y[inside])
    return _finish(out_lon, out_lat, _not_finite(x, y))


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert GCJ-02 to WGS-84 (iterated, exact inverse).

    Starts from the usual one-step approximation and iterates on
    :func:`wgs84_to_gcj02` until converting the result forward again lands
    within :data:`INVERSE_TOLERANCE_M` metres of the input.  Points outside
    :func:`out_of_china` (tested on the GCJ-02 input, as the providers do)
    are returned unchanged.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; any shapes that broadcast.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        WGS-84 coordinates with the broadcast shape (0-d for scalar input).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.404, 39.915)
    """
    x, y = _as_pair(lon, lat)
    inside = ~out_of_china(x, y)  # also excludes NaN
    out_lon, out_lat = x.copy(), y.copy()
    g_lon, g_lat = x[inside], y[inside]
    with np.errstate(all="ignore"):
        d_lon, d_lat = _gcj_delta(g_lon, g_lat)
        out_lon[inside], out_lat[inside] = _invert(
            _wgs_to_gcj_raw, g_lon, g_lat, g_lon - d_lon, g_lat - d_lat
        )
    return _finish(out_lon, out_lat, _not_finite(x, y))


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert GCJ-02 to BD-09.

    Applied everywhere (no :func:`out_of_china` test), as in
    wandergis/coordtransform and Hutool.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; any shapes that broadcast.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        BD-09 coordinates with the broadcast shape (0-d for scalar input).

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410369, 39.921337)
    """
    x, y = _as_pair(lon, lat)
    bad = _not_finite(x, y)
    with np.errstate(all="ignore"):
        b_lon, b_lat = _gcj_to_bd_raw(x, y)
    return _finish(b_lon, b_lat, bad)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert BD-09 to GCJ-02 (iterated, exact inverse).

    Starts from the usual closed-form formula and iterates on
    :func:`gcj02_to_bd09` until converting the result forward again lands
    within :data:`INVERSE_TOLERANCE_M` metres of the input.  Applied
    everywhere, like :func:`gcj02_to_bd09`.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; any shapes that broadcast.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        GCJ-02 coordinates with the broadcast shape (0-d for scalar input).

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(116.41036949371029, 39.92133699351021)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.404, 39.915)
    """
    x, y = _as_pair(lon, lat)
    bad = _not_finite(x, y)
    with np.errstate(all="ignore"):
        g_lon, g_lat = _bd_to_gcj_approx(x, y)
        g_lon, g_lat = _invert(_gcj_to_bd_raw, x, y, g_lon, g_lat)
    return _finish(g_lon, g_lat, bad)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert WGS-84 to BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 longitude and latitude in degrees; any shapes that broadcast.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        BD-09 coordinates with the broadcast shape (0-d for scalar input).

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.416627, 39.9227)
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert BD-09 to WGS-84 (via GCJ-02, both steps exact inverses).

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitude and latitude in degrees; any shapes that broadcast.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        WGS-84 coordinates with the broadcast shape (0-d for scalar input).

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(116.41662724378733, 39.922699552216216)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.404, 39.915)
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _identity(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    x, y = _as_pair(lon, lat)
    return _finish(x, y, _not_finite(x, y))


_DISPATCH: Final[dict[tuple[CRSName, CRSName], Callable[[ArrayLike, ArrayLike], LonLat]]] = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


def transform(lon: ArrayLike, lat: ArrayLike, src: str, dst: str) -> LonLat:
    """Convert coordinates between any two supported systems.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees in `src`; any shapes that
        broadcast.
    src, dst : str
        Source and target systems; anything :func:`parse_crs` accepts.

    Returns
    -------
    lon, lat : numpy.ndarray of float64
        Coordinates in `dst` with the broadcast shape.  When `src` and
        `dst` name the same system the values are copied unchanged (apart
        from the usual NaN for non-finite points).

    Raises
    ------
    ValueError
        If `src` or `dst` is not a known name.

    Examples
    --------
    >>> lon, lat = transform([116.404], [39.915], "WGS-84", "gcj-02")
    >>> lon.round(6).tolist(), lat.round(6).tolist()
    ([116.410244], [39.916404])
    >>> transform(116.404, 39.915, "amap", "gcj02")[0].item()
    116.404
    """
    s = parse_crs(src)
    d = parse_crs(dst)
    if s == d:
        return _identity(lon, lat)
    return _DISPATCH[(s, d)](lon, lat)


def point_to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """One query point converted from *crs* to WGS-84, as plain floats.

    Parameters
    ----------
    lon, lat : float
        The point in *crs*, degrees.
    crs : str
        ``wgs84``, ``gcj02`` or ``bd09`` (aliases accepted, see :func:`parse_crs`).

    Returns
    -------
    tuple of float
        ``(lon, lat)`` in WGS-84.
    """
    src = parse_crs(crs)
    if src == "wgs84":
        return float(lon), float(lat)
    x, y = transform(lon, lat, src, "wgs84")
    return float(x), float(y)
