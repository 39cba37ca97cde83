"""Chinese and English labels for every piece of text the maps show.

Every label, legend entry, layer name and popup field goes through :func:`label`, so a
map is entirely in one language. Vocabulary values (categories, amenities, statuses)
have an entry for each member of their enum; a test checks that none is missing.
"""

from __future__ import annotations

from typing import Final, Literal

from yizhan.errors import InvalidInputError
from yizhan.stations.vocab import Amenity, Category, Status

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")

#: Interface text: key -> (zh, en).
LABELS: Final[dict[str, tuple[str, str]]] = {
    # titles
    "planner_title": ("驿站规划图", "Yizhan planner map"),
    "worker_title": ("附近驿站", "Stations near you"),
    # layer names
    "layer_stations": ("驿站", "Stations"),
    "layer_coverage": ("服务范围（{radius}）", "Coverage ({radius})"),
    "layer_uncovered": ("未覆盖需求（热力）", "Uncovered demand (heat)"),
    "layer_gaps": ("覆盖空白区", "Coverage gaps"),
    "layer_sites": ("建议新址", "Suggested sites"),
    "layer_proposals": (
        "工人建议的驿站（待审核）{n}",
        "Stations suggested by workers (pending){n}",
    ),
    "layer_districts": ("各区覆盖率", "District coverage share"),
    "layer_buses": ("流动清凉车", "Cooling buses"),
    "layer_nearest": ("最近的驿站", "Nearest stations"),
    "layer_lines": ("直线距离", "Straight-line distance"),
    "layer_you": ("您的位置", "Your position"),
    "layer_needs_check": ("待核查（{n}）", "Needs checking ({n})"),
    "layer_stale": ("仅{stale}的驿站（{n}）", "Only stations {stale} ({n})"),
    # legend
    "legend": ("图例", "Legend"),
    "legend_not_operational": ("空心：暂停／规划中／已撤除", "Hollow: closed, planned or removed"),
    "legend_cluster": ("数字：聚合的驿站数", "Number: stations clustered together"),
    "legend_coverage": ("圆：服务半径", "Circle: service radius"),
    "legend_walk": (
        "步行 {minutes} 分钟内（{speed} 公里/小时，路网 {network}）",
        "Within {minutes} min on foot ({speed} km/h, network {network})",
    ),
    "legend_heat": ("颜色越暖，未覆盖需求越多", "Warmer = more uncovered demand"),
    "legend_gap": ("覆盖空白区", "Coverage gap"),
    "legend_site": ("建议新址（数字为排名）", "Suggested site (number = rank)"),
    "legend_proposal": ("工人建议、待审核", "Suggested by a worker, pending"),
    "legend_district": ("覆盖率", "Coverage share"),
    "legend_bus": ("清凉车（随时间滑块移动）", "Cooling bus (moves with the time slider)"),
    "legend_bus_stop": ("清凉车停靠点", "Cooling-bus stop"),
    "legend_you": ("您的位置", "Your position"),
    "legend_line": ("直线距离（非步行路线）", "Straight line (not a walking route)"),
    "legend_stale": ("灰色：{stale}", "Grey: {stale}"),
    "legend_needs_check": (
        "红圈：待核查（多位工友反映问题）",
        "Red ring: needs checking (several workers reported a problem)",
    ),
    # popup fields
    "f_name": ("名称", "Name"),
    "f_id": ("编号", "ID"),
    "f_category": ("类型", "Category"),
    "f_status": ("状态", "Status"),
    "f_hours": ("开放时间", "Opening hours"),
    "f_open_now": ("现在", "Now"),
    "f_amenities": ("设施", "Amenities"),
    "f_operator": ("运营方", "Operator"),
    "f_district": ("区县", "District"),
    "f_address": ("地址", "Address"),
    "f_last_verified": ("最近核实", "Last verified"),
    "f_distance": ("距离", "Distance"),
    "f_rank": ("排名", "Rank"),
    "f_suggested_at": ("建议时间", "Suggested"),
    "f_gain": ("新增覆盖需求", "Demand gained"),
    "f_covered_after": ("新增后覆盖需求", "Covered after adding"),
    "f_share": ("覆盖率", "Coverage share"),
    "f_demand": ("需求", "Demand"),
    "f_covered": ("已覆盖需求", "Covered demand"),
    "f_area": ("面积", "Area"),
    "f_bus": ("清凉车", "Cooling bus"),
    "f_plate": ("车牌", "Plate"),
    "f_stop": ("停靠点", "Stop"),
    # values
    "open": ("开放中", "Open"),
    "closed": ("已关闭", "Closed"),
    "unknown": ("未知", "Unknown"),
    "none": ("无", "none"),
    "guessed": ("推测", "guessed"),
    "gap": ("覆盖空白区", "Coverage gap"),
    "site": ("建议新址", "Suggested site"),
    "proposal": ("工人建议的驿站", "Station suggested by a worker"),
    "uncategorised": ("未分类", "Uncategorised"),
    "stale_days": ("未核实 {days} 天以上", "not verified for {days}+ days"),
    "stale_recently": ("长期未核实", "not verified recently"),
    "never_verified": ("从未核实", "Never verified"),
    "last_verified_on": ("最近核实 {date}", "Last verified {date}"),
    "may_be_outdated": ("信息可能过时", "details may be out of date"),
    "needs_check": ("待核查", "Needs checking"),
    "needs_check_reasons": ("多位工友反映：{reasons}", "Several workers reported: {reasons}"),
    "needs_check_plain": ("多位工友反映有问题", "Several workers reported a problem"),
    # controls
    "search_placeholder": ("搜索驿站名称…", "Search station name…"),
    "search_none": ("未找到", "No match"),
    "search_title": ("按名称搜索驿站", "Search stations by name"),
    "fullscreen": ("全屏", "Full screen"),
    "fullscreen_exit": ("退出全屏", "Exit full screen"),
    "locate": ("显示我的位置", "Show my location"),
    "locate_popup": (
        "您在此点 {distance} {unit} 范围内",
        "You are within {distance} {unit} of this point",
    ),
    "locate_outside": ("您似乎不在地图范围内", "You seem to be outside the map"),
    "time": ("时间", "Time"),
    "play": ("播放", "Play"),
    "pause": ("暂停", "Pause"),
    "buses_in_service": ("在岗清凉车", "Buses in service"),
    "timeline_date": ("日期", "Date"),
    "straight_line_note": (
        "直线距离，实际步行路程更长",
        "Straight-line distance; the walk is longer",
    ),
    "rank_n": ("第 {n} 近", "#{n} nearest"),
    # base maps
    "base_osm": ("OpenStreetMap 开放街图", "OpenStreetMap"),
    "base_amap": ("高德地图（GCJ-02）", "Amap (GCJ-02)"),
    "base_tianditu": ("天地图", "Tianditu"),
    "base_custom": ("底图", "Base map"),
    # headline (yizhan.maps.headline)
    "hl_share": ("{radius}内覆盖 {pct}", "Covered within {radius}: {pct}"),
    "hl_reach": (
        "{covered} / {total} {unit}在服务范围内",
        "{covered} of {total} {unit} within reach",
    ),
    "hl_stations": ("计入 {n} 个驿站", "{n} stations counted"),
    "hl_radius": ("半径 {radius}", "radius {radius}"),
    "hl_walk": (
        "步行 {minutes} 分钟（{speed} 公里/小时，路网 {network}）",
        "{minutes} min on foot ({speed} km/h, network {network})",
    ),
    "hl_circles": ("对比：{radius}圆形范围内 {pct}", "for comparison, {radius} circles: {pct}"),
    "hl_as_of": ("截至 {time}", "as of {time}"),
    "hl_open_at": ("{time} 开放的驿站", "stations open at {time}"),
    "hl_demand": ("需求：{what}", "Demand: {what}"),
    "hl_stations_only": (
        "仅显示驿站：{n} 个驿站，未设置需求数据",
        "Stations only: {n} stations, no demand set",
    ),
    "hl_add_demand": ("添加需求：{how}", "To add demand: {how}"),
    # district table
    "tbl_title": ("各区覆盖（{n}）", "Districts ({n})"),
    "tbl_district": ("区县", "District"),
    "tbl_demand": ("需求", "Demand"),
    "tbl_share": ("覆盖率", "Covered"),
    "tbl_uncovered": ("未覆盖", "Uncovered"),
    "tbl_stations": ("驿站", "Stations"),
    "tbl_unit": ("单位：{unit}", "Unit: {unit}"),
    "tbl_hint": ("点表头排序，点行定位", "Click a heading to sort, a row to zoom"),
    "search_bus": ("清凉车", "cooling bus"),
    "bus_not_now": ("此时不在岗：显示其停靠点", "Not in service at this time: its stops are shown"),
}

