"""Tests for yizhan.geo.crs: WGS-84 / GCJ-02 / BD-09 conversions."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from yizhan.geo import crs
from yizhan.geo.crs import (
    CRS_NAMES,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    parse_crs,
    transform,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

Conversion = Callable[..., tuple[NDArray[np.float64], NDArray[np.float64]]]

DATA = Path(__file__).parent / "data" / "crs_reference_pairs.csv"
ROUND_TRIP_TOLERANCE_M = 0.01

ALL_CONVERSIONS: dict[str, Conversion] = {
    "wgs84_to_gcj02": wgs84_to_gcj02,
    "gcj02_to_wgs84": gcj02_to_wgs84,
    "gcj02_to_bd09": gcj02_to_bd09,
    "bd09_to_gcj02": bd09_to_gcj02,
    "wgs84_to_bd09": wgs84_to_bd09,
    "bd09_to_wgs84": bd09_to_wgs84,
}


def haversine_m(
    lon1: NDArray[np.float64] | float,
    lat1: NDArray[np.float64] | float,
    lon2: NDArray[np.float64] | float,
    lat2: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    """Independent great-circle distance, so the tests do not trust crs internals."""
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2)
    )
    h = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    return np.asarray(2 * 6_371_008.8 * np.arcsin(np.sqrt(h)), dtype=np.float64)


def china_grid(
    n_lon: int = 120, n_lat: int = 100
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A 2-D grid over mainland China, Hainan and the South China Sea (12,000 points).

    Kept well inside the ``out_of_china`` box so no point crosses its edge.
    """
    lon, lat = np.meshgrid(np.linspace(73.5, 135.05, n_lon), np.linspace(3.9, 53.55, n_lat))
    return lon, lat


# --------------------------------------------------------------------------- reference pairs


def _load_pairs() -> list[Any]:
    with DATA.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        pytest.param(row, id=f"{i}-{row['src_crs']}-to-{row['dst_crs']}-{row['source'].split()[0]}")
        for i, row in enumerate(rows)
    ]


REFERENCE_PAIRS = _load_pairs()


def test_reference_file_is_populated() -> None:
    assert len(REFERENCE_PAIRS) >= 6
    sources = {p.values[0]["source"].split()[0] for p in REFERENCE_PAIRS}
    assert len(sources) >= 2


@pytest.mark.parametrize("row", REFERENCE_PAIRS)
def test_reference_pairs(row: dict[str, str]) -> None:
    lon, lat = transform(
        float(row["src_lon"]), float(row["src_lat"]), row["src_crs"], row["dst_crs"]
    )
    err = float(haversine_m(lon, lat, float(row["dst_lon"]), float(row["dst_lat"])))
    assert err <= float(row["tolerance_m"]), f"{err:.4f} m off; {row['note']}"


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [
        pytest.param(wgs84_to_gcj02, gcj02_to_wgs84, id="wgs-gcj-wgs"),
        pytest.param(wgs84_to_bd09, bd09_to_wgs84, id="wgs-bd-wgs"),
        pytest.param(gcj02_to_wgs84, wgs84_to_gcj02, id="gcj-wgs-gcj"),
        pytest.param(gcj02_to_bd09, bd09_to_gcj02, id="gcj-bd-gcj"),
        pytest.param(bd09_to_gcj02, gcj02_to_bd09, id="bd-gcj-bd"),
        pytest.param(bd09_to_wgs84, wgs84_to_bd09, id="bd-wgs-bd"),
    ],
)
def test_round_trip_over_china_grid(forward: Conversion, inverse: Conversion) -> None:
    lon, lat = china_grid()
    back_lon, back_lat = inverse(*forward(lon, lat))
    assert back_lon.shape == lon.shape
    err = haversine_m(back_lon, back_lat, lon, lat)
    assert float(err.max()) < ROUND_TRIP_TOLERANCE_M


def test_round_trip_is_far_tighter_than_one_step_inverse() -> None:
    """The iterated inverse beats the textbook ``gcj - delta(gcj)`` by orders of magnitude."""
    lon, lat = china_grid(60, 50)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    one_step_lon = 2 * g_lon - wgs84_to_gcj02(g_lon, g_lat)[0]
    one_step_lat = 2 * g_lat - wgs84_to_gcj02(g_lon, g_lat)[1]
    one_step_err = haversine_m(one_step_lon, one_step_lat, lon, lat).max()
    exact_err = haversine_m(*gcj02_to_wgs84(g_lon, g_lat), lon, lat).max()
    assert one_step_err > 1.0  # metres: why the iteration exists
    assert exact_err < ROUND_TRIP_TOLERANCE_M


