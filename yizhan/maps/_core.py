"""Building blocks shared by the planner and the worker maps.

* :class:`YizhanMap` is a ``folium.Map`` that, when rendered, points every JS/CSS link at
  Yizhan's own copies (``local``/``inline``) — per instance, nothing global is changed;
* :class:`JsLayer` and :class:`JsControl` call a builder of the JavaScript runtime
  (``static/yizhan-map/yizhan-map.js``, see :mod:`yizhan.maps.runtime`) with JSON
  arguments. Their output bypasses Jinja: folium passes the output of its macros through
  Jinja a second time, so data holding ``{{`` would be evaluated there (a station called
  ``{{ 7*7 }}`` would become ``49``);
* :func:`js_json` writes JSON that is safe inside ``<script>``; :func:`pack` compresses
  large arrays so that 100,000 stations fit in a few megabytes.

Coordinates: the rest of Yizhan is ``[lon, lat]``; Leaflet is ``[lat, lon]``. Every
conversion happens in this package, where payloads carry separate ``lat``/``lon`` arrays.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Sequence
from typing import Any, Final

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink, MacroElement
from folium import plugins
from folium.map import Layer

from yizhan.maps.asset_refs import AssetMode, AssetRef
from yizhan.maps.header import RawElement, localize_header
from yizhan.maps.i18n import Lang, js_labels, label
from yizhan.maps.inline import require_fetched
from yizhan.maps.runtime import Runtime
from yizhan.stations.vocab import Category

#: Category colours (Okabe–Ito palette: distinguishable with colour-vision deficiency).
CATEGORY_COLORS: Final[dict[str, str]] = {
    Category.union_station.value: "#D55E00",
    Category.bank_outlet.value: "#0072B2",
    Category.cooling_center.value: "#56B4E9",
    Category.hydration_point.value: "#009E73",
    Category.smart_station.value: "#CC79A7",
    Category.other.value: "#8C6D1F",
}
UNCATEGORISED_COLOR: Final = "#6E7781"
#: The legend's symbol for stale stations (a neutral grey: on the planner map their fill
#: keeps a hint of their category colour).
STALE_LEGEND: Final = "#aab2bb"

#: District coverage share classes (percent, upper bounds) and their colours (YlGn).
SHARE_BINS: Final[tuple[float, ...]] = (20.0, 40.0, 60.0, 80.0)
SHARE_COLORS: Final[tuple[str, ...]] = ("#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837")
SHARE_MISSING: Final = "#d0d7de"

#: Colours of cooling buses, one per bus in turn.
BUS_COLORS: Final[tuple[str, ...]] = (
    "#0b7285",
    "#5f3dc4",
    "#c2255c",
    "#2b8a3e",
    "#e67700",
    "#1864ab",
)

#: Zhengzhou, where a map with nothing on it is centred.
DEFAULT_CENTER: Final[tuple[float, float]] = (34.7466, 113.6253)

MARKERCLUSTER_JS: Final = AssetRef("leaflet.markercluster", "dist/leaflet.markercluster.js")
MARKERCLUSTER_CSS: Final = (
    AssetRef("leaflet.markercluster", "dist/MarkerCluster.css"),
    AssetRef("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
)
HEAT_JS: Final = AssetRef("leaflet-heat", "leaflet_heat.min.js")

_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_UNSAFE_RE = re.compile("[<>&\u2028\u2029]")


def js_json(obj: Any) -> str:
    """*obj* as compact JSON that can sit inside ``<script>`` unharmed.

    ``<``, ``>`` and ``&`` (so ``</script>`` and ``<!--``) and the line separators
    U+2028/U+2029 are written as ``\\uXXXX`` escapes; they occur only inside strings, so
    the value parsed by the browser is unchanged. Non-ASCII text stays UTF-8.

    Raises
    ------
    ValueError
        *obj* holds NaN or infinity (not JSON).
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _UNSAFE_RE.sub(lambda m: _UNSAFE[m.group(0)], text)


def pack(obj: Any) -> dict[str, str]:
    """Compress *obj* for the page: ``{"z": base64(raw deflate(JSON))}``.

    The runtime's ``yz.unpack`` inflates it with pako. Base64 never contains characters
    that need escaping in HTML or JavaScript.
    """
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = comp.compress(data) + comp.flush()
    return {"z": base64.b64encode(raw).decode("ascii")}


def unpack(packed: dict[str, str]) -> Any:
    """Inverse of :func:`pack` (for tests and debugging)."""
    return json.loads(zlib.decompress(base64.b64decode(packed["z"]), -15).decode("utf-8"))


