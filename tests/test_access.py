"""Tests for yizhan.geo.access: two-step floating catchment area (2SFCA)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from shapely.geometry import box

from yizhan.errors import InvalidInputError
from yizhan.geo.access import DEFAULT_CAPACITY, decay_weight, two_step_fca
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.distance import EARTH_RADIUS_M
from yizhan.stations.registry import from_document

DEG_PER_M = 180.0 / (math.pi * EARTH_RADIUS_M)  # along the equator, exact on the sphere


def on_equator(xs_m: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(xs_m) * DEG_PER_M, np.zeros(len(xs_m))


# Stations S1 at 0 m (10 places), S2 at 2,000 m (20 places); catchment 1,200 m.
# P1 at -500 m (100 people) reaches S1; P2 at 1,000 m (50) reaches both; P3 at 2,600 m (30)
# reaches S2; P4 at 5,000 m (7) reaches none.
S_LON, S_LAT = on_equator([0, 2000])
P_LON, P_LAT = on_equator([-500, 1000, 2600, 5000])
P_W = np.array([100.0, 50.0, 30.0, 7.0])
CAP = [10.0, 20.0]


def test_hand_computed_example() -> None:
    res = two_step_fca((S_LON, S_LAT), Demand.from_arrays(P_LON, P_LAT, P_W), 1200.0, capacity=CAP)
    # Step 1: R1 = 10 / (100 + 50) = 1/15, R2 = 20 / (50 + 30) = 1/4.
    assert res.station_demand.tolist() == pytest.approx([150.0, 80.0])
    assert res.station_ratio.tolist() == pytest.approx([1 / 15, 1 / 4])
    # Step 2: A = [R1, R1 + R2, R2, 0].
    assert res.access.tolist() == pytest.approx([1 / 15, 1 / 15 + 1 / 4, 1 / 4, 0.0])
    assert res.no_access_weight == 7.0
    assert res.no_access_pct == pytest.approx(100 * 7 / 187)
    # Capacity is shared out: Σ w·A = 10 + 20.
    assert float((P_W * res.access).sum()) == pytest.approx(30.0)
    assert res.mean_access == pytest.approx(30.0 / 187)
    assert res.capacity_defaulted == 0


def test_hand_computed_gaussian() -> None:
    r = 1200.0

    def f(d: float) -> float:
        return (math.exp(-0.5 * (d / r) ** 2) - math.exp(-0.5)) / (1 - math.exp(-0.5))

    d = Demand.from_arrays(P_LON, P_LAT, P_W)
    res = two_step_fca((S_LON, S_LAT), d, r, capacity=CAP, decay="gaussian")
    r1 = 10 / (100 * f(500) + 50 * f(1000))
    r2 = 20 / (50 * f(1000) + 30 * f(600))
    expected = [f(500) * r1, f(1000) * r1 + f(1000) * r2, f(600) * r2, 0.0]
    assert res.access.tolist() == pytest.approx(expected, rel=1e-9)
    assert float((P_W * res.access).sum()) == pytest.approx(30.0)


def test_decay_weight() -> None:
    assert decay_weight([0.0, 500.0, 1000.0, 1000.1], 1000.0).tolist() == [1, 1, 1, 0]
    g = decay_weight([0.0, 500.0, 1000.0, 2000.0], 1000.0, "gaussian")
    assert g[0] == pytest.approx(1.0) and g[2] == pytest.approx(0.0) and g[3] == 0.0
    assert 0 < g[1] < 1


def test_default_capacity_and_registry_capacity() -> None:
    feats = [
        {
            "type": "Feature",
            "id": sid,
            "geometry": {"type": "Point", "coordinates": [float(lon), 0.0]},
            "properties": {
                "name": sid,
                "kind": "station",
                **({"capacity": cap} if cap is not None else {}),
            },
        }
        for sid, lon, cap in (("s1", S_LON[0], 8), ("s2", S_LON[1], None))
    ]
    reg = from_document({"type": "FeatureCollection", "features": feats})
    d = Demand.from_arrays(P_LON, P_LAT, P_W)
    res = two_step_fca(reg, d, 1200.0)
    assert res.capacity_defaulted == 1
    assert res.station_capacity.tolist() == [8.0, DEFAULT_CAPACITY]
    assert res.station_ids == ["s1", "s2"]
    res2 = two_step_fca(reg, d, 1200.0, default_capacity=40.0)
    assert res2.station_ratio.tolist() == pytest.approx([8 / 150, 40 / 80])
    # Explicit capacities override the registry's.
    res3 = two_step_fca(reg, d, 1200.0, capacity=[10.0, 20.0])
    assert res3.access.tolist() == pytest.approx([1 / 15, 1 / 15 + 1 / 4, 1 / 4, 0.0])
    # A mask drops stations.
    res4 = two_step_fca(reg, d, 1200.0, station_mask=np.array([True, False]))
    assert res4.access.tolist() == pytest.approx([8 / 150, 8 / 150, 0.0, 0.0])


def test_per_district_rows() -> None:
    west = box(-1.0, -1.0, 0.009, 1.0)  # holds S1, P1 and P2 (1,000 m ≈ 0.009°)
    east = box(0.009, -1.0, 1.0, 1.0)
    districts = Districts.from_geometries(["west", "east"], [west, east])
    d = Demand.from_arrays(P_LON, P_LAT, P_W).with_districts(districts)
    res = two_step_fca((S_LON, S_LAT), d, 1200.0, capacity=CAP)
    west_row, east_row = res.per_district
    assert west_row["district"] == "west" and west_row["demand"] == 150.0
    assert west_row["mean_access"] == pytest.approx((100 / 15 + 50 * (1 / 15 + 1 / 4)) / 150)
    assert west_row["access_per_1000"] == pytest.approx(1000 * west_row["mean_access"])
    assert west_row["stations"] == 1 and west_row["capacity"] == 10.0
    assert east_row["no_access_pct"] == pytest.approx(100 * 7 / 37)
    assert east_row["stations"] == 1 and east_row["capacity"] == 20.0
    out = res.to_dict(include_points=True, include_stations=True)
    json.dumps(out, allow_nan=False)
    assert out["stations"][0] == {
        "index": 0,
        "capacity": 10.0,
        "demand": 150.0,
        "ratio": pytest.approx(1 / 15),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("decay", ["none", "gaussian"])
def test_capacity_is_conserved(seed: int, decay: str) -> None:
    rng = np.random.default_rng(seed)
    dl, da = 113.65 + rng.uniform(-0.05, 0.05, 500), 34.75 + rng.uniform(-0.05, 0.05, 500)
    sl, sa = 113.65 + rng.uniform(-0.05, 0.05, 30), 34.75 + rng.uniform(-0.05, 0.05, 30)
    cap = rng.integers(0, 50, 30).astype(float)
    d = Demand.from_arrays(dl, da, rng.integers(0, 100, 500))
    res = two_step_fca((sl, sa), d, 800.0, capacity=cap, decay=decay)  # type: ignore[arg-type]
    served = res.station_demand > 0
    assert float((d.weight * res.access).sum()) == pytest.approx(float(cap[served].sum()))
    assert np.isnan(res.station_ratio[~served]).all()


def test_bad_input() -> None:
    d = Demand.from_arrays(P_LON, P_LAT, P_W)
    with pytest.raises(InvalidInputError) as exc:
        two_step_fca((S_LON, S_LAT), d, 0.0)
    assert exc.value.field == "radius_m"
    with pytest.raises(InvalidInputError) as exc:
        two_step_fca((S_LON, S_LAT), d, decay="linear")  # type: ignore[arg-type]
    assert exc.value.field == "decay"
    with pytest.raises(InvalidInputError) as exc:
        two_step_fca((S_LON, S_LAT), d, capacity=[1.0])
    assert exc.value.field == "capacity"
    with pytest.raises(InvalidInputError) as exc:
        two_step_fca((S_LON, S_LAT), d, capacity=[1.0, -2.0])
    assert exc.value.field == "capacity"
