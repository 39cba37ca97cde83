"""Cell values as the importer reads them: text, numbers, dates, flags, positions, ids.

A cell may come from CSV (text), XLSX (numbers, dates, times) or JSON (any JSON value);
:func:`scalar_text` turns each into stripped text or ``None`` for the usual "no value"
tokens (``""``, ``null``, ``-``, ``无`` ...). The rest parse what one field needs:
coordinates (:func:`check_position`, :func:`geometry_position`), yes/no flags
(:func:`parse_flag`), whole numbers (:func:`as_int`), whether a value fits an enum,
number or date field (:func:`fits`), masked phone numbers and the stable id of a row
without one (:func:`stable_id`).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from yizhan.stations.importing.report import Problem
from yizhan.stations.validate import normalize_name
from yizhan.stations.vocab import Category, CoordOrigin, Kind, Status

_NULL_TOKENS: Final = frozenset(
    {"", "null", "none", "nan", "n/a", "#n/a", "-", "--", "—", "/", "无", "暂无"}
)
_TRUE_FLAGS: Final = frozenset(
    {"1", "true", "yes", "y", "t", "是", "有", "✓", "√", "o", "예", "si", "sí", "oui"}
)
_FALSE_FLAGS: Final = frozenset(
    {"0", "false", "no", "n", "f", "否", "无", "没有", "✗", "×", "x", "아니오", "non"}
)

#: Fields whose values come from a vocabulary: field -> allowed values.
ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "kind": tuple(k.value for k in Kind),
    "category": tuple(c.value for c in Category),
    "status": tuple(s.value for s in Status),
    "coord_origin": tuple(c.value for c in CoordOrigin),
}
#: Fields imported as one line of text.
TEXT_FIELDS: Final = frozenset(
    {
        "name",
        "name_en",
        "operator",
        "network",
        "address",
        "district",
        "source",
        "status_reason",
        "last_verified_by",
        "timezone",
    }
)
#: Fields holding a date or a date-time.
DATE_FIELDS: Final = frozenset({"last_verified_at", "created_at", "updated_at"})
_DATE_ADAPTER: Final = TypeAdapter(date | datetime)

#: A run of whitespace (collapsed to one space in text cells).
WHITESPACE: Final = re.compile(r"\s+")


def scalar_text(value: Any, collapse: bool = True) -> str | None:
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
        s = WHITESPACE.sub(" ", s)
    return None if s.casefold() in _NULL_TOKENS else s


def raw_text(value: Any) -> str:
    """A cell as the source wrote it, for messages (``""`` when empty)."""
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


def check_position(lon_raw: Any, lat_raw: Any) -> tuple[float, float] | Problem:
    """``(lon, lat)`` as numbers, or why they are not a usable position."""
    lon, r_lon = _parse_coord(lon_raw)
    lat, r_lat = _parse_coord(lat_raw)

    def shown(v: Any) -> str:
        return repr(v) if isinstance(v, str) else str(v)

    if r_lon or r_lat:
        if r_lon and r_lat == r_lon:
            both = _COORD_MESSAGES[r_lon][1]
            return Problem(
                r_lon,
                "lon,lat",
                f"lon {shown(lon_raw)} and lat {shown(lat_raw)} {both}",
                f"{raw_text(lon_raw)}, {raw_text(lat_raw)}",
            )
        if r_lon:
            one = _COORD_MESSAGES[r_lon][0]
            return Problem(r_lon, "lon", f"lon {shown(lon_raw)} {one}", raw_text(lon_raw))
        assert r_lat is not None
        one = _COORD_MESSAGES[r_lat][0]
        return Problem(r_lat, "lat", f"lat {shown(lat_raw)} {one}", raw_text(lat_raw))
    assert lon is not None and lat is not None
    value = f"{raw_text(lon_raw)}, {raw_text(lat_raw)}"
    if lon == 0.0 and lat == 0.0:
        return Problem(
            "null_island", "lon,lat", "lon and lat are both 0: a placeholder, not a position", value
        )
    lon_ok = -180.0 <= lon <= 180.0
    lat_ok = -90.0 <= lat <= 90.0
    if not lat_ok and lon_ok and -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0:
        return Problem(
            "looks_swapped",
            "lon,lat",
            f"lat {lat:g} is out of range but [lon, lat] = [{lat:g}, {lon:g}] is valid: "
            "the lon and lat columns look swapped",
            value,
        )
    if not lon_ok:
        return Problem(
            "out_of_range", "lon", f"lon {lon:g} is outside -180..180", raw_text(lon_raw)
        )
    if not lat_ok:
        return Problem("out_of_range", "lat", f"lat {lat:g} is outside -90..90", raw_text(lat_raw))
    return lon, lat


def geometry_position(geom: Any) -> tuple[Any, Any] | Problem:
    """The raw ``(lon, lat)`` of a GeoJSON geometry, or why it has none."""
    if geom is None:
        return Problem("missing_coordinate", "geometry", "the feature has no geometry", "null")
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
        return Problem("not_a_point", "geometry", f"Expected a Point geometry, got {t!r}", str(t))
    c = geom.get("coordinates")
    if not isinstance(c, list) or len(c) < 2:
        return Problem(
            "missing_coordinate", "geometry", f"Expected coordinates [lon, lat], got {c!r}", str(c)
        )
    return c[0], c[1]


def parse_flag(value: Any) -> bool | None:
    """A yes/no cell (``1``/``0``, ``是``/``否``, ``예`` ...): empty is ``False``, ``None`` neither."""
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


def is_masked_phone(text: str) -> bool:
    """Whether a phone number is masked with ``*`` (or a look-alike)."""
    return any(ch in text for ch in "*＊●")


def stable_id(prefix: str, name: str, address: str | None) -> str:
    """*prefix* and 10 hex digits of a hash of the normalised name and address."""
    key = f"{normalize_name(name)}\x1f{normalize_name(address or '')}"
    return prefix + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


def is_empty(value: Any) -> bool:
    """Whether a cell holds no value (an empty list or object, or no text)."""
    if isinstance(value, list | dict):
        return not value
    return scalar_text(value) is None


def as_int(value: Any) -> int | None:
    """A whole number >= 0 from a cell, ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    text = scalar_text(value)
    if text is not None and re.fullmatch(r"\d+", text):
        return int(text)
    return None


def fits(fld: str, value: Any, recode: Mapping[str, str]) -> bool:
    """Whether a non-empty cell is acceptable for an enum, number or date field."""
    if fld in ENUMS:
        text = scalar_text(value)
        return text is None or recode.get(text, text) in ENUMS[fld]
    if fld == "capacity":
        return as_int(value) is not None
    if fld in DATE_FIELDS:
        if isinstance(value, date):
            return True
        try:
            _DATE_ADAPTER.validate_python(scalar_text(value))
        except ValidationError:
            return False
        return True
    return True