class YizhanMap(folium.Map):
    """A ``folium.Map`` whose JS/CSS links follow an asset mode when it is rendered.

    Parameters
    ----------
    assets : {"local", "inline", "cdn"}
        How JS/CSS reach the browser (see :mod:`yizhan.maps.asset_refs`).
    asset_base_url : str
        Where the vendored files are served, for ``local``.
    title : str
        The page title.
    **kwargs
        Passed to ``folium.Map``.
    """

    def __init__(
        self, *, assets: AssetMode, asset_base_url: str, title: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.yz_assets = assets
        self.yz_asset_base_url = asset_base_url
        root = self.get_root()
        if isinstance(root, Figure):
            root.title = title  # our own label, never data

    def render(self, **kwargs: Any) -> str:
        super().render(**kwargs)  # type: ignore[no-untyped-call]
        localize_header(self.get_root(), self.yz_assets, self.yz_asset_base_url)
        return ""


def _arg(value: Any) -> str:
    if isinstance(value, Element):
        return str(value.get_name())
    return js_json(value)


class _JsMixin:
    """Render links and one raw script line ``var NAME = yz.FN(map, ...args);``."""

    yz_fn: str
    yz_args: Sequence[Any]
    yz_links: Sequence[AssetRef]

    def _yz_render(self, element: Any, extra: str = "") -> str:
        figure = element.get_root()
        assert isinstance(figure, Figure), "render the map, not an element on its own"
        for ref in self.yz_links:
            link = JavascriptLink(ref.cdn_url()) if ref.kind == "js" else CssLink(ref.cdn_url())
            figure.header.add_child(link, name=f"yz:{ref.package}/{ref.path}")
        args = ", ".join([element._parent.get_name(), *(_arg(a) for a in self.yz_args)])
        name = element.get_name()
        # yz.made lists every built layer and control by builder (for tests and debugging).
        made = f" yz.made.push([{js_json(self.yz_fn)}, {name}]);"
        figure.script.add_child(
            RawElement(f"var {name} = yz.{self.yz_fn}({args});{made}{extra}\n"), name=name
        )
        for child in element._children.values():
            child.render()
        return ""


class JsLayer(_JsMixin, Layer):
    """A layer built by the runtime function ``yz.<fn>``, listed in the layer control: an
    overlay (a check box), or with ``overlay=False`` a base map (a radio button)."""

    def __init__(
        self,
        fn: str,
        *args: Any,
        name: str,
        show: bool = True,
        overlay: bool = True,
        links: Sequence[AssetRef] = (),
    ) -> None:
        super().__init__(name=name, overlay=overlay, control=True, show=show)
        self._name = "YzLayer"
        self.yz_fn = fn
        self.yz_args = args
        self.yz_links = links

    def render(self, **kwargs: Any) -> str:
        parent = self._parent
        assert parent is not None, "add the layer to a map first"
        extra = f" {self.get_name()}.addTo({parent.get_name()});" if self.show else ""
        return self._yz_render(self, extra)


class JsControl(_JsMixin, MacroElement):
    """A control (legend, search, slider, …) built by the runtime function ``yz.<fn>``."""

    def __init__(self, fn: str, *args: Any, links: Sequence[AssetRef] = ()) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "YzControl"
        self.yz_fn = fn
        self.yz_args = args
        self.yz_links = links

    def render(self, **kwargs: Any) -> str:
        return self._yz_render(self)


def meta_for(lang: Lang, **extra: Any) -> dict[str, Any]:
    """The small JSON object every builder receives: labels in *lang* plus *extra*."""
    return {"i18n": js_labels(lang), **extra}


def new_map(
    *,
    lang: Lang,
    assets: AssetMode,
    asset_base_url: str,
    title_key: str,
    tiles: str | None,
    attr: str | None,
    center: tuple[float, float] = DEFAULT_CENTER,
    zoom: int = 12,
) -> YizhanMap:
    """A :class:`YizhanMap` with the runtime installed.

    Raises :class:`~yizhan.assets.AssetError` at once for ``assets="inline"`` when
    the vendored files have not been fetched (rather than when the map is saved).

    Tiles: OpenStreetMap tiles are WGS-84 like Yizhan's data. Chinese commercial
    basemaps (AMap/Gaode, Tencent, Baidu) use GCJ-02/BD-09: stations would appear
    hundreds of metres off unless converted with :mod:`yizhan.geo.crs`.
    """
    if assets == "inline":
        require_fetched()
    m = YizhanMap(
        assets=assets,
        asset_base_url=asset_base_url,
        title=label(title_key, lang),
        location=list(center),
        zoom_start=zoom,
        tiles=None,
        control_scale=True,
    )
    if tiles:
        folium.TileLayer(tiles, attr=attr, name="basemap", control=False, max_zoom=19).add_to(m)
    Runtime(assets, asset_base_url).add_to(m)
    return m


def add_map_controls(m: folium.Map, lang: Lang, *, layers_collapsed: bool) -> None:
    """The controls every Yizhan map has: full screen, locate-me and the layer list."""
    plugins.Fullscreen(  # type: ignore[no-untyped-call]
        position="topleft",
        title=label("fullscreen", lang),
        title_cancel=label("fullscreen_exit", lang),
    ).add_to(m)
    plugins.LocateControl(  # type: ignore[no-untyped-call]
        position="topleft",
        strings={
            "title": label("locate", lang),
            "popup": label("locate_popup", lang),
            "outsideMapBoundsMsg": label("locate_outside", lang),
        },
    ).add_to(m)
    folium.LayerControl(position="topright", collapsed=layers_collapsed).add_to(m)
