"""Rewriting a rendered folium page's ``<head>``: every JS/CSS link to Yizhan's copies.

folium and its plugins add ``JavascriptLink``/``CssLink`` elements pointing at public
CDNs. After a map has rendered, :func:`localize_header` replaces each in place by the
element the asset mode asks for (:mod:`yizhan.maps.asset_refs`): a link under the local
base URL, or the file's text (:mod:`yizhan.maps.inline`). Nothing global is changed.

:class:`RawElement` is an element rendered verbatim: folium passes the output of its
macros through Jinja a second time, so text holding ``{{`` would be evaluated there.
"""

from __future__ import annotations

from html import escape
from typing import Any

from branca.element import CssLink, Element, JavascriptLink

from yizhan.maps.asset_refs import DEFAULT_BASE_URL, AssetMode, AssetRef, resolve_url
from yizhan.maps.inline import inline_text


class RawElement(Element):
    """An element rendered verbatim, never through Jinja.

    Parameters
    ----------
    text : str
        What the element renders as.
    asset : AssetRef, optional
        The file this element stands for, when it replaced a link (so that a second
        rendering of the page keeps it and emits a file linked twice only once).
    """

    def __init__(self, text: str, asset: AssetRef | None = None) -> None:
        super().__init__()
        self._text = text
        self.yz_asset = asset

    def render(self, **kwargs: Any) -> str:
        return self._text


def asset_tag(ref: AssetRef, mode: AssetMode, base_url: str = DEFAULT_BASE_URL) -> str:
    """The ``<script>``/``<link>``/``<style>`` element for one vendored file in *mode*."""
    if mode == "inline":
        body = inline_text(ref)
        return f"<script>{body}</script>" if ref.kind == "js" else f"<style>{body}</style>"
    url = ref.local_url(base_url) if mode == "local" else ref.cdn_url()
    return link_tag(url, ref.kind)


def link_tag(url: str, kind: str) -> str:
    """``<script src=URL>`` for ``js``, ``<link rel="stylesheet" href=URL>`` for ``css``."""
    quoted = escape(url, quote=True)
    if kind == "js":
        return f'<script src="{quoted}"></script>'
    return f'<link rel="stylesheet" href="{quoted}"/>'


def localize_header(figure: Any, mode: AssetMode, base_url: str = DEFAULT_BASE_URL) -> None:
    """Point every JS/CSS link in a rendered folium figure's header at Yizhan's copies.

    Called after the map rendered (so folium and its plugins have added their links);
    links are replaced in place, keeping their order and names, and a file linked twice
    under different names is emitted once. Nothing global is changed.

    Parameters
    ----------
    figure : branca.element.Figure
        The root of the map.
    mode : {"local", "inline", "cdn"}
        ``cdn`` leaves the links as they are.
    base_url : str
        Where :func:`yizhan.assets.vendor_dir` is served (``local`` only).

    Raises
    ------
    AssetError
        A link has no offline copy, or (``inline``) a file has not been fetched.
    """
    if mode == "cdn":
        return
    header = figure.header
    seen: set[AssetRef] = set()
    for name, child in list(header._children.items()):
        done = getattr(child, "yz_asset", None)
        if isinstance(done, AssetRef):  # localised on an earlier render and kept
            seen.add(done)
            continue
        if not isinstance(child, JavascriptLink | CssLink):
            continue
        ref = resolve_url(str(child.url))
        if ref is None or ref in seen:
            new = RawElement("")
        else:
            seen.add(ref)
            new = RawElement(asset_tag(ref, mode, base_url), ref)
        new._parent = header
        header._children[name] = new
