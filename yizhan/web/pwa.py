"""The installable web app: its manifest, service worker and icons (no HTTP here).

A worker who opened the find page once can add it to the home screen and open it with a
weak signal or none: the service worker (``static/sw.js``, served as ``/sw.js`` so that
its scope is the whole site) keeps the pages, Leaflet and the last results, and shows the
saved copy, marked "as of 07:48", when the network fails (see ``docs/worker-page.md``).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Any, Final

import orjson

from yizhan.maps.i18n import Lang
from yizhan.web.i18n import t

__all__ = ["ICONS", "icon_bytes", "manifest", "service_worker", "version"]

#: Icon (served as ``/static/app/<name>``, the file ``static/app-<name>``) -> media type.
ICONS: Final[dict[str, str]] = {
    "icon-192.png": "image/png",
    "icon-512.png": "image/png",
    "icon.svg": "image/svg+xml",
}
#: Text the service worker's own offline page shows.
SW_TEXT: Final = ("offline_page", "offline_text", "offline_last")
#: Files whose change makes a new service worker (and drops the old asset cache).
_VERSIONED: Final = ("sw.js", "pwa.js", "find.js", "station.js", "suggest.js", "page.css")


def _static(name: str) -> bytes:
    return resources.files("yizhan.web").joinpath("static", name).read_bytes()


@lru_cache(maxsize=1)
def version() -> str:
    """A hash of the pages' scripts and styles: a new one installs a new service worker."""
    h = hashlib.blake2b(digest_size=6)
    for name in _VERSIONED:
        h.update(_static(name))
    return h.hexdigest()


@lru_cache(maxsize=1)
def service_worker() -> str:
    """The service worker's JavaScript, with its version and its offline page's text."""
    text = {lang: {k: t(k, lang) for k in SW_TEXT} for lang in ("zh", "en")}
    js = _static("sw.js").decode("utf-8")
    # The text is ours (no registry data); JSON with '<' escaped all the same.
    blob = orjson.dumps(text).decode("utf-8").replace("<", "\\u003c")
    return js.replace('"__VERSION__"', f'"{version()}"').replace("__TEXT__", blob)


def manifest(lang: Lang) -> dict[str, Any]:
    """The web app manifest in *lang* (name, start page, colours, icons)."""
    return {
        "name": t("find_title", lang),
        "short_name": t("app", lang),
        "description": t("find_title", lang),
        "lang": "zh-CN" if lang == "zh" else "en",
        "start_url": f"/?lang={lang}",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f4f4f1",
        "theme_color": "#1b6e3a",
        "icons": [
            {"src": "/static/app/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/app/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/static/app/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }


@lru_cache(maxsize=4)
def icon_bytes(name: str) -> bytes:
    """The bytes of icon *name* (a key of :data:`ICONS`)."""
    if name not in ICONS:
        raise KeyError(name)
    return _static(f"app-{name}")
