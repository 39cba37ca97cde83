"""Shared fixtures: small registries built in memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Feature = dict[str, Any]


def make_feature(fid: str, lon: float, lat: float, **props: Any) -> Feature:
    """A station Feature; ``props`` override the defaults (name from the id, kind station)."""
    properties: dict[str, Any] = {"name": f"Station {fid}", "kind": "station"}
    properties.update(props)
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def make_doc(features: list[Feature], **meta: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", **meta, "features": features}


@pytest.fixture
def feature() -> Callable[..., Feature]:
    return make_feature


@pytest.fixture
def small_doc() -> dict[str, Any]:
    """Ten stations along a line in Zhengzhou (~1 km apart), alternating amenities."""
    feats = []
    for i in range(10):
        amen = ["drinking_water", "toilet"] if i % 2 else ["seating"]
        feats.append(
            make_feature(
                f"zz-{i:02d}",
                113.60 + i * 0.01,
                34.75,
                amenities=amen,
                district="中原区" if i < 5 else "金水区",
            )
        )
    feats[3]["properties"]["status"] = "temporarily_closed"
    feats[7]["properties"]["category"] = "bank_outlet"
    return make_doc(feats, name="test registry")
