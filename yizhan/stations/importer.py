"""Import stations from CSV, XLSX, GeoJSON or JSON records into a registry document.

The importer reads a table (CSV in UTF-8 or GB18030, an XLSX sheet, GeoJSON Point
features, or a plain JSON list of objects), finds which column holds what (``--map FIELD=COLUMN`` or auto-detection of
common names in English, Chinese and Korean), converts coordinates to WGS-84, maps
amenity words and Chinese opening-hours phrasings to the registry vocabularies, and
returns every accepted station as a GeoJSON Feature together with a report of every
rejected row and every note (unknown amenity words, hours it could not convert, ...).

Nothing is accepted silently wrong: a row whose coordinates are missing, not numbers,
out of range, swapped or far away from all the others, whose name is missing, or whose
id repeats an earlier one is rejected with the row number the user sees in the file
(header = row 1 in CSV/XLSX; the 0-based feature index in GeoJSON; the 1-based record
index in a JSON list of records).

See ``docs/import.md`` for the mapping file format and examples.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import math
import re
import tomllib
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import numpy as np
import orjson
from pydantic import TypeAdapter, ValidationError

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import CRS_NAMES, parse_crs, transform
from yizhan.geo.distance import haversine_m
from yizhan.stations.hours import hours_error
from yizhan.stations.hours_sources import (
    MOIS_COLUMNS,
    DayColumns,
    HoursResult,
    hours_from_day_columns,
    hours_from_period_table,
    hours_from_weekday_weekend,
)
from yizhan.stations.models import KNOWN_PROPERTIES
from yizhan.stations.validate import normalize_name, swapped_positions, validate_document
from yizhan.stations.vocab import Amenity, Category, CoordOrigin, Kind, Status

__all__ = [
    "AMENITY_WORDS",
    "FIELDS",
    "HOURS_FORMATS",
    "NOTE_KINDS",
    "REASONS",
    "GuessedWhen",
    "HoursSpec",
    "ImportResult",
    "ImportSpec",
    "Note",
    "Rejected",
    "Rule",
    "amenity_for_word",
    "convert_hours",
    "import_file",
    "load_spec",
    "run_import",
]

# ---------------------------------------------------------------------------------------
# Vocabularies of the importer
# ---------------------------------------------------------------------------------------

#: Fields a column can be mapped to: the registry properties plus ``id``, ``lon`` and
#: ``lat``. ``external_ids.KEY`` (a string per row) and ``amenities.AMENITY`` (a yes/no
#: flag column) are accepted as well.
FIELDS: Final[tuple[str, ...]] = ("id", "lon", "lat", *KNOWN_PROPERTIES)

#: Properties that ``guessed`` may name.
GUESSABLE: Final[tuple[str, ...]] = tuple(
    p for p in KNOWN_PROPERTIES if p not in ("name", "kind", "guessed")
)

#: Why a row is rejected (code -> explanation).
REASONS: Final[dict[str, str]] = {
    "missing_coordinate": "lon or lat is empty",
    "non_numeric_coordinate": "lon or lat is not a number (e.g. '-1.#IND', text)",
    "not_finite": "lon or lat is NaN or infinite",
    "null_island": "lon and lat are both 0 (a common placeholder for 'unknown')",
    "out_of_range": "lon outside -180..180 or lat outside -90..90",
    "looks_swapped": "the position looks like [lat, lon] instead of [lon, lat]",
    "far_outlier": "more than 1,000 km and five times the typical distance from the median position",
    "not_a_point": "the GeoJSON geometry is not a Point (or a MultiPoint of one position)",
    "invalid_feature": "the GeoJSON feature (or JSON record) is not an object",
    "field_count": "the CSV row has more values than the header has columns",
    "missing_name": "the name is empty",
    "missing_id": "the mapped id column is empty",
    "duplicate_id": "the id was already used by an earlier row",
    "invalid_value": "a value is not allowed for its property (e.g. an unknown category)",
}

#: Kinds of notes: things that did not reject the row but that the user must know.
NOTE_KINDS: Final[dict[str, str]] = {
    "unknown_amenity": "a word in the amenities column maps to no amenity; it was left out",
    "unconverted_hours": "the hours could not be converted to OSM syntax; kept in opening_hours_text",
    "hours_interpreted": "how hours columns were read ([hours]): CALL or blank as unknown, a midnight crossing, ...",
    "masked_phone": "a phone number masked with '*' was dropped",
    "unknown_flag": "an amenity flag column holds neither yes nor no",
    "likely_duplicate": "same normalised name within 10 m of another accepted row",
    "source": "about the source as a whole (encoding, crs, columns)",
}

_OSM_DAYS: Final = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")

# Source words -> amenity. Keys are normalised with _word_key (NFKC, case-folded,
# separators as "_"). Every amenity's own name is added below.
# fmt: off
_BUILTIN_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "drinking_water": (
        "drink", "drinks", "drinking", "water", "hot_water", "drinking_fountain", "fountain",
        "饮水", "热水", "饮用水", "开水", "直饮水", "饮水机", "茶水", "免费饮水", "喝水", "冷热水",
        "식수", "음수대", "정수기", "agua", "eau",
    ),
    "toilet": (
        "toilet", "toilets", "wc", "restroom", "restrooms", "bathroom", "lavatory",
        "厕所", "卫生间", "洗手间", "公厕", "公共厕所", "화장실",
    ),
    "seating": (
        "seat", "seats", "chair", "chairs", "bench", "benches", "rest", "rest_area",
        "座椅", "休息", "休息区", "休息室", "桌椅", "休息座椅", "座位", "椅子", "의자", "휴게",
    ),
    "air_conditioning": (
        "ac", "a/c", "aircon", "air_conditioner", "air_conditioned", "cooling",
        "空调", "冷气", "에어컨", "냉방",
    ),
    "heating": ("heating", "heater", "暖气", "取暖", "供暖", "난방"),
    "microwave": ("microwave", "microwave_oven", "微波炉", "热饭", "加热", "전자레인지"),
    "hot_meals": ("meals", "meal", "hot_meal", "food", "餐食", "热餐", "爱心餐", "用餐", "就餐"),
    "phone_charging": (
        "charging", "charger", "phone_charger", "usb_charging", "充电", "手机充电", "充电宝",
        "充电器", "충전",
    ),
    "ebike_charging": ("ebike_charger", "电动车充电", "电瓶车充电", "电动自行车充电"),
    "wifi": ("wi_fi", "wlan", "wireless", "无线网络", "无线网", "无线上网", "와이파이"),
    "first_aid": (
        "firstaid", "first_aid_kit", "medkit", "medical_kit", "药箱", "急救", "急救箱",
        "医药箱", "应急药箱", "急救包", "常用药品", "药品", "구급함", "구급약",
    ),
    "heatstroke_medicine": (
        "heatstroke", "防暑", "防暑药品", "防暑药", "防暑降温", "防暑降温药品", "降温药品",
        "藿香正气水", "清凉油", "人丹", "仁丹",
    ),
    "aed": ("defibrillator", "除颤仪", "自动体外除颤器", "제세동기"),
    "nursing_room": ("nursing", "breastfeeding", "母婴室", "哺乳室", "수유실"),
    "child_care": ("childcare", "托管", "儿童托管", "爱心托管"),
    "shower": ("showers", "淋浴", "洗澡", "沐浴", "샤워"),
    "lockers": ("locker", "储物柜", "存包柜", "寄存", "储物"),
    "rain_gear": ("umbrella", "umbrellas", "raincoat", "雨具", "雨伞", "爱心雨伞", "雨衣"),
    "repair_tools": (
        "repair", "tools", "toolkit", "tool_kit", "pump", "工具箱", "维修工具", "打气筒",
        "打气", "修车工具", "维修",
    ),
    "wheelchair_accessible": ("wheelchair", "accessible", "无障碍", "无障碍通道", "轮椅"),
    "truck_parking": ("货车停车", "货车停车位"),
    "ebike_parking": ("电动车停放", "电动车停车", "非机动车停放"),
    "reading": ("books", "library", "书籍", "阅读", "图书", "书报", "报刊", "书架", "读书"),
}

# fmt: on


def _word_key(word: str) -> str:
    s = unicodedata.normalize("NFKC", word).casefold().strip()
    return re.sub(r"[\s\-_]+", "_", s)


#: The built-in amenity word table (normalised word -> amenity).
AMENITY_WORDS: Final[dict[str, str]] = {
    **{_word_key(w): amenity for amenity, words in _BUILTIN_WORDS.items() for w in words},
    **{_word_key(a.value): a.value for a in Amenity},
}

#: Strong separators of an amenities cell (``; , 、 | :`` and their full-width forms);
#: a chunk that is no known word is then split on whitespace (so "first aid" and
#: "drinking water" work as phrases).
_AMENITY_SPLIT: Final = re.compile(r"[;,、|:，；：]+")


def amenity_for_word(word: str, overrides: Mapping[str, str | None] | None = None) -> str | None:
    """The amenity a source word stands for.

    Parameters
    ----------
    word : str
        One word as it appears in the source, e.g. ``"drink"`` or ``"饮水"``.
    overrides : mapping, optional
        Extra or replacement words (``--amenity-word``). A value of ``None`` marks the
        word as deliberately ignored, which this function reports as ``""``.

    Returns
    -------
    str or None
        The amenity name, ``""`` for a word the user told to ignore, or ``None`` when the
        word is unknown.
    """
    key = _word_key(word)
    if overrides:
        for k, v in overrides.items():
            if _word_key(k) == key:
                return "" if v is None else v
    return AMENITY_WORDS.get(key)


# Column auto-detection. Header names are compared after _header_key (NFKC, case-folded,
# without bracketed parts, spaces, "_", "-", ".", "/", ":").
# fmt: off
_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "lon": (
        "lon", "lng", "long", "longitude", "x", "经度", "經度", "경도", "longitud", "longitude_x",
        "coord_x", "point_x", "x坐标", "经度坐标",
    ),
    "lat": (
        "lat", "latitude", "y", "纬度", "緯度", "위도", "latitud", "latitude_y", "coord_y",
        "point_y", "y坐标", "纬度坐标",
    ),
    "name": (
        "name", "名称", "名稱", "站点名称", "驿站名称", "站名", "网点名称", "场所名称",
        "设施名称", "单位名称", "시설명", "쉼터명", "대피소명", "명칭", "title", "nom", "nombre",
        "facility_name", "site_name", "station_name", "place_name", "location_name",
        "쉼터명칭", "시설명칭", "설치장소명", "장소명",
    ),
    "address": (
        "address", "addr", "地址", "详细地址", "具体地址", "站点地址", "地点", "位置", "주소",
        "도로명주소", "도로명전체주소", "소재지", "소재지도로명주소", "지번주소", "adresse",
        "direccion", "street_address", "full_address",
    ),
    "district": (
        "district", "区县", "所属区县", "所属区", "行政区", "行政区划", "区域", "辖区", "시군구",
        "county",
    ),
    "phone": (
        "phone", "tel", "telephone", "电话", "联系电话", "联系方式", "电话号码", "전화번호",
        "연락처", "contact_phone", "phone_number",
    ),
    "opening_hours": (
        "opening_hours", "hours", "open_hours", "开放时间", "营业时间", "服务时间", "运营时间",
        "운영시간",
    ),
    "amenities": (
        "amenities", "facilities", "services", "设施", "服务设施", "配套设施", "服务内容",
        "服务项目", "편의시설",
    ),
    "operator": ("operator", "管理单位", "运营单位", "责任单位", "主管单位", "관리기관"),
    "capacity": ("capacity", "容纳人数", "수용인원", "수용가능인원"),
    "id": ("id",),
}

# Words that may accompany a lon/lat synonym in a header ("lng_gcj02", "위도(EPSG4326)").
_COORD_QUALIFIERS: Final = frozenset(
    {
        "wgs84", "wgs", "84", "gcj02", "gcj", "02", "bd09", "bd09ll", "09", "epsg4326", "epsg",
        "4326", "deg", "degree", "degrees", "dd", "decimal", "coord", "coordinate", "gps",
        "amap", "gaode", "baidu", "坐标",
    }
)

_CRS_HINTS: Final = (
    ("gcj02", ("gcj02", "gcj", "amap", "gaode", "高德", "火星")),
    ("bd09", ("bd09", "baidu", "百度")),
    ("wgs84", ("wgs84", "epsg4326", "4326", "gps")),
)

# fmt: on

_NULL_TOKENS: Final = frozenset(
    {"", "null", "none", "nan", "n/a", "#n/a", "-", "--", "—", "/", "无", "暂无"}
)
_TRUE_FLAGS: Final = frozenset(
    {"1", "true", "yes", "y", "t", "是", "有", "✓", "√", "o", "예", "si", "sí", "oui"}
)
_FALSE_FLAGS: Final = frozenset(
    {"0", "false", "no", "n", "f", "否", "无", "没有", "✗", "×", "x", "아니오", "non"}
)

_ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "kind": tuple(k.value for k in Kind),
    "category": tuple(c.value for c in Category),
    "status": tuple(s.value for s in Status),
    "coord_origin": tuple(c.value for c in CoordOrigin),
}
_TEXT_FIELDS: Final = frozenset(
    {"name", "name_en", "operator", "network", "address", "district", "source"}
)
_DATE_FIELDS: Final = frozenset({"last_verified_at", "created_at", "updated_at"})
_DATE_ADAPTER: Final = TypeAdapter(date | datetime)

#: Coordinates converted from GCJ-02/BD-09 are rounded to this many decimals (~1 cm).
COORD_DECIMALS: Final = 7
#: A row is a far outlier when it is farther than this from the median position ...
OUTLIER_MIN_M: Final = 1_000_000.0
#: ... and more than this many times the median distance of all rows to that position.
OUTLIER_FACTOR: Final = 5.0

# ---------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """One rejected row.

    Attributes
    ----------
    row : int
        Row number as a spreadsheet shows it (header = row 1) for CSV/XLSX; the 0-based
        feature index for GeoJSON; the 1-based record index for a JSON list of records.
    field : str or None
        The field at fault (``"lon"``, ``"lat"``, ``"lon,lat"``, ``"name"``, ...).
    reason : str
        A code from :data:`REASONS`.
    value : str or None
        The offending value as it appears in the source.
    message : str
        A sentence for humans.
    line : int or None
        For CSV, the line where the record starts when it differs from ``row`` (quoted
        values with line breaks).
    """

    row: int
    field: str | None
    reason: str
    value: str | None
    message: str
    line: int | None = None

    def format(self, unit: str = "row") -> str:
        """``row 20: lon,lat: non_numeric_coordinate: lon '-1.#IND' and lat ... are not numbers``"""
        where = f"{unit} {self.row}" + (f" (line {self.line})" if self.line else "")
        return ": ".join(p for p in (where, self.field, self.reason, self.message) if p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class Note:
    """Something the user must know that did not reject a row (``row`` None: whole file)."""

    row: int | None
    field: str | None
    kind: str
    value: str | None
    message: str

    def format(self, unit: str = "row") -> str:
        """``note: row 46: opening_hours: unconverted_hours: ...``"""
        where = f"{unit} {self.row}" if self.row is not None else None
        return "note: " + ": ".join(p for p in (where, self.field, self.kind, self.message) if p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "field": self.field,
            "kind": self.kind,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class ImportResult:
    """What :func:`run_import` produced.

    Attributes
    ----------
    features : list of dict
        Accepted stations as GeoJSON Features (WGS-84), in source order.
    rejected : list of Rejected
        One entry per rejected row, in row order.
    notes : list of Note
        Unknown amenity words, unconverted hours, dropped masked phones, likely
        duplicates and facts about the source (encoding, detected crs).
    columns_used : dict
        Field -> source column (``"geometry"`` for GeoJSON positions).
    auto_detected : list of str
        Fields whose column was found by its name rather than mapped.
    columns : list of str
        Every column of the source.
    crs : str
        The coordinate system the source was read in.
    provenance_columns : list of str
        Columns read by ``guessed_when`` and ``rules`` (not imported as properties).
    hours_columns : list of str
        Columns read by ``[hours]`` to build ``opening_hours``.
    hours_format : str or None
        The ``[hours]`` format, ``None`` without ``[hours]``.
    """

    source: str
    format: str
    features: list[dict[str, Any]]
    rejected: list[Rejected]
    notes: list[Note]
    columns_used: dict[str, str]
    auto_detected: list[str]
    columns: list[str]
    crs: str
    encoding: str | None = None
    provenance_columns: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_blank: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    hours_columns: list[str] = field(default_factory=list)
    hours_format: str | None = None

    @property
    def row_unit(self) -> str:
        """``"feature"`` for GeoJSON sources, ``"row"`` otherwise."""
        return "feature" if self.format == "geojson" else "row"

    def document(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The registry: a FeatureCollection with the foreign members of ``meta``.

        Parameters
        ----------
        meta : mapping, optional
            Top-level members (``name``, ``attribution``, ``license``...). Defaults to the
            ``meta`` of the import spec.
        """
        members = dict(self.meta if meta is None else meta)
        return {"type": "FeatureCollection", **members, "features": self.features}

    def rejected_counts(self) -> dict[str, int]:
        """Rejected rows per reason, most frequent first."""
        return dict(Counter(r.reason for r in self.rejected).most_common())

    def note_counts(self) -> dict[str, int]:
        """Notes per kind, most frequent first."""
        return dict(Counter(n.kind for n in self.notes).most_common())

    def unknown_words(self) -> dict[str, int]:
        """Unknown amenity words and on how many rows each appeared, most frequent first."""
        return dict(
            Counter(n.value or "" for n in self.notes if n.kind == "unknown_amenity").most_common()
        )

    def guessed_counts(self) -> dict[str, int]:
        """How many accepted features list each property in ``guessed``."""
        c: Counter[str] = Counter()
        for f in self.features:
            c.update(f["properties"].get("guessed", []))
        return dict(sorted(c.items()))

    def summary(self) -> str:
        """One line: rows read, accepted, rejected (per reason) and notes (per kind)."""

        def counts(d: Mapping[str, int]) -> str:
            return " (" + ", ".join(f"{k} {v}" for k, v in d.items()) + ")" if d else ""

        unit = self.row_unit + "s"
        return (
            f"{self.n_rows} {unit} read, {len(self.features)} accepted, "
            f"{len(self.rejected)} rejected{counts(self.rejected_counts())}; "
            f"{len(self.notes)} notes{counts(self.note_counts())}"
        )

    def report(self) -> dict[str, Any]:
        """The full report as a JSON-ready dict (what ``--report FILE.json`` writes)."""
        return {
            "source": self.source,
            "format": self.format,
            "encoding": self.encoding,
            "crs": self.crs,
            "row_unit": self.row_unit,
            "rows": self.n_rows,
            "blank_rows": self.n_blank,
            "accepted": len(self.features),
            "columns": self.columns,
            "columns_used": self.columns_used,
            "auto_detected": self.auto_detected,
            "provenance_columns": self.provenance_columns,
            "hours_format": self.hours_format,
            "hours_columns": self.hours_columns,
            "counts": {"rejected": self.rejected_counts(), "notes": self.note_counts()},
            "rejected": [r.as_dict() for r in self.rejected],
            "notes": [n.as_dict() for n in self.notes],
        }

    def report_rows(self) -> list[dict[str, Any]]:
        """The report as flat rows (what ``--report FILE.csv`` writes)."""
        rows: list[dict[str, Any]] = []
        for r in self.rejected:
            rows.append({"type": "rejected", **r.as_dict()})
        for n in self.notes:
            d = n.as_dict()
            rows.append(
                {
                    "type": "note",
                    "row": d["row"],
                    "line": None,
                    "field": d["field"],
                    "reason": d["kind"],
                    "value": d["value"],
                    "message": d["message"],
                }
            )
        return rows