def test_round_trip_outside_china_for_bd() -> None:
    """BD-09 is applied everywhere, and its inverse still closes there."""
    lon = np.array([-0.1276, 151.2093, -74.006, 139.6917])
    lat = np.array([51.5072, -33.8688, 40.7128, 35.6895])
    b_lon, b_lat = gcj02_to_bd09(lon, lat)
    assert np.all(haversine_m(b_lon, b_lat, lon, lat) > 100.0)
    back = bd09_to_gcj02(b_lon, b_lat)
    assert float(haversine_m(*back, lon, lat).max()) < ROUND_TRIP_TOLERANCE_M


# --------------------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        pytest.param(113.6254, 34.7466, id="zhengzhou-erqi-square"),
        pytest.param(113.6650, 34.7570, id="zhengzhou-east"),
        pytest.param(116.3975, 39.9087, id="beijing-tiananmen"),
        pytest.param(116.4854, 39.9900, id="beijing-wangjing"),
    ],
)
def test_gcj_offset_in_cities_is_hundreds_of_metres(lon: float, lat: float) -> None:
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    offset = float(haversine_m(g_lon, g_lat, lon, lat))
    assert 300.0 < offset < 700.0


# --------------------------------------------------------------------------- outside China


OUTSIDE = [
    pytest.param(139.6917, 35.6895, id="tokyo"),
    pytest.param(-0.1276, 51.5072, id="london"),
    pytest.param(151.2093, -33.8688, id="sydney"),
    pytest.param(-74.0060, 40.7128, id="new-york"),
    pytest.param(37.6173, 55.7558, id="moscow"),
    pytest.param(106.8456, -6.2088, id="jakarta"),
]


@pytest.mark.parametrize(("lon", "lat"), OUTSIDE)
@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84], ids=["wgs-to-gcj", "gcj-to-wgs"])
def test_outside_china_unchanged(func: Conversion, lon: float, lat: float) -> None:
    assert bool(out_of_china(lon, lat))
    out_lon, out_lat = func(lon, lat)
    assert float(out_lon) == lon
    assert float(out_lat) == lat


def test_seoul_is_inside_the_rectangular_box() -> None:
    """The providers' box is a rectangle: Seoul is inside it and does get shifted.

    Pinned on purpose so a change of the box is a conscious decision.
    """
    lon, lat = 126.9780, 37.5665
    assert not bool(out_of_china(lon, lat))
    assert float(haversine_m(*wgs84_to_gcj02(lon, lat), lon, lat)) > 100.0


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        pytest.param(72.004, 30.0, False, id="west-edge"),
        pytest.param(72.0039, 30.0, True, id="just-west"),
        pytest.param(137.8347, 30.0, False, id="east-edge"),
        pytest.param(137.8348, 30.0, True, id="just-east"),
        pytest.param(110.0, 0.8293, False, id="south-edge"),
        pytest.param(110.0, 0.8292, True, id="just-south"),
        pytest.param(110.0, 55.8271, False, id="north-edge"),
        pytest.param(110.0, 55.8272, True, id="just-north"),
        pytest.param(math.nan, 30.0, True, id="nan"),
    ],
)
def test_out_of_china_box(lon: float, lat: float, expected: bool) -> None:
    result = out_of_china(lon, lat)
    assert result.dtype == np.bool_
    assert bool(result) is expected


def test_out_of_china_vectorized() -> None:
    result = out_of_china([116.4, 139.69, -0.13], [39.9, 35.69, 51.51])
    assert result.tolist() == [False, True, True]


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", list(ALL_CONVERSIONS))
def test_scalar_input_gives_float64_0d(name: str) -> None:
    lon, lat = ALL_CONVERSIONS[name](116.404, 39.915)
    for value in (lon, lat):
        assert isinstance(value, np.ndarray)
        assert value.dtype == np.float64
        assert value.shape == ()
        assert math.isfinite(float(value))


@pytest.mark.parametrize("name", list(ALL_CONVERSIONS))
def test_array_shapes_and_elementwise_agreement(name: str) -> None:
    func = ALL_CONVERSIONS[name]
    lon = np.array([[113.6254, 116.3975, 121.4737], [139.6917, 104.0665, 126.978]])
    lat = np.array([[34.7466, 39.9087, 31.2304], [35.6895, 30.5728, 37.5665]])
    out_lon, out_lat = func(lon, lat)
    assert out_lon.shape == out_lat.shape == (2, 3)
    assert out_lon.dtype == out_lat.dtype == np.float64
    for idx in np.ndindex(lon.shape):
        s_lon, s_lat = func(float(lon[idx]), float(lat[idx]))
        assert float(s_lon) == pytest.approx(out_lon[idx], abs=1e-12)
        assert float(s_lat) == pytest.approx(out_lat[idx], abs=1e-12)


def test_lists_ints_and_broadcasting() -> None:
    lon, lat = wgs84_to_gcj02([113, 114, 115], 34)
    assert lon.shape == lat.shape == (3,)
    assert lon.dtype == np.float64
    lon1, lat1 = wgs84_to_gcj02(114.0, 34.0)
    assert lon[1] == float(lon1)
    assert lat[1] == float(lat1)


