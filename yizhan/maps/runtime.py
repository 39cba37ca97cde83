"""The maps' own JavaScript and CSS, and the element that puts them on a page.

Every Yizhan map carries one runtime, ``static/yizhan-map/yizhan-map.js`` (the global
``yz``: markers, popups, legends, search, time slider, all built client-side from JSON)
and ``yizhan-map.css``. They are package data, read with :mod:`importlib.resources`;
``node --check`` and the browser tests check them.

* ``assets="local"``: links under the local base URL,
  ``<base_url>yizhan-map/yizhan-map.js?v=<digest>``; the API serves :func:`runtime_dir`
  there, so the browser caches the runtime once for every map, and the digest of the
  content in the URL makes a changed runtime a new URL;
* ``assets="inline"`` and ``assets="cdn"``: the text inside the page (no CDN carries
  Yizhan's runtime).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from branca.element import Figure, JavascriptLink, MacroElement

from yizhan.maps.asset_refs import AssetMode, AssetRef, normalize_base_url
from yizhan.maps.header import RawElement, link_tag
from yizhan.maps.inline import Kind, embed_file

#: The runtime's directory under ``yizhan/maps/static`` and under the local base URL.
RUNTIME_DIR: Final = "yizhan-map"
RUNTIME_FILES: Final[dict[Kind, str]] = {"js": "yizhan-map.js", "css": "yizhan-map.css"}
#: The runtime inflates compressed payloads with pako.
PAKO_JS: Final = AssetRef("pako", "dist/pako_inflate.min.js")


def runtime_dir() -> Path:
    """Directory of the runtime's files; serve it at ``<base_url>yizhan-map/``."""
    # A directory (served as files), so a real path: Yizhan is never imported from a zip.
    return Path(str(resources.files("yizhan.maps").joinpath("static", RUNTIME_DIR)))


def runtime_file(kind: Kind) -> Path:
    """The runtime's ``js`` or ``css`` file."""
    return runtime_dir() / RUNTIME_FILES[kind]


@lru_cache(maxsize=8)
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def runtime_url(kind: Kind, base_url: str) -> str:
    """URL of the runtime's ``js`` or ``css`` file under *base_url*, with its digest."""
    path = runtime_file(kind)
    digest = _digest(path, path.stat().st_mtime_ns)
    return f"{normalize_base_url(base_url)}{RUNTIME_DIR}/{RUNTIME_FILES[kind]}?v={digest}"


def runtime_tag(kind: Kind, mode: AssetMode, base_url: str) -> str:
    """The ``<script>``/``<link>``/``<style>`` element of the runtime's *kind* file."""
    if mode == "local":
        return link_tag(runtime_url(kind, base_url), kind)
    body = embed_file(runtime_file(kind), kind)
    return f"<script>{body}</script>" if kind == "js" else f"<style>{body}</style>"


class Runtime(MacroElement):
    """The ``yz`` runtime and its CSS in the page's head; add it to the map before any layer.

    Parameters
    ----------
    mode : {"local", "inline", "cdn"}
        How the runtime reaches the browser (see the module's docstring).
    base_url : str
        The local base URL (``local``).
    """

    def __init__(self, mode: AssetMode, base_url: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "YzRuntime"
        self.yz_mode: AssetMode = mode
        self.yz_base_url = base_url

    def render(self, **kwargs: Any) -> str:
        figure = self.get_root()
        assert isinstance(figure, Figure), "render the map, not an element on its own"
        header = figure.header
        header.add_child(JavascriptLink(PAKO_JS.cdn_url()), name="yz:pako")
        css = runtime_tag("css", self.yz_mode, self.yz_base_url)
        header.add_child(RawElement(css), name="yz:css")
        js = runtime_tag("js", self.yz_mode, self.yz_base_url)
        header.add_child(RawElement(js), name="yz:runtime")
        return ""