# ---------------------------------------------------------------------------------------
# The import specification (mapping file / command-line options)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuessedWhen:
    """Mark ``field`` guessed on the rows whose ``column`` holds one of ``values``."""

    field: str
    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """Infer values from a column: when ``column`` contains ``contains`` (or equals
    ``equals``), set each field of ``assign``. Values set by a rule are marked guessed;
    a non-empty mapped column for the same field wins over the rule."""

    column: str
    assign: Mapping[str, Any]
    contains: str | None = None
    equals: str | None = None

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.equals is not None:
            return value == self.equals
        return self.contains is not None and self.contains in value


#: Shapes of hours spread over several columns (``[hours] format`` / ``--hours-format``).
HOURS_FORMATS: Final = ("day_columns", "weekday_weekend", "period_table")

#: Column of the ``period_table`` format unless ``table`` names another (the Barcelona
#: climate-shelter records' ``[[period, days, hours], ...]`` field).
PERIOD_TABLE_COLUMN: Final = "opening_hours_raw"

#: Day names put into ``{day}`` of the ``day_columns`` patterns unless ``days`` is given.
DEFAULT_DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Columns of the ``weekday_weekend`` format: role -> default columns, the first one the
#: source has is used (the MOIS heat-shelter column names, then their Korean labels).
WEEKDAY_WEEKEND_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "weekday_begin": (MOIS_COLUMNS["weekday_begin"], "평일운영시작시간"),
    "weekday_end": (MOIS_COLUMNS["weekday_end"], "평일운영종료시간"),
    "weekend_begin": (MOIS_COLUMNS["weekend_begin"], "주말휴일운영시작시간"),
    "weekend_end": (MOIS_COLUMNS["weekend_end"], "주말휴일운영종료시간"),
    "weekend_open": (MOIS_COLUMNS["weekend_open"], "점검사항주말휴일개방여부"),
    "night_open": (MOIS_COLUMNS["night_open"], "점검사항야간개방여부"),
}
#: Roles that may be absent from the source (the converter takes them as optional).
_OPTIONAL_ROLES: Final = frozenset({"weekend_open", "night_open"})


