"""What a column's name says: field synonyms, coordinate qualifiers and CRS hints.

Header names are compared after normalising (NFKC, case-folded, without bracketed
parts, spaces, ``_``, ``-``, ``.``, ``/``, ``:``) against :data:`SYNONYMS` in English,
Chinese and Korean; :func:`match_level` says how well a column name matches a field and
:func:`crs_hint` which coordinate system a name such as ``lng_gcj02`` announces.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# fmt: off
#: Column auto-detection: field -> column names that hold it. Header names are compared
#: after _header_key (NFKC, case-folded, without bracketed parts, spaces, "_", "-", ".",
#: "/", ":").
SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
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


def _header_key(name: str) -> str:
    s = unicodedata.normalize("NFKC", name).casefold().strip()
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}", "", s)
    return re.sub(r"[\s_\-./:]+", "", s)


def _header_tokens(name: str) -> list[str]:
    s = unicodedata.normalize("NFKC", name).casefold()
    return [t for t in re.split(r"[\s_\-./:()\[\]{},]+", s) if t]


def crs_hint(name: str) -> str | None:
    """The coordinate system a column name announces (``lng_gcj02`` -> ``gcj02``), or ``None``."""
    s = re.sub(r"[\s_\-./:()\[\]{}]+", "", unicodedata.normalize("NFKC", name).casefold())
    for crs, words in _CRS_HINTS:
        if any(w in s for w in words):
            return crs
    return None


_SYNONYM_KEYS: Final = {f: {_header_key(w) for w in words} for f, words in SYNONYMS.items()}
_LONLAT_TOKENS: Final = {f: {_header_key(w) for w in SYNONYMS[f]} for f in ("lon", "lat")}


def match_level(fld: str, column: str) -> int:
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