def test_empty_input() -> None:
    lon, lat = gcj02_to_wgs84(np.empty(0), np.empty(0))
    assert lon.shape == lat.shape == (0,)


def test_inputs_not_modified() -> None:
    lon = np.array([113.6254, 116.3975])
    lat = np.array([34.7466, 39.9087])
    before = (lon.copy(), lat.copy())
    for func in ALL_CONVERSIONS.values():
        func(lon, lat)
    np.testing.assert_array_equal(lon, before[0])
    np.testing.assert_array_equal(lat, before[1])


# --------------------------------------------------------------------------- parse_crs / transform


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("wgs_84", "wgs84"),
        (" wgs 84 ", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("amap", "gcj02"),
        ("Gaode", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("bd09ll", "bd09"),
        ("Baidu", "bd09"),
    ],
)
def test_parse_crs_aliases(alias: str, expected: str) -> None:
    assert parse_crs(alias) == expected


@pytest.mark.parametrize("junk", ["foo", "", "wgs", "gcj-03", "epsg:3857", "bd09mc", "mercator"])
def test_parse_crs_rejects_junk(junk: str) -> None:
    with pytest.raises(ValueError, match=r"^Expected one of wgs84, gcj02, bd09, got ") as info:
        parse_crs(junk)
    assert repr(junk) in str(info.value)


def test_parse_crs_error_message_exact() -> None:
    with pytest.raises(ValueError, match="Expected") as info:
        parse_crs("foo")
    assert str(info.value) == "Expected one of wgs84, gcj02, bd09, got 'foo'"


def test_parse_crs_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="Expected one of"):
        parse_crs(None)  # type: ignore[arg-type]


def test_crs_names() -> None:
    assert CRS_NAMES == ("wgs84", "gcj02", "bd09")
    assert all(parse_crs(name) == name for name in CRS_NAMES)


@pytest.mark.parametrize("src", CRS_NAMES)
@pytest.mark.parametrize("dst", CRS_NAMES)
def test_transform_dispatch(src: str, dst: str) -> None:
    lon = np.array([113.6254, 116.3975])
    lat = np.array([34.7466, 39.9087])
    out_lon, out_lat = transform(lon, lat, src.upper(), dst)
    if src == dst:
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)
        assert out_lon is not lon
    else:
        exp_lon, exp_lat = ALL_CONVERSIONS[f"{src}_to_{dst}"](lon, lat)
        np.testing.assert_array_equal(out_lon, exp_lon)
        np.testing.assert_array_equal(out_lat, exp_lat)


def test_transform_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="got 'utm'"):
        transform(116.4, 39.9, "utm", "wgs84")
    with pytest.raises(ValueError, match="got 'osgb'"):
        transform(116.4, 39.9, "wgs84", "osgb")


# --------------------------------------------------------------------------- non-finite input


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(ALL_CONVERSIONS))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_gives_nan_without_raising(name: str, bad: float) -> None:
    func = ALL_CONVERSIONS[name]
    lon = np.array([bad, 116.3975, 113.6254])
    lat = np.array([39.9, bad, 34.7466])
    out_lon, out_lat = func(lon, lat)
    assert np.isnan(out_lon[:2]).all()
    assert np.isnan(out_lat[:2]).all()
    good_lon, good_lat = func(113.6254, 34.7466)
    assert out_lon[2] == float(good_lon)
    assert out_lat[2] == float(good_lat)


@pytest.mark.filterwarnings("error")
def test_nan_scalar_and_transform_identity() -> None:
    lon, lat = gcj02_to_wgs84(math.nan, math.nan)
    assert math.isnan(float(lon))
    assert math.isnan(float(lat))
    lon, lat = transform(math.nan, 39.9, "wgs84", "wgs84")
    assert math.isnan(float(lon))
    assert math.isnan(float(lat))


def test_inverse_tolerance_constant_is_below_requirement() -> None:
    assert crs.INVERSE_TOLERANCE_M < ROUND_TRIP_TOLERANCE_M


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(ALL_CONVERSIONS))
def test_extreme_finite_input_does_not_warn(name: str) -> None:
    lon = np.array([0.0, 180.0, -180.0, 1e300, 116.4])
    lat = np.array([90.0, -90.0, 0.0, -1e300, 39.9])
    out_lon, out_lat = ALL_CONVERSIONS[name](lon, lat)
    assert out_lon.shape == out_lat.shape == (5,)
    assert np.isfinite(out_lon[-1])
    assert np.isfinite(out_lat[-1])
    if name in ("wgs84_to_gcj02", "gcj02_to_wgs84"):
        np.testing.assert_array_equal(out_lon[:4], lon[:4])
        np.testing.assert_array_equal(out_lat[:4], lat[:4])