CATEGORY_LABELS: Final[dict[str, tuple[str, str]]] = {
    Category.union_station.value: ("工会驿站", "Union station"),
    Category.bank_outlet.value: ("银行网点", "Bank outlet"),
    Category.cooling_center.value: ("避暑纳凉点", "Cooling centre"),
    Category.hydration_point.value: ("饮水点", "Hydration point"),
    Category.smart_station.value: ("智慧驿站", "Smart station"),
    Category.other.value: ("其他", "Other"),
}

STATUS_LABELS: Final[dict[str, tuple[str, str]]] = {
    Status.operational.value: ("运营中", "Operational"),
    Status.temporarily_closed.value: ("暂停服务", "Temporarily closed"),
    Status.planned.value: ("规划中", "Planned"),
    Status.removed.value: ("已撤除", "Removed"),
}

AMENITY_LABELS: Final[dict[str, tuple[str, str]]] = {
    Amenity.drinking_water.value: ("饮用水", "drinking water"),
    Amenity.toilet.value: ("卫生间", "toilet"),
    Amenity.seating.value: ("座椅", "seating"),
    Amenity.air_conditioning.value: ("空调", "air conditioning"),
    Amenity.heating.value: ("取暖", "heating"),
    Amenity.microwave.value: ("微波炉", "microwave"),
    Amenity.hot_meals.value: ("热餐", "hot meals"),
    Amenity.phone_charging.value: ("手机充电", "phone charging"),
    Amenity.ebike_charging.value: ("电动车充电", "e-bike charging"),
    Amenity.wifi.value: ("无线网络", "Wi-Fi"),
    Amenity.first_aid.value: ("急救包", "first aid"),
    Amenity.heatstroke_medicine.value: ("防暑药品", "heatstroke medicine"),
    Amenity.aed.value: ("AED 除颤器", "AED defibrillator"),
    Amenity.nursing_room.value: ("母婴室", "nursing room"),
    Amenity.child_care.value: ("儿童托管", "child care"),
    Amenity.shower.value: ("淋浴", "shower"),
    Amenity.lockers.value: ("储物柜", "lockers"),
    Amenity.rain_gear.value: ("雨具", "rain gear"),
    Amenity.repair_tools.value: ("维修工具", "repair tools"),
    Amenity.wheelchair_accessible.value: ("无障碍", "wheelchair accessible"),
    Amenity.truck_parking.value: ("货车停车", "truck parking"),
    Amenity.ebike_parking.value: ("电动车停放", "e-bike parking"),
    Amenity.reading.value: ("阅读", "reading"),
}

