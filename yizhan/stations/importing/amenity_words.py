"""Source words for amenities (English, Chinese, Korean ...) and the amenities cell parser.

:data:`AMENITY_WORDS` is the built-in table (normalised word -> amenity);
:func:`amenity_for_word` looks one word up (with the user's ``--amenity-word``
overrides) and :func:`parse_amenity_cell` splits a cell into amenities and unknown words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from yizhan.stations.importing.values import scalar_text
from yizhan.stations.vocab import Amenity

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
AMENITY_SPLIT: Final = re.compile(r"[;,、|:，；：]+")


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


def parse_amenity_cell(
    value: Any, overrides: Mapping[str, str | None]
) -> tuple[list[str], list[str]]:
    """Amenities and unknown words of one cell (a list from GeoJSON or a text)."""
    if isinstance(value, list):
        chunks = [str(v) for v in value if v is not None]
    else:
        text = scalar_text(value)
        if text is None:
            return [], []
        chunks = AMENITY_SPLIT.split(text)
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
