"""Chinese and English text of the workers' pages (``/find``, ``/s/{id}``, posters).

Vocabulary values (amenities, categories, statuses) reuse :mod:`yizhan.maps.i18n`, so a
station's amenities read the same on the map, the page and the poster. Report codes
are those of :data:`yizhan.stations.reports.REPORT_CODES` (in the order shown); their
texts have their own table here and the six hardship filters (``HARDSHIPS``) come from
:mod:`yizhan.stations.vocab`; a test checks both languages are present for every key.
"""

from __future__ import annotations

from typing import Final

from yizhan.maps.i18n import Lang, check_lang
from yizhan.stations.reports import REPORT_CODES
from yizhan.stations.vocab import HARDSHIPS  # the filter chips (scores use them too)

__all__ = ["CHIPS", "HARDSHIPS", "REPORT_CODES", "TEXT", "pick_lang", "t"]

#: Every filter chip of the find page: the six hardships, then step-free access.
CHIPS: Final[dict[str, tuple[str, ...]]] = {
    **HARDSHIPS,
    "wheelchair": ("wheelchair_accessible",),
}

#: key -> (zh, en).
TEXT: Final[dict[str, tuple[str, str]]] = {
    "app": ("驿站", "Yizhan"),
    "find_title": (
        "找驿站：喝水、如厕、歇脚、纳凉",
        "Find a station: water, toilet, rest, cool air",
    ),
    "find_heading": ("附近的驿站", "Stations near you"),
    "switch_lang": ("English", "中文"),
    "locating": ("正在获取您的位置…", "Finding your location…"),
    "locate_again": ("重新定位", "Locate me again"),
    "locate_failed": (
        "无法获取您的位置。请在地图上点选，或选择所在区域。",
        "Your location is not available. Tap a point on the map or pick a district.",
    ),
    "locate_unsupported": (
        "此浏览器不能定位。请在地图上点选，或选择所在区域。",
        "This browser cannot locate you. Tap a point on the map or pick a district.",
    ),
    "pick_on_map": ("在地图上选点", "Pick a point on the map"),
    "map_tap_hint": ("点击地图选择您的位置", "Tap the map where you are"),
    "map_failed": (
        "地图加载失败；请选择区域。",
        "The map could not be loaded; pick a district instead.",
    ),
    "hide_map": ("收起地图", "Hide the map"),
    "pick_district": ("选择区域", "Pick a district"),
    "district": ("区域", "District"),
    "go": ("查看", "Show"),
    "from_gps": ("距您的位置", "Distances from your location"),
    "from_map": ("距地图上选的点", "Distances from the point you picked"),
    "from_district": ("距{district}中心", "Distances from the centre of {district}"),
    "from_point": ("距所选位置", "Distances from the chosen point"),
    "filters": ("筛选", "Filters"),
    "open_now": ("现在开放", "Open now"),
    "h_water": ("喝水", "Water"),
    "h_toilet": ("厕所", "Toilet"),
    "h_rest": ("歇脚", "Rest"),
    "h_cooling": ("纳凉", "Cooling"),
    "h_charging": ("充电", "Charging"),
    "h_food": ("吃饭", "Food"),
    "h_wheelchair": ("无障碍", "Wheelchair"),
    "no_results": (
        "附近没有符合条件的驿站。",
        "No station nearby matches these filters.",
    ),
    "no_results_hint": (
        "试试取消部分筛选，或关闭“现在开放”。",
        "Try fewer filters, or turn off “Open now”.",
    ),
    "updated": ("更新于 {time}", "As of {time}"),
    "walk_min": ("步行约 {n} 分钟", "about {n} min on foot"),
    "busy_busier_than_usual": (
        "现在比平时忙：过去一小时 {n} 人打卡",
        "Busier than usual now: {n} check-ins in the last hour",
    ),
    "busy_quieter_than_usual": (
        "现在比平时空：过去一小时 {n} 人打卡",
        "Quieter than usual now: {n} check-ins in the last hour",
    ),
    "busy_as_usual": (
        "现在和平时差不多：过去一小时 {n} 人打卡",
        "About as busy as usual: {n} check-ins in the last hour",
    ),
    "busy_unknown": ("过去一小时 {n} 人打卡", "{n} check-ins in the last hour"),
    "toward": ("在{dir}方", "to the {dir}"),
    "walk_note": (
        "直线距离；步行时间按直线距离 ×1.3、每分钟 75 米估算。",
        "Straight-line distance; walking time assumes 1.3 × that at 75 m a minute.",
    ),
    "bus": ("清凉公交", "Cooling bus"),
    "station": ("驿站", "Station"),
    # hours
    "closes_in": ("{n} 分钟后关门", "closes in {n} min"),
    "open_until": ("开放至 {time}", "open until {time}"),
    "open_always": ("全天开放", "open all day"),
    "opens_at": ("{time} 开门", "opens at {time}"),
    "opens_in": ("{n} 分钟后开门", "opens in {n} min"),
    "closed_now": ("已关门", "closed"),
    "hours_unknown": ("开放时间未知", "hours unknown"),
    "tomorrow": ("明天 {time}", "tomorrow {time}"),
    "bus_leaves_in": ("{n} 分钟后离开", "leaves in {n} min"),
    "bus_here_until": ("停靠至 {time}", "here until {time}"),
    "bus_at": ("停在：{place}", "Standing at: {place}"),
    "bus_not_in_service": ("现在不在服务", "Not in service now"),
    "bus_next": ("下一站：{place}，{time} 起", "Next: {place}, from {time}"),
    "bus_no_next": ("今明两天没有更多停靠", "No more stops today or tomorrow"),
    "bus_schedule": ("停靠时间表", "Schedule"),
    "guessed_note": ("（推测）", " (guessed)"),
    "amenities_guessed": ("以上设施为推测，未经核实", "Amenities guessed, not verified"),
    # freshness
    "verified_on": ("{date} 现场核实", "Checked on site {date}"),
    "not_verified": ("核实日期不详", "No on-site check recorded"),
    "stale": ("信息可能过时", "Information may be out of date"),
    "needs_check": ("多位工友反映问题：{reasons}", "Several workers reported: {reasons}"),
    "needs_check_plain": ("多位工友反映有问题，请先确认", "Several workers reported a problem"),
    # directions
    "directions": ("导航", "Directions"),
    "amap_walk": ("高德 步行", "Amap: walk"),
    "amap_ride": ("高德 骑行", "Amap: ride"),
    "baidu": ("百度地图", "Baidu Maps"),
    "osm": ("OSM 地图", "OSM map"),
    "details": ("详情", "Details"),
    "call": ("打电话", "Call"),
    "call_n": ("打电话 {phone}", "Call {phone}"),
    # what "open now" left out
    "left_out_heading": ("更近、但现在没开的地方", "Closer, but not open now"),
    "left_out_heading_none": ("附近现在没开的地方", "Nearby, but not open now"),
    "left_out_unknown_call": ("开放时间未知，请先打电话", "hours unknown — call first"),
    "left_out_unknown": ("开放时间未知，去之前请先确认", "hours unknown — check before you go"),
    "left_out_source": ("来源写的是：{text}", "The source says: {text}"),
    "left_out_more": (
        "还有 {n} 处更近的地方现在没开。",
        "{n} more closer places are not open now.",
    ),
    "left_out_show_all": ("显示全部（包括没开的）", "Show all, open or not"),
    # shared notes, said once for the whole list
    "shared_notes": ("以下各处：{notes}", "Every place below: {notes}"),
    "n_hours_guessed": ("开放时间为推测", "hours guessed"),
    "n_amenities_guessed": ("设施为推测", "amenities guessed"),
    "n_not_verified": ("未经现场核实", "not checked on site"),
    "n_stale": ("信息可能过时", "may be out of date"),
    # far from every station
    "far_title": ("您附近没有驿站", "No station in your area"),
    "far_text": (
        "{radius} 以内没有驿站。名录里最近的一处在 {distance} 外。",
        "There is no station within {radius}. The nearest one Yizhan knows is {distance} away.",
    ),
    "far_empty": ("名录里还没有驿站。", "The registry has no station yet."),
    "suggest_link": ("推荐一个地方", "Suggest a place"),
    "suggest_hint": (
        "知道附近哪里能喝水、歇脚？告诉我们。",
        "Know a place nearby with water or a rest? Tell us.",
    ),
    # the map of the results
    "show_map": ("在地图上看", "Show on a map"),
    "map_offline": (
        "地图底图加载不了；显示的是驿站自己的区界和站点。",
        "Map tiles cannot load; the outlines and dots are Yizhan's own data.",
    ),
    "you_are_here": ("您的位置", "You are here"),
    # offline
    "offline_as_of": (
        "没有网络：显示的是 {time} 保存的结果。信号恢复后会自动刷新。",
        "No connection: these are the results saved at {time}. They refresh when the signal returns.",
    ),
    "offline_elsewhere": (
        "（这是您之前位置的结果）",
        "(for where you were then)",
    ),
    "offline_page": ("没有网络", "No connection"),
    "offline_text": (
        "这一页还没保存过。信号恢复后再试。",
        "This page was not saved yet. Try again when the signal returns.",
    ),
    "offline_last": ("查看上次的结果", "See the last results"),
    "retrying": ("正在重试…", "Retrying…"),
    # station page
    "station_title": ("{name} - 驿站", "{name} - Yizhan"),
    "back_to_list": ("返回附近驿站", "Back to nearby stations"),
    "f_hours": ("开放时间", "Opening hours"),
    "f_amenities": ("提供", "Offers"),
    "f_address": ("地址", "Address"),
    "f_district": ("区域", "District"),
    "f_phone": ("电话", "Phone"),
    "f_operator": ("运营方", "Operator"),
    "f_status": ("状态", "Status"),
    "f_category": ("类型", "Category"),
    "f_plate": ("车牌", "Plate"),
    "f_capacity": ("可容纳", "Capacity"),
    "f_distance": ("距离", "Distance"),
    "f_now": ("现在", "Now"),
    "f_freshness": ("信息核实", "Verified"),
    "capacity_n": ("{n} 人", "{n} people"),
    "none": ("无", "none"),
    "poster_link": ("打印海报", "Print a poster"),
    "not_found_title": ("找不到这个驿站", "Station not found"),
    "not_found_text": (
        "这个驿站已不在名录中，可能已撤除。",
        "This station is no longer in the registry; it may have been removed.",
    ),
    "find_other": ("找附近的其他驿站", "Find another station nearby"),
    # reports
    "report_heading": ("反馈问题", "Report a problem"),
    "report_hint": (
        "您到了这里？告诉我们现场情况，帮助其他工友。",
        "Are you here? Tell us how it is, to help other workers.",
    ),
    "report_comment": ("补充说明（可不填）", "Comment (optional)"),
    "report_thanks": ("谢谢！您的反馈已收到。", "Thank you! Your report was received."),
    "report_rate_limited": (
        "反馈太频繁，请稍后再试。",
        "Too many reports; please try again later.",
    ),
    "report_error": ("提交失败，请稍后再试。", "Could not send; please try again later."),
    "report_offline": ("网络不通，请稍后再试。", "No connection; please try again later."),
    "report_sending": ("正在提交…", "Sending…"),
    "r_closed": ("关门了", "Closed"),
    "r_no_water": ("没有水", "No water"),
    "r_toilet_unusable": ("厕所不能用", "Toilet unusable"),
    "r_too_crowded": ("人太多", "Too crowded"),
    "r_moved": ("不在这里", "Not here / moved"),
    "r_wrong_info": ("信息有误", "Wrong information"),
    "r_all_good": ("一切正常", "All good"),
    # poster
    "poster_title": ("{name} - 海报", "{name} - poster"),
    "poster_kicker": ("户外劳动者驿站", "Outdoor workers' station"),
    "poster_kicker_bus": ("清凉公交", "Cooling bus"),
    "poster_welcome": (
        "户外劳动者，欢迎进来歇歇脚",
        "Outdoor workers: come in and take a break",
    ),
    "poster_scan": (
        "扫码查看开放时间、导航，反馈问题",
        "Scan for opening hours, directions and to report a problem",
    ),
    "poster_print": ("打印（A4）", "Print (A4)"),
    "poster_hours_unknown": ("开放时间请扫码查看", "Scan the code for opening hours"),
    "poster_no_public_url": (
        "注意：服务器没有设置公网地址（YIZHAN_PUBLIC_URL），二维码指向本机地址 {url}，"
        "工友的手机多半打不开。请设置 YIZHAN_PUBLIC_URL 后再打印。",
        "Warning: the server has no public address (YIZHAN_PUBLIC_URL), so the QR code opens "
        "the local address {url}, which workers' phones probably cannot reach. Set "
        "YIZHAN_PUBLIC_URL before printing.",
    ),
    "poster_local_label": (
        "（本机地址，仅供测试：未设置 YIZHAN_PUBLIC_URL）",
        "(local address, for testing only: YIZHAN_PUBLIC_URL is not set)",
    ),
    # suggest a place
    "suggest_title": ("推荐一个地方 - 驿站", "Suggest a place - Yizhan"),
    "suggest_heading": ("推荐一个地方", "Suggest a place"),
    "suggest_intro": (
        "知道哪里能喝水、上厕所、歇脚或纳凉，但名录里没有？告诉我们。管理员核实后会加进名录。",
        "Know a place with water, a toilet, a rest or cool air that is not listed? Tell us. "
        "An administrator checks it before it is listed.",
    ),
    "suggest_name": ("名称", "Name"),
    "suggest_offers": ("提供什么", "What it offers"),
    "suggest_hours": ("开放时间（可不填）", "Opening hours (optional)"),
    "suggest_hours_hint": ("例如：周一至周五 9:00-17:00", "e.g. Mon-Fri 9:00-17:00"),
    "suggest_where": ("在哪里", "Where it is"),
    "suggest_use_gps": ("用我现在的位置", "Use my position"),
    "suggest_pick_map": ("在地图上点选", "Tap it on a map"),
    "suggest_comment": ("补充说明（可不填）", "Anything else (optional)"),
    "suggest_send": ("提交", "Send"),
    "suggest_sending": ("正在提交…", "Sending…"),
    "suggest_thanks": (
        "谢谢！管理员核实后会加进名录。",
        "Thank you! An administrator will check it before it is listed.",
    ),
    "suggest_rate_limited": ("提交太频繁，请稍后再试。", "Too many suggestions; try again later."),
    "suggest_error": ("提交失败，请检查后再试。", "Could not send; check the form and try again."),
    "suggest_offline": ("网络不通，请稍后再试。", "No connection; please try again later."),
    "suggest_need_place": (
        "请先选位置：用现在的位置，或在地图上点选。",
        "Choose where it is first: your position or a tap on the map.",
    ),
    "suggest_place_set": ("位置：{lon}, {lat}", "Position: {lon}, {lat}"),
    "suggest_no_place": ("还没有选位置", "No position chosen yet"),
}


