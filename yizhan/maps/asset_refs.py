"""Which file stands for each JavaScript/CSS URL a map links, and the asset modes.

folium and its plugins link their JS/CSS on public CDNs. A Yizhan map points each link at
Yizhan's own copy instead (:mod:`yizhan.maps.header`), fetched by :mod:`yizhan.assets`:

* ``assets="local"``: ``<base_url><package>-<version>/<path>`` (the API serves
  :func:`yizhan.assets.vendor_dir` at ``/static/vendor/``);
* ``assets="inline"``: the file's text inside the page (:mod:`yizhan.maps.inline`), a
  standalone file that opens offline;
* ``assets="cdn"``: the public CDN URLs, unchanged.

:class:`AssetRef` names one file of one package of :data:`yizhan.assets.PACKAGES`;
:func:`resolve_url` maps a folium/CDN URL to it by pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from yizhan.assets import AssetError, Source, package, vendor_dir
from yizhan.errors import InvalidInputError

AssetMode = Literal["local", "inline", "cdn"]
ASSET_MODES: Final[tuple[AssetMode, ...]] = ("local", "inline", "cdn")
#: Where the API serves :func:`yizhan.assets.vendor_dir`.
DEFAULT_BASE_URL: Final = "/static/vendor/"


def static_dir() -> Path:
    """Directory of the maps' static files (``yizhan/maps/static``, package data).

    It holds the maps' own runtime (``yizhan-map/``) and, by default, the vendored
    files (``vendor/``, see :func:`yizhan.assets.vendor_dir`).
    """
    # A directory (served as files), so a real path: Yizhan is never imported from a zip.
    return Path(str(resources.files("yizhan.maps").joinpath("static")))


@dataclass(frozen=True)
class AssetRef:
    """One file of one package: ``AssetRef("leaflet", "dist/leaflet.js")``."""

    package: str
    path: str

    @property
    def source(self) -> Source:
        return package(self.package)

    @property
    def kind(self) -> Literal["js", "css"]:
        return "css" if self.path.endswith(".css") else "js"

    def cdn_url(self) -> str:
        """Public CDN URL of the file."""
        return self.source.cdn_url(self.path)

    def local_url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        """URL of the file under *base_url* (where :func:`yizhan.assets.vendor_dir` is served)."""
        return f"{normalize_base_url(base_url)}{self.source.dirname}/{self.path}"

    def file(self, root: Path | None = None) -> Path:
        """Where the file is (or will be) on disk."""
        return (root or vendor_dir()) / self.source.dirname / self.path


#: folium's default and plugin URLs (by pattern) -> local copies. ``None`` marks a file
#: deliberately left out in ``local``/``inline`` mode, with the reason beside it.
_RULES: Final[tuple[tuple[re.Pattern[str], AssetRef | None], ...]] = tuple(
    (re.compile(pattern), ref)
    for pattern, ref in (
        (r"/leaflet@1\.[\d.]+/dist/leaflet\.js$", AssetRef("leaflet", "dist/leaflet.js")),
        (r"/leaflet@1\.[\d.]+/dist/leaflet\.css$", AssetRef("leaflet", "dist/leaflet.css")),
        (
            r"jquery[-@/]3\.[\d.]+(/dist)?/jquery(-3\.[\d.]+)?\.min\.js$",
            AssetRef("jquery", "dist/jquery.min.js"),
        ),
        (r"code\.jquery\.com/jquery-3\.[\d.]+\.min\.js$", AssetRef("jquery", "dist/jquery.min.js")),
        (
            r"/bootstrap@5\.[\d.]+/dist/js/bootstrap\.bundle\.min\.js$",
            AssetRef("bootstrap", "dist/js/bootstrap.bundle.min.js"),
        ),
        (
            r"/bootstrap@5\.[\d.]+/dist/css/bootstrap\.min\.css$",
            AssetRef("bootstrap", "dist/css/bootstrap.min.css"),
        ),
        (
            r"/bootstrap/3\.[\d.]+/css/bootstrap-glyphicons\.css$",
            AssetRef("glyphicons-only-bootstrap", "css/bootstrap.min.css"),
        ),
        (
            r"/@fortawesome/fontawesome-free@6\.[\d.]+/css/all\.min\.css$",
            AssetRef("fontawesome-free", "css/all.min.css"),
        ),
        (
            r"[Ll]eaflet\.awesome-markers/2\.[\d.]+/(dist/)?leaflet\.awesome-markers\.js$",
            AssetRef("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js"),
        ),
        (
            r"[Ll]eaflet\.awesome-markers/2\.[\d.]+/(dist/)?leaflet\.awesome-markers\.css$",
            AssetRef("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),
        ),
        # Only used by folium.Icon(angle=...), which Yizhan does not use; the file is
        # in folium's git repository only, on no package registry.
        (r"/leaflet\.awesome\.rotate(\.min)?\.css$", None),
        (
            r"markercluster[@/]1\.[\d.]+/(dist/)?leaflet\.markercluster\.js$",
            AssetRef("leaflet.markercluster", "dist/leaflet.markercluster.js"),
        ),
        (
            r"markercluster[@/]1\.[\d.]+/(dist/)?MarkerCluster\.css$",
            AssetRef("leaflet.markercluster", "dist/MarkerCluster.css"),
        ),
        (
            r"markercluster[@/]1\.[\d.]+/(dist/)?MarkerCluster\.Default\.css$",
            AssetRef("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
        ),
        (r"/leaflet_heat\.min\.js$", AssetRef("leaflet-heat", "leaflet_heat.min.js")),
        (
            r"/leaflet\.fullscreen@3\.[\d.]+/Control\.FullScreen(\.min)?\.js$",
            AssetRef("leaflet.fullscreen", "Control.FullScreen.js"),
        ),
        (
            r"/leaflet\.fullscreen@3\.[\d.]+/Control\.FullScreen\.css$",
            AssetRef("leaflet.fullscreen", "Control.FullScreen.css"),
        ),
        (
            r"locatecontrol[@/]0\.66\.2/(dist/)?L\.Control\.Locate\.min\.js$",
            AssetRef("leaflet.locatecontrol", "dist/L.Control.Locate.min.js"),
        ),
        (
            r"locatecontrol[@/]0\.66\.2/(dist/)?L\.Control\.Locate\.min\.css$",
            AssetRef("leaflet.locatecontrol", "dist/L.Control.Locate.min.css"),
        ),
        (
            r"/pako@2\.[\d.]+/dist/pako_inflate\.min\.js$",
            AssetRef("pako", "dist/pako_inflate.min.js"),
        ),
    )
)


def resolve_url(url: str) -> AssetRef | None:
    """The local copy of a folium/CDN asset URL.

    Returns
    -------
    AssetRef or None
        ``None`` when the file is deliberately not shipped (see the rules).

    Raises
    ------
    AssetError
        No rule knows the URL: the map would need the internet for it.
    """
    for pattern, ref in _RULES:
        if pattern.search(url):
            return ref
    raise AssetError(
        f"no offline copy of {url}: add its package to yizhan.assets.PACKAGES "
        "and a rule to yizhan.maps.asset_refs (or build the map with assets='cdn')"
    )


def iter_refs() -> Iterable[AssetRef]:
    """Every CSS/JS file the rules map to (for tests)."""
    seen: set[AssetRef] = set()
    for _, ref in _RULES:
        if ref is not None and ref not in seen:
            seen.add(ref)
            yield ref


def check_mode(assets: object) -> AssetMode:
    """Validate an ``assets`` argument.

    Raises
    ------
    InvalidInputError
        ``assets: Expected one of local, inline, cdn, got 'x'``.
    """
    for mode in ASSET_MODES:
        if assets == mode:
            return mode
    raise InvalidInputError("assets", f"Expected one of {', '.join(ASSET_MODES)}, got {assets!r}")


def normalize_base_url(base_url: str) -> str:
    """*base_url* with exactly one trailing slash."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidInputError("asset_base_url", f"Expected a URL or path, got {base_url!r}")
    return base_url.rstrip("/") + "/"