@dataclass
class HoursSpec:
    """How ``opening_hours`` is built from several columns (``[hours]``, ``--hours-*``).

    Attributes
    ----------
    format : {"day_columns", "weekday_weekend", "period_table"}
        ``day_columns``: an open and a close column per weekday (``mon_open``,
        ``mon_close``, ...); ``weekday_weekend``: weekday and weekend/holiday begin and
        end times written ``HHMM`` (Korea's MOIS heat-shelter schema); ``period_table``:
        one column holding a list of ``[period, days, hours]`` rows in Catalan or Spanish
        (Barcelona's climate shelters, read by
        :func:`~yizhan.stations.hours_sources.hours_from_period_table`).
    open, close : str
        ``day_columns``: column name patterns in which ``{day}`` is replaced by each
        of ``days`` (``"{day}Open"`` reads ``monOpen``).
    days : tuple of str
        ``day_columns``: the seven names put into ``{day}``, Monday first.
    blank : {"unknown", "closed"}
        ``day_columns``: what a day whose two cells are blank means.
    columns : dict
        ``weekday_weekend``: role (``weekday_begin``, ``weekday_end``,
        ``weekend_begin``, ``weekend_end``, ``weekend_open``, ``night_open``) -> column;
        a role not given uses the first of :data:`WEEKDAY_WEEKEND_COLUMNS` the source has.
        ``period_table``: ``{"table": COLUMN}`` (default :data:`PERIOD_TABLE_COLUMN`).
    """

    format: str
    open: str = "{day}_open"
    close: str = "{day}_close"
    days: tuple[str, ...] = DEFAULT_DAY_NAMES
    blank: str = "unknown"
    columns: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Check the options that do not depend on the source.

        Raises
        ------
        InvalidInputError
            Naming the option (``hours.format``, ``hours.days``, ...) and what is wrong.
        """
        if self.format not in HOURS_FORMATS:
            raise InvalidInputError(
                "hours.format",
                f"Expected one of {', '.join(HOURS_FORMATS)}, got {self.format!r}",
            )
        if self.blank not in ("unknown", "closed"):
            raise InvalidInputError(
                "hours.blank", f"Expected unknown or closed, got {self.blank!r}"
            )
        if self.format == "day_columns":
            if self.columns:
                raise InvalidInputError(
                    "hours.columns",
                    f"{', '.join(self.columns)}: only for format weekday_weekend; "
                    "day_columns takes open, close, days and blank",
                )
            for key, pattern in (("open", self.open), ("close", self.close)):
                if "{day}" not in pattern:
                    raise InvalidInputError(
                        f"hours.{key}", f"Expected a pattern with {{day}}, got {pattern!r}"
                    )
                try:
                    pattern.format(day="mon")
                except (IndexError, KeyError, ValueError):
                    raise InvalidInputError(
                        f"hours.{key}", f"Expected a pattern with only {{day}}, got {pattern!r}"
                    ) from None
            names = [d.strip() for d in self.days]
            if len(names) != 7 or not all(names) or len(set(names)) != 7:
                raise InvalidInputError(
                    "hours.days",
                    f"Expected 7 different day names, Monday first, got {list(self.days)!r}",
                )
            self.days = tuple(names)
        else:
            other = "weekday_weekend" if self.format == "weekday_weekend" else "period_table"
            roles = tuple(WEEKDAY_WEEKEND_COLUMNS) if other == "weekday_weekend" else ("table",)
            changed = [
                k
                for k, default in (
                    ("open", "{day}_open"),
                    ("close", "{day}_close"),
                    ("days", DEFAULT_DAY_NAMES),
                    ("blank", "unknown"),
                )
                if getattr(self, k) != default
            ]
            if changed:
                raise InvalidInputError(
                    f"hours.{changed[0]}",
                    f"only for format day_columns; {other} takes the columns " + ", ".join(roles),
                )
            for role, column in self.columns.items():
                if role not in roles:
                    raise InvalidInputError(
                        "hours.columns",
                        f"Expected one of {', '.join(roles)}, got {role!r}",
                    )
                if not column.strip():
                    raise InvalidInputError(f"hours.{role}", "empty column name")

    def resolve(self, columns: Sequence[str]) -> _HoursReader:
        """The reader of one source's rows.

        Raises
        ------
        InvalidInputError
            A column the options name (or, for weekday_weekend, a required role's
            default) is not in the source; the message lists the source's columns.
        """
        have = f"columns: {', '.join(map(repr, columns))}"
        if self.format == "day_columns":
            spec = DayColumns.pattern(
                self.open, self.close, self.days, "closed" if self.blank == "closed" else "unknown"
            )
            missing = [c for pair in spec.columns.values() for c in pair if c not in columns]
            if missing:
                raise InvalidInputError(
                    "hours.open/close",
                    f"no column {', '.join(map(repr, missing))} in the source "
                    f"(patterns {self.open!r}/{self.close!r}, days {','.join(self.days)}); {have}",
                )
            return _HoursReader(self, spec, {})
        if self.format == "period_table":
            col = self.columns.get("table", PERIOD_TABLE_COLUMN)
            if col not in columns:
                raise InvalidInputError(
                    "hours.table",
                    f"no column {col!r} in the source; name it with --hours-column "
                    f"table=COLUMN; {have}",
                )
            return _HoursReader(self, None, {"table": col})
        chosen: dict[str, str] = {}
        for role, defaults in WEEKDAY_WEEKEND_COLUMNS.items():
            if role in self.columns:
                col = self.columns[role]
                if col not in columns:
                    raise InvalidInputError(
                        f"hours.{role}", f"no column {col!r} in the source; {have}"
                    )
                chosen[role] = col
                continue
            found = next((c for c in defaults if c in columns), None)
            if found is not None:
                chosen[role] = found
            elif role not in _OPTIONAL_ROLES:
                raise InvalidInputError(
                    f"hours.{role}",
                    f"no column given and none of {', '.join(map(repr, defaults))} in the "
                    f"source; name it with --hours-column {role}=COLUMN; {have}",
                )
        return _HoursReader(self, None, chosen)


_WW_LABELS: Final = {
    "weekday": ("weekday_begin", "weekday_end"),
    "weekend/holiday": ("weekend_begin", "weekend_end"),
}


@dataclass
class _HoursReader:
    """:class:`HoursSpec` bound to the columns of one source."""

    spec: HoursSpec
    days: DayColumns | None
    roles: dict[str, str]

    @property
    def columns(self) -> list[str]:
        if self.days is not None:
            return [c for pair in self.days.columns.values() for c in pair]
        return list(self.roles.values())

    def convert(self, values: Mapping[str, Any]) -> tuple[HoursResult, str | None]:
        """The converted hours of a row and its cells as one readable text (``None``: all blank)."""

        def cell(col: str | None) -> str:
            return "" if col is None else (_scalar_text(values.get(col)) or "")

        if self.spec.format == "period_table":
            return _period_table(self.roles["table"], values.get(self.roles["table"]))
        if self.days is not None:
            parts = []
            for name, (o_col, c_col) in zip(
                self.spec.days, self.days.columns.values(), strict=True
            ):
                o, c = cell(o_col), cell(c_col)
                if not o and not c:
                    parts.append(f"{name} blank")
                elif o.casefold() == c.casefold():
                    parts.append(f"{name} {o}")
                else:
                    parts.append(f"{name} {o or 'blank'}-{c or 'blank'}")
            texts = {cell(c) for c in self.columns}
            text = "; ".join(parts) if texts - {""} else None
            row = {c: cell(c) for c in self.columns}
            return hours_from_day_columns(row, self.days), text
        got = {role: cell(self.roles.get(role)) for role in WEEKDAY_WEEKEND_COLUMNS}
        parts = []
        for label, (b, e) in _WW_LABELS.items():
            if got[b] or got[e]:
                parts.append(f"{label} {got[b] or 'blank'}-{got[e] or 'blank'}")
            else:
                parts.append(f"{label} blank")
        if got["weekend_open"]:
            parts.append(f"weekend/holiday open {got['weekend_open']}")
        if got["night_open"]:
            parts.append(f"night open {got['night_open']}")
        result = hours_from_weekday_weekend(
            got["weekday_begin"],
            got["weekday_end"],
            got["weekend_begin"],
            got["weekend_end"],
            got["weekend_open"],
            got["night_open"],
        )
        return result, ("; ".join(parts) if any(got.values()) else None)


def _period_table(column: str, value: Any) -> tuple[HoursResult, str | None]:
    """``period_table``: a cell holding ``[[period, days, hours], ...]`` (a list, or its
    JSON text), converted and shown as ``period | days | hours; ...``."""
    if isinstance(value, str) and value.strip().startswith("["):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(value)
    if value is None or value == [] or (isinstance(value, str) and _scalar_text(value) is None):
        return HoursResult(None, "unknown", [], [f"{column} is empty: hours unknown"]), None
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        text = _scalar_text(value if isinstance(value, str) else str(value), collapse=False)
        problem = f"{column}: Expected a list of [period, days, hours] rows, got {text!r}"
        return HoursResult(None, "unknown", [problem], []), text
    rows = [["" if c is None else _WS.sub(" ", str(c)).strip() for c in r] for r in value]
    text = "; ".join(" | ".join(r) for r in rows)
    if not text.replace("|", "").replace(";", "").strip():
        return HoursResult(None, "unknown", [], [f"{column} is empty: hours unknown"]), None
    return hours_from_period_table(rows), text


@dataclass
class ImportSpec:
    """Everything that says how to read one source (see ``docs/import.md``).

    Attributes
    ----------
    mapping : dict
        Field -> column. A column of ``None`` (``--map phone=``) turns auto-detection of
        that field off.
    crs : str or None
        ``wgs84``, ``gcj02`` or ``bd09``; ``None``: from the coordinate column names
        (``lng_gcj02``, ``위도(EPSG4326)``), else ``wgs84``.
    defaults : dict
        Field -> value for rows whose column is empty or unmapped (``--set``).
    id_prefix : str
        Put before every id, mapped or generated.
    amenity_words : dict
        Extra words -> amenity; ``None`` ignores a word on purpose.
    guessed : list of str
        Properties marked guessed on every row.
    guessed_when : list of GuessedWhen
        Per-row guessed marks driven by a provenance column.
    rules : list of Rule
        Values inferred from a column's text (marked guessed).
    recode : dict
        Field -> {source value -> registry value}, applied before checking values.
    meta : dict
        Top-level members of the output document.
    sheet, encoding, delimiter, header_row
        How to read the source (XLSX sheet name or 1-based number; CSV encoding and
        delimiter; the row holding the column names).
    reject_outliers : bool
        Reject rows more than 1,000 km from the median position (``far_outlier``).
    hours : HoursSpec or None
        Build ``opening_hours`` from several columns (``[hours]``) instead of one.
    """

    mapping: dict[str, str | None] = field(default_factory=dict)
    crs: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    id_prefix: str = ""
    amenity_words: dict[str, str | None] = field(default_factory=dict)
    guessed: list[str] = field(default_factory=list)
    guessed_when: list[GuessedWhen] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    recode: dict[str, dict[str, str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    header_row: int = 1
    reject_outliers: bool = True
    hours: HoursSpec | None = None

    def check(self) -> None:
        """Check names and values that do not depend on the source.

        Raises
        ------
        InvalidInputError
            Naming the option (``map``, ``set``, ``guessed``, ``crs``...) and what is wrong.
        """
        for f in self.mapping:
            _check_field_name(f, "map")
        for f, v in self.defaults.items():
            _check_field_name(f, "set")
            if f in ("id", "lon", "lat") or f.startswith("amenities."):
                raise InvalidInputError("set", f"{f} cannot have a default value")
            if f == "guessed":
                raise InvalidInputError("set", "use guessed (--guessed FIELD), not set")
            if f in _ENUMS:
                _check_enum_default(f, v, self.recode.get(f, {}))
        for f in self.guessed:
            _check_guessable(f, "guessed")
        for g in self.guessed_when:
            _check_guessable(g.field, "guessed_when")
        for r in self.rules:
            for f, v in r.assign.items():
                _check_field_name(f, "rule")
                if f in ("id", "lon", "lat", "name", "kind", "guessed"):
                    raise InvalidInputError("rule", f"a rule cannot set {f}")
                if f in _ENUMS:
                    _check_enum_default(f, v, self.recode.get(f, {}))
            if (r.contains is None) == (r.equals is None):
                raise InvalidInputError("rule", "give exactly one of contains or equals")
        for f in self.recode:
            _check_field_name(f, "recode")
        for word, amenity in self.amenity_words.items():
            if not word.strip():
                raise InvalidInputError("amenity_word", "empty word")
            if amenity is not None and amenity not in {a.value for a in Amenity}:
                raise InvalidInputError(
                    "amenity_word",
                    f"Expected one of {', '.join(a.value for a in Amenity)} (or - to ignore "
                    f"the word), got {amenity!r} for {word!r}",
                )
        if self.crs is not None:
            try:
                self.crs = parse_crs(self.crs)
            except ValueError as exc:
                raise InvalidInputError("crs", str(exc)) from None
        for k in self.meta:
            if k in ("type", "features", "crs", "bbox"):
                raise InvalidInputError("meta", f"{k!r} cannot be set as a top-level member")
        if self.header_row < 1:
            raise InvalidInputError(
                "header_row", f"Expected a row number >= 1, got {self.header_row}"
            )
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise InvalidInputError("delimiter", f"Expected one character, got {self.delimiter!r}")
        if self.hours is not None:
            self.hours.check()
            self._check_hours_conflicts()

    def _check_hours_conflicts(self) -> None:
        """``[hours]`` builds opening_hours and opening_hours_text: nothing else may."""
        for fld in ("opening_hours", "opening_hours_text"):
            if self.mapping.get(fld):
                raise InvalidInputError(
                    "hours",
                    f"[hours] / --hours-format builds {fld}, but {fld} is also mapped to the "
                    f"column {self.mapping[fld]!r} (map {fld}); use one or the other",
                )
            if fld in self.defaults:
                raise InvalidInputError(
                    "hours", f"[hours] / --hours-format builds {fld}; it cannot also be set"
                )
            if any(fld in r.assign for r in self.rules):
                raise InvalidInputError(
                    "hours", f"[hours] / --hours-format builds {fld}; a rule cannot set it"
                )


def _check_field_name(name: str, option: str) -> None:
    if name in FIELDS:
        return
    head, dot, tail = name.partition(".")
    if dot and head == "external_ids" and tail:
        return
    if dot and head == "amenities" and tail in {a.value for a in Amenity}:
        return
    raise InvalidInputError(
        option,
        f"Expected one of {', '.join(FIELDS)}, external_ids.KEY or amenities.AMENITY, got {name!r}",
    )


def _check_guessable(name: str, option: str) -> None:
    if name not in GUESSABLE:
        raise InvalidInputError(option, f"Expected one of {', '.join(GUESSABLE)}, got {name!r}")


def _check_enum_default(name: str, value: Any, recode: Mapping[str, str]) -> None:
    text = _scalar_text(value)
    if text is None:
        return
    text = recode.get(text, text)
    if text not in _ENUMS[name]:
        raise InvalidInputError(name, f"Expected one of {', '.join(_ENUMS[name])}, got {text!r}")


_SPEC_KEYS: Final = frozenset(
    {
        "map",
        "crs",
        "set",
        "id_prefix",
        "amenity_words",
        "guessed",
        "guessed_when",
        "rules",
        "recode",
        "meta",
        "sheet",
        "encoding",
        "delimiter",
        "header_row",
        "reject_outliers",
        "hours",
    }
)

_HOURS_KEYS: Final = frozenset(
    {"format", "open", "close", "days", "blank", "table", *WEEKDAY_WEEKEND_COLUMNS}
)


def load_spec(path: str | Path) -> ImportSpec:
    """Read an import mapping file (TOML).

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file. Top-level keys: ``crs``, ``id_prefix``, ``guessed``,
        ``sheet``, ``encoding``, ``delimiter``, ``header_row``, ``reject_outliers``;
        tables ``[map]``, ``[set]``, ``[amenity_words]``, ``[recode.FIELD]``,
        ``[meta]``, ``[hours]`` (``format``; ``open``, ``close``, ``days``, ``blank``
        or the weekday_weekend column roles, or the period_table ``table``);
        arrays of tables ``[[guessed_when]]`` (``field``, ``column``,
        ``value`` or ``values``) and ``[[rules]]`` (``column``, ``contains`` or
        ``equals``, ``set``).

    Returns
    -------
    ImportSpec
        Checked with :meth:`ImportSpec.check`.

    Raises
    ------
    InvalidInputError
        The file cannot be read, is not TOML, or holds an unknown key or a bad value.
    """
    p = Path(path)
    where = str(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InvalidInputError(
            where, f"cannot read the mapping file: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(where, f"the mapping file is not UTF-8: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(where, f"not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise InvalidInputError(
            where, f"unknown key {unknown[0]!r}; expected one of {', '.join(sorted(_SPEC_KEYS))}"
        )

    def table(key: str) -> dict[str, Any]:
        v = data.get(key, {})
        if not isinstance(v, dict):
            raise InvalidInputError(where, f"{key} must be a table, got {type(v).__name__}")
        return v

    def text(key: str, v: Any) -> str:
        if not isinstance(v, str):
            raise InvalidInputError(where, f"{key} must be a string, got {v!r}")
        return v

    def str_list(key: str, v: Any) -> list[str]:
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise InvalidInputError(
                where, f"{key} must be a string or a list of strings, got {v!r}"
            )
        return list(v)

    spec = ImportSpec()
    spec.mapping = {
        text(f"map.{k}", k): (text(f"map.{k}", v) or None) for k, v in table("map").items()
    }
    spec.defaults = dict(table("set"))
    spec.meta = dict(table("meta"))
    spec.amenity_words = {
        k: (None if text(f"amenity_words.{k}", v) in ("", "-") else v)
        for k, v in table("amenity_words").items()
    }
    for fld, values in table("recode").items():
        if not isinstance(values, dict):
            raise InvalidInputError(where, f"recode.{fld} must be a table of source = value")
        spec.recode[fld] = {str(k): text(f"recode.{fld}.{k}", v) for k, v in values.items()}
    if "crs" in data:
        spec.crs = text("crs", data["crs"])
    if "id_prefix" in data:
        spec.id_prefix = text("id_prefix", data["id_prefix"])
    if "guessed" in data:
        spec.guessed = str_list("guessed", data["guessed"])
    for key in ("sheet", "encoding", "delimiter"):
        if key in data:
            v = data[key]
            setattr(spec, key, str(v) if isinstance(v, int) and key == "sheet" else text(key, v))
    if "header_row" in data:
        if not isinstance(data["header_row"], int):
            raise InvalidInputError(
                where, f"header_row must be a number, got {data['header_row']!r}"
            )
        spec.header_row = data["header_row"]
    if "reject_outliers" in data:
        if not isinstance(data["reject_outliers"], bool):
            raise InvalidInputError(where, "reject_outliers must be true or false")
        spec.reject_outliers = data["reject_outliers"]
    if "hours" in data:
        spec.hours = _hours_from_toml(table("hours"), where)
    gw = data.get("guessed_when", [])
    if not isinstance(gw, list):
        raise InvalidInputError(where, "guessed_when must be an array of tables [[guessed_when]]")
    for i, item in enumerate(gw):
        if not isinstance(item, dict) or set(item) - {"field", "column", "value", "values"}:
            raise InvalidInputError(
                where, f"guessed_when[{i}]: expected keys field, column and value (or values)"
            )
        vals = str_list(f"guessed_when[{i}].value", item.get("values", item.get("value")))
        spec.guessed_when.append(
            GuessedWhen(
                text(f"guessed_when[{i}].field", item.get("field")),
                text(f"guessed_when[{i}].column", item.get("column")),
                tuple(vals),
            )
        )
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise InvalidInputError(where, "rules must be an array of tables [[rules]]")
    for i, item in enumerate(rules):
        if not isinstance(item, dict) or set(item) - {"column", "contains", "equals", "set"}:
            raise InvalidInputError(
                where, f"rules[{i}]: expected keys column, contains or equals, set"
            )
        assign = item.get("set")
        if not isinstance(assign, dict) or not assign:
            raise InvalidInputError(where, f"rules[{i}].set must be a table of FIELD = value")
        spec.rules.append(
            Rule(
                column=text(f"rules[{i}].column", item.get("column")),
                assign=dict(assign),
                contains=text(f"rules[{i}].contains", item["contains"])
                if "contains" in item
                else None,
                equals=text(f"rules[{i}].equals", item["equals"]) if "equals" in item else None,
            )
        )
    try:
        spec.check()
    except InvalidInputError as exc:
        raise InvalidInputError(where, str(exc)) from None
    return spec


def _hours_from_toml(data: Mapping[str, Any], where: str) -> HoursSpec:
    unknown = sorted(set(data) - _HOURS_KEYS)
    if unknown:
        raise InvalidInputError(
            where,
            f"hours: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(_HOURS_KEYS))}",
        )
    for k, v in data.items():
        if k != "days" and not isinstance(v, str):
            raise InvalidInputError(where, f"hours.{k} must be a string, got {v!r}")
    if "format" not in data:
        raise InvalidInputError(
            where, f"hours.format is required: one of {', '.join(HOURS_FORMATS)}"
        )
    hours = HoursSpec(format=data["format"])
    for k in ("open", "close", "blank"):
        if k in data:
            setattr(hours, k, data[k])
    if "days" in data:
        days = data["days"]
        if isinstance(days, str):
            days = days.split(",")
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise InvalidInputError(
                where, f'hours.days must be a list of 7 names or "mon,tue,...", got {days!r}'
            )
        hours.days = tuple(days)
    hours.columns = {k: v for k, v in data.items() if k in WEEKDAY_WEEKEND_COLUMNS or k == "table"}
    return hours


# ---------------------------------------------------------------------------------------
# Opening hours
# ---------------------------------------------------------------------------------------

_HOURS_TOKEN: Final = re.compile(
    r"""
     (?P<ws>[\s()\[\]【】「」"'“”]+)
    |(?P<always>24\s*(?:小时|h\b|hrs?\b|hours?\b)|24/7|全天候|全天|全日|24时)
    |(?P<time>(?P<pre>上午|下午|早上|早晨|晚上|中午|凌晨|傍晚|早|晚)?\s*(?P<h>\d{1,2})
        (?:[:.](?P<m>\d{2})|点(?:(?P<pm>\d{1,2})分?|(?P<half>半))?|时(?:(?P<tm>\d{1,2})分)?))
    |(?P<dayword>(?:法定)?节假日|公休日|节日|工作日|周末|双休日|每天|每日|天天|全年无休|全年|全周)
    |(?P<day>(?:周|星期|礼拜|週)[一二三四五六日天七1-7])
    |(?P<daych>[一二三四五六日天七])
    |(?P<off>不开放|不营业|闭馆|休馆|休息|关闭|歇业|停业|闭店|除外|休)
    |(?P<range>至|到|~|-|—|–|〜)
    |(?P<list>,|、|和|及|与|/|&)
    |(?P<sep>;|。|\|)
    |(?P<filler>开放时间|营业时间|服务时间|办公时间|开放|营业|服务|办公|对外|时间|为|从|起|:)
    """,
    re.VERBOSE,
)
_DAY_INDEX: Final = {
    **{c: i for i, c in enumerate("一二三四五六日")},
    "天": 6,
    "七": 6,
    **{str(i + 1): i for i in range(7)},
}
_DAYWORDS: Final = {
    "工作日": "Mo-Fr",
    "周末": "Sa,Su",
    "双休日": "Sa,Su",
    "节假日": "PH",
    "法定节假日": "PH",
    "公休日": "PH",
    "节日": "PH",
}
_EVERY_DAY: Final = frozenset({"每天", "每日", "天天", "全年无休", "全年", "全周"})
_PM_PREFIX: Final = frozenset({"下午", "晚上", "傍晚", "晚"})


@dataclass
class _HoursRule:
    days: list[str] = field(default_factory=list)
    every_day: bool = False
    times: list[str] = field(default_factory=list)
    always: bool = False
    off: bool = False

    def has_content(self) -> bool:
        return bool(self.times) or self.always or self.off

    def render(self) -> str | None:
        sel = ",".join(self.days)
        if self.off:
            return f"{sel} off" if sel and not self.times and not self.always else None
        if self.always:
            return f"{sel} 00:00-24:00" if sel else "24/7"
        if self.times:
            return f"{sel} {','.join(self.times)}".strip()
        return None


def _hm(match: re.Match[str], pm: bool) -> tuple[int, int] | None:
    h = int(match["h"])
    m = int(match["m"] or match["pm"] or match["tm"] or 0)
    if match["half"]:
        m = 30
    pre = match["pre"]
    afternoon = pre in _PM_PREFIX or (pre is None and pm)
    if (afternoon and h < 12) or (pre == "中午" and h < 11):
        h += 12
    if not (0 <= h <= 24 and 0 <= m <= 59) or (h == 24 and m):
        return None
    return h, m


def convert_hours(text: str) -> str | None:
    """Convert an opening-hours text to OpenStreetMap ``opening_hours`` syntax.

    Valid OSM syntax is returned unchanged. Common Chinese phrasings are converted:
    day ranges and lists (``周一至周五``, ``星期六``, ``周一、三、五``), ``工作日``,
    ``周末``/``双休日``, ``节假日``, ``每天``, several time spans per day, ``上午``/``下午``,
    ``8点半``, ``24小时``/``全天`` and closures (``周一闭馆``, ``节假日除外``). Anything else
    gives ``None``: hours are never invented (``工作日开放`` has no times, so it is
    ``None``).

    Parameters
    ----------
    text : str
        The hours as the source wrote them.

    Returns
    -------
    str or None
        A valid OSM ``opening_hours`` expression, or ``None``.

    Examples
    --------
    >>> convert_hours("周一至周五 08:30-12:00,13:00-17:30")
    'Mo-Fr 08:30-12:00,13:00-17:30'
    >>> convert_hours("24小时")
    '24/7'
    >>> convert_hours("工作日开放") is None
    True
    """
    if not text.strip():
        return None
    if hours_error(text.strip()) is None:
        return text.strip()
    s = unicodedata.normalize("NFKC", text).strip().casefold()
    tokens: list[tuple[str, re.Match[str]]] = []
    pos = 0
    while pos < len(s):
        m = _HOURS_TOKEN.match(s, pos)
        if m is None or m.end() == pos:
            return None
        kind = m.lastgroup
        if kind is None:  # pragma: no cover - every alternative is named
            return None
        tokens.append((kind, m))
        pos = m.end()
    toks = [(k, m) for k, m in tokens if k not in ("ws", "filler")]

    rules: list[_HoursRule] = []
    cur = _HoursRule()
    i = 0
    n = len(toks)
    while i < n:
        kind, m = toks[i]
        if kind == "sep":
            rules.append(cur)
            cur = _HoursRule()
            i += 1
        elif kind in ("day", "dayword"):
            if cur.has_content():
                rules.append(cur)
                cur = _HoursRule()
            if kind == "dayword":
                word = m.group()
                if word in _EVERY_DAY:
                    cur.every_day = True
                else:
                    cur.days.append(_DAYWORDS[word])
                i += 1
                continue
            a = _DAY_INDEX[m.group()[-1]]
            if i + 2 < n and toks[i + 1][0] == "range" and toks[i + 2][0] in ("day", "daych"):
                b = _DAY_INDEX[toks[i + 2][1].group()[-1]]
                cur.days.append(_OSM_DAYS[a] if a == b else f"{_OSM_DAYS[a]}-{_OSM_DAYS[b]}")
                i += 3
            else:
                cur.days.append(_OSM_DAYS[a])
                i += 1
        elif kind == "daych":
            # "周一、三、五": a bare day character continues a list of days.
            if not cur.days or cur.has_content() or toks[i - 1][0] != "list":
                return None
            cur.days.append(_OSM_DAYS[_DAY_INDEX[m.group()]])
            i += 1
        elif kind == "time":
            if not (i + 2 < n and toks[i + 1][0] == "range" and toks[i + 2][0] == "time"):
                return None
            start = _hm(m, pm=False)
            end_m = toks[i + 2][1]
            end = _hm(end_m, pm=m["pre"] in _PM_PREFIX and end_m["pre"] is None)
            if start is None or end is None or start == end or start[0] == 24:
                return None
            cur.times.append(f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}")
            i += 3
        elif kind == "always":
            cur.always = True
            i += 1
        elif kind == "off":
            cur.off = True
            i += 1
        elif kind == "list":
            i += 1
        else:
            return None
    rules.append(cur)
    parts: list[str] = []
    for r in rules:
        if not r.days and not r.every_day and not r.has_content():
            continue
        rendered = r.render()
        if rendered is None:
            return None
        parts.append(rendered)
    if not parts:
        return None
    out = "; ".join(parts)
    return out if hours_error(out) is None else None


# ---------------------------------------------------------------------------------------
# Reading sources
# ---------------------------------------------------------------------------------------


class _Problem(NamedTuple):
    """Why a row is rejected, before it becomes a :class:`Rejected`."""

    reason: str
    field: str | None
    message: str
    value: str | None


@dataclass
class _Row:
    number: int
    values: dict[str, Any]
    line: int | None = None
    geometry: Any = None
    problem: _Problem | None = None


@dataclass
class _Table:
    format: Literal["csv", "xlsx", "geojson", "json"]
    columns: list[str]
    rows: list[_Row]
    encoding: str | None = None
    n_blank: int = 0
    notes: list[Note] = field(default_factory=list)


def _unique_columns(raw: Sequence[Any]) -> tuple[list[str], list[Note]]:
    cols: list[str] = []
    notes: list[Note] = []
    seen: Counter[str] = Counter()
    for i, c in enumerate(raw):
        name = "" if c is None else str(c).strip()
        if not name:
            name = f"column_{i + 1}"
        seen[name] += 1
        if seen[name] > 1:
            new = f"{name}.{seen[name]}"
            notes.append(
                Note(
                    None, None, "source", name, f"column name {name!r} repeats; the copy is {new!r}"
                )
            )
            name = new
        cols.append(name)
    return cols, notes


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise InvalidInputError("encoding", f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                "encoding", f"the file is not valid {encoding} (byte {exc.start}: {exc.reason})"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: GB18030 (a superset of GBK) unless the file is valid CP949 (Korean
    # Windows) and only that reading gives a header with known column names.
    decoded: dict[str, str] = {}
    for enc in ("gb18030", "cp949"):
        try:
            decoded[enc] = data.decode(enc)
        except UnicodeDecodeError:
            continue
    if "gb18030" in decoded and "cp949" in decoded:
        hits = {enc: _known_header_words(text) for enc, text in decoded.items()}
        if hits["cp949"] > hits["gb18030"]:
            return decoded["cp949"], "cp949"
    for enc, text in decoded.items():
        return text, enc
    raise InvalidInputError(
        "encoding", "the file is neither UTF-8 nor GB18030; pass --encoding (e.g. cp949, big5)"
    )


def _known_header_words(text: str) -> int:
    """How many names in the first line of *text* are known column names."""
    first = text.split("\n", 1)[0]
    names = re.split(r"[,\t;|]", first)
    return sum(1 for n in names if any(_match_level(f, n.strip().strip('"')) for f in _SYNONYMS))


def _sniff_delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, encoding: str | None, delimiter: str | None, header_row: int) -> _Table:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    try:
        text, used = _decode(data, encoding)
    except UnicodeDecodeError as exc:
        raise InvalidInputError("encoding", f"cannot decode the file: {exc.reason}") from None
    notes: list[Note] = []
    if used in ("gb18030", "cp949") and not encoding:
        notes.append(
            Note(
                None,
                None,
                "source",
                used,
                f"the file is not UTF-8; read it as {used.upper()} "
                "(pass --encoding if the text looks wrong)",
            )
        )
    text = text.removeprefix("\ufeff")  # a BOM left by an explicit --encoding utf-8
    delim = delimiter or _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header: list[str] | None = None
    rows: list[_Row] = []
    n_blank = 0
    prev_line = 0
    record = 0
    try:
        for values in reader:
            record += 1
            start_line = prev_line + 1
            prev_line = reader.line_num
            if record < header_row:
                continue
            if header is None:
                header, col_notes = _unique_columns(values)
                notes.extend(col_notes)
                continue
            if not any(v.strip() for v in values):
                n_blank += 1
                continue
            row = _Row(
                record,
                dict(zip(header, values, strict=False)),
                line=start_line if start_line != record else None,
            )
            extra = [v for v in values[len(header) :] if v.strip()]
            if extra:
                row.problem = _Problem(
                    "field_count",
                    None,
                    f"the row has {len(values)} values but the header has {len(header)} columns "
                    "(a delimiter inside an unquoted value?)",
                    delim.join(values),
                )
            rows.append(row)
    except csv.Error as exc:
        raise InvalidInputError(str(path), f"CSV error on line {reader.line_num}: {exc}") from None
    if header is None:
        raise InvalidInputError(str(path), f"no header row (row {header_row}) in the file")
    return _Table("csv", header, rows, encoding=used, n_blank=n_blank, notes=notes)


def _read_xlsx(path: Path, sheet: str | None, header_row: int) -> _Table:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
        raise InvalidInputError(str(path), f"cannot read as XLSX: {exc}") from None
    try:
        names = list(wb.sheetnames)
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in names:
            ws = wb[sheet]
        elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
            ws = wb.worksheets[int(sheet) - 1]
        else:
            raise InvalidInputError(
                "sheet", f"no sheet {sheet!r}; the workbook has {', '.join(map(repr, names))}"
            )
        header: list[str] | None = None
        notes: list[Note] = []
        rows: list[_Row] = []
        n_blank = 0
        for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if r < header_row:
                continue
            if header is None:
                header, notes = _unique_columns(list(values))
                continue
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                n_blank += 1
                continue
            rows.append(_Row(r, dict(zip(header, values, strict=False))))
    except InvalidInputError:
        raise
    except Exception as exc:  # malformed sheet XML surfaces from several libraries
        raise InvalidInputError(str(path), f"cannot read as XLSX: {exc}") from None
    finally:
        wb.close()
    if header is None:
        raise InvalidInputError(
            str(path), f"sheet {ws.title!r} has no header row (row {header_row})"
        )
    return _Table("xlsx", header, rows, n_blank=n_blank, notes=notes)


def _read_geojson(path: Path) -> _Table:
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidInputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(str(path), f"not valid JSON: {exc}") from None
    notes: list[Note] = []
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise InvalidInputError(str(path), "the FeatureCollection has no features list")
        if "crs" in doc:
            notes.append(
                Note(
                    None,
                    "crs",
                    "source",
                    str(doc["crs"])[:80],
                    "the source has a (pre-RFC 7946) crs member; it is ignored: use --crs",
                )
            )
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    elif isinstance(doc, list):
        return _json_records(doc)
    else:
        raise InvalidInputError(
            str(path), "Expected a GeoJSON FeatureCollection or Feature, or a JSON list of records"
        )
    columns: dict[str, None] = {}
    rows: list[_Row] = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            row = _Row(i, {})
            row.problem = _Problem(
                "invalid_feature", None, "the feature is not a JSON object", str(f)[:80]
            )
            rows.append(row)
            continue
        props = f.get("properties") or {}
        values: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        if f.get("id") is not None:
            values["id"] = f["id"]
        for k in values:
            columns.setdefault(k, None)
        rows.append(_Row(i, values, geometry=f.get("geometry")))
    return _Table("geojson", list(columns), rows, notes=notes)


def _record_value(value: Any) -> Any:
    """A JSON record's value as a cell: lists and objects kept, other scalars as text."""
    if value is None or isinstance(value, str | list | dict):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_records(records: list[Any]) -> _Table:
    """A plain JSON list of objects: keys are columns, row = 1-based record index."""
    columns: dict[str, None] = {}
    rows: list[_Row] = []
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            row = _Row(i, {})
            row.problem = _Problem(
                "invalid_feature", None, "the record is not a JSON object", str(rec)[:80]
            )
            rows.append(row)
            continue
        values = {str(k): _record_value(v) for k, v in rec.items()}
        for k in values:
            columns.setdefault(k, None)
        rows.append(_Row(i, values))
    return _Table("json", list(columns), rows)


def _read_table(path: Path, spec: ImportSpec) -> _Table:
    if not path.exists():
        raise InvalidInputError(str(path), "no such file")
    if path.is_dir():
        raise InvalidInputError(str(path), "is a directory, not a file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, spec.sheet, spec.header_row)
    if suffix == ".xls":
        raise InvalidInputError(str(path), "old .xls workbooks are not supported; save it as .xlsx")
    if suffix in (".geojson", ".json"):
        return _read_geojson(path)
    if suffix in (".csv", ".tsv", ".txt", ""):
        delim = spec.delimiter or ("\t" if suffix == ".tsv" else None)
        return _read_csv(path, spec.encoding, delim, spec.header_row)
    raise InvalidInputError(
        str(path),
        f"unknown file type {suffix!r}; expected .csv, .tsv, .txt, .xlsx, .geojson or .json",
    )


# ---------------------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------------------


def _header_key(name: str) -> str:
    s = unicodedata.normalize("NFKC", name).casefold().strip()
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}", "", s)
    return re.sub(r"[\s_\-./:]+", "", s)


def _header_tokens(name: str) -> list[str]:
    s = unicodedata.normalize("NFKC", name).casefold()
    return [t for t in re.split(r"[\s_\-./:()\[\]{},]+", s) if t]


def _crs_hint(name: str) -> str | None:
    s = re.sub(r"[\s_\-./:()\[\]{}]+", "", unicodedata.normalize("NFKC", name).casefold())
    for crs, words in _CRS_HINTS:
        if any(w in s for w in words):
            return crs
    return None


_SYNONYM_KEYS: Final = {f: {_header_key(w) for w in words} for f, words in _SYNONYMS.items()}
_LONLAT_TOKENS: Final = {f: {_header_key(w) for w in _SYNONYMS[f]} for f in ("lon", "lat")}


def _match_level(fld: str, column: str) -> int:
    """2: exact name (or registry property name), 1: lon/lat word plus qualifiers, 0: no."""
    key = _header_key(column)
    if key in _SYNONYM_KEYS.get(fld, set()) or key == _header_key(fld):
        return 2
    if fld in _LONLAT_TOKENS:
        toks = _header_tokens(column)
        hits = [t for t in toks if t in _LONLAT_TOKENS[fld]]
        rest = [t for t in toks if t not in _LONLAT_TOKENS[fld]]
        if len(hits) == 1 and all(t in _COORD_QUALIFIERS for t in rest):
            return 1
    return 0


def _resolve_columns(
    table: _Table, spec: ImportSpec
) -> tuple[dict[str, str], list[str], list[Note]]:
    columns = table.columns
    notes: list[Note] = []
    used: dict[str, str] = {}
    for fld, col in spec.mapping.items():
        if col is None:
            continue
        if fld in ("lon", "lat") and table.format == "geojson" and col == "geometry":
            used[fld] = "geometry"
            continue
        if col not in columns:
            raise InvalidInputError(
                f"map {fld}",
                f"no column {col!r} in the source; columns: {', '.join(map(repr, columns))}",
            )
        used[fld] = col
    if table.format == "geojson" and ("lon" in used) != ("lat" in used):
        raise InvalidInputError(
            "map", "map both lon and lat to properties, or neither (the geometry is used)"
        )
    taken = set(used.values())
    auto: list[str] = []
    if table.format == "geojson":
        for fld in ("lon", "lat"):
            if fld not in spec.mapping:
                used[fld] = "geometry"
    candidates = [f for f in FIELDS if f not in spec.mapping and f not in used]
    for fld in candidates:
        if fld == "guessed" or (fld in ("lon", "lat") and table.format == "geojson"):
            continue
        levels = [(c, _match_level(fld, c)) for c in columns if c not in taken]
        best = max((lv for _, lv in levels), default=0)
        if best == 0:
            continue
        hits = [c for c, lv in levels if lv == best]
        if len(hits) > 1:
            if fld in ("lon", "lat"):
                raise InvalidInputError(
                    "columns",
                    f"several columns could hold {fld}: {', '.join(map(repr, hits))}; "
                    f"choose one with --map {fld}=COLUMN",
                )
            notes.append(
                Note(
                    None,
                    fld,
                    "source",
                    None,
                    f"several columns could hold {fld} ({', '.join(map(repr, hits))}); "
                    f"used {hits[0]!r}",
                )
            )
        used[fld] = hits[0]
        taken.add(hits[0])
        auto.append(fld)
    missing = [f for f in ("name", "lon", "lat") if f not in used]
    if missing:
        hints = "; ".join(f"{f}: {', '.join(_SYNONYMS[f][:8])}, ..." for f in missing)
        enc = f" (read as {table.encoding})" if table.encoding else ""
        raise InvalidInputError(
            "columns",
            f"no column found for {', '.join(missing)}. Columns in the file{enc}: "
            f"{', '.join(map(repr, columns)) or '(none)'}. Looked for {hints}. "
            f"Map them with --map FIELD=COLUMN.",
        )
    # Keep the order of FIELDS for a stable report.
    ordered = {f: used[f] for f in sorted(used, key=_field_order)}
    return ordered, [f for f in FIELDS if f in auto], notes


def _field_order(name: str) -> tuple[int, str]:
    head = name.split(".", 1)[0]
    return (FIELDS.index(head) if head in FIELDS else len(FIELDS), name)


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------

_WS: Final = re.compile(r"\s+")


def _scalar_text(value: Any, collapse: bool = True) -> str | None:
    """A cell as stripped text, ``None`` when empty or a usual 'no value' token."""
    if value is None:
        return None
    if isinstance(value, bool):
        s = "true" if value else "false"
    elif isinstance(value, int):
        s = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        s = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, datetime):
        s = (
            value.date().isoformat()
            if value.time() == time() and value.tzinfo is None
            else value.isoformat()
        )
    elif isinstance(value, date):
        s = value.isoformat()
    elif isinstance(value, time):
        s = value.strftime("%H:%M")
    elif isinstance(value, str):
        s = value
    else:
        s = str(value)
    s = s.strip()
    if collapse:
        s = _WS.sub(" ", s)
    return None if s.casefold() in _NULL_TOKENS else s


def _raw_text(value: Any) -> str:
    return "" if value is None else str(value)


def _parse_coord(value: Any) -> tuple[float | None, str | None]:
    if value is None:
        return None, "missing_coordinate"
    if isinstance(value, bool):
        return None, "non_numeric_coordinate"
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        s = unicodedata.normalize("NFKC", value).strip()
        if s.casefold() in _NULL_TOKENS - {"nan"}:
            return None, "missing_coordinate"
        if "_" in s:
            return None, "non_numeric_coordinate"
        try:
            f = float(s)
        except ValueError:
            return None, "non_numeric_coordinate"
    else:
        return None, "non_numeric_coordinate"
    if not math.isfinite(f):
        return None, "not_finite"
    return f, None


_COORD_MESSAGES: Final = {
    "missing_coordinate": ("is empty", "are empty"),
    "non_numeric_coordinate": ("is not a number", "are not numbers"),
    "not_finite": ("is not finite", "are not finite"),
}


def _check_position(lon_raw: Any, lat_raw: Any) -> tuple[float, float] | _Problem:
    """``(lon, lat)`` as numbers, or why they are not a usable position."""
    lon, r_lon = _parse_coord(lon_raw)
    lat, r_lat = _parse_coord(lat_raw)

    def shown(v: Any) -> str:
        return repr(v) if isinstance(v, str) else str(v)

    if r_lon or r_lat:
        if r_lon and r_lat == r_lon:
            both = _COORD_MESSAGES[r_lon][1]
            return _Problem(
                r_lon,
                "lon,lat",
                f"lon {shown(lon_raw)} and lat {shown(lat_raw)} {both}",
                f"{_raw_text(lon_raw)}, {_raw_text(lat_raw)}",
            )
        if r_lon:
            one = _COORD_MESSAGES[r_lon][0]
            return _Problem(r_lon, "lon", f"lon {shown(lon_raw)} {one}", _raw_text(lon_raw))
        assert r_lat is not None
        one = _COORD_MESSAGES[r_lat][0]
        return _Problem(r_lat, "lat", f"lat {shown(lat_raw)} {one}", _raw_text(lat_raw))
    assert lon is not None and lat is not None
    value = f"{_raw_text(lon_raw)}, {_raw_text(lat_raw)}"
    if lon == 0.0 and lat == 0.0:
        return _Problem(
            "null_island", "lon,lat", "lon and lat are both 0: a placeholder, not a position", value
        )
    lon_ok = -180.0 <= lon <= 180.0
    lat_ok = -90.0 <= lat <= 90.0
    if not lat_ok and lon_ok and -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0:
        return _Problem(
            "looks_swapped",
            "lon,lat",
            f"lat {lat:g} is out of range but [lon, lat] = [{lat:g}, {lon:g}] is valid: "
            "the lon and lat columns look swapped",
            value,
        )
    if not lon_ok:
        return _Problem(
            "out_of_range", "lon", f"lon {lon:g} is outside -180..180", _raw_text(lon_raw)
        )
    if not lat_ok:
        return _Problem(
            "out_of_range", "lat", f"lat {lat:g} is outside -90..90", _raw_text(lat_raw)
        )
    return lon, lat


def _geometry_position(geom: Any) -> tuple[Any, Any] | _Problem:
    """The raw ``(lon, lat)`` of a GeoJSON geometry, or why it has none."""
    if geom is None:
        return _Problem("missing_coordinate", "geometry", "the feature has no geometry", "null")
    if (
        isinstance(geom, dict)
        and geom.get("type") == "MultiPoint"
        and isinstance(geom.get("coordinates"), list)
        and len(geom["coordinates"]) == 1
    ):
        # A MultiPoint of one position (common in ArcGIS exports) is that point.
        geom = {"type": "Point", "coordinates": geom["coordinates"][0]}
    if not isinstance(geom, dict) or geom.get("type") != "Point":
        t = geom.get("type") if isinstance(geom, dict) else type(geom).__name__
        return _Problem("not_a_point", "geometry", f"Expected a Point geometry, got {t!r}", str(t))
    c = geom.get("coordinates")
    if not isinstance(c, list) or len(c) < 2:
        return _Problem(
            "missing_coordinate", "geometry", f"Expected coordinates [lon, lat], got {c!r}", str(c)
        )
    return c[0], c[1]


def _parse_amenity_cell(
    value: Any, overrides: Mapping[str, str | None]
) -> tuple[list[str], list[str]]:
    """Amenities and unknown words of one cell (a list from GeoJSON or a text)."""
    if isinstance(value, list):
        chunks = [str(v) for v in value if v is not None]
    else:
        text = _scalar_text(value)
        if text is None:
            return [], []
        chunks = _AMENITY_SPLIT.split(text)
    found: list[str] = []
    unknown: list[str] = []
    for chunk in chunks:
        chunk = chunk.strip()
        if not chunk:
            continue
        hit = amenity_for_word(chunk, overrides)
        if hit is not None:
            if hit:
                found.append(hit)
            continue
        # A chunk of several words is split only when every word is known: "微波炉 wifi"
        # is two amenities, but "massage chair" or "no toilet" stays one unknown phrase.
        hits = [amenity_for_word(w, overrides) for w in chunk.split()]
        if len(hits) > 1 and all(h is not None for h in hits):
            found.extend(h for h in hits if h)
        else:
            unknown.append(chunk)
    return found, unknown


def _flag(value: Any) -> bool | None:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if value in (0, 1) else None
    s = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    if not s or s in _FALSE_FLAGS or s in _NULL_TOKENS:
        return False
    if s in _TRUE_FLAGS:
        return True
    return None


def _is_masked_phone(text: str) -> bool:
    return any(ch in text for ch in "*＊●")


def _stable_id(prefix: str, name: str, address: str | None) -> str:
    key = f"{normalize_name(name)}\x1f{normalize_name(address or '')}"
    return prefix + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


# ---------------------------------------------------------------------------------------
# The import
# ---------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    row: _Row
    lon: float
    lat: float
    fid: str
    props: dict[str, Any]
    raw: str = ""  # the position as the source wrote it


def import_file(
    path: str | Path,
    *,
    mapping: Mapping[str, str | None] | None = None,
    crs: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    id_prefix: str = "",
    amenity_words: Mapping[str, str | None] | None = None,
    guessed: Iterable[str] = (),
    guessed_when: Iterable[GuessedWhen] = (),
    rules: Iterable[Rule] = (),
    recode: Mapping[str, Mapping[str, str]] | None = None,
    meta: Mapping[str, Any] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int = 1,
    reject_outliers: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import stations from a CSV, XLSX, GeoJSON or JSON-records file.

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.tsv``/``.txt``, ``.xlsx`` or ``.geojson``/``.json`` (a GeoJSON
        FeatureCollection or Feature, or a plain JSON list of objects).
    mapping : mapping, optional
        Field -> column (``{"lon": "lng_gcj02"}``); unmapped fields are auto-detected
        from common column names. A column of ``None`` turns detection of a field off.
    crs : str, optional
        Coordinate system of the source (``wgs84``, ``gcj02``, ``bd09``). Default: named
        by the coordinate columns (``lng_gcj02``), else ``wgs84``.
    defaults : mapping, optional
        Field -> value for rows where the column is empty or unmapped.
    id_prefix : str
        Put before every id. Without an id column, ids are the prefix plus 10 hex digits
        of a hash of the normalised name and address (``-2``, ``-3``... on repeats).
    amenity_words : mapping, optional
        Extra source word -> amenity (``None`` to ignore a word on purpose).
    guessed : iterable of str
        Properties marked guessed on every row.
    guessed_when : iterable of GuessedWhen
        Properties marked guessed on rows whose provenance column holds given values.
    rules : iterable of Rule
        Values inferred from a column's text; they are marked guessed.
    recode : mapping, optional
        Field -> {source value -> registry value}.
    meta : mapping, optional
        Top-level members of :meth:`ImportResult.document`.
    sheet, encoding, delimiter, header_row
        How to read the source; see :class:`ImportSpec`.
    reject_outliers : bool
        Reject rows far from all the others (``far_outlier``).
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` every 5,000 rows.

    Returns
    -------
    ImportResult

    Raises
    ------
    InvalidInputError
        The source is unusable: missing, unreadable, or without a name/lon/lat column
        (the message lists the columns it has); or an option is invalid.
    """
    spec = ImportSpec(
        mapping=dict(mapping or {}),
        crs=crs,
        defaults=dict(defaults or {}),
        id_prefix=id_prefix,
        amenity_words=dict(amenity_words or {}),
        guessed=list(guessed),
        guessed_when=list(guessed_when),
        rules=list(rules),
        recode={k: dict(v) for k, v in (recode or {}).items()},
        meta=dict(meta or {}),
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        reject_outliers=reject_outliers,
    )
    return run_import(path, spec, progress=progress)


def run_import(
    path: str | Path,
    spec: ImportSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = 5000,
) -> ImportResult:
    """Import stations from *path* as described by *spec*.

    Parameters
    ----------
    path : str or Path
        The source file.
    spec : ImportSpec
        How to read it (e.g. from :func:`load_spec`).
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` every ``progress_every`` rows and
        once at the end.
    progress_every : int
        Rows between two progress calls.

    Returns
    -------
    ImportResult
        Accepted features (they pass :func:`~yizhan.stations.validate.validate_document`
        with no error), rejected rows and notes.

    Raises
    ------
    InvalidInputError
        The source or the spec is unusable.
    """
    spec.check()
    p = Path(path)
    table = _read_table(p, spec)
    hours = spec.hours.resolve(table.columns) if spec.hours is not None else None
    col_spec = spec
    if hours is not None:  # the [hours] columns build opening_hours: detect no other column
        col_spec = replace(
            spec, mapping={"opening_hours": None, "opening_hours_text": None, **spec.mapping}
        )
    columns_used, auto, col_notes = _resolve_columns(table, col_spec)
    notes: list[Note] = [*table.notes, *col_notes]
    for g in spec.guessed_when:
        if g.column not in table.columns:
            raise InvalidInputError(
                "guessed_when",
                f"no column {g.column!r}; columns: {', '.join(map(repr, table.columns))}",
            )
    for r in spec.rules:
        if r.column not in table.columns:
            raise InvalidInputError(
                "rule", f"no column {r.column!r}; columns: {', '.join(map(repr, table.columns))}"
            )

    _drop_unfit_auto_columns(table, spec, columns_used, auto, notes)
    crs = _decide_crs(table, spec, columns_used, notes)
    importer = _RowImporter(spec, columns_used, table.format, hours)
    rejected: list[Rejected] = []
    candidates: list[_Candidate] = []
    total = len(table.rows)
    for done, row in enumerate(table.rows, start=1):
        out = importer.row(row, notes)
        if isinstance(out, Rejected):
            rejected.append(out)
        else:
            candidates.append(out)
        if progress is not None and done % progress_every == 0:
            progress(done, total)
    if progress is not None and (total == 0 or total % progress_every):
        progress(total, total)

    candidates = _convert_positions(candidates, crs)
    candidates = _region_checks(candidates, rejected, spec.reject_outliers)
    candidates = _drop_duplicate_ids(candidates, rejected)
    features = _validated(candidates, rejected, notes, table.format)

    rejected.sort(key=lambda r: r.row)
    notes.sort(key=lambda n: -1 if n.row is None else n.row)
    return ImportResult(
        source=str(p),
        format=table.format,
        features=features,
        rejected=rejected,
        notes=notes,
        columns_used=columns_used,
        auto_detected=auto,
        columns=table.columns,
        crs=crs,
        encoding=table.encoding,
        n_rows=len(table.rows),
        n_blank=table.n_blank,
        meta=dict(spec.meta),
        provenance_columns=list(
            dict.fromkeys([*(g.column for g in spec.guessed_when), *(r.column for r in spec.rules)])
        ),
        hours_columns=[] if hours is None else hours.columns,
        hours_format=None if hours is None else hours.spec.format,
    )


def _fits(fld: str, value: Any, recode: Mapping[str, str]) -> bool:
    """Whether a non-empty cell is acceptable for an enum, number or date field."""
    if fld in _ENUMS:
        text = _scalar_text(value)
        return text is None or recode.get(text, text) in _ENUMS[fld]
    if fld == "capacity":
        return _as_int(value) is not None
    if fld in _DATE_FIELDS:
        if isinstance(value, date):
            return True
        try:
            _DATE_ADAPTER.validate_python(_scalar_text(value))
        except ValidationError:
            return False
        return True
    return True


def _drop_unfit_auto_columns(
    table: _Table, spec: ImportSpec, used: dict[str, str], auto: list[str], notes: list[Note]
) -> None:
    """Un-map auto-detected columns whose values do not fit their field.

    A column found by its name ("status", "capacity") may hold another vocabulary
    ("Active"); rather than reject every row, it is left out with a note saying how to
    map and recode it. Explicitly mapped columns are never dropped: bad values there
    reject their rows.
    """
    for fld in list(auto):
        if fld not in _ENUMS and fld != "capacity" and fld not in _DATE_FIELDS:
            continue
        col = used[fld]
        recode = spec.recode.get(fld, {})
        bad = [
            v
            for v in (r.values.get(col) for r in table.rows)
            if not _is_empty(v) and not _fits(fld, v, recode)
        ]
        if bad:
            examples = ", ".join(repr(_raw_text(v)) for v in list(dict.fromkeys(map(str, bad)))[:3])
            notes.append(
                Note(
                    None,
                    fld,
                    "source",
                    col,
                    f"column {col!r} looks like {fld} but {len(bad)} values do not fit "
                    f"(e.g. {examples}); not imported. Map it with --map {fld}={col} and "
                    f"--recode {fld}:VALUE=...",
                )
            )
            del used[fld]
            auto.remove(fld)


def _decide_crs(table: _Table, spec: ImportSpec, used: Mapping[str, str], notes: list[Note]) -> str:
    hints = {
        h
        for f in ("lon", "lat")
        if used.get(f) not in (None, "geometry")
        for h in [_crs_hint(used[f])]
        if h is not None
    }
    if len(hints) > 1:
        raise InvalidInputError(
            "crs",
            f"the lon and lat columns name different coordinate systems ({', '.join(sorted(hints))}); "
            "pass --crs",
        )
    hint = next(iter(hints), None)
    if spec.crs is not None:
        if hint is not None and hint != spec.crs:
            notes.append(
                Note(
                    None,
                    "crs",
                    "source",
                    hint,
                    f"the coordinate columns say {hint} but --crs {spec.crs} was given; using {spec.crs}",
                )
            )
        return spec.crs
    if hint is not None:
        notes.append(
            Note(
                None,
                "crs",
                "source",
                hint,
                f"coordinates read as {hint} (named by columns {used['lon']!r}/{used['lat']!r})",
            )
        )
        return hint
    return CRS_NAMES[0]


class _RowImporter:
    """Turns one source row into a candidate feature or a rejection."""

    def __init__(
        self,
        spec: ImportSpec,
        used: Mapping[str, str],
        fmt: str,
        hours: _HoursReader | None = None,
    ) -> None:
        self.spec = spec
        self.hours = hours
        self.used = used
        self.fmt = fmt
        self.id_counts: Counter[str] = Counter()
        self.words = spec.amenity_words

    def reject(self, row: _Row, problem: _Problem) -> Rejected:
        return Rejected(
            row.number, problem.field, problem.reason, problem.value, problem.message, line=row.line
        )

    def invalid(self, row: _Row, fld: str, message: str, value: Any) -> Rejected:
        shown = None if value is None else _raw_text(value)
        return self.reject(row, _Problem("invalid_value", fld, message, shown))

    def cell(self, row: _Row, fld: str) -> Any:
        col = self.used.get(fld)
        return None if col is None else row.values.get(col)

    def hours_props(self, row: _Row, props: dict[str, Any], notes: list[Note]) -> None:
        """``opening_hours`` and ``opening_hours_text`` from the ``[hours]`` columns."""
        assert self.hours is not None
        result, text = self.hours.convert(row.values)
        if result.opening_hours is not None:
            props["opening_hours"] = result.opening_hours
        if text is not None:
            props["opening_hours_text"] = text
        for problem in result.problems:
            notes.append(
                Note(
                    row.number,
                    "opening_hours",
                    "unconverted_hours",
                    text,
                    f"{problem}; hours unknown, kept in opening_hours_text only",
                )
            )
        for note in result.notes:
            notes.append(Note(row.number, "opening_hours", "hours_interpreted", text, note))

    def row(self, row: _Row, notes: list[Note]) -> _Candidate | Rejected:
        """The candidate feature of *row*, or its rejection; appends notes."""
        spec = self.spec
        if row.problem is not None:
            return self.reject(row, row.problem)

        # Position.
        if self.fmt == "geojson" and self.used.get("lon") == "geometry":
            raw_pos = _geometry_position(row.geometry)
            if isinstance(raw_pos, _Problem):
                return self.reject(row, raw_pos)
            lon_raw, lat_raw = raw_pos
        else:
            lon_raw, lat_raw = self.cell(row, "lon"), self.cell(row, "lat")
        pos = _check_position(lon_raw, lat_raw)
        if isinstance(pos, _Problem):
            return self.reject(row, pos)
        lon, lat = pos

        # Per-row inputs: column values win, then rules (guessed), then defaults.
        inferred: dict[str, Any] = {}
        for rule in spec.rules:
            if rule.matches(_scalar_text(row.values.get(rule.column))):
                for f, v in rule.assign.items():
                    inferred.setdefault(f, v)

        props: dict[str, Any] = {}
        guessed: set[str] = set(spec.guessed)
        from_rule: set[str] = set()

        def raw_for(fld: str) -> Any:
            v = self.cell(row, fld)
            if _is_empty(v):
                if fld in inferred:
                    from_rule.add(fld)
                    return inferred[fld]
                return spec.defaults.get(fld)
            return v

        fields = [f for f in KNOWN_PROPERTIES if f != "guessed"]
        if self.hours is not None:
            fields = [f for f in fields if f not in ("opening_hours", "opening_hours_text")]
            self.hours_props(row, props, notes)
        for fld in fields:
            raw = raw_for(fld)
            if fld in spec.recode and not isinstance(raw, list | dict):
                t = _scalar_text(raw)
                if t is not None and t in spec.recode[fld]:
                    raw = spec.recode[fld][t]
            if _is_empty(raw):
                continue
            if fld in _TEXT_FIELDS or fld in _ENUMS or fld in _DATE_FIELDS:
                props[fld] = _scalar_text(raw)
            elif fld == "phone":
                text = _scalar_text(raw)
                if text is not None and _is_masked_phone(text):
                    notes.append(
                        Note(
                            row.number,
                            "phone",
                            "masked_phone",
                            text,
                            f"phone {text!r} is masked; dropped",
                        )
                    )
                    continue
                props[fld] = text
            elif fld == "amenities":
                found, unknown = _parse_amenity_cell(raw, self.words)
                for w in unknown:
                    notes.append(
                        Note(
                            row.number,
                            "amenities",
                            "unknown_amenity",
                            w,
                            f"unknown amenity word {w!r}; map it with --amenity-word "
                            f"{w}=AMENITY (or {w}=- to ignore it)",
                        )
                    )
                if found:
                    props[fld] = found
            elif fld == "opening_hours":
                text = _scalar_text(raw, collapse=False)
                if text is None:
                    continue
                converted = convert_hours(text)
                if converted is not None:
                    props[fld] = converted
                if converted != text:
                    props["opening_hours_text"] = text
                if converted is None:
                    notes.append(
                        Note(
                            row.number,
                            "opening_hours",
                            "unconverted_hours",
                            text,
                            f"cannot convert {text!r} to OSM opening_hours; "
                            "kept in opening_hours_text only",
                        )
                    )
            elif fld == "opening_hours_text":
                text = _scalar_text(raw, collapse=False)
                if text is not None:
                    props[fld] = text
            elif fld == "capacity":
                cap = _as_int(raw)
                if cap is None:
                    return self.invalid(
                        row,
                        "capacity",
                        f"Expected a whole number >= 0, got {_raw_text(raw)!r}",
                        raw,
                    )
                props[fld] = cap
            elif fld == "external_ids":
                if not isinstance(raw, dict):
                    return self.invalid(
                        row,
                        "external_ids",
                        f"Expected an object of strings, got {_raw_text(raw)!r}",
                        raw,
                    )
                props[fld] = {str(k): str(v) for k, v in raw.items() if v is not None}
            if fld in from_rule and fld in props:
                guessed.add(fld)

        # Dotted fields: external_ids.KEY and amenities.AMENITY.
        for fld in self.used:
            head, dot, tail = fld.partition(".")
            if not dot:
                continue
            raw = self.cell(row, fld)
            if head == "external_ids":
                text = _scalar_text(raw)
                if text is not None:
                    props.setdefault("external_ids", {})[tail] = text
            elif head == "amenities":
                flag = _flag(raw)
                if flag is None:
                    notes.append(
                        Note(
                            row.number,
                            fld,
                            "unknown_flag",
                            _raw_text(raw),
                            f"Expected yes/no (1/0, 是/否...), got {_raw_text(raw)!r}; "
                            f"{tail} not added",
                        )
                    )
                elif flag and tail not in props.get("amenities", []):
                    props.setdefault("amenities", []).append(tail)
        if "guessed" in self.used:
            gv = self.cell(row, "guessed")
            items = gv if isinstance(gv, list) else _AMENITY_SPLIT.split(_scalar_text(gv) or "")
            for g in (str(x).strip() for x in items):
                if not g:
                    continue
                if g not in GUESSABLE:
                    return self.invalid(
                        row, "guessed", f"Expected one of {', '.join(GUESSABLE)}, got {g!r}", g
                    )
                guessed.add(g)

        if "amenities" in props:
            order = {a.value: i for i, a in enumerate(Amenity)}
            props["amenities"] = sorted(set(props["amenities"]), key=order.__getitem__)
        props.setdefault("kind", Kind.station.value)

        name = props.get("name")
        if not name:
            return self.reject(
                row,
                _Problem(
                    "missing_name", "name", "the name is empty", _raw_text(self.cell(row, "name"))
                ),
            )
        for fld in _ENUMS:
            v = props.get(fld)
            if v is not None and v not in _ENUMS[fld]:
                hint = (
                    f"; recode source values with --recode {fld}:{v}=VALUE" if fld != "kind" else ""
                )
                return self.invalid(
                    row, fld, f"Expected one of {', '.join(_ENUMS[fld])}, got {v!r}{hint}", v
                )

        for when in spec.guessed_when:
            if _scalar_text(row.values.get(when.column)) in when.values:
                guessed.add(when.field)
        if guessed:
            marks: set[str] = set()
            for g in guessed:
                marks.add(g)
                if g in ("opening_hours", "opening_hours_text"):
                    marks.update(("opening_hours", "opening_hours_text"))
            present = [g for g in GUESSABLE if g in marks and g in props]
            if present:
                props["guessed"] = present

        # Id: the mapped column, else a hash of name and address. An auto-detected id
        # column may have gaps (GeoJSON features without id): those rows get a hash id.
        raw_id = _scalar_text(self.cell(row, "id")) if "id" in self.used else None
        if raw_id is not None:
            fid = spec.id_prefix + raw_id
        elif spec.mapping.get("id"):
            return self.reject(
                row,
                _Problem("missing_id", "id", "the id is empty", _raw_text(self.cell(row, "id"))),
            )
        else:
            base = _stable_id(spec.id_prefix, str(name), props.get("address"))
            self.id_counts[base] += 1
            k = self.id_counts[base]
            fid = base if k == 1 else f"{base}-{k}"

        ordered = {k: props[k] for k in KNOWN_PROPERTIES if k in props}
        return _Candidate(
            row, lon, lat, fid, ordered, f"{_raw_text(lon_raw)}, {_raw_text(lat_raw)}"
        )


def _is_empty(value: Any) -> bool:
    if isinstance(value, list | dict):
        return not value
    return _scalar_text(value) is None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    text = _scalar_text(value)
    if text is not None and re.fullmatch(r"\d+", text):
        return int(text)
    return None


def _convert_positions(cands: list[_Candidate], crs: str) -> list[_Candidate]:
    if crs == "wgs84" or not cands:
        return cands
    lon, lat = transform([c.lon for c in cands], [c.lat for c in cands], crs, "wgs84")
    for c, x, y in zip(cands, lon.tolist(), lat.tolist(), strict=True):
        c.lon = round(float(x), COORD_DECIMALS)
        c.lat = round(float(y), COORD_DECIMALS)
    return cands


def _region_checks(
    cands: list[_Candidate], rejected: list[Rejected], outliers: bool
) -> list[_Candidate]:
    if len(cands) < 3:
        return cands
    lon = np.array([c.lon for c in cands], dtype=np.float64)
    lat = np.array([c.lat for c in cands], dtype=np.float64)
    bad: dict[int, Rejected] = {}
    for j in swapped_positions(lon, lat).tolist():
        c = cands[j]
        bad[j] = Rejected(
            c.row.number,
            "lon,lat",
            "looks_swapped",
            c.raw,
            f"[{c.lon:g}, {c.lat:g}] is far from the other rows but [{c.lat:g}, {c.lon:g}] is "
            "among them: the lon and lat values look swapped",
            line=c.row.line,
        )
    if outliers:
        keep = np.array([j not in bad for j in range(len(cands))])
        if keep.sum() >= 3:
            c_lon, c_lat = float(np.median(lon[keep])), float(np.median(lat[keep]))
            d = haversine_m(lon, lat, c_lon, c_lat)
            typical = float(np.median(d[keep]))
            limit = max(OUTLIER_FACTOR * typical, OUTLIER_MIN_M)
            for j in np.flatnonzero(keep & (d > limit)).tolist():
                c = cands[j]
                bad[j] = Rejected(
                    c.row.number,
                    "lon,lat",
                    "far_outlier",
                    c.raw,
                    f"[{c.lon:g}, {c.lat:g}] is {d[j] / 1000:,.0f} km from the median position of "
                    f"the rows (typically {typical / 1000:,.0f} km): wrong coordinates?",
                    line=c.row.line,
                )
    rejected.extend(bad.values())
    return [c for j, c in enumerate(cands) if j not in bad]


def _drop_duplicate_ids(cands: list[_Candidate], rejected: list[Rejected]) -> list[_Candidate]:
    first: dict[str, int] = {}
    out: list[_Candidate] = []
    for c in cands:
        if c.fid in first:
            rejected.append(
                Rejected(
                    c.row.number,
                    "id",
                    "duplicate_id",
                    c.fid,
                    f"id {c.fid!r} was already used by row {first[c.fid]}",
                    line=c.row.line,
                )
            )
            continue
        first[c.fid] = c.row.number
        out.append(c)
    return out


def _feature(c: _Candidate) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": c.fid,
        "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
        "properties": c.props,
    }


def _validated(
    cands: list[_Candidate], rejected: list[Rejected], notes: list[Note], fmt: str
) -> list[dict[str, Any]]:
    """Validate the candidates as a registry; reject rows with errors, note warnings."""
    for _ in range(3):
        features = [_feature(c) for c in cands]
        report = validate_document({"type": "FeatureCollection", "features": features})
        bad: set[int] = set()
        for p in report.errors:
            if p.index is None:
                raise InvalidInputError("import", f"the result does not validate: {p.format()}")
            if p.index in bad:
                continue
            bad.add(p.index)
            fld = (p.field or "").removeprefix("properties.") or None
            c = cands[p.index]
            value = c.props.get(fld.split(".")[0]) if fld else None
            rejected.append(
                Rejected(
                    c.row.number,
                    fld,
                    "invalid_value",
                    None if value is None else str(value),
                    p.message,
                    line=c.row.line,
                )
            )
        if not bad:
            break
        cands = [c for j, c in enumerate(cands) if j not in bad]
    else:
        raise InvalidInputError("import", "the result does not validate after removing bad rows")
    unit = "feature" if fmt == "geojson" else "row"
    rows = [c.row.number for c in cands]
    for w in report.warnings:
        if w.index is None:
            continue
        msg = re.sub(
            r"feature (\d+) \(id '[^']*'\)", lambda m: f"{unit} {rows[int(m.group(1))]}", w.message
        )
        kind = "likely_duplicate" if "duplicate" in w.message else "source"
        notes.append(Note(rows[w.index], w.field, kind, None, msg))
    return features
