"""Base maps for the planner map, and the GCJ-02 copies of overlays that Amap needs.

Three base maps, chosen in the layer control:

* **OpenStreetMap** (the default): WGS-84, like the registry;
* **Amap** (高德地图): tiles in **GCJ-02**, the offset coordinates maps published in
  mainland China must use. Drawn on them, a WGS-84 point lands 300–700 m off, so every
  overlay (stations, coverage circles, uncovered demand, gaps, districts, suggested sites,
  buses) is shipped in both systems and the map's runtime moves them when this base is
  chosen (``yz.base`` fires ``yz:crs``). The GCJ-02 positions are computed here, in Python,
  with :func:`yizhan.geo.crs.transform` (the same conversion as the importer and
  ``/nearest?crs=gcj02``); the browser never converts. Check Amap's terms of service before
  using its tiles in production;
* **Tianditu** (天地图, the national platform): CGCS2000, which agrees with WGS-84 to a few
  centimetres, so nothing moves. It needs a key (``YIZHAN_TIANDITU_KEY``, free from
  console.tianditu.gov.cn); without one it is not offered.

Station positions travel as deltas in millionths of a degree (``gdy``/``gdx``: zero
outside China, so they compress to almost nothing); GeoJSON overlays as a second
GeoJSON; single points as ``[glat, glon]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike

from yizhan.errors import InvalidInputError
from yizhan.geo.crs import transform
from yizhan.maps.i18n import Lang, label

BaseCrs = Literal["wgs84", "gcj02"]

OSM_URL: Final = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION: Final = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)
AMAP_URL: Final = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
AMAP_ATTRIBUTION: Final = "&copy; 高德地图 AutoNavi (GCJ-02)"
#: Tianditu's vector map and its labels (Chinese ``cva``, English ``eva``), Web Mercator.
TIANDITU_URL: Final = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk={key}"
)
TIANDITU_ATTRIBUTION: Final = "&copy; 天地图 Tianditu (国家地理信息公共服务平台)"
_KEY = re.compile(r"^[A-Za-z0-9]{8,64}$")
#: Rounding of every coordinate shipped to the map (about 0.1 m).
DECIMALS: Final = 6


@dataclass(frozen=True)
class BaseMap:
    """One base map: its tile URL templates (several are drawn on top of each other)."""

    key: str
    name: str
    urls: tuple[str, ...]
    attribution: str
    crs: BaseCrs = "wgs84"
    subdomains: str = "abc"
    max_zoom: int = 19

    def spec(self) -> dict[str, Any]:
        """The JSON ``yz.base`` builds the layer from."""
        return {
            "key": self.key,
            "urls": list(self.urls),
            "attribution": self.attribution,
            "crs": self.crs,
            "subdomains": self.subdomains,
            "max_zoom": self.max_zoom,
        }


def check_tianditu_key(key: object) -> str:
    """*key* if it looks like a Tianditu key (letters and digits; it goes into URLs).

    Raises
    ------
    InvalidInputError
        ``tianditu_key: Expected letters and digits …``.
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInputError(
            "tianditu_key", "Expected the key of a Tianditu application: 8-64 letters and digits"
        )
    return key


def base_maps(
    lang: Lang,
    *,
    tiles: str | None = "OpenStreetMap",
    attr: str | None = None,
    tianditu_key: str | None = None,
) -> list[BaseMap]:
    """The base maps a planner map offers, the first shown.

    Parameters
    ----------
    lang : {"zh", "en"}
        Language of the names (and of Tianditu's labels).
    tiles : str or None
        ``"OpenStreetMap"``: OpenStreetMap, Amap and (with a key) Tianditu; a URL template:
        that WGS-84 base alone (with *attr*); ``None``: no base map.
    tianditu_key : str, optional
        Offer Tianditu with this key.
    """
    if tiles is None:
        return []
    if tiles != "OpenStreetMap":
        return [BaseMap("custom", label("base_custom", lang), (tiles,), attr or "")]
    out = [
        BaseMap("osm", label("base_osm", lang), (OSM_URL,), OSM_ATTRIBUTION, subdomains="abc"),
        BaseMap(
            "amap",
            label("base_amap", lang),
            (AMAP_URL,),
            AMAP_ATTRIBUTION,
            crs="gcj02",
            subdomains="1234",
            max_zoom=18,
        ),
    ]
    if tianditu_key:
        key = check_tianditu_key(tianditu_key)
        names = ("vec", "cva" if lang == "zh" else "eva")
        out.append(
            BaseMap(
                "tianditu",
                label("base_tianditu", lang),
                tuple(
                    TIANDITU_URL.format(layer=n, key=key, s="{s}", x="{x}", y="{y}", z="{z}")
                    for n in names
                ),
                TIANDITU_ATTRIBUTION,
                subdomains="01234567",
                max_zoom=18,
            )
        )
    return out


def needs_gcj(bases: Sequence[BaseMap]) -> bool:
    """Whether any base map is in GCJ-02 (then overlays ship a GCJ-02 copy)."""
    return any(b.crs == "gcj02" for b in bases)


# -- GCJ-02 copies of overlays ---------------------------------------------------------------


def gcj_point(lat: float, lon: float) -> list[float]:
    """``[lat, lon]`` of one WGS-84 point in GCJ-02, rounded like every shipped coordinate."""
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    return [round(float(glat), DECIMALS), round(float(glon), DECIMALS)]


def gcj_deltas(
    lat: ArrayLike, lon: ArrayLike, decimals: int = DECIMALS
) -> tuple[list[int], list[int]]:
    """GCJ-02 minus WGS-84 in millionths of a degree (``dy`` for lat, ``dx`` for lon).

    The browser adds them to the WGS-84 positions it already has, rounded to *decimals*
    (``lat + dy·1e-6``), which gives the GCJ-02 position of the exact point rounded to
    1e-6° (0.1 m).
    """
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    glon, glat = transform(lo, la, "wgs84", "gcj02")
    scale = 10**DECIMALS
    dy = np.round(glat * scale) - np.round(np.round(la, decimals) * scale)
    dx = np.round(glon * scale) - np.round(np.round(lo, decimals) * scale)
    return dy.astype(np.int64).tolist(), dx.astype(np.int64).tolist()


def _positions(coords: Any, out: list[tuple[float, float]]) -> None:
    if coords and isinstance(coords[0], int | float):
        out.append((float(coords[0]), float(coords[1])))
        return
    for c in coords:
        _positions(c, out)


def _rebuild(coords: Any, it: Any) -> Any:
    if coords and isinstance(coords[0], int | float):
        return next(it)
    return [_rebuild(c, it) for c in coords]


def gcj_geojson(fc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a GeoJSON FeatureCollection with every position in GCJ-02 (rounded to
    1e-6°); properties are kept."""
    feats = []
    for f in fc.get("features") or []:
        geom = (f or {}).get("geometry")
        if not isinstance(geom, dict) or "coordinates" not in geom:
            feats.append(f)
            continue
        pos: list[tuple[float, float]] = []
        _positions(geom["coordinates"], pos)
        if pos:
            arr = np.asarray(pos, dtype=np.float64)
            glon, glat = transform(arr[:, 0], arr[:, 1], "wgs84", "gcj02")
            new = iter(
                [round(float(x), DECIMALS), round(float(y), DECIMALS)]
                for x, y in zip(np.atleast_1d(glon), np.atleast_1d(glat), strict=True)
            )
            geom = {**geom, "coordinates": _rebuild(geom["coordinates"], new)}
        feats.append({**f, "geometry": geom})
    return {**fc, "features": feats}