#: Problems workers report (``yizhan.stations.reports.PROBLEM_CODES``), as in the pages.
PROBLEM_LABELS: Final[dict[str, tuple[str, str]]] = {
    "closed": ("关门了", "closed"),
    "no_water": ("没有水", "no water"),
    "toilet_unusable": ("厕所不能用", "toilet unusable"),
    "too_crowded": ("人太多", "too crowded"),
    "moved": ("不在这里（已搬走）", "not here / moved"),
    "wrong_info": ("信息有误", "wrong information"),
}

#: Eight compass points, clockwise from north.
COMPASS: Final[tuple[tuple[str, str], ...]] = (
    ("北", "N"),
    ("东北", "NE"),
    ("东", "E"),
    ("东南", "SE"),
    ("南", "S"),
    ("西南", "SW"),
    ("西", "W"),
    ("西北", "NW"),
)


def check_lang(lang: object) -> Lang:
    """Return *lang* if it is a supported language code.

    Parameters
    ----------
    lang : object
        The value passed by the caller.

    Returns
    -------
    {"zh", "en"}
        The same value, typed.

    Raises
    ------
    InvalidInputError
        ``lang: Expected one of zh, en, got 'fr'``.
    """
    if lang == "zh":
        return "zh"
    if lang == "en":
        return "en"
    raise InvalidInputError("lang", f"Expected one of {', '.join(LANGS)}, got {lang!r}")


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "zh" else pair[1]


