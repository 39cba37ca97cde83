"""Opening hours written as one text (Chinese phrasings) -> OSM ``opening_hours``.

:func:`convert_hours` returns valid OSM syntax unchanged, converts the common Chinese
phrasings (day ranges and lists, ``工作日``, ``周末``, ``节假日``, ``每天``, several spans
a day, ``上午``/``下午``, ``8点半``, ``24小时``, closures) and gives ``None`` for
anything else: hours are never invented.

Hand-written: the tokens are a closed set of Chinese words and the result must pass
opening-hours-py (:func:`~yizhan.stations.hours.hours_error`), which has no parser for
free text to build on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from yizhan.stations.hours import hours_error
from yizhan.stations.importing.hours_result import DAYS

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
                cur.days.append(DAYS[a] if a == b else f"{DAYS[a]}-{DAYS[b]}")
                i += 3
            else:
                cur.days.append(DAYS[a])
                i += 1
        elif kind == "daych":
            # "周一、三、五": a bare day character continues a list of days.
            if not cur.days or cur.has_content() or toks[i - 1][0] != "list":
                return None
            cur.days.append(DAYS[_DAY_INDEX[m.group()]])
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
