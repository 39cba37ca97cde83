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

Every study says what its demand counts, in words for people (:class:`DemandMeaning`:
"people aged 65+", "km² of land"), so that maps and reports never show a bare number.

Two studies are bundled (:data:`BUNDLED_STUDIES`, ``yizhan map --study NAME``):

* ``zhengzhou``: the bundled Zhengzhou union stations over a 500 m hexagon grid of the
  Zhengzhou districts. Land area is the demand: no population data is bundled for
  Zhengzhou, so it shows where *land* is far from a station, not where people are;
* ``seoul``: 4,087 Seoul heat shelters (무더위쉼터) and the residents aged 65+ of Seoul's
  427 neighbourhoods (행정동), real demand, within 500 m (see ``yizhan/data/SOURCES.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from yizhan.errors import InvalidInputError
from yizhan.geo.demand import Demand, Districts
from yizhan.geo.hexgrid import hex_grid
from yizhan.query.demand_files import is_polygon_file, load_districts, load_points, load_polygons
from yizhan.settings import BUNDLED_DATA, DEFAULT_DISTRICTS, DEFAULT_REGISTRY

#: The Seoul study's files (yizhan/data/SOURCES.md).
SEOUL_REGISTRY: Final = BUNDLED_DATA / "seoul-heat-shelters.geojson"
SEOUL_DEMAND: Final = BUNDLED_DATA / "seoul-65plus.csv"
SEOUL_DISTRICTS: Final = BUNDLED_DATA / "seoul-districts.geojson"


@dataclass(frozen=True)
class DemandMeaning:
    """What a study's demand counts, in Chinese and English.

    Attributes
    ----------
    what_zh, what_en : str
        The demand, for a headline ("residents aged 65+ …").
    unit_zh, unit_en : str
        The unit of one weight, written after a number ("people aged 65+", "km² of land").
    digits : int
        Decimals worth showing (1 for km², 0 for people).
    """

    what_zh: str
    what_en: str
    unit_zh: str
    unit_en: str
    digits: int = 0

    def what(self, lang: str) -> str:
        """The demand in *lang* (``zh`` or ``en``)."""
        return self.what_zh if lang == "zh" else self.what_en

    def unit(self, lang: str) -> str:
        """The unit in *lang* (``zh`` or ``en``)."""
        return self.unit_zh if lang == "zh" else self.unit_en


#: Land area from a hexagon grid: the demand when no population or worker counts exist.
LAND_AREA: Final = DemandMeaning(
    what_zh="土地面积（没有人口数据：显示离驿站远的土地，而不是人在哪里）",
    what_en="land area (no population data: it shows where land is far from a station, "
    "not where people are)",
    unit_zh="平方公里土地",
    unit_en="km² of land",
    digits=1,
)

SEOUL_65PLUS: Final = DemandMeaning(
    what_zh="65 岁及以上居民（韩国行政安全部居民登记人口，2026-06-30），按 427 个行政洞的中心点计",
    what_en="residents aged 65+ (resident registration, Korea MOIS, 30 June 2026), "
    "at the centre point of each of Seoul's 427 neighbourhoods (행정동)",
    unit_zh="名 65 岁及以上居民",
    unit_en="people aged 65+",
)


def file_meaning(weight: str | None, source: str) -> DemandMeaning:
    """The meaning of demand read from a file: its weight column, or one per point."""
    if not weight:
        return DemandMeaning(
            what_zh=f"{source} 中的需求点（每点计 1）",
            what_en=f"demand points of {source} (1 each)",
            unit_zh="个需求点",
            unit_en="demand points",
        )
    return DemandMeaning(
        what_zh=f"{source} 的 {weight} 列",
        what_en=f"column {weight!r} of {source}",
        unit_zh=weight,
        unit_en=weight,
        digits=1,
    )


@dataclass(frozen=True)
class StudySpec:
    """Where a study's inputs come from (all paths optional, see :func:`load_study`).

    ``meaning`` overrides what the demand is said to count (bundled studies set it).
    """

    demand: Path | None = None
    weight: str | None = None
    districts: Path | None = None
    district_field: str = "name"
    crs: str = "wgs84"
    hex_size_m: float = 500.0
    polygon_cell_m: float = 250.0
    meaning: DemandMeaning | None = None


@dataclass(frozen=True)
class Study:
    """Demand points (labelled with districts when districts are given) and the districts."""

    demand: Demand
    districts: Districts | None
    description: str
    meaning: DemandMeaning = LAND_AREA

    @property
    def area(self) -> Any:
        """The study area (union of the districts), or ``None``."""
        return self.districts.union() if self.districts is not None else None


@dataclass(frozen=True)
class BundledStudy:
    """A study shipped with Yizhan: its registry, demand, default radius and time zone."""

    name: str
    registry: Path
    spec: StudySpec
    radius_m: float
    timezone: str
    why_radius: str


BUNDLED_STUDIES: Final[dict[str, BundledStudy]] = {
    "zhengzhou": BundledStudy(
        name="zhengzhou",
        registry=DEFAULT_REGISTRY,
        spec=StudySpec(districts=DEFAULT_DISTRICTS, meaning=LAND_AREA),
        radius_m=1000.0,
        timezone="Asia/Shanghai",
        why_radius="a station within 1 km, the national target for outdoor workers",
    ),
    "seoul": BundledStudy(
        name="seoul",
        registry=SEOUL_REGISTRY,
        spec=StudySpec(
            demand=SEOUL_DEMAND,
            weight="pop_65plus",
            districts=SEOUL_DISTRICTS,
            meaning=SEOUL_65PLUS,
        ),
        radius_m=500.0,
        timezone="Asia/Seoul",
        why_radius="500 m in a straight line, about 8-10 minutes' walk at an older "
        "person's pace (0.8-1 m/s)",
    ),
}


def bundled_study(name: str) -> BundledStudy:
    """The bundled study called *name*.

    Raises
    ------
    InvalidInputError
        ``study: Expected one of zhengzhou, seoul, got 'x'``.
    """
    found = BUNDLED_STUDIES.get(name)
    if found is None:
        raise InvalidInputError(
            "study", f"Expected one of {', '.join(BUNDLED_STUDIES)}, got {name!r}"
        )
    return found


def bundled_study_for(registry_path: Path | None) -> BundledStudy | None:
    """The bundled study whose registry is *registry_path*; ``None`` for any other file."""
    if registry_path is None:
        return None
    path = Path(registry_path).resolve()
    for study in BUNDLED_STUDIES.values():
        if study.registry.resolve() == path:
            return study
    return None


def default_spec(registry_path: Path | None, hex_size_m: float = 500.0) -> StudySpec | None:
    """The study of a bundled registry (a hexagon grid of *hex_size_m* where the study is
    a grid); ``None`` for a registry of one's own."""
    bundled = bundled_study_for(registry_path)
    if bundled is None:
        return None
    return replace(bundled.spec, hex_size_m=hex_size_m)


def default_districts(registry_path: Path | None) -> Path | None:
    """The bundled districts of a bundled registry; ``None`` for any other."""
    bundled = bundled_study_for(registry_path)
    return bundled.spec.districts if bundled is not None else None


#: How to give a registry of one's own some demand (shown on maps without demand).
HOW_TO_ADD_DEMAND: Final = (
    "yizhan map REGISTRY -o map.html --demand workers.csv --weight workers "
    "[--districts districts.geojson], or --districts districts.geojson alone for a "
    "hexagon grid (land area); the server: YIZHAN_DEMAND, YIZHAN_DEMAND_WEIGHT, "
    "YIZHAN_DISTRICTS (docs/planning.md)"
)


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
        meaning = spec.meaning or file_meaning(spec.weight, path.name)
        if spec.meaning is not None:
            how = f"{meaning.what_en}: {how}"
        return Study(demand, districts, how, meaning)
    if districts is None:
        raise InvalidInputError(
            "demand", "Expected a demand file or districts to lay a hexagon grid over, got neither"
        )
    demand = hex_grid(districts, spec.hex_size_m)
    return Study(
        demand,
        districts,
        f"hexagon grid of {spec.hex_size_m:g} m over the districts (weight = area in km²: "
        "land, not people)",
        spec.meaning or LAND_AREA,
    )