def label(key: str, lang: Lang, **fmt: object) -> str:
    """The interface text *key* in *lang*, formatted with *fmt*.

    Parameters
    ----------
    key : str
        A key of :data:`LABELS`.
    lang : {"zh", "en"}
        Language.
    **fmt
        Values for ``{placeholders}`` in the text.

    Returns
    -------
    str
        The text.
    """
    text = _pick(LABELS[key], lang)
    return text.format(**fmt) if fmt else text


def category_label(code: str | None, lang: Lang) -> str:
    """Display name of a station category (``None`` means uncategorised)."""
    if code is None or code not in CATEGORY_LABELS:
        return label("uncategorised", lang)
    return _pick(CATEGORY_LABELS[code], lang)


def status_label(code: str, lang: Lang) -> str:
    """Display name of a station status."""
    return _pick(STATUS_LABELS[code], lang)


def amenity_label(code: str, lang: Lang) -> str:
    """Display name of an amenity."""
    return _pick(AMENITY_LABELS[code], lang)


def problem_label(code: str, lang: Lang) -> str:
    """Display name of a reported problem (an unknown code is shown as it is)."""
    pair = PROBLEM_LABELS.get(code)
    return _pick(pair, lang) if pair else code


def stale_text(stale_after_days: int | None, lang: Lang) -> str:
    """What "stale" means, in lower case: ``"not verified for 180+ days"``.

    Raises
    ------
    InvalidInputError
        *stale_after_days* is not a positive integer.
    """
    if stale_after_days is not None and (
        isinstance(stale_after_days, bool)
        or not isinstance(stale_after_days, int)
        or stale_after_days <= 0
    ):
        raise InvalidInputError(
            "stale_after_days", f"Expected a positive number of days, got {stale_after_days!r}"
        )
    if stale_after_days is None:
        return label("stale_recently", lang)
    return label("stale_days", lang, days=stale_after_days)


def paren(text: str, lang: Lang) -> str:
    """*text* in parentheses: full-width in Chinese, `` (text)`` in English."""
    return f"（{text}）" if lang == "zh" else f" ({text})"


def capitalize(text: str) -> str:
    """*text* with its first letter in upper case (Chinese is unchanged)."""
    return text[:1].upper() + text[1:]


def compass_point(bearing_deg: float, lang: Lang) -> str:
    """The nearest of eight compass points for a bearing (degrees clockwise from north)."""
    return _pick(COMPASS[round((bearing_deg % 360.0) / 45.0) % 8], lang)


def format_distance(metres: float, lang: Lang) -> str:
    """A distance for people: ``"350 m"`` below 1 km, ``"1.2 km"`` above (``"350 米"`` in Chinese)."""
    if metres < 1000:
        # Round to 10 m: positions are not more precise than that.
        value = f"{round(metres / 10.0) * 10:.0f}"
        return f"{value} 米" if lang == "zh" else f"{value} m"
    value = f"{metres / 1000.0:.1f}" if metres < 10_000 else f"{metres / 1000.0:.0f}"
    return f"{value} 公里" if lang == "zh" else f"{value} km"


def js_labels(lang: Lang) -> dict[str, object]:
    """Every label in *lang*, in the shape the map's JavaScript reads."""
    return {
        "lang": lang,
        "text": {k: _pick(v, lang) for k, v in LABELS.items()},
        "categories": {k: _pick(v, lang) for k, v in CATEGORY_LABELS.items()},
        "statuses": {k: _pick(v, lang) for k, v in STATUS_LABELS.items()},
        "amenities": {k: _pick(v, lang) for k, v in AMENITY_LABELS.items()},
        "problems": {k: _pick(v, lang) for k, v in PROBLEM_LABELS.items()},
    }
