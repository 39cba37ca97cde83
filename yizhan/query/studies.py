"""A study: the demand and districts a coverage analysis runs over, built from files.

The CLI (``yizhan coverage|gaps|site|map``) and the API (``/coverage``, ``/maps/coverage``,
``/analysis/site``) both describe their inputs with a :class:`StudySpec` and get a
:class:`Study` from :func:`load_study`, so the two always read inputs the same way.

Demand comes from, in order of preference:

1. a demand file: points (CSV, or a point layer: GeoJSON, Shapefile, GeoPackage,
   FlatGeobuf) with a weight column, or polygons with a weight spread evenly over their
   area;
2. otherwise a hexagon grid over the districts (weight = area in km²), which shows where
   land is far from any station when no worker counts are at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.hexgrid import hex_grid
from yizhan.query.demand_files import is_polygon_file, load_districts, load_points, load_polygons
from yizhan.settings import DEFAULT_DISTRICTS, DEFAULT_REGISTRY


def default_districts(registry_path: Path | None) -> Path | None:
    """The bundled Zhengzhou districts for the bundled registry; ``None`` for any other."""
    if registry_path is not None and Path(registry_path).resolve() == DEFAULT_REGISTRY.resolve():
        return DEFAULT_DISTRICTS
    return None


@dataclass(frozen=True)
class StudySpec:
    """Where a study's inputs come from (all paths optional, see :func:`load_study`)."""

    demand: Path | None = None
    weight: str | None = None
    districts: Path | None = None
    district_field: str = "name"
    crs: str = "wgs84"
    hex_size_m: float = 500.0
    polygon_cell_m: float = 250.0


@dataclass(frozen=True)
class Study:
    """Demand points (labelled with districts when districts are given) and the districts."""

    demand: Demand
    districts: Districts | None
    description: str

    @property
    def area(self) -> Any:
        """The study area (union of the districts), or ``None``."""
        return self.districts.union() if self.districts is not None else None


def load_study(spec: StudySpec) -> Study:
    """Build the demand (and districts) described by *spec*.

    Raises
    ------
    InvalidInputError
        Naming the option: no demand and no districts, a missing file, a missing column.
    """
    districts = None
    if spec.districts is not None:
        if not Path(spec.districts).exists():
            raise InvalidInputError("districts", f"no such file: {spec.districts}")
        districts = load_districts(spec.districts, name_field=spec.district_field, crs=spec.crs)
    if spec.demand is not None:
        path = Path(spec.demand)
        if not path.exists():
            raise InvalidInputError("demand", f"no such file: {path}")
        if is_polygon_file(path):
            if not spec.weight:
                raise InvalidInputError("weight", "polygon demand needs a weight column (--weight)")
            demand = load_polygons(
                path, spec.weight, spec.polygon_cell_m, districts=districts, crs=spec.crs
            )
            how = f"polygons from {path.name} (weight {spec.weight!r} spread by area)"
        else:
            demand = load_points(path, spec.weight, districts=districts, crs=spec.crs)
            how = f"points from {path.name}" + (
                f" (weight {spec.weight!r})" if spec.weight else " (weight 1 each)"
            )
        return Study(demand, districts, how)
    if districts is None:
        raise InvalidInputError(
            "demand", "Expected a demand file or districts to lay a hexagon grid over, got neither"
        )
    demand = hex_grid(districts, spec.hex_size_m)
    return Study(
        demand,
        districts,
        f"hexagon grid of {spec.hex_size_m:g} m over the districts (weight = area in km²)",
    )
