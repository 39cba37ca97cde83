"""Great-circle distance and bearing on a sphere of mean radius 6,371,008.8 m.

Every distance Yizhan reports (``/nearest``, coverage, siting) comes from here, so all
of them agree. Inputs are degrees, ``lon`` before ``lat``; outputs are metres and degrees.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: IUGG mean Earth radius in metres (R1 = (2a + b) / 3 of WGS-84).
EARTH_RADIUS_M = 6_371_008.8

FloatArray = NDArray[np.float64]


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Great-circle distance in metres between points given in degrees (broadcasting).

    Parameters
    ----------
    lon1, lat1 : array_like
        First point(s), degrees.
    lon2, lat2 : array_like
        Second point(s), degrees.

    Returns
    -------
    numpy.ndarray
        Distances in metres, broadcast shape of the inputs.

    Examples
    --------
    >>> round(float(haversine_m(0, 0, 1, 0)))
    111195
    """
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2)
    )
    h = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    return np.asarray(
        2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64
    )


def bearing_deg(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north in [0, 360).

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Degrees.

    Returns
    -------
    numpy.ndarray
        Bearings in degrees; 0 where the two points coincide.
    """
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2)
    )
    dlam = lam2 - lam1
    y = np.sin(dlam) * np.cos(phi2)
    x = np.cos(phi1) * np.sin(phi2) - np.sin(phi1) * np.cos(phi2) * np.cos(dlam)
    return np.asarray(np.degrees(np.arctan2(y, x)) % 360.0, dtype=np.float64)


def unit_vectors(lon: ArrayLike, lat: ArrayLike) -> FloatArray:
    """Points on the unit sphere, shape ``(n, 3)``, for degrees ``lon``/``lat``.

    Straight-line (chord) distance between unit vectors orders points exactly like
    great-circle distance, which is what makes a KD-tree over them exact.
    """
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    cphi = np.cos(phi)
    return np.stack([cphi * np.cos(lam), cphi * np.sin(lam), np.sin(phi)], axis=-1)


def chord_to_m(chord: ArrayLike) -> FloatArray:
    """Great-circle metres for a chord length on the unit sphere (inverse of :func:`m_to_chord`)."""
    c = np.clip(np.asarray(chord, dtype=np.float64) / 2.0, 0.0, 1.0)
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(c), dtype=np.float64)


def m_to_chord(distance_m: float) -> float:
    """Chord length on the unit sphere for a great-circle distance in metres."""
    if distance_m >= math.pi * EARTH_RADIUS_M:
        return 2.0
    return 2.0 * math.sin(max(distance_m, 0.0) / (2.0 * EARTH_RADIUS_M))
