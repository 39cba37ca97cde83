"""Usage layers for the planner map: stations by utilization, bus stops by visits, and
suggested bus moves.

:func:`add_usage_layers` adds three layers (each in the layer control) and a legend to any
folium map, e.g. the one :func:`yizhan.maps.planner_map` returns:

* **utilization** — every station with visits in the period, a circle whose area grows with
  its visits, coloured by use: *under-used*, *normal*, *crowded*. With a capacity the class
  comes from utilization (visits per seat and open hour: below ``under`` / above
  ``crowded``); without one, from visits per open hour against the network's median
  (below half of it / above twice it); stations without known hours are grey;
* **bus stops** — each stop of each cooling bus, sized by its visits;
* **bus moves** — for each suggestion of :func:`yizhan.query.bus_moves.bus_moves`, a dashed
  line from the least-used stop to the suggested point, with what the move gains and loses.

Folium (and Leaflet) are lat/lon: the conversion happens here only. Every text from the
registry is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import folium
import numpy as np
from branca.element import Element

from yizhan.query.usage import Usage

#: Utilization below this is under-used, above ``CROWDED`` crowded (visits per seat-hour).
UNDER = 0.05
CROWDED = 0.8
COLORS = {"under": "#4c78a8", "normal": "#2ca02c", "crowded": "#d62728", "unknown": "#9e9e9e"}
#: At most this many stations are drawn (the busiest), so a large network stays light.
MAX_STATIONS = 5000

_TEXT = {
    "layer_util": ("使用率（驿站）", "Utilization (stations)"),
    "layer_stops": ("公交停靠点访问量", "Bus stops by visits"),
    "layer_moves": ("建议调整公交停靠", "Suggested bus moves"),
    "under": ("使用偏少", "under-used"),
    "normal": ("正常", "normal"),
    "crowded": ("拥挤", "crowded"),
    "unknown": ("开放时间未知", "hours unknown"),
    "visits": ("访问", "visits"),
    "per_hour": ("每开放小时", "per open hour"),
    "utilization": ("使用率", "utilization"),
    "capacity": ("容量", "capacity"),
    "period": ("期间", "period"),
    "move": (
        "建议：{bus} 从使用最少的停靠点“{stop}”（{window}）移至此处",
        "Move {bus} from its least-used stop “{stop}” ({window}) to here",
    ),
    "gain": (
        "新覆盖需求 +{gain}，失去 −{loss}（{name}，半径 {r} 米）",
        "covers +{gain} more demand, loses −{loss} ({name}, {r} m radius)",
    ),
    "legend": ("使用情况", "Usage"),
    "size_note": ("圆越大，访问越多", "larger circle: more visits"),
}


def _t(key: str, lang: str, **kw: Any) -> str:
    zh, en = _TEXT[key]
    return (en if lang == "en" else zh).format(**kw)


def _esc(x: object) -> str:
    """HTML-escaped, and safe inside the JavaScript template literals folium writes."""
    text = html.escape(str(x), quote=True)
    return text.replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")


def usage_class(utilization: float, per_open_hour: float, median_per_hour: float) -> str:
    """``under``, ``normal``, ``crowded`` or ``unknown`` for one station."""
    if not math.isnan(utilization):
        return "under" if utilization < UNDER else "crowded" if utilization > CROWDED else "normal"
    if math.isnan(per_open_hour) or median_per_hour <= 0:
        return "unknown"
    ratio = per_open_hour / median_per_hour
    return "under" if ratio < 0.5 else "crowded" if ratio > 2.0 else "normal"


def _radius(visits: float, biggest: float) -> float:
    return 4.0 + 16.0 * math.sqrt(visits / biggest) if biggest > 0 else 4.0


def add_usage_layers(
    m: folium.Map,
    usage: Usage,
    moves: Sequence[dict[str, Any]] = (),
    *,
    lang: str = "zh",
) -> dict[str, folium.FeatureGroup]:
    """Add the usage layers to *m*; returns them by name (``utilization``, ``bus_stops``,
    ``bus_moves``)."""
    units = usage.units
    vpoh = usage.per_open_hour
    util = usage.utilization
    has_data = usage.days_with_data > 0
    stations = np.flatnonzero(has_data & ~units.is_bus)
    stations = stations[np.argsort(-usage.visits[stations], kind="stable")][:MAX_STATIONS]
    pool = vpoh[stations][~np.isnan(vpoh[stations])]
    median = float(np.median(pool)) if pool.size else 0.0
    biggest = float(usage.visits[stations].max()) if stations.size else 0.0
    period = f"{usage.first.isoformat()} – {usage.last.isoformat()}"

    layer = folium.FeatureGroup(name=_t("layer_util", lang), show=True)
    for i in stations.tolist():
        cls = usage_class(float(util[i]), float(vpoh[i]), median)
        rows = [
            f"<b>{_esc(units.name[i])}</b>",
            f"{_esc(_t('period', lang))}: {_esc(period)}",
            f"{_esc(_t('visits', lang))}: {int(usage.visits[i]):,}",
        ]
        if not math.isnan(vpoh[i]):
            rows.append(f"{_esc(_t('per_hour', lang))}: {vpoh[i]:.2f}")
        if not math.isnan(util[i]):
            rows.append(
                f"{_esc(_t('utilization', lang))}: {util[i]:.3f} "
                f"({_esc(_t('capacity', lang))} {int(units.capacity[i])})"
            )
        rows.append(f"<i>{_esc(_t(cls, lang))}</i>")
        folium.CircleMarker(
            location=[float(units.lat[i]), float(units.lon[i])],
            radius=_radius(float(usage.visits[i]), biggest),
            color=COLORS[cls],
            weight=1,
            fill=True,
            fill_color=COLORS[cls],
            fill_opacity=0.55,
            popup=folium.Popup("<br>".join(rows), max_width=320),
            tooltip=_esc(units.name[i]),
        ).add_to(layer)
    layer.add_to(m)

    stops_layer = folium.FeatureGroup(name=_t("layer_stops", lang), show=True)
    stops = np.flatnonzero(units.is_bus & np.asarray([s is not None for s in units.stop_id]))
    top = float(usage.visits[stops].max()) if stops.size else 0.0
    for i in stops.tolist():
        text = [
            f"<b>{_esc(units.name[i])}</b>",
            f"{_esc(_t('visits', lang))}: {int(usage.visits[i]):,}",
        ]
        if not math.isnan(vpoh[i]):
            text.append(f"{_esc(_t('per_hour', lang))}: {vpoh[i]:.2f}")
        folium.CircleMarker(
            location=[float(units.lat[i]), float(units.lon[i])],
            radius=_radius(float(usage.visits[i]), top),
            color="#ff7f0e",
            weight=2,
            fill=True,
            fill_color="#ff7f0e",
            fill_opacity=0.6,
            popup=folium.Popup("<br>".join(text), max_width=320),
            tooltip=_esc(units.name[i]),
        ).add_to(stops_layer)
    stops_layer.add_to(m)

    moves_layer = folium.FeatureGroup(name=_t("layer_moves", lang), show=True)
    for mv in moves:
        (lon0, lat0), (lon1, lat1) = mv["from"], mv["to"]
        window = f"{str(mv['window']['from'])[11:16]}–{str(mv['window']['until'])[11:16]}"
        popup = "<br>".join(
            [
                _esc(
                    _t("move", lang, bus=mv["bus_name"], stop=mv["from_stop_name"], window=window)
                ),
                _esc(
                    _t(
                        "gain",
                        lang,
                        gain=f"{mv['gain']:.2f}",
                        loss=f"{mv['loss']:.2f}",
                        name=mv["weight_name"],
                        r=f"{mv['radius_m']:g}",
                    )
                ),
            ]
        )
        folium.PolyLine(  # type: ignore[no-untyped-call]
            [[lat0, lon0], [lat1, lon1]],
            color="#6a3d9a",
            weight=3,
            dash_array="8 6",
            tooltip=_esc(mv["bus_name"]),
        ).add_to(moves_layer)
        folium.CircleMarker(
            location=[lat1, lon1],
            radius=9,
            color="#6a3d9a",
            weight=3,
            fill=True,
            fill_color="#ffffff",
            fill_opacity=0.9,
            popup=folium.Popup(popup, max_width=340),
            tooltip=_esc(_t("layer_moves", lang)),
        ).add_to(moves_layer)
    moves_layer.add_to(m)

    legend = "".join(
        f'<div><span style="display:inline-block;width:10px;height:10px;border-radius:50%;'
        f'background:{COLORS[c]};margin-right:4px"></span>{_esc(_t(c, lang))}</div>'
        for c in ("under", "normal", "crowded", "unknown")
    )
    box = (
        '<div class="yz-usage-legend" style="position:absolute;bottom:130px;left:10px;'
        "z-index:800;background:#fff;padding:6px 8px;border-radius:4px;font:12px sans-serif;"
        'box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"<b>{_esc(_t('legend', lang))}</b> ({_esc(period)}){legend}"
        f'<div style="color:#555">{_esc(_t("size_note", lang))}</div></div>'
    )
    m.get_root().html.add_child(Element(box))  # type: ignore[attr-defined]
    # A layer control lists the layers defined before it in the page's script: move it after
    # these (the planner map adds its control before it is returned).
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
            m._children[key] = child
    return {"utilization": layer, "bus_stops": stops_layer, "bus_moves": moves_layer}


__all__ = ["COLORS", "CROWDED", "UNDER", "add_usage_layers", "usage_class"]