def t(key: str, lang: Lang, **fmt: object) -> str:
    """The page text *key* in *lang*, formatted with *fmt*.

    Parameters
    ----------
    key : str
        A key of :data:`TEXT`.
    lang : {"zh", "en"}
        Language.
    **fmt
        Values for ``{placeholders}``.

    Returns
    -------
    str
        The text (not escaped: templates escape it).
    """
    pair = TEXT[key]
    text = pair[0] if lang == "zh" else pair[1]
    return text.format(**fmt) if fmt else text


def pick_lang(asked: str | None, accept_language: str | None) -> Lang:
    """The page language: *asked* (``?lang=``) if given, else the browser's preference.

    Chinese unless the ``Accept-Language`` header prefers English to Chinese (by its
    ``q`` weights, then its order).

    Parameters
    ----------
    asked : str or None
        The ``lang`` query parameter.
    accept_language : str or None
        The request's ``Accept-Language`` header.

    Returns
    -------
    {"zh", "en"}

    Raises
    ------
    InvalidInputError
        *asked* is given and is not ``zh`` or ``en``.

    Examples
    --------
    >>> pick_lang(None, "en-US,en;q=0.9,zh-CN;q=0.8")
    'en'
    >>> pick_lang(None, "zh-CN,zh;q=0.9,en;q=0.8")
    'zh'
    >>> pick_lang("zh", "en-US")
    'zh'
    """
    if asked:
        return check_lang(asked)
    best: dict[str, tuple[float, int]] = {}
    for pos, part in enumerate((accept_language or "").split(",")):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()[:2]
        if tag not in ("zh", "en"):
            continue
        q = 1.0
        for b in bits[1:]:
            name, _, value = b.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (tag not in best or (-q, pos) < (-best[tag][0], best[tag][1])):
            best[tag] = (q, pos)
    if not best:
        return "zh"
    return check_lang(min(best, key=lambda k: (-best[k][0], best[k][1])))
